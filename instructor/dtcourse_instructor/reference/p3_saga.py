"""Reference solution of p3.saga: an orchestrator that survives its own crashes.

The orchestrator is a pure state machine (``Orchestrator``) driven by ``orchestrate``.
Recovery rule: after a crash it rebuilds its state from the log; with no failure logged it
recovers forward (it re-issues the step in doubt, which is safe because requests are
idempotent); once a failure is logged it recovers backward, compensating every completed
step in reverse order.

``package_data()`` records the runs the reading shows before the exercise asks for an
orchestrator (the student package ships the recordings, never this module).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from dtcourse.errors import DTCourseError
from dtcourse.lessons.saga import (
    COMMITTED,
    COMPENSATED,
    DEMO_STORES,
    CallKind,
    Faults,
    Saga,
    SagaLog,
    Services,
    Step,
    anomaly_demo,
    demo_sagas,
    order_saga,
    recordings_json,
    run,
    serial_outcomes,
)

__all__ = ["Orchestrator", "orchestrate", "package_data", "recorded_runs"]


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


def recorded_runs() -> dict[str, Any]:
    """The runs of the reading's cells, by name: the order saga with no failure, failing
    at each step in turn, and crashing after T3's reply while T3 fails."""
    runs = {"commit": run(orchestrate, order_saga())}
    for name in order_saga().names[:-1]:
        runs[f"fails at {name}"] = run(orchestrate, order_saga(), Faults(fail_step=name))
    runs["fails at charge_card, crash at 5"] = run(
        orchestrate, order_saga(), Faults(fail_step="charge_card", crash_at=frozenset({5}))
    )
    return runs


def package_data() -> dict[str, Any]:
    """Files of the student package written by ``dtcourse build``, by path under ``dtcourse/``."""
    serial = serial_outcomes(
        orchestrate, demo_sagas(), stores=DEMO_STORES, failing={"o1": "charge_card"}
    )
    document = recordings_json(recorded_runs(), anomaly_demo(orchestrate), serial)
    return {"lessons/recorded_sagas.json": document}
