"""The commit variants as actor nodes: the checker's verdicts and the presumptions at work.

Presumed abort and the variants built on it (read-only, co-located) run on the
instructor's reference nodes, which the student package does not ship."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference import p3_presumed_abort as reference

from dtcourse.commit import properties
from dtcourse.commit.protocols import variants
from dtcourse.commit.protocols.catalog import build
from dtcourse.engine.actors import ActorSystem, Crash, Out
from dtcourse.engine.checker import check
from dtcourse.engine.network import Faults
from dtcourse.engine.sim import Fault, Latency, chaos, simulate
from dtcourse.errors import ModelError

CRASH_RECOVERY = [
    ("presumed nothing", 2, "any"),
    ("presumed abort", 2, "any"),
    ("presumed commit", 2, "any"),
    ("read-only", 2, ("read", "any")),
    ("presumed abort", 3, ("read", "any", "yes")),
    ("co-located", 3, "any"),
    ("one-phase", 1, "any"),
]


def _build(variant, *args, **options):
    """The catalogue's system, or the reference's for the variants built on presumed abort."""
    if variant in reference.RECORDED:
        return reference.system(variant, *args, **options)
    return build(variant, *args, **options)


@pytest.mark.parametrize(("variant", "n", "votes"), CRASH_RECOVERY)
def test_every_variant_keeps_ac1_to_ac4_under_crash_recovery(variant, n, votes):
    system = _build(variant, n, votes, crashes=1, recover=True, timing="async", blocking=False)
    result = check(system, max_states=200_000)
    assert result.complete, result.summary()
    assert not result.violations, result.summary()
    assert {properties.SOME_COMMIT, properties.SOME_ABORT} <= set(result.examples)


def test_paxos_commit_keeps_ac1_to_ac4_under_crash_recovery_within_a_bound():
    system = build("paxos commit", 1, "any", crashes=1, recover=True, blocking=False)
    result = check(system, max_states=40_000)
    assert not result.violations, result.summary()
    assert result.distinct == 40_000  # the bound was reached: every state seen was judged


def test_paxos_commit_keeps_atomicity_in_seeded_chaos_runs():
    system = build("paxos commit", 2, "any", crashes=3, recover=True, timing="async")
    result = chaos(system, runs=150, seed=7, crash_probability=0.3, recover_after=8.0)
    assert result.ok, result.to_dict()
    assert result.outcomes.get("commit", 0) > 0 and result.outcomes.get("abort", 0) > 0


def _blocking(system: ActorSystem):
    result = check(system)
    assert result.complete, result.summary()
    return result


@pytest.mark.parametrize("variant", ["presumed nothing", "presumed abort", "presumed commit"])
def test_2pc_blocks_when_its_coordinator_fails(variant):
    result = _blocking(_build(variant, 2, "yes", crashes=1, timing="perfect"))
    assert [v.property for v in result.violations] == [properties.NON_BLOCKING]
    assert Crash("C") in result.blocking.actions


def test_paxos_commit_with_f_0_blocks_like_2pc():
    result = _blocking(build("paxos commit", 1, "yes", f=0, crashes=1, timing="perfect"))
    assert [v.property for v in result.violations] == [properties.NON_BLOCKING]
    assert Crash("C") in result.blocking.actions


def test_paxos_commit_with_f_1_does_not_block_when_the_leader_fails():
    system = build("paxos commit", 1, "yes", f=1, crashes=1, timing="perfect")
    result = _blocking(system)
    assert result.ok, result.summary()
    assert properties.SOME_COMMIT in result.examples and properties.SOME_ABORT in result.examples


def test_the_stand_by_leader_finishes_a_transaction_whose_leader_crashed():
    system = build("paxos commit", 3, "yes", timing="perfect")
    result = simulate(
        system,
        latency=Latency("constant", 1.0, 1.0),
        faults=[Fault(2.5, "crash", "C")],
        timeout=3.0,
    )
    assert result.ok
    assert {result.decisions[p] for p in ("P1", "P2", "P3")} == {"commit"}
    assert result.decisions["A2"] == "commit"


# -- the presumptions at work ----------------------------------------------------------------------


def _run(variant, n, faults, votes="default"):
    system = _build(variant, n, votes, crashes=len(faults), recover=True, timing="perfect")
    return simulate(system, latency=Latency("constant", 1.0, 1.0), faults=faults, timeout=2.0)


def test_presumed_commit_participant_that_lost_its_lazy_commit_is_told_commit():
    # P1 writes commit lazily at t=3 and crashes before anything forces it; the coordinator
    # forgot the transaction after its forced commit, so it answers by presumption.
    result = _run("presumed commit", 2, [Fault(3.5, "crash", "P1"), Fault(5.0, "recover", "P1")])
    assert result.ok
    assert result.decisions["P1"] == "commit"
    inquiries = [
        e for e in result.trace.events if e.kind == "send" and "Inquiry" in (e.message or "")
    ]
    assert inquiries, "P1 should have recovered in doubt and asked"


def test_presumed_abort_participant_that_lost_its_lazy_abort_is_told_abort():
    system = reference.system("presumed abort", 2, ("yes", "no"), crashes=1, recover=True)
    result = simulate(
        system,
        latency=Latency("constant", 1.0, 1.0),
        faults=[Fault(3.5, "crash", "P1"), Fault(5.0, "recover", "P1")],
        timeout=2.0,
    )
    assert result.ok and result.decisions["P1"] == "abort"


def test_presumed_commit_without_its_collecting_record_breaks_atomicity():
    """The trap the R* design closes: drop the forced collecting record and the checker
    finds a run where a recovered coordinator's silence is read as commit."""

    class Careless(variants.Coordinator):
        def on_start(self, out: Out):
            out.broadcast(self.participants, variants.Prepare())
            out.set_timer("votes", waiting_on=self.participants)
            return variants.CoordinatorState("collecting")

    names = ("P1", "P2")
    system = ActorSystem(
        [
            Careless("C", names, "commit"),
            *(variants.Participant(p, "C", "commit", "any") for p in names),
        ],
        faults=Faults(crashes=1, recover=True),
        participants=names,
        properties=properties.properties(blocking=False),
    )
    result = check(system)
    assert properties.AC1 in {v.property for v in result.violations}


def test_forced_and_acknowledged_follow_the_presumption():
    assert variants.forced("nothing", "commit") and variants.forced("nothing", "abort")
    assert not variants.forced("commit", "commit") and variants.forced("commit", "abort")
    assert variants.forced("commit", "commit", coordinator=True)
    assert variants.acknowledged("nothing", "abort") and variants.acknowledged("nothing", "commit")
    assert variants.acknowledged("commit", "abort") and not variants.acknowledged(
        "commit", "commit"
    )
    for helper in (variants.forced, variants.acknowledged):
        with pytest.raises(ModelError, match="exercise p3.presumed_abort"):
            helper("abort", "abort")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: variants.Coordinator("C", ["P1"], "presumed"), "unknown presumption"),
        (lambda: variants.Coordinator("C", ["P1"], "abort"), "exercise p3.presumed_abort"),
        (lambda: variants.Participant("P1", "C", "abort"), "exercise p3.presumed_abort"),
        (lambda: variants.Participant("P1", "C", "nothing", "read"), "a vote is"),
        (lambda: variants.Participant("P1", "C", "commit", "maybe"), "a vote is"),
        (lambda: build("presumed abort", 2), "exercise p3.presumed_abort"),
        (lambda: build("co-located", 2), "exercise p3.presumed_abort"),
        (lambda: build("presumed commit", 2, ("read", "yes")), "a vote is one of"),
        (lambda: build("paxos commit", 2, f=-1), "F"),
        (lambda: build("two-phase", 2), "unknown variant"),
    ],
)
def test_bad_configurations_are_refused_with_advice(call, match):
    with pytest.raises(ModelError, match=match):
        call()
