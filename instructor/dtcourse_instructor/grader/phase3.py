"""Checks for Phase 3: the saga orchestrator with compensations (p3.saga), presumed
abort (p3.presumed_abort) and the cheapest commit for a workload (p3.cheapest_commit).

The student's ``run_saga(saga, services, log)`` runs in ``dtcourse.lessons.saga.run`` under a
fault plan; each part judges what the services saw. Expected behaviour is never stored:
it follows from the saga's definition (Garcia-Molina and Salem: ``T1 ... Tn`` or
``T1 ... Tj Cj ... C1``) and from the plan the check injected. With no settings a part
uses the visible sagas (the reading's order and a three-step trip); graded hidden tests
pass longer sagas and harsher plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dtcourse.commit import properties
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
    if order:
        undone = [
            call.step for call in result.calls if call.kind == "compensate" and call.effective
        ]
        expected = sorted(undone, key=saga.number, reverse=True)
        assert undone == expected, (
            f"{where}: compensations took effect in the order "
            f"{', '.join(f'C{saga.number(n)}' for n in undone)}; undo in reverse order: "
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
    its durable log: the saga still ends committed or compensated, and the outcome is the
    one a run without crashes reaches. ``crashes`` > 1 crashes it again during recovery."""
    for saga, stores in _sagas(lengths):
        for name in _each_failure(saga):
            calm = _run(run_saga, saga, stores, Faults(fail_step=name))
            _judge(calm, order=False)
            writes = len(calm.records)
            assert writes >= 1, (
                f"{_plan(saga, calm.faults)}: run_saga wrote nothing to the log, so a restarted "
                "orchestrator cannot know what it did; log each step's result"
            )
            for point in range(1, calm.crash_points + 1):
                crash_at = frozenset(range(point, point + crashes))
                faults = Faults(fail_step=name, crash_at=crash_at)
                _judge(_run(run_saga, saga, stores, faults), order=False)


# ---------------------------------------------------------------------------------------
# p3.presumed_abort: the student's nodes are counted in the cost table's failure-free run
# (``dtcourse.commit.costs.run_nodes``) and judged by the checker under crash-recovery. The
# package's own R* nodes would answer the exercise, so classes built on them are refused.

HANDLERS = ("on_start", "on_message", "on_timeout", "on_recover")
TERMINATION = "AC5 every participant decides once failures are repaired"


def _pa_classes(classes: Any) -> tuple[type, type]:
    from dtcourse.commit.protocols import variants
    from dtcourse.engine.actors import Node

    try:
        coordinator, participant = classes
    except (TypeError, ValueError):
        raise AssertionError(
            "pass the two classes as a pair: (PresumedAbortCoordinator, PresumedAbortParticipant)"
        ) from None
    for cls, role, theirs in (
        (coordinator, "coordinator", variants.Coordinator),
        (participant, "participant", variants.Participant),
    ):
        assert isinstance(cls, type) and issubclass(cls, Node), (
            f"pass your {role} class itself (a dtcourse.engine.actors.Node subclass), not {cls!r}"
        )
        borrowed = [
            name
            for name in HANDLERS
            if (getattr(getattr(cls, name, None), "__module__", None) or "").startswith(
                "dtcourse.commit.protocols"
            )
        ]
        assert not issubclass(cls, theirs) and not borrowed, (
            f"your {role} class {cls.__name__} "
            + (
                f"subclasses dtcourse.commit.protocols.variants.{theirs.__name__}"
                if issubclass(cls, theirs)
                else f"takes {', '.join(borrowed)} from dtcourse.commit.protocols"
            )
            + ": the check would then judge the course's own protocol code, not yours, so "
            f"it is refused. Make {cls.__name__} a plain dtcourse.engine.actors.Node subclass "
            f"and write the handlers yourself ({', '.join(HANDLERS)}), starting from the "
            "presumed-nothing code above"
        )
    return coordinator, participant


def _pa_nodes(classes: Any, participants: int, votes: Sequence[str]) -> list[Any]:
    coordinator, participant = _pa_classes(classes)
    names = tuple(f"P{i}" for i in range(1, participants + 1))
    try:
        return [
            coordinator("C", names),
            *(participant(p, "C", v) for p, v in zip(names, votes, strict=True)),
        ]
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"creating the nodes raised {type(error).__name__}: {error}; keep the "
            "constructors' signatures as given"
        ) from None


_PA_RULES = {
    "commit": "A commit is forced by the coordinator before it is sent, forced by each "
    "participant and acknowledged; the coordinator then ends it with a lazy end record, as "
    "under presumed nothing",
    "abort": "Under presumed abort nobody forces an abort record (the coordinator writes "
    "none at all: forgetting the transaction says abort) and nobody acknowledges an abort; "
    "the participant that votes no aborts alone and is not told",
}


def _pa_cost(classes: Any, participants: int, outcome: str) -> None:
    from dtcourse.commit import costs

    coordinator, participant = _pa_classes(classes)
    where = f"{outcome} with {participants} participants"
    try:
        result = costs.run_nodes(coordinator, participant, participants, outcome)
    except (AssertionError, NotImplementedError):
        raise
    except DTCourseError as error:
        raise AssertionError(f"{where}: {error}") from None
    except Exception as error:
        raise AssertionError(
            f"{where}: creating the nodes raised {type(error).__name__}: {error}; keep the "
            "constructors' signatures as given"
        ) from None
    assert result.ok, f"{where}: a run without failures broke {', '.join(result.violations)}"
    names = ("C", *(f"P{i}" for i in range(1, participants + 1)))
    decided = {result.decisions.get(name) for name in names}
    assert decided == {outcome}, (
        f"{where}: every node should decide {outcome}, got {result.decisions} "
        "(nodes missing there never called out.decide)"
    )
    messages, forced, lazy, _ = costs.totals(result)
    want = costs.measure("presumed abort", participants, outcome)
    wrong = [
        f"{label}: yours {mine}, the cost table's {theirs}"
        for label, mine, theirs in (
            ("messages", messages, want.messages),
            ("forced writes", forced, want.forced_writes),
        )
        if mine != theirs
    ]
    metrics = result.metrics
    assert not wrong, (
        f"{where}: " + "; ".join(wrong) + f". Your run sent {metrics.messages}, forced "
        f"{metrics.forced_writes} and wrote lazily {metrics.lazy_writes}. " + _PA_RULES[outcome]
    )


def pa_commit_cost(classes: Any, *, sizes: Iterable[int] = (3,)) -> None:
    """A commit costs what the cost table says: 4n messages, 2n + 1 forced writes."""
    for n in sizes:
        _pa_cost(classes, n, "commit")


def pa_abort_cost(classes: Any, *, sizes: Iterable[int] = (3,)) -> None:
    """An abort (the last participant votes no) costs 3n - 1 messages, n - 1 forced."""
    for n in sizes:
        _pa_cost(classes, n, "abort")


def _termination() -> Any:
    """AC5 as the checker's liveness question: from every reachable state, each undecided
    participant can still decide when nothing fails any more (crashed nodes may recover).
    A prepared participant whose coordinator forgot the transaction is stuck unless an
    inquiry is answered by the presumption."""
    from dtcourse.commit.properties import has_decided
    from dtcourse.engine.actors import Crash
    from dtcourse.engine.model import Property

    def pending(system: Any, state: Any) -> tuple[str, ...]:
        return tuple(p for p in system.participants if system.decision(state, p) is None)

    return Property.blocking(
        TERMINATION,
        pending,
        has_decided,
        allowed=lambda system, action: not isinstance(action, Crash),
    )


def pa_safety(classes: Any, *, participants: int = 2, crashes: int = 1) -> None:
    """AC1-AC4 under crash-recovery, every schedule, with both outcomes reachable, and
    AC5: once failures stop, every participant decides."""
    from dtcourse.engine.actors import ActorSystem
    from dtcourse.engine.checker import check
    from dtcourse.engine.network import Faults
    from dtcourse.errors import ModelError
    from dtcourse_instructor.grader.commitruns import trace_text

    nodes = _pa_nodes(classes, participants, ["any"] * participants)
    where = f"model checking {participants} participants, {crashes} crash(es) with recovery"
    try:
        system = ActorSystem(
            nodes,
            faults=Faults(crashes=crashes, recover=True),
            participants=[n.name for n in nodes[1:]],
            properties=(*properties.safety_properties(), *properties.outcomes(), _termination()),
            trace_search_seconds=2.0,
        )
        result = check(system, max_states=100_000)
    except ModelError as error:
        raise AssertionError(f"{where}: {error}") from None
    for violation in result.violations:
        if violation.path is None:
            raise AssertionError(f"{where}: no run reaches '{violation.property}'")
        if violation.kind == "blocking":
            state = violation.path.last
            stuck = [p for p in system.participants if system.decision(state, p) is None]
            raise AssertionError(
                f"{where}: '{violation.property}' is violated: after this run "
                f"{' or '.join(stuck)} can never decide, even if every crashed node recovers "
                "and nothing fails any more. Who answers an in-doubt participant when the "
                "coordinator knows nothing about the transaction?\n"
                + trace_text(system, violation.path)
            )
        raise AssertionError(
            f"{where}: '{violation.property}' is violated; the shortest run:\n"
            + trace_text(system, violation.path)
        )
    assert result.complete, f"{where}: the search did not finish ({result.reason})"


# ---------------------------------------------------------------------------------------
# p3.cheapest_commit: a structured answer, judged against the simulated cost table.

PRESUMPTIONS = ("presumed nothing", "presumed abort", "presumed commit")
VISIBLE_WORKLOADS: tuple[dict[str, Any], ...] = ({"participants": 3, "abort_rate": 0.1},)


def _answers(choose: Any, workloads: Iterable[dict[str, Any]] | None):
    from dtcourse.commit.costs import expected_forced_writes

    for workload in workloads or VISIBLE_WORKLOADS:
        try:
            answer = choose(dict(workload))
        except (AssertionError, NotImplementedError):
            raise
        except Exception as error:
            raise AssertionError(
                f"choose({workload}) raised {type(error).__name__}: {error}"
            ) from None
        assert isinstance(answer, dict) and {"variant", "forced_writes"} <= set(answer), (
            f"choose({workload}) returned {answer!r}; return a dict with keys 'variant' and "
            "'forced_writes'"
        )
        assert answer["variant"] in PRESUMPTIONS, (
            f"choose({workload}): variant {answer['variant']!r} is not one of "
            f"{', '.join(PRESUMPTIONS)}"
        )
        n, rate = workload["participants"], workload["abort_rate"]
        table = {v: expected_forced_writes(v, n, rate) for v in PRESUMPTIONS}
        yield workload, answer, table


def optimization_expected(choose: Any, *, workloads: Iterable[dict[str, Any]] | None = None):
    """The expected forced writes per transaction of the chosen variant are right."""
    for workload, answer, table in _answers(choose, workloads):
        value = answer["forced_writes"]
        want = table[answer["variant"]]
        assert isinstance(value, int | float) and abs(value - want) < 1e-6, (
            f"choose({workload}): {answer['variant']} forces {want:g} records per "
            f"transaction on average, you said {value!r}; weigh the commit and abort costs "
            "by how often each happens"
        )


def optimization_choice(choose: Any, *, workloads: Iterable[dict[str, Any]] | None = None):
    """The chosen variant has the fewest expected forced writes for the workload."""
    for workload, answer, table in _answers(choose, workloads):
        best = min(table.values())
        assert table[answer["variant"]] <= best + 1e-9, (
            f"choose({workload}): {answer['variant']} forces {table[answer['variant']]:g} "
            f"records per transaction, but another presumption forces only {best:g}; compare "
            "the lines of the plot at this abort rate"
        )


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "p3.presumed_abort",
        (
            ("commit cost", pa_commit_cost),
            ("abort cost", pa_abort_cost),
            ("safety", pa_safety),
        ),
    ),
    Exercise(
        "p3.cheapest_commit",
        (("expected", optimization_expected), ("choice", optimization_choice)),
    ),
    Exercise(
        "p3.saga",
        (
            ("commit", saga_commit),
            ("compensate", saga_compensate),
            ("retry", saga_retry),
            ("recover", saga_recover),
        ),
    ),
)
