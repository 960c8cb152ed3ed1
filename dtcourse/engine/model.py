"""The checker's contract, as small as Stateright's ``Model``.

A model is anything with ``init_states()``, ``actions(state)``, ``next_state(state,
action)`` and ``properties()``. States and actions must be hashable. A TLA+-style
specification can be written directly against it: each action of the spec becomes an
action value, each invariant an ``always`` property.

Optional hooks a model may provide:

* ``representative(state)``: a canonical member of the state's symmetry orbit, used by the
  checker when symmetry reduction is asked for. It must map every state of an orbit to the
  same state.
* ``format_action(action)``: a short human-readable label for traces.
* ``format_state(state)``: a human-readable, deterministic rendering of a state for traces
  and JSON output (``repr`` otherwise; a frozenset's repr changes order between runs).
* ``successors(state)``: the pairs ``(action, next_state(state, action))`` for every
  action of ``actions(state)`` whose successor is not None, in the same order. A model
  may compute them in one pass for speed; ``actions`` and ``next_state`` remain the
  definition (they replay traces and pinpoint errors), so the two must agree.
* ``next_states(state)``: the list of the states of ``successors(state)``, in the same
  order, without the actions (used only together with ``successors``). The checker then
  keeps no action per state and finds the actions of a trace again from ``successors``.
* ``is_fault(action)``: whether an action is a failure (a crash, a lost message); random
  runs (``dtcourse.engine.walks``) take those only now and then.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

# States and actions must be hashable; the checker checks that at run time. Typed as Any so
# that a model's own state type (a named tuple, a dataclass) fits every hook signature.
State = Any
Action = Any

PropertyKind = Literal["always", "sometimes", "blocking"]


@dataclass(frozen=True)
class Property:
    """A named property of a model.

    * ``always``: ``condition(model, state)`` holds in every reachable state (an invariant).
    * ``sometimes``: ``condition(model, state)`` holds in at least one reachable state; it
      catches a model that passes only because nothing happens.
    * ``blocking``: a liveness check. ``pending(model, state)`` returns the keys (for
      example participants) still waiting in ``state``; ``resolved(model, state, key)``
      says whether ``key`` got what it waited for; ``allowed(model, action)`` says which
      actions may be used to get there (for example: no recovery of a failed node). The
      property is violated by a reachable state with a pending key from which no path of
      allowed actions reaches a state where that key is resolved.
    """

    name: str
    kind: PropertyKind
    condition: Callable[[Any, State], bool] | None = None
    pending: Callable[[Any, State], Iterable[Hashable]] | None = None
    resolved: Callable[[Any, State, Hashable], bool] | None = None
    allowed: Callable[[Any, Action], bool] | None = None

    @classmethod
    def always(cls, name: str, condition: Callable[[Any, State], bool]) -> Property:
        return cls(name, "always", condition=condition)

    @classmethod
    def sometimes(cls, name: str, condition: Callable[[Any, State], bool]) -> Property:
        return cls(name, "sometimes", condition=condition)

    @classmethod
    def blocking(
        cls,
        name: str,
        pending: Callable[[Any, State], Iterable[Hashable]],
        resolved: Callable[[Any, State, Hashable], bool],
        allowed: Callable[[Any, Action], bool] = lambda model, action: True,
    ) -> Property:
        return cls(name, "blocking", pending=pending, resolved=resolved, allowed=allowed)


@runtime_checkable
class Model(Protocol):
    """What the checker explores."""

    def init_states(self) -> Iterable[State]: ...

    def actions(self, state: State) -> Iterable[Action]: ...

    def next_state(self, state: State, action: Action) -> State | None: ...

    def properties(self) -> Sequence[Property]: ...


@dataclass(frozen=True)
class Path:
    """A run of a model: the initial state, then (action, state) pairs in order."""

    init: State
    steps: tuple[tuple[Action, State], ...] = field(default=())

    @property
    def last(self) -> State:
        return self.steps[-1][1] if self.steps else self.init

    @property
    def states(self) -> tuple[State, ...]:
        return (self.init, *(state for _, state in self.steps))

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(action for action, _ in self.steps)

    def __len__(self) -> int:
        return len(self.steps)
