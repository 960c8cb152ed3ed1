"""``course/`` text -> ``source/`` notebooks -> the student release, in one step.

Authoring (text to notebook) and nbgrader (notebook to release) stay separate modules;
this one only sequences them, so neither needs the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from dtcourse.errors import GradingError
from dtcourse.runtime.syllabus import load_syllabus
from dtcourse_instructor.authoring import convert, select_phases, write_notebook
from dtcourse_instructor.casedata import (
    CASES_FOLDER,
    PACKAGE_FOLDER,
    write_cases,
    write_package_data,
)
from dtcourse_instructor.course_folder import course_root
from dtcourse_instructor.grading import generate_release

__all__ = ["build"]


def build(
    root: Path | None = None,
    phases: Iterable[str] | None = None,
    release: bool = True,
    report: Callable[[str], None] = print,
) -> None:
    """Regenerate ``source/`` from ``course/`` and, unless told otherwise, ``release/``."""
    root = course_root(root)
    report(f"course folder: {root}")
    syllabus = load_syllabus()
    chosen = select_phases(syllabus, phases)
    for phase_file in chosen:
        text = root / phase_file.text
        if not text.exists():
            raise GradingError(f"{text} is missing: every phase needs its jupytext file")
        changed = write_notebook(convert(text, syllabus), root / phase_file.source)
        report(f"{phase_file.source}: {'updated' if changed else 'unchanged'}")
    for path in [*write_cases(root / CASES_FOLDER), *write_package_data(root / PACKAGE_FOLDER)]:
        report(f"{path.relative_to(root)}: updated")
    if release:
        generate_release(root, (phase_file.assignment for phase_file in chosen))
        for phase_file in chosen:
            report(f"{phase_file.release}: generated")
