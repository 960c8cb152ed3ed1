"""The verdicts that make the course's protocols worth teaching, and the instructor's
reference 2PC right."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference import p2_twopc_coordinator as reference
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit import properties
from dtcourse.commit.protocols import build
from dtcourse.engine.actors import ActorSystem, Crash, Partition
from dtcourse.engine.checker import CheckResult, check
from dtcourse.errors import ModelError


def always_violations(result: CheckResult) -> list[str]:
    return sorted(v.property for v in result.violations if v.kind == "always")


def _reachable(system: ActorSystem) -> int:
    """How many states a plain walk of the system's actions reaches: a count made without
    the checker (no symmetry, no property bookkeeping), to hold the checker's against."""
    seen = set(system.init_states())
    frontier = list(seen)
    while frontier:
        state = frontier.pop()
        for action in system.actions(state):
            nxt = system.next_state(state, action)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return len(seen)


# -- the course's 2PC: presumed nothing with acknowledgements, as the demonstrations run it


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_2pc_commits_when_nothing_fails_in_2_times_3_to_the_n_minus_1_states(n: int) -> None:
    result = check(build("2pc", n, votes="yes", timing="perfect"))
    assert result.complete and result.blocking is None
    # The only complaint: no run aborts, i.e. every run commits.
    assert [(v.kind, v.property) for v in result.violations] == [
        ("sometimes", properties.SOME_ABORT)
    ]
    # Counted by hand. Nothing fails, so no timer fires and each participant moves on its
    # own. Before the decision each is at one of 3 steps (PREPARE in flight, its YES in
    # flight, YES received) and not all have received YES: 3^n - 1 states. After it, each is
    # at one of 3 steps (COMMIT in flight, its ACK in flight, ACK received): 3^n states, the
    # last one the forgotten transaction with its lazy end record.
    assert result.distinct == 2 * 3**n - 1


def test_2pc_state_counts_agree_with_a_plain_walk() -> None:
    system = build("2pc", 2, crashes=1)
    assert check(system).distinct == _reachable(system) == 5_151


def test_2pc_keeps_ac1_to_ac4_under_crash_recovery_and_loss() -> None:
    system = build("2pc", 2, crashes=1, recover=True, loss=True)
    result = check(system)
    assert result.complete
    assert always_violations(result) == []
    # Not vacuous: both outcomes happen, and the faults were really explored.
    assert {properties.SOME_COMMIT, properties.SOME_ABORT} <= set(result.examples)
    assert result.distinct == _reachable(system) == 19_589


@pytest.mark.slow
def test_2pc_keeps_ac1_to_ac4_under_crash_recovery_and_duplication() -> None:
    result = check(build("2pc", 2, crashes=1, recover=True, duplicate=True), max_seconds=300)
    assert result.complete
    assert always_violations(result) == []


def test_2pc_blocks_when_the_coordinator_fails_after_every_participant_voted_yes() -> None:
    system = build("2pc", 2, crashes=1, cooperative=True)
    result = check(system)
    assert result.blocking is not None
    witness = result.blocking
    last = witness.last
    assert isinstance(witness.actions[-1], Crash) and witness.actions[-1].node == "C"
    assert not system.is_up(last, "C")
    for p in system.participants:
        assert system.vote(last, p) == "yes"
        assert system.decision(last, p) is None
    assert len(witness) == 3  # both prepares delivered, then the crash: shortest
    trace = system.trace_of(witness)
    assert [e.kind for e in trace.events][-1] == "crash"
    assert always_violations(result) == []


def test_basic_2pc_blocks_as_soon_as_one_participant_is_uncertain() -> None:
    system = build("2pc", 2, crashes=1)
    result = check(system)
    assert result.blocking is not None and len(result.blocking) == 2
    assert system.vote(result.blocking.last, "P1") == "yes"
    assert system.vote(result.blocking.last, "P2") is None


def test_a_participant_that_aborted_alone_answers_a_late_prepare_with_no() -> None:
    # The participant of ``variants`` says nothing to a Prepare once it has aborted on its
    # own, so under a perfect failure detector its coordinator, and a participant that voted
    # yes, wait forever although nothing failed. The course's 2PC answers no.
    from dtcourse.commit.protocols.catalog import build as build_variant

    silent = check(build_variant("presumed nothing", 2, "any", timing="perfect"))
    assert [v.property for v in silent.violations] == [properties.NON_BLOCKING]
    answered = check(build("2pc", 2, votes="any", timing="perfect"))
    assert answered.complete and answered.violations == ()


def test_the_course_2pc_speaks_other_messages_than_the_exercises() -> None:
    # Its nodes speak R*'s messages (a Prepare without the participant list, Ack, Inquiry),
    # not the exercise's, so they cannot stand in for a student's node.
    from dtcourse.commit import messages
    from dtcourse.commit.protocols import twopc, variants

    assert variants.Prepare is not messages.Prepare and variants.Vote is not messages.Vote
    assert twopc.__all__ == ["Participant", "nodes"]


# -- 3PC


def test_3pc_does_not_block_under_crash_stop_failures_without_partitions() -> None:
    for participants, crashes in ((3, 1), (2, 2)):
        result = check(build("3pc", participants, crashes=crashes, rule=terminate))
        assert result.complete
        assert result.blocking is None, f"{participants} participants, {crashes} crashes"
        assert result.violations == ()
        assert {properties.SOME_COMMIT, properties.SOME_ABORT} <= set(result.examples)


def test_3pc_breaks_atomicity_under_a_partition_one_side_commits_the_other_aborts() -> None:
    system = build("3pc", 2, partitions=1, rule=terminate)
    result = check(system)
    violation = next(v for v in result.violations if v.property == properties.AC1)
    assert violation.path is not None
    assert any(isinstance(a, Partition) for a in violation.path.actions)
    trace = system.trace_of(violation.path)
    decided = trace.decisions()
    assert set(decided.values()) == {"commit", "abort"}
    assert decided["C"] == "commit" and decided["P2"] == "abort"


def test_3pc_with_arbitrary_timeouts_is_unsafe_even_without_partitions() -> None:
    result = check(build("3pc", 2, timing="async", rule=terminate))
    assert properties.AC1 in always_violations(result)


def test_3pc_needs_its_termination_rule_and_2pc_refuses_one() -> None:
    with pytest.raises(ModelError, match="3PC needs its termination rule"):
        build("3pc", 2)
    with pytest.raises(ModelError, match="2PC has none"):
        build("2pc", 2, rule=terminate)


def test_the_naive_rule_breaks_agreement_once_everyone_precommitted_and_c_crashed() -> None:
    from dtcourse.commit.protocols.threepc import naive_rule

    system = build("3pc", 2, crashes=1, rule=naive_rule)
    result = check(system)
    assert result.complete and result.blocking is None
    violation = next(v for v in result.violations if v.property == properties.AC1)
    assert violation.path is not None
    crash = [a for a in violation.path.actions if isinstance(a, Crash)]
    assert [a.node for a in crash] == ["C"]
    decided = system.trace_of(violation.path).decisions()
    assert decided["C"] == "commit" and "abort" in decided.values()


def test_the_rule_reads_the_states_in_the_exercises_words() -> None:
    seen: set[str] = set()

    def recording(states):  # type: ignore[no-untyped-def]
        seen.update(states.values())
        return terminate(states)

    result = check(build("3pc", 2, crashes=2, rule=recording))
    assert result.ok and result.blocking is None
    assert seen and seen <= {"prepared", "precommitted", "committed", "aborted"}
    assert {"prepared", "precommitted"} <= seen


def test_builder_rejects_bad_options() -> None:
    with pytest.raises(ModelError, match="unknown protocol"):
        build("4pc")
    with pytest.raises(ModelError, match="positive integer"):
        build("2pc", 0)
    with pytest.raises(ModelError, match="vote"):
        build("2pc", 2, votes="maybe")
    with pytest.raises(ModelError, match="bad protocol option"):
        build("2pc", 2, colour="red")
    with pytest.raises(ModelError, match="interchangeable"):
        build("3pc", 2, symmetry=True, rule=terminate)


# -- the instructor's reference 2PC: the exercises' answer, never in the student wheel


def test_reference_2pc_keeps_ac1_to_ac4_under_crash_recovery_loss_and_duplication() -> None:
    system = reference.system(2, crashes=1, recover=True, loss=True, duplicate=True)
    result = check(system)
    assert result.complete
    assert always_violations(result) == []
    assert {properties.SOME_COMMIT, properties.SOME_ABORT} <= set(result.examples)
    assert result.distinct > 10_000


@pytest.mark.slow
def test_reference_2pc_keeps_atomicity_with_three_participants_crash_recovery_and_loss() -> None:
    result = check(reference.system(3, crashes=1, recover=True, loss=True), max_seconds=120)
    assert result.complete
    assert always_violations(result) == []


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_reference_2pc_commits_in_3_to_the_n_minus_1_plus_2_to_the_n_states(n: int) -> None:
    result = check(reference.system(n, votes="yes", timing="perfect"))
    assert result.complete and result.blocking is None
    # By hand, as for the course's 2PC but without ACKs: after the decision each participant
    # is at one of 2 steps (COMMIT in flight, COMMIT received).
    assert result.distinct == 3**n - 1 + 2**n


def test_reference_2pc_blocks_with_every_participant_uncertain_if_cooperative() -> None:
    cooperative = check(reference.system(2, crashes=1, cooperative=True))
    assert cooperative.blocking is not None and len(cooperative.blocking) == 3
    basic = check(reference.system(2, crashes=1))
    assert basic.blocking is not None and len(basic.blocking) == 2


def test_reference_participant_that_forgets_to_force_its_vote_breaks_atomicity() -> None:
    from dtcourse_instructor.reference.p2_twopc_participant import Participant, ParticipantState

    from dtcourse.commit.messages import Prepare, Vote

    class Sloppy(Participant):
        def on_message(self, state, src, msg, out):  # type: ignore[no-untyped-def]
            if isinstance(msg, Prepare) and state.phase == "working":
                out.cancel_timer("prepare")
                out.log(("prepared", msg.participants), force=False)  # the bug
                out.vote("yes")
                out.send(src, Vote("yes"))
                return ParticipantState("prepared", msg.participants - {self.name})
            return super().on_message(state, src, msg, out)

    nodes = [reference.Coordinator("C", ["P1"]), Sloppy("P1", "C", "yes")]
    system = ActorSystem(
        nodes,
        properties=properties.properties(),
        faults=build("2pc", 1, crashes=1, recover=True).faults,
    )
    result = check(system)
    assert properties.AC1 in always_violations(result)
