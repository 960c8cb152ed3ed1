"""nbgrader, driven through its Python API from a course root.

nbgrader pays about 4.6 s of start-up per command; one API object serves every
assignment and student. Each submission is graded on its own: a mangled notebook is
reported with a reason and never stops the others.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dtcourse.errors import GradingError
from dtcourse.runtime.notebook import SCRATCH_ENV
from dtcourse_instructor.authoring import exercise_of_grade_id
from dtcourse_instructor.runner import local_kernel_config


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder for the kernels started meanwhile, named in ``$DTCOURSE_SCRATCH``.

    This process, not the kernel, owns the folder: it is removed when the block ends,
    even when the kernel died or the grading step raised.
    """
    previous = os.environ.get(SCRATCH_ENV)
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as folder:
        os.environ[SCRATCH_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop(SCRATCH_ENV, None)
            else:
                os.environ[SCRATCH_ENV] = previous


def load_api(root: Path, kernels: Path | None = None):
    """An NbGraderAPI for the course rooted at ``root`` (where nbgrader_config.py is).

    ``kernels``: a folder this process owns for the sockets of the kernels it starts
    (see ``local_kernel_config``); needed only when notebooks are executed.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    root = root.resolve()
    config_file = root / "nbgrader_config.py"
    if not config_file.exists():
        raise GradingError(f"{root} is not a course directory: nbgrader_config.py is missing")
    config = local_kernel_config(kernels) if kernels is not None else Config()
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    config.CourseDirectory.root = str(root)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel(logging.ERROR)
    return api


_KNOWN_CAUSES = {
    "DeadKernelError": "the Python kernel died while running the notebook "
    "(a cell ends the process, e.g. os._exit, or crashes Python)",
    "MissingEntry": "a graded cell was deleted or its metadata was changed",
    "CellTimeoutError": "a cell ran longer than the time limit (an infinite loop?)",
}
_ERROR_LINE = re.compile(r"\b([A-Za-z_.]*(?:Error|Exception|Entry))\b:?\s*(.*)")


def failure_reason(log: str) -> str:
    """The most telling line of an nbgrader log, in words an instructor can act on."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ERROR_LINE.search(line)
        if not match or "NbGraderException" in match.group(1):
            continue
        name = match.group(1).rsplit(".", 1)[-1]
        return _KNOWN_CAUSES.get(name, f"{name}: {match.group(2)}".strip(": "))
    errors = [line for line in lines if line.startswith("[ERROR]")]
    return errors[0].removeprefix("[ERROR]").strip() if errors else "no details in the log"


def _run(what: str, step: Callable[..., dict], *args: object) -> dict:
    """Run one nbgrader step quietly; its own log is kept in the result."""
    from sqlalchemy.exc import SAWarning

    sink = io.StringIO()
    with (
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        warnings.catch_warnings(),
    ):
        # nbgrader's gradebook session warns on its own lazy loads (SAWarning): harmless.
        warnings.simplefilter("ignore", SAWarning)
        result = step(*args, force=True)
    if not result.get("success"):
        log = "\n".join(filter(None, (result.get("log"), result.get("error"), sink.getvalue())))
        raise GradingError(f"{what} failed: {failure_reason(log)}")
    return result


def _alembic_on_path() -> None:
    """nbgrader shells out to ``alembic`` (gradebook migrations): put this venv's first."""
    env_path = os.environ.get("PATH", "")
    bin_dir = str(Path(os.sys.executable).parent)
    if bin_dir not in env_path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, env_path])


def generate_release(root: Path, assignments: Iterable[str]) -> None:
    """Build ``release/<assignment>`` from ``source/<assignment>`` with nbgrader."""
    api = load_api(root)
    _alembic_on_path()
    for assignment in assignments:
        _run(f"release of {assignment}", api.generate_assignment, assignment)


def record_in_gradebook(
    root: Path, assignments: Iterable[str], report: Callable[[str], None] = print
) -> None:
    """Record each assignment's graded cells in the gradebook from ``source/``.

    A fresh clone has the committed ``release/`` but no ``gradebook.db`` (it is never
    committed), and autograde needs the gradebook's cells and checksums. nbgrader's
    generate_assignment records them; the student version it also writes goes to a
    temporary folder and is thrown away, so the committed ``release/`` stays as it is.
    """
    root = root.resolve()
    api = load_api(root)
    _alembic_on_path()
    with tempfile.TemporaryDirectory(prefix="dtcourse-release-") as scratch:
        api.coursedir.release_directory = scratch  # absolute: nbgrader joins it to root
        for assignment in assignments:
            if not (root / "source" / assignment).is_dir():
                raise GradingError(
                    f"the gradebook has no {assignment} and there is no source/{assignment} "
                    "to record it from: run `dtcourse build` in the course folder first"
                )
            _run(f"recording {assignment} in the gradebook", api.generate_assignment, assignment)
            report(
                f"gradebook: recorded {assignment} from source/{assignment} "
                "(it was missing; release/ is left as committed)"
            )


@dataclass(frozen=True)
class CellScore:
    student: str
    assignment: str
    grade_id: str
    score: float
    max_score: float


@dataclass
class GradeReport:
    scores: list[CellScore] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # student, phase, reason
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)


def _submission_problem(notebooks: list[Path]) -> str | None:
    """A reason nbgrader cannot grade this submission at all, found before it tries."""
    if not notebooks:
        return "no notebook in the submission folder"
    for path in notebooks:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return f"{path.name} is not valid notebook JSON ({error.__class__.__name__}: {error})"
    return None


def grade(
    root: Path,
    assignments: Iterable[str],
    students: Iterable[str] | None = None,
    report: Callable[[str], None] = print,
) -> GradeReport:
    """Autograde, generate feedback and collect scores for each submission."""
    from nbgrader.api import Gradebook

    api = load_api(root)
    _alembic_on_path()  # opening a gradebook that does not exist yet creates it
    root = root.resolve()
    result = GradeReport()
    wanted = set(students) if students is not None else None
    jobs = []
    for assignment in assignments:
        for folder in sorted((root / "submitted").glob(f"*/{assignment}")):
            student = folder.parent.name
            if wanted is None or student in wanted:
                jobs.append((student, assignment, folder))
    with Gradebook(api.coursedir.db_url) as gradebook:
        known = {assignment.name for assignment in gradebook.assignments}
    unknown = sorted({assignment for _, assignment, _ in jobs} - known)
    if unknown:
        record_in_gradebook(root, unknown, report)
    if not jobs:
        raise GradingError(
            f"no submissions found under {root / 'submitted'}: expected "
            "submitted/<student>/<phase>/<phase>.ipynb"
        )
    # One scratch folder, owned here, for the kernels' sockets and progress stores: removed
    # when grading ends, however it ends, even after a kernel died.
    with scratch_folder("dtcourse-grading-") as scratch:
        api = load_api(root, kernels=scratch)
        for job_number, job in enumerate(jobs, start=1):
            _grade_one(api, root, job, (job_number, len(jobs)), report, result)
    return result


def _grade_one(
    api: Any,
    root: Path,
    job: tuple[str, str, Path],
    position: tuple[int, int],
    report: Callable[[str], None],
    result: GradeReport,
) -> None:
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    student, assignment, folder = job
    number, count = position
    started = time.perf_counter()
    problem = _submission_problem(sorted(folder.glob("*.ipynb")))
    if problem is None:
        try:
            _run("autograde", api.autograde, assignment, student)
            _run("feedback", api.generate_feedback, assignment, student)
        except GradingError as error:
            problem = str(error)
    elapsed = time.perf_counter() - started
    result.seconds[(student, assignment)] = elapsed
    if problem is not None:
        result.problems.append((student, assignment, problem))
        shutil.rmtree(root / "autograded" / student / assignment, ignore_errors=True)
        report(f"[{number}/{count}] {student} {assignment}: NOT GRADED: {problem}")
        return
    with Gradebook(api.coursedir.db_url) as gradebook, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        submission = gradebook.find_submission(assignment, student)
        got, total = 0.0, 0.0
        for notebook in submission.notebooks:
            for grade_row in notebook.grades:
                score = float(grade_row.score or 0.0)
                maximum = float(grade_row.max_score or 0.0)
                got, total = got + score, total + maximum
                result.scores.append(
                    CellScore(student, assignment, grade_row.name, score, maximum)
                )
    report(f"[{number}/{count}] {student} {assignment}: {got:g}/{total:g} ({elapsed:.1f} s)")


def scores_frame(report: GradeReport, syllabus):
    """One row per student, phase and exercise: score and maximum, from cell scores."""
    import pandas as pd

    rows = [
        {
            "student": cell.student,
            "phase": cell.assignment,
            "exercise": exercise_of_grade_id(cell.grade_id, syllabus) or cell.grade_id,
            "score": cell.score,
            "max_score": cell.max_score,
        }
        for cell in report.scores
    ]
    for student, assignment, reason in report.problems:
        for phase in syllabus.phases:
            if phase.assignment != assignment:
                continue
            rows.extend(
                {
                    "student": student,
                    "phase": assignment,
                    "exercise": exercise.id,
                    "score": 0.0,
                    "max_score": float(exercise.points),
                    "problem": reason,
                }
                for exercise in phase.exercises
            )
    columns = ["student", "phase", "exercise", "score", "max_score", "problem"]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    return (
        frame.groupby(["student", "phase", "exercise"], sort=True)
        .agg(score=("score", "sum"), max_score=("max_score", "sum"), problem=("problem", "first"))
        .reset_index()
    )


def plot_scores(frame, path: Path) -> None:
    """Mean share of points per exercise, with each student as a dot."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(6.0, 0.8 * frame["exercise"].nunique() + 2), 4.0))
    axes = figure.add_subplot()
    share = frame.assign(share=frame["score"] / frame["max_score"].where(frame["max_score"] > 0))
    exercises = sorted(share["exercise"].unique())
    means = [share.loc[share["exercise"] == name, "share"].mean() for name in exercises]
    positions = range(len(exercises))
    axes.bar(positions, means, color="#4C72B0", alpha=0.6, label="mean")
    for index, name in enumerate(exercises):
        values = share.loc[share["exercise"] == name, "share"]
        axes.scatter([index] * len(values), values, color="#222222", s=14, zorder=3)
    axes.set_xticks(list(positions), exercises, rotation=30, ha="right")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share of points")
    axes.set_title("Scores per exercise (bar: mean; dots: students)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
