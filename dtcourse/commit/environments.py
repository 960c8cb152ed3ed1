"""Most general legal partners, for checking one side of two-phase commit on its own.

A check of a 2PC participant needs a coordinator to talk to, and a check of a coordinator
needs participants. Pairing a node with a reference implementation would ship the answer,
and would judge it against one partner only. These partners are specifications instead:
each does, nondeterministically, everything the protocol allows that side to do, and
nothing it forbids, so a node that is correct against them is correct against every legal
partner. They talk in the messages of ``dtcourse.commit.messages``.

Every choice is a timer that waits on nobody (or on the nodes whose failure permits the
choice): the model checker tries firing it at every moment and never firing it, and a
timer that fires again repeats a message. The partners keep no log, set no timeout to
protect themselves and never recover: the checks let them crash only for good (crash-stop),
a behaviour that needs no log to stay legal. So neither is an answer to an exercise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dtcourse.commit.messages import (
    Abort,
    Commit,
    DecisionRequest,
    Prepare,
    Vote,
    VoteChoice,
    decision_message,
)
from dtcourse.engine.actors import Node, Out
from dtcourse.errors import ModelError

__all__ = [
    "CoordinatorEnvironment",
    "CoordinatorEnvironmentState",
    "ParticipantEnvironment",
    "ParticipantEnvironmentState",
]


# -- a coordinator -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoordinatorEnvironmentState:
    """What a coordinator has heard: the yes and the no votes, and its decision if any."""

    phase: Literal["collecting", "commit", "abort"] = "collecting"
    yes: frozenset[str] = frozenset()
    no: frozenset[str] = frozenset()


class CoordinatorEnvironment(Node):
    """Every legal 2PC coordinator at once.

    It sends ``Prepare`` to any participant at any moment, as often as it likes; it may
    decide commit at any moment once every participant has voted yes, and abort at any
    moment before it decided commit that a legal coordinator may: after a no vote, or when
    its vote timer fires (that timer waits on the participants, so it fires at any moment
    under asynchronous timing, and once a participant is down under a perfect failure
    detector; AC4 forbids aborting when nothing failed and all voted yes). Once decided, it
    sends the decision to any participant at any moment, again and again, or never: a
    ``DecisionRequest`` may thus be answered or not.
    """

    def __init__(self, name: str, participants: Sequence[str]) -> None:
        super().__init__(name)
        self.participants = frozenset(participants)
        if not self.participants:
            raise ModelError("a coordinator needs at least one participant")

    def on_start(self, out: Out) -> CoordinatorEnvironmentState:
        for p in sorted(self.participants):
            out.set_timer(f"prepare {p}")
        out.set_timer("abort", waiting_on=self.participants)
        return CoordinatorEnvironmentState()

    def on_message(
        self, state: CoordinatorEnvironmentState, src: str, msg: object, out: Out
    ) -> CoordinatorEnvironmentState:
        if state.phase != "collecting" or src not in self.participants:
            return state
        match msg:
            case Vote("yes"):
                yes = state.yes | {src}
                if yes == self.participants and not state.no:
                    out.set_timer("commit")
                return replace(state, yes=yes)
            case Vote("no"):
                out.set_timer("abort")  # a no vote allows aborting at once
                return replace(state, no=state.no | {src})
        return state

    def on_timeout(
        self, state: CoordinatorEnvironmentState, timer: str, out: Out
    ) -> CoordinatorEnvironmentState:
        kind, _, who = timer.partition(" ")
        if kind == "prepare" and state.phase == "collecting":
            out.send(who, Prepare(self.participants))
            out.set_timer(timer)
        elif kind in ("commit", "abort") and state.phase == "collecting":
            out.decide(kind)
            for p in sorted(self.participants):
                out.cancel_timer(f"prepare {p}")
                out.set_timer(f"tell {p}")
            out.cancel_timer("commit" if kind == "abort" else "abort")
            return replace(state, phase=kind)  # type: ignore[arg-type]
        elif kind == "tell" and state.phase != "collecting":
            out.send(who, decision_message(state.phase))
            out.set_timer(timer)
        return state


# -- a participant -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantEnvironmentState:
    """``asked``: a ``Prepare`` came and the vote is still to be cast."""

    phase: Literal["working", "asked", "prepared", "commit", "abort"] = "working"


class ParticipantEnvironment(Node):
    """Every legal 2PC participant at once, for one voting behaviour.

    ``vote`` is ``"yes"``, ``"no"`` or ``"any"``, as for the exercise's participant. Before
    it votes it may abort on its own: at any moment with ``"no"`` or ``"any"``, and with
    ``"yes"`` when its timer on the coordinator fires. Once asked it votes (``"any"``: yes
    or no) at any moment, or never; it repeats its vote when asked again, or does not.
    Having voted yes it waits for the decision and may send ``DecisionRequest`` at any
    moment, again and again. It obeys every decision it receives, so a wrong decision
    shows as a broken property (AC2, AC3) rather than being ignored.
    """

    def __init__(self, name: str, coordinator: str, vote: VoteChoice = "any") -> None:
        super().__init__(name)
        if vote not in ("yes", "no", "any"):
            raise ModelError(f"a vote is 'yes', 'no' or 'any', got {vote!r}")
        self.coordinator = coordinator
        self.vote = vote

    def on_start(self, out: Out) -> ParticipantEnvironmentState:
        out.set_timer("abort", waiting_on=(self.coordinator,) if self.vote == "yes" else ())
        return ParticipantEnvironmentState()

    def on_message(
        self, state: ParticipantEnvironmentState, src: str, msg: object, out: Out
    ) -> ParticipantEnvironmentState:
        if src != self.coordinator:
            return state
        phase = state.phase
        match msg:
            case Prepare():
                if phase in ("working", "asked"):
                    if self.vote != "no":
                        out.set_timer("vote yes")
                    if self.vote != "yes":
                        out.set_timer("vote no")
                    return ParticipantEnvironmentState("asked")
                if phase == "prepared":
                    out.set_timer("vote yes")  # may answer again
                elif phase == "abort":
                    out.set_timer("vote no")
            case Commit() | Abort():
                value = "commit" if isinstance(msg, Commit) else "abort"
                if phase == value:
                    return state
                out.decide(value)  # obeyed even when wrong: the properties judge it
                for timer in ("abort", "vote yes", "vote no", "ask"):
                    out.cancel_timer(timer)
                if phase in ("commit", "abort"):
                    return state  # a reversal; AC2 reports it
                return ParticipantEnvironmentState(value)  # type: ignore[arg-type]
        return state

    def on_timeout(
        self, state: ParticipantEnvironmentState, timer: str, out: Out
    ) -> ParticipantEnvironmentState:
        phase = state.phase
        if timer == "abort" and phase in ("working", "asked"):
            out.decide("abort")
            out.cancel_timer("vote yes")
            return ParticipantEnvironmentState("abort")
        if timer == "vote yes" and phase in ("asked", "prepared"):
            if phase == "asked":
                out.vote("yes")
                out.cancel_timer("abort")
                out.cancel_timer("vote no")
                out.set_timer("ask")
            out.send(self.coordinator, Vote("yes"))
            return ParticipantEnvironmentState("prepared")
        if timer == "vote no" and phase in ("asked", "abort"):
            if phase == "asked":
                out.vote("no")
                out.decide("abort")
                out.cancel_timer("abort")
                out.cancel_timer("vote yes")
            out.send(self.coordinator, Vote("no"))
            return ParticipantEnvironmentState("abort")
        if timer == "ask" and phase == "prepared":
            out.send(self.coordinator, DecisionRequest())
            out.set_timer("ask")
        return state
