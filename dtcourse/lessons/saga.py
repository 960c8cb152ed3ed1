"""Orchestrated sagas over simulated services, with injected failures and crashes.

A saga (Garcia-Molina and Salem, 1987) is a sequence of local transactions T1 ... Tn with
compensations C1 ... Cn-1; it must end as ``T1 ... Tn`` or as ``T1 ... Tj Cj ... C1``.
This module gives the world a saga runs in, not the orchestrator that runs it (writing
one is the exercise p3.saga):

* ``Step`` and ``Saga``: what to do, where, and how to undo it;
* ``World``: the simulated services. Each step is an idempotent request keyed by saga
  and step (a duplicate changes nothing), a step's local transaction can fail (a business
  failure, final), and a compensation can fail transiently (retry it). Every request,
  reply, local commit and orchestrator log write is recorded as a ``Trace``;
* ``SagaLog``: the orchestrator's durable log, which survives its crashes;
* ``run`` executes any orchestrator function ``f(saga, services, log)`` under a fault
  plan, crashing it and calling it again until it finishes; a crash cannot be caught;
* ``run_interleaved``: several sagas sharing services, each driven by an orchestrator
  function and stepped one request at a time by a schedule, which shows the anomaly
  sagas allow: one saga acts on another's intermediate state;
* ``recordings()``: runs of the course's own orchestrator, recorded when the course was
  built, so the reading can show what a correct orchestrator does before you write one.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from dtcourse.engine.trace import Event, EventKind, Trace
from dtcourse.errors import DTCourseError
from dtcourse.packaged import load_packaged

Value = int | str
#: A step's effect on its service's store: an int adds to a counter, a str sets a value.
Effect = tuple[tuple[str, Value], ...]
CallKind = Literal["execute", "compensate"]
Status = Literal["done", "failed", "compensated"]

COMMITTED = "committed"
COMPENSATED = "compensated"
OUTCOMES = (COMMITTED, COMPENSATED)
ORCHESTRATOR = "orchestrator"


class OrchestratorCrash(BaseException):  # noqa: N818 - it is an event, not an error
    """The simulated orchestrator process dies here.

    A ``BaseException`` like ``KeyboardInterrupt``, so ``except Exception`` in an
    orchestrator does not swallow it: a real crash cannot be caught either.
    """


class RunawayOrchestrator(BaseException):  # noqa: N818
    """The orchestrator made more requests than any correct run needs (a loop?)."""


@dataclass(frozen=True)
class Step:
    """One local transaction of a saga, at one service, and its compensation.

    ``effect`` is applied when the step commits and ``undo`` when it is compensated. The
    last step of a saga needs no compensation: once it commits, the saga has committed.
    """

    name: str
    service: str
    action: str
    compensation: str | None = None
    effect: Effect = ()
    undo: Effect = ()


@dataclass(frozen=True)
class Saga:
    id: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise DTCourseError(f"saga {self.id!r} has no steps; give it at least one Step")
        names = [step.name for step in self.steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DTCourseError(
                f"saga {self.id!r} repeats step names {duplicates}; make them unique"
            )
        missing = [step.name for step in self.steps[:-1] if step.compensation is None]
        if missing:
            raise DTCourseError(
                f"saga {self.id!r}: steps {missing} have no compensation; every step but the "
                "last needs one"
            )

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise DTCourseError(f"saga {self.id!r} has no step {name!r}; steps: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    def number(self, name: str) -> int:
        """A step's position from 1, as in T1 ... Tn."""
        return self.names.index(name) + 1


def order_saga(
    saga_id: str = "o1", *, item: str = "widgets", quantity: int = 2, customer: str = "alice",
    amount: int = 30,
) -> Saga:  # fmt: skip
    """The reading's order: create it, reserve stock, charge the card, approve it."""
    return Saga(
        saga_id,
        (
            Step("create_order", "orders", f"create {saga_id} PENDING", f"reject {saga_id}",
                 ((saga_id, "PENDING"),), ((saga_id, "REJECTED"),)),
            Step("reserve_stock", "inventory", f"reserve {quantity} {item}",
                 f"release {quantity} {item}", ((item, -quantity),), ((item, quantity),)),
            Step("charge_card", "payments", f"charge {customer} {amount}",
                 f"refund {customer} {amount}", ((customer, -amount),), ((customer, amount),)),
            Step("approve_order", "orders", f"approve {saga_id}", None,
                 ((saga_id, "APPROVED"),)),
        ),
    )  # fmt: skip


ORDER_STORES: Mapping[str, Mapping[str, Value]] = {
    "orders": {},
    "inventory": {"widgets": 5},
    "payments": {"alice": 100, "bob": 100},
}

_TRIP = (
    ("book_flight", "flights"),
    ("book_hotel", "hotels"),
    ("rent_car", "cars"),
    ("buy_tickets", "events"),
    ("reserve_table", "restaurants"),
    ("book_guide", "guides"),
)


def trip_saga(length: int, saga_id: str = "trip") -> Saga:
    """A saga of ``length`` bookings at different services, each holding one unit."""
    if length < 1:
        raise DTCourseError(f"a saga needs at least one step, not {length}")
    steps = []
    for number in range(1, length + 1):
        name, service = _TRIP[(number - 1) % len(_TRIP)]
        if number > len(_TRIP):
            name, service = f"{name}_{number}", f"{service}_{number}"
        last = number == length
        steps.append(
            Step(name, service, name.replace("_", " "),
                 None if last else f"cancel {name.split('_', 1)[1].replace('_', ' ')}",
                 (("available", -1),), () if last else (("available", 1),))
        )  # fmt: skip
    return Saga(saga_id, tuple(steps))


def trip_stores(saga: Saga, available: int = 10) -> dict[str, dict[str, Value]]:
    return {step.service: {"available": available} for step in saga.steps}


# --- faults and the simulated services ------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What goes wrong in one run.

    ``fail_step``: the step whose local transaction fails (a business failure such as a
    declined card; it fails again if retried). ``compensation_failures``: how many times
    each step's compensation fails transiently before it succeeds. ``crash_at``: crash
    points, counted from 1 over the orchestrator's actions (each log write and each reply
    it receives); the orchestrator dies right after that action, before doing anything
    else.
    """

    fail_step: str | None = None
    compensation_failures: tuple[tuple[str, int], ...] = ()
    crash_at: frozenset[int] = frozenset()

    def compensation_failures_of(self, name: str) -> int:
        return dict(self.compensation_failures).get(name, 0)


@dataclass(frozen=True)
class Call:
    """One request the orchestrator made, and what came of it.

    ``effective`` is False for a request that changed nothing: a duplicate, or a
    compensation of a step that had not taken effect.
    """

    incarnation: int
    kind: CallKind
    step: str
    ok: bool
    effective: bool
    status_before: Status | None


@dataclass
class _Recorder:
    events: list[Event] = field(default_factory=list)
    clock: float = 0.0

    def add(self, kind: EventKind, node: str, **fields: Any) -> int:
        index = len(self.events)
        self.events.append(Event(index, self.clock, kind, node, **fields))
        return index

    def message(self, sender: str, receiver: str, label: str, *, lost: bool = False) -> None:
        sent = self.add("send", sender, peer=receiver, message=label)
        self.clock += 1
        if lost:
            self.add("drop", sender, peer=receiver, message=label, detail="receiver down",
                     send_index=sent)  # fmt: skip
        else:
            self.add("deliver", receiver, peer=sender, message=label, send_index=sent)


class World:
    """The simulated services and everything that happened to them.

    Mutable on purpose: it is the simulated world a run changes. Each run makes its own.
    """

    def __init__(
        self,
        stores: Mapping[str, Mapping[str, Value]],
        *,
        nodes: Sequence[str] = (),
        max_calls: int = 500,
    ) -> None:
        self.stores: dict[str, dict[str, Value]] = {k: dict(v) for k, v in stores.items()}
        self.initial = copy.deepcopy(self.stores)
        self.status: dict[tuple[str, str], Status] = {}
        self.calls: dict[str, list[Call]] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self.recorder = _Recorder()
        self.nodes: list[str] = list(nodes)
        self.max_calls = max_calls

    def _node(self, name: str) -> None:
        if name not in self.nodes:
            self.nodes.append(name)

    def trace(self) -> Trace:
        return Trace(tuple(self.nodes), tuple(self.recorder.events))

    def read(self, service: str, key: str) -> Value | None:
        """What another transaction would see at ``service`` right now (no isolation)."""
        return self.stores.get(service, {}).get(key)

    def _apply(self, service: str, effect: Effect) -> bool:
        store = self.stores.setdefault(service, {})
        for key, value in effect:
            if isinstance(value, int) and int(store.get(key, 0)) + value < 0:
                return False
        for key, value in effect:
            if isinstance(value, int):
                store[key] = int(store.get(key, 0)) + value
            else:
                store[key] = value
        return True

    def request(
        self, saga: Saga, node: str, kind: CallKind, step: Step, incarnation: int,
        fail: bool, transient_failures: int, crash_after: bool,
    ) -> bool:  # fmt: skip
        """Carry one request to its service and the reply back, recording both."""
        if not isinstance(step, Step) or step not in saga.steps:
            raise DTCourseError(
                f"{step!r} is not a step of saga {saga.id!r}: pass one of saga.steps"
            )
        made = self.calls.setdefault(saga.id, [])
        if len(made) >= self.max_calls:
            raise RunawayOrchestrator(
                f"more than {self.max_calls} requests for a saga of {len(saga.steps)} steps"
            )
        self._node(node)
        self._node(step.service)
        key = (saga.id, step.name)
        before = self.status.get(key)
        number = saga.number(step.name)
        label = (
            f"T{number} {step.action}" if kind == "execute" else f"C{number} {step.compensation}"
        )
        self.recorder.message(node, step.service, label)
        effective = False
        if kind == "execute":
            if before == "done":
                ok = True
            elif before == "failed":
                ok = False
            elif fail or not self._apply(step.service, step.effect):
                self.status[key] = "failed"
                ok = False
            else:  # a first execution, or (wrongly) one after its compensation
                self.status[key] = "done"
                ok = effective = True
        else:
            if step.compensation is None:
                raise DTCourseError(
                    f"step {step.name!r} is the saga's last step and has no compensation: once "
                    "it commits, the saga has committed"
                )
            tries = self.attempts.get(key, 0)
            if before == "done" and tries < transient_failures:
                self.attempts[key] = tries + 1
                ok = False
            elif before == "done":
                self._apply(step.service, step.undo)
                self.status[key] = "compensated"
                ok = effective = True
            else:  # already compensated, or never took effect: nothing to undo
                ok = True
        if effective:
            what = "commit" if kind == "execute" else "compensate"
            self.recorder.add(
                "log", step.service, detail=f"{saga.id}: {what} T{number}", forced=True
            )
        reply = f"{'T' if kind == 'execute' else 'C'}{number} {'ok' if ok else 'failed'}"
        if crash_after:
            self.recorder.add("crash", node, detail="orchestrator crashes")
            self.recorder.message(step.service, node, reply, lost=True)
        else:
            self.recorder.message(step.service, node, reply)
        made.append(Call(incarnation, kind, step.name, ok, effective, before))
        return ok


class _Incarnation:
    """Counts one orchestrator's crash points across its lives, and knows when the
    current life has ended.

    A life that goes on after its crash has caught ``OrchestratorCrash``. What it does
    then happens nowhere: its requests reach no service and answer True, its log writes
    are lost, so it soon returns and ``run`` reports the caught crash (raising again at
    each request would keep a ``while True: try ... except BaseException`` loop spinning).
    """

    #: Requests and writes a dead life may still attempt before it counts as a loop.
    AFTERLIFE = 200

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.points = 0
        self.number = 1
        self.dead = False
        self.after_death = 0

    def next_point_crashes(self) -> bool:
        self.points += 1
        return self.points in self.faults.crash_at

    def crash(self) -> OrchestratorCrash:
        self.dead = True
        return OrchestratorCrash(f"crash point {self.points}")

    def ghost(self) -> bool:
        """Whether this life is over, so what it asks for must not happen."""
        if not self.dead:
            return False
        self.after_death += 1
        if self.after_death > self.AFTERLIFE:
            raise RunawayOrchestrator("the orchestrator keeps acting after it crashed")
        return True

    def restart(self) -> None:
        self.number += 1
        self.dead = False
        self.after_death = 0


class Services:
    """The orchestrator's handle on the services of one saga.

    ``execute(step)`` returns True when the step's local transaction committed and False
    when it failed (it changed nothing; a failed step stays failed). ``compensate(step)``
    returns True once the step's effect is undone and False on a transient failure (call
    it again). Both are idempotent: repeating a request that succeeded changes nothing
    and answers the same.
    """

    def __init__(self, world: World, saga: Saga, node: str, life: _Incarnation) -> None:
        self._world, self._saga, self._node, self._life = world, saga, node, life

    def _call(self, kind: CallKind, step: Step) -> bool:
        if self._life.ghost():
            return True
        faults = self._life.faults
        name = getattr(step, "name", None)
        crash = self._life.next_point_crashes()
        ok = self._world.request(
            self._saga, self._node, kind, step, self._life.number,
            fail=name == faults.fail_step,
            transient_failures=faults.compensation_failures_of(str(name)),
            crash_after=crash,
        )  # fmt: skip
        if crash:
            raise self._life.crash()
        return ok

    def execute(self, step: Step) -> bool:
        return self._call("execute", step)

    def compensate(self, step: Step) -> bool:
        return self._call("compensate", step)


# --- the durable log -----------------------------------------------------------------


class SagaLog:
    """The orchestrator's durable log: what ``write`` stores survives a crash."""

    def __init__(self, world: World, node: str, life: _Incarnation) -> None:
        self._records: list[Any] = []
        self._world, self._node, self._life = world, node, life

    def write(self, record: Any) -> None:
        """Append ``record`` (any value, e.g. ``("done", "reserve_stock")``), forced."""
        if self._life.ghost():
            return
        self._records.append(copy.deepcopy(record))
        crash = self._life.next_point_crashes()
        self._world.recorder.add("log", self._node, detail=_short(record), forced=True)
        if crash:
            self._world.recorder.add("crash", self._node, detail="orchestrator crashes")
            raise self._life.crash()

    append = write

    def records(self) -> tuple[Any, ...]:
        """Everything written so far, oldest first (copies: the log cannot be edited)."""
        return tuple(copy.deepcopy(self._records))

    def __len__(self) -> int:
        return len(self._records)


def _short(record: Any) -> str:
    if isinstance(record, tuple | list) and all(isinstance(part, str) for part in record):
        text = " ".join(record)
    else:
        text = repr(record)
    return text if len(text) <= 28 else text[:27] + "…"


# --- running an orchestrator under faults ----------------------------------------------


class CrashCaught(DTCourseError):
    """The orchestrator went on after its simulated crash, which a real process cannot."""


def _caught(what: str) -> str:
    return (
        f"the orchestrator crashed (OrchestratorCrash was raised inside it), yet it {what} "
        "instead of dying: do not catch OrchestratorCrash. Catch Exception, never "
        "BaseException, and write no bare `except:`; a restarted orchestrator learns what "
        "happened from log.records()"
    )


RunSaga = Callable[[Saga, Services, SagaLog], Any]


@dataclass(frozen=True)
class SagaRun:
    """What one saga run did: the requests, the log, the outcome and the final state."""

    saga: Saga
    faults: Faults
    outcome: Any
    calls: tuple[Call, ...]
    records: tuple[Any, ...]
    crashes: int
    crash_points: int
    status: Mapping[str, Status]
    initial: Mapping[str, Mapping[str, Value]]
    stores: Mapping[str, Mapping[str, Value]]
    trace: Trace

    def story(self) -> str:
        """The requests in order, e.g. ``T1 ok, T2 ok, T3 failed, C2 ok, C1 ok``."""
        parts = []
        life = 1
        for call in self.calls:
            while call.incarnation > life:
                parts.append("crash")
                life += 1
            letter = "T" if call.kind == "execute" else "C"
            parts.append(f"{letter}{self.saga.number(call.step)} {'ok' if call.ok else 'failed'}")
        parts.extend(["crash"] * (self.crashes + 1 - life))
        return ", ".join(parts) if parts else "no requests"


def run(
    orchestrator: RunSaga,
    saga: Saga,
    faults: Faults = Faults(),
    *,
    stores: Mapping[str, Mapping[str, Value]] | None = None,
    max_calls: int | None = None,
) -> SagaRun:
    """Run ``orchestrator(saga, services, log)`` under ``faults``, restarting it after
    each crash with the same durable log, until it returns.

    Exceptions raised by the orchestrator propagate, except the simulated crashes.
    """
    world = World(
        ORDER_STORES if stores is None else stores,
        nodes=(ORCHESTRATOR, *dict.fromkeys(step.service for step in saga.steps)),
        max_calls=max_calls or 40 * len(saga.steps) + 20,
    )
    life = _Incarnation(faults)
    log = SagaLog(world, ORCHESTRATOR, life)
    world.recorder.add("start", ORCHESTRATOR, detail=f"saga {saga.id}")
    crashes = 0
    while True:
        try:
            outcome = orchestrator(saga, Services(world, saga, ORCHESTRATOR, life), log)
        except OrchestratorCrash:
            crashes += 1
            life.restart()
            world.recorder.clock += 1
            world.recorder.add("recover", ORCHESTRATOR, detail=f"{len(log)} log records")
            continue
        except (Exception, RunawayOrchestrator) as error:
            if life.dead:
                raise CrashCaught(_caught(f"raised {type(error).__name__}")) from None
            raise
        if life.dead:
            raise CrashCaught(_caught(f"returned {outcome!r}"))
        break
    world.recorder.add("decide", ORCHESTRATOR, detail=str(outcome))
    return SagaRun(
        saga=saga,
        faults=faults,
        outcome=outcome,
        calls=tuple(world.calls.get(saga.id, ())),
        records=log.records(),
        crashes=crashes,
        crash_points=life.points,
        status={name: world.status[(saga.id, name)] for name in saga.names
                if (saga.id, name) in world.status},
        initial=world.initial,
        stores=world.stores,
        trace=world.trace(),
    )  # fmt: skip


# --- several sagas at once: the missing isolation ----------------------------------------


@dataclass(frozen=True)
class Reading:
    """A value a saga's step saw at its service just before it was executed."""

    time: float
    saga: str
    service: str
    key: str
    value: Value | None


@dataclass(frozen=True)
class InterleavedRun:
    outcomes: Mapping[str, str]
    stores: Mapping[str, Mapping[str, Value]]
    readings: tuple[Reading, ...]
    trace: Trace


class _Abandoned(BaseException):  # noqa: N818 - it ends a thread, it is not an error
    """Another saga's orchestrator failed: this one is stopped where it waits."""


class _Turns:
    """Lets one orchestrator thread run at a time, from one request to just before the
    next: a turn is one request and whatever the orchestrator does with its reply.

    Each saga's orchestrator is an ordinary function that calls ``services.execute``; it
    runs in a thread of its own that waits for its turn inside each request, so any
    orchestrator function can be interleaved, deterministically, without rewriting it.
    """

    def __init__(self, wait_seconds: float) -> None:
        self.cond = threading.Condition()
        self.granted: str | None = None
        self.running: str | None = None
        self.done: set[str] = set()
        self.outcomes: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.closing = False
        self.wait_seconds = wait_seconds

    # -- in an orchestrator's thread --

    def wait_turn(self, saga_id: str) -> None:
        with self.cond:
            self.running = None
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.granted == saga_id or self.closing)
            if self.closing:
                raise _Abandoned()
            self.granted = None
            self.running = saga_id

    def finish(self, saga_id: str, outcome: Any = None, error: BaseException | None = None):
        with self.cond:
            self.done.add(saga_id)
            self.outcomes[saga_id] = outcome
            if error is not None and self.error is None:
                self.error = error
            self.running = None
            self.cond.notify_all()

    # -- in the caller's thread --

    def start(self, saga_id: str, thread: threading.Thread) -> None:
        with self.cond:
            self.running = saga_id
        thread.start()
        self._wait_idle(saga_id)

    def give(self, saga_id: str) -> None:
        with self.cond:
            if saga_id in self.done:
                return
            self.granted = self.running = saga_id
            self.cond.notify_all()
        self._wait_idle(saga_id)

    def _wait_idle(self, saga_id: str) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.running is None, timeout=self.wait_seconds):
                self.error = self.error or DTCourseError(
                    f"the orchestrator of saga {saga_id!r} ran for {self.wait_seconds:g} s "
                    "without making a request or returning; is it looping?"
                )

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()


class _TurnServices(Services):
    """Services that wait for the saga's turn before each request, and note what an
    executed step sees at its service (the ``watch`` values)."""

    def __init__(
        self, world: World, saga: Saga, node: str, life: _Incarnation, turns: _Turns,
        watch: Sequence[tuple[str, str]], readings: list[Reading],
    ) -> None:  # fmt: skip
        super().__init__(world, saga, node, life)
        self._turns, self._watch, self._readings = turns, watch, readings

    def _call(self, kind: CallKind, step: Step) -> bool:
        self._turns.wait_turn(self._saga.id)
        if kind == "execute" and isinstance(step, Step):
            for service, key in self._watch:
                if service == step.service:
                    value = self._world.read(service, key)
                    self._readings.append(
                        Reading(self._world.recorder.clock, self._saga.id, service, key, value)
                    )
        return super()._call(kind, step)


def _interleave(
    orchestrator: RunSaga,
    sagas: Sequence[Saga],
    turns_of: Callable[[_Turns], Iterable[str]],
    *,
    stores: Mapping[str, Mapping[str, Value]] | None,
    failing: Mapping[str, str] | None,
    watch: Sequence[tuple[str, str]],
    wait_seconds: float,
) -> InterleavedRun:
    by_id = {saga.id: saga for saga in sagas}
    if len(by_id) != len(sagas):
        raise DTCourseError("every saga in an interleaving needs its own id")
    failing = dict(failing or {})
    nodes = {saga.id: f"saga {saga.id}" for saga in sagas}
    world = World(
        ORDER_STORES if stores is None else stores,
        nodes=(*nodes.values(), *dict.fromkeys(s.service for saga in sagas for s in saga.steps)),
    )
    turns = _Turns(wait_seconds)
    readings: list[Reading] = []

    def drive(saga: Saga) -> None:
        life = _Incarnation(Faults(fail_step=failing.get(saga.id)))
        log = SagaLog(world, nodes[saga.id], life)
        services = _TurnServices(world, saga, nodes[saga.id], life, turns, watch, readings)
        try:
            outcome = orchestrator(saga, services, log)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            turns.finish(saga.id, error=None if isinstance(error, _Abandoned) else error)
            return
        world.recorder.add("decide", nodes[saga.id], detail=str(outcome))
        turns.finish(saga.id, outcome)

    for saga in sagas:
        world.recorder.add("start", nodes[saga.id], detail=f"saga {saga.id}")
    threads = [
        threading.Thread(target=drive, args=(saga,), name=f"saga {saga.id}", daemon=True)
        for saga in sagas
    ]
    try:
        for saga, thread in zip(sagas, threads, strict=True):
            if turns.error is None:
                turns.start(saga.id, thread)
        for saga_id in turns_of(turns):
            if turns.error is not None:
                break
            if saga_id not in by_id:
                raise DTCourseError(f"the schedule names {saga_id!r}, which is not a saga id here")
            turns.give(saga_id)
    finally:
        turns.close()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=1.0)
    if turns.error is not None:
        raise turns.error
    return InterleavedRun(
        outcomes={saga.id: str(turns.outcomes.get(saga.id)) for saga in sagas},
        stores=world.stores,
        readings=tuple(readings),
        trace=world.trace(),
    )


def run_interleaved(
    orchestrator: RunSaga,
    sagas: Sequence[Saga],
    schedule: Iterable[str],
    *,
    stores: Mapping[str, Mapping[str, Value]] | None = None,
    failing: Mapping[str, str] | None = None,
    watch: Sequence[tuple[str, str]] = (),
    wait_seconds: float = 30.0,
) -> InterleavedRun:
    """Run several sagas, each with ``orchestrator``, one request at a time.

    ``schedule`` names the saga that makes the next request (saga ids); when it runs out,
    the sagas still running take turns. ``failing`` maps a saga id to its failing step.
    Before each step is executed, the values of ``watch`` (service, key) pairs at its
    service are read: what that step sees. Nothing crashes here; an exception raised by an
    orchestrator propagates.
    """
    ids = [saga.id for saga in sagas]

    def turns_of(turns: _Turns) -> Iterable[str]:
        yield from schedule
        while len(turns.done) < len(ids):
            yield from (saga_id for saga_id in ids if saga_id not in turns.done)

    return _interleave(
        orchestrator, sagas, turns_of,
        stores=stores, failing=failing, watch=watch, wait_seconds=wait_seconds,
    )  # fmt: skip


def serial_outcomes(
    orchestrator: RunSaga,
    sagas: Sequence[Saga],
    *,
    stores: Mapping[str, Mapping[str, Value]] | None = None,
    failing: Mapping[str, str] | None = None,
) -> dict[tuple[str, ...], dict[str, str]]:
    """Each serial order of ``sagas`` (one runs to its end before the next begins) and the
    outcomes it gives, to compare with an interleaving: an outcome that no serial order
    produces is an isolation anomaly."""
    results: dict[tuple[str, ...], dict[str, str]] = {}
    for order in itertools.permutations([saga.id for saga in sagas]):

        def turns_of(turns: _Turns, order: tuple[str, ...] = order) -> Iterable[str]:
            for saga_id in order:
                while saga_id not in turns.done:
                    yield saga_id

        done = _interleave(
            orchestrator, sagas, turns_of, stores=stores, failing=failing, watch=(),
            wait_seconds=30.0,
        )  # fmt: skip
        results[order] = dict(done.outcomes)
    return results


DEMO_STORES: Mapping[str, Mapping[str, Value]] = {
    "orders": {},
    "inventory": {"widgets": 2},
    "payments": {"alice": 100, "bob": 100},
}
DEMO_SCHEDULE: tuple[str, ...] = ("o1", "o1", "o2", "o2", "o1")


def demo_sagas() -> tuple[Saga, Saga]:
    """The reading's two orders: o1 wants both widgets in stock, o2 wants one."""
    return order_saga("o1", quantity=2), order_saga("o2", quantity=1, customer="bob")


def anomaly_demo(orchestrator: RunSaga) -> InterleavedRun:
    """The reading's lost sale, with any orchestrator: saga o1 reserves the last two
    widgets, so saga o2 (one widget) is refused; then o1's card is declined and its
    reservation released. A correct orchestrator keeps each saga atomic, and the sale is
    lost all the same: what is missing is isolation."""
    return run_interleaved(
        orchestrator,
        demo_sagas(),
        DEMO_SCHEDULE,
        stores=DEMO_STORES,
        failing={"o1": "charge_card"},
        watch=(("inventory", "widgets"),),
    )


# --- runs recorded when the course was built -------------------------------------------

RECORDINGS = Path(__file__).with_name("recorded_sagas.json")
RECORDINGS_FORMAT = 1


def _tuples(value: Any) -> Any:
    """JSON turns tuples into lists; log records were tuples, so turn them back."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def _trace_json(trace: Trace) -> dict[str, Any]:
    return {
        "nodes": list(trace.nodes),
        "events": [
            {f.name: getattr(event, f.name) for f in fields(Event)
             if getattr(event, f.name) is not None}
            for event in trace.events
        ],
    }  # fmt: skip


def _trace_from(data: Mapping[str, Any]) -> Trace:
    return Trace(tuple(data["nodes"]), tuple(Event(**event) for event in data["events"]))


def _saga_json(saga: Saga) -> dict[str, Any]:
    return {"id": saga.id, "steps": [asdict(step) for step in saga.steps]}


def _saga_from(data: Mapping[str, Any]) -> Saga:
    def effect(pairs: Iterable[Sequence[Any]]) -> Effect:
        return tuple((key, value) for key, value in pairs)

    steps = tuple(
        Step(step["name"], step["service"], step["action"], step["compensation"],
             effect(step["effect"]), effect(step["undo"]))
        for step in data["steps"]
    )  # fmt: skip
    return Saga(data["id"], steps)


def saga_run_json(result: SagaRun) -> dict[str, Any]:
    """A ``SagaRun`` as plain JSON-able data (what ``recordings()`` reads back)."""
    return {
        "saga": _saga_json(result.saga),
        "faults": {
            "fail_step": result.faults.fail_step,
            "compensation_failures": [list(pair) for pair in result.faults.compensation_failures],
            "crash_at": sorted(result.faults.crash_at),
        },
        "outcome": result.outcome,
        "calls": [asdict(call) for call in result.calls],
        "records": copy.deepcopy(list(result.records)),
        "crashes": result.crashes,
        "crash_points": result.crash_points,
        "status": dict(result.status),
        "initial": copy.deepcopy(dict(result.initial)),
        "stores": copy.deepcopy(dict(result.stores)),
        "trace": _trace_json(result.trace),
    }


def _saga_run_from(data: Mapping[str, Any]) -> SagaRun:
    faults = data["faults"]
    return SagaRun(
        saga=_saga_from(data["saga"]),
        faults=Faults(
            fail_step=faults["fail_step"],
            compensation_failures=tuple(
                (name, count) for name, count in faults["compensation_failures"]
            ),
            crash_at=frozenset(faults["crash_at"]),
        ),
        outcome=data["outcome"],
        calls=tuple(Call(**call) for call in data["calls"]),
        records=_tuples(data["records"]),
        crashes=data["crashes"],
        crash_points=data["crash_points"],
        status=dict(data["status"]),
        initial=data["initial"],
        stores=data["stores"],
        trace=_trace_from(data["trace"]),
    )


def interleaved_run_json(result: InterleavedRun) -> dict[str, Any]:
    """An ``InterleavedRun`` as plain JSON-able data."""
    return {
        "outcomes": dict(result.outcomes),
        "stores": copy.deepcopy(dict(result.stores)),
        "readings": [asdict(reading) for reading in result.readings],
        "trace": _trace_json(result.trace),
    }


def _interleaved_run_from(data: Mapping[str, Any]) -> InterleavedRun:
    return InterleavedRun(
        outcomes=dict(data["outcomes"]),
        stores=data["stores"],
        readings=tuple(Reading(**reading) for reading in data["readings"]),
        trace=_trace_from(data["trace"]),
    )


@dataclass(frozen=True)
class Recordings:
    """Runs of the course's own orchestrator, recorded when the course was built.

    ``runs`` by name (``"commit"``, ``"fails at charge_card"``, ``"crash at 5"`` ...);
    ``lost_sale``: ``anomaly_demo``; ``serial``: ``serial_outcomes`` of the same sagas.
    """

    runs: Mapping[str, SagaRun]
    lost_sale: InterleavedRun
    serial: Mapping[tuple[str, ...], Mapping[str, str]]


def recordings_json(
    runs: Mapping[str, SagaRun],
    lost_sale: InterleavedRun,
    serial: Mapping[tuple[str, ...], Mapping[str, str]],
) -> dict[str, Any]:
    """The document the course's build writes into ``recorded_sagas.json``."""
    return {
        "format": RECORDINGS_FORMAT,
        "runs": {name: saga_run_json(result) for name, result in runs.items()},
        "lost_sale": interleaved_run_json(lost_sale),
        "serial": [[list(order), dict(outcomes)] for order, outcomes in serial.items()],
    }


def recordings(path: Path = RECORDINGS) -> Recordings:
    """Read the recorded runs back as the objects ``run`` and ``anomaly_demo`` return."""
    document = load_packaged(path, "the recorded saga runs", RECORDINGS_FORMAT)
    return Recordings(
        runs={name: _saga_run_from(run) for name, run in document["runs"].items()},
        lost_sale=_interleaved_run_from(document["lost_sale"]),
        serial={tuple(order): dict(outcomes) for order, outcomes in document["serial"]},
    )


__all__ = [
    "COMMITTED",
    "COMPENSATED",
    "DEMO_SCHEDULE",
    "DEMO_STORES",
    "ORCHESTRATOR",
    "ORDER_STORES",
    "OUTCOMES",
    "RECORDINGS",
    "RECORDINGS_FORMAT",
    "Call",
    "CallKind",
    "CrashCaught",
    "Effect",
    "Faults",
    "InterleavedRun",
    "OrchestratorCrash",
    "Reading",
    "Recordings",
    "RunSaga",
    "RunawayOrchestrator",
    "Saga",
    "SagaLog",
    "SagaRun",
    "Services",
    "Status",
    "Step",
    "Value",
    "World",
    "anomaly_demo",
    "demo_sagas",
    "interleaved_run_json",
    "order_saga",
    "recordings",
    "recordings_json",
    "run",
    "run_interleaved",
    "saga_run_json",
    "serial_outcomes",
    "trip_saga",
    "trip_stores",
]
