"""Exhaustive breadth-first model checking over any ``dtcourse.engine.model`` model.

Breadth-first order is what makes every reported trace a shortest one: states get integer
ids in the order they are found, a parent pointer and the action that reached them, so a
path is rebuilt by walking parents back to an initial state. States are stored once (the
dedup table maps a state to its id); everything else is arrays of ints.

What is checked:

* ``always`` properties on every reachable state; the first violating state found is at
  minimal depth, so its trace is a shortest counterexample.
* ``sometimes`` properties: a shortest example path, or, when the whole state space was
  explored without one, a violation with no path.
* ``blocking`` properties (liveness): after exploration, backward reachability over the
  allowed edges from the states where a key is resolved; a reachable state with a pending
  key outside that set is a witness, and the one with the smallest id is at minimal depth.

Limits on states, time and memory stop the search with ``complete=False`` and the reason;
a partial run still reports the violations it found, never claims a ``sometimes`` property
unreachable, and treats unexplored states as able to resolve anything, so any blocking
witness it reports is real.

Getting an answer early. ``stop_at_first`` ends the search at the first state that
violates an ``always`` property (its trace is still a shortest one); ``sometimes`` and
blocking properties can only be judged on a finished search, so they are then left
undecided. ``hunt`` interleaves the breadth-first search with random runs
(``dtcourse.engine.walks``), which reach deep violations that a breadth-first search would
need millions of states to get to; a violation they find is a real run, shortened but not
necessarily a shortest one, and the result says so. The interleaving counts steps, not
seconds, so a run with a given seed always gives the same answer.

Symmetry reduction (``symmetry=True``) dedups on ``model.representative(state)`` while
keeping the concrete state first seen for each orbit and exploring from it; the number of
states explored equals the number of orbits, and every trace is a real run of the model
(each step is ``next_state`` of the previous concrete state). Properties must then be
symmetric. Blocking properties are refused under symmetry (``ModelError``): their keys
are node names, which a symmetry renames, so the quotient graph cannot answer them.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from array import array
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO, cast

from dtcourse.engine.model import Path, Property, PropertyKind
from dtcourse.engine.walks import Walker, successors_of
from dtcourse.errors import DTCourseError, ModelError

__all__ = [
    "CheckResult",
    "ModelFailure",
    "Stats",
    "Violation",
    "check",
    "default_format_action",
    "memory_in_use",
    "print_progress",
]

# How many expanded states between two looks at the clock (limits and progress).
_CLOCK_EVERY = 512
# With ``hunt``: distinct states found before the first random runs, then per round the
# breadth-first expansions and the random steps (a random step costs about one expansion).
_HUNT_AFTER = 20_000
_HUNT_BFS = 8_192
_HUNT_WALK = 8_192
# Each fruitless round halves the random steps, down to this floor: deep violations show
# up in the first rounds, and a clean model pays little for the search it did not need.
_HUNT_WALK_FLOOR = 1_024
_HUNT_DEPTH = 100

# Why a search stopped early, as ``CheckResult.stopped_by``.
STOP_STATES, STOP_SECONDS, STOP_MEMORY, STOP_VIOLATION = "states", "seconds", "memory", "violation"
_SLICE = object()  # a slice of the search ended; more may follow


class ModelFailure(ModelError):
    """The model misbehaved while being explored.

    ``path`` is the run that reached the state where it happened (None when it happened
    on an initial state), and ``action`` the action being taken, when known.
    """

    def __init__(self, message: str, *, path: Path | None, action: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.action = action


@dataclass(frozen=True)
class Stats:
    """A snapshot of a run, as given to progress callbacks."""

    distinct: int
    generated: int
    depth: int
    seconds: float
    queued: int = 0
    memory: int | None = None
    random_runs: int = 0
    final: bool = False

    @property
    def states_per_second(self) -> float:
        return self.distinct / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Violation:
    """A property that failed; ``path`` is its trace, or None for a ``sometimes``
    property that no reachable state satisfies. ``shortest`` is False for a trace found by
    a random run (see ``hunt``): a real run, but a shorter one may exist."""

    property: str
    kind: PropertyKind
    path: Path | None
    message: str
    shortest: bool = True


@dataclass(frozen=True)
class CheckResult:
    """The verdicts and statistics of one run.

    ``depth`` counts BFS levels as TLC does (the initial states are level 1), so it equals
    TLC's "depth of the complete state graph search". ``generated`` counts every initial
    state and every successor computed, duplicates included, as TLC's "states generated".
    ``seconds`` covers the whole run, including the liveness analysis. ``stopped_by`` says
    why an incomplete search stopped: ``"states"``, ``"seconds"``, ``"memory"`` (a limit)
    or ``"violation"`` (``stop_at_first``). ``random_runs`` counts the random runs of
    ``hunt``.
    """

    distinct: int
    generated: int
    depth: int
    seconds: float
    complete: bool
    reason: str | None
    violations: tuple[Violation, ...]
    examples: Mapping[str, Path]
    blocking: Path | None
    unreached: tuple[str, ...] = ()
    symmetry: bool = False
    stopped_by: str | None = None
    random_runs: int = 0
    peak_memory: int | None = None
    format_action: Callable[[Any], str] = field(default=repr, repr=False, compare=False)
    format_state: Callable[[Any], str] = field(default=repr, repr=False, compare=False)

    @property
    def states_per_second(self) -> float:
        return self.distinct / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True only for a complete run with no violation: an incomplete run never passes."""
        return self.complete and not self.violations

    def trace(self, path: Path) -> list[dict[str, str | None]]:
        """A path as JSON-ready steps: the initial state, then each action and its state."""
        fa, fs = self.format_action, self.format_state
        steps: list[dict[str, str | None]] = [{"action": None, "state": fs(path.init)}]
        steps.extend({"action": fa(action), "state": fs(state)} for action, state in path.steps)
        return steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "complete": self.complete,
            "reason": self.reason,
            "distinct": self.distinct,
            "generated": self.generated,
            "depth": self.depth,
            "seconds": round(self.seconds, 6),
            "states_per_second": round(self.states_per_second, 1),
            "symmetry": self.symmetry,
            "stopped_by": self.stopped_by,
            "random_runs": self.random_runs,
            "violations": [
                {
                    "property": v.property,
                    "kind": v.kind,
                    "message": v.message,
                    "shortest": v.shortest,
                    "trace": None if v.path is None else self.trace(v.path),
                }
                for v in self.violations
            ],
            "blocking": None if self.blocking is None else self.trace(self.blocking),
            "examples": {name: self.trace(path) for name, path in self.examples.items()},
            "unreached": list(self.unreached),
        }

    def summary(self) -> str:
        status = "complete" if self.complete else f"INCOMPLETE ({self.reason})"
        lines = [
            f"{status}: {self.distinct:,} distinct states, {self.generated:,} generated, "
            f"depth {self.depth}, {self.seconds:.2f} s ({self.states_per_second:,.0f} states/s)"
            + (", symmetry reduction" if self.symmetry else ""),
        ]
        if self.random_runs:
            lines.append(f"interleaved with {self.random_runs:,} random runs")
        if self.ok:
            lines.append("OK: every property holds")
        elif not self.violations:
            lines.append("no violation found so far, but the search did not finish")
        for v in self.violations:
            lines.append(f"VIOLATED {v.kind} {v.property!r}: {v.message}")
            if v.path is not None:
                lines.extend(self._path_lines(v.path))
        for name, path in self.examples.items():
            lines.append(f"reached sometimes {name!r} in {len(path)} steps")
        for name in self.unreached:
            lines.append(f"not reached yet sometimes {name!r} (search incomplete)")
        return "\n".join(lines)

    def _path_lines(self, path: Path) -> list[str]:
        lines = [f"    0. (initial) {self.format_state(path.init)}"]
        for n, (action, state) in enumerate(path.steps, 1):
            lines.append(f"    {n}. {self.format_action(action)} -> {self.format_state(state)}")
        return lines


def default_format_action(action: Any) -> str:
    """``("RMPrepare", "r1")`` reads as ``RMPrepare(r1)``, a string as itself, anything else
    as its repr."""
    if isinstance(action, str):
        return action
    if isinstance(action, tuple) and action and isinstance(action[0], str):
        if len(action) == 1:
            return action[0]
        return f"{action[0]}({', '.join(str(arg) for arg in action[1:])})"
    return repr(action)


def print_progress(stream: TextIO, every: float = 0.0) -> Callable[[Stats], None]:
    """A progress callback writing one line per snapshot to ``stream``, at most one per
    ``every`` seconds (the final snapshot is always written)."""
    last = [-float("inf")]

    def report(stats: Stats) -> None:
        if stats.seconds - last[0] < every and not stats.final:
            return
        last[0] = stats.seconds
        memory = "" if stats.memory is None else f", {stats.memory / 2**30:.2f} GB"
        runs = f", {stats.random_runs:,} random runs" if stats.random_runs else ""
        stream.write(
            f"checked {stats.distinct:,} states ({stats.generated:,} generated), "
            f"depth {stats.depth}, queue {stats.queued:,}, {stats.seconds:.1f} s, "
            f"{stats.states_per_second:,.0f} states/s{memory}{runs}\n"
        )
        stream.flush()

    return report


def memory_in_use() -> int | None:
    """This process's resident memory in bytes, or None where it cannot be read cheaply."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def check(
    model: Any,
    *,
    symmetry: bool = False,
    max_states: int | None = None,
    max_seconds: float | None = None,
    max_memory: int | None = None,
    stop_at_first: bool = False,
    hunt: bool = False,
    seed: int = 0,
    progress: Callable[[Stats], None] | None = None,
) -> CheckResult:
    """Explore every reachable state of ``model`` breadth-first and check its properties.

    ``symmetry`` dedups on ``model.representative(state)``; it is refused with
    ``ModelError`` when the model has blocking properties (see the module docstring).
    ``max_states``, ``max_seconds`` and ``max_memory`` (bytes of resident memory of this
    process) bound the search; reaching one gives an incomplete result, never a pass.
    ``stop_at_first`` ends the search at the first ``always`` violation; ``hunt`` adds
    random runs seeded with ``seed`` (see the module docstring). By default the search is
    complete, as graded checks need. ``progress`` receives a ``Stats`` snapshot about
    once per second and once at the end; the checker itself never prints.
    Raises ``ModelFailure`` (a ``ModelError``) when the model misbehaves (a hook raises, a
    state is not hashable), naming the action and the state, with the path that led there.
    """
    if max_states is not None and (
        isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1
    ):
        raise ModelError(f"max_states must be a positive integer, got {max_states!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ModelError(f"max_seconds must be a positive number, got {max_seconds!r}")
    if max_memory is not None and (
        isinstance(max_memory, bool) or not isinstance(max_memory, int) or max_memory < 1
    ):
        raise ModelError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ModelError(f"seed must be an integer, got {seed!r}")
    for hook in ("init_states", "actions", "next_state", "properties"):
        if not callable(getattr(model, hook, None)):
            raise ModelError(
                f"{type(model).__name__} is not a model: it has no {hook}() method "
                "(see dtcourse.engine.model.Model)"
            )
    properties = _properties(model)
    canon: Callable[[Any], Hashable] | None = None
    if symmetry:
        canon = getattr(model, "representative", None)
        if not callable(canon):
            raise ModelError(
                f"symmetry reduction needs {type(model).__name__}.representative(state); "
                "add it or run without symmetry"
            )
        blocking_names = [p.name for p in properties if p.kind == "blocking"]
        if blocking_names:
            raise ModelError(
                f"blocking properties {blocking_names} cannot be checked with symmetry "
                "reduction (a symmetry renames the keys they wait on); run without symmetry"
            )
    run = _Run(model, properties, canon, max_states, max_seconds, progress)
    run.max_memory = max_memory
    run.stop_at_first = bool(stop_at_first)
    run.hunt_seed = seed if hunt else None
    return run.execute()


def _properties(model: Any) -> list[Property]:
    try:
        properties = list(model.properties())
    except DTCourseError:
        raise
    except Exception as error:
        raise ModelError(f"{type(model).__name__}.properties() raised {error!r}") from error
    names: set[str] = set()
    for prop in properties:
        if not isinstance(prop, Property):
            raise ModelError(
                f"properties() must return dtcourse.engine.model.Property values, got {prop!r}"
            )
        if prop.name in names:
            raise ModelError(f"two properties are named {prop.name!r}; give each its own name")
        names.add(prop.name)
        needs = ("pending", "resolved", "allowed") if prop.kind == "blocking" else ("condition",)
        if prop.kind not in ("always", "sometimes", "blocking") or any(
            not callable(getattr(prop, attr)) for attr in needs
        ):
            raise ModelError(
                f"property {prop.name!r} is malformed: build it with Property.always, "
                "Property.sometimes or Property.blocking"
            )
    return properties


class _Run:
    """One exploration; holds the graph so traces and liveness can be computed after."""

    def __init__(
        self,
        model: Any,
        properties: list[Property],
        canon: Callable[[Any], Hashable] | None,
        max_states: int | None,
        max_seconds: float | None,
        progress: Callable[[Stats], None] | None,
    ) -> None:
        self.model = model
        self.properties = properties
        self.canon = canon
        self.max_states = max_states
        self.max_seconds = max_seconds
        self.progress = progress
        self.states: list[Any] = []
        self.parent = array("q")
        self.via: list[Any] = []
        self.seen: dict[Hashable, int] = {}
        self.blocking = [p for p in properties if p.kind == "blocking"]
        # Per blocking property: successor ids along allowed edges, in CSR form.
        self.edges = [array("q") for _ in self.blocking]
        self.offsets = [array("q", [0]) for _ in self.blocking]
        self.pending: list[dict[int, tuple[Hashable, ...]]] = [{} for _ in self.blocking]
        self.first_bad: dict[str, int] = {}
        self.examples: dict[str, int] = {}
        self.generated = 0
        self.expanded = 0
        self.start = 0.0
        self.max_memory: int | None = None
        self.stop_at_first = False
        self.hunt_seed: int | None = None
        self.walker: Walker | None = None
        self.hunt_rounds = 0
        self.stopped_by: str | None = None
        self.peak_memory: int | None = None

    # -- exploration ----------------------------------------------------------------------

    def execute(self) -> CheckResult:
        self.start = time.perf_counter()
        reason = self._explore()
        complete = reason is None
        violations: list[Violation] = []
        hunted = self.walker.found if self.walker is not None else {}
        for prop in self.properties:
            if prop.kind == "always" and prop.name in self.first_bad:
                path = self.path(self.first_bad[prop.name])
                violations.append(
                    Violation(
                        prop.name,
                        "always",
                        path,
                        f"invariant violated in a state reached in {len(path)} steps",
                    )
                )
            elif prop.kind == "always" and prop.name in hunted:
                found = hunted[prop.name]
                violations.append(
                    Violation(
                        prop.name,
                        "always",
                        found.path,
                        f"invariant violated in a state reached in {len(found.path)} steps, "
                        f"found by a random run of {found.steps} steps and shortened (a "
                        "shorter run may exist)",
                        shortest=False,
                    )
                )
            elif prop.kind == "sometimes" and complete and prop.name not in self.examples:
                violations.append(
                    Violation(
                        prop.name,
                        "sometimes",
                        None,
                        "no reachable state satisfies it (the model may do nothing useful)",
                    )
                )
        # Stopped at a violation, the search wants an answer now: liveness is left open.
        witnesses = self._blocking_witnesses() if self.stopped_by != STOP_VIOLATION else []
        for prop, state_id, key in witnesses:
            path = self.path(state_id)
            violations.append(
                Violation(
                    prop.name,
                    "blocking",
                    path,
                    f"{key!r} is waiting in a state reached in {len(path)} steps and "
                    "can never be resolved using the allowed actions",
                )
            )
        shallowest = min((state_id for _, state_id, _ in witnesses), default=None)
        blocking_path = None if shallowest is None else self.path(shallowest)
        unreached: tuple[str, ...] = ()
        if not complete:
            unreached = tuple(
                p.name
                for p in self.properties
                if p.kind == "sometimes" and p.name not in self.examples
            )
        stats = replace(self.stats(), final=True)
        if self.progress is not None:
            self.progress(stats)
        model = self.model
        examples = {
            p.name: self.path(self.examples[p.name])
            for p in self.properties
            if p.name in self.examples
        }
        return CheckResult(
            distinct=len(self.states),
            generated=self.generated,
            depth=stats.depth,
            seconds=stats.seconds,
            complete=complete,
            reason=reason,
            violations=tuple(violations),
            examples=examples,
            blocking=blocking_path,
            unreached=unreached,
            symmetry=self.canon is not None,
            stopped_by=self.stopped_by,
            random_runs=0 if self.walker is None else self.walker.runs,
            peak_memory=self.peak_memory,
            format_action=getattr(model, "format_action", None) or default_format_action,
            format_state=getattr(model, "format_state", None) or repr,
        )

    def stats(self) -> Stats:
        memory = memory_in_use()
        if memory is not None and (self.peak_memory is None or memory > self.peak_memory):
            self.peak_memory = memory
        return Stats(
            distinct=len(self.states),
            generated=self.generated,
            depth=self.depth(),
            seconds=time.perf_counter() - self.start,
            queued=len(self.states) - self.expanded,
            memory=memory,
            random_runs=0 if self.walker is None else self.walker.runs,
        )

    def depth(self) -> int:
        """BFS levels, counted as TLC does: initial states are level 1.

        The last state found is on the deepest level, so its path length gives the depth.
        """
        if not self.states:
            return 0
        return self._distance(len(self.states) - 1) + 1

    def _distance(self, state_id: int) -> int:
        parent = self.parent
        steps = 0
        while parent[state_id] >= 0:
            state_id = parent[state_id]
            steps += 1
        return steps

    def _explore(self) -> str | None:
        """The search proper; returns why it stopped early, or None when it finished."""
        model = self.model
        states = self.states
        seen = self.seen
        try:
            inits = list(model.init_states())
        except DTCourseError:
            raise
        except Exception as error:
            raise ModelError(f"{type(model).__name__}.init_states() raised {error!r}") from error
        if not inits:
            raise ModelError(f"{type(model).__name__}.init_states() returned no state")
        for state in inits:
            if state is None:
                raise ModelError(f"{type(model).__name__}.init_states() returned None")
            self.generated += 1
            key = self._key(state, None, None)
            if key not in seen:
                if self.max_states is not None and len(states) >= self.max_states:
                    self.stopped_by = STOP_STATES
                    return f"state limit {self.max_states} reached"
                self._add(key, state, -1, None)
        if self.stop_at_first and self.first_bad:
            self.stopped_by = STOP_VIOLATION
            return "stopped at the first violation"
        if self.hunt_seed is None:
            return cast("str | None", self._search(None))
        while True:
            reason = self._search(self.expanded + _HUNT_BFS)
            if reason is not _SLICE:
                return cast("str | None", reason)
            # Small models finish before the random runs start: their answers stay shortest.
            if len(self.states) >= _HUNT_AFTER and self._hunt():
                self.stopped_by = STOP_VIOLATION
                return "stopped at the first violation"

    def _search(self, until: int | None) -> str | object | None:
        """Expand states until ``until`` expansions (a slice) or the end."""
        try:
            return self._loop(until)
        except DTCourseError:
            raise
        except _CallbackError as wrapper:
            cause = wrapper.__cause__
            assert cause is not None
            raise cause from None
        except Exception as error:
            self._diagnose(self.expanded, error)
            raise  # pragma: no cover - _diagnose always raises

    def _hunt(self) -> bool:
        """One round of random runs; True when the search should stop at what they found."""
        if self.walker is None:
            assert self.hunt_seed is not None
            self.walker = Walker(
                self.model, self.properties, seed=self.hunt_seed, depth=_HUNT_DEPTH
            )
            # Properties the search already saw violated need no random hunting.
            self.walker.always = [a for a in self.walker.always if a[0] not in self.first_bad]
        walker = self.walker
        if not walker.always:
            return False
        try:
            found = walker.advance(max(_HUNT_WALK >> self.hunt_rounds, _HUNT_WALK_FLOOR))
            self.hunt_rounds += 1
        except DTCourseError:
            raise
        except Exception as error:
            raise ModelError(
                f"the model raised {error!r} during a random run (seed {self.hunt_seed})"
            ) from error
        return found and self.stop_at_first

    def _key(self, state: Any, source: int | None, action: Any) -> Hashable:
        try:
            key = state if self.canon is None else self.canon(state)
        except Exception as error:
            raise self._error(
                f"representative() raised {error!r} on state {state!r}", source, action
            ) from error
        try:
            hash(key)
        except TypeError:
            raise self._error(
                f"state {state!r} is not hashable; use tuples, frozensets and frozen dataclasses",
                source,
                action,
            ) from None
        return key

    def _add(self, key: Hashable, state: Any, source: int, action: Any) -> None:
        """Record a new state and evaluate properties on it (slow path for initial states)."""
        state_id = len(self.states)
        self.seen[key] = state_id
        self.states.append(state)
        self.parent.append(source)
        self.via.append(action)
        for prop in self.properties:
            try:
                self._evaluate(prop, state_id, state)
            except DTCourseError:
                raise
            except Exception as error:
                raise self._error(
                    f"property {prop.name!r} raised {error!r} on state {state!r}",
                    state_id,
                    None,
                ) from error

    def _evaluate(self, prop: Property, state_id: int, state: Any) -> None:
        model = self.model
        if prop.kind == "always":
            if prop.name not in self.first_bad and not _hook(prop.condition)(model, state):
                self.first_bad[prop.name] = state_id
        elif prop.kind == "sometimes":
            if prop.name not in self.examples and _hook(prop.condition)(model, state):
                self.examples[prop.name] = state_id
        else:
            keys = tuple(dict.fromkeys(_hook(prop.pending)(model, state)))
            if keys:
                self.pending[self.blocking.index(prop)][state_id] = keys

    def _limits(self, now: float) -> str | None:
        """Why the search must stop now (a limit), if it must; called with the clock."""
        if self.max_seconds is not None and now >= self.start + self.max_seconds:
            self.stopped_by = STOP_SECONDS
            return f"time limit {self.max_seconds:g} s reached"
        if self.max_memory is not None:
            memory = memory_in_use()
            if memory is not None and memory >= self.max_memory:
                self.peak_memory = max(memory, self.peak_memory or 0)
                self.stopped_by = STOP_MEMORY
                return (
                    f"memory limit {self.max_memory / 2**30:.2f} GB reached after "
                    f"{len(self.states):,} states"
                )
        return None

    def _loop(self, until: int | None) -> str | object | None:
        """The hot loop: everything it touches is a local variable.

        A model with ``next_states`` and no blocking property takes the lean loop, which
        keeps no actions (``path`` finds them again); any other the general one.
        """
        fast = getattr(self.model, "next_states", None)
        if (
            callable(fast)
            and callable(getattr(self.model, "successors", None))
            and not self.blocking
        ):
            if self.via:  # initial states recorded an action slot each
                self.via.clear()
            return self._lean_loop(until, fast)
        return self._general_loop(until)

    def _lean_loop(
        self, until: int | None, next_states: Callable[[Any], Any]
    ) -> str | object | None:
        """``_general_loop`` without actions or blocking bookkeeping."""
        model = self.model
        states = self.states
        seen = self.seen
        setdefault = seen.setdefault
        states_append = states.append
        parent_append = self.parent.append
        canon = self.canon
        max_states = self.max_states if self.max_states is not None else -1
        limited = self.max_seconds is not None or self.max_memory is not None
        stop_at_first = self.stop_at_first
        end = -1 if until is None else until
        progress = self.progress
        clock = time.perf_counter
        next_progress = self.start + 1.0
        next_clock = _CLOCK_EVERY
        always = _conditions(self.properties, "always", self.first_bad)
        sometimes = _conditions(self.properties, "sometimes", self.examples)
        first_bad = self.first_bad
        examples = self.examples
        bad_count, example_count = len(first_bad), len(examples)
        generated = self.generated
        i = self.expanded
        freeze = gc.isenabled()
        try:
            while i < len(states):
                if i == end:
                    return _SLICE
                if i >= next_clock:
                    next_clock = i + _CLOCK_EVERY
                    now = clock()
                    if limited:
                        stop = self._limits(now)
                        if stop is not None:
                            return stop
                    if progress is not None and now >= next_progress:
                        next_progress = now + 1.0
                        self.expanded, self.generated = i, generated
                        try:
                            progress(self.stats())
                        except Exception as error:
                            raise _CallbackError from error
                    if freeze:
                        gc.freeze()
                count = len(states)
                succs = next_states(states[i])
                generated += len(succs)
                for t in succs:
                    key = t if canon is None else canon(t)
                    if setdefault(key, count) != count:
                        continue
                    if count == max_states:
                        del seen[key]
                        # As one successor at a time: this one was generated, not the rest.
                        generated -= len(succs) - 1 - succs.index(t)
                        self.stopped_by = STOP_STATES
                        return f"state limit {max_states} reached"
                    states_append(t)
                    parent_append(i)
                    for name, cond in always:
                        if not cond(model, t):
                            first_bad[name] = count
                    if sometimes:
                        for name, cond in sometimes:
                            if cond(model, t):
                                examples[name] = count
                        if len(examples) != example_count:
                            example_count = len(examples)
                            sometimes = [x for x in sometimes if x[0] not in examples]
                    count += 1
                    if len(first_bad) != bad_count:
                        bad_count = len(first_bad)
                        always = [a for a in always if a[0] not in first_bad]
                        if stop_at_first:
                            generated -= len(succs) - 1 - succs.index(t)
                            self.stopped_by = STOP_VIOLATION
                            return "stopped at the first violation"
                i += 1
            return None
        finally:
            self.expanded = i
            self.generated = generated
            if freeze:
                gc.unfreeze()

    def _general_loop(self, until: int | None) -> str | object | None:
        """The hot loop for any model: everything it touches is a local variable."""
        model = self.model
        states = self.states
        seen = self.seen
        setdefault = seen.setdefault
        states_append = states.append
        parent_append = self.parent.append
        via_append = self.via.append
        successors = successors_of(model)
        canon = self.canon
        max_states = self.max_states if self.max_states is not None else -1
        limited = self.max_seconds is not None or self.max_memory is not None
        stop_at_first = self.stop_at_first
        end = -1 if until is None else until
        progress = self.progress
        clock = time.perf_counter
        next_progress = self.start + 1.0
        next_clock = _CLOCK_EVERY
        always = _conditions(self.properties, "always", self.first_bad)
        sometimes = _conditions(self.properties, "sometimes", self.examples)
        first_bad = self.first_bad
        examples = self.examples
        bad_count, example_count = len(first_bad), len(examples)
        blocking = self.blocking
        record = bool(blocking)
        allowed = [(self.edges[n].append, p.allowed) for n, p in enumerate(blocking)]
        waiting = [(self.pending[n], p.pending) for n, p in enumerate(blocking)]
        edge_lists = self.edges
        offsets = self.offsets
        generated = self.generated
        i = self.expanded
        freeze = gc.isenabled()
        try:
            while i < len(states):
                if i == end:
                    return _SLICE
                if i >= next_clock:
                    next_clock = i + _CLOCK_EVERY
                    now = clock()
                    if limited:
                        stop = self._limits(now)
                        if stop is not None:
                            return stop
                    if progress is not None and now >= next_progress:
                        next_progress = now + 1.0
                        self.expanded, self.generated = i, generated
                        try:
                            progress(self.stats())
                        except Exception as error:
                            raise _CallbackError from error
                    if freeze:
                        # The states found so far live to the end of the search and hold
                        # no cycles: the cyclic collector need not scan them again.
                        gc.freeze()
                count = len(states)
                for action, t in successors(states[i]):
                    generated += 1
                    key = t if canon is None else canon(t)
                    j = setdefault(key, count)
                    if j == count:
                        if j == max_states:
                            # The current state is only partly expanded: it stays queued.
                            del seen[key]
                            self.stopped_by = STOP_STATES
                            return f"state limit {max_states} reached"
                        count += 1
                        states_append(t)
                        parent_append(i)
                        via_append(action)
                        if always:
                            for name, cond in always:
                                if not cond(model, t):
                                    first_bad[name] = j
                            if len(first_bad) != bad_count:
                                bad_count = len(first_bad)
                                always = [a for a in always if a[0] not in first_bad]
                                if stop_at_first:
                                    # Partly expanded, the current state stays queued.
                                    self.stopped_by = STOP_VIOLATION
                                    return "stopped at the first violation"
                        if sometimes:
                            for name, cond in sometimes:
                                if cond(model, t):
                                    examples[name] = j
                            if len(examples) != example_count:
                                example_count = len(examples)
                                sometimes = [x for x in sometimes if x[0] not in examples]
                        if record:
                            for store, keys_of in waiting:
                                keys = keys_of(model, t)  # type: ignore[misc]
                                if keys:
                                    found = tuple(dict.fromkeys(keys))
                                    if found:
                                        store[j] = found
                    if record:
                        for append_edge, allows in allowed:
                            if allows(model, action):  # type: ignore[misc]
                                append_edge(j)
                if record:
                    for n in range(len(blocking)):
                        offsets[n].append(len(edge_lists[n]))
                i += 1
            return None
        finally:
            self.expanded = i
            self.generated = generated
            if freeze:
                gc.unfreeze()

    # -- errors ---------------------------------------------------------------------------

    def _diagnose(self, state_id: int, error: Exception) -> None:
        """Find which hook failed on the state being expanded, by replaying its expansion.

        The hot loop carries no bookkeeping for this; models are deterministic, so running
        the same calls again meets the same failure.
        """
        model = self.model
        state = self.states[state_id]
        hook = getattr(model, "successors", None)
        hook_error: Exception | None = None
        if callable(hook):
            try:
                list(hook(state))
            except Exception as again:
                hook_error = again
        try:
            acts = list(model.actions(state))
        except Exception as again:
            raise self._error(
                f"actions() raised {again!r} on state {state!r}", state_id, None
            ) from again
        for action in acts:
            try:
                successor = model.next_state(state, action)
            except Exception as again:
                raise self._error(
                    f"next_state() raised {again!r} for action {action!r} on state {state!r}",
                    state_id,
                    None,
                ) from again
            if successor is None:
                continue
            try:
                key = successor if self.canon is None else self.canon(successor)
            except Exception as again:
                raise self._error(
                    f"representative() raised {again!r} on state {successor!r}",
                    state_id,
                    action,
                ) from again
            try:
                hash(key)
            except TypeError:
                raise self._error(
                    f"action {action!r} produced a state that is not hashable: {successor!r}; "
                    "use tuples, frozensets and frozen dataclasses",
                    state_id,
                    None,
                ) from None
            for prop in self.properties:
                try:
                    if prop.kind == "blocking":
                        tuple(_hook(prop.pending)(model, successor))
                        _hook(prop.allowed)(model, action)
                    else:
                        _hook(prop.condition)(model, successor)
                except Exception as again:
                    raise self._error(
                        f"property {prop.name!r} raised {again!r} on state {successor!r} "
                        f"(reached by action {action!r})",
                        state_id,
                        None,
                    ) from again
        if hook_error is not None:
            raise self._error(
                f"successors() raised {hook_error!r} on state {state!r}", state_id, None
            ) from hook_error
        raise self._error(
            f"the model raised {error!r} while expanding state {state!r}", state_id, None
        ) from error

    def _error(self, message: str, state_id: int | None, action: Any) -> ModelFailure:
        """A ModelFailure whose message ends with the trace that led to the failure."""
        path = None if state_id is None else self.path(state_id)
        if path is None:
            trace = "at an initial state"
        else:
            labels = [self._label(a) for a in path.actions]
            if action is not None:
                labels.append(self._label(action))
            trace = "after " + (" -> ".join(labels) if labels else "the initial state")
        return ModelFailure(f"{message} ({trace})", path=path, action=action)

    def _label(self, action: Any) -> str:
        fmt = getattr(self.model, "format_action", None)
        try:
            return fmt(action) if callable(fmt) else default_format_action(action)
        except Exception:
            return repr(action)

    # -- traces and liveness --------------------------------------------------------------

    def path(self, state_id: int) -> Path:
        steps = []
        parent, via, states = self.parent, self.via, self.states
        while parent[state_id] >= 0:
            action = via[state_id] if via else self._action(parent[state_id], state_id)
            steps.append((action, states[state_id]))
            state_id = parent[state_id]
        steps.reverse()
        return Path(states[state_id], tuple(steps))

    def _action(self, source: int, target: int) -> Any:
        """The action that first led from ``source`` to ``target`` (searches that used
        ``next_states`` keep no actions: the first successor of the parent with the
        child's key is the one the search stored)."""
        canon = self.canon
        want = self.states[target]
        if canon is not None:
            want = canon(want)
        for action, state in successors_of(self.model)(self.states[source]):
            if (state if canon is None else canon(state)) == want:
                return action
        raise ModelError(  # pragma: no cover - next_states and successors disagree
            f"{type(self.model).__name__}.next_states() and its actions disagree on state "
            f"{self.states[source]!r}"
        )

    def _blocking_witnesses(self) -> list[tuple[Property, int, Hashable]]:
        """Per blocking property, the shallowest (smallest id) state with a key that can
        never be resolved, and that key."""
        model, states = self.model, self.states
        count, expanded = len(states), self.expanded
        witnesses = []
        for n, prop in enumerate(self.blocking):
            pending = self.pending[n]
            if not pending:
                continue
            offsets = self.offsets[n]
            # A search stopped by a limit may have recorded part of a state's edges.
            edges = self.edges[n][: offsets[expanded]]
            predecessors = _reverse(offsets, edges, expanded, count)
            best: tuple[int, Hashable] | None = None
            for key in dict.fromkeys(k for keys in pending.values() for k in keys):
                # Unexpanded states count as able to resolve: a partial run only reports
                # witnesses whose whole allowed future has been explored.
                good = bytearray(count)
                frontier = []
                for state_id in range(count):
                    try:
                        resolved = state_id >= expanded or _hook(prop.resolved)(
                            model, states[state_id], key
                        )
                    except DTCourseError:
                        raise
                    except Exception as error:
                        raise self._error(
                            f"property {prop.name!r}: resolved() raised {error!r} for key "
                            f"{key!r} on state {states[state_id]!r}",
                            state_id,
                            None,
                        ) from error
                    if resolved:
                        good[state_id] = 1
                        frontier.append(state_id)
                _backward(frontier, good, predecessors)
                # pending is filled in id order, so the first hit is the shallowest.
                for state_id, waiting in pending.items():
                    if best is not None and state_id >= best[0]:
                        break
                    if key in waiting and not good[state_id]:
                        best = (state_id, key)
                        break
            if best is not None:
                witnesses.append((prop, best[0], best[1]))
        return witnesses


def _hook(function: Callable[..., Any] | None) -> Callable[..., Any]:
    """A property's function, which ``_properties`` checked is there."""
    assert function is not None
    return function


def _conditions(
    properties: list[Property], kind: str, done: Mapping[str, int]
) -> list[tuple[str, Callable[[Any, Any], bool]]]:
    """The conditions of the ``kind`` properties not yet settled (not in ``done``)."""
    return [
        (p.name, p.condition)
        for p in properties
        if p.kind == kind and p.name not in done and p.condition is not None
    ]


class _CallbackError(Exception):
    """Carries an exception from the progress callback past the model-error diagnosis."""


def _reverse(offsets: array, edges: array, expanded: int, count: int) -> tuple[array, array]:
    """Predecessor lists in CSR form from successor lists in CSR form."""
    indegree = array("q", bytes(8 * (count + 1)))
    for target in edges:
        indegree[target + 1] += 1
    for k in range(1, count + 1):
        indegree[k] += indegree[k - 1]
    start = array("q", indegree)
    sources = array("q", bytes(8 * len(edges)))
    fill = array("q", indegree)
    for source in range(expanded):
        for e in range(offsets[source], offsets[source + 1]):
            target = edges[e]
            sources[fill[target]] = source
            fill[target] += 1
    return start, sources


def _backward(frontier: list[int], good: bytearray, predecessors: tuple[array, array]) -> None:
    """Mark every state that can reach a good state along the recorded edges."""
    start, sources = predecessors
    while frontier:
        target = frontier.pop()
        for source in sources[start[target] : start[target + 1]]:
            if not good[source]:
                good[source] = 1
                frontier.append(source)
