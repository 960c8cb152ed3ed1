"""The course end to end: build without drift, papermill runs, the nbgrader round trip.

These run the real tools (jupytext, nbgrader, papermill, kernels) on a temporary copy of
the course, so nothing in the repository changes.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from dtcourse_instructor.authoring import phase_files
from dtcourse_instructor.course_folder import course_root

from dtcourse.cli import main
from dtcourse.runtime.syllabus import load_syllabus

pytestmark = pytest.mark.slow

ROOT = course_root()
SYLLABUS = load_syllabus()
PHASES = phase_files(SYLLABUS)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("course")
    for name in ("course", "source", "release"):
        shutil.copytree(ROOT / name, copy / name)
    shutil.copy(ROOT / "nbgrader_config.py", copy)
    return copy


def _files(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.ipynb"))
    }


def test_every_phase_has_its_committed_notebooks():
    for phase in PHASES:
        for path in (phase.text, phase.source, phase.release):
            assert (ROOT / path).exists(), f"{path} is missing; run `dtcourse build`"


def test_build_regenerates_source_and_release_without_drift(course, capsys):
    assert main(["build", "--root", str(course)]) == 0
    for folder in ("source", "release"):
        built, committed = _files(course / folder), _files(ROOT / folder)
        assert built.keys() == committed.keys()
        drifted = [name for name in built if built[name] != committed[name]]
        assert not drifted, f"{folder}/ is stale ({drifted}); run `dtcourse build` and commit"


def test_release_holds_no_solution_and_no_hidden_test(course):
    for phase in PHASES:
        source = (course / phase.source).read_text(encoding="utf-8")
        release = (course / phase.release).read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in release and "BEGIN HIDDEN TESTS" not in release
        secrets = _secret_lines(_sources(course / phase.source))
        assert secrets, f"{phase.source} has no solution or hidden test to protect"
        leaked = [line for line in secrets if json_escaped(line) in release]
        assert not leaked, f"{phase.release} leaks: {leaked[:3]}"
        assert source != release


def _secret_lines(sources: str, solutions: bool = True) -> list[str]:
    """Distinctive lines of the hidden tests (and solutions) that appear nowhere public."""
    patterns = (HIDDEN, SOLUTION) if solutions else (HIDDEN,)
    public = sources
    for pattern in (HIDDEN, SOLUTION):
        public = pattern.sub("", public)
    public_lines = {line.strip() for line in public.splitlines()}
    return [
        line.strip()
        for pattern in patterns
        for block in pattern.findall(sources)
        for line in block.splitlines()
        if len(line.strip()) > 25 and line.strip() not in public_lines
    ]


def json_escaped(line: str) -> str:
    import json

    return json.dumps(line)[1:-1]


def _sources(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(cell.source + "\n" for cell in notebook.cells)


def test_papermill_runs_every_source_notebook(course, tmp_path, capsys):
    code = main(["run", "--root", str(course), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    for phase in PHASES:
        assert f"{phase.assignment}.ipynb: " in out
        executed = nbformat.read(tmp_path / f"{phase.assignment}.ipynb", as_version=4)
        errors = [
            output
            for cell in executed.cells
            if cell.cell_type == "code"
            for output in cell.get("outputs", [])
            if output.get("output_type") == "error"
        ]
        assert not errors


def _partly_solved(source: Path, release: Path) -> nbformat.NotebookNode | None:
    """The release with the first exercise's solution cells filled in from the source.

    None for a phase with a single exercise: its own test module grades a partly right
    solution of that exercise instead.
    """
    solved = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in nbformat.read(source, as_version=4).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    exercises = {gid.split("-solution")[0] for gid in solved}
    if len(exercises) < 2:
        return None
    first = sorted(exercises)[0]
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.startswith(first + "-solution"):
            cell.source = solved[gid]
    return notebook


def test_round_trip_full_marks_zero_and_partial_credit(course, capsys):
    for phase in PHASES:
        source, release = course / phase.source, course / phase.release
        for student, notebook in (
            ("reference", nbformat.read(source, as_version=4)),
            ("untouched", nbformat.read(release, as_version=4)),
            ("partial", _partly_solved(source, release)),
        ):
            if notebook is None:
                continue
            target = course / "submitted" / student / phase.assignment / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, target)
    code = main(["grade", "--root", str(course)])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    import pandas as pd

    grades = pd.read_csv(course / "grades" / "grades.csv")
    assert (course / "grades" / "grades.png").stat().st_size > 0
    totals = grades.groupby(["student", "phase"])["score"].sum()
    for phase in SYLLABUS.phases:
        assert totals["reference", phase.assignment] == phase.points
        assert totals["untouched", phase.assignment] == 0
        if ("partial", phase.assignment) in totals:
            assert 0 < totals["partial", phase.assignment] < phase.points
        for student in ("reference", "untouched", "partial"):
            feedback = course / "feedback" / student / phase.assignment
            if not feedback.exists():
                continue
            page = next(feedback.glob("*.html")).read_text(encoding="utf-8")
            source = course / "source" / phase.assignment / f"{phase.assignment}.ipynb"
            hidden_lines = _secret_lines(_sources(source), solutions=False)
            leaked = [line for line in hidden_lines if html.escape(line) in page]
            assert not leaked, f"feedback for {student} shows hidden tests: {leaked[:2]}"


def test_papermill_runs_each_release_up_to_its_first_exercise(course, tmp_path, capsys):
    code = main(["run", "--release", "--root", str(course), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    for phase in PHASES:
        assert f"{phase.assignment}.ipynb: " in out
    assert out.count("stops at the first unsolved exercise") == len(PHASES), out
