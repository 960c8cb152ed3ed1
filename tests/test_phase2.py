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
from dtcourse_instructor.reference import p2_twopc_coordinator as RC
from dtcourse_instructor.reference import p2_twopc_participant as RP
from dtcourse_instructor.reference.p2_deadlock import find_deadlock
from dtcourse_instructor.reference.p2_recovery import recovery_step
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit.environments import CoordinatorEnvironment, ParticipantEnvironment
from dtcourse.commit.messages import Abort, Commit, DecisionRequest, Prepare, Vote
from dtcourse.commit.protocols import build
from dtcourse.db import Resolve
from dtcourse.engine.actors import Node
from dtcourse.runtime.checks import check_part
from dtcourse.runtime.checks import registry as visible_registry
from dtcourse.runtime.syllabus import load_syllabus

ROOT = Path(__file__).resolve().parents[1]
PHASE = "phase2_core_concepts"
PARTICIPANT_PARTS = ["failure_free", "timeouts", "recovery"]
COORDINATOR_PARTS = ["failure_free", "timeouts", "recovery", "lossy"]


def _passes(exercise: str, obj: object) -> list[str]:
    """The hidden parts (the grader's, with their default settings) that ``obj`` passes."""
    passed = []
    for name, _ in registry()[exercise].parts:
        try:
            verify(exercise, name, obj)
        except AssertionError:
            continue
        passed.append(name)
    return passed


def _visible(exercise: str, obj: object) -> list[str]:
    """The visible parts (the student's checks) that ``obj`` passes."""
    passed = []
    for name, _ in visible_registry()[exercise].parts:
        try:
            check_part(exercise, name, obj)
        except (AssertionError, NotImplementedError):
            continue
        passed.append(name)
    return passed


def test_reference_nodes_pass_every_part() -> None:
    assert _passes("p2.twopc.participant", RP.Participant) == PARTICIPANT_PARTS
    assert _passes("p2.twopc.coordinator", RC.Coordinator) == COORDINATOR_PARTS
    assert _visible("p2.twopc.participant", RP.Participant) == PARTICIPANT_PARTS
    assert _visible("p2.twopc.coordinator", RC.Coordinator) == COORDINATOR_PARTS


# -- a correct solution written differently: plain string states, other records ----------------


class _OtherParticipant(Node):
    """Correct, but nothing like the reference: string states, tuple records, no peers."""

    def __init__(self, name, coordinator, vote="yes"):
        super().__init__(name)
        self.coordinator, self.choice = coordinator, vote

    def on_start(self, out):
        out.set_timer("t", waiting_on=() if self.choice == "any" else (self.coordinator,))
        return "init"

    def on_message(self, state, src, msg, out):
        match msg, state:
            case Prepare(), "init" if self.choice == "no":
                out.cancel_timer("t")
                out.vote("no")
                out.decide("abort")
                out.send(src, Vote("no"))
                return "aborted"
            case Prepare(), "init":
                out.cancel_timer("t")
                out.log(("ready", self.name), force=True)
                out.vote("yes")
                out.send(src, Vote("yes"))
                out.set_timer("t", waiting_on=(self.coordinator,))
                return "ready"
            case Prepare(), "ready":
                out.send(src, Vote("yes"))
            case Prepare(), "aborted":
                out.send(src, Vote("no"))
            case Commit(), "ready":
                out.log(("done", "commit"), force=True)
                out.decide("commit")
                out.cancel_timer("t")
                return "committed"
            case Abort(), "ready" | "init":
                out.log(("done", "abort"), force=state == "ready")
                out.decide("abort")
                out.cancel_timer("t")
                return "aborted"
        return state

    def on_timeout(self, state, timer, out):
        if state == "init":
            out.decide("abort")
            return "aborted"
        if state == "ready":
            out.send(self.coordinator, DecisionRequest())
            out.set_timer("t", waiting_on=(self.coordinator,))
        return state

    def on_recover(self, log, out):
        done = [r[1] for r in log if r[0] == "done"]
        if done:
            out.decide(done[0])
            return "committed" if done[0] == "commit" else "aborted"
        if any(r[0] == "ready" for r in log):
            out.send(self.coordinator, DecisionRequest())
            out.set_timer("t", waiting_on=(self.coordinator,))
            return "ready"
        out.decide("abort")
        return "aborted"


class _OtherCoordinator(Node):
    """Correct, but nothing like the reference: no start record, a tuple state."""

    def __init__(self, name, participants):
        super().__init__(name)
        self.participants = tuple(sorted(participants))

    def on_start(self, out):
        for p in self.participants:
            out.send(p, Prepare(frozenset(self.participants)))
        out.set_timer("wait", waiting_on=self.participants)
        return ("voting", frozenset())

    def on_message(self, state, src, msg, out):
        phase, yes = state
        if isinstance(msg, Vote) and phase == "voting":
            if msg.vote != "yes":
                return self._end("abort", out)
            yes = yes | {src}
            return self._end("commit", out) if len(yes) == len(self.participants) else (phase, yes)
        if isinstance(msg, DecisionRequest) and phase != "voting":
            out.send(src, Commit() if phase == "commit" else Abort())
        return state

    def on_timeout(self, state, timer, out):
        return self._end("abort", out) if state[0] == "voting" else state

    def _end(self, value, out):
        out.log(("outcome", value), force=True)
        out.decide(value)
        out.cancel_timer("wait")
        for p in self.participants:
            out.send(p, Commit() if value == "commit" else Abort())
        return (value, frozenset())

    def on_recover(self, log, out):
        outcome = next((r[1] for r in log if r[0] == "outcome"), None)
        if outcome is None:
            return self._end("abort", out)
        out.decide(outcome)
        for p in self.participants:
            out.send(p, Commit() if outcome == "commit" else Abort())
        return (outcome, frozenset())


def test_correct_solutions_written_differently_pass_visible_and_hidden_checks() -> None:
    assert _visible("p2.twopc.participant", _OtherParticipant) == PARTICIPANT_PARTS
    assert _visible("p2.twopc.coordinator", _OtherCoordinator) == COORDINATOR_PARTS
    assert _passes("p2.twopc.participant", _OtherParticipant) == PARTICIPANT_PARTS
    assert _passes("p2.twopc.coordinator", _OtherCoordinator) == COORDINATOR_PARTS


# -- wrong participants and coordinators ------------------------------------------------------


class _LazyYes(RP.Participant):
    """Votes yes without forcing its prepared record."""

    def on_message(self, state, src, msg, out):
        if isinstance(msg, Prepare) and state.phase == "working" and self.vote != "no":
            out.cancel_timer("prepare")
            out.log(("prepared", msg.participants), force=False)
            out.vote("yes")
            out.send(src, Vote("yes"))
            out.set_timer("decision", waiting_on=(self.coordinator,))
            return RP.ParticipantState("prepared", msg.participants - {self.name})
        return super().on_message(state, src, msg, out)


class _SendsBeforeForcing(RP.Participant):
    """Forces its prepared record, but after sending the vote: a crash in between loses it."""

    def on_message(self, state, src, msg, out):
        if isinstance(msg, Prepare) and state.phase == "working" and self.vote != "no":
            out.cancel_timer("prepare")
            out.vote("yes")
            out.send(src, Vote("yes"))
            out.log(("prepared", msg.participants), force=True)
            out.set_timer("decision", waiting_on=(self.coordinator,))
            return RP.ParticipantState("prepared", msg.participants - {self.name})
        return super().on_message(state, src, msg, out)


class _Forgetful(RP.Participant):
    """Aborts after a crash even when it had voted yes."""

    def on_recover(self, log, out):
        return self.abort_alone(out)


class _IgnoresNo(RP.Participant):
    """Told to vote no, it votes yes anyway."""

    def __init__(self, name, coordinator, vote="yes"):
        super().__init__(name, coordinator, "yes" if vote == "no" else vote)


class _SilentNo(RP.Participant):
    """Told to vote no, it aborts without voting: the no path never runs."""

    def on_message(self, state, src, msg, out):
        if isinstance(msg, Prepare) and self.vote == "no" and state.phase == "working":
            out.cancel_timer("prepare")
            out.decide("abort")
            return RP.ParticipantState("abort")
        return super().on_message(state, src, msg, out)


class _NoPrepareTimer(RP.Participant):
    """Waits for Prepare forever."""

    def on_start(self, out):
        return RP.ParticipantState("working")


class _CountsRequests(RP.Participant):
    """Remembers every decision request it made: a state without bound."""

    def on_timeout(self, state, timer, out):
        after = super().on_timeout(state, timer, out)
        if timer == "decision" and state.phase == "prepared":
            return replace(after, peers=after.peers | {f"request {len(after.peers)}"})
        return after


def test_visible_participant_checks_reject_each_known_wrong_participant() -> None:
    assert _visible("p2.twopc.participant", _LazyYes) == []
    assert _visible("p2.twopc.participant", _SendsBeforeForcing) == []
    assert _visible("p2.twopc.participant", _Forgetful) == ["failure_free", "timeouts"]
    assert _visible("p2.twopc.participant", _IgnoresNo) == ["timeouts", "recovery"]
    assert _visible("p2.twopc.participant", _SilentNo) == ["timeouts", "recovery"]
    assert _visible("p2.twopc.participant", _NoPrepareTimer) == ["recovery"]
    assert _visible("p2.twopc.participant", _CountsRequests) == ["failure_free"]


def test_messages_name_what_is_wrong() -> None:
    with pytest.raises(AssertionError, match=r"Vote\('yes'\) is sent only after the prepared"):
        check_part("p2.twopc.participant", "failure_free", _SendsBeforeForcing)
    with pytest.raises(AssertionError, match="vote='no' never votes yes"):
        check_part("p2.twopc.participant", "failure_free", _IgnoresNo)
    with pytest.raises(AssertionError, match=r"vote='no' votes no \(out.vote\('no'\)\)"):
        check_part("p2.twopc.participant", "failure_free", _SilentNo)
    with pytest.raises(AssertionError, match="state space grew past 20,000 states"):
        check_part("p2.twopc.participant", "timeouts", _CountsRequests)


def test_broken_participants_get_partial_credit() -> None:
    assert _passes("p2.twopc.participant", _LazyYes) == []
    assert _passes("p2.twopc.participant", _SendsBeforeForcing) == []
    assert _passes("p2.twopc.participant", _Forgetful) == ["failure_free", "timeouts"]
    assert _passes("p2.twopc.participant", _IgnoresNo) == ["timeouts", "recovery"]
    assert _passes("p2.twopc.participant", _SilentNo) == ["timeouts", "recovery"]
    assert _passes("p2.twopc.participant", _NoPrepareTimer) == ["recovery"]
    assert _passes("p2.twopc.participant", _CountsRequests) == ["failure_free"]


class _NoVoteTimeout(RC.Coordinator):
    def on_start(self, out):
        out.log(("start", self.participants), force=True)
        out.broadcast(self.participants, Prepare(self.participants))
        return RC.CoordinatorState("collecting")


class _AbortsOnRecovery(RC.Coordinator):
    def on_recover(self, log, out):
        return self.decide(RC.CoordinatorState("collecting"), "abort", out)


class _StartsAfresh(RC.Coordinator):
    """Recovers by starting over, as if it had never decided."""

    def on_recover(self, log, out):
        return self.on_start(out)


class _SendsCommitBeforeForcing(RC.Coordinator):
    def decide(self, state, decision, out):
        out.decide(decision)
        out.cancel_timer("votes")
        out.broadcast(self.participants, Commit() if decision == "commit" else Abort())
        out.log(decision, force=True)
        return replace(state, phase=decision)


class _NeverAnswers(RC.Coordinator):
    def on_message(self, state, src, msg, out):
        if isinstance(msg, DecisionRequest):
            return state
        return super().on_message(state, src, msg, out)


class _CommitsOnFirstYes(RC.Coordinator):
    def on_message(self, state, src, msg, out):
        if isinstance(msg, Vote) and msg.vote == "yes" and state.phase == "collecting":
            return self.decide(state, "commit", out)
        return super().on_message(state, src, msg, out)


def test_visible_coordinator_checks_reject_each_known_wrong_coordinator() -> None:
    assert _visible("p2.twopc.coordinator", _NoVoteTimeout) == ["failure_free", "recovery"]
    assert _visible("p2.twopc.coordinator", _AbortsOnRecovery) == ["failure_free", "timeouts"]
    assert _visible("p2.twopc.coordinator", _StartsAfresh) == ["failure_free", "timeouts", "lossy"]
    assert _visible("p2.twopc.coordinator", _SendsCommitBeforeForcing) == ["lossy"]
    assert _visible("p2.twopc.coordinator", _NeverAnswers) == [
        "failure_free",
        "timeouts",
        "recovery",
    ]
    assert _visible("p2.twopc.coordinator", _CommitsOnFirstYes) == []


def test_broken_coordinators_get_partial_credit() -> None:
    # Without a vote timeout a participant that crashed before it got Prepare leaves the
    # coordinator, and every participant that voted yes, waiting forever once repaired.
    assert _passes("p2.twopc.coordinator", _NoVoteTimeout) == ["failure_free"]
    assert _passes("p2.twopc.coordinator", _AbortsOnRecovery) == ["failure_free", "timeouts"]
    assert _passes("p2.twopc.coordinator", _StartsAfresh) == ["failure_free", "timeouts"]
    assert _passes("p2.twopc.coordinator", _SendsCommitBeforeForcing) == ["lossy"]
    assert _passes("p2.twopc.coordinator", _NeverAnswers) == ["failure_free", "timeouts"]


def test_the_environments_answer_neither_exercise() -> None:
    # Each environment plugged in as the node it stands in for fails that exercise's
    # check: it keeps no log, sets no timeout of its own and has no recovery.
    coordinator, participant = "p2.twopc.coordinator", "p2.twopc.participant"
    with pytest.raises(AssertionError, match="commit decision is forced before it is sent"):
        check_part(coordinator, "failure_free", CoordinatorEnvironment)
    with pytest.raises(AssertionError, match="AC"):
        check_part(coordinator, "recovery", CoordinatorEnvironment)
    with pytest.raises(AssertionError, match="prepared record is forced before voting yes"):
        check_part(participant, "failure_free", ParticipantEnvironment)
    with pytest.raises(AssertionError, match="AC"):
        check_part(participant, "recovery", ParticipantEnvironment)
    # Plugged in the wrong way round they fail from the first part on.
    for exercise, environment in (
        (participant, CoordinatorEnvironment),
        (coordinator, ParticipantEnvironment),
    ):
        with pytest.raises(AssertionError):
            check_part(exercise, "failure_free", environment)


class _RaisesOnRecovery(RP.Participant):
    def on_recover(self, log, out):
        raise KeyError("prepared")


def test_a_failing_handler_is_reported_with_its_run() -> None:
    assert _passes("p2.twopc.participant", _RaisesOnRecovery) == ["failure_free", "timeouts"]
    with pytest.raises(AssertionError) as caught:
        verify("p2.twopc.participant", "recovery", _RaisesOnRecovery)
    message = str(caught.value)
    assert "on_recover on recovery: raised KeyError" in message
    assert "CRASHES" in message


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
        verify("p2.blocking", "found", answer, crashes=0)  # a run of another system


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


def _public_objects(package: str) -> dict[str, object]:
    """Every public class and function defined in the modules of ``package``."""
    import importlib
    import inspect
    import pkgutil

    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        modules.append(importlib.import_module(info.name))
    found: dict[str, object] = {}
    for module in modules:
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", None) == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_no_public_object_of_the_package_answers_the_2pc_exercises() -> None:
    """The answer search for these exercises: every public class and function of the commit
    layer, the engine and the checks, plugged into each visible check, passes none."""
    candidates = {
        **_public_objects("dtcourse.commit"),
        **_public_objects("dtcourse.engine"),
        **_public_objects("dtcourse.runtime.checks"),
    }
    assert "dtcourse.commit.protocols.twopc.Participant" in candidates
    assert "dtcourse.commit.environments.CoordinatorEnvironment" in candidates
    answers = []
    for exercise in ("p2.twopc.participant", "p2.twopc.coordinator", "p2.blocking"):
        parts = [name for name, _ in visible_registry()[exercise].parts]
        for label, obj in candidates.items():
            for part in parts:
                try:
                    check_part(exercise, part, obj)
                except Exception:  # noqa: BLE001 - any failure means "not an answer"
                    break
            else:
                answers.append(f"{label} answers {exercise}")
    print(f"tried {len(candidates)} objects on 3 exercises")
    assert answers == []
