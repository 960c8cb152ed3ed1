"""Lamport's TCommit specification (tlaplus Examples, ``transaction_commit/TCommit.tla``).

The abstract problem that every commit protocol solves: each resource manager (RM) is
working, prepared, committed or aborted. An RM may commit only when every RM is prepared
or committed, and abort only while none has committed. There are no messages and no
transaction manager; TwoPhase implements this spec.

``Decide(rm)`` has two disjuncts that can both be enabled (all RMs prepared, none
committed), so its action values name the outcome: ``("Decide", "r1", "committed")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dtcourse.engine.model import Property

WORKING = "working"
PREPARED = "prepared"
COMMITTED = "committed"
ABORTED = "aborted"
RM_STATES = frozenset({WORKING, PREPARED, COMMITTED, ABORTED})

TCState = tuple[str, ...]
"""``rmState``: the state of ``rms[i]`` at position ``i``."""

Action = tuple[str, ...]


@dataclass(frozen=True)
class TCommit:
    """The TCommit spec for the resource managers ``rms``."""

    rms: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _rm_actions: tuple[tuple[Action, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {rm: i for i, rm in enumerate(self.rms)})
        object.__setattr__(
            self,
            "_rm_actions",
            tuple(
                (("Prepare", rm), ("Decide", rm, COMMITTED), ("Decide", rm, ABORTED))
                for rm in self.rms
            ),
        )

    def init_states(self) -> list[TCState]:
        """TCInit."""
        return [(WORKING,) * len(self.rms)]

    def actions(self, state: TCState) -> Iterator[Action]:
        """The enabled disjuncts of TCNext."""
        can_commit = _can_commit(state)
        not_committed = COMMITTED not in state
        for status, (prepare, commit, abort) in zip(state, self._rm_actions, strict=True):
            if status == WORKING:
                yield prepare
            if status == PREPARED and can_commit:
                yield commit
            if status in (WORKING, PREPARED) and not_committed:
                yield abort

    def next_state(self, state: TCState, action: Action) -> TCState | None:
        """The successor under ``Prepare(rm)`` or one disjunct of ``Decide(rm)``."""
        i = self._index[action[1]]
        status = state[i]
        if action[0] == "Prepare":
            enabled, new = status == WORKING, PREPARED
        elif action[2] == COMMITTED:
            enabled, new = status == PREPARED and _can_commit(state), COMMITTED
        else:
            enabled = status in (WORKING, PREPARED) and COMMITTED not in state
            new = ABORTED
        return (*state[:i], new, *state[i + 1 :]) if enabled else None

    def properties(self) -> list[Property]:
        return [
            Property.always("TCTypeOK", _type_ok),
            Property.always("TCConsistent", _consistent),
            Property.sometimes("some RM commits", _some(COMMITTED)),
            Property.sometimes("some RM aborts", _some(ABORTED)),
        ]

    def representative(self, state: TCState) -> TCState:
        """RMs are interchangeable: sorting their states picks one member per orbit."""
        return tuple(sorted(state))

    def format_action(self, action: Action) -> str:
        if action[0] == "Prepare":
            return f"Prepare({action[1]})"
        return f"Decide({action[1]}) -> {action[2]}"

    def format_state(self, state: TCState) -> str:
        return (
            "rmState ["
            + ", ".join(f"{rm}: {st}" for rm, st in zip(self.rms, state, strict=True))
            + "]"
        )


def _can_commit(state: TCState) -> bool:
    return all(status in (PREPARED, COMMITTED) for status in state)


def _type_ok(model: TCommit, state: TCState) -> bool:
    return len(state) == len(model.rms) and RM_STATES.issuperset(state)


def _consistent(model: TCommit, state: TCState) -> bool:
    """No RM aborted while another committed."""
    return not (COMMITTED in state and ABORTED in state)


def _some(phase: str) -> Callable[[TCommit, tuple[str, ...]], bool]:
    """Some resource manager is in ``phase``."""
    return lambda model, state: phase in state
