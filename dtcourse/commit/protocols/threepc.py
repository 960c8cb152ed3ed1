"""Three-phase commit (Skeen 1981) with its termination protocol.

Between "everyone voted yes" and "commit" 3PC puts a pre-commit round, so no node commits
while another is still uncertain. The coordinator asks for votes, sends PreCommit when all
are yes (abort otherwise, or when a vote is missing when its timer fires), and commits once
every participant has acknowledged, or its timer says the silent ones have failed.

Termination (Bernstein, Hadzilacos and Goodman, 7.5): a participant whose leader fails
elects the next one in a fixed order (coordinator, then participants by position); the one
elected collects the states of the participants after it and decides:

* TR1: some participant aborted (or had not voted) -> abort;
* TR2: some participant committed -> commit;
* TR3: all uncertain -> abort;
* TR4: some pre-committed, none committed -> send PreCommit to the uncertain ones, and
  commit once each has acknowledged or been reported failed.

Waiting for acknowledgements uses one timer per participant: a perfect failure detector
reports *which* node failed, and committing because some other node failed while a live
one is still uncertain would break atomicity.

The termination rule is a required argument: ``Participant(..., rule)``, ``nodes(..., rule)``
and ``build("3pc", ..., rule=...)`` take a function from the reported states to
``"commit"`` or ``"abort"``. The states are named as in exercise ``p2.threepc``:
``{name: state}`` with states ``"working"``, ``"prepared"`` (uncertain),
``"precommitted"``, ``"committed"``, ``"aborted"``. Writing that rule *is* the exercise, so
no correct rule ships with the course: the model checker judges the student's rule inside
this protocol, and the reading runs ``naive_rule``, a deliberately wrong one. A commit
decision with uncertain participants still goes through TR4's pre-commit round.

This is correct when failures are crashes and the failure detector is perfect, the
protocol's synchronous assumption; a network partition breaks it (each side terminates on
its own), which is exactly what the model checker shows. A participant that recovers does
not take part: it asks the others for the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    "Coordinator",
    "Participant",
    "PreCommit",
    "Ack",
    "StateRequest",
    "StateReply",
    "TerminationRule",
    "naive_rule",
    "nodes",
]

Phase = Literal["working", "uncertain", "precommitted", "commit", "abort", "recovering"]
DECIDED = ("commit", "abort")

#: Reported states by participant name -> "commit" or "abort".
TerminationRule = Callable[[Mapping[str, str]], str]

# A participant's phase as the termination rule reads it (the exercise's words).
RULE_STATES = {
    "working": "working",
    "uncertain": "prepared",
    "precommitted": "precommitted",
    "commit": "committed",
    "abort": "aborted",
}


def naive_rule(states: Mapping[str, str]) -> str:
    """Deliberately wrong: commit only if somebody already committed, abort otherwise.

    This is the rule a 2PC habit suggests (follow a decision someone knows, else give up),
    and it ignores what a pre-committed state promises: the coordinator may have committed
    once every participant acknowledged PRE-COMMIT, then crashed before anyone heard, and
    the survivors, all pre-committed, abort. The Phase 2 reading runs it so that the model
    checker can show that counterexample; exercise ``p2.threepc`` asks for the right rule.
    """
    return "commit" if "committed" in states.values() else "abort"


@dataclass(frozen=True, slots=True)
class PreCommit:
    pass


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class StateRequest:
    pass


@dataclass(frozen=True, slots=True)
class StateReply:
    phase: str


# -- coordinator ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    phase: Literal["collecting", "precommitting", "commit", "abort", "recovering"]
    yes: frozenset[str] = frozenset()
    acked: frozenset[str] = frozenset()  # acknowledged, or reported failed


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
        match msg, state.phase:
            case Vote("yes"), "collecting":
                yes = state.yes | {src}
                if yes != self.participants:
                    return replace(state, yes=yes)
                out.cancel_timer("votes")
                out.broadcast(self.participants, PreCommit())
                for node in self.participants:
                    out.set_timer(f"ack:{node}", waiting_on=(node,))
                return CoordinatorState("precommitting", yes)
            case Vote("no"), "collecting":
                return self.decide(state, "abort", out)
            case Ack(), "precommitting":
                out.cancel_timer(f"ack:{src}")
                return self.count_acks(replace(state, acked=state.acked | {src}), out)
            case DecisionRequest(), "commit" | "abort":
                out.send(src, decision_message(state.phase))
            case (Commit() | Abort()) as decided, "recovering":
                value = "commit" if isinstance(decided, Commit) else "abort"
                out.log(value, force=True)
                out.decide(value)
                out.cancel_timer("ask")
                return CoordinatorState(value)  # type: ignore[arg-type]
        return state

    def on_timeout(self, state: CoordinatorState, timer: str, out: Out):
        if timer == "votes" and state.phase == "collecting":
            return self.decide(state, "abort", out)
        if timer.startswith("ack:") and state.phase == "precommitting":
            # That participant has failed: stop waiting for it.
            failed = timer.removeprefix("ack:")
            return self.count_acks(replace(state, acked=state.acked | {failed}), out)
        if timer == "ask" and state.phase == "recovering":
            out.broadcast(self.participants, DecisionRequest())
            out.set_timer("ask")
        return state

    def count_acks(self, state: CoordinatorState, out: Out) -> CoordinatorState:
        """Commit once every participant acknowledged or was reported failed."""
        if state.acked == self.participants:
            return self.decide(state, "commit", out)
        return state

    def decide(self, state: CoordinatorState, decision: str, out: Out) -> CoordinatorState:
        out.log(decision, force=True)
        out.decide(decision)
        out.cancel_timer("votes")
        out.broadcast(self.participants, decision_message(decision))
        return replace(state, phase=decision)  # type: ignore[arg-type]

    def on_recover(self, log: tuple[object, ...], out: Out) -> CoordinatorState:
        decision = next((r for r in log if r in DECIDED), None)
        if decision is not None:
            out.decide(decision)
            return CoordinatorState(decision)  # type: ignore[arg-type]
        # The participants may have terminated without us: ask, never presume.
        out.broadcast(self.participants, DecisionRequest())
        out.set_timer("ask")
        return CoordinatorState("recovering")


# -- participant --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantState:
    phase: Phase
    leader: str
    role: Literal["follower", "collecting", "precommitting", "done"] = "follower"
    expected: frozenset[str] = frozenset()
    replies: frozenset[tuple[str, str]] = frozenset()


class Participant(Node):
    """``vote``: ``"yes"``, ``"no"``, or ``"any"`` (it may abort on its own before voting).

    ``order`` is the election order of the participants (the coordinator comes first);
    ``rule`` the termination rule an elected participant applies to the reported states.
    """

    def __init__(
        self,
        name: str,
        coordinator: str,
        vote: VoteChoice,
        order: Sequence[str],
        rule: TerminationRule,
    ) -> None:
        super().__init__(name)
        self.coordinator = coordinator
        self.vote = vote
        self.order = tuple(order)
        self.others = frozenset(order) - {name}
        self.rule = _require_rule(rule)

    def rank(self, node: str) -> int:
        return -1 if node == self.coordinator else self.order.index(node)

    def on_start(self, out: Out) -> ParticipantState:
        out.set_timer("prepare", waiting_on=() if self.vote == "any" else (self.coordinator,))
        out.set_timer("leader", waiting_on=(self.coordinator,))
        return ParticipantState("working", self.coordinator)

    def on_message(self, state: ParticipantState, src: str, msg: object, out: Out):
        phase = state.phase
        match msg:
            case Prepare() if phase == "working" and src == self.coordinator:
                out.cancel_timer("prepare")
                if self.vote == "no":
                    out.vote("no")
                    out.send(src, Vote("no"))
                    return self.finish(state, "abort", out, force=False)
                out.log(("prepared", self.coordinator), force=True)
                out.vote("yes")
                out.send(src, Vote("yes"))
                return replace(state, phase="uncertain")
            case Prepare() if phase == "abort" and src == self.coordinator:
                out.send(src, Vote("no"))
            case PreCommit() if phase == "uncertain" and src == state.leader:
                out.send(src, Ack())
                return replace(state, phase="precommitted")
            case Commit() if phase in ("uncertain", "precommitted", "recovering"):
                return self.finish(state, "commit", out)
            case Abort() if phase in ("working", "uncertain", "precommitted", "recovering"):
                return self.finish(state, "abort", out)
            case StateRequest() if phase != "recovering" and (
                self.rank(src) >= self.rank(state.leader)
            ):
                if phase == "working":
                    state = self.abort_alone(state, out)
                out.send(src, StateReply(state.phase))
                if state.phase not in DECIDED:
                    out.set_timer("leader", waiting_on=(src,))
                return replace(state, leader=src, role="follower")
            case StateReply(reply) if state.role == "collecting" and src in state.expected:
                return self.tally(replace(state, replies=state.replies | {(src, reply)}), out)
            case Ack() if state.role == "precommitting" and src in state.expected:
                out.cancel_timer(f"ack:{src}")
                return self.await_acks(replace(state, expected=state.expected - {src}), out)
            case DecisionRequest() if phase in DECIDED:
                out.send(src, decision_message(phase))
        return state

    def on_timeout(self, state: ParticipantState, timer: str, out: Out):
        phase = state.phase
        if timer == "prepare" and phase == "working":
            return self.abort_alone(state, out)
        if timer == "leader":
            return self.elect(state, out)
        if timer.startswith("state:") and state.role == "collecting":
            failed = timer.removeprefix("state:")
            return self.tally(replace(state, expected=state.expected - {failed}), out)
        if timer.startswith("ack:") and state.role == "precommitting":
            failed = timer.removeprefix("ack:")
            return self.await_acks(replace(state, expected=state.expected - {failed}), out)
        if timer == "ask" and phase == "recovering":
            out.broadcast({self.coordinator, *self.others}, DecisionRequest())
            out.set_timer("ask")
        return state

    # -- termination protocol ------------------------------------------------------------------

    def elect(self, state: ParticipantState, out: Out) -> ParticipantState:
        """The leader failed: follow the next one in order, or lead if it is this node."""
        if state.leader == self.name:
            return state
        following = self.rank(state.leader) + 1
        leader = self.order[following]
        if leader != self.name:
            out.set_timer("leader", waiting_on=(leader,))
            return replace(state, leader=leader)
        state = replace(state, leader=self.name)
        if state.phase == "working":
            state = self.abort_alone(state, out)
        if state.phase in DECIDED:
            out.broadcast(self.others, decision_message(state.phase))
            return replace(state, role="done")
        later = frozenset(self.order[following + 1 :])
        out.broadcast(later, StateRequest())
        for node in later:
            out.set_timer(f"state:{node}", waiting_on=(node,))
        return self.tally(replace(state, role="collecting", expected=later), out)

    def tally(self, state: ParticipantState, out: Out) -> ParticipantState:
        """Decide once every expected participant replied or was reported failed."""
        replied = {name for name, _ in state.replies}
        if not state.expected <= replied:
            return state
        for node in replied:
            out.cancel_timer(f"state:{node}")
        reported = {name: phase for name, phase in state.replies if name in state.expected}
        reported[self.name] = state.phase
        words = {name: RULE_STATES.get(phase, phase) for name, phase in reported.items()}
        decision = self.rule(words)
        if decision not in DECIDED:
            raise ModelError(
                f"the termination rule returned {decision!r} for {words}; "
                "it must return 'commit' or 'abort'"
            )
        uncertain = frozenset(
            name for name, phase in state.replies if name in state.expected and phase == "uncertain"
        )
        if decision == "abort" or "commit" in reported.values() or not uncertain:
            return self.lead_decision(state, decision, out)
        out.broadcast(uncertain, PreCommit())  # TR4
        for node in uncertain:
            out.set_timer(f"ack:{node}", waiting_on=(node,))
        return replace(
            state,
            phase="precommitted",
            role="precommitting",
            expected=uncertain,
            replies=frozenset(),
        )

    def await_acks(self, state: ParticipantState, out: Out) -> ParticipantState:
        """TR4: commit once every uncertain participant acknowledged or was reported failed."""
        if state.expected:
            return state
        return self.lead_decision(state, "commit", out)

    def lead_decision(self, state: ParticipantState, decision: str, out: Out) -> ParticipantState:
        state = self.finish(state, decision, out)
        out.broadcast(self.others, decision_message(decision))
        return replace(state, role="done", expected=frozenset(), replies=frozenset())

    # -- local steps ----------------------------------------------------------------------------

    def finish(
        self, state: ParticipantState, decision: str, out: Out, force: bool = True
    ) -> ParticipantState:
        out.log(decision, force=force)
        out.decide(decision)
        out.cancel_timer("prepare")
        out.cancel_timer("ask")
        return replace(state, phase=decision)  # type: ignore[arg-type]

    def abort_alone(self, state: ParticipantState, out: Out) -> ParticipantState:
        return self.finish(state, "abort", out, force=False)

    def on_recover(self, log: tuple[object, ...], out: Out) -> ParticipantState:
        state = ParticipantState("recovering", self.coordinator, role="done")
        for decision in DECIDED:
            if decision in log:
                out.decide(decision)
                return replace(state, phase=decision)  # type: ignore[arg-type]
        if not any(isinstance(r, tuple) and r[0] == "prepared" for r in log):
            return self.abort_alone(state, out)
        out.broadcast({self.coordinator, *self.others}, DecisionRequest())
        out.set_timer("ask")
        return state


def _require_rule(rule: object) -> TerminationRule:
    """The rule itself, or a clear error saying where one comes from."""
    if not callable(rule):
        raise ModelError(
            f"3PC needs its termination rule, a function {{name: state}} -> 'commit' or "
            f"'abort', not {rule!r}: pass your rule from exercise p2.threepc, or naive_rule "
            "(dtcourse.commit.protocols.threepc), the deliberately wrong one of the reading"
        )
    return rule


def nodes(
    coordinator: str,
    participants: Sequence[str],
    votes: Sequence[VoteChoice],
    rule: TerminationRule,
) -> list[Node]:
    """The coordinator, then one participant per name with its vote, in election order,
    each terminating with ``rule``."""
    return [
        Coordinator(coordinator, participants),
        *(
            Participant(p, coordinator, v, participants, rule)
            for p, v in zip(participants, votes, strict=True)
        ),
    ]
