"""Orchestrated sagas over simulated services, with injected failures and crashes.

A saga (Garcia-Molina and Salem, 1987) is a sequence of local transactions T1 ... Tn with
compensations C1 ... Cn-1; it must end as ``T1 ... Tn`` or as ``T1 ... Tj Cj ... C1``.
This module gives the pieces to run one and to watch it go wrong:

* ``Step`` and ``Saga``: what to do, where, and how to undo it;
* ``World``: the simulated services. Each step is an idempotent request keyed by saga
  and step (a duplicate changes nothing), a step's local transaction can fail (a business
  failure, final), and a compensation can fail transiently (retry it). Every request,
  reply, local commit and orchestrator log write is recorded as a ``Trace``;
* ``SagaLog``: the orchestrator's durable log, which survives its crashes;
* ``Orchestrator``: the reference orchestrator as a pure state machine, and
  ``orchestrate`` which drives it; ``run`` executes any orchestrator function under a
  fault plan, crashing it and calling it again until it finishes;
* ``run_interleaved``: two sagas sharing services, stepped by a schedule, which shows
  the anomaly sagas allow: one saga acts on another's intermediate state.

Recovery rule of the reference: after a crash the orchestrator rebuilds its state from
the log; with no failure logged it recovers forward (it re-issues the step in doubt,
which is safe because requests are idempotent); once a failure is logged it recovers
backward, compensating every completed step in reverse order.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dtcourse.engine.trace import Event, EventKind, Trace
from dtcourse.errors import DTCourseError

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
    """Counts one orchestrator's crash points across its lives."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.points = 0
        self.number = 1

    def next_point_crashes(self) -> bool:
        self.points += 1
        return self.points in self.faults.crash_at


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
            raise OrchestratorCrash(f"crash point {self._life.points}")
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
        self._records.append(copy.deepcopy(record))
        crash = self._life.next_point_crashes()
        self._world.recorder.add("log", self._node, detail=_short(record), forced=True)
        if crash:
            self._world.recorder.add("crash", self._node, detail="orchestrator crashes")
            raise OrchestratorCrash(f"crash point {self._life.points}")

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


# --- the reference orchestrator ------------------------------------------------------


@dataclass(frozen=True)
class Orchestrator:
    """The reference orchestrator's state: which steps completed, and which way it goes.

    Pure: ``next_request`` says what to ask for, ``on_reply`` returns the next state and
    the log records to write before going on. Log records are ``("done", step)``,
    ``("failed", step)`` and ``("compensated", step)``.
    """

    saga: Saga
    completed: tuple[str, ...] = ()
    compensating: bool = False

    @classmethod
    def recover(cls, saga: Saga, records: Iterable[Any]) -> Orchestrator:
        """Rebuild the state from the durable log (an empty log: a fresh start)."""
        state = cls(saga)
        for record in records:
            match tuple(record):
                case ("done", name):
                    state = replace(state, completed=(*state.completed, name))
                case ("failed", _):
                    state = replace(state, compensating=True)
                case ("compensated", name):
                    state = replace(state, completed=tuple(n for n in state.completed if n != name))
                case _:
                    raise DTCourseError(f"the saga log holds an unknown record {record!r}")
        return state

    @property
    def outcome(self) -> str | None:
        if self.compensating:
            return COMPENSATED if not self.completed else None
        return COMMITTED if len(self.completed) == len(self.saga.steps) else None

    def next_request(self) -> tuple[CallKind, Step] | None:
        if self.outcome is not None:
            return None
        if self.compensating:
            return "compensate", self.saga.step(self.completed[-1])
        return "execute", self.saga.steps[len(self.completed)]

    def on_reply(self, kind: CallKind, step: Step, ok: bool) -> tuple[Orchestrator, tuple]:
        if kind == "execute" and ok:
            return replace(self, completed=(*self.completed, step.name)), (("done", step.name),)
        if kind == "execute":
            return replace(self, compensating=True), (("failed", step.name),)
        if ok:
            rest = tuple(name for name in self.completed if name != step.name)
            return replace(self, completed=rest), (("compensated", step.name),)
        return self, ()  # a transient failure: the same compensation is asked for again


def orchestrate(saga: Saga, services: Services, log: SagaLog) -> str:
    """Run (or, after a crash, resume) ``saga``; returns ``"committed"`` or ``"compensated"``."""
    state = Orchestrator.recover(saga, log.records())
    while (request := state.next_request()) is not None:
        kind, step = request
        ok = services.execute(step) if kind == "execute" else services.compensate(step)
        state, records = state.on_reply(kind, step, ok)
        for record in records:
            log.write(record)
    assert state.outcome is not None
    return state.outcome


# --- running an orchestrator under faults ----------------------------------------------

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
            break
        except OrchestratorCrash:
            crashes += 1
            life.number += 1
            world.recorder.clock += 1
            world.recorder.add("recover", ORCHESTRATOR, detail=f"{len(log)} log records")
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


# --- two sagas at once: the missing isolation ------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A value another saga's step saw, and what the owner of that value did later."""

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


def run_interleaved(
    sagas: Sequence[Saga],
    schedule: Iterable[str],
    *,
    stores: Mapping[str, Mapping[str, Value]] | None = None,
    failing: Mapping[str, str] | None = None,
    watch: Sequence[tuple[str, str]] = (),
) -> InterleavedRun:
    """Run several sagas with the reference orchestrator, one request at a time.

    ``schedule`` names the saga that makes the next request (saga ids); when it runs out,
    the sagas still running take turns. ``failing`` maps a saga id to its failing step.
    Before each step is executed, the values of ``watch`` (service, key) pairs at its
    service are read: what that step sees.
    """
    by_id = {saga.id: saga for saga in sagas}
    if len(by_id) != len(sagas):
        raise DTCourseError("every saga in an interleaving needs its own id")
    nodes = {saga.id: f"saga {saga.id}" for saga in sagas}
    world = World(
        ORDER_STORES if stores is None else stores,
        nodes=(*nodes.values(), *dict.fromkeys(s.service for saga in sagas for s in saga.steps)),
    )
    states = {saga.id: Orchestrator(saga) for saga in sagas}
    lives = {saga.id: _Incarnation(Faults()) for saga in sagas}
    logs = {saga.id: SagaLog(world, nodes[saga.id], lives[saga.id]) for saga in sagas}
    failing = dict(failing or {})
    readings: list[Reading] = []
    for saga in sagas:
        world.recorder.add("start", nodes[saga.id], detail=f"saga {saga.id}")

    def turns() -> Iterable[str]:
        yield from schedule
        for saga_id in itertools.cycle(list(by_id)):
            if all(state.outcome is not None for state in states.values()):
                return
            yield saga_id

    for saga_id in turns():
        if saga_id not in by_id:
            raise DTCourseError(f"the schedule names {saga_id!r}, which is not a saga id here")
        state = states[saga_id]
        request = state.next_request()
        if request is None:
            continue
        kind, step = request
        for service, key in watch:
            if kind == "execute" and service == step.service:
                readings.append(
                    Reading(world.recorder.clock, saga_id, service, key, world.read(service, key))
                )
        ok = world.request(
            by_id[saga_id], nodes[saga_id], kind, step, lives[saga_id].number,
            fail=failing.get(saga_id) == step.name, transient_failures=0, crash_after=False,
        )  # fmt: skip
        state, records = state.on_reply(kind, step, ok)
        for record in records:
            logs[saga_id].write(record)
        states[saga_id] = state
        if state.outcome is not None:
            world.recorder.add("decide", nodes[saga_id], detail=state.outcome)
    return InterleavedRun(
        outcomes={saga_id: str(state.outcome) for saga_id, state in states.items()},
        stores=world.stores,
        readings=tuple(readings),
        trace=world.trace(),
    )


def serial_outcomes(
    sagas: Sequence[Saga],
    *,
    stores: Mapping[str, Mapping[str, Value]] | None = None,
    failing: Mapping[str, str] | None = None,
) -> dict[tuple[str, ...], dict[str, str]]:
    """Each serial order of ``sagas`` and the outcomes it gives, to compare with an
    interleaving: an outcome that no serial order produces is an isolation anomaly."""
    results: dict[tuple[str, ...], dict[str, str]] = {}
    for order in itertools.permutations([saga.id for saga in sagas]):
        schedule = [saga_id for saga_id in order for _ in range(4 * len(sagas[0].steps) + 4)]
        done = run_interleaved(sagas, schedule, stores=stores, failing=failing)
        results[order] = dict(done.outcomes)
    return results


def anomaly_demo() -> InterleavedRun:
    """The reading's lost sale: saga o1 reserves the last two widgets, so saga o2 (one
    widget) is refused; then o1's card is declined and its reservation released."""
    sagas = (order_saga("o1", quantity=2), order_saga("o2", quantity=1, customer="bob"))
    return run_interleaved(
        sagas,
        ["o1", "o1", "o2", "o2", "o1"],
        stores=DEMO_STORES,
        failing={"o1": "charge_card"},
        watch=(("inventory", "widgets"),),
    )


DEMO_STORES: Mapping[str, Mapping[str, Value]] = {
    "orders": {},
    "inventory": {"widgets": 2},
    "payments": {"alice": 100, "bob": 100},
}
