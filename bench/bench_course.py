"""The course's two time targets, measured on this machine.

* each phase notebook under papermill with the CI parameters (target: under 60 s each);
* grading one student's three phases: autograde, feedback and scores (target: under 60 s).

Works on a temporary copy of the course; prints the numbers, asserts nothing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from dtcourse_instructor.authoring import phase_files
from dtcourse_instructor.course_folder import course_root
from dtcourse_instructor.grading import generate_release, grade
from dtcourse_instructor.runner import run_notebooks

from dtcourse.runtime.syllabus import load_syllabus


def main() -> None:
    root = course_root()
    copy = Path(tempfile.mkdtemp(prefix="dtcourse-bench-"))
    for name in ("course", "source", "release"):
        shutil.copytree(root / name, copy / name)
    shutil.copy(root / "nbgrader_config.py", copy)
    phases = phase_files(load_syllabus())

    print("papermill, CI parameters (target < 60 s each):")
    results = run_notebooks(
        [copy / phase.source for phase in phases], copy / "executed", report=lambda line: None
    )
    for result in results:
        verdict = "ok" if result.error is None else f"FAILED: {result.error}"
        print(f"  {result.notebook.name:<32} {result.seconds:6.1f} s  {verdict}")

    generate_release(copy, [phase.assignment for phase in phases])  # fills the gradebook
    for phase in phases:
        target = copy / "submitted" / "student" / phase.assignment
        target.mkdir(parents=True)
        shutil.copy(copy / phase.source, target)
    started = time.perf_counter()
    report = grade(copy, [phase.assignment for phase in phases], report=lambda line: None)
    total = time.perf_counter() - started
    print("grading one student's three phases (target < 60 s):")
    for (_student, assignment), seconds in report.seconds.items():
        print(f"  {assignment:<32} {seconds:6.1f} s")
    score = sum(cell.score for cell in report.scores)
    print(f"  {'total':<32} {total:6.1f} s  (score {score:g})")
    for problem in report.problems:
        print(f"  not graded: {problem}")
    shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()
