"""Checks for Phase 2: 2PC nodes, the blocking scenario, 3PC termination, coordinator
recovery on a real database, and distributed deadlock detection.

Every part takes the student's object and optional harder settings (the graded hidden
tests pass their own); with no settings a part uses the small visible cases the notebook
describes. Expected answers are never stored here: they come from the reference
protocols, the model checker, the crash torture and ``dtcourse.lessons.deadlock``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from dtcourse.engine.actors import Node
from dtcourse.runtime.checks import Exercise, p2_blocking
from dtcourse.runtime.checks import p2_twopc_coordinator as coordinator_checks
from dtcourse.runtime.checks import p2_twopc_participant as participant_checks
from dtcourse.runtime.checks.harness import COORDINATOR, Setup, names

# ---------------------------------------------------------------------------------------
# p2.twopc.participant and p2.twopc.coordinator: the visible judgement (write-ahead audit,
# the no voter, complete searches), with the reference as the partner and larger systems.


def _reference_coordinator(setup: Setup) -> Node:
    from dtcourse_instructor.reference.p2_twopc_coordinator import Coordinator

    return Coordinator(COORDINATOR, names(setup.participants))


def _reference_participant(setup: Setup, name: str, vote: str) -> Node:
    from dtcourse_instructor.reference.p2_twopc_participant import Participant

    return Participant(name, COORDINATOR, vote)  # type: ignore[arg-type]


def participant_failure_free(cls: type, **settings: Any) -> None:
    """No failures: votes are collected, both outcomes happen, everyone decides."""
    participant_checks.failure_free(cls, _reference_coordinator, **settings)


def participant_timeouts(cls: type, **settings: Any) -> None:
    """A crash: AC1-AC4 hold, and a participant that has not voted yes never waits forever."""
    participant_checks.timeouts(cls, _reference_coordinator, **settings)


def participant_recovery(cls: type, **settings: Any) -> None:
    """Crash-recovery and message loss: atomicity, then termination."""
    participant_checks.recovery(cls, _reference_coordinator, **settings)


def coordinator_failure_free(cls: type, **settings: Any) -> None:
    coordinator_checks.failure_free(cls, _reference_participant, **settings)


def coordinator_timeouts(cls: type, **settings: Any) -> None:
    """A participant crash: AC1-AC4 hold, and a live coordinator never waits forever."""
    coordinator_checks.timeouts(cls, _reference_participant, **settings)


def coordinator_recovery(cls: type, **settings: Any) -> None:
    coordinator_checks.recovery(cls, _reference_participant, **settings)


def coordinator_lossy(cls: type, **settings: Any) -> None:
    """Lost messages and a crash with recovery: decisions still reach everyone."""
    coordinator_checks.lossy(cls, _reference_participant, **settings)


# ---------------------------------------------------------------------------------------
# p2.recovery: the coordinator's recovery step on SQLite


def _recovery_cases(seed: int, count: int):
    from dtcourse.db import InDoubt, LogEntry

    rng = random.Random(seed)
    cases = [
        ((), ()),
        ((LogEntry("g1", ("p0", "p1")),), (InDoubt("p1", "g1"),)),
        ((), (InDoubt("p0", "g2"), InDoubt("p1", "g2"))),
        ((LogEntry("g3", ("p0", "p1")),), ()),
    ]
    for _ in range(count):
        gtrids = [f"t{rng.randrange(1000)}" for _ in range(rng.randint(1, 5))]
        log = tuple(LogEntry(g, ("p0", "p1", "p2")) for g in gtrids if rng.random() < 0.5)
        doubt = tuple(
            InDoubt(p, g)
            for g in dict.fromkeys(gtrids)
            for p in ("p0", "p1", "p2")
            if rng.random() < 0.5
        )
        cases.append((log, doubt))
    return cases


def recovery_rules(step: Callable, *, seed: int = 0, cases: int = 6) -> None:
    """Presumed abort: commit what the log committed, abort the rest, touch nothing else."""
    from dtcourse.db import Resolve, reference_recovery

    for log, doubt in _recovery_cases(seed, cases):
        shown = f"log={list(log)}, in_doubt={list(doubt)}"
        try:
            got = list(step(list(log), list(doubt)))
        except (AssertionError, NotImplementedError):
            raise
        except Exception as error:
            raise AssertionError(
                f"your step raised {type(error).__name__}: {error} on {shown}"
            ) from None
        for action in got:
            assert isinstance(action, Resolve), f"return Resolve objects, not {action!r}"
        want = {(a.participant, a.gtrid): a.commit for a in reference_recovery(log, doubt)}
        have = {(a.participant, a.gtrid): a.commit for a in got}
        assert len(have) == len(got), f"{shown}: resolve each branch once, got {got}"
        for key, commit_ in want.items():
            assert key in have, f"{shown}: branch {key[1]} at {key[0]} is left in doubt"
            assert have[key] == commit_, f"{shown}: {key[1]} at {key[0]} must be " + (
                "committed: the log holds its commit record"
                if commit_
                else "aborted: no commit record means presumed abort"
            )
        extra = set(have) - set(want)
        assert not extra, f"{shown}: resolve only the in-doubt branches given, not {extra}"


def recovery_torture(
    step: Callable, *, seed: int = 1, transfers: int = 8, participants: int = 2, batch: int = 2
) -> None:
    """Kill a real process running transfers, recover with ``step``, check the bank."""
    from dtcourse.db.bank import torture
    from dtcourse.errors import DTCourseError

    def guarded(log, in_doubt):
        try:
            return list(step(log, in_doubt))
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(f"your step raised {type(error).__name__}: {error}") from None

    try:
        report = torture(
            guarded, transfers=transfers, seed=seed, participants=participants, batch=batch
        )
    except DTCourseError as error:
        raise AssertionError(f"the crash torture stopped: {error}") from None
    assert report.ok, f"the crash torture (seed {seed}, {participants} databases) failed:\n{report}"


# ---------------------------------------------------------------------------------------
# p2.deadlock: distributed deadlock detection


def _deadlock_verdict(find: Callable, scenario) -> tuple[tuple[str, ...], str] | None:
    shown = f"local graphs {scenario.local}, start times {scenario.started}"
    try:
        got = find({s: list(e) for s, e in scenario.local.items()}, dict(scenario.started))
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"find_deadlock raised {type(error).__name__}: {error} on {shown}"
        ) from None
    if got is None:
        return None
    if hasattr(got, "cycle") and hasattr(got, "victim"):
        return tuple(got.cycle), got.victim
    try:
        cycle, victim = got
        return tuple(cycle), victim
    except (TypeError, ValueError):
        raise AssertionError(
            f"return a Deadlock(cycle, victim) or None, not {got!r} (on {shown})"
        ) from None


def _scenarios(seed: int, count: int, deadlock: bool, size: int):
    from dtcourse.lessons.deadlock import random_scenario

    return [
        random_scenario(seed * 1000 + i, sites=3, transactions=size, waits=size, deadlock=deadlock)
        for i in range(count)
    ]


def deadlock_none(find: Callable, *, seed: int = 0, count: int = 4, size: int = 6) -> None:
    """No global cycle: report None, even when waits cross sites."""
    for scenario in _scenarios(seed, count, False, size):
        got = _deadlock_verdict(find, scenario)
        assert got is None, f"there is no deadlock in {scenario.local}, but you returned {got}"


def deadlock_cycle(find: Callable, *, seed: int = 0, count: int = 4, size: int = 6) -> None:
    """A cycle across sites: return a real cycle of the global wait-for graph."""
    from dtcourse.lessons.deadlock import global_graph, is_cycle

    for scenario in _scenarios(seed + 1, count, True, size):
        got = _deadlock_verdict(find, scenario)
        assert got is not None, (
            f"{scenario.local} has a deadlock across sites, but you returned None: "
            "combine the sites' edges into one graph first"
        )
        graph = global_graph(scenario.local)
        assert is_cycle(graph, got[0]), (
            f"{got[0]} is not a cycle of the global wait-for graph of {scenario.local}: each "
            "transaction must wait for the next, the last for the first"
        )


def deadlock_victim(find: Callable, *, seed: int = 0, count: int = 4, size: int = 6) -> None:
    """The victim is the youngest transaction of the cycle (the latest start time)."""
    from dtcourse.lessons.deadlock import choose_victim

    for scenario in _scenarios(seed + 2, count, True, size):
        got = _deadlock_verdict(find, scenario)
        assert got is not None, f"{scenario.local} has a deadlock, but you returned None"
        cycle, victim = got
        assert set(cycle) <= set(scenario.started), f"{cycle} names unknown transactions"
        want = choose_victim(cycle, scenario.started)
        assert victim == want, (
            f"for the cycle {cycle} with start times "
            f"{ {t: scenario.started[t] for t in cycle} } the victim is {want} (youngest: "
            f"latest start), not {victim!r}"
        )


def _threepc_exercise() -> tuple[Exercise, ...]:
    try:
        from dtcourse_instructor.grader.phase2_threepc import EXERCISE
    except ImportError:
        return ()
    return (EXERCISE,)


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "p2.twopc.participant",
        (
            ("failure_free", participant_failure_free),
            ("timeouts", participant_timeouts),
            ("recovery", participant_recovery),
        ),
    ),
    Exercise(
        "p2.twopc.coordinator",
        (
            ("failure_free", coordinator_failure_free),
            ("timeouts", coordinator_timeouts),
            ("recovery", coordinator_recovery),
            ("lossy", coordinator_lossy),
        ),
    ),
    # The blocking parts hold no answer: the hidden tests run the visible ones, with settings.
    p2_blocking.EXERCISE,
    Exercise("p2.recovery", (("rules", recovery_rules), ("torture", recovery_torture))),
    Exercise(
        "p2.deadlock",
        (("none", deadlock_none), ("cycle", deadlock_cycle), ("victim", deadlock_victim)),
    ),
    *_threepc_exercise(),
)
