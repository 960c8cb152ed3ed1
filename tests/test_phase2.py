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
from dtcourse_instructor.reference.p2_deadlock import find_deadlock
from dtcourse_instructor.reference.p2_recovery import recovery_step
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit.protocols import build
from dtcourse.commit.protocols import twopc as T
from dtcourse.db import Resolve
from dtcourse.runtime.checks import check_part
from dtcourse.runtime.checks import registry as visible_registry
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
    assert _passes("p2.twopc.participant", T.Participant) == [
        "failure_free",
        "timeouts",
        "recovery",
    ]
    assert len(_passes("p2.twopc.coordinator", T.Coordinator)) == 4


class _LazyYes(T.Participant):
    """Votes yes without forcing its prepared record."""

    def on_message(self, state, src, msg, out):
        if isinstance(msg, T.Prepare) and state.phase == "working" and self.vote != "no":
            out.cancel_timer("prepare")
            out.log(("prepared", msg.participants), force=False)
            out.vote("yes")
            out.send(src, T.Vote("yes"))
            out.set_timer("decision", waiting_on=(self.coordinator,))
            return T.ParticipantState("prepared", msg.participants - {self.name})
        return super().on_message(state, src, msg, out)


class _Forgetful(T.Participant):
    """Aborts after a crash even when it had voted yes."""

    def on_recover(self, log, out):
        return self.abort_alone(out)


class _NoVoteTimeout(T.Coordinator):
    def on_start(self, out):
        out.log(("start", self.participants), force=True)
        out.broadcast(self.participants, T.Prepare(self.participants))
        return T.CoordinatorState("collecting")


class _AbortsOnRecovery(T.Coordinator):
    def on_recover(self, log, out):
        return self.decide(T.CoordinatorState("collecting"), "abort", out)


def test_broken_participants_get_partial_credit() -> None:
    assert _passes("p2.twopc.participant", _LazyYes) == []
    assert _passes("p2.twopc.participant", _Forgetful) == ["failure_free", "timeouts"]


def test_broken_coordinators_get_partial_credit() -> None:
    # Without a vote timeout a participant that crashed before it got Prepare leaves the
    # coordinator, and every participant that voted yes, waiting forever once repaired.
    assert _passes("p2.twopc.coordinator", _NoVoteTimeout) == ["failure_free"]
    assert _passes("p2.twopc.coordinator", _AbortsOnRecovery) == ["failure_free", "timeouts"]


class _RaisesOnRecovery(T.Participant):
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
        verify("p2.blocking", "found", answer, participants=3)


def _partition_answer(rule=terminate) -> dict:
    from dtcourse.engine.checker import check

    return {
        "result": check(build("3pc", 2, rule=rule, partitions=1)),
        "coordinator_side": {"C", "P1"},
        "committed": {"C"},
        "aborted": {"P2"},
        "atomic": False,
    }


def test_termination_rule_and_partition() -> None:
    answer = {"rule": terminate, "partition": _partition_answer()}
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
    from dtcourse.engine.checker import check

    hooked = check(build("3pc", 2, rule=terminate, crashes=1))
    assert hooked.ok and hooked.blocking is None
    always_abort = check(build("3pc", 2, rule=lambda states: "abort", crashes=1))
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
                {"rule": terminate, "partition": {**answer, key: value}},
            )
    crash_only = {**answer, "result": _blocking_answer()["result"]}
    with pytest.raises(AssertionError, match="AC1 violation"):
        verify("p2.threepc", "partition", {"rule": terminate, "partition": crash_only})


def test_recovery_step_rules_and_torture() -> None:
    assert _passes("p2.recovery", recovery_step) == ["rules", "torture"]

    def commit_everything(log, in_doubt):
        return [Resolve(d.participant, d.gtrid, True) for d in in_doubt]

    assert "rules" not in _passes("p2.recovery", commit_everything)


def test_deadlock_parts() -> None:
    assert len(_passes("p2.deadlock", find_deadlock)) == 3

    def first_is_victim(local, started):
        found = find_deadlock(local, started)
        return None if found is None else replace(found, victim=found.cycle[0])

    assert _passes("p2.deadlock", first_is_victim) == ["none", "cycle"]


# -- the visible checks: no answer inside, right from wrong all the same ---------------------


def _visible(exercise: str, obj: object) -> list[str]:
    """The visible parts ``obj`` passes, in order."""
    passed = []
    for name, _ in visible_registry()[exercise].parts:
        try:
            check_part(exercise, name, obj)
        except AssertionError:
            continue
        passed.append(name)
    return passed


def _textbook_in_another_order(states):
    """TR2 before TR1: the same decisions on every report 3PC allows."""
    values = set(states.values())
    if "committed" in values:
        return "commit"
    if values & {"aborted", "working"}:
        return "abort"
    return "commit" if "precommitted" in values else "abort"


def test_visible_threepc_checks_accept_right_rules_and_reject_wrong_ones() -> None:
    from dtcourse.commit.protocols.threepc import naive_rule

    for rule in (terminate, _textbook_in_another_order):
        answer = {"rule": rule, "partition": _partition_answer(rule)}
        assert _visible("p2.threepc", answer) == ["rule", "crash_stop", "partition"]

    def uncertain_commit(states):
        return "abort" if set(states.values()) & {"aborted", "working"} else "commit"

    for wrong, passes in (
        (naive_rule, []),
        (lambda states: "abort", []),
        (uncertain_commit, ["crash_stop"]),  # one crash does not expose it; the hidden two do
    ):
        assert _visible("p2.threepc", {"rule": wrong}) == passes, wrong
    with pytest.raises(AssertionError, match="which is not what the termination rule"):
        check_part("p2.threepc", "rule", {"rule": naive_rule})
    with pytest.raises(AssertionError, match="'commit' or 'abort', got None"):
        check_part("p2.threepc", "rule", {"rule": lambda states: None})
    with pytest.raises(AssertionError, match="(?s)AC1 agreement.*C CRASHES"):
        check_part("p2.threepc", "crash_stop", {"rule": naive_rule})


def _recovery_by_lookup(log, in_doubt):
    """Presumed abort written differently: a lookup, lazily, in reverse order."""
    decision = {entry.gtrid: entry.decision == "commit" for entry in log}
    return (Resolve(d.participant, d.gtrid, decision.get(d.gtrid, False)) for d in in_doubt[::-1])


def test_visible_recovery_checks_accept_right_steps_and_reject_wrong_ones() -> None:
    assert _visible("p2.recovery", recovery_step) == ["rules", "torture"]
    assert _visible("p2.recovery", _recovery_by_lookup) == ["rules", "torture"]

    def abort_everything(log, in_doubt):
        return [Resolve(d.participant, d.gtrid, False) for d in in_doubt]

    def commit_everything(log, in_doubt):
        return [Resolve(d.participant, d.gtrid, True) for d in in_doubt]

    def twice(log, in_doubt):
        return recovery_step(log, in_doubt) * 2

    def also_others(log, in_doubt):
        return [*recovery_step(log, in_doubt), Resolve("p9", "ghost", False)]

    def tuples(log, in_doubt):
        return [(a.participant, a.gtrid, a.commit) for a in recovery_step(log, in_doubt)]

    for wrong, message in (
        (abort_everything, "you abort g1 at p1, which is wrong"),
        (commit_everything, "you commit g2 at p0, which is wrong"),
        (lambda log, in_doubt: [], "left in doubt"),
        (twice, "resolve each branch once"),
        (also_others, "resolve only the in-doubt branches given"),
        (tuples, "return Resolve objects"),
    ):
        with pytest.raises(AssertionError, match=message):
            check_part("p2.recovery", "rules", wrong)
    with pytest.raises(AssertionError, match="acknowledged but lost 1"):
        check_part("p2.recovery", "torture", abort_everything)


def _deadlock_by_other_search(local, started):
    """A correct detector that finds cycles from the other end: its cycles may differ."""
    graph: dict[str, set[str]] = {}
    for edges in local.values():
        for waiter, holder in edges:
            graph.setdefault(waiter, set()).add(holder)
            graph.setdefault(holder, set())
    for start in sorted(graph, reverse=True):
        path, seen = [start], {start}
        while True:
            ahead = sorted(graph[path[-1]], reverse=True)
            nxt = next((t for t in ahead if t in path), None)
            if nxt is not None:
                cycle = tuple(path[path.index(nxt):])
                return cycle, max(cycle, key=started.__getitem__)
            fresh = [t for t in ahead if t not in seen]
            if not fresh:
                break
            path.append(fresh[0])
            seen.add(fresh[0])
    return None


def test_visible_deadlock_checks_accept_right_detectors_and_reject_wrong_ones() -> None:
    assert _visible("p2.deadlock", find_deadlock) == ["none", "cycle", "victim"]
    assert _visible("p2.deadlock", _deadlock_by_other_search) == ["none", "cycle", "victim"]

    def first_is_victim(local, started):
        found = find_deadlock(local, started)
        return None if found is None else replace(found, victim=found.cycle[0])

    def everyone(local, started):
        """Games a victim check that does not ask for a real cycle."""
        if find_deadlock(local, started) is None:
            return None
        return tuple(started), max(started, key=started.__getitem__)

    assert _visible("p2.deadlock", first_is_victim) == ["none", "cycle"]
    assert _visible("p2.deadlock", lambda local, started: None) == ["none"]
    assert _visible("p2.deadlock", everyone) == ["none"]
    with pytest.raises(AssertionError, match="is not the youngest"):
        check_part("p2.deadlock", "victim", first_is_victim)


def _public_callables() -> list[tuple[str, object]]:
    """Every public function and class of the student modules these exercises touch."""
    import importlib

    modules = (
        "dtcourse.commit.protocols.threepc",
        "dtcourse.lessons.deadlock",
        "dtcourse.db",
        "dtcourse.db.coordinator",
        "dtcourse.db.demo",
        "dtcourse.runtime.checks.p2_threepc",
        "dtcourse.runtime.checks.p2_recovery",
        "dtcourse.runtime.checks.p2_deadlock",
    )
    found: dict[int, tuple[str, object]] = {}
    for name in modules:
        module = importlib.import_module(name)
        public = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        for attr in public:
            obj = getattr(module, attr)
            if callable(obj):
                found.setdefault(id(obj), (f"{name}.{attr}", obj))
    return sorted(found.values(), key=lambda pair: pair[0])


def _answers(exercise: str, obj: object) -> bool:
    """Whether ``obj`` passes every visible part (stopping at the first that fails)."""
    for name, _ in visible_registry()[exercise].parts:
        try:
            check_part(exercise, name, obj)
        except Exception:
            return False
    return True


def test_no_public_object_of_the_student_package_answers_these_exercises() -> None:
    tried = _public_callables()
    assert len(tried) > 20
    answered = [
        (exercise, label)
        for label, obj in tried
        for exercise, shaped in (
            ("p2.threepc", {"rule": obj, "partition": {}}),
            ("p2.threepc", obj),
            ("p2.recovery", obj),
            ("p2.deadlock", obj),
        )
        if _answers(exercise, shaped)
    ]
    print(f"tried {len(tried)} objects: {', '.join(label for label, _ in tried)}")
    assert answered == []


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
