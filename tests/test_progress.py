from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dtcourse.errors import ProgressError
from dtcourse.runtime.progress import (
    APPLICATION_ID,
    DONE_KIND,
    UNDONE_KIND,
    ChecklistStatus,
    Minutes,
    ProgressStore,
    default_store_path,
)
from dtcourse.runtime.syllabus import load_syllabus

PHASE1 = ("p1.basics", "p1.transfer", "p1.acid", "p1.serializability")
SUPPLEMENTARY = (
    "extra.guide",
    "extra.tp",
    "extra.ds",
    "video.kleppmann-2pc",
    "video.mit-6824-l12",
    "video.cmu-distributed-oltp",
    "video.usenix-dynamodb",
    "video.kleppmann-strangeloop",
    "video.cockroach-parallel-commits",
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Clock:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> ProgressStore:
    return ProgressStore(tmp_path / "store" / "progress.sqlite", clock=Clock())


# --- location -------------------------------------------------------------------------


def test_default_path_follows_the_environment(isolated_progress_store: Path) -> None:
    assert default_store_path() == isolated_progress_store
    store = ProgressStore()
    assert store.path == isolated_progress_store
    assert isolated_progress_store.is_file()  # parent directories were created


def test_default_path_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DTCOURSE_PROGRESS")
    path = default_store_path()
    assert path.name == "progress.sqlite"
    assert path.parent.name == "dtcourse"


def test_new_store_is_marked_and_in_wal_mode(store: ProgressStore) -> None:
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    assert store.version() == 0
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".new")]
    assert leftovers == []


# --- writing --------------------------------------------------------------------------


def test_mark_appends_the_positive_event_of_each_kind(store: ProgressStore) -> None:
    store.mark("p1.basics")
    store.mark("p1.transfer", source="check")
    store.mark("extra.tp", source="widget")
    store.mark("video.kleppmann-2pc", source="notebook")
    events = store.events()
    assert list(events["item_id"]) == [
        "p1.basics", "p1.transfer", "extra.tp", "video.kleppmann-2pc",
    ]
    assert list(events["kind"]) == ["read", "passed", "reviewed", "reviewed"]
    assert list(events["source"]) == ["cli", "check", "widget", "notebook"]
    assert list(events["id"]) == [1, 2, 3, 4]
    assert str(events["at"].dt.tz) == "UTC"
    assert events["at"].is_monotonic_increasing


def test_unmark_appends_the_negative_event_and_deletes_nothing(store: ProgressStore) -> None:
    for item_id in ("p1.basics", "p1.transfer", "extra.guide", "video.mit-6824-l12"):
        store.mark(item_id)
        store.unmark(item_id)
    events = store.events()
    assert len(events) == 8
    assert list(events["kind"][1::2]) == ["unread", "failed", "unreviewed", "unreviewed"]
    assert set(UNDONE_KIND.values()) == {"unread", "failed", "unreviewed"}
    assert set(DONE_KIND.values()) == {"read", "passed", "reviewed"}


def test_record_validates_the_kind(store: ProgressStore) -> None:
    store.record("p2.threepc", "failed", source="check")
    assert store.events()["kind"].tolist() == ["failed"]
    with pytest.raises(ProgressError, match="'passed' does not apply to resource 'p1.basics'"):
        store.record("p1.basics", "passed")
    with pytest.raises(ProgressError, match="use 'read' or 'unread'"):
        store.record("p1.basics", "done")
    assert store.version() == 1


def test_unknown_and_checklist_ids_are_refused(store: ProgressStore) -> None:
    with pytest.raises(ProgressError, match="unknown item 'p1.nope'"):
        store.mark("p1.nope")
    with pytest.raises(ProgressError, match="'check.phase1' is a checklist line"):
        store.mark("check.phase1")
    with pytest.raises(ProgressError, match="item id must be a string"):
        store.mark(3)  # type: ignore[arg-type]
    with pytest.raises(ProgressError, match="invalid event source"):
        store.mark("p1.basics", source="Bad Source!")
    assert store.version() == 0


def test_mark_many_is_all_or_nothing(store: ProgressStore) -> None:
    with pytest.raises(ProgressError, match="p9.bad"):
        store.mark_many(["p1.basics", "p9.bad"])
    assert store.version() == 0
    store.mark_many(["p1.basics", "p1.acid"])
    assert store.version() == 2


def test_naive_clock_is_refused(tmp_path: Path) -> None:
    store = ProgressStore(tmp_path / "p.sqlite", clock=lambda: datetime(2025, 1, 1))
    with pytest.raises(ProgressError, match="aware datetime"):
        store.mark("p1.basics")


# --- the view and what is derived from it --------------------------------------------


def test_view_has_a_row_per_item(store: ProgressStore) -> None:
    view = store.view()
    syllabus = store.syllabus
    assert list(view.index) == [item.id for item in syllabus.trackable_items()]
    assert view.index.name == "item_id"
    assert list(view.columns) == [
        "phase", "kind", "title", "reading_minutes", "exercise_minutes", "status",
        "completed_at",
    ]
    assert (view["status"] == "todo").all()
    assert view["completed_at"].isna().all()
    assert view.loc["p2.twopc", "reading_minutes"] == 40
    assert view.loc["p2.twopc", "exercise_minutes"] == 0
    assert view.loc["p2.twopc", "phase"] == "phase2"
    assert view.loc["p2.twopc.participant", "reading_minutes"] == 0
    assert view.loc["p2.twopc.participant", "exercise_minutes"] == 25
    assert view.loc["p2.twopc.participant", "kind"] == "exercise"
    assert pd.isna(view.loc["extra.guide", "phase"])
    assert pd.isna(view.loc["extra.guide", "reading_minutes"])
    assert view.loc["extra.guide", "exercise_minutes"] == 0
    assert pd.isna(view.loc["video.mit-6824-l12", "reading_minutes"])
    assert view.loc["video.kleppmann-2pc", "reading_minutes"] == 19
    # Each column sums to its own total: reading minutes stay the learning path's.
    assert view["reading_minutes"].sum() == syllabus.total_minutes
    assert view["exercise_minutes"].sum() == syllabus.total_exercise_minutes
    per_reading = view[view["kind"] == "exercise"].groupby("phase")["exercise_minutes"].sum()
    assert per_reading.to_dict() == {p.id: p.exercise_minutes for p in syllabus.phases}


def test_latest_event_wins(store: ProgressStore) -> None:
    store.mark("p1.transfer")
    store.unmark("p1.transfer")
    assert store.view().loc["p1.transfer", "status"] == "todo"
    store.mark("p1.transfer")
    view = store.view()
    assert view.loc["p1.transfer", "status"] == "done"
    completed = view.loc["p1.transfer", "completed_at"]
    assert completed == store.events()["at"].iloc[-1]


def test_phase_needs_resources_read_and_exercises_passed(store: ProgressStore) -> None:
    def phase1() -> ChecklistStatus:
        return store.checklist()[0]

    assert phase1().missing == (
        "Distributed Transaction Basics",
        "Catch the broken money transfer",
        "ACID in Distributed Systems",
        "Serializability across sites",
    )
    store.mark_many(["p1.basics", "p1.acid"])
    assert not phase1().done
    assert phase1().missing == ("Catch the broken money transfer", "Serializability across sites")
    store.mark("p1.transfer")
    assert not phase1().done
    store.mark("p1.serializability")
    assert phase1().done and phase1().missing == ()
    assert [c.done for c in store.checklist()] == [True, False, False, False]
    store.unmark("p1.acid")
    assert not phase1().done
    assert phase1().missing == ("ACID in Distributed Systems",)


def test_exercises_alone_do_not_complete_a_phase(store: ProgressStore) -> None:
    store.mark_many(["p1.transfer", "p1.serializability"])
    assert not store.checklist()[0].done


def test_supplementary_needs_every_additional_resource_and_video(store: ProgressStore) -> None:
    store.mark_many(SUPPLEMENTARY[:-1])
    supplementary = store.checklist()[3]
    assert supplementary.text == "Supplementary materials reviewed"
    assert not supplementary.done
    assert supplementary.missing == (
        "Use CockroachDB & Parallel Commits For Faster Application Performance (ESCAPE/19)",
    )
    store.mark(SUPPLEMENTARY[-1])
    assert store.checklist()[3].done
    assert [c.done for c in store.checklist()[:3]] == [False, False, False]


def test_minutes_and_summary(store: ProgressStore) -> None:
    planned = store.syllabus.total_minutes
    estimated = store.syllabus.total_exercise_minutes
    assert store.minutes() == (0, planned)
    assert store.exercise_minutes() == (0, estimated)
    store.mark_many([*PHASE1, "video.kleppmann-2pc", "video.mit-6824-l12"])
    assert store.minutes() == (30 + 35 + 19, planned)
    assert store.exercise_minutes() == (30 + 45, estimated)
    summary = store.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["minutes"] == {"done": 84, "planned": planned}
    assert summary["exercise_minutes"] == {"done": 75, "planned": estimated}
    assert summary["version"] == store.version() == 6
    phase1 = summary["phases"][0]
    assert phase1["done"] is True
    assert phase1["points"] == {"done": 20, "total": 20}
    assert phase1["exercises"] == {"done": 2, "total": 2}
    assert phase1["minutes"] == {"done": 65, "planned": 65}
    assert phase1["exercise_minutes"] == {"done": 75, "planned": 75}
    assert summary["phases"][1]["exercise_minutes"] == {"done": 0, "planned": 160}
    assert summary["phases"][1]["done"] is False
    assert summary["checklist"][0] == {
        "id": "check.phase1", "text": "Phase 1 completed", "done": True, "missing": [],
    }
    items = {item["id"]: item for item in summary["items"]}
    assert items["p1.basics"]["status"] == "done"
    assert (items["p1.basics"]["reading_minutes"], items["p1.basics"]["exercise_minutes"]) == (
        30, 0,
    )
    assert (items["p1.transfer"]["reading_minutes"], items["p1.transfer"]["exercise_minutes"]) == (
        0, 30,
    )
    assert items["p1.basics"]["completed_at"].startswith("2025-01-01T12:00:01")
    assert items["p2.twopc"]["status"] == "todo"
    assert items["p2.twopc"]["completed_at"] is None


def test_minute_totals_per_phase_keep_reading_and_exercises_apart(
    store: ProgressStore,
) -> None:
    phase2 = store.syllabus.phase("phase2")
    assert store.minute_totals("phase2") == Minutes(0, 105, 0, 160)
    store.mark_many(["p2.twopc", "p2.blocking", "video.kleppmann-2pc"])
    totals = store.minute_totals("phase2")
    assert totals == Minutes(40, phase2.minutes, 15, phase2.exercise_minutes)
    assert (totals.done, totals.planned) == (55, 265)
    assert totals.describe() == "reading 40 of 105 minutes + exercises 15 of about 160 minutes"
    assert totals.describe("reading", unit="min") == (
        "reading 40 of 105 min + exercises 15 of about 160 min"
    )
    # Videos belong to no phase: they count in the whole course's totals only.
    assert store.minute_totals().reading_done == 40 + 19
    assert Minutes(5, 10, 0, 0).describe("read") == "read 5 of 10 minutes"


def test_version_changes_only_with_events(store: ProgressStore) -> None:
    before = store.version()
    store.view()
    store.summary()
    assert store.version() == before
    store.mark("p1.basics")
    assert store.version() > before


def test_events_of_items_no_longer_in_the_syllabus_are_kept_but_not_shown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.sqlite"
    ProgressStore(path)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO events (item_id, kind, at, source) "
            "VALUES ('p0.retired', 'read', '2024-01-01T00:00:00+00:00', 'cli')"
        )
    connection.close()
    store = ProgressStore(path)
    assert store.events()["item_id"].tolist() == ["p0.retired"]
    assert "p0.retired" not in store.view().index


def test_reading_writes_nothing_to_stderr_and_warns_nothing(
    store: ProgressStore, capfd: pytest.CaptureFixture[str]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.mark_many(["p1.basics", "p2.threepc"])
        store.view()
        store.events()
        store.summary()
        store.checklist()
        ProgressStore(store.path).view()
    assert capfd.readouterr().err == ""


def test_a_custom_syllabus_is_used(tmp_path: Path) -> None:
    syllabus = load_syllabus()
    store = ProgressStore(tmp_path / "p.sqlite", syllabus=syllabus)
    assert store.syllabus is syllabus


# --- refusing files that are not ours -------------------------------------------------


def test_corrupt_file_is_refused_and_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite"
    path.write_bytes(b"my thesis draft\n" * 200)
    before = digest(path)
    with pytest.raises(ProgressError) as raised:
        ProgressStore(path)
    message = str(raised.value)
    assert str(path) in message
    assert "not a SQLite database" in message
    assert "move it aside" in message and "DTCOURSE_PROGRESS" in message
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.sqlite"]


def test_empty_file_is_refused_and_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite"
    path.touch()
    with pytest.raises(ProgressError, match="empty file"):
        ProgressStore(path)
    assert path.read_bytes() == b""


def test_foreign_sqlite_file_is_refused_and_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE photos (name TEXT)")
    connection.execute("INSERT INTO photos VALUES ('beach.jpg')")
    connection.commit()
    connection.close()
    before = digest(path)
    with pytest.raises(ProgressError, match="another application.*move it aside"):
        ProgressStore(path)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.sqlite"]


def test_foreign_file_with_an_events_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    connection.commit()
    connection.close()
    before = digest(path)
    with pytest.raises(ProgressError, match="another application"):
        ProgressStore(path)
    assert digest(path) == before


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite"
    ProgressStore(path)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(ProgressError, match="newer dtcourse"):
        ProgressStore(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProgressError, match="is a directory"):
        ProgressStore(tmp_path)


def test_store_that_vanishes_is_not_silently_recreated(tmp_path: Path) -> None:
    store = ProgressStore(tmp_path / "p.sqlite")
    store.path.unlink()
    with pytest.raises(ProgressError, match="cannot open the progress store"):
        store.mark("p1.basics")
    assert not store.path.exists()


# --- concurrency and crashes ----------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from dtcourse.runtime.progress import ProgressStore

path, start, count, name = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = ProgressStore(path)
items = [item.id for item in store.syllabus.trackable_items()]
while not start.exists():
    time.sleep(0.005)
for n in range(count):
    event_id = store.mark(items[n % len(items)], source=name)
    print(event_id, flush=True)
"""


def writer(path: Path, start: Path, count: int, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), str(count), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "progress.sqlite"
    start = tmp_path / "start"
    processes = [writer(path, start, 500, name) for name in ("kernel-a", "kernel-b")]
    start.touch()
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert err == ""
    printed = [sorted(int(line) for line in out.split()) for out, _ in outputs]
    events = ProgressStore(path).events()
    assert len(events) == 1000
    assert events["source"].value_counts().to_dict() == {"kernel-a": 500, "kernel-b": 500}
    assert sorted(events["id"]) == sorted(printed[0] + printed[1]) == list(range(1, 1001))
    for name, ids in zip(("kernel-a", "kernel-b"), printed, strict=True):
        assert set(events.loc[events["source"] == name, "id"]) == set(ids)


def test_a_killed_writer_leaves_every_committed_event(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite"
    start = tmp_path / "start"
    start.touch()
    process = writer(path, start, 1_000_000, "kernel")
    assert process.stdout is not None
    committed = []
    for line in process.stdout:
        committed.append(int(line))
        if len(committed) == 200:
            break
    os.kill(process.pid, signal.SIGKILL)
    out, _ = process.communicate(timeout=60)
    committed.extend(int(line) for line in out.split())
    assert process.returncode == -signal.SIGKILL
    store = ProgressStore(path)
    ids = set(store.events()["id"])
    assert set(committed) <= ids
    assert store.version() >= max(committed)
    store.mark("p1.basics")  # still writable
    assert store.view().loc["p1.basics", "status"] == "done"
