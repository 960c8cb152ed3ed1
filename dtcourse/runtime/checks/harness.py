"""Judging commit-protocol nodes: exhaustive checks and seeded random runs.

The Phase 2 exercises plug a student's node class into an actor system next to partner
nodes (in the visible checks, a most general legal partner) and judge it two ways. The
model checker explores every schedule of a small system; seeded random runs reach larger
systems and crash-recovery cheaply: each run takes random environment actions (deliveries,
losses, crashes, recoveries, timeouts) for a while, then repairs the failures (no more
faults; crashed nodes recover) and requires every participant to decide (AC5). Both judge
AC1-AC4 on every state they visit. Nothing here knows a protocol's answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dtcourse.commit import properties as ac
from dtcourse.engine.actors import (
    ActorSystem,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Heal,
    Node,
    Partition,
    Recover,
    SystemState,
    Timeout,
)
from dtcourse.engine.model import Path, Property
from dtcourse.engine.network import Faults, Network
from dtcourse.errors import ModelError

__all__ = [
    "COORDINATOR",
    "NodeFactory",
    "Setup",
    "build_system",
    "coordinator_can_decide",
    "exhaustive",
    "names",
    "random_runs",
    "replay",
    "trace_text",
    "unvoted_can_decide",
]

COORDINATOR = "C"
_FAULTS = (Drop, Crash, Duplicate, Partition)


def names(count: int) -> tuple[str, ...]:
    return tuple(f"P{i}" for i in range(1, count + 1))


def trace_text(system: ActorSystem, path: Path, limit: int = 40) -> str:
    """A run as text, for feedback: the sequence of events, numbered."""
    from dtcourse.engine.trace_text import text_sequence

    try:
        return text_sequence(system.trace_of(path), max_events=limit)
    except Exception:  # feedback must never fail because a picture could not be drawn
        return "\n".join(f"  {n}. {system.format_action(a)}" for n, a in enumerate(path.actions, 1))


@dataclass(frozen=True)
class Setup:
    """One system to judge: how many participants, their votes, the faults, the timing."""

    participants: int = 2
    votes: str | tuple[str, ...] = "any"
    crashes: int = 0
    recover: bool = False
    loss: bool = False
    duplicate: bool = False
    timing: str = "perfect"

    def describe(self) -> str:
        faults = Faults(crashes=self.crashes, recover=self.recover).describe()
        network = Network(loss=self.loss, duplicate=self.duplicate).describe()
        return (
            f"{self.participants} participants (votes {self.votes}), {faults}, {network} "
            f"network, {self.timing} timing"
        )

    def vote_list(self) -> tuple[str, ...]:
        if isinstance(self.votes, str):
            return (self.votes,) * self.participants
        return tuple(self.votes)


NodeFactory = Callable[[Setup], list[Node]]


# How long the system may search for the run that led to a failing handler. Random runs
# keep their own trace, so they skip the search; the small systems the checker explores
# are searched quickly, and a broken submission must still be graded in moments.
_TRACE_SEARCH_SECONDS = 2.0


def build_system(
    setup: Setup,
    nodes: Sequence[Node],
    properties: Sequence[Property],
    *,
    trace_search_seconds: float = _TRACE_SEARCH_SECONDS,
) -> ActorSystem:
    try:
        return ActorSystem(
            nodes,
            network=Network(loss=setup.loss, duplicate=setup.duplicate),
            faults=Faults(crashes=setup.crashes, recover=setup.recover),
            timing=setup.timing,  # type: ignore[arg-type]
            participants=names(setup.participants),
            properties=properties,
            trace_search_seconds=trace_search_seconds,
        )
    except ModelError as error:
        raise AssertionError(f"cannot build the system: {error}") from None


def _made(factory: NodeFactory, setup: Setup) -> list[Node]:
    try:
        return factory(setup)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"creating the nodes raised {type(error).__name__}: {error}; keep the "
            "constructor's signature as given"
        ) from None


def exhaustive(
    factory: NodeFactory,
    setup: Setup,
    extra: Sequence[Property] = (),
    *,
    blocking: bool = False,
    max_states: int = 20_000,
) -> None:
    """Model-check the system; any violated property fails with its shortest trace.

    A search cut short by ``max_states`` still judges every state it saw; liveness
    (blocking) verdicts need the whole graph, so they count only when the search finished.
    """
    from dtcourse.engine.checker import check

    properties = [*ac.safety_properties(), *ac.outcomes(), *extra]
    if blocking:
        properties.append(ac.non_blocking())
    system = build_system(setup, _made(factory, setup), properties)
    try:
        result = check(system, max_states=max_states)
    except ModelError as error:
        raise AssertionError(f"with {setup.describe()}: {error}") from None
    for violation in result.violations:
        if violation.kind == "sometimes" and not result.complete:
            continue
        where = f"model checking {setup.describe()}"
        if violation.path is None:
            raise AssertionError(
                f"{where}: no run ever reaches '{violation.property}'; your node never gets there"
            )
        raise AssertionError(
            f"{where}: '{violation.property}' is violated; the shortest run:\n"
            + trace_text(system, violation.path)
        )


def _pick(
    rng: random.Random, actions: Sequence[object], repairing: bool, fault: float, timeout: float
) -> object | None:
    normal = [a for a in actions if isinstance(a, Deliver | Recover | Heal)]
    timers = [a for a in actions if isinstance(a, Timeout)]
    faults = [] if repairing else [a for a in actions if isinstance(a, _FAULTS)]
    roll = rng.random()
    if faults and roll < fault:
        return rng.choice(faults)
    if timers and (roll < fault + timeout or not normal):
        return rng.choice(timers)
    if normal:
        return rng.choice(normal)
    return rng.choice(faults) if faults else None


def random_runs(
    factory: NodeFactory,
    setup: Setup,
    *,
    seed: int = 0,
    runs: int = 60,
    fault_steps: int = 30,
    fault_rate: float = 0.1,
    timeout_rate: float = 0.1,
    repair_steps: int = 400,
) -> None:
    """Seeded random runs with faults, then repair; AC1-AC4 always, AC5 at the end.

    While faults are allowed, each step is a fault (loss, crash, duplicate) with
    probability ``fault_rate`` and a timeout with probability ``timeout_rate``; otherwise
    a message is delivered (or a node recovers). So failures strike at every point of the
    protocol rather than mostly at its start, and timeouts are late, as in a real run.
    """
    system = build_system(
        setup, _made(factory, setup), ac.safety_properties(), trace_search_seconds=0
    )
    invariants = [(p.name, p.condition) for p in ac.safety_properties()]
    rng = random.Random(seed)
    where = f"random run {{run}} of {setup.describe()} (seed {seed})"
    for run in range(runs):
        try:
            state = system.init_states()[0]
        except ModelError as error:
            raise AssertionError(f"at the start: {error}") from None
        steps: list[tuple[object, SystemState]] = []
        init = state
        for number in range(fault_steps + repair_steps):
            repairing = number >= fault_steps
            if repairing and _all_decided(system, state):
                break
            action = _pick(rng, system.actions(state), repairing, fault_rate, timeout_rate)
            if action is None:
                break
            try:
                nxt = system.next_state(state, action)
            except ModelError as error:
                raise AssertionError(
                    f"{where.format(run=run + 1)}: {error}".split("; fix the handler")[0]
                    + "; fix the handler. The run so far:\n"
                    + trace_text(system, Path(init, tuple(steps)))
                ) from None
            if nxt is None:
                continue
            state = nxt
            steps.append((action, state))
            for name, condition in invariants:
                if not condition(system, state):  # type: ignore[misc]
                    raise AssertionError(
                        f"{where.format(run=run + 1)}: '{name}' is violated after this run:\n"
                        + trace_text(system, Path(init, tuple(steps)))
                    )
        if setup.recover and not _all_decided(system, state):
            undecided = [p for p in system.participants if system.decision(state, p) is None]
            raise AssertionError(
                f"{where.format(run=run + 1)}: after the failures were repaired, "
                f"{', '.join(undecided)} never decided (AC5: termination once failures are "
                "repaired). The run:\n" + trace_text(system, Path(init, tuple(steps)))
            )


def replay(system: ActorSystem, path: Path, what: str) -> SystemState:
    """The last state of ``path``'s actions taken on ``system`` from its initial state.

    A path's states belong to the system that made it, so the actions are matched to the
    equal actions ``system`` offers, which carry its own references to messages.
    """
    state = system.init_states()[0]
    for number, action in enumerate(path.actions, start=1):
        enabled = system.actions(state)
        try:
            mine = enabled[enabled.index(action)]
        except ValueError:
            raise AssertionError(
                f"{what} does not replay on {system!r}: step {number} "
                f"({system.format_action(action)}) is not possible there; was it produced by "
                "the checker on that system?"
            ) from None
        nxt = system.next_state(state, mine)
        assert nxt is not None, f"{what}: step {number} is not enabled on {system!r}"
        state = nxt
    return state


def _all_decided(system: ActorSystem, state: SystemState) -> bool:
    return all(
        system.is_up(state, p) and system.decision(state, p) is not None
        for p in system.participants
    )


# -- liveness properties for the exercises ---------------------------------------------------


def unvoted_can_decide() -> Property:
    """A participant that has not voted yes is never stuck: it may abort on its own."""

    def pending(system: ActorSystem, state: SystemState):
        return tuple(
            p
            for p in system.participants
            if system.is_up(state, p)
            and system.decision(state, p) is None
            and system.vote(state, p) != "yes"
        )

    return Property.blocking(
        "a participant that has not voted yes can always abort on its own",
        pending,
        ac.has_decided,
        allowed=ac.not_recovery,
    )


def coordinator_can_decide(coordinator: str = COORDINATOR) -> Property:
    """A live coordinator always reaches a decision, whoever else fails (vote timeouts)."""

    def pending(system: ActorSystem, state: SystemState):
        up = system.is_up(state, coordinator)
        return (coordinator,) if up and system.decision(state, coordinator) is None else ()

    return Property.blocking(
        "a live coordinator always decides",
        pending,
        lambda system, state, key: system.decision(state, key) is not None,
        allowed=ac.not_recovery,
    )
