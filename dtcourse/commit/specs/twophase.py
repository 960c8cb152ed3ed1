"""Lamport's TwoPhase specification (tlaplus Examples, ``transaction_commit/TwoPhase.tla``).

A transaction manager (TM) coordinates resource managers (RMs). RMs prepare on their own
and send ``Prepared`` messages; the TM commits once it has heard from every RM, or aborts
at any moment before that. As in the TLA+ spec, messages form a set that only grows:
receiving a message means it is in the set, so loss and duplication need no modelling.
RMs that choose to abort send nothing, and the TM's ``Prepare`` messages are left out.

The encoding follows the spec variable by variable so that the checker reproduces TLC's
counts of distinct states (288 for three RMs, 8,832 for five, 50,816 for six).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from dtcourse.engine.model import Property

WORKING = "working"
PREPARED = "prepared"
COMMITTED = "committed"
ABORTED = "aborted"
RM_STATES = frozenset({WORKING, PREPARED, COMMITTED, ABORTED})
TM_STATES = frozenset({"init", COMMITTED, ABORTED})

Message = tuple[str, ...]
COMMIT_MSG: Message = ("Commit",)
ABORT_MSG: Message = ("Abort",)
DECISION_MSGS = frozenset({COMMIT_MSG, ABORT_MSG})


def prepared_msg(rm: str) -> Message:
    """``[type |-> "Prepared", rm |-> rm]``."""
    return ("Prepared", rm)


class TPState(NamedTuple):
    """The spec's four variables; ``rm_state[i]`` is ``rmState[rms[i]]``.

    A named tuple keeps hashing and comparison at C speed, which dominates checking time.
    """

    rm_state: tuple[str, ...]
    tm_state: str
    tm_prepared: frozenset[str]
    msgs: frozenset[Message]


Action = tuple[str, ...]


@dataclass(frozen=True)
class TwoPhase:
    """The TwoPhase spec for the resource managers ``rms``.

    RMs are interchangeable, so ``representative`` gives exact symmetry reduction.
    """

    rms: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _rm_actions: tuple[tuple[Action, ...], ...] = field(init=False, repr=False, compare=False)
    _prepared_msgs: tuple[Message, ...] = field(init=False, repr=False, compare=False)
    _all: frozenset[str] = field(init=False, repr=False, compare=False)
    _messages: frozenset[Message] = field(init=False, repr=False, compare=False)
    _singles: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)
    _sent: tuple[frozenset[Message], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Action values are built once and shared: traces stay readable and the checker
        # does not allocate a tuple per generated transition.
        rm_actions = tuple(
            tuple(
                (name, rm)
                for name in (
                    "TMRcvPrepared",
                    "RMPrepare",
                    "RMChooseToAbort",
                    "RMRcvCommitMsg",
                    "RMRcvAbortMsg",
                )
            )
            for rm in self.rms
        )
        object.__setattr__(self, "_index", {rm: i for i, rm in enumerate(self.rms)})
        object.__setattr__(self, "_rm_actions", rm_actions)
        object.__setattr__(self, "_prepared_msgs", tuple(prepared_msg(rm) for rm in self.rms))
        object.__setattr__(self, "_all", frozenset(self.rms))
        object.__setattr__(self, "_messages", DECISION_MSGS | set(self._prepared_msgs))
        object.__setattr__(self, "_singles", tuple(frozenset({rm}) for rm in self.rms))
        object.__setattr__(self, "_sent", tuple(frozenset({m}) for m in self._prepared_msgs))

    # -- the spec -------------------------------------------------------------------------

    def init_states(self) -> list[TPState]:
        """TPInit."""
        return [TPState((WORKING,) * len(self.rms), "init", frozenset(), frozenset())]

    def actions(self, state: TPState) -> Iterator[Action]:
        """The enabled disjuncts of TPNext, in the spec's order."""
        rm_state, tm_state, tm_prepared, msgs = state
        tm_init = tm_state == "init"
        if tm_init:
            if tm_prepared == self._all:
                yield TM_COMMIT
            yield TM_ABORT
        commit_sent = COMMIT_MSG in msgs
        abort_sent = ABORT_MSG in msgs
        prepared_msgs = self._prepared_msgs
        for i, acts in enumerate(self._rm_actions):
            if tm_init and prepared_msgs[i] in msgs:
                yield acts[0]
            if rm_state[i] == WORKING:
                yield acts[1]
                yield acts[2]
            if commit_sent:
                yield acts[3]
            if abort_sent:
                yield acts[4]

    def next_state(self, state: TPState, action: Action) -> TPState | None:
        """The successor under one disjunct of TPNext, or None when it is not enabled."""
        rm_state, tm_state, tm_prepared, msgs = state
        name = action[0]
        if name == "TMCommit":
            if tm_state != "init" or tm_prepared != self._all:
                return None
            return TPState(rm_state, COMMITTED, tm_prepared, msgs | DECISION_COMMIT)
        if name == "TMAbort":
            if tm_state != "init":
                return None
            return TPState(rm_state, ABORTED, tm_prepared, msgs | DECISION_ABORT)
        rm = action[1]
        i = self._index[rm]
        if name == "TMRcvPrepared":
            if tm_state != "init" or self._prepared_msgs[i] not in msgs:
                return None
            return TPState(rm_state, tm_state, tm_prepared | {rm}, msgs)
        if name == "RMPrepare":
            if rm_state[i] != WORKING:
                return None
            return TPState(
                _set(rm_state, i, PREPARED), tm_state, tm_prepared, msgs | {self._prepared_msgs[i]}
            )
        if name == "RMChooseToAbort":
            if rm_state[i] != WORKING:
                return None
            return TPState(_set(rm_state, i, ABORTED), tm_state, tm_prepared, msgs)
        if name == "RMRcvCommitMsg":
            if COMMIT_MSG not in msgs:
                return None
            return TPState(_set(rm_state, i, COMMITTED), tm_state, tm_prepared, msgs)
        if name == "RMRcvAbortMsg":
            if ABORT_MSG not in msgs:
                return None
            return TPState(_set(rm_state, i, ABORTED), tm_state, tm_prepared, msgs)
        return None

    def properties(self) -> list[Property]:
        return [
            Property.always("TPTypeOK", _type_ok),
            Property.always("TCConsistent", _consistent),
            Property.sometimes("some RM commits", _some(COMMITTED)),
            Property.sometimes("some RM aborts", _some(ABORTED)),
            Property.sometimes("every RM commits", _every(COMMITTED)),
        ]

    # -- optional hooks -------------------------------------------------------------------

    def successors(self, state: TPState) -> Iterator[tuple[Action, TPState]]:
        """Every enabled disjunct with its successor, in the order of ``actions``.

        The same transitions as ``actions`` and ``next_state`` (a test checks it on every
        reachable state), computed in one pass so the checker makes one call per state.
        """
        rm_state, tm_state, tm_prepared, msgs = state
        tm_init = tm_state == "init"
        if tm_init:
            if tm_prepared == self._all:
                yield TM_COMMIT, TPState(rm_state, COMMITTED, tm_prepared, msgs | DECISION_COMMIT)
            yield TM_ABORT, TPState(rm_state, ABORTED, tm_prepared, msgs | DECISION_ABORT)
        commit_sent = COMMIT_MSG in msgs
        abort_sent = ABORT_MSG in msgs
        prepared_msgs = self._prepared_msgs
        singles = self._singles
        for i, acts in enumerate(self._rm_actions):
            if tm_init and prepared_msgs[i] in msgs:
                yield acts[0], TPState(rm_state, tm_state, tm_prepared | singles[i], msgs)
            if rm_state[i] == WORKING:
                head, tail = rm_state[:i], rm_state[i + 1 :]
                yield (
                    acts[1],
                    TPState((*head, PREPARED, *tail), tm_state, tm_prepared, msgs | self._sent[i]),
                )
                yield acts[2], TPState((*head, ABORTED, *tail), tm_state, tm_prepared, msgs)
            if commit_sent:
                yield acts[3], TPState(_set(rm_state, i, COMMITTED), tm_state, tm_prepared, msgs)
            if abort_sent:
                yield acts[4], TPState(_set(rm_state, i, ABORTED), tm_state, tm_prepared, msgs)

    def next_states(self, state: TPState) -> list[TPState]:
        """The states of ``successors``, in the same order, without the actions: the
        checker's lean loop (it finds a trace's actions again from ``successors``)."""
        rm_state, tm_state, tm_prepared, msgs = state
        found: list[TPState] = []
        add = found.append
        tm_init = tm_state == "init"
        if tm_init:
            if tm_prepared == self._all:
                add(TPState(rm_state, COMMITTED, tm_prepared, msgs | DECISION_COMMIT))
            add(TPState(rm_state, ABORTED, tm_prepared, msgs | DECISION_ABORT))
        commit_sent = COMMIT_MSG in msgs
        abort_sent = ABORT_MSG in msgs
        prepared_msgs = self._prepared_msgs
        singles = self._singles
        sent = self._sent
        for i in range(len(rm_state)):
            if tm_init and prepared_msgs[i] in msgs:
                add(TPState(rm_state, tm_state, tm_prepared | singles[i], msgs))
            if rm_state[i] == WORKING:
                head, tail = rm_state[:i], rm_state[i + 1 :]
                add(TPState((*head, PREPARED, *tail), tm_state, tm_prepared, msgs | sent[i]))
                add(TPState((*head, ABORTED, *tail), tm_state, tm_prepared, msgs))
            if commit_sent:
                add(TPState(_set(rm_state, i, COMMITTED), tm_state, tm_prepared, msgs))
            if abort_sent:
                add(TPState(_set(rm_state, i, ABORTED), tm_state, tm_prepared, msgs))
        return found

    def representative(self, state: TPState) -> TPState:
        """The orbit's canonical member: RMs renamed so their local views come out sorted.

        An RM's local view is everything the state says about it (its own state, whether
        the TM counted its vote, whether its ``Prepared`` message was sent). Two states are
        symmetric exactly when their multisets of views and their RM-independent parts
        agree, so sorting the views gives one member per orbit.
        """
        rm_state, tm_state, tm_prepared, msgs = state
        rms = self.rms
        prepared_msgs = self._prepared_msgs
        views = sorted(
            (rm_state[i], rm in tm_prepared, prepared_msgs[i] in msgs) for i, rm in enumerate(rms)
        )
        return TPState(
            tuple(view[0] for view in views),
            tm_state,
            frozenset(rms[i] for i, view in enumerate(views) if view[1]),
            frozenset(prepared_msgs[i] for i, view in enumerate(views) if view[2])
            | (msgs & DECISION_MSGS),
        )

    def format_action(self, action: Action) -> str:
        return action[0] if len(action) == 1 else f"{action[0]}({', '.join(action[1:])})"

    def format_state(self, state: TPState) -> str:
        rms = ", ".join(f"{rm}: {st}" for rm, st in zip(self.rms, state.rm_state, strict=True))
        msgs = sorted(", ".join(m) if len(m) > 1 else m[0] for m in state.msgs)
        return (
            f"rmState [{rms}] tmState {state.tm_state} "
            f"tmPrepared {{{', '.join(sorted(state.tm_prepared))}}} msgs {{{'; '.join(msgs)}}}"
        )


TM_COMMIT: Action = ("TMCommit",)
TM_ABORT: Action = ("TMAbort",)
DECISION_COMMIT = frozenset({COMMIT_MSG})
DECISION_ABORT = frozenset({ABORT_MSG})


def _set(values: tuple[str, ...], i: int, value: str) -> tuple[str, ...]:
    return (*values[:i], value, *values[i + 1 :])


def _type_ok(model: TwoPhase, state: TPState) -> bool:
    rm_state, tm_state, tm_prepared, msgs = state
    return (
        len(rm_state) == len(model.rms)
        and RM_STATES.issuperset(rm_state)
        and tm_state in TM_STATES
        and tm_prepared <= model._all
        and msgs <= model._messages
    )


def _consistent(model: TwoPhase, state: TPState) -> bool:
    """TC!TCConsistent: no RM aborted while another committed."""
    rm_state = state.rm_state
    return not (COMMITTED in rm_state and ABORTED in rm_state)


def _some(status: str):
    def condition(model: TwoPhase, state: TPState) -> bool:
        return status in state.rm_state

    return condition


def _every(status: str):
    def condition(model: TwoPhase, state: TPState) -> bool:
        rm_state = state.rm_state
        return rm_state.count(status) == len(rm_state)

    return condition
