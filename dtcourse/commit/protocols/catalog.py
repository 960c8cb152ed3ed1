"""The commit-protocol variants of the optimization phase, by name, as actor systems.

``build(variant, participants, votes=...)`` wires the nodes of ``variants`` and
``paxos_commit`` into an ``ActorSystem`` with the atomic-commit properties attached, so
the simulator can count a variant's costs and the checker can judge it. Naming follows
the conventions of ``dtcourse.commit.costs``: the coordinator is ``C``; participants are
``P1 ... Pn``, except that a co-located coordinator is itself the first of the ``n``
participants; Paxos Commit adds acceptors ``A2 ... A(2F+1)`` (the first acceptor is on
``C``). Read-only participants (vote ``"read"``) are not judged: their outcome is
irrelevant, since they wrote nothing.

The ``RECORDED`` variants run on presumed-abort nodes, which are the exercise
p3.presumed_abort: the package has their costs, recorded when the course was built (see
``dtcourse.commit.costs``), and no nodes to build them from.
"""

from __future__ import annotations

from collections.abc import Sequence

from dtcourse.commit import properties
from dtcourse.engine.actors import ActorSystem, Node
from dtcourse.engine.network import Faults, Network, Timing, check_timing
from dtcourse.errors import ModelError

PRESUMED = {"presumed nothing": "nothing", "presumed abort": "abort", "presumed commit": "commit"}
VARIANTS: tuple[str, ...] = (
    *PRESUMED,
    "read-only",
    "one-phase",
    "co-located",
    "paxos commit",
)
COORDINATOR = "C"
#: Variants whose nodes would answer p3.presumed_abort: costs only, recorded at build time.
RECORDED: tuple[str, ...] = ("presumed abort", "read-only", "co-located")


def participant_names(variant: str, count: int) -> tuple[str, ...]:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ModelError(f"the number of participants must be a whole number >= 1, got {count!r}")
    if variant == "co-located":
        return (COORDINATOR, *(f"P{i}" for i in range(1, count)))
    return tuple(f"P{i}" for i in range(1, count + 1))


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ModelError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    return variant


def check_runnable(variant: str) -> str:
    """A variant the package has nodes for; the recorded ones are refused with advice."""
    if check_variant(variant) in RECORDED:
        raise ModelError(
            f"{variant} runs on presumed-abort nodes, which are the exercise "
            "p3.presumed_abort, so the package cannot run it; its costs were recorded when "
            "the course was built (dtcourse.commit.costs.measure). Write the nodes in the "
            "Phase 3 notebook and run them with dtcourse.commit.costs.run_nodes"
        )
    return variant


def _votes(variant: str, names: Sequence[str], votes: str | Sequence[str]) -> tuple[str, ...]:
    choices = tuple(votes) if not isinstance(votes, str) else (votes,) * len(names)
    if votes == "default":
        choices = ("yes",) * len(names)
    if len(choices) != len(names):
        raise ModelError(f"give one vote per participant: {len(names)} needed, got {choices}")
    allowed = ("yes", "no", "any")
    for choice in choices:
        if choice not in allowed:
            raise ModelError(f"{variant}: a vote is one of {', '.join(allowed)}, got {choice!r}")
    return choices


def nodes(
    variant: str, participants: int, votes: str | Sequence[str] = "default", *, f: int = 1
) -> tuple[list[Node], tuple[str, ...]]:
    """The variant's nodes (coordinator first) and the participants whose votes and
    decisions the atomic-commit properties judge."""
    from dtcourse.commit.protocols import paxos_commit, variants

    check_runnable(variant)
    names = participant_names(variant, participants)
    if variant == "one-phase" and participants != 1:
        raise ModelError(
            f"one-phase commit is for a single participant, got {participants}; use another "
            "variant when several participants must agree"
        )
    chosen = _votes(variant, names, votes)
    judged = tuple(p for p, v in zip(names, chosen, strict=True) if v != "read")
    if variant == "paxos commit":
        return paxos_commit.nodes(names, chosen, f), judged
    if variant == "one-phase":
        return [
            variants.OnePhaseCoordinator(COORDINATOR, names[0]),
            variants.OnePhaseParticipant(names[0], COORDINATOR, chosen[0]),  # type: ignore[arg-type]
        ], judged
    presumption = PRESUMED[variant]
    return [
        variants.Coordinator(COORDINATOR, names, presumption),  # type: ignore[arg-type]
        *(
            variants.Participant(p, COORDINATOR, presumption, v)  # type: ignore[arg-type]
            for p, v in zip(names, chosen, strict=True)
        ),
    ], judged


def build(
    variant: str,
    participants: int = 3,
    votes: str | Sequence[str] = "default",
    *,
    f: int = 1,
    crashes: int = 0,
    recover: bool = False,
    loss: bool = False,
    timing: Timing | str = "perfect",
    blocking: bool = True,
) -> ActorSystem:
    """The variant as an actor system with AC1-AC4, both outcomes reachable and, with
    ``blocking``, the non-blocking liveness property."""
    made, judged = nodes(variant, participants, votes, f=f)
    return ActorSystem(
        made,
        network=Network(loss=loss),
        faults=Faults(crashes=crashes, recover=recover),
        timing=check_timing(timing),
        participants=judged,
        properties=properties.properties(blocking=blocking),
        name=variant if variant != "paxos commit" else f"paxos commit F={f}",
    )
