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
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks import p3_saga as visible_saga

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
            + ", the package's own presumed-abort node, so it answers nothing: write the "
            "handlers yourself, starting from the presumed-nothing code above"
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
    # The saga's parts judge by the saga's definition alone, so the hidden tests run the
    # visible parts with longer sagas and harsher plans.
    visible_saga.EXERCISE,
)
