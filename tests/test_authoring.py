"""The phase text files become nbgrader notebooks with points from the syllabus."""

from pathlib import Path

import pytest
from dtcourse_instructor.authoring import convert, exercise_of_grade_id, grade_id, write_notebook
from dtcourse_instructor.grading import failure_reason

from dtcourse.errors import GradingError
from dtcourse.runtime.syllabus import load_syllabus

HEADER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""


def phase_text(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "phase.py"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


GOOD = """
# %% [markdown]
# # Title

# %% dtcourse={"locked": true}
import dtcourse

# %% tags=["parameters"]
seed = 1

# %% dtcourse={"solution": "p1.transfer"}
def audit():
    ### BEGIN SOLUTION
    return []
    ### END SOLUTION

# %% dtcourse={"test": "p1.transfer", "points": 4}
assert audit() == []

# %% dtcourse={"test": "p1.transfer", "points": 6}
assert not audit()
"""


def test_convert_translates_marks_into_nbgrader_metadata(tmp_path):
    notebook = convert(phase_text(tmp_path, GOOD), load_syllabus())
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    locked, parameters, solution, first, second = notebook.cells[1:]
    assert locked.metadata["nbgrader"]["locked"] is True
    assert parameters.metadata["tags"] == ["parameters"]
    assert "nbgrader" not in parameters.metadata
    assert solution.metadata["nbgrader"]["solution"] is True
    assert solution.metadata["nbgrader"]["grade_id"] == "p1-transfer-solution1"
    assert first.metadata["nbgrader"] == {
        "grade": True,
        "grade_id": "p1-transfer-test1",
        "locked": True,
        "points": 4,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    assert second.metadata["nbgrader"]["grade_id"] == "p1-transfer-test2"
    assert all("lines_to_next_cell" not in cell.metadata for cell in notebook.cells)


def test_points_must_match_the_syllabus(tmp_path):
    body = GOOD.replace('"points": 6', '"points": 5')
    with pytest.raises(GradingError, match="worth 9 points, but the syllabus gives it 10"):
        convert(phase_text(tmp_path, body), load_syllabus())


def test_unknown_exercise_is_named(tmp_path):
    body = GOOD.replace('{"solution": "p1.transfer"}', '{"solution": "p1.nope"}')
    with pytest.raises(GradingError, match="unknown exercise id 'p1.nope'"):
        convert(phase_text(tmp_path, body), load_syllabus())


def test_solution_cell_needs_a_solution_region(tmp_path):
    body = GOOD.replace("    ### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", "")
    with pytest.raises(GradingError, match="BEGIN SOLUTION"):
        convert(phase_text(tmp_path, body), load_syllabus())


def test_write_notebook_reports_changes_only(tmp_path):
    notebook = convert(phase_text(tmp_path, GOOD), load_syllabus())
    target = tmp_path / "out" / "n.ipynb"
    assert write_notebook(notebook, target) is True
    assert write_notebook(notebook, target) is False


def test_grade_ids_map_back_to_exercises():
    syllabus = load_syllabus()
    assert grade_id("p2.twopc.participant", "test3") == "p2-twopc-participant-test3"
    assert exercise_of_grade_id("p2-twopc-participant-test3", syllabus) == "p2.twopc.participant"
    assert exercise_of_grade_id("locked-1", syllabus) is None


def test_failure_reason_names_the_cause():
    log = "Traceback...\nnbclient.exceptions.DeadKernelError: Kernel died\n[ERROR] There was"
    assert "kernel died" in failure_reason(log)
    assert failure_reason("[ERROR] something odd") == "something odd"
