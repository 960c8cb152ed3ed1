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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dtcourse.commit import properties as ac
from dtcourse.engine.actors import (
    ActorSystem,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Heal,
    Node,
    Out,
    Partition,
    Recover,
    SystemState,
    Timeout,
)
from dtcourse.engine.model import Path, Property
from dtcourse.engine.network import Faults, Network, Timing
from dtcourse.engine.trace import message_label
from dtcourse.errors import ModelError

__all__ = [
    "Audited",
    "COORDINATOR",
    "NodeFactory",
    "Setup",
    "build_system",
    "coordinator_can_decide",
    "exhaustive",
    "names",
    "random_runs",
    "replay",
    "require_node_class",
    "run_settings",
    "setup_with",
    "trace_text",
    "own_state",
    "unvoted_can_decide",
    "voters",
    "write_ahead",
    "WriteAhead",
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
    timing: Timing = "perfect"

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


class _Partnered(ActorSystem):
    """An actor system in which the check's partner nodes crash only for good, or never.

    A most general partner (``dtcourse.commit.environments``) keeps no log, so a crash it
    recovered from would make it forget what it promised; crash-stop needs no log to stay
    legal. Random runs, which require everyone to decide once failures are repaired, let
    partners not crash at all.
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        *,
        no_crash: Collection[str] = (),
        no_recover: Collection[str] = (),
        **options: Any,
    ) -> None:
        super().__init__(nodes, **options)
        self._no_crash = frozenset(no_crash)
        self._no_recover = frozenset(no_recover)

    def _allowed(self, action: object) -> bool:
        kind = type(action)
        if kind is Crash:
            return action.node not in self._no_crash  # type: ignore[attr-defined]
        if kind is Recover:
            return action.node not in self._no_recover  # type: ignore[attr-defined]
        return True

    def actions(self, state: SystemState) -> list[Any]:
        return [a for a in super().actions(state) if self._allowed(a)]

    def next_state(self, state: SystemState, action: Any) -> SystemState | None:
        return super().next_state(state, action) if self._allowed(action) else None

    def successors(self, state: SystemState) -> list[tuple[Any, SystemState]]:
        # Defined here so that a faster successors() of the engine, should it add one, is
        # filtered too; the checker prefers this hook to actions() and next_state().
        inherited = getattr(super(), "successors", None)
        if inherited is not None:
            return [(a, s) for a, s in inherited(state) if self._allowed(a)]
        pairs = []
        for action in self.actions(state):
            nxt = super().next_state(state, action)
            if nxt is not None:
                pairs.append((action, nxt))
        return pairs


def build_system(
    setup: Setup,
    nodes: Sequence[Node],
    properties: Sequence[Property],
    *,
    trace_search_seconds: float = _TRACE_SEARCH_SECONDS,
    no_crash: Collection[str] = (),
    no_recover: Collection[str] = (),
) -> ActorSystem:
    """The system of ``setup``; ``no_crash`` and ``no_recover`` name nodes spared a fault."""
    try:
        return _Partnered(
            nodes,
            no_crash=no_crash,
            no_recover=no_recover,
            network=Network(loss=setup.loss, duplicate=setup.duplicate),
            faults=Faults(crashes=setup.crashes, recover=setup.recover),
            timing=setup.timing,
            participants=names(setup.participants),
            properties=properties,
            trace_search_seconds=trace_search_seconds,
        )
    except ModelError as error:
        raise AssertionError(f"cannot build the system: {error}") from None


def _made(factory: NodeFactory, setup: Setup) -> list[Node]:
    """The nodes of ``setup``. A node whose ``on_start`` is still the exercise's stub
    raises ``NotImplementedError`` here, as itself: the system would report it as a failed
    handler, and an unfinished exercise is not a wrong one."""
    try:
        nodes = factory(setup)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"creating the nodes raised {type(error).__name__}: {error}; keep the "
            "constructor's signature as given"
        ) from None
    known = frozenset(str(getattr(node, "name", "")) for node in nodes)
    for node in nodes:
        try:
            node.on_start(Out(str(getattr(node, "name", "")), known))  # pure: nothing kept
        except NotImplementedError:
            raise
        except Exception:  # noqa: BLE001 - the system reports it with the run that led there
            pass
    return nodes


def exhaustive(
    factory: NodeFactory,
    setup: Setup,
    extra: Sequence[Property] = (),
    *,
    blocking: bool = False,
    outcomes: bool = True,
    partners: Collection[str] = (),
    max_states: int = 20_000,
) -> None:
    """Model-check the system; any violated property fails with its shortest trace.

    ``outcomes`` requires some run to commit and some to abort; ``blocking`` adds the
    non-blocking property. ``partners`` names the nodes that are not being judged: they
    crash only for good. The search must finish within ``max_states``: a verdict on part
    of the state space would let a node pass by growing its state (a retry counter, say)
    until the search gives up, with its liveness never judged.
    """
    from dtcourse.engine.checker import check

    properties = [*ac.safety_properties(), *(ac.outcomes() if outcomes else ()), *extra]
    if blocking:
        properties.append(ac.non_blocking())
    system = build_system(setup, _made(factory, setup), properties, no_recover=partners)
    where = f"model checking {setup.describe()}"
    try:
        result = check(system, max_states=max_states)
    except ModelError as error:
        raise AssertionError(f"with {setup.describe()}: {error}") from None
    for violation in sorted(result.violations, key=lambda v: v.kind != "always"):
        if violation.kind != "always" and not result.complete:
            break
        if violation.path is None:
            raise AssertionError(
                f"{where}: no run ever reaches '{violation.property}'; your node never gets there"
            )
        raise AssertionError(
            f"{where}: '{violation.property}' is violated; the shortest run:\n"
            + trace_text(system, violation.path)
        )
    if not result.complete:
        raise AssertionError(
            f"{where}: your state space grew past {max_states:,} states, so the search could "
            "not finish and nothing after that was judged: keep only what the protocol needs "
            "in the state (no counters, no histories)"
        )


def _pick(
    rng: random.Random, actions: Sequence[Any], repairing: bool, fault: float, timeout: float
) -> Any:
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
    partners: Collection[str] = (),
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
    ``partners`` names the nodes that are not being judged: they never crash.
    """
    system = build_system(
        setup,
        _made(factory, setup),
        ac.safety_properties(),
        trace_search_seconds=0,
        no_crash=partners,
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


# -- write-ahead order ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audited:
    """A judged node's own state, with what the write-ahead audit learned so far.

    ``on_disk``: a record the audit looks for has been forced (it survives crashes);
    ``early``: the first message sent before such a record was forced, or ``None``.
    """

    inner: Any
    on_disk: bool = False
    early: str | None = None


class WriteAhead(Node):
    """Runs ``node`` unchanged and notes any message it sends before forcing its record.

    Within one handler the effects keep the order the node asked for them in, and a real
    process can crash between two of them, so "send, then force" is wrong even when both
    happen in the same step: the audit catches it, which no property of the states can.
    ``message`` picks the messages that depend on the record, ``record`` the records that
    count. The node's state is kept inside an ``Audited`` value; its handlers see their own.
    """

    def __init__(
        self, node: Node, message: Callable[[Any], bool], record: Callable[[Any], bool]
    ) -> None:
        super().__init__(node.name)
        self.node = node
        self.message = message
        self.record = record

    def _audited(self, inner: Any, out: Out, on_disk: bool, early: str | None) -> Any:
        if inner is None or isinstance(inner, Out):
            return inner  # the system reports it as the node's own mistake
        try:
            hash(inner)
        except TypeError:
            return inner
        for effect in out.effects:
            if effect[0] == "log" and effect[2] and self.record(effect[1]):
                on_disk = True
            elif effect[0] == "send" and not on_disk and early is None and self.message(effect[2]):
                early = f"{message_label(effect[2])} to {effect[1]}"
        return Audited(inner, on_disk, early)

    def on_start(self, out: Out) -> Any:
        return self._audited(self.node.on_start(out), out, False, None)

    def on_message(self, state: Audited, src: str, msg: Any, out: Out) -> Any:
        inner = self.node.on_message(state.inner, src, msg, out)
        return self._audited(inner, out, state.on_disk, state.early)

    def on_timeout(self, state: Audited, timer: str, out: Out) -> Any:
        inner = self.node.on_timeout(state.inner, timer, out)
        return self._audited(inner, out, state.on_disk, state.early)

    def on_recover(self, log: tuple[Any, ...], out: Out) -> Any:
        inner = self.node.on_recover(log, out)
        return self._audited(inner, out, any(self.record(r) for r in log), None)

    def __repr__(self) -> str:
        return repr(self.node)


def write_ahead(name: str) -> Property:
    """The property that no audited node sent a message before forcing its record."""

    def holds(system: ActorSystem, state: SystemState) -> bool:
        for node in system.names:
            local = system.local(state, node)
            if isinstance(local, Audited) and local.early is not None:
                return False
        return True

    return Property.always(name, holds)


def own_state(local: Any) -> Any:
    """A node's state as its handlers see it, audited or not."""
    return local.inner if isinstance(local, Audited) else local


# -- plumbing shared by the checks of node classes -----------------------------------------------


def require_node_class(cls: Any, role: str) -> None:
    assert isinstance(cls, type) and issubclass(cls, Node), (
        f"pass your {role} class itself (a subclass of dtcourse.engine.actors.Node), not {cls!r}"
    )


def setup_with(default: Setup, settings: Mapping[str, Any]) -> Setup:
    """``default`` with the ``Setup`` fields that ``settings`` gives (other keys ignored)."""
    fields = {k: v for k, v in settings.items() if k in Setup.__dataclass_fields__}
    return Setup(**{**default.__dict__, **fields}) if fields else default


def run_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``random_runs`` options that ``settings`` gives."""
    return {k: settings[k] for k in ("seed", "runs") if k in settings}


def voters(setup: Setup, vote: str) -> tuple[str, ...]:
    """The participants of ``setup`` whose vote choice is ``vote``."""
    pairs = zip(names(setup.participants), setup.vote_list(), strict=True)
    return tuple(p for p, v in pairs if v == vote)
