"""How long grading one Phase 2 submission takes, and each graded check on its own.

Target: grading one student's three phases in under 60 s, so Phase 2 should grade in a
small part of that. Prints, for the reference solution and for a submission whose handlers
are broken (a failing handler must not make grading slow): the time of every check part
with the hidden settings, then the time of a real nbgrader autograde, feedback and export
of each submission in a temporary copy of the course.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASE = "phase2_core_concepts"

# The graded cells' hidden settings, as the source notebook has them.
PARTS = [
    ("p2.twopc.participant", "failure_free", {"participants": 3, "votes": ("yes", "any", "yes")}),
    ("p2.twopc.participant", "timeouts", {"participants": 3, "votes": "yes"}),
    ("p2.twopc.participant", "recovery", {"participants": 3, "seed": 11, "runs": 80}),
    ("p2.twopc.coordinator", "failure_free", {"participants": 3, "votes": ("any", "yes", "any")}),
    ("p2.twopc.coordinator", "timeouts", {"participants": 3, "votes": "yes"}),
    ("p2.twopc.coordinator", "recovery", {"participants": 3, "seed": 21, "runs": 80}),
    ("p2.twopc.coordinator", "lossy", {"participants": 3, "seed": 12, "runs": 80}),
]


def _broken_nodes():
    from dtcourse_instructor.reference import p2_twopc_coordinator, p2_twopc_participant

    class Participant(p2_twopc_participant.Participant):
        def on_recover(self, log, out):
            raise KeyError("prepared")

    class Coordinator(p2_twopc_coordinator.Coordinator):
        def on_recover(self, log, out):
            return {}

    return {"p2.twopc.participant": Participant, "p2.twopc.coordinator": Coordinator}


def time_parts() -> None:
    from dtcourse_instructor.grader import grade_part as verify
    from dtcourse_instructor.reference import p2_twopc_coordinator, p2_twopc_participant

    reference = {
        "p2.twopc.participant": p2_twopc_participant.Participant,
        "p2.twopc.coordinator": p2_twopc_coordinator.Coordinator,
    }
    for label, nodes in (("reference", reference), ("broken", _broken_nodes())):
        for exercise, part, settings in PARTS:
            started = time.perf_counter()
            try:
                verify(exercise, part, nodes[exercise], **settings)
                verdict = "pass"
            except AssertionError:
                verdict = "fail"
            seconds = time.perf_counter() - started
            print(f"  {label:9} {exercise} {part:12} {verdict}  {seconds:6.2f} s")
    print("Phase 2 visible check parts (against the most general legal partner)")
    from dtcourse.runtime.checks import check_part

    for label, nodes in (("reference", reference), ("broken", _broken_nodes())):
        for exercise, part in dict.fromkeys((e, p) for e, p, _ in PARTS):
            started = time.perf_counter()
            try:
                check_part(exercise, part, nodes[exercise])
                verdict = "pass"
            except AssertionError:
                verdict = "fail"
            seconds = time.perf_counter() - started
            print(f"  {label:9} {exercise} {part:12} {verdict}  {seconds:6.2f} s")
    from dtcourse_instructor.reference.p2_threepc import terminate

    for crashes in (1, 2):
        started = time.perf_counter()
        verify("p2.threepc", "crash_stop", {"rule": terminate}, crashes=crashes)
        seconds = time.perf_counter() - started
        print(f"  reference p2.threepc crash_stop ({crashes} crashes)  {seconds:6.2f} s")


def _broken_notebook(notebook):
    """The reference solution with a participant, a coordinator and a rule that are wrong."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if "class Participant2PC" in cell.source:
            cell.source = cell.source.replace(
                "    def on_recover(self, log, out):\n        ### BEGIN SOLUTION\n",
                "    def on_recover(self, log, out):\n        ### BEGIN SOLUTION\n"
                "        raise KeyError('prepared')\n",
            )
        if "class Coordinator2PC" in cell.source:
            cell.source = cell.source.replace(
                'return self.decide(CState("collecting"), "abort", out)', "return {}"
            )
        if "def terminate" in cell.source:
            cell.source = cell.source.replace(
                '    return "abort"\n    ### END SOLUTION',
                '    return "commit"\n    ### END SOLUTION',
            )
    return notebook


def time_grading() -> None:
    from dtcourse_instructor.authoring import convert, write_notebook
    from dtcourse_instructor.grading import generate_release, grade

    from dtcourse.runtime.syllabus import load_syllabus

    os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    source = convert(ROOT / "course" / f"{PHASE}.py", load_syllabus())
    for student, notebook in (("reference", source), ("broken", _broken_notebook(source))):
        root = Path(tempfile.mkdtemp(prefix="dtcourse-bench-"))
        try:
            shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
            write_notebook(source, root / "source" / PHASE / f"{PHASE}.ipynb")
            generate_release(root, [PHASE])
            write_notebook(notebook, root / "submitted" / student / PHASE / f"{PHASE}.ipynb")
            started = time.perf_counter()
            report = grade(root, [PHASE], report=lambda line: None)
            seconds = time.perf_counter() - started
        finally:
            shutil.rmtree(root, ignore_errors=True)
        total = sum(score.score for score in report.scores)
        print(f"  {student:9} {total:4.0f} points, graded in {seconds:5.1f} s "
              "(autograde, feedback, export)")  # fmt: skip


def main() -> int:
    print("Phase 2 check parts, hidden settings")
    time_parts()
    print("Phase 2 nbgrader grading of one submission")
    time_grading()
    return 0


if __name__ == "__main__":
    sys.exit(main())
