"""A correct answer keeps its points when the code it runs writes to stderr."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from dtcourse_instructor.course_folder import course_root
from dtcourse_instructor.grading import generate_release, grade
from dtcourse_instructor.preprocessors import STDERR_MARK
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.slow

SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
ANSWERS = {
    "quiet": "def double(x):\n    return 2 * x",
    "logging": "import logging\n\ndef double(x):\n    logging.warning('doubling %s', x)\n"
    "    return 2 * x",
    "stderr": "import sys\n\ndef double(x):\n    print('doubling', x, file=sys.stderr)\n"
    "    return 2 * x",
    "wrong_and_noisy": "import sys\n\ndef double(x):\n    print('doubling', file=sys.stderr)\n"
    "    return 3 * x",
}


def _meta(**fields: object) -> dict:
    base = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False}
    return {"nbgrader": {**base, **fields}}


def _path(root: Path, folder: str, student: str | None = None) -> Path:
    base = root / folder if student is None else root / folder / student
    path = base / "a1" / "a1.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_stderr_from_student_code_is_shown_but_costs_nothing(tmp_path: Path) -> None:
    (tmp_path / "nbgrader_config.py").write_text(
        (course_root() / "nbgrader_config.py").read_text(encoding="utf-8")
    )
    source = new_notebook(
        cells=[
            new_code_cell(SOLUTION, metadata=_meta(solution=True, grade_id="double-solution")),
            new_code_cell(
                "assert double(2) == 4, 'double(2) should be 4'",
                metadata=_meta(grade=True, locked=True, grade_id="double-test", points=2),
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(source, _path(tmp_path, "source"))
    generate_release(tmp_path, ["a1"])
    for student, code in ANSWERS.items():
        notebook = nbformat.read(_path(tmp_path, "release"), as_version=4)
        notebook.cells[0].source = code
        nbformat.write(notebook, _path(tmp_path, "submitted", student))
    report = grade(tmp_path, ["a1"], report=lambda line: None)
    scores = {cell.student: cell.score for cell in report.scores}
    assert scores == {"quiet": 2, "logging": 2, "stderr": 2, "wrong_and_noisy": 0}
    graded = nbformat.read(_path(tmp_path, "autograded", "logging"), as_version=4)
    texts = [out.get("text", "") for out in graded.cells[1].outputs]
    assert any(STDERR_MARK in text and "doubling 2" in text for text in texts), texts
