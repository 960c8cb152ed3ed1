from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dtcourse.cli import main
from dtcourse.runtime.progress import ProgressStore

VENV_BIN = Path(sys.executable).parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_groups_by_phase_with_checklist_and_minutes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "progress")
    assert (code, err) == (0, "")
    phase_lines = [line for line in out.splitlines() if line.startswith("Phase ")]
    assert phase_lines == [
        "Phase 1: Foundations  (reading 0 of 65 min + exercises 0 of about 75 min)",
        "Phase 2: Core Concepts  (reading 0 of 105 min + exercises 0 of about 160 min)",
        "Phase 3: Advanced Topics  (reading 0 of 75 min + exercises 0 of about 100 min)",
    ]
    assert (
        "1. Two-Phase Commit (Article, reading 40 min + exercises about 70 min)" in out
    )
    assert "exercise: 2PC coordinator (15 points, about 30 min)" in out
    assert out.index("p1.basics") < out.index("p1.transfer") < out.index("Phase 2:")
    assert "[ ] p2.twopc.coordinator" in out
    assert "Completion checklist" in out
    assert "[ ] Phase 1 completed (to do: Distributed Transaction Basics;" in out
    assert (
        "Minutes: reading and videos 0 of 305 minutes + exercises 0 of about 335 minutes"
        in out
    )
    assert "Supplementary videos: Distributed Transactions" in out
    assert "Supplementary videos: Transaction Processing" in out


def test_mark_then_table_and_json(
    capsys: pytest.CaptureFixture[str], isolated_progress_store: Path
) -> None:
    code, out, _ = run(capsys, "progress", "mark", "p1.basics", "p1.transfer", "extra.ds")
    assert code == 0
    assert out.splitlines() == [
        "p1.basics: Distributed Transaction Basics: read",
        "p1.transfer: Catch the broken money transfer: passed",
        "extra.ds: Distributed Systems: reviewed",
    ]
    code, out, _ = run(capsys, "progress")
    assert "[x] p1.basics" in out and "[x] p1.transfer" in out and "[ ] p1.acid" in out
    assert "Phase 1: Foundations  (reading 30 of 65 min + exercises 30 of about 75 min)" in out
    assert (
        "Minutes: reading and videos 30 of 305 minutes + exercises 30 of about 335 minutes"
        in out
    )

    code, out, _ = run(capsys, "progress", "--json")
    summary = json.loads(out)
    assert summary == ProgressStore(isolated_progress_store).summary()
    assert summary["minutes"] == {"done": 30, "planned": 305}
    assert summary["exercise_minutes"] == {"done": 30, "planned": 335}
    assert [c["done"] for c in summary["checklist"]] == [False, False, False, False]

    code, out, _ = run(capsys, "progress", "unmark", "p1.basics")
    assert (code, out) == (0, "p1.basics: Distributed Transaction Basics: unread\n")
    assert ProgressStore(isolated_progress_store).minutes()[0] == 0


def test_completing_a_phase_ticks_its_checklist_line(capsys: pytest.CaptureFixture[str]) -> None:
    items = ["p1.basics", "p1.transfer", "p1.acid", "p1.serializability"]
    assert run(capsys, "progress", "mark", *items)[0] == 0
    _, out, _ = run(capsys, "progress")
    assert "  [x] Phase 1 completed\n" in out
    assert "  [ ] Phase 2 completed (to do:" in out


def test_store_option_overrides_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, isolated_progress_store: Path
) -> None:
    other = tmp_path / "elsewhere" / "mine.sqlite"
    assert run(capsys, "progress", "mark", "p1.acid", "--store", str(other))[0] == 0
    assert run(capsys, "progress", "--store", str(other), "mark", "p1.basics")[0] == 0
    assert ProgressStore(other).version() == 2
    assert not isolated_progress_store.exists()
    _, out, _ = run(capsys, "progress", "--store", str(other), "--json")
    assert json.loads(out)["store"] == str(other)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["progress", "mark", "p1.nope"], "unknown item 'p1.nope'"),
        (["progress", "unmark", "check.phase2"], "'check.phase2' is a checklist line"),
    ],
)
def test_bad_item_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str,
    isolated_progress_store: Path,
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("dtcourse: error: ")
    assert fragment in err
    assert "Traceback" not in err
    assert ProgressStore(isolated_progress_store).version() == 0


def test_mark_with_one_bad_item_records_none(
    capsys: pytest.CaptureFixture[str], isolated_progress_store: Path
) -> None:
    assert run(capsys, "progress", "mark", "p1.basics", "p1.nope")[0] == 2
    assert ProgressStore(isolated_progress_store).version() == 0


def test_corrupt_store_is_one_line(
    capsys: pytest.CaptureFixture[str], isolated_progress_store: Path
) -> None:
    isolated_progress_store.parent.mkdir(parents=True)
    isolated_progress_store.write_text("not a database")
    code, _, err = run(capsys, "progress")
    assert code == 2
    assert err.count("\n") == 1 and "move it aside" in err
    assert isolated_progress_store.read_text() == "not a database"


@pytest.mark.parametrize("argv", [["progress"], ["progress", "mark"], ["progress", "unmark"]])
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--store" in out
    assert f"usage: dtcourse {' '.join(argv)}" in out


def test_entry_point_prints_json(isolated_progress_store: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "dtcourse"), "progress", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "DTCOURSE_PROGRESS": str(isolated_progress_store)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["store"] == str(isolated_progress_store)
    assert len(summary["items"]) == 27


def test_entry_point_bad_item_has_no_traceback(
    isolated_progress_store: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "dtcourse"), "progress", "mark", "bogus"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "DTCOURSE_PROGRESS": str(isolated_progress_store)},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unknown item 'bogus'" in result.stderr
