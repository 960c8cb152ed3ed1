"""Write the visible cases' expected results into the student package.

Each reference module with a ``visible_cases()`` gives one JSON file,
``dtcourse/runtime/checks/data/<exercise id>.json``; the student's visible check reads it
with ``dtcourse.runtime.checks.casedata.load_cases``. Files are written only when their
content changes, and ``make test`` regenerates them and fails on any drift.
"""

from __future__ import annotations

import json
from pathlib import Path

from dtcourse.runtime.checks.casedata import FORMAT
from dtcourse.runtime.syllabus import load_syllabus
from dtcourse_instructor.reference import module_for

__all__ = ["CASES_FOLDER", "render_cases", "write_cases"]

# Where the case files live in the course repository (the student package's source).
CASES_FOLDER = Path("dtcourse", "runtime", "checks", "data")


def render_cases() -> dict[str, str]:
    """File name -> JSON text, for every exercise whose reference has visible cases."""
    rendered: dict[str, str] = {}
    for exercise in load_syllabus().exercises:
        try:
            module = module_for(exercise.id)
        except ModuleNotFoundError:
            continue
        make = getattr(module, "visible_cases", None)
        if make is None:
            continue
        document = {"format": FORMAT, "exercise": exercise.id, "cases": make()}
        rendered[f"{exercise.id}.json"] = json.dumps(document, indent=1, sort_keys=True) + "\n"
    return rendered


def write_cases(folder: Path) -> list[Path]:
    """Write every case file that changed; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_cases().items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
