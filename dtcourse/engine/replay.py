"""Replaying a saved run: does it still happen with these nodes?

A saved trace (``dtcourse.engine.trace``) keeps the environment's choices step by step
and the events each caused. ``replay`` takes the same choices again with the nodes it is
given (the student's current classes, the reference, or by default the classes the trace
names) and compares, step by step, what the handlers do now with what they did then. The
first step that cannot be taken (its message was never sent, its timer is not set) or
that causes different events is the *divergence*: after a fix, a counterexample that
diverges is one the fixed code no longer produces. Each state along the way is judged by
the system's ``always`` and ``sometimes`` properties, so a replay also says where a
property started to fail.

The replay follows what physically happened, not a fault budget: a simulated run may
crash more nodes than a checker's budget allows, and replays all the same. Messages in
flight are a multiset; a ``duplicate`` step delivers a copy and leaves the message in
flight; a delivery to a node that is down or cut off is lost.

A visible check that fails with a run to show raises ``Counterexample`` (an
``AssertionError``), which ``dtcourse.check`` saves under the workspace with the line
that replays it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dtcourse.engine._codec import DecodeError, decode, resolve
from dtcourse.engine.actors import (
    ActorSystem,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Heal,
    Node,
    NodeRecord,
    Partition,
    Recover,
    Timeout,
    _HandlerFailure,
    decode_action,
)
from dtcourse.engine.model import Property
from dtcourse.engine.network import Faults, Network, cut_off
from dtcourse.engine.trace import Event, Step, Trace, TraceBuilder, TraceFileError, message_label
from dtcourse.engine.trace_text import text_sequence

__all__ = ["Counterexample", "Divergence", "ReplayResult", "rebuild", "replay"]

NodesGiven = ActorSystem | Sequence[Node] | Mapping[str, Node] | None


class Counterexample(AssertionError):
    """A failed check together with the run that shows the failure.

    Raised by visible checks; ``dtcourse.check`` saves ``trace`` so the student can
    replay it after a fix.
    """

    def __init__(self, message: str, trace: Trace) -> None:
        super().__init__(message)
        self.trace = trace


@dataclass(frozen=True)
class Divergence:
    """The first step of a replay that does not go as it went when the trace was saved."""

    step: int
    label: str
    reason: str
    expected: tuple[str, ...] = ()
    got: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [f"diverges at step {self.step} ({self.label}): {self.reason}"]
        if self.expected or self.got:
            lines.append("  saved run:  " + ("; ".join(self.expected) or "(nothing)"))
            lines.append("  replay now: " + ("; ".join(self.got) or "(nothing)"))
        return "\n".join(lines)


@dataclass(frozen=True)
class ReplayResult:
    """How a replay went: the run as it happens now (``trace``, with each step's
    verdicts), the run as saved, and the divergence if there is one."""

    trace: Trace
    saved: Trace
    divergence: Divergence | None
    notes: tuple[str, ...] = field(default=())

    @property
    def matches(self) -> bool:
        return self.divergence is None

    @property
    def steps(self) -> int:
        """Steps replayed (up to and including a diverging one), the start included."""
        return len(self.trace.steps)

    def violated(self) -> dict[str, int]:
        """Each ``always`` property that fails along the replay, with the first step where
        it does."""
        kinds = _kinds(self.trace)
        first: dict[str, int] = {}
        for number, step in enumerate(self.trace.steps):
            for name, holds in step.verdicts:
                if not holds and kinds.get(name) == "always" and name not in first:
                    first[name] = number
        return first

    def verdict_lines(self) -> list[str]:
        kinds = _kinds(self.trace)
        lines = []
        for number, step in enumerate(self.trace.steps):
            failing = [n for n, ok in step.verdicts if not ok and kinds.get(n) == "always"]
            reached = [n for n, ok in step.verdicts if ok and kinds.get(n) == "sometimes"]
            if not step.verdicts:
                verdict = "(no properties to judge)"
            elif failing:
                verdict = "VIOLATES " + ", ".join(failing)
            else:
                verdict = "all invariants hold"
            if reached:
                verdict += f"; reaches {', '.join(reached)}"
            lines.append(f"  {number:3}. {step.label:<40} {verdict}")
        return lines

    def summary(self) -> str:
        saved_steps = len(self.saved.steps)
        if self.divergence is None:
            head = f"replay MATCHES the saved run: all {saved_steps} steps happen as saved"
        else:
            head = "replay " + self.divergence.describe()
        lines = [head, *self.notes, "verdict after each step:", *self.verdict_lines()]
        violated = self.violated()
        if violated:
            lines.append(
                "violated: "
                + ", ".join(f"{name} (from step {step})" for name, step in violated.items())
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())

    def to_dict(self) -> dict[str, Any]:
        return {
            "matches": self.matches,
            "steps": self.steps,
            "saved_steps": len(self.saved.steps),
            "divergence": None
            if self.divergence is None
            else {
                "step": self.divergence.step,
                "label": self.divergence.label,
                "reason": self.divergence.reason,
                "expected": list(self.divergence.expected),
                "got": list(self.divergence.got),
            },
            "verdicts": [
                {"step": n, "label": s.label, "verdicts": dict(s.verdicts)}
                for n, s in enumerate(self.trace.steps)
            ],
            "violated": self.violated(),
            "notes": list(self.notes),
        }


def _kinds(trace: Trace) -> dict[str, str]:
    system = trace.system or {}
    return {p.get("name"): p.get("kind") for p in system.get("properties", ())}


# -- rebuilding the system -----------------------------------------------------------------


def rebuild(trace: Trace, nodes: NodesGiven = None) -> tuple[ActorSystem, tuple[str, ...]]:
    """The actor system to replay ``trace`` on, and notes on what could not be rebuilt.

    ``nodes``: None rebuilds the system the trace names (its ``origin`` when saved, else
    each node's class and settings); an ``ActorSystem`` is used as it is; a list of nodes
    replaces all of them; a mapping from node names to nodes replaces those nodes only.
    Raises ``TraceFileError`` when a class or function cannot be found.
    """
    if isinstance(nodes, ActorSystem):
        _same_names(trace, nodes.names)
        return nodes, ()
    description = trace.system
    if description is None:
        if nodes is None or isinstance(nodes, Mapping):
            raise TraceFileError(
                "the trace does not describe the system that ran it; pass the nodes to "
                "replay it on: replay(trace, [node, ...])"
            )
        _same_names(trace, [n.name for n in nodes])
        return ActorSystem(list(nodes)), ("no properties: the trace names none",)
    notes: list[str] = []
    base: ActorSystem | None = None
    origin = description.get("origin")
    if origin and not (nodes is not None and not isinstance(nodes, Mapping)):
        base = _from_origin(origin)
    if base is not None and nodes is None:
        _same_names(trace, base.names)
        return base, ()
    if isinstance(nodes, Mapping):
        replaced = dict(nodes)
        unknown = sorted(set(replaced) - set(trace.nodes))
        if unknown:
            raise TraceFileError(
                f"no node named {', '.join(unknown)} in the trace; its nodes are "
                f"{', '.join(trace.nodes)}"
            )
        if base is not None:
            made = [
                replaced.get(name, node) for name, node in zip(base.names, base.nodes, strict=True)
            ]
        else:
            made = [
                replaced[entry["name"]] if entry["name"] in replaced else _node(entry)
                for entry in description["nodes"]
            ]
    elif nodes is not None:
        made = list(nodes)
    else:
        made = [_node(entry) for entry in description["nodes"]]
    _same_names(trace, [getattr(n, "name", None) for n in made])
    if base is not None:
        properties: Sequence[Property] = base.properties()
    else:
        properties, skipped = _properties(description.get("properties", ()))
        notes.extend(skipped)
    try:
        faults = description.get("faults") or {}
        network = description.get("network") or {}
        system = ActorSystem(
            made,
            network=Network(**network),
            faults=Faults(**faults),
            timing=description.get("timing", "async"),
            participants=description.get("participants"),
            properties=properties,
            name=str(description.get("name", "actors")),
            trace_search_seconds=0,
        )
    except TypeError as error:
        raise TraceFileError(f"the trace's system description is damaged: {error}") from None
    return system, tuple(notes)


def _same_names(trace: Trace, names: Sequence[Any]) -> None:
    if tuple(names) != trace.nodes:
        raise TraceFileError(
            f"the trace ran on nodes {', '.join(trace.nodes)}, but the nodes given are "
            f"{', '.join(map(str, names))}; give nodes with the same names, in that order"
        )


def _from_origin(origin: Mapping[str, Any]) -> ActorSystem:
    try:
        function = resolve(origin["function"])
        args = decode(origin.get("args", []))
        kwargs = decode(origin.get("kwargs", {"$dict": []}))
    except DecodeError as error:
        raise TraceFileError(f"cannot rebuild the system that ran the trace: {error}") from None
    except (KeyError, TypeError) as error:
        raise TraceFileError(f"the trace's origin is damaged: {error}") from None
    system = function(*args, **kwargs)
    if not isinstance(system, ActorSystem):
        raise TraceFileError(f"{origin['function']} did not build an actor system")
    system.origin = dict(origin)
    return system


def _node(entry: Mapping[str, Any]) -> Node:
    name, path = entry.get("name"), entry.get("class", "?")
    try:
        cls = resolve(path)
    except DecodeError as error:
        hint = (
            " (it was defined in a notebook: replay the trace in that notebook, or pass the "
            "nodes to replay on)"
            if str(path).startswith("__main__:")
            else ""
        )
        raise TraceFileError(
            f"the node class {path} of node {name} cannot be found: {error}{hint}"
        ) from None
    if not isinstance(cls, type) or not issubclass(cls, Node):
        raise TraceFileError(f"{path} (node {name}) is not a Node class")
    try:
        settings = {key: decode(value) for key, value in entry.get("settings", {}).items()}
    except DecodeError as error:
        raise TraceFileError(f"cannot rebuild node {name}: {error}") from None
    node = cls.__new__(cls)
    node.__dict__.update(settings, name=name)
    return node


def _properties(entries: Sequence[Mapping[str, Any]]) -> tuple[list[Property], list[str]]:
    properties, skipped = [], []
    for entry in entries:
        try:
            functions = {
                key: resolve(entry[key])
                for key in ("condition", "pending", "resolved", "allowed")
                if entry.get(key)
            }
            properties.append(Property(entry["name"], entry["kind"], **functions))
        except (DecodeError, KeyError, TypeError):
            skipped.append(
                f"property {entry.get('name')!r} is not judged: its functions cannot be "
                "found (replay on a system that has it)"
            )
    return properties, skipped


# -- the replay itself -----------------------------------------------------------------------


class _Diverged(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Replayer:
    """The physical state of a run: node records, messages in flight, the partition."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        count = len(system.names)
        self.records: list[NodeRecord] = [NodeRecord(None)] * count
        self.network: Counter[tuple[str, str, Any]] = Counter()
        self.sides: tuple[int, ...] | None = None
        self.crashes = 0
        self.partitions = 0
        self.failed = False
        self.reversed: set[str] = set()

    def start(self) -> list[tuple[Any, ...]]:
        raw: list[tuple[Any, ...]] = []
        for i, name in enumerate(self.system.names):
            raw.append(("start", name))
            raw.extend(self._run(i, "start", None))
        return raw

    def _run(self, i: int, kind: str, payload: Any) -> tuple[tuple[Any, ...], ...]:
        system = self.system
        try:
            applied = system.apply(i, self.records[i], kind, payload, record=True)
        except _HandlerFailure as failure:
            raise _Diverged(f"the handler failed: {failure.describe()}") from None
        self.records[i] = applied.record
        for env in applied.sends:
            self.network[env] += 1
        if applied.reversal:
            self.reversed.add(system.names[i])
        return applied.events

    def _index(self, node: str) -> int:
        try:
            return self.system.index[node]
        except KeyError:
            raise _Diverged(f"there is no node {node!r}") from None

    def _in_flight(self, src: str, dst: str, msg: Any) -> tuple[str, str, Any]:
        env = (src, dst, msg)
        if self.network[env] <= 0:
            raise _Diverged(
                f"{message_label(msg)} from {src} to {dst} is not in flight: this run "
                "never sent it (or it was already received)"
            )
        return env

    def take(self, action: Any) -> list[tuple[Any, ...]]:
        system = self.system
        match action:
            case Deliver(src, dst, msg) | Duplicate(src, dst, msg):
                env = self._in_flight(src, dst, msg)
                keep = isinstance(action, Duplicate)
                if not keep:
                    self.network[env] -= 1
                j = self._index(dst)
                down = self.records[j].local is None
                if down or cut_off(self.sides, self._index(src), j):
                    self.failed = True
                    reason = "receiver down" if down else "partitioned"
                    return [("lost", src, dst, msg, reason)]
                head = ("duplicate" if keep else "deliver", src, dst, msg)
                return [head, *self._run(j, "message", env)]
            case Drop(src, dst, msg):
                env = self._in_flight(src, dst, msg)
                self.network[env] -= 1
                self.failed = True
                return [("drop", src, dst, msg)]
            case Timeout(node, timer):
                i = self._index(node)
                rec = self.records[i]
                if rec.local is None:
                    raise _Diverged(f"{node} is down, so its timer {timer!r} cannot fire")
                waited = dict(rec.timers).get(timer)
                if waited is None:
                    raise _Diverged(f"{node} has no timer {timer!r} set")
                if (
                    system.timing == "perfect"
                    and waited
                    and not system.suspects(self.records, self.sides, i, waited)
                ):
                    raise _Diverged(
                        f"under a perfect failure detector {node}'s timer {timer!r} fires "
                        f"only once one of {', '.join(waited)} has failed"
                    )
                self.failed = self.failed or bool(waited)
                return [("timeout", node, timer), *self._run(i, "timer", timer)]
            case Crash(node):
                i = self._index(node)
                if self.records[i].local is None:
                    raise _Diverged(f"{node} is already down")
                self.records[i] = system.crashed(self.records[i])
                self.crashes += 1
                self.failed = True
                return [("crash", node)]
            case Recover(node):
                i = self._index(node)
                if self.records[i].local is not None:
                    raise _Diverged(f"{node} is up, so it cannot recover")
                return [("recover", node), *self._run(i, "recover", None)]
            case Partition(groups):
                names = sorted(n for group in groups for n in group)
                if names != sorted(system.names):
                    raise _Diverged(f"the split {groups} does not cover the nodes")
                second = set(groups[1])
                self.sides = tuple(1 if n in second else 0 for n in system.names)
                self.partitions += 1
                self.failed = True
                return [("partition", groups)]
            case Heal():
                self.sides = None
                return [("heal",)]
        raise _Diverged(f"{action!r} is not an action of an actor system")

    def verdicts(self) -> tuple[tuple[str, bool], ...]:
        system = self.system
        state = system.state_of(
            self.records,
            [env for env, copies in self.network.items() if copies > 0],
            sides=self.sides,
            crashes=self.crashes,
            partitions=self.partitions,
            failed=self.failed,
            reversed=frozenset(self.reversed),
        )
        return system.verdicts(state)


def _key(event: Event) -> tuple[str, ...]:
    return tuple(
        "" if v is None else str(v)
        for v in (event.kind, event.node, event.peer, event.message, event.detail, event.forced)
    )


def _line(event: Event) -> str:
    parts = [event.kind, event.node]
    if event.peer:
        parts.append(
            ("to " if event.kind in ("send", "drop", "duplicate") else "from ") + event.peer
        )
    if event.message:
        parts.append(event.message)
    if event.detail:
        parts.append(event.detail)
    if event.forced is not None:
        parts.append("forced" if event.forced else "lazy")
    return " ".join(parts)


def replay(trace: Trace | str | Path, nodes: NodesGiven = None) -> ReplayResult:
    """Replay ``trace`` (a ``Trace`` or the path of a saved one) on ``nodes`` (see
    ``rebuild``) and report the first divergence and each step's verdicts.

    Raises ``TraceFileError`` for a file that cannot be read or a system that cannot be
    rebuilt; a run that goes differently is a result, not an error.
    """
    saved = trace if isinstance(trace, Trace) else Trace.load(trace)
    if not saved.steps:
        raise TraceFileError(
            "the trace has no steps to replay (only traces made by the simulator, the "
            "checker or a check keep them)"
        )
    if saved.steps[0].action is not None:
        raise TraceFileError("a trace's first step must be the start of the run")
    actions = [None, *(decode_action(step.action) for step in saved.steps[1:])]
    system, notes = rebuild(saved, nodes)
    runner = _Replayer(system)
    builder = TraceBuilder(system.names)
    steps: list[Step] = []
    divergence = None
    for number, (step, action) in enumerate(zip(saved.steps, actions, strict=True)):
        first = len(builder.events)
        try:
            raw = runner.start() if action is None else runner.take(action)
        except _Diverged as diverged:
            divergence = Divergence(number, step.label, diverged.reason)
            break
        builder.add(step.time, raw)
        produced = builder.events[first:]
        steps.append(replace(step, first=first, verdicts=runner.verdicts()))
        expected = saved.step_events(number)
        if sorted(map(_key, produced)) != sorted(map(_key, expected)):
            divergence = Divergence(
                number,
                step.label,
                "the nodes now do something else",
                tuple(map(_line, expected)),
                tuple(map(_line, produced)),
            )
            break
    about = {**saved.about, "replayed": True}
    replayed = builder.trace_with(steps, system.describe(), about)
    return ReplayResult(replayed, saved, divergence, notes)


def replay_text(result: ReplayResult, max_events: int | None = None) -> str:
    """The replayed run as a text sequence diagram followed by the summary."""
    diagram = text_sequence(result.trace, max_events=max_events) if result.trace.events else ""
    return f"{diagram}\n\n{result.summary()}" if diagram else result.summary()
