"""Paxos Commit (Gray and Lamport, 2006): the coordinator's log replaced by 2F + 1 acceptors.

Each participant's vote is the value of its own Paxos instance. Ballot 0 of an instance
belongs to its participant, which may therefore skip phase one: it forces its prepared
record and sends ``Phase2a(0, prepared)`` (or ``aborted``) straight to every acceptor. An
acceptor gathers the ballot-0 values of every instance, forces them in one record and
reports them in one ``Phase2b`` to the leader (the paper's bundling). The leader learns an
instance's value once F + 1 acceptors report it; the transaction commits iff every
instance chose *prepared*. The leader writes nothing: the decision is in the acceptors'
logs.

The initial leader lives on the first acceptor's node ("C", as the paper places it). When
it fails, the second acceptor takes over; when a participant fails, the leader itself
does: a new leader runs both Paxos phases with a higher ballot for every instance,
keeping any value that may have been chosen and proposing *aborted* for the others. With
F = 0 there is one acceptor, on the leader's node, and the protocol is two-phase commit:
the vote is the Phase2a, the acceptor's record is the coordinator's decision record, and
a failed leader blocks the participants. With F = 1 one failure of the leader does not.
(The paper elects any acceptor as the next leader; here the second acceptor stands by,
which suffices for one failure.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dtcourse.commit.messages import Abort, Commit  # the same decision messages as 2PC
from dtcourse.engine.actors import Node, Out
from dtcourse.errors import ModelError

PREPARED = "prepared"
ABORTED = "aborted"
LEADER = "C"

Values = tuple[tuple[str, str], ...]  # (instance, value), sorted by instance


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    pass


@dataclass(frozen=True, slots=True)
class Phase1a:
    ballot: int


@dataclass(frozen=True, slots=True)
class Phase1b:
    ballot: int
    accepted_ballot: int
    values: Values


@dataclass(frozen=True, slots=True)
class Phase2a:
    ballot: int
    values: Values


@dataclass(frozen=True, slots=True)
class Phase2b:
    ballot: int
    values: Values


@dataclass(frozen=True, slots=True)
class Inquiry:
    pass


def acceptor_names(f: int) -> tuple[str, ...]:
    """The 2F + 1 acceptors: the leader's node first."""
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise ModelError(f"F (failures to tolerate) must be a whole number >= 0, got {f!r}")
    return (LEADER, *(f"A{i}" for i in range(2, 2 * f + 2)))


def outcome(values: Values) -> str:
    return "commit" if all(v == PREPARED for _, v in values) else "abort"


# -- acceptors, and the leaders among them ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcceptorState:
    promised: int = 0
    accepted_ballot: int = -1
    accepted: Values = ()
    gathering: frozenset[tuple[str, str]] = frozenset()
    # leader role
    ballot: int | None = None
    round: int = 0
    phase1: frozenset[tuple[str, int, Values]] = frozenset()
    proposal: Values = ()
    phase2: frozenset[tuple[str, Values]] = frozenset()
    decision: str | None = None


class Acceptor(Node):
    """One of the 2F + 1 acceptors; ``rank`` 0 is the initial leader, 1 its stand-by."""

    def __init__(
        self,
        name: str,
        acceptors: Sequence[str],
        participants: Sequence[str],
        rank: int | None = None,
    ) -> None:
        super().__init__(name)
        self.acceptors = tuple(acceptors)
        self.participants = tuple(sorted(participants))
        self.rank = rank
        self.quorum = len(self.acceptors) // 2 + 1
        self.leaders = tuple(self.acceptors[:2])

    # -- start and recovery ----------------------------------------------------------------------

    def on_start(self, out: Out) -> AcceptorState:
        if self.rank == 0:
            out.broadcast(self.participants, Prepare())
            out.set_timer("participants", waiting_on=self.participants)
            return AcceptorState(ballot=0)
        if self.rank == 1:
            out.set_timer("leader", waiting_on=(self.acceptors[0],))
        return AcceptorState()

    def on_recover(self, log: tuple[object, ...], out: Out) -> AcceptorState:
        state = AcceptorState()
        for record in log:
            match record:
                case ("promise", int(ballot)):
                    state = replace(state, promised=max(state.promised, ballot))
                case ("accepted", int(ballot), tuple(values)):
                    state = replace(
                        state,
                        promised=max(state.promised, ballot),
                        accepted_ballot=ballot,
                        accepted=values,
                    )
                case ("round", int(number)):
                    state = replace(state, round=number)
        if self.rank == 0:
            return self.take_over(state, out)
        if self.rank == 1:
            out.set_timer("leader", waiting_on=(self.acceptors[0],))
        return state

    # -- events ------------------------------------------------------------------------------------

    def on_message(self, state: AcceptorState, src: str, msg: object, out: Out):
        match msg:
            case Phase2a(0, values) if src in self.participants:
                return self.gather(state, values, out)
            case Phase2a(ballot, values):
                return self.phase2a(state, ballot, values, out)
            case Phase1a(ballot):
                return self.phase1a(state, src, ballot, out)
            case Phase1b(ballot, accepted_ballot, values):
                return self.phase1b(state, src, ballot, accepted_ballot, values, out)
            case Phase2b(ballot, values):
                return self.phase2b(state, src, ballot, values, out)
            case Inquiry() if state.decision is not None:
                out.send(src, Commit() if state.decision == "commit" else Abort())
        return state

    def on_timeout(self, state: AcceptorState, timer: str, out: Out):
        if state.decision is None and timer in ("leader", "participants"):
            return self.take_over(state, out)
        return state

    # -- acceptor --------------------------------------------------------------------------------

    def gather(self, state: AcceptorState, values: Values, out: Out) -> AcceptorState:
        """Ballot 0: collect every participant's own value, then accept them all at once."""
        if state.promised > 0 or state.accepted_ballot >= 0:
            return state
        gathering = state.gathering | set(values)
        state = replace(state, gathering=gathering)
        if {i for i, _ in gathering} != set(self.participants):
            return state
        return self.phase2a(replace(state, gathering=frozenset()), 0, tuple(sorted(gathering)), out)

    def phase2a(self, state: AcceptorState, ballot: int, values: Values, out: Out):
        if ballot < state.promised or ballot <= state.accepted_ballot:
            return state
        out.log(("accepted", ballot, values), force=True)
        state = replace(state, promised=ballot, accepted_ballot=ballot, accepted=values)
        return self.report(state, self.leader_of(ballot), Phase2b(ballot, values), out)

    def phase1a(self, state: AcceptorState, src: str, ballot: int, out: Out) -> AcceptorState:
        if ballot <= state.promised:
            return state
        out.log(("promise", ballot), force=True)
        state = replace(state, promised=ballot, gathering=frozenset())
        reply = Phase1b(ballot, state.accepted_ballot, state.accepted)
        return self.report(state, src, reply, out)

    def report(self, state: AcceptorState, leader: str, msg: object, out: Out) -> AcceptorState:
        if leader != self.name:
            out.send(leader, msg)
            return state
        if isinstance(msg, Phase1b):
            return self.phase1b(state, self.name, msg.ballot, msg.accepted_ballot, msg.values, out)
        assert isinstance(msg, Phase2b)
        return self.phase2b(state, self.name, msg.ballot, msg.values, out)

    def leader_of(self, ballot: int) -> str:
        return self.leaders[ballot % 2] if len(self.leaders) > 1 else self.leaders[0]

    # -- leader ----------------------------------------------------------------------------------

    def take_over(self, state: AcceptorState, out: Out) -> AcceptorState:
        """Start a higher ballot for every instance: phase one, then propose."""
        # Ballots never repeat: the leader's node uses even ones, the stand-by odd ones
        # (with one leader, every number), and the round is forced before it is used.
        number = state.round + 1
        ballot = number if len(self.leaders) == 1 else 2 * number - (self.rank or 0)
        out.log(("round", number), force=True)
        out.cancel_timer("leader")
        out.cancel_timer("participants")
        state = replace(
            state, ballot=ballot, round=number, phase1=frozenset(), phase2=frozenset(), proposal=()
        )
        for acceptor in self.acceptors:
            if acceptor == self.name:
                state = self.phase1a(state, self.name, ballot, out)
            else:
                out.send(acceptor, Phase1a(ballot))
        return state

    def phase1b(
        self,
        state: AcceptorState,
        src: str,
        ballot: int,
        accepted_ballot: int,
        values: Values,
        out: Out,
    ) -> AcceptorState:
        if ballot != state.ballot or state.proposal or state.decision is not None:
            return state
        phase1 = state.phase1 | {(src, accepted_ballot, values)}
        state = replace(state, phase1=phase1)
        if len({a for a, _, _ in phase1}) < self.quorum:
            return state
        chosen = dict.fromkeys(self.participants, ABORTED)
        best = -1
        for _, their_ballot, their_values in sorted(phase1, key=lambda r: r[1]):
            if their_ballot > best and their_values:
                chosen.update(their_values)
                best = their_ballot
        proposal = tuple(sorted(chosen.items()))
        state = replace(state, proposal=proposal)
        for acceptor in self.acceptors:
            if acceptor == self.name:
                state = self.phase2a(state, ballot, proposal, out)
            else:
                out.send(acceptor, Phase2a(ballot, proposal))
        return state

    def phase2b(
        self, state: AcceptorState, src: str, ballot: int, values: Values, out: Out
    ) -> AcceptorState:
        if ballot != state.ballot or state.decision is not None:
            return state
        phase2 = state.phase2 | {(src, values)}
        state = replace(state, phase2=phase2)
        reports = [v for a, v in phase2 if v == values]
        if len(reports) < self.quorum:
            return state
        decision = outcome(values)
        out.decide(decision)
        out.cancel_timer("participants")
        out.cancel_timer("leader")
        if ballot == 0:
            # The leader knows who voted: a participant that voted no has aborted already.
            told = [p for p, v in values if decision == "commit" or v == PREPARED]
        else:
            told = list(self.participants)
        out.broadcast(told, Commit() if decision == "commit" else Abort())
        return replace(state, decision=decision)


# -- participants ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RMState:
    phase: Literal["working", "prepared", "commit", "abort"]


class PaxosParticipant(Node):
    """A resource manager: its vote is its own Paxos instance's ballot-0 proposal."""

    def __init__(
        self,
        name: str,
        acceptors: Sequence[str],
        vote: Literal["yes", "no", "any"] = "yes",
    ) -> None:
        super().__init__(name)
        self.acceptors = tuple(acceptors)
        self.leaders = tuple(self.acceptors[:2])
        if vote not in ("yes", "no", "any"):
            raise ModelError(f"a vote is 'yes', 'no' or 'any', got {vote!r}")
        self.vote = vote

    def on_start(self, out: Out) -> RMState:
        waiting_on = () if self.vote == "any" else (self.acceptors[0],)
        out.set_timer("prepare", waiting_on=waiting_on)
        return RMState("working")

    def on_message(self, state: RMState, src: str, msg: object, out: Out):
        match msg, state.phase:
            case Prepare(), "working":
                out.cancel_timer("prepare")
                if self.vote == "no":
                    out.vote("no")
                    return self.abort_alone(out)
                out.log("prepared", force=True)
                out.vote("yes")
                out.broadcast(self.acceptors, Phase2a(0, ((self.name, PREPARED),)))
                out.set_timer("decision", waiting_on=self.leaders)
                return RMState("prepared")
            case (Commit() | Abort()) as decided, "prepared" | "working":
                value = "commit" if isinstance(decided, Commit) else "abort"
                if value == "commit" and state.phase == "working":
                    return state
                if state.phase == "prepared":
                    out.log(value, force=False)  # the acceptors' logs hold the outcome
                out.decide(value)
                out.cancel_timer("prepare")
                out.cancel_timer("decision")
                return RMState(value)  # type: ignore[arg-type]
        return state

    def abort_alone(self, out: Out) -> RMState:
        """Abort before voting yes: this instance's own ballot-0 value is *aborted*."""
        out.cancel_timer("prepare")
        out.decide("abort")
        out.broadcast(self.acceptors, Phase2a(0, ((self.name, ABORTED),)))
        return RMState("abort")

    def on_timeout(self, state: RMState, timer: str, out: Out):
        if timer == "prepare" and state.phase == "working":
            return self.abort_alone(out)
        if timer == "decision" and state.phase == "prepared":
            out.broadcast(self.leaders, Inquiry())
            out.set_timer("decision", waiting_on=self.leaders)
        return state

    def on_recover(self, log: tuple[object, ...], out: Out) -> RMState:
        for decision in ("commit", "abort"):
            if decision in log:
                out.decide(decision)
                return RMState(decision)
        if "prepared" not in log:
            return self.abort_alone(out)
        out.broadcast(self.leaders, Inquiry())
        out.set_timer("decision", waiting_on=self.leaders)
        return RMState("prepared")


def nodes(participants: Sequence[str], votes: Sequence[str], f: int = 1) -> list[Node]:
    """The leader's node, the other acceptors, then the participants."""
    acceptors = acceptor_names(f)
    made: list[Node] = [
        Acceptor(a, acceptors, participants, rank=i if i < 2 else None)
        for i, a in enumerate(acceptors)
    ]
    made.extend(
        PaxosParticipant(p, acceptors, v)  # type: ignore[arg-type]
        for p, v in zip(participants, votes, strict=True)
    )
    return made
