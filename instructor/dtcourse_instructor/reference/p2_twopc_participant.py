"""Reference solution of p2.twopc.participant: the 2PC participant, presumed nothing.

It force-writes its yes vote before sending it; until it votes it may abort unilaterally
(when the coordinator seems gone, or, with ``vote="any"``, for reasons of its own). Once it
has voted yes it is uncertain and must wait: when its timer fires it asks the coordinator
again (which also covers lost messages). With ``cooperative=True`` it also asks the other
participants (the cooperative termination protocol of Bernstein, Hadzilacos and Goodman,
7.4), which answer with the decision if they know it, or abort unilaterally if they have
not voted yet; it then blocks only when the coordinator is down and every participant is
uncertain: the textbook blocking case. Without it, one uncertain participant blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["Participant", "ParticipantState"]


@dataclass(frozen=True, slots=True)
class ParticipantState:
    phase: Literal["working", "prepared", "commit", "abort"]
    peers: frozenset[str] = frozenset()


class Participant(Node):
    """``vote``: ``"yes"``, ``"no"``, or ``"any"`` (it may abort on its own before voting)."""

    def __init__(
        self, name: str, coordinator: str, vote: VoteChoice = "yes", cooperative: bool = False
    ) -> None:
        super().__init__(name)
        self.coordinator = coordinator
        self.vote = vote
        self.cooperative = cooperative

    def askees(self, state: ParticipantState) -> frozenset[str]:
        """Whom an uncertain participant asks for the decision."""
        if self.cooperative:
            return frozenset({self.coordinator, *state.peers})
        return frozenset({self.coordinator})

    def on_start(self, out: Out) -> ParticipantState:
        waiting_on = () if self.vote == "any" else (self.coordinator,)
        out.set_timer("prepare", waiting_on=waiting_on)
        return ParticipantState("working")

    def on_message(self, state: ParticipantState, src: str, msg: object, out: Out):
        match msg, state.phase:
            case Prepare(participants), "working":
                out.cancel_timer("prepare")
                if self.vote == "no":
                    out.log("abort", force=False)
                    out.vote("no")
                    out.decide("abort")
                    out.send(src, Vote("no"))
                    return ParticipantState("abort")
                peers = participants - {self.name}
                out.log(("prepared", participants), force=True)
                out.vote("yes")
                out.send(src, Vote("yes"))
                out.set_timer("decision", waiting_on=(self.coordinator,))
                return ParticipantState("prepared", peers)
            case Prepare(), "prepared":
                out.send(src, Vote("yes"))
            case Prepare(), "abort":
                out.send(src, Vote("no"))
            case (Commit() | Abort()) as decided, "prepared" | "working":
                value = "commit" if isinstance(decided, Commit) else "abort"
                if value == "commit" and state.phase == "working":
                    return state  # cannot happen in 2PC: a commit needs this node's yes
                out.log(value, force=state.phase == "prepared")
                out.decide(value)
                out.cancel_timer("prepare")
                out.cancel_timer("decision")
                return ParticipantState(value, state.peers)  # type: ignore[arg-type]
            case DecisionRequest(), "commit" | "abort":
                out.send(src, decision_message(state.phase))
            case DecisionRequest(), "working":
                # Not voted yet: free to abort, which settles the asker's question too.
                state = self.abort_alone(out)
                out.send(src, Abort())
                return state
        return state

    def on_timeout(self, state: ParticipantState, timer: str, out: Out):
        if timer == "prepare" and state.phase == "working":
            return self.abort_alone(out)
        if timer == "decision" and state.phase == "prepared":
            out.broadcast(self.askees(state), DecisionRequest())
            out.set_timer("decision", waiting_on=(self.coordinator,))
        return state

    def abort_alone(self, out: Out) -> ParticipantState:
        out.cancel_timer("prepare")
        out.log("abort", force=False)
        out.decide("abort")
        return ParticipantState("abort")

    def on_recover(self, log: tuple[object, ...], out: Out) -> ParticipantState:
        prepared = next((r for r in log if isinstance(r, tuple) and r[0] == "prepared"), None)
        peers = prepared[1] - {self.name} if prepared is not None else frozenset()
        for decision in ("commit", "abort"):
            if decision in log:
                out.decide(decision)
                return ParticipantState(decision, peers)  # type: ignore[arg-type]
        if prepared is None:
            return self.abort_alone(out)
        state = ParticipantState("prepared", peers)
        out.broadcast(self.askees(state), DecisionRequest())
        out.set_timer("decision", waiting_on=(self.coordinator,))
        return state
