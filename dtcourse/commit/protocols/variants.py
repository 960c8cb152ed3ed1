"""Two-phase commit as R* runs it, under the presumptions that are no exercise's answer.

These nodes follow the protocol rules of Mohan, Lindsay and Obermarck (1986) closely
enough that counting their messages and log writes gives the published costs (the
course's demonstration 2PC, ``twopc``, is their presumed-nothing pair). One coordinator
and one participant class cover two presumptions:

* **presumed nothing**: every decision is forced everywhere and acknowledged; the
  coordinator forgets (lazy *end* record) once all acknowledgements are in;
* **presumed commit**: no information means commit, so a forced *collecting* record
  naming the participants comes first; commits are neither acknowledged nor forced at
  the participants, aborts are both.

**Presumed abort** is not here: turning presumed nothing into it is the exercise
p3.presumed_abort, and the read-only vote and co-location, which the course counts on
top of presumed abort, would answer it too. Their costs are in ``dtcourse.commit.costs``,
recorded when the course was built. ``OnePhase*`` nodes commit a single participant in
one round trip. A participant that votes no aborts alone and writes nothing (it never
prepared). Conventions for counting are in ``dtcourse.commit.costs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dtcourse.commit.messages import Abort, Commit, decision_message  # as in 2PC
from dtcourse.engine.actors import Node, Out
from dtcourse.errors import ModelError

__all__ = [
    "PRESUMPTIONS",
    "Abort",
    "Ack",
    "Commit",
    "CommitOnePhase",
    "Coordinator",
    "CoordinatorState",
    "Inquiry",
    "OnePhaseCoordinator",
    "OnePhaseParticipant",
    "OnePhaseState",
    "Outcome",
    "Participant",
    "ParticipantState",
    "Prepare",
    "Presumption",
    "Vote",
    "VoteChoice",
    "acknowledged",
    "check_presumption",
    "forced",
]

Presumption = Literal["nothing", "commit"]
PRESUMPTIONS: tuple[str, ...] = ("nothing", "commit")
VoteChoice = Literal["yes", "no", "any"]


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    pass


@dataclass(frozen=True, slots=True)
class Vote:
    vote: str  # "yes" or "no" (and "read" where the read-only vote exists)


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
    if presumption == "abort":
        raise ModelError(
            "presumed abort is the exercise p3.presumed_abort, so these nodes do not run it: "
            "write PresumedAbortCoordinator and PresumedAbortParticipant in the Phase 3 "
            "notebook (its costs are in dtcourse.commit.costs.measure)"
        )
    if presumption not in PRESUMPTIONS:
        raise ModelError(
            f"unknown presumption {presumption!r}; choose one of {', '.join(PRESUMPTIONS)}"
        )
    return presumption  # type: ignore[return-value]


def forced(presumption: str, decision: str, *, coordinator: bool = False) -> bool:
    """Whether a decision record is forced: everything the presumption would not
    reconstruct must survive a crash. Presumed nothing forces every decision; presumed
    commit forces everything but a participant's commit, which an inquiry recovers."""
    if check_presumption(presumption) == "nothing":
        return True
    return coordinator or decision == "abort"


def acknowledged(presumption: str, decision: str) -> bool:
    """Whether participants acknowledge a decision: presumed nothing acknowledges both;
    presumed commit only aborts, the outcome its coordinator must remember until told."""
    if check_presumption(presumption) == "nothing":
        return True
    return decision == "abort"


# -- coordinator -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    """``forgotten``: the coordinator keeps nothing and answers inquiries by presumption."""

    phase: Literal["collecting", "commit", "abort", "forgotten"]
    yes: frozenset[str] = frozenset()
    pending: frozenset[str] = frozenset()


class Coordinator(Node):
    """The R* coordinator under presumed nothing or presumed commit."""

    def __init__(
        self, name: str, participants: Sequence[str], presumption: Presumption = "nothing"
    ) -> None:
        super().__init__(name)
        self.participants = frozenset(participants)
        self.presumption = check_presumption(presumption)

    def on_start(self, out: Out) -> CoordinatorState:
        if self.presumption == "commit":
            out.log(("collecting", self.participants), force=True)
        state = CoordinatorState("collecting")
        if not self.participants:
            return self.decide(state, "commit", self.participants, out)
        out.broadcast(self.participants, Prepare())
        out.set_timer("votes", waiting_on=self.participants)
        return state

    def on_message(self, state: CoordinatorState, src: str, msg: object, out: Out):
        match msg:
            case Vote("no") if state.phase == "collecting":
                # The no voter has aborted alone: only the others are told.
                return self.decide(state, "abort", self.participants - {src}, out)
            case Vote("yes") if state.phase == "collecting":
                state = replace(state, yes=state.yes | {src})
                if state.yes == self.participants:
                    return self.decide(state, "commit", self.participants, out)
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
            return self.decide(state, "abort", self.participants, out)
        return state

    def presumed(self) -> str:
        """The answer for a transaction the coordinator knows nothing about. Presumed
        nothing forgets only after every acknowledgement, so nobody can still ask; a
        transaction it never decided could not have committed."""
        return "commit" if self.presumption == "commit" else "abort"

    def decide(
        self, state: CoordinatorState, decision: str, tell: frozenset[str], out: Out
    ) -> CoordinatorState:
        out.log(decision, force=forced(self.presumption, decision, coordinator=True))
        out.decide(decision)
        out.cancel_timer("votes")
        out.broadcast(tell, decision_message(decision))
        if not acknowledged(self.presumption, decision):
            return CoordinatorState("forgotten")  # presumed commit: the record says it all
        if not tell:
            # A remembered decision with nobody left to acknowledge it is closed at once.
            out.log("end", force=False)
            return CoordinatorState("forgotten")
        return CoordinatorState(decision, state.yes, tell)  # type: ignore[arg-type]

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
            return self.decide(CoordinatorState("collecting"), "abort", self.participants, out)
        return CoordinatorState("forgotten")


# -- participant -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantState:
    phase: Literal["working", "prepared", "commit", "abort"]


class Participant(Node):
    """``vote``: ``"yes"``, ``"no"``, or ``"any"`` (may abort on its own before voting,
    else votes yes)."""

    def __init__(
        self,
        name: str,
        coordinator: str,
        presumption: Presumption = "nothing",
        vote: VoteChoice = "yes",
    ) -> None:
        super().__init__(name)
        self.coordinator = coordinator
        self.presumption = check_presumption(presumption)
        if vote not in ("yes", "no", "any"):
            raise ModelError(f"a vote is 'yes', 'no' or 'any', got {vote!r}")
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
                return ParticipantState(decision)
        if "prepared" not in log:
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
