"""Checks for Phase 2: 2PC nodes, the blocking scenario, 3PC termination, coordinator
recovery on a real database, and distributed deadlock detection.

Every part takes the student's object and optional harder settings (the graded hidden
tests pass their own); with no settings a part uses the small visible cases the notebook
describes. Expected answers are never stored here: they come from the reference
protocols, the model checker, the crash torture and ``dtcourse.lessons.deadlock``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from dtcourse.engine.actors import ActorSystem, Crash, Deliver, Node, SystemState, message_label
from dtcourse.engine.model import Property
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.harness import (
    COORDINATOR,
    Setup,
    coordinator_can_decide,
    exhaustive,
    names,
    random_runs,
    replay,
    unvoted_can_decide,
)

# ---------------------------------------------------------------------------------------
# p2.twopc.participant and p2.twopc.coordinator


def _setup(default: Setup, settings: Mapping[str, Any]) -> Setup:
    fields = {k: v for k, v in settings.items() if k in Setup.__dataclass_fields__}
    if not fields:
        return default
    values = {**default.__dict__, **fields}
    return Setup(**values)


def _run_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: settings[k] for k in ("seed", "runs") if k in settings}


def _with_participant(cls: type) -> Callable[[Setup], list[Node]]:
    from dtcourse_instructor.reference.p2_twopc_coordinator import Coordinator

    _require_class(cls, "participant")

    def make(setup: Setup) -> list[Node]:
        parts = names(setup.participants)
        return [
            Coordinator(COORDINATOR, parts),
            *(cls(p, COORDINATOR, v) for p, v in zip(parts, setup.vote_list(), strict=True)),
        ]

    return make


def _with_coordinator(cls: type) -> Callable[[Setup], list[Node]]:
    from dtcourse_instructor.reference.p2_twopc_participant import Participant

    _require_class(cls, "coordinator")

    def make(setup: Setup) -> list[Node]:
        parts = names(setup.participants)
        return [
            cls(COORDINATOR, parts),
            *(
                Participant(p, COORDINATOR, v)
                for p, v in zip(parts, setup.vote_list(), strict=True)
            ),
        ]

    return make


def _require_class(cls: Any, role: str) -> None:
    assert isinstance(cls, type) and issubclass(cls, Node), (
        f"pass your {role} class itself (a subclass of dtcourse.engine.actors.Node), not {cls!r}"
    )


def _yes_on_disk() -> Property:
    """A participant's yes vote is never announced before its prepared record is forced."""

    def holds(system: ActorSystem, state: SystemState) -> bool:
        return all(
            system.vote(state, p) != "yes" or bool(system.log(state, p))
            for p in system.participants
        )

    return Property.always("the prepared record is forced before voting yes", holds)


def _decision_on_disk(coordinator: str = COORDINATOR) -> Property:
    """Once the coordinator acted on commit, a forced record names it."""

    def holds(system: ActorSystem, state: SystemState) -> bool:
        if system.record(state, coordinator).decision != ("commit", True):
            return True
        return any("commit" in repr(record).lower() for record in system.log(state, coordinator))

    return Property.always("the commit decision is forced before it is sent", holds)


def participant_failure_free(cls: type, **settings: Any) -> None:
    """No failures: votes are collected, both outcomes happen, everyone decides."""
    setup = _setup(Setup(participants=2, votes="any"), settings)
    exhaustive(_with_participant(cls), setup, [_yes_on_disk()], blocking=True)


def participant_timeouts(cls: type, **settings: Any) -> None:
    """A crash: AC1-AC4 hold, and a participant that has not voted yes never waits forever."""
    setup = _setup(Setup(participants=2, votes="any", crashes=1), settings)
    exhaustive(_with_participant(cls), setup, [_yes_on_disk(), unvoted_can_decide()])


def participant_recovery(cls: type, **settings: Any) -> None:
    """Random runs with crash-recovery and message loss: atomicity, then termination."""
    setup = _setup(
        Setup(participants=2, votes="any", crashes=1, recover=True, loss=True, timing="async"),
        settings,
    )
    random_runs(_with_participant(cls), setup, **_run_settings(settings))


def coordinator_failure_free(cls: type, **settings: Any) -> None:
    setup = _setup(Setup(participants=2, votes="any"), settings)
    exhaustive(_with_coordinator(cls), setup, [_decision_on_disk()], blocking=True)


def coordinator_timeouts(cls: type, **settings: Any) -> None:
    """A participant crash: AC1-AC4 hold, and a live coordinator never waits forever."""
    setup = _setup(Setup(participants=2, votes="any", crashes=1), settings)
    exhaustive(_with_coordinator(cls), setup, [_decision_on_disk(), coordinator_can_decide()])


def coordinator_recovery(cls: type, **settings: Any) -> None:
    setup = _setup(
        Setup(participants=2, votes="any", crashes=1, recover=True, timing="async"), settings
    )
    random_runs(_with_coordinator(cls), setup, **_run_settings(settings))


def coordinator_lossy(cls: type, **settings: Any) -> None:
    """Lost messages and a crash with recovery: decisions still reach everyone."""
    setup = _setup(
        Setup(participants=2, votes="yes", crashes=1, recover=True, loss=True, timing="async"),
        settings,
    )
    random_runs(_with_coordinator(cls), setup, **_run_settings(settings))


# ---------------------------------------------------------------------------------------
# p2.blocking: the blocking scenario, found by the checker and explained

BLOCKING_SETUP = {"participants": 2, "votes": "yes", "crashes": 1, "timing": "perfect"}
PHASES = ("working", "prepared", "committed", "aborted")
_PHASE_NAMES = {"commit": "committed", "abort": "aborted"}


def _answer(answer: Any, key: str) -> Any:
    assert isinstance(answer, Mapping), "blocking_answer must be a dict (see the template)"
    assert key in answer, f"blocking_answer has no {key!r}; keep every key of the template"
    return answer[key]


def _blocking_path(answer: Any):
    result = _answer(answer, "result")
    path = getattr(result, "blocking", None)
    assert path is not None, (
        "answer['result'] must be the CheckResult of the check that found blocking; this "
        "one has no blocking trace (did you run build('2pc', ...) with a crash?)"
    )
    return path


def _phase(local: Any) -> str:
    phase = getattr(local, "phase", None)
    return _PHASE_NAMES.get(str(phase), str(phase))


def _replay(path: Any, settings: Mapping[str, Any]) -> tuple[ActorSystem, SystemState]:
    """Run the path's actions on a fresh system: its states are that system's own."""
    from dtcourse.commit.protocols import build

    system = build("2pc", **{**BLOCKING_SETUP, **settings})
    return system, replay(system, path, "the blocking run")


def blocking_found(answer: Any, **settings: Any) -> None:
    """The result holds a blocking run that replays on the system of the exercise."""
    path = _blocking_path(answer)
    assert any(isinstance(a, Crash) for a in path.actions), (
        "the blocking run has no crash: use a fault budget with crashes=1"
    )
    system, last = _replay(path, settings)
    waiting = [
        p for p in system.participants if system.is_up(last, p) and system.decision(last, p) is None
    ]
    assert waiting, "in the last state of your run every live participant has decided"


def blocking_failed_node(answer: Any, **settings: Any) -> None:
    path = _blocking_path(answer)
    crashed = [a.node for a in path.actions if isinstance(a, Crash)]
    failed = _answer(answer, "failed")
    assert failed in crashed, (
        f"answer['failed'] is {failed!r}, but in your blocking run the node that crashed is "
        f"{crashed[0] if crashed else 'none'}: read the trace again"
    )


def blocking_votes(answer: Any, **settings: Any) -> None:
    """How many votes reached the coordinator before it crashed."""
    path = _blocking_path(answer)
    received = 0
    for action in path.actions:
        if isinstance(action, Crash) and action.node == COORDINATOR:
            break
        if isinstance(action, Deliver) and action.dst == COORDINATOR:
            received += message_label(action.msg).startswith("Vote")
    got = _answer(answer, "votes_received")
    assert got == received, (
        f"answer['votes_received'] is {got!r}; count the Vote messages delivered to "
        "C before it crashed (a vote sent is not a vote received)"
    )


def blocking_participants(answer: Any, **settings: Any) -> None:
    """Each participant's phase when blocked, and what the coordinator's log decided."""
    system, last = _replay(_blocking_path(answer), settings)
    got = _answer(answer, "participants")
    assert isinstance(got, Mapping), "answer['participants'] must map P1, P2 to a phase"
    for p in system.participants:
        local = system.local(last, p)
        want = "down" if local is None else _phase(local)
        assert got.get(p) == want, (
            f"answer['participants'][{p!r}] is {got.get(p)!r}; in the blocked state it is one "
            f"of {', '.join(PHASES)}: look at the last state of your run"
        )
    logged = [r for r in system.log(last, COORDINATOR) if r in ("commit", "abort")]
    decision = _answer(answer, "coordinator_decision")
    want = logged[0] if logged else None
    assert decision == want, (
        f"answer['coordinator_decision'] is {decision!r}; what does C's durable log hold? "
        "(None when it logged no decision)"
    )


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
    Exercise(
        "p2.blocking",
        (
            ("found", blocking_found),
            ("failed", blocking_failed_node),
            ("votes", blocking_votes),
            ("participants", blocking_participants),
        ),
    ),
    Exercise("p2.recovery", (("rules", recovery_rules), ("torture", recovery_torture))),
    Exercise(
        "p2.deadlock",
        (("none", deadlock_none), ("cycle", deadlock_cycle), ("victim", deadlock_victim)),
    ),
    *_threepc_exercise(),
)
