"""One version number, the instructor commands reached through entry points, and the
import rules of docs/architecture.md."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import dtcourse
from dtcourse.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def test_one_version_everywhere() -> None:
    number = (REPO / "VERSION").read_text(encoding="utf-8").strip()
    assert dtcourse.__version__ == number
    assert version("dtcourse-instructor") == number
    for text in sorted((REPO / "course").glob("phase*.py")):
        found = set(re.findall(r'setup\("([^"]+)"', text.read_text(encoding="utf-8")))
        assert found == {number}, (text.name, found)


def test_instructor_commands_come_through_entry_points() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"build", "run", "grade"} <= set(commands)
    assert {"lab", "progress", "check", "simulate", "costs", "bank"} <= set(commands)
    for name in ("build", "run", "grade"):
        handler = commands[name].get_default("func")
        assert handler.__module__.startswith("dtcourse_instructor.cli.")


def test_import_rules_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(linter)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "BROKEN" not in done.stdout
