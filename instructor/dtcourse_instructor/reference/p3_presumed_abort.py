"""Reference solution of p3.presumed_abort: two-phase commit under presumed abort, as R*
runs it (Mohan, Lindsay and Obermarck 1986), with the read-only vote and co-location.

No information means abort, so aborts are neither forced nor acknowledged and the
coordinator writes no abort record at all: it forgets an abort at once and answers an
inquiry about a transaction it does not know with Abort. Commits are as under presumed
nothing: forced at the coordinator before anyone hears of them, forced at each
participant, acknowledged, ended by a lazy *end* record. A participant may vote
**read** (it writes nothing and leaves after phase one); ``colocated=True`` puts a
participant on the coordinator's node, sharing its log.

The student package ships no presumed-abort node: ``package_data()`` records the costs of
the variants built on these nodes (``presumed abort``, ``read-only``, ``co-located``) so the
reading's tables, plots and ``dtcourse costs`` show them, and the visible checks compare
a student's counts with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from dtcourse.commit import costs, properties
from dtcourse.commit.protocols.catalog import COORDINATOR, RECORDED, participant_names
from dtcourse.commit.protocols.variants import (
    Abort,
    Ack,
    Commit,
    Inquiry,
    Prepare,
    Vote,
)
from dtcourse.engine.actors import ActorSystem, Node, Out
from dtcourse.engine.network import Faults, Network, Timing, check_timing
from dtcourse.errors import ModelError

__all__ = [
    "RECORDED_SIZES",
    "WRITES_SIZES",
    "PresumedAbortCoordinator",
    "PresumedAbortParticipant",
    "nodes",
    "package_data",
    "recorded_costs",
    "system",
]

#: Sizes recorded for ``dtcourse costs --participants`` (1 to 50) and the reading.
RECORDED_SIZES = range(1, 51)
#: Sizes whose writes at each node are recorded (the reading's plots and load curve).
WRITES_SIZES = range(1, 17)


def _message(decision: str) -> object:
    return Commit() if decision == "commit" else Abort()


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    """``forgotten``: nothing kept; an inquiry is answered by the presumption, abort."""

    phase: Literal["collecting", "commit", "forgotten"]
    yes: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    pending: frozenset[str] = frozenset()


class PresumedAbortCoordinator(Node):
    """``colocated``: the coordinator is also a participant (it votes yes for its own work)."""

    def __init__(self, name: str, participants: Sequence[str], *, colocated: bool = False):
        super().__init__(name)
        self.participants = frozenset(participants)
        self.colocated = colocated

    def on_start(self, out: Out) -> CoordinatorState:
        if self.colocated:
            out.vote("yes")
        state = CoordinatorState("collecting")
        if not self.participants:
            return self.commit(state, out)
        out.broadcast(self.participants, Prepare())
        out.set_timer("votes", waiting_on=self.participants)
        return state

    def on_message(self, state: CoordinatorState, src: str, msg: object, out: Out):
        match msg:
            case Vote("no") if state.phase == "collecting":
                # The no voter aborted alone and read-only voters left: tell the others.
                return self.abort(self.participants - state.read - {src}, out)
            case Vote("read" | "yes" as vote) if state.phase == "collecting":
                if vote == "read":
                    state = replace(state, read=state.read | {src})
                else:
                    state = replace(state, yes=state.yes | {src})
                if state.yes | state.read == self.participants:
                    return self.commit(state, out)
                return state
            case Ack() if state.phase == "commit" and src in state.pending:
                if state.pending != {src}:
                    return replace(state, pending=state.pending - {src})
                out.log("end", force=False)  # everyone has the commit: forget it
                return CoordinatorState("forgotten")
            case Inquiry() if state.phase == "commit":
                out.send(src, Commit())
            case Inquiry() if state.phase == "forgotten":
                out.send(src, Abort())  # no information: presumed aborted
        return state

    def on_timeout(self, state: CoordinatorState, timer: str, out: Out):
        if timer == "votes" and state.phase == "collecting":
            return self.abort(self.participants - state.read, out)
        return state

    def abort(self, tell: frozenset[str], out: Out) -> CoordinatorState:
        # No record and no acknowledgements: forgetting the transaction says "abort".
        out.decide("abort")
        out.cancel_timer("votes")
        out.broadcast(tell, Abort())
        return CoordinatorState("forgotten")

    def commit(self, state: CoordinatorState, out: Out) -> CoordinatorState:
        tell = self.participants - state.read
        out.decide("commit")
        out.cancel_timer("votes")
        if not (tell or self.colocated):
            # Every participant only read: nothing to remember, nobody to tell.
            return CoordinatorState("forgotten")
        out.log("commit", force=True)  # a lost commit record would turn into an abort
        out.broadcast(tell, Commit())
        if not tell:
            out.log("end", force=False)
            return CoordinatorState("forgotten")
        return CoordinatorState("commit", state.yes, state.read, tell)

    def on_recover(self, log: tuple[object, ...], out: Out) -> CoordinatorState:
        if "commit" in log and "end" not in log:
            out.decide("commit")
            # Who acknowledged was volatile: tell everyone again; decided ones re-ack.
            out.broadcast(self.participants, Commit())
            return CoordinatorState("commit", pending=self.participants)
        if "commit" not in log and self.colocated:
            out.decide("abort")  # the local participant had not committed: it aborts
        return CoordinatorState("forgotten")  # ended, or never committed: presumed abort


@dataclass(frozen=True, slots=True)
class ParticipantState:
    phase: Literal["working", "prepared", "commit", "abort", "read"]


class PresumedAbortParticipant(Node):
    """``vote``: ``"yes"``, ``"no"``, ``"any"`` (may abort on its own before voting, else
    votes yes) or ``"read"`` (read-only: answers READ, writes nothing, leaves)."""

    def __init__(self, name: str, coordinator: str, vote: str = "yes") -> None:
        super().__init__(name)
        if vote not in ("yes", "no", "any", "read"):
            raise ModelError(f"a vote is 'yes', 'no', 'any' or 'read', got {vote!r}")
        self.coordinator = coordinator
        self.vote = vote

    def on_start(self, out: Out) -> ParticipantState:
        waiting_on = () if self.vote == "any" else (self.coordinator,)
        out.set_timer("prepare", waiting_on=waiting_on)
        return ParticipantState("working")

    def on_message(self, state: ParticipantState, src: str, msg: object, out: Out):
        match msg, state.phase:
            case Prepare(), "working":
                out.cancel_timer("prepare")
                if self.vote == "no":
                    out.vote("no")
                    out.decide("abort")  # aborts alone; it never prepared, so writes nothing
                    out.send(src, Vote("no"))
                    return ParticipantState("abort")
                if self.vote == "read":
                    out.send(src, Vote("read"))
                    return ParticipantState("read")
                out.log("prepared", force=True)  # a yes vote is a promise: on disk first
                out.vote("yes")
                out.send(src, Vote("yes"))
                out.set_timer("decision", waiting_on=(self.coordinator,))
                return ParticipantState("prepared")
            case Commit(), "prepared":
                return self.learn(state, "commit", src, out)
            case Abort(), "prepared" | "working":
                return self.learn(state, "abort", src, out)
            case Commit(), "commit":
                out.send(src, Ack())  # a recovered coordinator asks again
        return state

    def learn(self, state: ParticipantState, decision: str, src: str, out: Out):
        if state.phase == "prepared":
            # A lost abort record costs nothing: in doubt again, the participant asks and
            # hears "abort". A lost commit record after the ACK would be fatal.
            out.log(decision, force=decision == "commit")
        out.decide(decision)
        out.cancel_timer("prepare")
        out.cancel_timer("decision")
        if decision == "commit":
            out.send(src, Ack())  # only a commit is remembered until acknowledged
        return ParticipantState(decision)  # type: ignore[arg-type]

    def on_timeout(self, state: ParticipantState, timer: str, out: Out):
        if timer == "prepare" and state.phase == "working":
            if self.vote == "read":
                return ParticipantState("read")  # nothing to undo, no outcome to announce
            out.decide("abort")
            return ParticipantState("abort")
        if timer == "decision" and state.phase == "prepared":
            out.send(self.coordinator, Inquiry())  # in doubt: ask, and ask again later
            out.set_timer("decision", waiting_on=(self.coordinator,))
        return state

    def on_recover(self, log: tuple[object, ...], out: Out) -> ParticipantState:
        for decision in ("commit", "abort"):
            if decision in log:
                out.decide(decision)
                return ParticipantState(decision)  # type: ignore[arg-type]
        if "prepared" not in log:
            if self.vote == "read":
                return self.on_start(out)  # a read-only node keeps no outcome: start afresh
            out.decide("abort")
            return ParticipantState("abort")
        out.send(self.coordinator, Inquiry())  # in doubt: only the coordinator knows
        out.set_timer("decision", waiting_on=(self.coordinator,))
        return ParticipantState("prepared")


# -- the catalogue's variants built on these nodes ---------------------------------------


def nodes(
    variant: str, participants: int, votes: str | Sequence[str] = "default"
) -> tuple[list[Node], tuple[str, ...]]:
    """The nodes of a recorded variant, named as ``catalog.nodes`` names the others, and
    the participants the atomic-commit properties judge (read-only voters are not)."""
    if variant not in RECORDED:
        raise ModelError(f"{variant!r} is not built on presumed abort; use catalog.build")
    names = participant_names(variant, participants)
    colocated = variant == "co-located"
    remote = names[1:] if colocated else names
    default = "read" if variant == "read-only" else "yes"
    if votes == "default":
        chosen: tuple[str, ...] = (default,) * len(remote)
    elif isinstance(votes, str):
        chosen = (votes,) * len(remote)
    else:
        chosen = tuple(votes)[1:] if colocated else tuple(votes)
    if len(chosen) != len(remote):
        raise ModelError(f"give one vote per participant: {len(names)} needed, got {votes}")
    made: list[Node] = [
        PresumedAbortCoordinator(COORDINATOR, remote, colocated=colocated),
        *(PresumedAbortParticipant(p, COORDINATOR, v) for p, v in zip(remote, chosen, strict=True)),
    ]
    judged = tuple(
        p for p, v in zip(names, (("yes",) if colocated else ()) + chosen, strict=True)
        if v != "read"
    )  # fmt: skip
    return made, judged


def system(
    variant: str,
    participants: int = 3,
    votes: str | Sequence[str] = "default",
    *,
    crashes: int = 0,
    recover: bool = False,
    loss: bool = False,
    timing: Timing | str = "perfect",
    blocking: bool = True,
) -> ActorSystem:
    """``catalog.build`` for the recorded variants."""
    made, judged = nodes(variant, participants, votes)
    return ActorSystem(
        made,
        network=Network(loss=loss),
        faults=Faults(crashes=crashes, recover=recover),
        timing=check_timing(timing),
        participants=judged,
        properties=properties.properties(blocking=blocking),
        name=variant,
    )


def _measured(variant: str, n: int, outcome: str, read_only: int = 0):
    votes = costs.votes_for(variant, n, outcome, read_only)
    result = costs.failure_free(system(variant, n, votes, blocking=False))
    if not result.ok:
        raise ModelError(f"{variant}: the failure-free run broke {result.violations}")
    read_only = n if variant == "read-only" else read_only
    return costs.cost_of(result, variant, outcome, n, read_only), result


def recorded_costs() -> dict[str, Any]:
    """Every count the student package shows for the recorded variants, measured now."""
    rows = []
    writes = {}
    for variant in RECORDED:
        for outcome in costs.outcomes(variant):
            for n in RECORDED_SIZES:
                if variant == "co-located" and outcome == "abort" and n < 2:
                    continue
                row, result = _measured(variant, n, outcome)
                rows.append(row)
                if n in WRITES_SIZES:
                    writes[(variant, outcome, n)] = costs.node_writes(result)
    for n in WRITES_SIZES:
        for k in range(1, n):
            rows.append(_measured("presumed abort", n, "commit", read_only=k)[0])
    return costs.recorded_costs_json(rows, writes)


def package_data() -> dict[str, Any]:
    """Files of the student package written by ``dtcourse build``, by path under ``dtcourse/``."""
    return {"commit/recorded_costs.json": recorded_costs()}
