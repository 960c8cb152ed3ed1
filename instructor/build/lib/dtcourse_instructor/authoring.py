"""Turn the phase text files in ``course/`` into nbgrader source notebooks.

Authors mark cells with a compact ``dtcourse`` metadata key instead of nbgrader's verbose
schema, and the points come from the syllabus, so a grade can never disagree with the
data the checklist and the grades table use:

* ``dtcourse={"solution": "p1.transfer"}``: the student writes code here; nbgrader
  replaces the ``### BEGIN SOLUTION`` region with a stub.
* ``dtcourse={"test": "p1.transfer", "points": 4}``: an autograded test cell. The points of
  all test cells of an exercise must add up to the exercise's points in the syllabus.
* ``dtcourse={"locked": true}``: a read-only cell (setup, the version check).
* ``dtcourse={"answer": "p2.blocking", "points": 2}``: a manually graded Markdown answer.

Regions marked ``<!-- resources:phaseN -->`` are filled from the syllabus before conversion,
so resource lists are never retyped. The text form is read with jupytext; only metadata
nbgrader and papermill understand is written into the notebook.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from dtcourse.errors import GradingError
from dtcourse.runtime.syllabus import Syllabus

_GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_KEPT_CELL_METADATA = ("tags", "editable", "deletable", "nbgrader", "dtcourse")


@dataclass(frozen=True)
class PhaseFiles:
    """Where one phase lives at each stage of the pipeline, relative to the course root."""

    assignment: str

    @property
    def text(self) -> Path:
        return Path("course") / f"{self.assignment}.py"

    @property
    def source(self) -> Path:
        return Path("source") / self.assignment / f"{self.assignment}.ipynb"

    @property
    def release(self) -> Path:
        return Path("release") / self.assignment / f"{self.assignment}.ipynb"


def phase_files(syllabus: Syllabus) -> tuple[PhaseFiles, ...]:
    return tuple(PhaseFiles(phase.assignment) for phase in syllabus.phases)


def grade_id(exercise_id: str, part: str) -> str:
    """nbgrader ids allow no dots, so ``p2.twopc.participant`` becomes ``p2-twopc-participant``."""
    return f"{exercise_id.replace('.', '-')}-{part}"


def exercise_of_grade_id(grade: str, syllabus: Syllabus) -> str | None:
    for phase in syllabus.phases:
        for exercise in phase.exercises:
            if grade.startswith(exercise.id.replace(".", "-") + "-"):
                return exercise.id
    return None


def _nbgrader_meta(**fields: object) -> dict:
    base = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False}
    base.update(fields)
    return base


def convert(text_path: Path, syllabus: Syllabus) -> nbformat.NotebookNode:
    """Read a phase text file and return the nbgrader source notebook it describes."""
    from dtcourse_instructor.resource_list import fill_generated

    try:
        text = fill_generated(text_path.read_text(encoding="utf-8"), syllabus)
        notebook = jupytext.reads(text, fmt="py:percent")
    except Exception as error:  # jupytext raises many kinds; all mean the same to an author
        raise GradingError(f"{text_path}: not a jupytext percent file: {error}") from None
    where = f"{text_path}"
    points: dict[str, float] = defaultdict(float)
    counters: dict[str, int] = defaultdict(int)
    for index, cell in enumerate(notebook.cells):
        meta = {key: cell.metadata[key] for key in _KEPT_CELL_METADATA if key in cell.metadata}
        marks = meta.get("dtcourse", {})
        cell.metadata = meta
        if not marks:
            continue
        label = f"{where}, cell {index + 1}"
        kind = next((key for key in ("solution", "test", "locked", "answer") if key in marks), None)
        if kind is None:
            raise GradingError(f"{label}: dtcourse metadata needs solution, test, locked or answer")
        if kind == "locked":
            counters["locked"] += 1
            cell.metadata["nbgrader"] = _nbgrader_meta(
                locked=True, grade_id=f"locked-{counters['locked']}"
            )
            continue
        exercise_id = marks[kind]
        try:
            syllabus.exercise(exercise_id)
        except Exception:
            raise GradingError(f"{label}: unknown exercise id {exercise_id!r}") from None
        counters[exercise_id + kind] += 1
        gid = grade_id(exercise_id, f"{kind}{counters[exercise_id + kind]}")
        if kind == "solution":
            cell.metadata["nbgrader"] = _nbgrader_meta(solution=True, grade_id=gid)
            if "### BEGIN SOLUTION" not in cell.source:
                raise GradingError(f"{label}: a solution cell needs a ### BEGIN SOLUTION region")
        else:
            value = marks.get("points")
            if not isinstance(value, int | float) or value <= 0:
                raise GradingError(f"{label}: a {kind} cell needs positive 'points'")
            points[exercise_id] += value
            if kind == "test":
                cell.metadata["nbgrader"] = _nbgrader_meta(
                    grade=True, locked=True, grade_id=gid, points=value
                )
            else:
                if cell.cell_type != "markdown":
                    raise GradingError(f"{label}: an answer cell must be Markdown")
                cell.metadata["nbgrader"] = _nbgrader_meta(
                    grade=True, solution=True, grade_id=gid, points=value
                )
        if not _GRADE_ID.match(gid):
            raise GradingError(f"{label}: grade id {gid!r} is not valid for nbgrader")
    for exercise_id, total in points.items():
        expected = syllabus.exercise(exercise_id).points
        if abs(total - expected) > 1e-9:
            raise GradingError(
                f"{where}: exercise {exercise_id} has test cells worth {total:g} points, "
                f"but the syllabus gives it {expected:g}; make them agree"
            )
    _stable_ids(notebook)
    notebook.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    }
    return notebook


def _stable_ids(notebook: nbformat.NotebookNode) -> None:
    """Cell ids from the cells' content, so rebuilding an unchanged file changes nothing."""
    seen: set[str] = set()
    for cell in notebook.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
        cell_id, suffix = digest[:12], 1
        while cell_id in seen:
            cell_id, suffix = f"{digest[:12]}-{suffix}", suffix + 1
        seen.add(cell_id)
        cell.id = cell_id


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> bool:
    """Write only when the content changed, so timestamps and diffs stay quiet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(copy.deepcopy(notebook), version=4) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def select_phases(syllabus: Syllabus, wanted: Iterable[str] | None) -> tuple[PhaseFiles, ...]:
    """The phases named by id (``phase1``), number (``1``) or assignment name."""
    files = phase_files(syllabus)
    if not wanted:
        return files
    chosen = []
    for name in wanted:
        for phase, phase_file in zip(syllabus.phases, files, strict=True):
            if name in (phase.id, str(phase.number), phase.assignment):
                chosen.append(phase_file)
                break
        else:
            known = ", ".join(phase.assignment for phase in syllabus.phases)
            raise GradingError(f"unknown phase {name!r}; phases are {known}")
    return tuple(chosen)
