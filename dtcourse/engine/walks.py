"""Random runs of a model, for state spaces too big to exhaust.

A random run starts in an initial state and takes one enabled action after another, chosen
at random, checking the ``always`` properties in every state it meets and noting the
``sometimes`` properties it reaches. It finds a violation only if it happens to walk
into one, so a clean result is evidence, never a proof; a violation it finds is a real
run of the model all the same.

Failures (crashes, lost messages, partitions) are what break protocols, but taken
uniformly they come first: in a fresh system most enabled actions are failures. A model
can say which actions are failures with an ``is_fault(action)`` hook; each run then draws
its own failure rate between 0 and ``max_fault_rate`` and takes a failure only with that
probability, so different runs put failures at different moments (the idea of swarm
testing). A run that violates a property is shortened by dropping steps while the rest
still runs and still violates it; the result is short, not necessarily the shortest.

Runs are deterministic for a seed. ``Walker`` advances in slices of steps so that the
checker can interleave random runs with its breadth-first search.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dtcourse.engine.model import Path, Property
from dtcourse.errors import ModelError

__all__ = ["RandomRunsResult", "Walker", "random_runs", "shorten", "successors_of"]

MAX_FAULT_RATE = 0.3


def successors_of(model: Any) -> Callable[[Any], Any]:
    """The model's ``successors`` hook, or one built from ``actions`` and ``next_state``."""
    hook = getattr(model, "successors", None)
    if callable(hook):
        return hook
    actions, next_state = model.actions, model.next_state

    def successors(state: Any) -> Iterator[tuple[Any, Any]]:
        for action in actions(state):
            successor = next_state(state, action)
            if successor is not None:
                yield action, successor

    return successors


@contextlib.contextmanager
def _without_trace_search(model: Any) -> Iterator[None]:
    """Models that search for the run behind a failure (actor systems) skip that search
    while candidate runs are tried: a failing candidate is simply not taken."""
    if not hasattr(model, "trace_search_seconds"):
        yield
        return
    saved = model.trace_search_seconds
    model.trace_search_seconds = 0.0
    try:
        yield
    finally:
        model.trace_search_seconds = saved


def shorten(model: Any, init: Any, actions: Sequence[Any], violates: Callable[[Any], bool]) -> Path:
    """A short run from ``init`` that ends in a state where ``violates`` holds, made by
    dropping chunks of ``actions`` (halving the chunk size down to single steps) as long
    as what remains can still be taken and still reaches such a state.

    ``actions`` must reach one; the path returned stops at the first state that violates.
    """

    def run(candidate: Sequence[Any]) -> Path | None:
        state, steps = init, []
        if violates(state):
            return Path(init, ())
        for action in candidate:
            try:
                if action not in model.actions(state):
                    return None
                state = model.next_state(state, action)
            except Exception:
                return None
            if state is None:
                return None
            steps.append((action, state))
            if violates(state):
                return Path(init, tuple(steps))
        return None

    with _without_trace_search(model):
        best = run(actions)
        if best is None:
            raise ModelError("the run to shorten does not reach a violating state")
        chunk = max(1, len(best) // 2)
        while True:
            improved = False
            start = 0
            while start < len(best):
                acts = best.actions
                candidate = run(acts[:start] + acts[start + chunk :])
                if candidate is not None and len(candidate) < len(best):
                    best, improved = candidate, True
                else:
                    start += chunk
            if chunk == 1 and not improved:
                return best
            if not improved:
                chunk = max(1, chunk // 2)


@dataclass(frozen=True)
class Found:
    """A property a random run violated, with the shortened run (``steps`` long before
    shortening)."""

    property: str
    path: Path
    steps: int


class Walker:
    """Random runs of ``model`` under a seed, advanced a slice of steps at a time."""

    def __init__(
        self,
        model: Any,
        properties: Sequence[Property],
        *,
        seed: int = 0,
        depth: int = 100,
        max_fault_rate: float = MAX_FAULT_RATE,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ModelError(f"depth must be a positive integer, got {depth!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ModelError(f"seed must be an integer, got {seed!r}")
        self.model = model
        self.rng = random.Random(seed)
        self.depth = depth
        self.max_fault_rate = max_fault_rate
        self.successors = successors_of(model)
        fault = getattr(model, "is_fault", None)
        self.is_fault: Callable[[Any], bool] | None = fault if callable(fault) else None
        self.inits = list(model.init_states())
        if not self.inits:
            raise ModelError(f"{type(model).__name__}.init_states() returned no state")
        self.always = [
            (p.name, p.condition) for p in properties if p.kind == "always" and p.condition
        ]
        self.sometimes = [
            (p.name, p.condition) for p in properties if p.kind == "sometimes" and p.condition
        ]
        self.found: dict[str, Found] = {}
        self.examples: dict[str, Path] = {}
        self.runs = 0
        self.steps = 0
        self.longest = 0
        self._init: Any = None
        self._state: Any = None
        self._path: list[tuple[Any, Any]] = []
        self._fault_rate = 0.0

    def _begin(self) -> bool:
        """Start a new run; True when its initial state already violates a property."""
        self.runs += 1
        self._init = self.inits[self.rng.randrange(len(self.inits))]
        self._state = self._init
        self._path = []
        self._fault_rate = self.rng.random() * self.max_fault_rate
        return self._look(self._init)

    def _look(self, state: Any) -> bool:
        """Check ``state``; True when it violates a property not violated before."""
        model = self.model
        if self.sometimes:
            for name, cond in self.sometimes:
                if cond(model, state):
                    self.examples[name] = Path(self._init, tuple(self._path))
            self.sometimes = [s for s in self.sometimes if s[0] not in self.examples]
        new = False
        for name, cond in self.always:
            if not cond(model, state):
                self._report(name, cond)
                new = True
        if new:
            self.always = [a for a in self.always if a[0] not in self.found]
        return new

    def _report(self, name: str, cond: Callable[[Any, Any], bool]) -> None:
        model = self.model
        path = shorten(model, self._init, [a for a, _ in self._path], lambda s: not cond(model, s))
        self.found[name] = Found(name, path, len(self._path))

    @property
    def between_runs(self) -> bool:
        """True when the next step starts a new run."""
        return self._state is None or len(self._path) >= self.depth

    def advance(self, steps: int, max_runs: int | None = None) -> bool:
        """Take up to ``steps`` random steps, starting at most ``max_runs`` runs in all;
        True as soon as a new violation is found."""
        rng = self.rng
        is_fault = self.is_fault
        taken = 0
        while taken < steps:
            if self.between_runs:
                if max_runs is not None and self.runs >= max_runs:
                    self._state = None
                    return False
                if self._begin():
                    self._state = None
                    return True
            choices = list(self.successors(self._state))
            if not choices:
                self._state = None
                continue
            if is_fault is not None:
                faults = [c for c in choices if is_fault(c[0])]
                if faults and len(faults) < len(choices):
                    if rng.random() < self._fault_rate:
                        choices = faults
                    else:
                        choices = [c for c in choices if not is_fault(c[0])]
            action, state = choices[rng.randrange(len(choices))]
            self._path.append((action, state))
            self._state = state
            taken += 1
            self.steps += 1
            if len(self._path) > self.longest:
                self.longest = len(self._path)
            if self._look(state):
                self._state = None
                return True
        return False


@dataclass(frozen=True)
class RandomRunsResult:
    """What ``random_runs`` saw. ``ok`` only says no run met a violation: not a proof."""

    runs: int
    steps: int
    depth: int
    longest: int
    seed: int
    seconds: float
    violations: tuple[Found, ...]
    examples: dict[str, Path]
    unreached: tuple[str, ...]
    unchecked: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self, format_action: Callable[[Any], str] = repr) -> str:
        lines = [
            f"random runs: {self.runs:,} runs, {self.steps:,} steps (depth up to {self.depth}, "
            f"longest {self.longest}), seed {self.seed}, {self.seconds:.2f} s",
        ]
        if self.ok:
            lines.append(
                "no violation met; this is NOT a proof: random runs cover only part of the "
                "states (run the exhaustive check for a verdict)"
            )
        for found in self.violations:
            lines.append(
                f"VIOLATED always {found.property!r}: a random run of {found.steps} steps, "
                f"shortened to {len(found.path)} (a shorter one may exist)"
            )
            for n, action in enumerate(found.path.actions, 1):
                lines.append(f"    {n}. {format_action(action)}")
        for name in self.unreached:
            lines.append(f"not reached by any run: sometimes {name!r}")
        for name in self.unchecked:
            lines.append(f"not checked by random runs: {name!r} (needs the exhaustive search)")
        return "\n".join(lines)


def random_runs(
    model: Any,
    *,
    runs: int = 1000,
    depth: int = 100,
    seed: int = 0,
    max_seconds: float | None = None,
    stop_at_first: bool = True,
) -> RandomRunsResult:
    """``runs`` random runs of at most ``depth`` steps each (see the module docs).

    Stops at the first violation unless ``stop_at_first`` is False, and at
    ``max_seconds`` when given.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ModelError(f"runs must be a positive integer, got {runs!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ModelError(f"max_seconds must be a positive number, got {max_seconds!r}")
    properties = list(model.properties())
    walker = Walker(model, properties, seed=seed, depth=depth)
    start = time.perf_counter()
    deadline = None if max_seconds is None else start + max_seconds
    while True:
        found = walker.advance(256, max_runs=runs)
        if found and stop_at_first:
            break
        if walker.between_runs and walker.runs >= runs:
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
    return RandomRunsResult(
        runs=walker.runs,
        steps=walker.steps,
        depth=depth,
        longest=walker.longest,
        seed=seed,
        seconds=time.perf_counter() - start,
        violations=tuple(walker.found.values()),
        examples=dict(walker.examples),
        unreached=tuple(name for name, _ in walker.sometimes),
        unchecked=tuple(p.name for p in properties if p.kind == "blocking"),
    )
