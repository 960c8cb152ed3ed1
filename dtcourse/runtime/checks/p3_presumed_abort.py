"""Visible checks of p3.presumed_abort: the student's nodes, counted and model-checked.

Nothing here knows how presumed abort is written. The cost parts run the student's
coordinator ``C`` and participants ``P1 ... Pn`` once without faults (``costs.run_nodes``,
exactly as the cost table counts every variant) and compare messages, forced writes and
lazy writes with the table's presumed-abort row, which the course's build recorded from
the instructor's reference (``costs.measure("presumed abort", ...)``). The safety part
model-checks the student's own nodes together under crash and recovery: AC1-AC4 on every
schedule, both outcomes reachable, and AC5 (every participant decides once failures
stop). The graded hidden tests call the same parts with more sizes and more crashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dtcourse.commit import costs, properties
from dtcourse.errors import DTCourseError, ModelError
from dtcourse.runtime.checks import Exercise

__all__ = [
    "EXERCISE",
    "HANDLERS",
    "TERMINATION",
    "pa_abort_cost",
    "pa_commit_cost",
    "pa_safety",
]

HANDLERS = ("on_start", "on_message", "on_timeout", "on_recover")
TERMINATION = "AC5 every participant decides once failures are repaired"
VARIANT = "presumed abort"


def _classes(classes: Any) -> tuple[type, type]:
    """The pair of classes, refusing anything built on the package's own nodes."""
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


def _nodes(classes: Any, participants: int, votes: Sequence[str]) -> list[Any]:
    coordinator, participant = _classes(classes)
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


_RULES = {
    "commit": "A commit is forced by the coordinator before it is sent, forced by each "
    "participant and acknowledged; the coordinator then ends it with a lazy end record, as "
    "under presumed nothing",
    "abort": "Under presumed abort the coordinator writes no abort record at all "
    "(forgetting the transaction says abort), each prepared participant writes its abort "
    "record lazily, and nobody acknowledges an abort; the participant that votes no aborts "
    "alone, writes nothing and is not told",
}


def _cost(classes: Any, participants: int, outcome: str) -> None:
    coordinator, participant = _classes(classes)
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
    want = costs.measure(VARIANT, participants, outcome)
    wrong = [
        f"{label}: yours {mine}, the cost table's {theirs}"
        for label, mine, theirs in (
            ("messages", messages, want.messages),
            ("forced writes", forced, want.forced_writes),
            ("lazy writes", lazy, want.lazy_writes),
        )
        if mine != theirs
    ]
    metrics = result.metrics
    assert not wrong, (
        f"{where}: " + "; ".join(wrong) + f". Your run sent {metrics.messages}, forced "
        f"{metrics.forced_writes} and wrote lazily {metrics.lazy_writes}. " + _RULES[outcome]
    )


def pa_commit_cost(classes: Any, *, sizes: Iterable[int] = (3,)) -> None:
    """A commit costs what the cost table says: 4n messages, 2n + 1 forced writes, one
    lazy write (the coordinator's end record)."""
    for n in sizes:
        _cost(classes, n, "commit")


def pa_abort_cost(classes: Any, *, sizes: Iterable[int] = (3,)) -> None:
    """An abort (the last participant votes no) costs 3n - 1 messages, n - 1 forced writes
    and n - 1 lazy writes (the prepared participants' abort records)."""
    for n in sizes:
        _cost(classes, n, "abort")


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

    def decided(system: Any, state: Any, participant: Any) -> bool:
        return has_decided(system, state, participant)

    return Property.blocking(
        TERMINATION,
        pending,
        decided,
        allowed=lambda system, action: not isinstance(action, Crash),
    )


def _trace_text(system: Any, path: Any, limit: int = 40) -> str:
    from dtcourse.engine.trace_text import text_sequence

    try:
        return text_sequence(system.trace_of(path), max_events=limit)
    except Exception:  # feedback must never fail because a picture could not be drawn
        return "\n".join(f"  {n}. {system.format_action(a)}" for n, a in enumerate(path.actions, 1))


def pa_safety(classes: Any, *, participants: int = 2, crashes: int = 1) -> None:
    """AC1-AC4 under crash-recovery, every schedule, with both outcomes reachable, and
    AC5: once failures stop, every participant decides."""
    from dtcourse.engine.actors import ActorSystem
    from dtcourse.engine.checker import check
    from dtcourse.engine.network import Faults

    nodes = _nodes(classes, participants, ["any"] * participants)
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
            state: Any = violation.path.last
            stuck = [p for p in system.participants if system.decision(state, p) is None]
            raise AssertionError(
                f"{where}: '{violation.property}' is violated: after this run "
                f"{' or '.join(stuck)} can never decide, even if every crashed node recovers "
                "and nothing fails any more. Who answers an in-doubt participant when the "
                "coordinator knows nothing about the transaction?\n"
                + _trace_text(system, violation.path)
            )
        raise AssertionError(
            f"{where}: '{violation.property}' is violated; the shortest run:\n"
            + _trace_text(system, violation.path)
        )
    assert result.complete, (
        f"{where}: the search did not finish ({result.reason}); keep only what the protocol "
        "needs in the state"
    )


EXERCISE = Exercise(
    "p3.presumed_abort",
    (
        ("commit cost", pa_commit_cost),
        ("abort cost", pa_abort_cost),
        ("safety", pa_safety),
    ),
)
