"""The verdicts that make the reference protocols worth teaching."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit import properties
from dtcourse.commit.protocols import build
from dtcourse.engine.actors import ActorSystem, Crash, Partition
from dtcourse.engine.checker import CheckResult, check
from dtcourse.errors import ModelError


def always_violations(result: CheckResult) -> list[str]:
    return sorted(v.property for v in result.violations if v.kind == "always")


def test_2pc_keeps_ac1_to_ac4_under_crash_recovery_loss_and_duplication() -> None:
    system = build("2pc", 2, crashes=1, recover=True, loss=True, duplicate=True)
    result = check(system)
    assert result.complete
    assert always_violations(result) == []
    # Not vacuous: both outcomes happen, and the faults were really explored.
    assert {properties.SOME_COMMIT, properties.SOME_ABORT} <= set(result.examples)
    assert result.distinct > 10_000


@pytest.mark.slow
def test_2pc_keeps_atomicity_with_three_participants_crash_recovery_and_loss() -> None:
    result = check(build("2pc", 3, crashes=1, recover=True, loss=True), max_seconds=120)
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


def test_2pc_commits_when_nothing_fails() -> None:
    result = check(build("2pc", 3, votes="yes", timing="perfect"))
    assert result.complete and result.blocking is None
    # The only complaint: no run aborts, i.e. every run commits.
    assert [(v.kind, v.property) for v in result.violations] == [
        ("sometimes", properties.SOME_ABORT)
    ]


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


def test_2pc_participant_that_forgets_to_force_its_vote_breaks_atomicity() -> None:
    from dtcourse.commit.protocols import twopc

    class Sloppy(twopc.Participant):
        def on_message(self, state, src, msg, out):  # type: ignore[no-untyped-def]
            if isinstance(msg, twopc.Prepare) and state.phase == "working":
                out.cancel_timer("prepare")
                out.log(("prepared", msg.participants), force=False)  # the bug
                out.vote("yes")
                out.send(src, twopc.Vote("yes"))
                return twopc.ParticipantState("prepared", msg.participants - {self.name})
            return super().on_message(state, src, msg, out)

    nodes = [twopc.Coordinator("C", ["P1"]), Sloppy("P1", "C", "yes")]
    system = ActorSystem(
        nodes,
        properties=properties.properties(),
        faults=build("2pc", 1, crashes=1, recover=True).faults,
    )
    result = check(system)
    assert properties.AC1 in always_violations(result)


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
