"""The two-phase commit that the course's demonstrations run: presumed nothing, as R* runs it.

The nodes are the presumed-nothing coordinator and participant of ``variants`` (every
decision forced everywhere and acknowledged; the coordinator forgets with a lazy *end*
record once all acknowledgements are in; an in-doubt participant asks with an
``Inquiry``), so the counts of a demonstration are the textbook's. They talk in their own
messages, not in the exercise's vocabulary of ``dtcourse.commit.messages``.

The participant adds two textbook rules to ``variants.Participant``. A participant that has
aborted on its own answers a late ``Prepare`` with a no vote, so the coordinator need not
wait for a timeout that a perfect failure detector would never fire. And with ``peers``
an uncertain participant also asks the other participants (the cooperative termination
protocol of Bernstein, Hadzilacos and Goodman, 7.4): one that knows the outcome answers
with it, one that has not voted aborts and answers abort, one that is uncertain too stays
silent. It then blocks only when the coordinator is down and every participant it can
reach is uncertain: the textbook blocking case. Without peers, one uncertain participant
blocks as soon as the coordinator fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dtcourse.commit.messages import Abort, Commit, VoteChoice, decision_message
from dtcourse.commit.protocols import variants
from dtcourse.engine.actors import Node, Out

__all__ = ["Participant", "nodes"]


class Participant(variants.Participant):
    """A presumed-nothing participant; ``peers`` turns on cooperative termination."""

    def __init__(
        self, name: str, coordinator: str, vote: VoteChoice = "yes", peers: Iterable[str] = ()
    ) -> None:
        super().__init__(name, coordinator, "nothing", vote)
        self.peers = frozenset(peers) - {name}

    def on_message(
        self, state: variants.ParticipantState, src: str, msg: object, out: Out
    ) -> variants.ParticipantState:
        if isinstance(msg, variants.Prepare) and state.phase == "abort":
            out.send(src, variants.Vote("no"))  # it aborted on its own: that is a no
            return state
        if src in self.peers:
            return self.answer_peer(state, src, msg, out)
        return super().on_message(state, src, msg, out)

    def answer_peer(
        self, state: variants.ParticipantState, src: str, msg: object, out: Out
    ) -> variants.ParticipantState:
        match msg, state.phase:
            case variants.Inquiry(), "commit" | "abort":
                out.send(src, decision_message(state.phase))
            case variants.Inquiry(), "working":
                # Not voted yet: free to abort, which settles the asker's question too.
                out.cancel_timer("prepare")
                out.decide("abort")
                out.send(src, Abort())
                return variants.ParticipantState("abort")
            case (Commit() | Abort()) as decided, "prepared":
                value = "commit" if isinstance(decided, Commit) else "abort"
                out.log(value, force=True)
                out.decide(value)
                out.cancel_timer("decision")
                return variants.ParticipantState(value)  # type: ignore[arg-type]
        return state

    def on_timeout(
        self, state: variants.ParticipantState, timer: str, out: Out
    ) -> variants.ParticipantState:
        if timer == "decision" and state.phase == "prepared":
            out.broadcast(self.peers, variants.Inquiry())
        return super().on_timeout(state, timer, out)

    def on_recover(self, log: tuple[object, ...], out: Out) -> variants.ParticipantState:
        state = super().on_recover(log, out)
        if state.phase == "prepared":
            out.broadcast(self.peers, variants.Inquiry())
        return state


def nodes(
    coordinator: str,
    participants: Sequence[str],
    votes: Sequence[VoteChoice],
    cooperative: bool = False,
) -> list[Node]:
    """The coordinator, then one participant per name with its vote."""
    return [
        variants.Coordinator(coordinator, participants, "nothing"),
        *(
            Participant(p, coordinator, v, participants if cooperative else ())
            for p, v in zip(participants, votes, strict=True)
        ),
    ]
