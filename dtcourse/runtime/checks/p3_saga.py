"""Visible checks of p3.saga: the student's orchestrator, judged by the saga's definition.

The student's ``run_saga(saga, services, log)`` runs in ``dtcourse.lessons.saga.run``
under a fault plan; each part judges what the services saw. No expected run is stored:
what is right follows from the saga's definition (Garcia-Molina and Salem: ``T1 ... Tn``
or ``T1 ... Tj Cj ... C1``) and from the plan the check injected. With no settings a part
uses the visible sagas (the reading's order and a three-step trip); the graded hidden
tests call the same parts with longer sagas and harsher plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dtcourse.errors import DTCourseError
from dtcourse.lessons.saga import (
    COMMITTED,
    COMPENSATED,
    ORDER_STORES,
    Faults,
    RunawayOrchestrator,
    RunSaga,
    Saga,
    SagaRun,
    order_saga,
    run,
    trip_saga,
    trip_stores,
)
from dtcourse.runtime.checks import Exercise

__all__ = [
    "EXERCISE",
    "VISIBLE_LENGTHS",
    "saga_commit",
    "saga_compensate",
    "saga_recover",
    "saga_retry",
]

VISIBLE_LENGTHS: tuple[int, ...] = (3,)


def _sagas(lengths: Iterable[int] | None) -> list[tuple[Saga, Any]]:
    """The order saga and trips of the given lengths, each with its services' stores."""
    chosen: list[tuple[Saga, Any]] = []
    if lengths is None:
        chosen.append((order_saga(), ORDER_STORES))
        lengths = VISIBLE_LENGTHS
    for length in lengths:
        saga = trip_saga(length)
        chosen.append((saga, trip_stores(saga)))
    return chosen


def _plan(saga: Saga, faults: Faults) -> str:
    parts = [f"saga {saga.id!r} of {len(saga.steps)} steps"]
    if faults.fail_step:
        parts.append(f"T{saga.number(faults.fail_step)} ({faults.fail_step}) fails")
    if faults.compensation_failures:
        parts.append("compensations fail transiently before succeeding")
    if faults.crash_at:
        points = ", ".join(str(p) for p in sorted(faults.crash_at))
        parts.append(f"orchestrator crashes at crash point {points}")
    return "; ".join(parts)


def _run(run_saga: RunSaga, saga: Saga, stores: Any, faults: Faults) -> SagaRun:
    try:
        return run(run_saga, saga, faults, stores=stores)
    except (AssertionError, NotImplementedError):
        raise
    except RunawayOrchestrator as error:
        raise AssertionError(
            f"{_plan(saga, faults)}: {error}; is a loop retrying a failed step? A failed step "
            "is final: compensate instead"
        ) from None
    except DTCourseError as error:
        raise AssertionError(f"{_plan(saga, faults)}: {error}") from None
    except Exception as error:
        raise AssertionError(
            f"{_plan(saga, faults)}: run_saga raised {type(error).__name__}: {error}"
        ) from None


def _undone(result: SagaRun) -> list[str]:
    """The compensations that took effect, in the order they did."""
    return [call.step for call in result.calls if call.kind == "compensate" and call.effective]


def _in_reverse_order(result: SagaRun) -> bool:
    undone = _undone(result)
    return undone == sorted(undone, key=result.saga.number, reverse=True)


def _judge(result: SagaRun, *, order: bool = True) -> None:
    """The saga properties every run must keep, whatever was injected."""
    saga, faults = result.saga, result.faults
    where = f"{_plan(saga, faults)}; requests: {result.story()}"
    assert result.outcome in (COMMITTED, COMPENSATED), (
        f"{where}: run_saga returned {result.outcome!r}; return 'committed' or 'compensated'"
    )
    executed: list[str] = []
    completed: list[str] = []
    compensation_started = False
    for call in result.calls:
        number = saga.number(call.step)
        if call.kind == "execute":
            assert not compensation_started, (
                f"{where}: T{number} was requested after compensation had begun; once a saga "
                "compensates it never goes forward again (after a crash, read the log)"
            )
            position = saga.names.index(call.step)
            assert position == 0 or saga.names[position - 1] in completed, (
                f"{where}: T{number} was requested before T{position} had completed; run the "
                "steps in order, each after the previous one succeeded"
            )
            assert not (call.status_before == "failed" and executed[-1:] != [call.step]), (
                f"{where}: T{number} had failed and was requested again after other "
                "requests; a failed step is final (after a crash, rebuild your state from "
                "log.records() instead of starting over)"
            )
            if call.ok and call.step not in completed:
                completed.append(call.step)
            executed.append(call.step)
            continue
        compensation_started = True
        assert call.status_before != "failed", (
            f"{where}: C{number} was requested, but T{number} failed (its local transaction "
            "rolled back and left nothing to undo); compensate only completed steps"
        )
        assert call.status_before is not None, (
            f"{where}: C{number} was requested, but T{number} never ran; compensate only "
            "completed steps"
        )
    failed = [name for name, status in result.status.items() if status == "failed"]
    if faults.fail_step is None:
        assert result.outcome == COMMITTED, (
            f"{where}: nothing failed, so every step must commit and run_saga must return "
            f"'committed', not {result.outcome!r}"
        )
        missing = [n for n in saga.names if result.status.get(n) != "done"]
        assert not missing, f"{where}: steps {missing} did not commit, though nothing failed"
        return
    assert failed == [faults.fail_step], (
        f"{where}: T{saga.number(faults.fail_step)} fails, so the saga cannot commit"
    )
    left = [name for name in saga.names if result.status.get(name) == "done"]
    assert not left, (
        f"{where}: {', '.join(f'T{saga.number(n)}' for n in left)} completed but "
        f"{'was' if len(left) == 1 else 'were'} never compensated; after a failure every "
        "completed step is compensated (retry a compensation until it returns True)"
    )
    assert result.outcome == COMPENSATED, (
        f"{where}: every completed step was compensated, so run_saga must return "
        f"'compensated', not {result.outcome!r}"
    )
    if order and not _in_reverse_order(result):
        undone = _undone(result)
        expected = sorted(undone, key=saga.number, reverse=True)
        after = (
            " after the restart; a restarted orchestrator carries on where the log says, "
            "still newest first (keep the completed steps in the order they completed)"
            if result.crashes
            else "; undo in reverse order"
        )
        raise AssertionError(
            f"{where}: compensations took effect in the order "
            f"{', '.join(f'C{saga.number(n)}' for n in undone)}{after}: "
            f"{', '.join(f'C{saga.number(n)}' for n in expected)}"
        )


def _each_failure(saga: Saga) -> Sequence[str | None]:
    return [None, *saga.names]


def saga_commit(run_saga: RunSaga, *, lengths: Iterable[int] | None = None) -> None:
    """Nothing fails: every step commits, once, in order; nothing is compensated."""
    for saga, stores in _sagas(lengths):
        result = _run(run_saga, saga, stores, Faults())
        _judge(result)
        compensations = [c for c in result.calls if c.kind == "compensate"]
        assert not compensations, (
            f"{_plan(saga, Faults())}: nothing failed, yet run_saga requested compensations"
        )


def saga_compensate(run_saga: RunSaga, *, lengths: Iterable[int] | None = None) -> None:
    """A failure injected at every step: the completed steps compensated in reverse order."""
    for saga, stores in _sagas(lengths):
        for name in saga.names:
            _judge(_run(run_saga, saga, stores, Faults(fail_step=name)))


def saga_retry(
    run_saga: RunSaga, *, lengths: Iterable[int] | None = None, failures: int = 2
) -> None:
    """Compensations that fail ``failures`` times before they succeed are retried."""
    for saga, stores in _sagas(lengths):
        flaky = tuple((name, failures) for name in saga.names[:-1])
        for name in saga.names[1:]:
            faults = Faults(fail_step=name, compensation_failures=flaky)
            _judge(_run(run_saga, saga, stores, faults), order=False)


def saga_recover(
    run_saga: RunSaga, *, lengths: Iterable[int] | None = None, crashes: int = 1
) -> None:
    """The orchestrator crashes after each log write and each reply, and is restarted with
    its durable log: the saga still ends committed or compensated, with the outcome a run
    without crashes reaches, and compensations still newest first. ``crashes`` > 1
    crashes it again during recovery. An orchestrator that catches its own crash fails.

    The order of compensations is judged here only where a crash changed it: an
    orchestrator that undoes in the wrong order even without crashes loses the
    compensate part, not this one as well."""
    for saga, stores in _sagas(lengths):
        for name in _each_failure(saga):
            calm = _run(run_saga, saga, stores, Faults(fail_step=name))
            _judge(calm, order=False)
            assert len(calm.records) >= 1, (
                f"{_plan(saga, calm.faults)}: run_saga wrote nothing to the log, so a restarted "
                "orchestrator cannot know what it did; log each step's result"
            )
            ordered = _in_reverse_order(calm)
            for point in range(1, calm.crash_points + 1):
                crash_at = frozenset(range(point, point + crashes))
                faults = Faults(fail_step=name, crash_at=crash_at)
                _judge(_run(run_saga, saga, stores, faults), order=ordered)


EXERCISE = Exercise(
    "p3.saga",
    (
        ("commit", saga_commit),
        ("compensate", saga_compensate),
        ("retry", saga_retry),
        ("recover", saga_recover),
    ),
)
