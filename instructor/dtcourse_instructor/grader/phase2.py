"""Checks for Phase 2: 2PC nodes, the blocking scenario, 3PC termination, coordinator
recovery on a real database, and distributed deadlock detection.

Every part takes the student's object and optional harder settings (the graded hidden
tests pass their own); with no settings a part uses the small visible cases the notebook
describes. Expected answers are never stored here: they come from the reference
protocols and solutions (``dtcourse_instructor.reference``), the model checker and the
crash torture.
"""

from __future__ import annotations

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


def recovery_rules(step: Callable, *, seed: int = 0, cases: int = 6) -> None:
    """Presumed abort: commit what the log committed, abort the rest, touch nothing else."""
    from dtcourse.runtime.checks.p2_recovery import resolutions
    from dtcourse_instructor.reference.p2_recovery import cases as recovery_cases
    from dtcourse_instructor.reference.p2_recovery import recovery_step

    for log, doubt in recovery_cases(seed, cases):
        shown = f"log={list(log)}, in_doubt={list(doubt)}"
        have = resolutions(step, log, doubt)
        for action in recovery_step(log, doubt):
            key = (action.participant, action.gtrid)
            assert have[key] == action.commit, f"{shown}: {key[1]} at {key[0]} must be " + (
                "committed: the log holds its commit record"
                if action.commit
                else "aborted: no commit record means presumed abort"
            )


def recovery_torture(step: Callable, **settings: Any) -> None:
    """Kill a real process running transfers, recover with ``step``, check the bank."""
    from dtcourse.runtime.checks.p2_recovery import torture

    torture(step, **settings)


# ---------------------------------------------------------------------------------------
# p2.deadlock: distributed deadlock detection


def deadlock_none(find: Callable, *, seed: int = 0, count: int = 4, size: int = 6) -> None:
    """No global cycle: report None, even when waits cross sites."""
    from dtcourse.runtime.checks.p2_deadlock import verdict
    from dtcourse_instructor.reference.p2_deadlock import scenarios

    for scenario in scenarios(seed, count, False, size):
        got = verdict(find, scenario)
        assert got is None, f"there is no deadlock in {scenario.local}, but you returned {got}"


def deadlock_cycle(find: Callable, *, seed: int = 0, count: int = 4, size: int = 6) -> None:
    """A cycle across sites: return a real cycle of the global wait-for graph."""
    from dtcourse.runtime.checks.p2_deadlock import check_cycle, verdict
    from dtcourse_instructor.reference.p2_deadlock import scenarios

    for scenario in scenarios(seed + 1, count, True, size):
        check_cycle(scenario, verdict(find, scenario))


def deadlock_victim(find: Callable, *, seed: int = 0, count: int = 4, size: int = 6) -> None:
    """The victim of a real cycle is its youngest transaction, as the reference chooses."""
    from dtcourse.runtime.checks.p2_deadlock import check_cycle, verdict
    from dtcourse_instructor.reference.p2_deadlock import choose_victim, scenarios

    for scenario in scenarios(seed + 2, count, True, size):
        got = verdict(find, scenario)
        check_cycle(scenario, got)
        assert got is not None
        cycle, victim = got
        want = choose_victim(cycle, scenario.started)
        assert victim in cycle, (
            f"your victim {victim!r} is not in the cycle {cycle} you found: aborting it breaks "
            f"no cycle. Choose the victim among the cycle's transactions: the youngest (latest "
            f"start), here {want}"
        )
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
