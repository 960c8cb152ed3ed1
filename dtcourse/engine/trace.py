"""A run of a protocol as a flat list of events, the one picture every engine shares.

The simulator records a ``Trace`` as it runs; the checker's shortest counterexamples are
converted into one (``ActorSystem.trace_of``). Sequence diagrams, tables and replays all
read this type, so it stays a plain value: frozen, ordered, with no behaviour beyond
views of itself and its file form.

Saved runs. Besides its events, a trace made by an engine keeps its *steps*: each choice
the environment made (deliver this message, fire that timer, crash that node), in JSON
form, with the events it caused; a description of the system that ran (node classes and
settings, properties, network, failures, timing); and what it shows (``about``: the
property it violates, the seed). ``save`` writes all of it to a versioned JSON file and
``load`` reads it back without importing any protocol code, so any saved trace can be
drawn; ``dtcourse.engine.replay`` re-executes the steps against node classes to see
whether the run still happens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dtcourse.errors import DTCourseError

if TYPE_CHECKING:  # pandas is imported lazily: the checker never needs it
    import pandas

__all__ = [
    "ACTION_KINDS",
    "FORMAT",
    "VERSION",
    "Event",
    "Step",
    "Trace",
    "TraceBuilder",
    "TraceFileError",
    "message_label",
]

FORMAT = "dtcourse-trace"
VERSION = 1
#: The environment's choices a step can record, with the keys each needs.
ACTION_KINDS: dict[str, tuple[str, ...]] = {
    "deliver": ("src", "dst", "msg"),
    "duplicate": ("src", "dst", "msg"),
    "drop": ("src", "dst", "msg"),
    "timeout": ("node", "timer"),
    "crash": ("node",),
    "recover": ("node",),
    "partition": ("groups",),
    "heal": (),
}


class TraceFileError(DTCourseError):
    """A saved trace cannot be read or replayed as it is."""


EventKind = Literal[
    "start",
    "send",
    "deliver",
    "drop",
    "duplicate",
    "timeout",
    "crash",
    "recover",
    "log",
    "decide",
    "partition",
    "heal",
]


@dataclass(frozen=True)
class Event:
    """One thing that happened at one node.

    ``node`` is where it happens: the sender for ``send``, ``drop`` and ``duplicate``, the
    receiver for ``deliver``. ``time`` is simulated time in the simulator and the step
    number in a checker trace.
    """

    index: int
    time: float
    kind: EventKind
    node: str
    peer: str | None = None
    message: str | None = None
    detail: str | None = None
    forced: bool | None = None
    send_index: int | None = None


@dataclass(frozen=True)
class Step:
    """One choice of the environment and the events it caused, ``events[first:end]``.

    ``action`` is the choice in JSON form (``{"kind": "deliver", "src": ..., "dst": ...,
    "msg": ...}``, see ``ACTION_KINDS``), None for the start of the run, where every node
    runs ``on_start``. ``label`` reads as the checker prints actions. ``verdicts`` says,
    when known, which properties hold in the state after the step.
    """

    action: Mapping[str, Any] | None
    label: str
    first: int
    time: float
    verdicts: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class Trace:
    """The events of one run, in order, and the lifelines to draw them on; with the steps,
    the system description and ``about`` when an engine made it (see the module docs)."""

    nodes: tuple[str, ...]
    events: tuple[Event, ...]
    steps: tuple[Step, ...] = ()
    system: Mapping[str, Any] | None = None
    about: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events)

    def step_events(self, number: int) -> tuple[Event, ...]:
        """The events step ``number`` caused."""
        step = self.steps[number]
        end = self.steps[number + 1].first if number + 1 < len(self.steps) else len(self.events)
        return self.events[step.first : end]

    def step_of(self, event_index: int) -> int | None:
        """The number of the step that caused event ``event_index`` (None without steps)."""
        found = None
        for number, step in enumerate(self.steps):
            if step.first > event_index:
                break
            found = number
        return found

    def to_json(self) -> dict[str, Any]:
        """The file form (see ``save``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "nodes": list(self.nodes),
            "about": dict(self.about),
            "system": None if self.system is None else dict(self.system),
            "steps": [
                {
                    "action": None if step.action is None else dict(step.action),
                    "label": step.label,
                    "first": step.first,
                    "time": step.time,
                    "verdicts": dict(step.verdicts),
                }
                for step in self.steps
            ],
            "events": [asdict(event) for event in self.events],
        }

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the trace to ``path`` as versioned JSON; returns the path written."""
        target = Path(path)
        if target.parent != Path():
            target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=1, allow_nan=False)
        target.write_text(text + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Trace:
        """Read a trace written by ``save``; ``TraceFileError`` says what is wrong."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as error:
            raise TraceFileError(f"cannot read the trace {source}: {error.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError as error:
            raise TraceFileError(f"{source} is not a saved trace (not JSON: {error})") from None
        return cls.from_json(data, where=str(source))

    @classmethod
    def from_json(cls, data: Any, where: str = "the trace") -> Trace:
        """The trace ``to_json`` gave (checked, so a bad file gets a clear message)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TraceFileError(
                f'{where} is not a saved dtcourse trace (no "format": "{FORMAT}"); '
                "save one with trace.save(path) or dtcourse check ... --save-trace FILE"
            )
        version = data.get("version")
        if version != VERSION:
            newer = isinstance(version, int) and version > VERSION
            raise TraceFileError(
                f"{where} has trace format version {version!r}, but this dtcourse reads "
                f"version {VERSION}: "
                + (
                    "upgrade dtcourse to replay it"
                    if newer
                    else "save the run again with this version"
                )
            )
        try:
            nodes = tuple(_strings(data["nodes"], "nodes"))
            events = tuple(_event(item) for item in data["events"])
            steps = tuple(_step(item, len(events)) for item in data.get("steps", ()))
            system = data.get("system")
            about = data.get("about") or {}
            if system is not None and not isinstance(system, dict):
                raise ValueError("system must be an object")
            if not isinstance(about, dict):
                raise ValueError("about must be an object")
        except TraceFileError as error:
            raise TraceFileError(f"{where}: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise TraceFileError(f"{where} is a damaged trace file ({detail})") from None
        return cls(nodes, events, steps, system, about)

    def to_frame(self) -> pandas.DataFrame:
        """One row per event, one column per ``Event`` field, for tables and plots."""
        import pandas

        columns = [f.name for f in fields(Event)]
        rows = [[getattr(event, name) for name in columns] for event in self.events]
        frame = pandas.DataFrame(rows, columns=columns)
        return frame.astype(
            {
                "index": "int64",
                "time": "float64",
                "send_index": "Int64",
                "forced": "boolean",
            }
        )

    def decisions(self) -> dict[str, str]:
        """Each node's last decision in the run (nodes that never decided are absent)."""
        decided: dict[str, str] = {}
        for event in self.events:
            if event.kind == "decide" and event.detail is not None:
                decided[event.node] = event.detail
        return decided

    def of_kind(self, *kinds: str) -> tuple[Event, ...]:
        """The events of the given kinds, in order."""
        wanted = set(kinds)
        return tuple(event for event in self.events if event.kind in wanted)

    def send_of(self, event: Event) -> Event | None:
        """The ``send`` a delivery, drop or duplicate refers to, if any."""
        if event.send_index is None:
            return None
        return self.events[event.send_index]


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of names")
    return value


_EVENT_FIELDS = {f.name for f in fields(Event)}


def _event(item: Any) -> Event:
    if not isinstance(item, dict) or set(item) != _EVENT_FIELDS:
        raise ValueError(f"an event must have the fields {sorted(_EVENT_FIELDS)}")
    if item["kind"] not in EventKind.__args__:  # type: ignore[attr-defined]
        raise ValueError(f"unknown event kind {item['kind']!r}")
    return Event(**item)


def _step(item: Any, event_count: int) -> Step:
    if not isinstance(item, dict):
        raise ValueError("a step must be an object")
    action = item["action"]
    if action is not None:
        if not isinstance(action, dict):
            raise ValueError("a step's action must be an object")
        kind = action.get("kind")
        if kind not in ACTION_KINDS:
            raise TraceFileError(
                f"unknown action {kind!r} in a step; known actions: {', '.join(ACTION_KINDS)}"
            )
        missing = [key for key in ACTION_KINDS[kind] if key not in action]
        if missing:
            raise ValueError(f"the {kind} action lacks {', '.join(missing)}")
    first, time = item["first"], item["time"]
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= event_count:
        raise ValueError(f"a step starts at event {first!r}, outside the trace")
    if not isinstance(time, int | float) or not math.isfinite(time):
        raise ValueError(f"a step's time must be a number, got {time!r}")
    verdicts = item.get("verdicts") or {}
    if not isinstance(verdicts, dict) or not all(isinstance(v, bool) for v in verdicts.values()):
        raise ValueError("a step's verdicts must map property names to true or false")
    return Step(action, str(item["label"]), first, float(time), tuple(verdicts.items()))


def message_label(msg: Any) -> str:
    """A short label for a message or log record: ``Vote(yes)``, ``Prepare``, ``commit``.

    A ``label()`` method wins; otherwise the class name and its simple field values.
    """
    label = getattr(msg, "label", None)
    if callable(label):
        return str(label())
    if isinstance(msg, str):
        return msg
    if is_dataclass(msg) and not isinstance(msg, type):
        simple = [
            str(getattr(msg, f.name))
            for f in fields(msg)
            if isinstance(getattr(msg, f.name), str | int | float | bool)
        ]
        name = type(msg).__name__
        return f"{name}({', '.join(simple)})" if simple else name
    if isinstance(msg, tuple) and msg and isinstance(msg[0], str):
        rest = [str(v) for v in msg[1:] if isinstance(v, str | int | float | bool)]
        return f"{msg[0]}({', '.join(rest)})" if rest else msg[0]
    return repr(msg)


class TraceBuilder:
    """Turns raw engine events into numbered ``Event``s, pairing each delivery with its send.

    Raw events are tuples: ``("start", node)``, ``("send", src, dst, msg)``,
    ``("deliver" | "duplicate" | "drop", src, dst, msg)``, ``("lost", src, dst, msg,
    reason)``, ``("log", node, record, forced)``, ``("decide", node, value)``,
    ``("timeout", node, timer)``, ``("crash" | "recover", node)``, ``("partition",
    groups)``, ``("heal",)``.
    """

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = tuple(nodes)
        self.events: list[Event] = []
        self.sends: dict[tuple[str, str, Any], int] = {}

    def add(self, time: float, raw: Iterable[tuple[Any, ...]]) -> None:
        for item in raw:
            self.add_one(time, item)

    def add_one(self, time: float, item: tuple[Any, ...], send_index: int | None = None) -> int:
        """Append one raw event (two for a duplicate); returns the index of the first."""
        kind = item[0]
        index = len(self.events)
        events = self.events
        match kind:
            case "start" | "crash" | "recover":
                events.append(Event(index, time, kind, item[1]))
            case "send":
                _, src, dst, msg = item
                events.append(Event(index, time, "send", src, dst, message_label(msg)))
                self.sends[(src, dst, msg)] = index
            case "deliver" | "duplicate" | "drop" | "lost":
                src, dst, msg = item[1:4]
                ref = send_index if send_index is not None else self.sends.get((src, dst, msg))
                label = message_label(msg)
                if kind == "deliver":
                    events.append(Event(index, time, "deliver", dst, src, label, send_index=ref))
                elif kind == "duplicate":
                    events.append(Event(index, time, "duplicate", src, dst, label, send_index=ref))
                    events.append(
                        Event(index + 1, time, "deliver", dst, src, label, send_index=ref)
                    )
                else:
                    detail = item[4] if kind == "lost" else None
                    events.append(
                        Event(index, time, "drop", src, dst, label, detail, send_index=ref)
                    )
            case "log":
                _, node, record, forced = item
                events.append(
                    Event(index, time, "log", node, detail=message_label(record), forced=forced)
                )
            case "decide" | "timeout":
                events.append(Event(index, time, kind, item[1], detail=item[2]))
            case "partition":
                detail = " | ".join(",".join(group) for group in item[1])
                events.append(Event(index, time, "partition", self.nodes[0], detail=detail))
            case "heal":
                events.append(Event(index, time, "heal", self.nodes[0]))
            case _:
                raise ValueError(f"unknown trace event {item!r}")
        return index

    def trace(self) -> Trace:
        return Trace(self.nodes, tuple(self.events))

    def trace_with(
        self,
        steps: Sequence[Step],
        system: Mapping[str, Any] | None = None,
        about: Mapping[str, Any] | None = None,
    ) -> Trace:
        """The trace so far, with its steps, system description and ``about``."""
        return Trace(self.nodes, tuple(self.events), tuple(steps), system, dict(about or {}))
