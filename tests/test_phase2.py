"""Phase 2: the exercise checks judge right from wrong, and the notebook grades end to end."""

from __future__ import annotations

import copy
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from dtcourse_instructor.authoring import convert, write_notebook
from dtcourse_instructor.grader import grade_part as verify
from dtcourse_instructor.grader import registry
from dtcourse_instructor.grader.phase2_threepc import reference_rule
from dtcourse_instructor.grader.phase2_threepc import system as threepc_system
from dtcourse_instructor.reference import p2_twopc_coordinator as TC
from dtcourse_instructor.reference import p2_twopc_participant as TP

from dtcourse.commit import messages as TM
from dtcourse.db import Resolve, reference_recovery
from dtcourse.lessons.deadlock import detect
from dtcourse.runtime.syllabus import load_syllabus

ROOT = Path(__file__).resolve().parents[1]
PHASE = "phase2_core_concepts"


def _passes(exercise: str, obj: object) -> list[str]:
    passed = []
    for name, _ in registry()[exercise].parts:
        try:
            verify(exercise, name, obj)
        except AssertionError:
            continue
        passed.append(name)
    return passed


def test_reference_nodes_pass_every_part() -> None:
    assert _passes("p2.twopc.participant", TP.Participant) == [
        "failure_free",
        "timeouts",
        "recovery",
    ]
    assert len(_passes("p2.twopc.coordinator", TC.Coordinator)) == 4


class _LazyYes(TP.Participant):
    """Votes yes without forcing its prepared record."""

    def on_message(self, state, src, msg, out):
        if isinstance(msg, TM.Prepare) and state.phase == "working" and self.vote != "no":
            out.cancel_timer("prepare")
            out.log(("prepared", msg.participants), force=False)
            out.vote("yes")
            out.send(src, TM.Vote("yes"))
            out.set_timer("decision", waiting_on=(self.coordinator,))
            return TP.ParticipantState("prepared", msg.participants - {self.name})
        return super().on_message(state, src, msg, out)


class _Forgetful(TP.Participant):
    """Aborts after a crash even when it had voted yes."""

    def on_recover(self, log, out):
        return self.abort_alone(out)


class _NoVoteTimeout(TC.Coordinator):
    def on_start(self, out):
        out.log(("start", self.participants), force=True)
        out.broadcast(self.participants, TM.Prepare(self.participants))
        return TC.CoordinatorState("collecting")


class _AbortsOnRecovery(TC.Coordinator):
    def on_recover(self, log, out):
        return self.decide(TC.CoordinatorState("collecting"), "abort", out)


def test_broken_participants_get_partial_credit() -> None:
    assert _passes("p2.twopc.participant", _LazyYes) == []
    assert _passes("p2.twopc.participant", _Forgetful) == ["failure_free", "timeouts"]


def test_broken_coordinators_get_partial_credit() -> None:
    # Without a vote timeout a participant that crashed before it got Prepare leaves the
    # coordinator, and every participant that voted yes, waiting forever once repaired.
    assert _passes("p2.twopc.coordinator", _NoVoteTimeout) == ["failure_free"]
    assert _passes("p2.twopc.coordinator", _AbortsOnRecovery) == ["failure_free", "timeouts"]


class _RaisesOnRecovery(TP.Participant):
    def on_recover(self, log, out):
        raise KeyError("prepared")


def test_a_failing_handler_is_reported_with_its_run() -> None:
    assert _passes("p2.twopc.participant", _RaisesOnRecovery) == ["failure_free", "timeouts"]
    with pytest.raises(AssertionError) as caught:
        verify("p2.twopc.participant", "recovery", _RaisesOnRecovery)
    message = str(caught.value)
    assert "on_recover on recovery: raised KeyError" in message
    assert "The run so far" in message and "P2 CRASHES" in message


def _blocking_answer() -> dict:
    from dtcourse.commit.protocols import build
    from dtcourse.engine.checker import check

    result = check(build("2pc", 2, votes="yes", crashes=1, timing="perfect"))
    return {
        "result": result,
        "failed": "C",
        "votes_received": 0,
        "participants": {"P1": "prepared", "P2": "working"},
        "coordinator_decision": None,
    }


def test_blocking_answers_are_judged_against_the_run() -> None:
    answer = _blocking_answer()
    assert len(_passes("p2.blocking", answer)) == 4
    wrong = {**answer, "failed": "P1", "participants": {"P1": "working", "P2": "prepared"}}
    assert _passes("p2.blocking", wrong) == ["found", "votes"]
    with pytest.raises(AssertionError, match="does not replay"):
        verify("p2.blocking", "found", answer, crashes=0)


def _partition_answer(rule=reference_rule) -> dict:
    from dtcourse.engine.checker import check

    return {
        "result": check(threepc_system(rule, 2, partitions=1)),
        "coordinator_side": {"C", "P1"},
        "committed": {"C"},
        "aborted": {"P2"},
        "atomic": False,
    }


def test_termination_rule_and_partition() -> None:
    answer = {"rule": reference_rule, "partition": _partition_answer()}
    assert _passes("p2.threepc", answer) == ["rule", "crash_stop", "partition"]

    def only_committed(states):
        return "commit" if "committed" in states.values() else "abort"

    assert _passes("p2.threepc", {"rule": only_committed, "partition": {}}) == []


def test_a_wrong_rule_inside_3pc_breaks_agreement_with_its_run() -> None:
    def uncertain_commit(states):
        values = set(states.values())
        return "abort" if values & {"aborted", "working"} else "commit"

    # One crash is not enough to expose it; two are (the hidden setting).
    verify("p2.threepc", "crash_stop", {"rule": uncertain_commit})
    with pytest.raises(AssertionError, match="AC1 agreement.*shortest run") as caught:
        verify("p2.threepc", "crash_stop", {"rule": uncertain_commit}, crashes=2)
    assert "CRASHES" in str(caught.value)
    with pytest.raises(AssertionError, match="returned None"):
        verify("p2.threepc", "crash_stop", {"rule": lambda states: None})


def test_the_rule_hook_changes_only_the_termination_rule() -> None:
    from dtcourse.commit.protocols import build
    from dtcourse.engine.checker import check

    reference = check(build("3pc", 2, crashes=1))
    hooked = check(threepc_system(reference_rule, 2, crashes=1))
    assert (hooked.distinct, hooked.generated) == (reference.distinct, reference.generated)
    assert hooked.ok and hooked.blocking is None
    always_abort = check(threepc_system(lambda states: "abort", 2, crashes=1))
    assert "AC1 agreement" in {v.property for v in always_abort.violations}


def test_partition_answers_are_judged_against_the_counterexample() -> None:
    answer = _partition_answer()
    for key, value in (
        ("committed", {"C", "P1"}),
        ("aborted", set()),
        ("coordinator_side", {"C"}),
        ("atomic", True),
    ):
        with pytest.raises(AssertionError, match=key):
            verify(
                "p2.threepc",
                "partition",
                {"rule": reference_rule, "partition": {**answer, key: value}},
            )
    crash_only = {**answer, "result": _blocking_answer()["result"]}
    with pytest.raises(AssertionError, match="AC1 violation"):
        verify("p2.threepc", "partition", {"rule": reference_rule, "partition": crash_only})


def test_recovery_step_rules_and_torture() -> None:
    assert _passes("p2.recovery", reference_recovery) == ["rules", "torture"]

    def commit_everything(log, in_doubt):
        return [Resolve(d.participant, d.gtrid, True) for d in in_doubt]

    assert "rules" not in _passes("p2.recovery", commit_everything)


def test_deadlock_parts() -> None:
    assert len(_passes("p2.deadlock", detect)) == 3

    def first_is_victim(local, started):
        found = detect(local, started)
        return None if found is None else replace(found, victim=found.cycle[0])

    assert _passes("p2.deadlock", first_is_victim) == ["none", "cycle"]


# -- end to end --------------------------------------------------------------------------


def _stub_solutions(notebook: nbformat.NotebookNode, keep: set[str]) -> nbformat.NotebookNode:
    """Replace the solution regions of exercises not in ``keep`` by a stub."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        marks = cell.metadata.get("dtcourse", {})
        if "solution" in marks and marks["solution"] not in keep:
            lines, out, inside = cell.source.split("\n"), [], False
            for line in lines:
                if line.strip() == "### BEGIN SOLUTION":
                    inside = True
                    indent = line[: len(line) - len(line.lstrip())]
                    out.append(f"{indent}raise NotImplementedError()")
                elif line.strip() == "### END SOLUTION":
                    inside = False
                elif not inside:
                    out.append(line)
            cell.source = "\n".join(out)
    return notebook


@pytest.mark.slow
def test_nbgrader_round_trip(tmp_path: Path) -> None:
    from dtcourse_instructor.grading import generate_release, grade

    os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    source = convert(ROOT / "course" / f"{PHASE}.py", load_syllabus())
    write_notebook(source, tmp_path / "source" / PHASE / f"{PHASE}.ipynb")
    generate_release(tmp_path, [PHASE])
    release = (tmp_path / "release" / PHASE / f"{PHASE}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in release and "seed=43" not in release
    assert "presumed" not in release.split("def recovery_step")[-1][:200]
    students = {
        "reference": source,
        "partial": _stub_solutions(source, {"p2.deadlock", "p2.threepc"}),
        "stub": nbformat.read(tmp_path / "release" / PHASE / f"{PHASE}.ipynb", 4),
    }
    for student, notebook in students.items():
        write_notebook(notebook, tmp_path / "submitted" / student / PHASE / f"{PHASE}.ipynb")
    started = time.perf_counter()
    report = grade(tmp_path, [PHASE], report=lambda line: None)
    print(f"graded {len(students)} phase 2 submissions in {time.perf_counter() - started:.1f} s")
    assert not report.problems
    totals: dict[str, float] = {}
    for score in report.scores:
        totals[score.student] = totals.get(score.student, 0.0) + score.score
    assert totals["reference"] == 60
    assert totals["stub"] == 0
    assert totals["partial"] == 20
    for feedback in (tmp_path / "feedback").rglob("*.html"):
        text = feedback.read_text()
        assert "seed=43" not in text and "BEGIN HIDDEN TESTS" not in text
