"""Two-phase commit as R* runs it, with every optimization whose cost the course counts.

These nodes follow the protocol rules of Mohan, Lindsay and Obermarck (1986) closely
enough that counting their messages and log writes gives the published costs (the
course's demonstration 2PC, ``twopc``, is their presumed-nothing pair). One coordinator
and one participant class cover the three presumptions:

* **presumed nothing**: every decision is forced everywhere and acknowledged; the
  coordinator forgets (lazy *end* record) once all acknowledgements are in;
* **presumed abort**: no information means abort, so aborts are neither forced nor
  acknowledged and the coordinator forgets an abort at once; participants may vote
  **read** (the read-only optimization): they write nothing and leave after phase one;
* **presumed commit**: no information means commit, so a forced *collecting* record
  naming the participants comes first; commits are neither acknowledged nor forced at
  the participants, aborts are both.

``colocated=True`` puts a participant on the coordinator's node: it shares the
coordinator's log, so its vote costs no message and no prepared record. ``OnePhase*``
nodes commit a single participant in one round trip. A participant that votes no aborts
alone and writes nothing (it never prepared). Conventions for counting are in
``dtcourse.commit.costs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dtcourse.commit.messages import Abort, Commit, decision_message  # as in 2PC
from dtcourse.engine.actors import Node, Out
from dtcourse.errors import ModelError

Presumption = Literal["nothing", "abort", "commit"]
PRESUMPTIONS: tuple[str, ...] = ("nothing", "abort", "commit")
VoteChoice = Literal["yes", "no", "any", "read"]


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    pass


@dataclass(frozen=True, slots=True)
class Vote:
    vote: str  # "yes", "no" or "read"


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Inquiry:
    """An in-doubt participant asks the coordinator for the outcome."""


@dataclass(frozen=True, slots=True)
class CommitOnePhase:
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    """The one-phase participant's answer: what it decided on its own."""

    decision: str


def check_presumption(presumption: str) -> Presumption:
    if presumption not in PRESUMPTIONS:
        raise ModelError(
            f"unknown presumption {presumption!r}; choose one of {', '.join(PRESUMPTIONS)}"
        )
    return presumption  # type: ignore[return-value]


def forced(presumption: str, decision: str, *, coordinator: bool = False) -> bool:
    """Whether a decision record is forced: everything the presumption would not
    reconstruct must survive a crash. The coordinator always forces a commit (losing it
    would turn the outcome into an abort); participants need not under presumed commit."""
    if presumption == "abort" and decision == "abort":
        return False
    return coordinator or not (presumption == "commit" and decision == "commit")


def acknowledged(presumption: str, decision: str) -> bool:
    """Whether participants acknowledge a decision: only the outcome that is not presumed
    needs the coordinator to remember it, and so to hear that it may forget."""
    return presumption == "nothing" or presumption != decision


# -- coordinator -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    """``forgotten``: the coordinator keeps nothing and answers inquiries by presumption."""

    phase: Literal["collecting", "commit", "abort", "forgotten"]
    yes: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    no: frozenset[str] = frozenset()
    pending: frozenset[str] = frozenset()


class Coordinator(Node):
    """The R* coordinator under one presumption; ``colocated`` makes it a participant too
    (it votes yes for its own local work)."""

    def __init__(
        self,
        name: str,
        participants: Sequence[str],
        presumption: Presumption = "abort",
        *,
        colocated: bool = False,
    ) -> None:
        super().__init__(name)
        self.participants = frozenset(participants)
        self.presumption = check_presumption(presumption)
        self.colocated = colocated

    def on_start(self, out: Out) -> CoordinatorState:
        if self.colocated:
            out.vote("yes")
        if self.presumption == "commit":
            out.log(("collecting", self.participants), force=True)
        state = CoordinatorState("collecting")
        if not self.participants:
            return self.decide(state, "commit", out)
        out.broadcast(self.participants, Prepare())
        out.set_timer("votes", waiting_on=self.participants)
        return state

    def on_message(self, state: CoordinatorState, src: str, msg: object, out: Out):
        match msg:
            case Vote(vote) if state.phase == "collecting":
                if vote == "no":
                    return self.decide(replace(state, no=state.no | {src}), "abort", out)
                if vote == "read":
                    state = replace(state, read=state.read | {src})
                else:
                    state = replace(state, yes=state.yes | {src})
                if state.yes | state.read == self.participants:
                    return self.decide(state, "commit", out)
                return state
            case Ack() if state.phase in ("commit", "abort") and src in state.pending:
                pending = state.pending - {src}
                if pending:
                    return replace(state, pending=pending)
                out.log("end", force=False)
                return CoordinatorState("forgotten")
            case Inquiry() if state.phase in ("commit", "abort"):
                out.send(src, decision_message(state.phase))
            case Inquiry() if state.phase == "forgotten":
                out.send(src, decision_message(self.presumed()))
        return state

    def on_timeout(self, state: CoordinatorState, timer: str, out: Out):
        if timer == "votes" and state.phase == "collecting":
            return self.decide(state, "abort", out)
        return state

    def presumed(self) -> str:
        """The answer for a transaction the coordinator knows nothing about. Presumed
        nothing forgets only after every acknowledgement, so nobody can still ask; a
        transaction it never decided could not have committed."""
        return "commit" if self.presumption == "commit" else "abort"

    def decide(self, state: CoordinatorState, decision: str, out: Out) -> CoordinatorState:
        # Read-only voters have left; a no voter has aborted alone: neither is told.
        tell = self.participants - state.read - state.no
        # Under presumed abort an abort writes no record at all (recovery presumes it), and
        # a commit in which every participant only read has nobody to tell and nothing to
        # remember: it writes nothing either.
        writes_nothing = self.presumption == "abort" and (
            decision == "abort" or not (tell or self.colocated)
        )
        if not writes_nothing:
            out.log(decision, force=forced(self.presumption, decision, coordinator=True))
        out.decide(decision)
        out.cancel_timer("votes")
        out.broadcast(tell, decision_message(decision))
        if not acknowledged(self.presumption, decision) or not (
            tell or self.colocated or (self.presumption != "abort")
        ):
            return CoordinatorState("forgotten")
        if not tell:
            # A remembered decision with nobody left to acknowledge it is closed at once.
            out.log("end", force=False)
            return CoordinatorState("forgotten")
        return CoordinatorState(decision, state.yes, state.read, state.no, tell)  # type: ignore[arg-type]

    def on_recover(self, log: tuple[object, ...], out: Out) -> CoordinatorState:
        if "end" in log:
            return CoordinatorState("forgotten")
        decision = next((r for r in log if r in ("commit", "abort")), None)
        if decision is not None:
            out.decide(decision)
            if not acknowledged(self.presumption, decision):
                return CoordinatorState("forgotten")
            # Who acknowledged was volatile: tell everyone again; decided ones re-ack.
            out.broadcast(self.participants, decision_message(decision))
            return CoordinatorState(decision, pending=self.participants)  # type: ignore[arg-type]
        if any(isinstance(r, tuple) and r[0] == "collecting" for r in log):
            # Presumed commit: the protocol was in progress, so it must abort, and say so.
            return self.decide(CoordinatorState("collecting"), "abort", out)
        if self.colocated:
            out.decide("abort")  # the local participant had not committed: it aborts
        return CoordinatorState("forgotten")


# -- participant -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantState:
    phase: Literal["working", "prepared", "commit", "abort", "read"]


class Participant(Node):
    """``vote``: ``"yes"``, ``"no"``, ``"read"`` (read-only: answers READ and leaves), or
    ``"any"`` (may abort on its own before voting, else votes yes)."""

    def __init__(
        self,
        name: str,
        coordinator: str,
        presumption: Presumption = "abort",
        vote: VoteChoice = "yes",
    ) -> None:
        super().__init__(name)
        self.coordinator = coordinator
        self.presumption = check_presumption(presumption)
        if vote not in ("yes", "no", "any", "read"):
            raise ModelError(f"a vote is 'yes', 'no', 'any' or 'read', got {vote!r}")
        if vote == "read" and self.presumption == "nothing":
            raise ModelError("the read-only vote is an optimization of presumed abort or commit")
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
                    out.decide("abort")
                    out.send(src, Vote("no"))
                    return ParticipantState("abort")
                if self.vote == "read":
                    out.send(src, Vote("read"))
                    return ParticipantState("read")
                out.log("prepared", force=True)
                out.vote("yes")
                out.send(src, Vote("yes"))
                out.set_timer("decision", waiting_on=(self.coordinator,))
                return ParticipantState("prepared")
            case (Commit() | Abort()) as decided, "prepared" | "working":
                value = "commit" if isinstance(decided, Commit) else "abort"
                if value == "commit" and state.phase == "working":
                    return state  # cannot happen: a commit needs this node's yes
                if state.phase == "prepared":
                    out.log(value, force=forced(self.presumption, value))
                out.decide(value)
                out.cancel_timer("prepare")
                out.cancel_timer("decision")
                if acknowledged(self.presumption, value):
                    out.send(src, Ack())
                return ParticipantState(value)  # type: ignore[arg-type]
            case (Commit() | Abort()) as decided, "commit" | "abort":
                value = "commit" if isinstance(decided, Commit) else "abort"
                if value == state.phase and acknowledged(self.presumption, value):
                    out.send(src, Ack())  # a recovered coordinator asks again
        return state

    def on_timeout(self, state: ParticipantState, timer: str, out: Out):
        if timer == "prepare" and state.phase == "working":
            if self.vote == "read":
                return ParticipantState("read")  # nothing to undo, no outcome to announce
            out.decide("abort")
            return ParticipantState("abort")
        if timer == "decision" and state.phase == "prepared":
            out.send(self.coordinator, Inquiry())
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
        out.send(self.coordinator, Inquiry())
        out.set_timer("decision", waiting_on=(self.coordinator,))
        return ParticipantState("prepared")


# -- one-phase commit -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnePhaseState:
    phase: Literal["waiting", "commit", "abort"]


class OnePhaseCoordinator(Node):
    """Hands the decision to the only participant and learns it from the answer; it logs
    nothing, since the participant's own commit record is the decision."""

    def __init__(self, name: str, participant: str) -> None:
        super().__init__(name)
        self.participant = participant

    def on_start(self, out: Out) -> OnePhaseState:
        out.send(self.participant, CommitOnePhase())
        out.set_timer("outcome", waiting_on=(self.participant,))
        return OnePhaseState("waiting")

    def on_message(self, state: OnePhaseState, src: str, msg: object, out: Out):
        if isinstance(msg, Outcome) and state.phase == "waiting":
            out.decide(msg.decision)
            out.cancel_timer("outcome")
            return OnePhaseState(msg.decision)  # type: ignore[arg-type]
        return state

    def on_timeout(self, state: OnePhaseState, timer: str, out: Out):
        if state.phase == "waiting":
            out.send(self.participant, CommitOnePhase())
            out.set_timer("outcome", waiting_on=(self.participant,))
        return state

    def on_recover(self, log: tuple[object, ...], out: Out) -> OnePhaseState:
        return self.on_start(out)


class OnePhaseParticipant(Node):
    """Commits (one forced record) or aborts on its own; repeats its answer when asked."""

    def __init__(self, name: str, coordinator: str, vote: VoteChoice = "yes") -> None:
        super().__init__(name)
        self.coordinator = coordinator
        if vote not in ("yes", "no", "any"):
            raise ModelError(f"a one-phase participant votes 'yes', 'no' or 'any', got {vote!r}")
        self.vote = vote

    def on_start(self, out: Out) -> OnePhaseState:
        waiting_on = () if self.vote == "any" else (self.coordinator,)
        out.set_timer("request", waiting_on=waiting_on)
        return OnePhaseState("waiting")

    def on_message(self, state: OnePhaseState, src: str, msg: object, out: Out):
        if not isinstance(msg, CommitOnePhase):
            return state
        if state.phase == "waiting":
            out.cancel_timer("request")
            if self.vote == "no":
                out.vote("no")
                out.decide("abort")
                state = OnePhaseState("abort")
            else:
                out.vote("yes")
                out.log("commit", force=True)
                out.decide("commit")
                state = OnePhaseState("commit")
        out.send(src, Outcome(state.phase))
        return state

    def on_timeout(self, state: OnePhaseState, timer: str, out: Out):
        if state.phase == "waiting":
            out.decide("abort")
            return OnePhaseState("abort")
        return state

    def on_recover(self, log: tuple[object, ...], out: Out) -> OnePhaseState:
        if "commit" in log:
            out.decide("commit")
            return OnePhaseState("commit")
        out.decide("abort")
        return OnePhaseState("abort")
