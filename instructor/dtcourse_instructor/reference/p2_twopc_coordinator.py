"""Reference solution of p2.twopc.coordinator: the 2PC coordinator, presumed nothing.

The coordinator force-writes a start record naming the participants, asks each to
prepare, aborts if a vote is no or missing when its timer fires, and force-writes its
decision before sending it; it answers decision requests from its log, also after a
recovery (a recovered coordinator with no decision aborts). ``nodes`` and ``system`` wire it
with the reference participants into the reference 2PC, which the hidden tests pair with
a student's node and the instructor's tests judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dtcourse.commit import properties
from dtcourse.commit.messages import DecisionRequest, Prepare, Vote, VoteChoice, decision_message
from dtcourse.commit.protocols import COORDINATOR, participant_names, votes_for
from dtcourse.engine.actors import ActorSystem, Node, Out
from dtcourse.engine.network import Faults, Network, Timing, check_timing
from dtcourse_instructor.reference.p2_twopc_participant import Participant

__all__ = ["Coordinator", "CoordinatorState", "nodes", "system"]


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


def system(
    participants: int = 3,
    *,
    votes: str | Sequence[str] = "any",
    crashes: int = 0,
    recover: bool = False,
    loss: bool = False,
    duplicate: bool = False,
    timing: Timing = "async",
    cooperative: bool = False,
) -> ActorSystem:
    """The reference 2PC as an actor system with the atomic-commit properties attached."""
    names = participant_names(participants)
    return ActorSystem(
        nodes(COORDINATOR, names, votes_for(names, votes), cooperative),  # type: ignore[arg-type]
        network=Network(loss=loss, duplicate=duplicate),
        faults=Faults(crashes=crashes, recover=recover),
        timing=check_timing(timing),
        participants=names,
        properties=properties.properties(),
        name="reference 2pc cooperative" if cooperative else "reference 2pc",
    )
