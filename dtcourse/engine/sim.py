"""Seeded, deterministic simulation of an actor system: one schedule, with time.

The simulator runs the very node handlers the model checker explores, but picks one
behaviour: message delays drawn from a latency distribution, timers that fire after a
timeout, and faults either scheduled (crash P1 at t=3, recover at t=9, split the network
at t=4) or drawn at random (loss, duplication, crashes). All randomness comes from one
``random.Random(seed)`` and every tie is broken by a sequence number, so the same seed
gives the same trace, in any process.

Timing follows the system's assumption: with ``async`` timing a timer fires ``timeout``
after it was set; under a perfect failure detector a timer waiting on nodes fires only
once one of them is down or cut off (checked every ``timeout``).

Metrics are what the course counts: messages by type, forced and lazy log writes by node,
the number of sequential message hops on the critical path to the last decision, and
each node's time to decision. After every step the system's ``always`` properties are
checked, so a chaos run reports the first violation with its trace.

The trace keeps each step as the choice the model checker would name (deliver, duplicate,
drop, timeout, crash, recover, partition, heal), so a simulated run saves and replays like
a counterexample. A message sent twice by a duplicating network is two copies in flight:
the first to arrive is the duplicate (a copy is still on its way), the second the
delivery.
"""

from __future__ import annotations

import heapq
import random
import time as clock
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from dtcourse.engine._codec import Encoder
from dtcourse.engine.actors import (
    ActorAction,
    ActorSystem,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Heal,
    NodeRecord,
    Partition,
    Recover,
    Timeout,
    _HandlerFailure,
    encode_action,
    format_action,
)
from dtcourse.engine.network import cut_off
from dtcourse.engine.trace import Step, Trace, TraceBuilder
from dtcourse.engine.trace_text import text_sequence
from dtcourse.errors import ModelError

FaultKind = Literal["crash", "recover", "partition", "heal"]


@dataclass(frozen=True)
class Latency:
    """A message-delay distribution: ``constant``, ``uniform`` (low, high), ``exponential``
    (``low`` is the minimum, ``high`` the mean of the extra delay)."""

    kind: Literal["constant", "uniform", "exponential"] = "uniform"
    low: float = 0.5
    high: float = 1.5

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "uniform", "exponential"):
            raise ModelError(f"unknown latency {self.kind!r}: use constant, uniform or exponential")
        if self.low < 0 or self.high < self.low and self.kind == "uniform":
            raise ModelError(f"latency bounds must satisfy 0 <= low <= high, got {self}")

    def draw(self, rng: random.Random) -> float:
        if self.kind == "constant":
            return self.low
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        return self.low + rng.expovariate(1.0 / self.high) if self.high > 0 else self.low


@dataclass(frozen=True)
class Fault:
    """A scheduled fault: crash or recover ``node``, split into ``groups``, or heal."""

    time: float
    kind: FaultKind
    node: str | None = None
    groups: tuple[tuple[str, ...], tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Metrics:
    messages: dict[str, int]
    forced_writes: dict[str, int]
    lazy_writes: dict[str, int]
    decision_times: dict[str, float]
    decision_hops: dict[str, int]
    critical_path_hops: int | None
    events: int
    end_time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": dict(self.messages),
            "messages_total": sum(self.messages.values()),
            "forced_writes": dict(self.forced_writes),
            "lazy_writes": dict(self.lazy_writes),
            "decision_times": {k: round(v, 6) for k, v in self.decision_times.items()},
            "decision_hops": dict(self.decision_hops),
            "critical_path_hops": self.critical_path_hops,
            "events": self.events,
            "end_time": round(self.end_time, 6),
        }


@dataclass(frozen=True)
class SimResult:
    seed: int
    trace: Trace
    metrics: Metrics
    decisions: dict[str, str]
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "ok": self.ok,
            "violations": list(self.violations),
            "decisions": dict(self.decisions),
            "metrics": self.metrics.to_dict(),
        }


@dataclass(frozen=True)
class ChaosResult:
    """Many seeded runs: how they ended, and the failing ones (with their traces)."""

    runs: int
    seed: int
    outcomes: dict[str, int]
    failures: tuple[SimResult, ...]
    seconds: float
    failing_seeds: tuple[int, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failing_seeds

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "seed": self.seed,
            "ok": self.ok,
            "outcomes": dict(self.outcomes),
            "failing_seeds": list(self.failing_seeds),
            "seconds": round(self.seconds, 6),
            "runs_per_second": round(self.runs_per_second, 1),
        }


def simulate(
    system: ActorSystem,
    *,
    seed: int = 0,
    latency: Latency | None = None,
    timeout: float = 5.0,
    loss: float = 0.0,
    duplicate: float = 0.0,
    faults: Sequence[Fault] = (),
    crash_probability: float = 0.0,
    recover_after: float | None = None,
    horizon: float = 100.0,
    max_events: int = 5_000,
) -> SimResult:
    """One seeded run of ``system``; see the module docs for the semantics.

    ``crash_probability`` is, per node, the chance of one crash at a random time within
    the first ``2 * timeout``; with ``recover_after`` the node restarts that long after.
    """
    _check_probability("loss", loss)
    _check_probability("duplicate", duplicate)
    _check_probability("crash_probability", crash_probability)
    if not timeout > 0:
        raise ModelError(f"timeout must be positive, got {timeout!r}")
    for fault in faults:
        _check_fault(system, fault)
    run = _Run(system, seed, latency or Latency(), timeout, loss, duplicate, horizon, max_events)
    return run.execute(faults, crash_probability, recover_after)


def chaos(
    system_factory: Callable[[], ActorSystem] | ActorSystem,
    runs: int = 1000,
    seed: int = 0,
    *,
    keep: int = 3,
    **options: Any,
) -> ChaosResult:
    """``runs`` simulations with seeds drawn from ``seed``; ``options`` go to ``simulate``.

    Defaults to random faults (10% loss, 30% crash probability, recovery after 10 time
    units) when no fault option is given. Keeps the first ``keep`` failing runs.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ModelError(f"runs must be a positive integer, got {runs!r}")
    if not options.keys() & {"loss", "crash_probability", "faults", "duplicate"}:
        options = {"loss": 0.1, "crash_probability": 0.3, "recover_after": 10.0, **options}
    system = system_factory if isinstance(system_factory, ActorSystem) else system_factory()
    seeds = random.Random(seed)
    outcomes: Counter[str] = Counter()
    failures: list[SimResult] = []
    failing: list[int] = []
    start = clock.perf_counter()
    for _ in range(runs):
        run_seed = seeds.getrandbits(32)
        result = simulate(system, seed=run_seed, **options)
        outcomes[_outcome(system, result)] += 1
        if not result.ok:
            failing.append(run_seed)
            if len(failures) < keep:
                failures.append(result)
    seconds = clock.perf_counter() - start
    return ChaosResult(runs, seed, dict(outcomes), tuple(failures), seconds, tuple(failing))


def _outcome(system: ActorSystem, result: SimResult) -> str:
    values = {result.decisions.get(p) for p in system.participants}
    if values == {"commit"}:
        return "commit"
    if values == {"abort"}:
        return "abort"
    if len(values - {None}) > 1:
        return "mixed"
    return "undecided"


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ModelError(f"{name} must be a probability between 0 and 1, got {value!r}")


def _check_fault(system: ActorSystem, fault: Fault) -> None:
    kinds = get_args(FaultKind)
    if fault.kind not in kinds:
        raise ModelError(f"unknown fault kind {fault.kind!r}; use one of {', '.join(kinds)}")
    if fault.kind in ("crash", "recover") and fault.node not in system.index:
        raise ModelError(
            f"cannot {fault.kind} unknown node {fault.node!r}; nodes are {', '.join(system.names)}"
        )
    if fault.kind == "partition":
        groups = fault.groups
        if groups is None or sorted(n for g in groups for n in g) != sorted(system.names):
            raise ModelError(
                f"a partition must split all nodes ({', '.join(system.names)}) in two groups, "
                f"got {groups!r}"
            )
    if fault.time < 0:
        raise ModelError(f"fault times must be non-negative, got {fault.time!r}")


class _Run:
    """The state of one simulation; ``execute`` drives the event queue."""

    def __init__(
        self,
        system: ActorSystem,
        seed: int,
        latency: Latency,
        timeout: float,
        loss: float,
        duplicate: float,
        horizon: float,
        max_events: int,
    ) -> None:
        self.system = system
        self.seed = seed
        self.rng = random.Random(seed)
        self.latency = latency
        self.timeout = timeout
        self.loss = loss
        self.duplicate = duplicate
        self.horizon = horizon
        self.max_events = max_events
        count = len(system.names)
        self.records: list[NodeRecord] = [NodeRecord(None)] * count
        self.hops = [0] * count
        self.sides: tuple[int, ...] | None = None
        self.failed = False
        self.reversed: set[str] = set()
        self.queue: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.generation: dict[tuple[int, str], int] = {}
        self.builder = TraceBuilder(system.names)
        self.now = 0.0
        self.messages: Counter[str] = Counter()
        self.forced: Counter[str] = Counter()
        self.lazy: Counter[str] = Counter()
        self.decision_times: dict[str, float] = {}
        self.decision_hops: dict[str, int] = {}
        self.last_decision: tuple[float, int] | None = None
        self.violations: list[str] = []
        self.invariants = [p for p in system.properties() if p.kind == "always"]
        self.steps: list[Step] = [Step(None, "start", 0, 0.0)]
        self.copies: dict[int, int] = {}  # send index -> copies still in flight
        self.encoder = Encoder()

    def step(self, action: ActorAction) -> None:
        """Record that the environment took ``action`` now; its events follow."""
        self.steps.append(
            Step(
                encode_action(action, self.encoder),
                format_action(action),
                len(self.builder.events),
                self.now,
            )
        )

    # -- scheduling ------------------------------------------------------------------------------

    def push(self, at: float, kind: str, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, payload))

    def execute(
        self, faults: Sequence[Fault], crash_probability: float, recover_after: float | None
    ) -> SimResult:
        system = self.system
        for fault in faults:
            self.push(fault.time, "fault", fault)
        if crash_probability:
            for name in system.names:
                if self.rng.random() < crash_probability:
                    at = self.rng.uniform(0.0, 2 * self.timeout)
                    self.push(at, "fault", Fault(at, "crash", name))
                    if recover_after is not None:
                        later = at + recover_after
                        self.push(later, "fault", Fault(later, "recover", name))
        for i, name in enumerate(system.names):
            self.builder.add_one(0.0, ("start", name))
            self.handle(i, "start", None)
        events = 0
        while self.queue and events < self.max_events:
            at, _, kind, payload = heapq.heappop(self.queue)
            if at > self.horizon:
                break
            self.now = at
            events += 1
            if kind == "deliver":
                self.deliver(*payload)
            elif kind == "timer":
                self.fire(*payload)
            else:
                self.fault(payload)
        return self.result()

    # -- events ----------------------------------------------------------------------------------

    def handle(self, i: int, kind: str, payload: Any) -> None:
        system = self.system
        try:
            applied = system.apply(i, self.records[i], kind, payload, record=True)
        except _HandlerFailure as failure:
            so_far = self.builder.trace()
            raise ModelError(
                f"{failure.describe()}; fix the handler. Simulation seed {self.seed}, "
                f"after this run:\n{text_sequence(so_far)}"
            ) from None
        name = system.names[i]
        self.records[i] = applied.record
        if applied.reversal:
            self.reversed.add(name)
        for name_set in applied.timers_set:
            key = (i, name_set)
            self.generation[key] = self.generation.get(key, 0) + 1
            self.push(self.now + self.timeout, "timer", (i, name_set, self.generation[key]))
        sends = sorted(applied.sends, key=lambda env: (env[1], repr(env[2])))
        for raw in applied.events:
            if raw[0] == "send":
                continue
            self.note(raw, i)
        for env in sends:
            self.send(i, env)
        self.check()

    def note(self, raw: tuple[Any, ...], i: int) -> None:
        name = self.system.names[i]
        self.builder.add_one(self.now, raw)
        if raw[0] == "log":
            (self.forced if raw[3] else self.lazy)[name] += 1
        elif raw[0] == "decide":
            self.decision_times[name] = self.now
            self.decision_hops[name] = self.hops[i]
            self.last_decision = (self.now, self.hops[i])

    def send(self, i: int, env: tuple[str, str, Any]) -> None:
        src, dst, msg = env
        index = self.builder.add_one(self.now, ("send", src, dst, msg))
        self.messages[type(msg).__name__] += 1
        copies = 1
        if self.loss and self.rng.random() < self.loss:
            copies = 0
            self.copies[index] = 1
            self.push(self.now + self.latency.draw(self.rng), "deliver", (env, index, "drop"))
        elif self.duplicate and self.rng.random() < self.duplicate:
            copies = 2
        if copies:
            self.copies[index] = copies
        for _ in range(copies):
            at = self.now + self.latency.draw(self.rng)
            self.push(at, "deliver", (env, index, "copy", self.hops[i]))

    def deliver(self, env: tuple[str, str, Any], index: int, how: str, hops: int = 0) -> None:
        src, dst, msg = env
        system = self.system
        j = system.index[dst]
        self.copies[index] -= 1
        if how == "drop":
            self.failed = True
            self.step(Drop(src, dst, msg))
            self.builder.add_one(self.now, ("drop", src, dst, msg), send_index=index)
            return
        how = "duplicate" if self.copies[index] else "deliver"
        self.step(Duplicate(src, dst, msg) if self.copies[index] else Deliver(src, dst, msg))
        down = self.records[j].local is None
        if down or cut_off(self.sides, system.index[src], j):
            self.failed = True
            reason = "receiver down" if down else "partitioned"
            self.builder.add_one(self.now, ("lost", src, dst, msg, reason), send_index=index)
            return
        self.builder.add_one(self.now, (how, src, dst, msg), send_index=index)
        self.hops[j] = max(self.hops[j], hops + 1)
        self.handle(j, "message", env)

    def fire(self, i: int, timer: str, generation: int) -> None:
        record = self.records[i]
        if record.local is None or self.generation.get((i, timer)) != generation:
            return
        waited = next((w for name, w in record.timers if name == timer), None)
        if waited is None:
            return
        system = self.system
        if (
            system.timing == "perfect"
            and waited
            and not system.suspects(self.records, self.sides, i, waited)
        ):
            self.push(self.now + self.timeout, "timer", (i, timer, generation))
            return
        if waited:
            self.failed = True
        self.step(Timeout(system.names[i], timer))
        self.builder.add_one(self.now, ("timeout", system.names[i], timer))
        self.handle(i, "timer", timer)

    def fault(self, fault: Fault) -> None:
        system = self.system
        if fault.kind == "crash":
            i = system.index[fault.node]  # type: ignore[index]
            if self.records[i].local is None:
                return
            self.records[i] = system.crashed(self.records[i])
            self.failed = True
            self.step(Crash(fault.node))  # type: ignore[arg-type]
            self.builder.add_one(self.now, ("crash", fault.node))
            self.check()
        elif fault.kind == "recover":
            i = system.index[fault.node]  # type: ignore[index]
            if self.records[i].local is not None:
                return
            self.step(Recover(fault.node))  # type: ignore[arg-type]
            self.builder.add_one(self.now, ("recover", fault.node))
            self.handle(i, "recover", None)
        elif fault.kind == "partition":
            second = set(fault.groups[1])  # type: ignore[index]
            self.sides = tuple(1 if n in second else 0 for n in system.names)
            self.failed = True
            self.step(Partition(fault.groups))  # type: ignore[arg-type]
            self.builder.add_one(self.now, ("partition", fault.groups))
        else:
            self.sides = None
            self.step(Heal())
            self.builder.add_one(self.now, ("heal",))

    # -- properties and results ------------------------------------------------------------------

    def check(self) -> None:
        if not self.invariants:
            return
        remaining = [p for p in self.invariants if p.name not in self.violations]
        if not remaining:
            return
        state = self.system.state_of(
            self.records, failed=self.failed, reversed=frozenset(self.reversed)
        )
        for prop in remaining:
            if not prop.condition(self.system, state):  # type: ignore[misc]
                self.violations.append(prop.name)

    def result(self) -> SimResult:
        decisions = {
            name: rec.decision[0]
            for name, rec in zip(self.system.names, self.records, strict=True)
            if rec.decision is not None
        }
        metrics = Metrics(
            messages=dict(sorted(self.messages.items())),
            forced_writes=dict(sorted(self.forced.items())),
            lazy_writes=dict(sorted(self.lazy.items())),
            decision_times=self.decision_times,
            decision_hops=self.decision_hops,
            critical_path_hops=None if self.last_decision is None else self.last_decision[1],
            events=len(self.builder.events),
            end_time=self.now,
        )
        about = {"source": "simulation", "seed": self.seed}
        if self.violations:
            about["property"] = self.violations[0]
        trace = self.builder.trace_with(self.steps, self.system.describe(), about)
        return SimResult(self.seed, trace, metrics, decisions, tuple(self.violations))
