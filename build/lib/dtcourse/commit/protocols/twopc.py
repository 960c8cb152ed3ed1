"""Two-phase commit, presumed nothing, with durable logs, timeouts and recovery.

The coordinator force-writes a start record naming the participants, asks each to
prepare, aborts if a vote is no or missing when its timer fires, and force-writes its
decision before sending it; it answers decision requests from its log, also after a
recovery (a recovered coordinator with no decision aborts). A participant force-writes
its yes vote before sending it; until it votes it may abort unilaterally (when the
coordinator seems gone, or, with ``vote="any"``, for reasons of its own). Once it has voted
yes it is uncertain and must wait: when its timer fires it asks the coordinator again
(which also covers lost messages). With ``cooperative=True`` it also asks the other
participants (the cooperative termination protocol of Bernstein, Hadzilacos and Goodman,
7.4), which answer with the decision if they know it, or abort unilaterally if they have
not voted yet; it then blocks only when the coordinator is down and every participant is
uncertain: the textbook blocking case. Without it, one uncertain participant blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dtcourse.engine.actors import Node, Out

VoteChoice = Literal["yes", "no", "any"]


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    """Vote request; carries the participant list for cooperative termination."""

    participants: frozenset[str]


@dataclass(frozen=True, slots=True)
class Vote:
    vote: str


@dataclass(frozen=True, slots=True)
class Commit:
    pass


@dataclass(frozen=True, slots=True)
class Abort:
    pass


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    pass


def decision_message(decision: str) -> Commit | Abort:
    return Commit() if decision == "commit" else Abort()


# -- coordinator ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    phase: Literal["collecting", "commit", "abort"]
    yes: frozenset[str] = frozenset()


class Coordinator(Node):
    def __init__(self, name: str, participants: Sequence[str]) -> None:
        super().__init__(name)
        self.participants = frozenset(participants)

    def on_start(self, out: Out) -> CoordinatorState:
        out.log(("start", self.participants), force=True)
        out.broadcast(self.participants, Prepare(self.participants))
        out.set_timer("votes", waiting_on=self.participants)
        return CoordinatorState("collecting")

    def on_message(self, state: CoordinatorState, src: str, msg: object, out: Out):
        match msg:
            case Vote("yes") if state.phase == "collecting":
                yes = state.yes | {src}
                if yes == self.participants:
                    return self.decide(replace(state, yes=yes), "commit", out)
                return replace(state, yes=yes)
            case Vote("no") if state.phase == "collecting":
                return self.decide(state, "abort", out)
            case DecisionRequest() if state.phase != "collecting":
                out.send(src, decision_message(state.phase))
        return state

    def on_timeout(self, state: CoordinatorState, timer: str, out: Out):
        if timer == "votes" and state.phase == "collecting":
            return self.decide(state, "abort", out)
        return state

    def decide(self, state: CoordinatorState, decision: str, out: Out) -> CoordinatorState:
        out.log(decision, force=True)
        out.decide(decision)
        out.cancel_timer("votes")
        out.broadcast(self.participants, decision_message(decision))
        return replace(state, phase=decision)  # type: ignore[arg-type]

    def on_recover(self, log: tuple[object, ...], out: Out) -> CoordinatorState:
        decision = next((r for r in log if r in ("commit", "abort")), None)
        if decision is None:
            # Started but undecided: nobody can have committed, so abort (presumed nothing
            # still writes it down and tells everyone).
            return self.decide(CoordinatorState("collecting"), "abort", out)
        out.decide(decision)
        out.broadcast(self.participants, decision_message(decision))
        return CoordinatorState(decision)  # type: ignore[arg-type]


# -- participant --------------------------------------------------------------------------------


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


def nodes(
    coordinator: str,
    participants: Sequence[str],
    votes: Sequence[VoteChoice],
    cooperative: bool = False,
) -> list[Node]:
    """The coordinator, then one participant per name with its vote."""
    return [
        Coordinator(coordinator, participants),
        *(
            Participant(p, coordinator, v, cooperative)
            for p, v in zip(participants, votes, strict=True)
        ),
    ]
