"""Write the visible cases' expected results into the student package.

Each reference module with a ``visible_cases()`` gives one JSON file,
``dtcourse/runtime/checks/data/<exercise id>.json``; the student's visible check reads it
with ``dtcourse.runtime.checks.casedata.load_cases``. A reference module may also define
``package_data()``: JSON documents by path under ``dtcourse/``, for other layers of the
student package that show what a reference does without shipping it (recorded runs, the
costs of nodes that answer an exercise); each module there reads its own file. Files are
written only when their content changes, and ``make test`` regenerates them and fails on
any drift.
"""

from __future__ import annotations

import json
from pathlib import Path

from dtcourse.runtime.checks.casedata import FORMAT
from dtcourse.runtime.syllabus import load_syllabus
from dtcourse_instructor.reference import module_for

__all__ = [
    "CASES_FOLDER",
    "PACKAGE_FOLDER",
    "render_cases",
    "render_package_data",
    "write_cases",
    "write_package_data",
]

# Where the case files live in the course repository (the student package's source).
CASES_FOLDER = Path("dtcourse", "runtime", "checks", "data")
PACKAGE_FOLDER = Path("dtcourse")


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


def render_package_data() -> dict[Path, str]:
    """Path under ``dtcourse/`` -> JSON text, from every reference's ``package_data()``."""
    rendered: dict[Path, str] = {}
    for exercise in load_syllabus().exercises:
        try:
            module = module_for(exercise.id)
        except ModuleNotFoundError:
            continue
        make = getattr(module, "package_data", None)
        if make is None:
            continue
        for name, document in make().items():
            path = Path(name)
            if path.is_absolute() or ".." in path.parts or path.suffix != ".json":
                raise ValueError(f"{module.__name__}.package_data: bad path {name!r}")
            rendered[path] = json.dumps(document, indent=1, sort_keys=True) + "\n"
    return rendered


def _write_changed(files: dict[Path, str]) -> list[Path]:
    written = []
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def write_cases(folder: Path) -> list[Path]:
    """Write every case file that changed; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    return _write_changed({folder / name: text for name, text in render_cases().items()})


def write_package_data(folder: Path) -> list[Path]:
    """Write every ``package_data()`` file that changed under ``folder`` (the source of
    the ``dtcourse`` package); returns the files written."""
    return _write_changed({folder / name: text for name, text in render_package_data().items()})
