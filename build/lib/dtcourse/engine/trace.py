"""A run of a protocol as a flat list of events, the one picture every engine shares.

The simulator records a ``Trace`` as it runs; the checker's shortest counterexamples are
converted into one (``ActorSystem.trace_of``). Sequence diagrams, tables and replays all
read this type, so it stays a plain value: frozen, ordered, with no behaviour beyond
views of itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pandas is imported lazily: the checker never needs it
    import pandas

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
class Trace:
    """The events of one run, in order, and the lifelines to draw them on."""

    nodes: tuple[str, ...]
    events: tuple[Event, ...]

    def __len__(self) -> int:
        return len(self.events)

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
