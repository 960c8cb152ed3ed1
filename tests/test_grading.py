"""Grading survives mangled submissions: each is graded or reported with a reason.

A small assignment keeps this fast; the real phases' round trips are in test_course.py.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from dtcourse_instructor.course_folder import course_root
from dtcourse_instructor.grading import generate_release, grade
from leak_support import leftover_folders
from nbformat.v4 import new_code_cell, new_notebook

from dtcourse.errors import GradingError

pytestmark = pytest.mark.slow


def _meta(**fields: object) -> dict:
    base = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False}
    return {"nbgrader": {**base, **fields}}


SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"


def _source() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            # As in the phase notebooks: under nbgrader, progress goes to a scratch store.
            new_code_cell('from dtcourse.runtime.notebook import setup\nsetup("0.0.0")'),
            new_code_cell(SOLUTION, metadata=_meta(solution=True, grade_id="double-solution")),
            new_code_cell(
                "assert double(2) == 4, 'double(2) should be 4'",
                metadata=_meta(grade=True, locked=True, grade_id="double-test1", points=1),
            ),
            new_code_cell(
                "### BEGIN HIDDEN TESTS\nassert double(21) == 42, 'wrong'\n### END HIDDEN TESTS",
                metadata=_meta(grade=True, locked=True, grade_id="double-test2", points=2),
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("grading")
    config = (course_root() / "nbgrader_config.py").read_text(encoding="utf-8")
    (root / "nbgrader_config.py").write_text(config + "\nc.Execute.timeout = 5\n")
    nbformat.write(_source(), _path(root, "source", None))
    generate_release(root, ["a1"])
    return root


def _path(root: Path, folder: str, student: str | None) -> Path:
    base = root / folder if student is None else root / folder / student
    path = base / "a1" / "a1.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _submit(root: Path, student: str, change) -> None:
    notebook = nbformat.read(_path(root, "release", None), as_version=4)
    answer = notebook.cells[1]
    answer.source = "def double(x):\n    return 2 * x"
    result = change(notebook)
    target = _path(root, "submitted", student)
    if isinstance(result, str):
        target.write_text(result, encoding="utf-8")
    else:
        nbformat.write(notebook, target)


def _with_answer(code: str):
    def change(notebook):
        notebook.cells[1].source = code

    return change


def _delete_tests(notebook):
    del notebook.cells[2:]


def _edit_tests(notebook):
    notebook.cells[2].source = "pass"
    notebook.cells[1].source = "def double(x):\n    return 0"


def test_mangled_submissions_are_graded_or_reported_and_never_stop_the_others(course, capfd):
    cases = {
        "alice": lambda notebook: None,  # a correct answer
        "deleted": _delete_tests,
        "edited": _edit_tests,
        "garbled": lambda notebook: '{"cells": [',
        "looping": _with_answer("while True:\n    pass"),
        "exiting": _with_answer("import sys\nsys.exit(3)"),
        "killing": _with_answer("import os\nos._exit(1)"),
        "shouting": _with_answer(
            "for i in range(100000):\n    print('x' * 80)\ndef double(x):\n    return 2 * x"
        ),
    }
    for student, change in cases.items():
        _submit(course, student, change)
    report = grade(course, ["a1"], report=print)
    printed, errors = capfd.readouterr()  # the kernels' own output too
    scores: dict[str, float] = {}
    for cell in report.scores:
        scores[cell.student] = scores.get(cell.student, 0.0) + cell.score
    problems = {student: reason for student, _, reason in report.problems}

    assert scores["alice"] == 3
    assert scores["shouting"] == 3  # huge output is cut, the answer still counts
    assert scores["edited"] == 0  # tests are restored from the gradebook: editing them fails
    assert scores["looping"] == 0 and scores["exiting"] == 0
    assert scores["deleted"] == 0  # deleted test cells count as failed, not as missing work
    assert "not valid notebook JSON" in problems["garbled"]
    assert "kernel died" in problems["killing"]
    for student in cases:
        assert f"{student} a1:" in printed, f"no progress line for {student}"
        assert student in scores or student in problems
    assert "Traceback" not in printed
    # Only the tool's progress: no kernel warns about TCP (or anything else) on the terminal.
    assert errors == "", errors
    assert all(line.startswith("[") for line in printed.splitlines()), printed
    # No scratch folder outlives its submission, not even the one whose kernel died.
    assert leftover_folders(Path(tempfile.gettempdir())) == []


def test_grading_with_no_submissions_says_where_they_go(tmp_path):
    shutil.copy(course_root() / "nbgrader_config.py", tmp_path)
    with pytest.raises(GradingError, match="submitted/<student>/<phase>"):
        grade(tmp_path, ["a1"], report=lambda line: None)


def test_the_feedback_holds_no_hidden_test(course):
    page = next((course / "feedback" / "alice" / "a1").glob("*.html")).read_text()
    assert "double(21)" not in page


def test_grading_a_fresh_clone_records_the_gradebook_from_source_and_says_so(course, tmp_path):
    clone = tmp_path / "clone"  # what git clone gives: source/ and release/, no gradebook.db
    clone.mkdir()
    shutil.copy(course / "nbgrader_config.py", clone)
    for folder in ("source", "release"):
        shutil.copytree(course / folder, clone / folder)
    release = _path(clone, "release", None).read_bytes()
    _submit(clone, "bob", lambda notebook: None)
    lines: list[str] = []
    report = grade(clone, ["a1"], report=lines.append)
    assert report.problems == []
    assert sum(cell.score for cell in report.scores) == 3
    assert any(
        line.startswith("gradebook: recorded a1 from source/a1") and "release/ is left" in line
        for line in lines
    ), lines
    assert _path(clone, "release", None).read_bytes() == release
    assert leftover_folders(Path(tempfile.gettempdir())) == []
    # The second time the gradebook has it: nothing is recorded again.
    lines.clear()
    grade(clone, ["a1"], report=lines.append)
    assert not any(line.startswith("gradebook:") for line in lines), lines


def test_grading_without_source_or_gradebook_says_to_build_first(tmp_path):
    shutil.copy(course_root() / "nbgrader_config.py", tmp_path)
    nbformat.write(_source(), _path(tmp_path, "submitted", "bob"))
    with pytest.raises(GradingError, match="no source/a1 .* run `dtcourse build`"):
        grade(tmp_path, ["a1"], report=lambda line: None)
