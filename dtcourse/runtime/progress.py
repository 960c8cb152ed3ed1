"""The progress store: what a student has read, passed and reviewed.

Progress is an append-only log of events in a small SQLite file, because a student often
has two kernels open (two phase notebooks) and both may record at once: WAL mode, a busy
timeout and one short transaction per write make that safe, and nothing is ever updated
or deleted, so a crash can lose at most the event being written. Everything shown to the
student (the table, the checklist, minutes) is derived from the log; the latest event of
an item decides its status.

Event kinds, per item kind (the first of each pair completes the item, the second undoes
it):

============  ============  ==============
item kind     done          not done
============  ============  ==============
resource      ``read``      ``unread``
exercise      ``passed``    ``failed``
additional    ``reviewed``  ``unreviewed``
video         ``reviewed``  ``unreviewed``
============  ============  ==============

A file that is not a dtcourse store (another program's SQLite file, or anything else) is
refused and never opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtcourse.errors import ProgressError, SyllabusError
from dtcourse.runtime.syllabus import Exercise, Resource, Syllabus, kind_of, load_syllabus

if TYPE_CHECKING:
    import pandas as pd

ENV_VAR = "DTCOURSE_PROGRESS"
APPLICATION_ID = 0x44544350  # "DTCP": marks the file as a dtcourse progress store
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 30.0

DONE_KIND: dict[str, str] = {
    "resource": "read",
    "exercise": "passed",
    "additional": "reviewed",
    "video": "reviewed",
}
UNDONE_KIND: dict[str, str] = {
    "resource": "unread",
    "exercise": "failed",
    "additional": "unreviewed",
    "video": "unreviewed",
}
EVENT_KINDS: frozenset[str] = frozenset(DONE_KIND.values()) | frozenset(UNDONE_KIND.values())

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_COLUMNS = ("id", "item_id", "kind", "at", "source")
_SCHEMA = f"""
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX events_item ON events (item_id, id);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""


def default_store_path() -> Path:
    """``$DTCOURSE_PROGRESS`` when set, else ``progress.sqlite`` in the user data dir."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return platformdirs.user_data_path("dtcourse", appauthor=False) / "progress.sqlite"


@dataclass(frozen=True)
class ChecklistStatus:
    """A checklist line and the titles of what still stands between it and done."""

    id: str
    text: str
    done: bool
    missing: tuple[str, ...]


@dataclass(frozen=True)
class ItemStatus:
    """One trackable item with its derived status.

    ``reading_minutes`` is the planned time to read or watch it (the learning path's
    duration for a resource, the running time for a video when known; 0 for an exercise;
    None when unknown); ``exercise_minutes`` is the estimated time of an exercise (0 for
    everything else). The two are kept apart because only the first is the learning path's.
    """

    id: str
    phase: str | None
    kind: str
    title: str
    reading_minutes: int | None
    exercise_minutes: int
    done: bool
    completed_at: str | None


@dataclass(frozen=True)
class Minutes:
    """Done and planned minutes, reading (and videos) apart from the exercise estimate."""

    reading_done: int
    reading_planned: int
    exercises_done: int
    exercises_planned: int

    @property
    def done(self) -> int:
        return self.reading_done + self.exercises_done

    @property
    def planned(self) -> int:
        return self.reading_planned + self.exercises_planned

    def describe(self, reading_label: str = "reading", unit: str = "minutes") -> str:
        """Done against planned, the learning path's minutes first, e.g. "reading 30 of 65
        minutes + exercises 0 of about 75 minutes"; the exercise part (an estimate, so
        "about") only when there are exercises."""
        text = f"{reading_label} {self.reading_done} of {self.reading_planned} {unit}"
        if self.exercises_planned:
            text += (
                f" + exercises {self.exercises_done} of about {self.exercises_planned} {unit}"
            )
        return text


class ProgressStore:
    """A handle on one progress file; cheap to create, holds no open connection."""

    def __init__(
        self,
        path: Path | str | None = None,
        syllabus: Syllabus | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        chosen = Path(path).expanduser() if path is not None else default_store_path()
        self._path = chosen.absolute()
        self._syllabus = syllabus if syllabus is not None else load_syllabus()
        self._clock = clock if clock is not None else _utc_now
        self._open_or_create()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def syllabus(self) -> Syllabus:
        return self._syllabus

    def __repr__(self) -> str:
        return f"ProgressStore({str(self._path)!r})"

    # --- writing ----------------------------------------------------------------------

    def mark(self, item_id: str, source: str = "cli") -> int:
        """Record that an item is done (read, passed or reviewed); returns the event id."""
        return self.mark_many([item_id], source)

    def unmark(self, item_id: str, source: str = "cli") -> int:
        """Record that an item is not done any more (unread, failed or unreviewed)."""
        return self.unmark_many([item_id], source)

    def mark_many(self, item_ids: Iterable[str], source: str = "cli") -> int:
        """Mark several items in one transaction: all are recorded or none is."""
        return self._append([(i, DONE_KIND[self._item_kind(i)]) for i in item_ids], source)

    def unmark_many(self, item_ids: Iterable[str], source: str = "cli") -> int:
        return self._append([(i, UNDONE_KIND[self._item_kind(i)]) for i in item_ids], source)

    def record(self, item_id: str, kind: str, source: str = "cli") -> int:
        """Append an event of an explicit kind, which must fit the item's kind."""
        item_kind = self._item_kind(item_id)
        allowed = (DONE_KIND[item_kind], UNDONE_KIND[item_kind])
        if kind not in allowed:
            raise ProgressError(
                f"event kind {kind!r} does not apply to {item_kind} {item_id!r}; "
                f"use {allowed[0]!r} or {allowed[1]!r}"
            )
        return self._append([(item_id, kind)], source)

    def _item_kind(self, item_id: object) -> str:
        if not isinstance(item_id, str):
            raise ProgressError(f"an item id must be a string, not {item_id!r}")
        try:
            return kind_of(self._syllabus.item(item_id))
        except SyllabusError as error:
            raise ProgressError(f"cannot record progress: {error}") from None

    def _append(self, events: list[tuple[str, str]], source: str) -> int:
        if not isinstance(source, str) or not _SOURCE.match(source):
            raise ProgressError(
                f"invalid event source {source!r}: use a short lowercase name such as "
                "'cli', 'widget', 'check' or 'notebook'"
            )
        if not events:
            raise ProgressError("nothing to record: name at least one item id")
        at = _isoformat(self._clock())
        rows = [(item_id, kind, at, source) for item_id, kind in events]
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT INTO events (item_id, kind, at, source) VALUES (?, ?, ?, ?)", rows
                )
                last = connection.execute("SELECT max(id) FROM events").fetchone()[0]
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
        return int(last)

    # --- reading ----------------------------------------------------------------------

    def version(self) -> int:
        """A counter that grows with every event: refresh a view only when it changed."""
        with self._connection() as connection:
            return int(connection.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def events(self) -> pd.DataFrame:
        """Every event in the order it was recorded (column ``id`` is that order)."""
        import pandas as pd

        with self._connection() as connection:
            rows = connection.execute(
                "SELECT id, item_id, kind, at, source FROM events ORDER BY id"
            ).fetchall()
        frame = pd.DataFrame(rows, columns=list(_COLUMNS))
        frame["id"] = frame["id"].astype("int64")
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        return frame

    def items(self) -> tuple[ItemStatus, ...]:
        """The status of every trackable item, in the syllabus's reading order."""
        latest = self._latest()
        statuses = []
        for item in self._syllabus.trackable_items():
            item_kind = kind_of(item)
            event = latest.get(item.id)
            done = event is not None and event[0] == DONE_KIND[item_kind]
            statuses.append(
                ItemStatus(
                    id=item.id,
                    phase=item.phase if isinstance(item, Resource | Exercise) else None,
                    kind=item_kind,
                    title=item.title,
                    reading_minutes=_planned_minutes(item),
                    exercise_minutes=item.minutes if isinstance(item, Exercise) else 0,
                    done=done,
                    completed_at=event[1] if done and event is not None else None,
                )
            )
        return tuple(statuses)

    def view(self) -> pd.DataFrame:
        """One row per trackable item, indexed by item id.

        Columns: ``phase`` (missing for additional resources and videos), ``kind``,
        ``title``, ``reading_minutes`` (planned: the learning path's duration for a
        resource, the running time for a video when known; 0 for an exercise; missing when
        unknown), ``exercise_minutes`` (the estimate for an exercise, 0 for anything else,
        so each column sums to its total), ``status`` (``done`` or ``todo``) and
        ``completed_at`` (UTC, missing unless done).
        """
        import pandas as pd

        statuses = self.items()
        frame = pd.DataFrame(
            {
                "phase": [s.phase for s in statuses],
                "kind": [s.kind for s in statuses],
                "title": [s.title for s in statuses],
                "reading_minutes": pd.array(
                    [s.reading_minutes for s in statuses], dtype="Int64"
                ),
                "exercise_minutes": pd.array(
                    [s.exercise_minutes for s in statuses], dtype="Int64"
                ),
                "status": ["done" if s.done else "todo" for s in statuses],
                "completed_at": pd.to_datetime(
                    [s.completed_at for s in statuses], utc=True, format="ISO8601"
                ),
            },
            index=pd.Index([s.id for s in statuses], name="item_id"),
        )
        return frame

    def checklist(self) -> tuple[ChecklistStatus, ...]:
        """The completion checklist: a phase is done when its resources are read and its
        exercises passed; the supplementary line when every additional resource and
        video is reviewed."""
        statuses = self.items()
        result = []
        for check in self._syllabus.checklist:
            if check.kind == "phase":
                members = [s for s in statuses if s.phase == check.phase]
            else:
                members = [s for s in statuses if s.kind in ("additional", "video")]
            missing = tuple(s.title for s in members if not s.done)
            result.append(ChecklistStatus(check.id, check.text, not missing, missing))
        return tuple(result)

    def minutes(self) -> tuple[int, int]:
        """(done, planned) reading minutes: resources and videos whose duration is known."""
        found = self.minute_totals()
        return found.reading_done, found.reading_planned

    def exercise_minutes(self) -> tuple[int, int]:
        """(done, planned) estimated exercise minutes; an exercise counts once passed."""
        found = self.minute_totals()
        return found.exercises_done, found.exercises_planned

    def minute_totals(self, phase_id: str | None = None) -> Minutes:
        """Reading and exercise minutes, done and planned; one phase's when named
        (then videos, which belong to no phase, are left out)."""
        statuses = [
            s for s in self.items() if phase_id is None or s.phase == phase_id
        ]
        return Minutes(
            reading_done=sum(s.reading_minutes or 0 for s in statuses if s.done),
            reading_planned=sum(s.reading_minutes or 0 for s in statuses),
            exercises_done=sum(s.exercise_minutes for s in statuses if s.done),
            exercises_planned=sum(s.exercise_minutes for s in statuses),
        )

    def summary(self) -> dict[str, Any]:
        """Everything in plain JSON types: items, phases, checklist and minutes."""
        statuses = self.items()
        by_id = {s.id: s for s in statuses}
        done_minutes = sum(s.reading_minutes or 0 for s in statuses if s.done)
        planned_minutes = sum(s.reading_minutes or 0 for s in statuses)
        exercises_done = sum(s.exercise_minutes for s in statuses if s.done)
        checklist = self.checklist()
        phases = []
        for phase in self._syllabus.phases:
            read = [r.id for r in phase.resources if by_id[r.id].done]
            passed = [e for e in phase.exercises if by_id[e.id].done]
            phases.append(
                {
                    "id": phase.id,
                    "number": phase.number,
                    "name": phase.name,
                    "done": len(read) == len(phase.resources)
                    and len(passed) == len(phase.exercises),
                    "resources": {"done": len(read), "total": len(phase.resources)},
                    "exercises": {"done": len(passed), "total": len(phase.exercises)},
                    "points": {
                        "done": sum(e.points for e in passed),
                        "total": phase.points,
                    },
                    "minutes": {
                        "done": sum(by_id[r].reading_minutes or 0 for r in read),
                        "planned": phase.minutes,
                    },
                    "exercise_minutes": {
                        "done": sum(e.minutes for e in passed),
                        "planned": phase.exercise_minutes,
                    },
                }
            )
        return {
            "title": self._syllabus.title,
            "store": str(self._path),
            "version": self.version(),
            "minutes": {"done": done_minutes, "planned": planned_minutes},
            "exercise_minutes": {
                "done": exercises_done,
                "planned": self._syllabus.total_exercise_minutes,
            },
            "phases": phases,
            "checklist": [
                {"id": c.id, "text": c.text, "done": c.done, "missing": list(c.missing)}
                for c in checklist
            ],
            "items": [
                {
                    "id": s.id,
                    "phase": s.phase,
                    "kind": s.kind,
                    "title": s.title,
                    "reading_minutes": s.reading_minutes,
                    "exercise_minutes": s.exercise_minutes,
                    "status": "done" if s.done else "todo",
                    "completed_at": s.completed_at,
                }
                for s in statuses
            ],
        }

    def _latest(self) -> dict[str, tuple[str, str]]:
        """item id -> (kind, time) of its latest event."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT e.item_id, e.kind, e.at FROM events AS e "
                "JOIN (SELECT item_id, max(id) AS id FROM events GROUP BY item_id) AS last "
                "ON e.id = last.id"
            ).fetchall()
        return {item_id: (kind, at) for item_id, kind, at in rows}

    # --- the file ---------------------------------------------------------------------

    def _open_or_create(self) -> None:
        if not self._path.exists() and not self._path.is_symlink():
            self._create()
        self._check()

    def _create(self) -> None:
        """Build the store under a temporary name, then link it into place.

        The store appears complete or not at all, so a crash can never leave a
        half-initialised file that would later be refused; if another process wins the
        race, its file is used.
        """
        parent = self._path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                dir=parent, prefix=f".{self._path.name}.", suffix=".new"
            )
            os.close(handle)
        except OSError as error:
            raise ProgressError(
                f"cannot create the progress store {self._path}: {error.strerror or error}; "
                f"set {ENV_VAR} to a writable location"
            ) from None
        temporary_path = Path(temporary)
        try:
            connection = sqlite3.connect(temporary_path, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
            finally:
                connection.close()
            try:
                os.link(temporary_path, self._path)
            except FileExistsError:
                pass
            except OSError:
                # A file system without hard links: fall back to a rename, which is
                # still atomic but must not replace a store created meanwhile.
                if not self._path.exists():
                    os.replace(temporary_path, self._path)
        except (OSError, sqlite3.Error) as error:
            raise ProgressError(
                f"cannot create the progress store {self._path}: {error}; "
                f"set {ENV_VAR} to a writable location"
            ) from None
        finally:
            for leftover in (temporary_path, *_sidecars(temporary_path)):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    def _refuse(self, problem: str) -> ProgressError:
        return ProgressError(
            f"{self._path} {problem}; it was left untouched: move it aside, or set "
            f"{ENV_VAR} (or --store) to another file"
        )

    def _check(self) -> None:
        """Refuse anything but a dtcourse store, reading the header without SQLite so a
        foreign database is never opened (opening may replay its journal)."""
        if self._path.is_dir():
            raise ProgressError(
                f"{self._path} is a directory; point {ENV_VAR} at a file such as "
                f"{self._path / 'progress.sqlite'}"
            )
        try:
            with self._path.open("rb") as handle:
                header = handle.read(100)
        except OSError as error:
            raise ProgressError(
                f"cannot read the progress store {self._path}: {error.strerror or error}"
            ) from None
        if not header:
            raise self._refuse("is an empty file, not a dtcourse progress store")
        if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
            raise self._refuse("is not a SQLite database (corrupt, or another program's file)")
        application_id = int.from_bytes(header[68:72], "big")
        user_version = int.from_bytes(header[60:64], "big")
        if application_id != APPLICATION_ID:
            raise self._refuse(
                "is a SQLite database of another application, not a dtcourse progress store"
            )
        if user_version > SCHEMA_VERSION:
            raise ProgressError(
                f"{self._path} was written by a newer dtcourse (store schema {user_version}, "
                f"this version reads {SCHEMA_VERSION}); upgrade dtcourse"
            )
        if user_version < 1:
            raise self._refuse("is an incomplete dtcourse progress store")
        with self._connection() as connection:
            columns = tuple(row[1] for row in connection.execute("PRAGMA table_info(events)"))
        if columns != _COLUMNS:
            raise self._refuse(f"has an unexpected events table (columns {columns})")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; SQLite errors become one clear ProgressError."""
        try:
            connection = sqlite3.connect(
                f"{self._path.as_uri()}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
            )
        except sqlite3.Error as error:
            raise ProgressError(f"cannot open the progress store {self._path}: {error}") from None
        try:
            connection.execute("PRAGMA synchronous = FULL")
            yield connection
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise ProgressError(
                    f"the progress store {self._path} stayed busy for "
                    f"{BUSY_TIMEOUT_SECONDS:.0f} s; close other programs using it and retry"
                ) from None
            raise ProgressError(f"progress store {self._path}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise self._refuse(f"is damaged ({error})") from None
        finally:
            connection.close()


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))


def _planned_minutes(item: Any) -> int | None:
    match kind_of(item):
        case "resource":
            return int(item.minutes)
        case "exercise":
            return 0
        case "video":
            return item.minutes
        case _:
            return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _isoformat(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ProgressError("the clock must return an aware datetime (with a time zone)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
