"""Protocols as actors: nodes with pure handlers, and a system of them that is a model.

A node is a class whose handlers map an immutable, hashable state (and an event) to the
next state; every effect goes through an ``Out`` collector: send a message, write a log
record (forced to disk or lazy), set or cancel a timer, record a vote or a decision.
Because handlers are pure, the same node classes run in the simulator (one schedule, with
time) and in the model checker (every schedule): an ``ActorSystem`` is a
``dtcourse.engine.model`` model whose actions are the environment's choices: deliver, drop or
duplicate a message, fire a timer, crash or recover a node, split or heal the network.

Durability. A lazy log record sits in a volatile buffer until the node's next forced write
flushes the whole buffer (write-ahead logging). A crash discards the node's volatile state,
its timers and its buffer; ``on_recover`` rebuilds the node from the durable log alone.

Decisions. The atomic-commit properties need to know what each node decided, whatever its
state looks like, so a node announces a decision with ``out.decide("commit" | "abort")``
(and its vote with ``out.vote("yes" | "no")``). A decision is *made*, and can no longer be
taken back, once the node has acted on it: in the step that decides or any later one it
sent a message or forced its log. A decision that was only held in memory (or in a lazy
log record) when the node crashed was never acted on, so nobody can have seen it: the
crash erases it, and deciding differently after recovery is not a reversal. Deciding a
different value after a decision was made is a reversal (AC2), as is changing one's mind
without crashing.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from itertools import permutations, product
from typing import Any, NamedTuple

from dtcourse.engine._codec import DecodeError, Encoder, decode, type_path
from dtcourse.engine.model import Path, Property
from dtcourse.engine.network import Faults, Network, Timing, bipartitions, check_timing, cut_off
from dtcourse.engine.trace import Step, Trace, TraceBuilder, TraceFileError, message_label
from dtcourse.engine.trace_text import text_sequence
from dtcourse.errors import DTCourseError, ModelError

DECISIONS = ("commit", "abort")
VOTES = ("yes", "no")

# Effects collected by ``Out``, in the order the handler asked for them.
Effect = tuple[Any, ...]
Envelope = tuple[str, str, Any]  # (source, destination, message)

# How far the search for the trace leading to a failing handler may go.
_TRACE_SEARCH_STATES = 200_000
_TRACE_SEARCH_SECONDS = 10.0


class Out:
    """The effects a handler asks for; the engine applies them after the handler returns."""

    __slots__ = ("node", "effects", "_known")

    def __init__(self, node: str, known: frozenset[str]) -> None:
        self.node = node
        self.effects: list[Effect] = []
        self._known = known

    def send(self, dst: str, msg: Any) -> None:
        """Send ``msg`` (a frozen dataclass, say) to node ``dst``."""
        if dst not in self._known:
            raise ModelError(
                f"send to unknown node {dst!r} (known nodes: {', '.join(sorted(self._known))})"
            )
        _require_hashable(msg, "message")
        self.effects.append(("send", dst, msg))

    def broadcast(self, dsts: Iterable[str], msg: Any) -> None:
        """Send ``msg`` to each of ``dsts``, in name order."""
        for dst in sorted(dsts):
            self.send(dst, msg)

    def log(self, record: Any, force: bool = True) -> None:
        """Append ``record`` to the node's log: forced (on disk now) or lazy (buffered)."""
        _require_hashable(record, "log record")
        self.effects.append(("log", record, bool(force)))

    def set_timer(self, name: str, waiting_on: Iterable[str] = ()) -> None:
        """Set (or reset) timer ``name``; ``waiting_on`` names the nodes it waits for.

        Under a perfect failure detector the timer fires only once one of those nodes has
        crashed or is cut off; a timer waiting on nobody may fire at any moment.
        """
        if not isinstance(name, str):
            raise ModelError(f"timer names must be strings, got {name!r}")
        waited = tuple(sorted(set(waiting_on)))
        unknown = [n for n in waited if n not in self._known]
        if unknown:
            raise ModelError(f"timer {name!r} waits on unknown node(s) {unknown}")
        self.effects.append(("set", name, waited))

    def cancel_timer(self, name: str) -> None:
        self.effects.append(("cancel", name))

    def decide(self, value: str) -> None:
        """Announce this node's decision, ``"commit"`` or ``"abort"``."""
        if value not in DECISIONS:
            raise ModelError(f"decide() takes 'commit' or 'abort', got {value!r}")
        self.effects.append(("decide", value))

    def vote(self, value: str) -> None:
        """Announce this node's vote, ``"yes"`` or ``"no"`` (checked by AC3 and AC4)."""
        if value not in VOTES:
            raise ModelError(f"vote() takes 'yes' or 'no', got {value!r}")
        self.effects.append(("vote", value))


def _require_hashable(value: Any, what: str) -> None:
    try:
        hash(value)
    except TypeError:
        raise ModelError(
            f"{what} {value!r} is not hashable; use frozen dataclasses, tuples and frozensets"
        ) from None


class Node:
    """Base class for a protocol node. Override the handlers; keep them pure.

    Each handler returns the node's next state (hashable, never ``None``) and acts only
    through ``out``. ``on_recover`` receives the durable log as a tuple of records; by
    default a node forgets everything and starts afresh.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def on_start(self, out: Out) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define on_start(out)")

    def on_message(self, state: Any, src: str, msg: Any, out: Out) -> Any:
        return state

    def on_timeout(self, state: Any, timer: str, out: Out) -> Any:
        return state

    def on_recover(self, log: tuple[Any, ...], out: Out) -> Any:
        return self.on_start(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


# -- actions: the environment's choices ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    src: str
    dst: str
    msg: Any
    ref: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Deliver a copy of the message and keep it in flight, so it can arrive again."""

    src: str
    dst: str
    msg: Any
    ref: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Drop:
    src: str
    dst: str
    msg: Any
    ref: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Timeout:
    node: str
    timer: str


@dataclass(frozen=True, slots=True)
class Crash:
    node: str


@dataclass(frozen=True, slots=True)
class Recover:
    node: str


@dataclass(frozen=True, slots=True)
class Partition:
    groups: tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Heal:
    pass


ActorAction = Deliver | Duplicate | Drop | Timeout | Crash | Recover | Partition | Heal
_HEAL = Heal()
_tuple_new = tuple.__new__
_FAULT_ACTIONS = frozenset({Duplicate, Drop, Crash, Recover, Partition, Heal})


def encode_action(action: ActorAction, encoder: Encoder | None = None) -> dict[str, Any]:
    """An action in the JSON form a saved trace's steps use (``dtcourse.engine.trace``)."""
    enc = encoder or Encoder()
    match action:
        case Deliver(src, dst, msg, _) | Duplicate(src, dst, msg, _) | Drop(src, dst, msg, _):
            kind = type(action).__name__.lower()
            return {"kind": kind, "src": src, "dst": dst, "msg": enc(msg)}
        case Timeout(node, timer):
            return {"kind": "timeout", "node": node, "timer": timer}
        case Crash(node):
            return {"kind": "crash", "node": node}
        case Recover(node):
            return {"kind": "recover", "node": node}
        case Partition(groups):
            return {"kind": "partition", "groups": [list(g) for g in groups]}
        case Heal():
            return {"kind": "heal"}
    raise ModelError(f"{action!r} is not an action of an actor system")


def decode_action(data: Any) -> ActorAction:
    """The action a step's JSON form describes; ``TraceFileError`` when it cannot be."""
    kind = data.get("kind") if isinstance(data, dict) else None
    try:
        match kind:
            case "deliver" | "duplicate" | "drop":
                src, dst, msg = data["src"], data["dst"], decode(data["msg"])
                if kind == "deliver":
                    return Deliver(src, dst, msg)
                return Duplicate(src, dst, msg) if kind == "duplicate" else Drop(src, dst, msg)
            case "timeout":
                return Timeout(data["node"], data["timer"])
            case "crash":
                return Crash(data["node"])
            case "recover":
                return Recover(data["node"])
            case "partition":
                first, second = data["groups"]
                return Partition((tuple(first), tuple(second)))
            case "heal":
                return Heal()
    except DecodeError as error:
        raise TraceFileError(f"cannot replay the message of a {kind} step: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise TraceFileError(f"malformed {kind} action {data!r}: {error}") from None
    raise TraceFileError(
        f"unknown action {kind!r}; known actions: deliver, duplicate, drop, "
        "timeout, crash, recover, partition, heal"
    )


def format_action(action: Any) -> str:
    match action:
        case Deliver(src, dst, msg, _):
            return f"deliver {message_label(msg)} {src}->{dst}"
        case Duplicate(src, dst, msg, _):
            return f"duplicate {message_label(msg)} {src}->{dst}"
        case Drop(src, dst, msg, _):
            return f"drop {message_label(msg)} {src}->{dst}"
        case Timeout(node, timer):
            return f"timeout {node}:{timer}"
        case Crash(node):
            return f"crash {node}"
        case Recover(node):
            return f"recover {node}"
        case Partition(groups):
            return "partition " + " | ".join(",".join(g) for g in groups)
        case Heal():
            return "heal"
    return repr(action)


# -- the system state ------------------------------------------------------------------------


class NodeRecord(NamedTuple):
    """Everything the system knows about one node.

    ``local`` is the node's own state, ``None`` while it is down. ``decision`` is ``None``
    or ``(value, made)``: ``made`` says the node has acted on it (see the module docs).
    """

    local: Any
    timers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    durable: tuple[Any, ...] = ()
    buffered: tuple[Any, ...] = ()
    decision: tuple[str, bool] | None = None
    vote: str | None = None


class SystemState(NamedTuple):
    """One moment of an actor system.

    Node records and messages are interned by the system: ``nodes[i]`` is the number of
    node ``i``'s ``NodeRecord`` and ``network`` holds the numbers of the messages in flight
    (``ActorSystem.record`` and ``ActorSystem.envelopes`` decode them). Hashing and
    comparing a state then touches only small ints, and each handler runs once per
    distinct (record, event) pair. ``failed`` records that some failure happened (a crash,
    a lost message, a partition, a timeout waiting on a node), for AC4; ``reversed`` names
    the nodes that reversed a decision, for AC2.
    """

    nodes: tuple[int, ...]
    network: frozenset[int]
    sides: tuple[int, ...] | None = None
    crashes: int = 0
    partitions: int = 0
    failed: bool = False
    reversed: frozenset[str] = frozenset()


class Summary(NamedTuple):
    """A state's nodes as the atomic-commit properties see them (``ActorSystem.summary``):
    the decisions taken, whether every participant voted yes, the live participants that
    have not decided."""

    decided: frozenset[str]
    all_voted_yes: bool
    undecided_live: tuple[str, ...]


class _HandlerFailure(Exception):
    """A handler misbehaved; the public entry point adds the trace that led there."""

    def __init__(self, node: str, handler: str, event: tuple[Any, ...], reason: str) -> None:
        super().__init__(reason)
        self.node, self.handler, self.event, self.reason = node, handler, event, reason

    def describe(self) -> str:
        match self.event:
            case ("message", msg, src):
                what = f"message {message_label(msg)} from {src}"
            case ("timer", timer):
                what = f"timer {timer!r}"
            case (other, *_):
                what = str(other)
        return f"node {self.node!r}, {self.handler} on {what}: {self.reason}"

    @property
    def advice(self) -> str:
        return "; fix the handler"


class _NotWritten(_HandlerFailure):
    """A handler (or something it calls) still raises NotImplementedError: a stub."""

    def describe(self) -> str:
        return f"node {self.node!r}: {self.reason}"

    @property
    def advice(self) -> str:
        return ""


def _not_written(node: Node, handler: str, error: NotImplementedError) -> str:
    """``Participant2PC.on_start is not written yet (...)``, naming the stub that raised."""
    owner = f"{type(node).__name__}.{handler}"
    frames = traceback.extract_tb(error.__traceback__)
    raised_in = frames[-1].name if frames else handler
    if raised_in in (handler, "<lambda>"):
        what = f"{owner} is not written yet"
    else:
        what = f"{owner} calls {raised_in}, which is not written yet"
    return (
        f"{what} (it raises NotImplementedError): replace `raise NotImplementedError()` "
        "with your code"
    )


@dataclass(frozen=True)
class Applied:
    """What one handler run did to its node: the new record, the sends, the trace events."""

    record: NodeRecord
    sends: tuple[Envelope, ...]
    events: tuple[tuple[Any, ...], ...]
    reversal: bool
    timers_set: tuple[str, ...] = ()


class ActorSystem:
    """Nodes plus their environment: a ``dtcourse.engine.model`` model of every possible run.

    ``nodes`` come in lifeline order, coordinator first. ``participants`` are the nodes
    whose votes and decisions the atomic-commit properties judge (default: all but the
    first). ``symmetry`` lists groups of interchangeable nodes (identical up to their
    names); ``representative`` then maps a state to a canonical member of its orbit.
    Node names are treated as identifiers wherever they appear in states and messages, so
    keep sets of nodes as frozensets, not ordered tuples, for symmetry to hold.

    Handlers must be pure: the system remembers what each handler did for each (record,
    event) pair and does not run it twice. States are only meaningful to the system that
    made them.

    When a handler fails, the error carries the shortest run that led there, found by a
    search of at most ``trace_search_seconds`` (0: no search, for callers that keep their
    own trace, such as random runs of a large system).
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        *,
        network: Network | None = None,
        faults: Faults | None = None,
        timing: Timing | str = "async",
        participants: Sequence[str] | None = None,
        properties: Sequence[Property] = (),
        symmetry: Sequence[Sequence[str]] = (),
        name: str = "actors",
        trace_search_seconds: float = _TRACE_SEARCH_SECONDS,
    ) -> None:
        if not nodes:
            raise ModelError("an actor system needs at least one node")
        if isinstance(trace_search_seconds, bool) or not (
            isinstance(trace_search_seconds, int | float) and trace_search_seconds >= 0
        ):
            raise ModelError(
                f"trace_search_seconds must be a number >= 0, got {trace_search_seconds!r}"
            )
        self.trace_search_seconds = float(trace_search_seconds)
        names = []
        for node in nodes:
            node_name = getattr(node, "name", None)
            if not isinstance(node_name, str) or not node_name:
                raise ModelError(f"node {node!r} has no name: give each node a string .name")
            names.append(node_name)
        if len(set(names)) != len(names):
            raise ModelError(f"node names must be unique, got {names}")
        self.nodes = tuple(nodes)
        self.names: tuple[str, ...] = tuple(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.known = frozenset(names)
        self.network = network or Network()
        self.faults = faults or Faults()
        self.timing: Timing = check_timing(timing)
        self.participants = tuple(participants) if participants is not None else self.names[1:]
        for group in (self.participants, *symmetry):
            unknown = [n for n in group if n not in self.index]
            if unknown:
                raise ModelError(f"unknown node(s) {unknown}; nodes are {list(names)}")
        self._participant_ids = tuple(self.index[p] for p in self.participants)
        self._properties = tuple(properties)
        self.symmetry = tuple(tuple(g) for g in symmetry if len(g) > 1)
        self.name = name
        self._splits = bipartitions(len(names)) if self.faults.partitions else ()
        self._renamings = self._symmetry_maps()
        self._orders = tuple(
            tuple(self.index[m.get(n, n)] for n in self.names) for m in self._renamings
        )
        self._rename_cache: dict[tuple[Any, int], int] = {}
        # Interning tables and the memo of handler runs (see the class docs).
        self._records: list[NodeRecord] = []
        self._record_ids: dict[NodeRecord, int] = {}
        self._envs: list[Envelope] = []
        self._env_ids: dict[Envelope, int] = {}
        self._env_keys: list[tuple[str, str, str]] = []
        self._memo: dict[tuple[Any, ...], tuple[int, tuple[int, ...], bool]] = {}
        self._crashed: dict[int, int] = {}
        # Shared values of the one-pass successors (see ``successors``).
        self._ends: list[tuple[int, int]] = []
        self._env_actions: dict[int, tuple[Deliver, Drop, Duplicate]] = {}
        self._orders_of: dict[frozenset[int], tuple[int, ...]] = {}
        self._without: dict[tuple[frozenset[int], int], frozenset[int]] = {}
        self._timeouts: dict[tuple[int, str], Timeout] = {}
        self._unaddressed: dict[tuple[frozenset[int], int], frozenset[int]] = {}
        self._watched: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._summaries: dict[tuple[int, ...], Summary] = {}
        self._last_summary: tuple[Any, Any] = (None, None)
        self._crash_actions = tuple(Crash(n) for n in self.names)
        self._recover_actions = tuple(Recover(n) for n in self.names)
        self._partition_actions = tuple(Partition(self._groups(split)) for split in self._splits)
        #: How to build this system again (a function reference and its arguments), set
        #: by whoever built it; saved traces use it to rebuild the system exactly.
        self.origin: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return (
            f"ActorSystem({self.name}: {', '.join(self.names)}; {self.network.describe()} "
            f"network; {self.faults.describe()}; {self.timing} timing)"
        )

    # -- interning -----------------------------------------------------------------------------

    def _record_id(self, record: NodeRecord) -> int:
        ident = self._record_ids.get(record)
        if ident is None:
            ident = self._record_ids[record] = len(self._records)
            self._records.append(record)
        return ident

    def _env_id(self, env: Envelope) -> int:
        ident = self._env_ids.get(env)
        if ident is None:
            ident = self._env_ids[env] = len(self._envs)
            self._envs.append(env)
            self._ends.append((self.index[env[0]], self.index[env[1]]))
            msg = env[2]
            self._env_keys.append((env[0], env[1], f"{type(msg).__name__}:{msg!r}"))
        return ident

    def state_of(
        self,
        records: Sequence[NodeRecord],
        network: Iterable[Envelope] = (),
        **others: Any,
    ) -> SystemState:
        """A ``SystemState`` from plain records and envelopes (used by the simulator)."""
        return SystemState(
            tuple(self._record_id(r) for r in records),
            frozenset(self._env_id(e) for e in network),
            **others,
        )

    # -- views used by properties and reports ----------------------------------------------------

    def record(self, state: SystemState, node: str) -> NodeRecord:
        return self._records[state.nodes[self.index[node]]]

    def records(self, state: SystemState) -> list[NodeRecord]:
        records = self._records
        return [records[r] for r in state.nodes]

    def local(self, state: SystemState, node: str) -> Any:
        """Node ``node``'s own state, or ``None`` while it is down."""
        return self.record(state, node).local

    def is_up(self, state: SystemState, node: str) -> bool:
        return self.record(state, node).local is not None

    def decision(self, state: SystemState, node: str) -> str | None:
        entry = self.record(state, node).decision
        return None if entry is None else entry[0]

    def vote(self, state: SystemState, node: str) -> str | None:
        return self.record(state, node).vote

    def log(self, state: SystemState, node: str) -> tuple[Any, ...]:
        """Node ``node``'s durable log."""
        return self.record(state, node).durable

    def summary(self, state: SystemState) -> Summary:
        """What the atomic-commit properties read of a state's nodes, computed once per
        combination of node records (many states share one)."""
        nodes = state.nodes
        last = self._last_summary
        if last[0] is nodes:  # the properties of one state are judged one after another
            return last[1]
        found = self._summaries.get(nodes)
        if found is None:
            records = self._records
            recs = [records[r] for r in nodes]
            judged = [recs[i] for i in self._participant_ids]
            found = Summary(
                frozenset(r.decision[0] for r in recs if r.decision is not None),
                all(r.vote == "yes" for r in judged),
                tuple(
                    p
                    for p, r in zip(self.participants, judged, strict=True)
                    if r.local is not None and r.decision is None
                ),
            )
            self._summaries[nodes] = found
        self._last_summary = (nodes, found)
        return found

    def envelopes(self, state: SystemState) -> list[Envelope]:
        """The messages in flight in ``state`` as (source, destination, message), sorted."""
        return [self._envs[e] for e in sorted(state.network, key=self._env_keys.__getitem__)]

    def format_action(self, action: Any) -> str:
        return format_action(action)

    def is_fault(self, action: Any) -> bool:
        """Whether ``action`` is a failure or a repair (crash, recovery, loss, duplication,
        partition, heal): random runs take these only now and then."""
        return type(action) in _FAULT_ACTIONS

    def format_state(self, state: SystemState) -> str:
        return describe_state(self, state)

    # -- the model contract ------------------------------------------------------------------

    def properties(self) -> Sequence[Property]:
        return self._properties

    def init_states(self) -> list[SystemState]:
        try:
            return [self._start(record=False)[0]]
        except _HandlerFailure as failure:
            raise ModelError(
                f"{failure.describe()} (at the start, before any other event)"
            ) from None

    def actions(self, state: SystemState) -> list[ActorAction]:
        acts: list[ActorAction] = []
        records = self._records
        recs = [records[r] for r in state.nodes]
        sides = state.sides
        index = self.index
        loss, dup = self.network.loss, self.network.duplicate
        values = self._envs
        for ident in sorted(state.network, key=self._env_keys.__getitem__):
            src, dst, msg = values[ident]
            acts.append(Deliver(src, dst, msg, ident))
            if loss:
                acts.append(Drop(src, dst, msg, ident))
            if dup:
                j = index[dst]
                if recs[j].local is not None and not cut_off(sides, index[src], j):
                    acts.append(Duplicate(src, dst, msg, ident))
        perfect = self.timing == "perfect"
        names = self.names
        for i, rec in enumerate(recs):
            if not rec.timers or rec.local is None:
                continue
            for timer, waited in rec.timers:
                if perfect and waited and not self.suspects(recs, sides, i, waited):
                    continue
                acts.append(Timeout(names[i], timer))
        faults = self.faults
        if state.crashes < faults.crashes:
            acts.extend(Crash(names[i]) for i, r in enumerate(recs) if r.local is not None)
        if faults.recover:
            acts.extend(Recover(names[i]) for i, r in enumerate(recs) if r.local is None)
        if sides is None:
            if state.partitions < faults.partitions:
                acts.extend(Partition(self._groups(split)) for split in self._splits)
        else:
            acts.append(Heal())
        return acts

    def successors(self, state: SystemState) -> list[tuple[ActorAction, SystemState]]:
        """Every enabled action with its next state, in the order of ``actions``, in one
        pass: the checker's fast path (``actions`` and ``next_state`` stay the definition;
        a test compares them on every reachable state).

        Action values are made once per message, timer, node and split and shared; the
        messages in flight are sorted once per distinct network; next states are built
        directly as tuples.
        """
        try:
            return self._successors(state)
        except _HandlerFailure as failure:
            raise self._failure_error(failure, state) from None

    def _successors(self, state: SystemState) -> list[tuple[ActorAction, SystemState]]:
        nodes, network, sides, crashes, partitions, failed, reversed_ = state
        records = self._records
        recs = [records[r] for r in nodes]
        new = _tuple_new
        out: list[tuple[ActorAction, SystemState]] = []
        add = out.append
        if network:
            order = self._orders_of.get(network)
            if order is None:
                order = self._orders_of[network] = tuple(
                    sorted(network, key=self._env_keys.__getitem__)
                )
            loss, dup = self.network.loss, self.network.duplicate
            memo = self._memo
            names = self.names
            for ident in order:
                acts = self._env_actions.get(ident)
                if acts is None:
                    acts = self._actions_for(ident)
                src_i, j = self._ends[ident]
                without = self._without.get((network, ident))
                if without is None:
                    without = self._without[(network, ident)] = network - {ident}
                rid = nodes[j]
                reachable = recs[j].local is not None and (
                    sides is None or sides[src_i] == sides[j]
                )
                if reachable:
                    key = (j, rid, "message", ident)
                    hit = memo.get(key)
                    if hit is None:
                        hit = self._handle(j, rid, "message", ident)
                    new_rid, sends, reversal = hit
                    moved = nodes if new_rid == rid else (*nodes[:j], new_rid, *nodes[j + 1 :])
                    rev = reversed_ | {names[j]} if reversal else reversed_
                    after = without.union(sends) if sends else without
                    add((acts[0], new(SystemState, (moved, after, sides, crashes, partitions,
                                                    failed, rev))))  # fmt: skip
                else:
                    add((acts[0], new(SystemState, (nodes, without, sides, crashes, partitions,
                                                    True, reversed_))))  # fmt: skip
                if loss:
                    add((acts[1], new(SystemState, (nodes, without, sides, crashes, partitions,
                                                    True, reversed_))))  # fmt: skip
                if dup and reachable:
                    kept = network.union(sends) if sends else network
                    add((acts[2], new(SystemState, (moved, kept, sides, crashes, partitions,
                                                    failed, rev))))  # fmt: skip
        perfect = self.timing == "perfect"
        for i, rec in enumerate(recs):
            if not rec.timers or rec.local is None:
                continue
            for timer, waited in rec.timers:
                if perfect and waited and not self.suspects(recs, sides, i, waited):
                    continue
                action = self._timeouts.get((i, timer))
                if action is None:
                    action = self._timeouts[(i, timer)] = Timeout(self.names[i], timer)
                rid = nodes[i]
                hit = self._memo.get((i, rid, "timer", timer))
                if hit is None:
                    hit = self._handle(i, rid, "timer", timer)
                new_rid, sends, reversal = hit
                moved = nodes if new_rid == rid else (*nodes[:i], new_rid, *nodes[i + 1 :])
                rev = reversed_ | {self.names[i]} if reversal else reversed_
                after = network.union(sends) if sends else network
                add((action, new(SystemState, (moved, after, sides, crashes, partitions,
                                               failed or bool(waited), rev))))  # fmt: skip
        faults = self.faults
        if crashes < faults.crashes:
            for i, rec in enumerate(recs):
                if rec.local is not None:
                    add((self._crash_actions[i], self._crash(state, i)))
        if faults.recover:
            for i, rec in enumerate(recs):
                if rec.local is None:
                    rid = nodes[i]
                    hit = self._memo.get((i, rid, "recover", None))
                    if hit is None:
                        hit = self._handle(i, rid, "recover", None)
                    new_rid, sends, reversal = hit
                    moved = nodes if new_rid == rid else (*nodes[:i], new_rid, *nodes[i + 1 :])
                    rev = reversed_ | {self.names[i]} if reversal else reversed_
                    after = network.union(sends) if sends else network
                    add((self._recover_actions[i], new(SystemState, (moved, after, sides, crashes,
                                                       partitions, failed, rev))))  # fmt: skip
        if sides is None:
            if partitions < faults.partitions:
                for split, cut in zip(self._splits, self._partition_actions, strict=True):
                    add((cut, new(SystemState, (nodes, network, split, crashes,
                                                partitions + 1, True, reversed_))))  # fmt: skip
        else:
            add((_HEAL, new(SystemState, (nodes, network, None, crashes, partitions, failed,
                                          reversed_))))  # fmt: skip
        return out

    def _handle(self, i: int, rid: int, kind: str, arg: Any) -> tuple[int, tuple[int, ...], bool]:
        """Run node ``i``'s handler (record ``rid``) for one event and memoize what it did."""
        payload = self._envs[arg] if kind == "message" else arg
        applied = self.apply(i, self._records[rid], kind, payload, False)
        hit = (
            self._record_id(applied.record),
            tuple(self._env_id(env) for env in applied.sends),
            applied.reversal,
        )
        self._memo[(i, rid, kind, arg)] = hit
        return hit

    def _actions_for(self, ident: int) -> tuple[Deliver, Drop, Duplicate]:
        src, dst, msg = self._envs[ident]
        acts = (
            Deliver(src, dst, msg, ident),
            Drop(src, dst, msg, ident),
            Duplicate(src, dst, msg, ident),
        )
        self._env_actions[ident] = acts
        return acts

    def suspects(
        self,
        recs: Sequence[NodeRecord],
        sides: tuple[int, ...] | None,
        i: int,
        waited: tuple[str, ...],
    ) -> bool:
        """Whether a perfect failure detector at node ``i`` reports one of ``waited``."""
        watched = self._watched.get(waited)
        if watched is None:
            watched = self._watched[waited] = tuple(self.index[w] for w in waited)
        for k in watched:
            if recs[k].local is None or (sides is not None and sides[i] != sides[k]):
                return True
        return False

    def next_state(self, state: SystemState, action: ActorAction) -> SystemState | None:
        try:
            result = self._step(state, action, record=False)
        except _HandlerFailure as failure:
            raise self._failure_error(failure, state) from None
        return None if result is None else result[0]

    # -- one step ------------------------------------------------------------------------------

    def _start(self, record: bool) -> tuple[SystemState, tuple[tuple[Any, ...], ...]]:
        ids: list[int] = []
        sends: list[Envelope] = []
        events: list[tuple[Any, ...]] = []
        for i, node in enumerate(self.nodes):
            if record:
                events.append(("start", node.name))
            applied = self.apply(i, NodeRecord(None), "start", None, record)
            ids.append(self._record_id(applied.record))
            sends.extend(applied.sends)
            events.extend(applied.events)
        network = frozenset(self._env_id(env) for env in sends)
        return SystemState(tuple(ids), network), tuple(events)

    def _step(
        self, state: SystemState, action: ActorAction, record: bool
    ) -> tuple[SystemState, tuple[tuple[Any, ...], ...]] | None:
        """Apply one action: the next state and, when ``record`` is set, its trace events."""
        head: tuple[Any, ...]
        kind = type(action)
        nodes = state.nodes
        records = self._records
        if kind is Deliver or kind is Duplicate:
            ident = self._envelope_id(action)  # type: ignore[arg-type]
            network = state.network
            if ident is None or ident not in network:
                return None
            src, dst, msg = self._envs[ident]
            keep = kind is Duplicate
            j = self.index[dst]
            down = records[nodes[j]].local is None
            if down or cut_off(state.sides, self.index[src], j):
                if keep:
                    return None
                lost = state._replace(network=network - {ident}, failed=True)
                reason = "receiver down" if down else "partitioned"
                return lost, ((("lost", src, dst, msg, reason),) if record else ())
            head = ("duplicate" if keep else "deliver", src, dst, msg)
            if not keep:
                network = network - {ident}
            return self._run(state, network, j, "message", ident, record, head, state.failed)
        if kind is Timeout:
            i = self.index[action.node]  # type: ignore[union-attr]
            rec = records[nodes[i]]
            timer = action.timer  # type: ignore[union-attr]
            waited = next((w for name, w in rec.timers if name == timer), None)
            if rec.local is None or waited is None:
                return None
            if (
                self.timing == "perfect"
                and waited
                and not self.suspects([records[r] for r in nodes], state.sides, i, waited)
            ):
                return None
            head = ("timeout", action.node, timer)  # type: ignore[union-attr]
            failed = state.failed or bool(waited)
            return self._run(state, state.network, i, "timer", timer, record, head, failed)
        if kind is Drop:
            ident = self._envelope_id(action)  # type: ignore[arg-type]
            if not self.network.loss or ident is None or ident not in state.network:
                return None
            dropped = state._replace(network=state.network - {ident}, failed=True)
            return dropped, ((("drop", *self._envs[ident]),) if record else ())
        if kind is Crash:
            i = self.index[action.node]  # type: ignore[union-attr]
            if records[nodes[i]].local is None or state.crashes >= self.faults.crashes:
                return None
            return self._crash(state, i), ((("crash", action.node),) if record else ())  # type: ignore[union-attr]
        if kind is Recover:
            i = self.index[action.node]  # type: ignore[union-attr]
            if not self.faults.recover or records[nodes[i]].local is not None:
                return None
            head = ("recover", action.node)  # type: ignore[union-attr]
            return self._run(state, state.network, i, "recover", None, record, head, state.failed)
        if kind is Partition:
            if state.sides is not None or state.partitions >= self.faults.partitions:
                return None
            groups = action.groups  # type: ignore[union-attr]
            second = set(groups[1])
            split = state._replace(
                sides=tuple(1 if n in second else 0 for n in self.names),
                partitions=state.partitions + 1,
                failed=True,
            )
            return split, ((("partition", groups),) if record else ())
        if kind is Heal:
            if state.sides is None:
                return None
            return state._replace(sides=None), ((("heal",),) if record else ())
        raise ModelError(f"{action!r} is not an action of an actor system")

    def _envelope_id(self, action: Deliver | Duplicate | Drop) -> int | None:
        """The in-flight number of the message an action names (None if never sent)."""
        if action.ref >= 0:
            return action.ref
        return self._env_ids.get((action.src, action.dst, action.msg))

    def _run(
        self,
        state: SystemState,
        network: frozenset[int],
        i: int,
        kind: str,
        arg: Any,
        record: bool,
        head: tuple[Any, ...],
        failed: bool,
    ) -> tuple[SystemState, tuple[tuple[Any, ...], ...]]:
        """Run node ``i``'s handler for one event (memoized unless recording a trace)."""
        rid = state.nodes[i]
        key = (i, rid, kind, arg)
        hit = None if record else self._memo.get(key)
        events: tuple[tuple[Any, ...], ...] = ()
        if hit is None:
            payload = self._envs[arg] if kind == "message" else arg
            applied = self.apply(i, self._records[rid], kind, payload, record)
            hit = (
                self._record_id(applied.record),
                tuple(self._env_id(env) for env in applied.sends),
                applied.reversal,
            )
            if record:
                events = (head, *applied.events)
            else:
                self._memo[key] = hit
        new_rid, sends, reversal = hit
        nodes = state.nodes
        if new_rid != rid:
            nodes = (*nodes[:i], new_rid, *nodes[i + 1 :])
        if sends:
            network = network.union(sends)
        reversed_ = state.reversed | {self.names[i]} if reversal else state.reversed
        return (
            SystemState(
                nodes,
                network,
                state.sides,
                state.crashes,
                state.partitions,
                failed,
                reversed_,
            ),
            events,
        )

    def crashed(self, record: NodeRecord) -> NodeRecord:
        """A node's record after a crash: volatile state, timers, lazy records, unmade
        decision gone; durable log, made decision and vote kept."""
        decision = record.decision if record.decision is not None and record.decision[1] else None
        return NodeRecord(None, (), record.durable, (), decision, record.vote)

    def _crash(self, state: SystemState, i: int) -> SystemState:
        nodes, network, sides, crashes, partitions, _, reversed_ = state
        rid = nodes[i]
        new_rid = self._crashed.get(rid)
        if new_rid is None:
            new_rid = self._crashed[rid] = self._record_id(self.crashed(self._records[rid]))
        if not self.faults.recover and network:
            # Crash-stop: nobody will ever receive what is addressed to this node.
            kept = self._unaddressed.get((network, i))
            if kept is None:
                ends = self._ends
                kept = frozenset(e for e in network if ends[e][1] != i)
                self._unaddressed[(network, i)] = kept
            network = kept
        moved = (*nodes[:i], new_rid, *nodes[i + 1 :])
        return _tuple_new(
            SystemState, (moved, network, sides, crashes + 1, partitions, True, reversed_)
        )

    def apply(self, i: int, rec: NodeRecord, kind: str, payload: Any, record: bool) -> Applied:
        """Run node ``i``'s handler for one event on its record and apply the effects.

        ``kind`` is ``"start"``, ``"message"`` (payload: the envelope), ``"timer"``
        (payload: the timer's name) or ``"recover"``. Raises ``_HandlerFailure`` when the
        handler misbehaves.
        """
        node = self.nodes[i]
        name = self.names[i]
        out = Out(name, self.known)
        timers = dict(rec.timers)
        event: tuple[Any, ...]
        if kind == "message":
            src, _, msg = payload
            handler, event = "on_message", ("message", msg, src)
            call: Callable[[], Any] = lambda: node.on_message(rec.local, src, msg, out)  # noqa: E731
        elif kind == "timer":
            handler, event = "on_timeout", ("timer", payload)
            timers.pop(payload, None)
            call = lambda: node.on_timeout(rec.local, payload, out)  # noqa: E731
        elif kind == "recover":
            handler, event = "on_recover", ("recovery",)
            call = lambda: node.on_recover(rec.durable, out)  # noqa: E731
        else:
            handler, event = "on_start", ("start",)
            call = lambda: node.on_start(out)  # noqa: E731
        try:
            local = call()
        except DTCourseError as error:
            raise _HandlerFailure(name, handler, event, str(error)) from error
        except NotImplementedError as error:
            raise _NotWritten(name, handler, event, _not_written(node, handler, error)) from error
        except Exception as error:
            raise _HandlerFailure(
                name, handler, event, f"raised {type(error).__name__}: {error}"
            ) from error
        if local is None:
            raise _HandlerFailure(
                name, handler, event, "returned None; return the node's next state"
            )
        if isinstance(local, Out):
            raise _HandlerFailure(
                name, handler, event, "returned the Out collector; return the node's next state"
            )
        try:
            hash(local)
        except TypeError:
            raise _HandlerFailure(
                name,
                handler,
                event,
                f"returned a state that is not hashable ({type(local).__name__}: {local!r}); "
                "use a frozen dataclass with tuple and frozenset fields",
            ) from None
        durable, buffered = rec.durable, rec.buffered
        decision, vote = rec.decision, rec.vote
        sends: list[Envelope] = []
        events: list[tuple[Any, ...]] = []
        acted = False
        decided: list[str] = []
        timers_set: list[str] = []
        for effect in out.effects:
            what = effect[0]
            if what == "send":
                sends.append((name, effect[1], effect[2]))
                if record:
                    events.append(("send", name, effect[1], effect[2]))
                acted = True
            elif what == "log":
                forced = effect[2]
                if forced:
                    durable = (*durable, *buffered, effect[1])
                    buffered = ()
                    acted = True
                else:
                    buffered = (*buffered, effect[1])
                if record:
                    events.append(("log", name, effect[1], forced))
            elif what == "set":
                timers[effect[1]] = effect[2]
                timers_set.append(effect[1])
            elif what == "cancel":
                timers.pop(effect[1], None)
            elif what == "decide":
                decided.append(effect[1])
                if record:
                    events.append(("decide", name, effect[1]))
            else:  # vote
                vote = "no" if vote == "no" else effect[1]
        if decision is not None and acted and not decision[1]:
            decision = (decision[0], True)
        reversal = False
        for value in decided:
            if decision is None:
                decision = (value, acted)
            elif decision[0] != value:
                reversal = True
        new = NodeRecord(local, tuple(sorted(timers.items())), durable, buffered, decision, vote)
        return Applied(new, tuple(sends), tuple(events), reversal, tuple(timers_set))

    def _groups(self, split: tuple[int, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        first = tuple(n for n, s in zip(self.names, split, strict=True) if s == 0)
        second = tuple(n for n, s in zip(self.names, split, strict=True) if s == 1)
        return first, second

    # -- errors --------------------------------------------------------------------------------

    def _failure_error(self, failure: _HandlerFailure, state: SystemState) -> ModelError:
        path = self.path_to(state) if self.trace_search_seconds > 0 else None
        if path is None and self.trace_search_seconds == 0:
            where = "(the run that led here was not searched for)"
        elif path is None:
            where = "(the run that led here was not found within the search limits)"
        else:
            trace = self.trace_of(path)
            where = "after this run:\n" + text_sequence(trace)
        error = ModelError(f"{failure.describe()}{failure.advice}. {where}")
        error.path = path  # type: ignore[attr-defined]
        return error

    def path_to(self, target: SystemState) -> Path | None:
        """The shortest run from the initial state to ``target`` (bounded search)."""
        try:
            init = self._start(record=False)[0]
        except _HandlerFailure:
            return None
        parents: dict[SystemState, tuple[SystemState, Any] | None] = {init: None}
        queue = deque([init])
        deadline = time.perf_counter() + self.trace_search_seconds
        found = target == init
        while queue and not found:
            if len(parents) > _TRACE_SEARCH_STATES or time.perf_counter() > deadline:
                return None
            state = queue.popleft()
            for action in self.actions(state):
                try:
                    result = self._step(state, action, record=False)
                except _HandlerFailure:
                    continue
                if result is None or result[0] in parents:
                    continue
                nxt = result[0]
                parents[nxt] = (state, action)
                if nxt == target:
                    found = True
                    break
                queue.append(nxt)
        if not found:
            return None
        steps = []
        cursor = target
        while (entry := parents[cursor]) is not None:
            steps.append((entry[1], cursor))
            cursor = entry[0]
        steps.reverse()
        return Path(init, tuple(steps))

    # -- traces --------------------------------------------------------------------------------

    def trace_of(self, path: Path, about: dict[str, Any] | None = None) -> Trace:
        """A checker path as a ``Trace`` (time = step number), for sequence diagrams and
        saving: with its steps, the verdict of every ``always`` and ``sometimes`` property
        after each, this system's description and ``about`` (what the run shows)."""
        builder = TraceBuilder(self.names)
        encoder = Encoder()
        states = path.states
        steps = [Step(None, "start", 0, 0.0, self.verdicts(states[0]))]
        try:
            builder.add(0.0, self._start(record=True)[1])
            for number, action in enumerate(path.actions, start=1):
                result = self._step(states[number - 1], action, record=True)
                if result is None:
                    raise ModelError(
                        f"step {number} of the path ({format_action(action)}) is not enabled "
                        "in the state before it; was the path made by another system?"
                    )
                steps.append(
                    Step(
                        encode_action(action, encoder),
                        format_action(action),
                        len(builder.events),
                        float(number),
                        self.verdicts(states[number]),
                    )
                )
                builder.add(float(number), result[1])
        except _HandlerFailure as failure:
            raise ModelError(failure.describe()) from None
        return builder.trace_with(steps, self.describe(), {"source": "checker", **(about or {})})

    def verdicts(self, state: SystemState) -> tuple[tuple[str, bool], ...]:
        """Whether each ``always`` and ``sometimes`` property holds in ``state``."""
        return tuple(
            (p.name, bool(p.condition(self, state)))
            for p in self._properties
            if p.kind != "blocking" and p.condition is not None
        )

    def describe(self) -> dict[str, Any]:
        """This system as JSON-ready data, enough to build it again from the classes and
        functions it names (``dtcourse.engine.replay.rebuild``)."""
        encoder = Encoder()

        def ref(function: Any) -> str | None:
            return None if function is None else type_path(function)

        return {
            "name": self.name,
            "origin": self.origin,
            "nodes": [
                {
                    "name": name,
                    "class": type_path(type(node))
                    or f"{type(node).__module__}:{type(node).__qualname__}",
                    "settings": {
                        k: encoder(v)
                        for k, v in getattr(node, "__dict__", {}).items()
                        if k != "name"
                    },
                }
                for name, node in zip(self.names, self.nodes, strict=True)
            ],
            "participants": list(self.participants),
            "network": {"loss": self.network.loss, "duplicate": self.network.duplicate},
            "faults": {
                "crashes": self.faults.crashes,
                "recover": self.faults.recover,
                "partitions": self.faults.partitions,
            },
            "timing": self.timing,
            "symmetry": [list(group) for group in self.symmetry],
            "properties": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "condition": ref(p.condition),
                    "pending": ref(p.pending),
                    "resolved": ref(p.resolved),
                    "allowed": ref(p.allowed),
                }
                for p in self._properties
            ],
        }

    # -- symmetry ------------------------------------------------------------------------------

    def _symmetry_maps(self) -> tuple[dict[str, str], ...]:
        if not self.symmetry:
            return ()
        per_group = [
            [dict(zip(group, perm, strict=True)) for perm in permutations(group)]
            for group in self.symmetry
        ]
        maps = []
        for combo in product(*per_group):
            mapping: dict[str, str] = {}
            for part in combo:
                mapping.update(part)
            if any(k != v for k, v in mapping.items()):
                maps.append(mapping)
        return tuple(maps)

    def representative(self, state: SystemState) -> SystemState:
        """The canonical member of ``state``'s orbit under renaming interchangeable nodes.

        Every renaming of the state is computed and the one with the smallest hash wins
        (ties broken by ``describe_state``), so all members of an orbit map to
        the same state.
        """
        if not self._renamings:
            return state
        best = state
        best_hash = hash(state)
        ties: list[SystemState] = []
        rename_state = self._rename_state
        for number, (mapping, order) in enumerate(zip(self._renamings, self._orders, strict=True)):
            candidate = rename_state(state, mapping, order, number)
            h = hash(candidate)
            if h < best_hash:
                best, best_hash, ties = candidate, h, []
            elif h == best_hash and candidate != best:
                ties.append(candidate)
        if ties:
            return min([best, *ties], key=lambda s: describe_state(self, s))
        return best

    def _rename_state(
        self, state: SystemState, mapping: dict[str, str], order: Sequence[int], tag: Any
    ) -> SystemState:
        """``state`` with names swapped by ``mapping``; ``order[i]`` is node ``i``'s new
        position. Renamed records and envelopes are cached under ``tag``, which must
        identify ``mapping``."""
        cache = self._rename_cache
        nodes: list[int] = [0] * len(order)
        for i, rid in enumerate(state.nodes):
            key = (tag, rid)
            renamed = cache.get(key)
            if renamed is None:
                renamed = cache[key] = self._rename_record(rid, mapping)
            nodes[order[i]] = renamed
        network = []
        for e in state.network:
            key = (tag, -1 - e)
            renamed = cache.get(key)
            if renamed is None:
                renamed = cache[key] = self._env_id(rename_value(self._envs[e], mapping))
            network.append(renamed)
        sides = state.sides
        if sides is not None:
            moved = [0] * len(order)
            for i, side in enumerate(sides):
                moved[order[i]] = side
            sides = tuple(moved) if moved[0] == 0 else tuple(1 - s for s in moved)
        reversed_ = state.reversed
        if reversed_:
            reversed_ = frozenset(mapping.get(n, n) for n in reversed_)
        return SystemState(
            tuple(nodes),
            frozenset(network),
            sides,
            state.crashes,
            state.partitions,
            state.failed,
            reversed_,
        )

    def _rename_record(self, rid: int, mapping: dict[str, str]) -> int:
        rec = self._records[rid]
        renamed = NodeRecord(
            rename_value(rec.local, mapping),
            tuple(sorted((t, tuple(sorted(rename_value(w, mapping)))) for t, w in rec.timers)),
            rename_value(rec.durable, mapping),
            rename_value(rec.buffered, mapping),
            rec.decision,
            rec.vote,
        )
        return self._record_id(renamed)

    def rename(self, state: SystemState, mapping: dict[str, str]) -> SystemState:
        """``state`` with node names swapped by ``mapping`` (a permutation of names)."""
        order = [self.index[mapping.get(n, n)] for n in self.names]
        return self._rename_state(state, mapping, order, tuple(sorted(mapping.items())))


def rename_value(value: Any, mapping: dict[str, str]) -> Any:
    """Rename node names inside a value made of strings, tuples, frozensets, dataclasses."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, tuple):
        renamed = tuple(rename_value(v, mapping) for v in value)
        return type(value)(*renamed) if hasattr(value, "_fields") else renamed
    if isinstance(value, frozenset):
        return frozenset(rename_value(v, mapping) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in fields(value):
            old = getattr(value, f.name)
            new = rename_value(old, mapping)
            if new is not old and new != old:
                changes[f.name] = new
        return replace(value, **changes) if changes else value
    return value


def describe_state(system: ActorSystem, state: SystemState) -> str:
    """A compact one-line description of a system state for traces and reports."""
    parts = []
    for name, rec in zip(system.names, system.records(state), strict=True):
        text = "DOWN" if rec.local is None else repr(rec.local)
        if rec.decision is not None:
            text += f" decided={rec.decision[0]}"
        parts.append(f"{name}: {text}")
    flight = [f"{s}->{d}:{message_label(m)}" for s, d, m in system.envelopes(state)]
    parts.append(f"in flight: [{', '.join(flight)}]")
    if state.sides is not None:
        parts.append("partitioned")
    return "; ".join(parts)
