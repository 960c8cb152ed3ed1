"""A run of a protocol as a flat list of events, the one picture every engine shares.

The simulator records a ``Trace`` as it runs; the checker's shortest counterexamples are
converted into one (``ActorSystem.trace_of``). Sequence diagrams, tables and replays all
read this type, so it stays a plain value: frozen, ordered, with no behaviour beyond
views of itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal, get_args

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

EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

#: Kinds that refer back to a ``send`` event through ``send_index``.
MESSAGE_KINDS: frozenset[str] = frozenset({"deliver", "drop", "duplicate"})


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

    def format(self) -> str:
        """A plain-text rendering, one event a line, for terminals and error messages."""
        return "\n".join(format_event(event) for event in self.events)


def format_event(event: Event) -> str:
    """One line for one event, e.g. ``3  t=2.0  send  C -> P1  Prepare``."""
    where = event.node
    if event.kind in ("send", "drop", "duplicate") and event.peer is not None:
        where = f"{event.node} -> {event.peer}"
    elif event.kind == "deliver" and event.peer is not None:
        where = f"{event.peer} -> {event.node}"
    elif event.peer is not None:
        where = f"{event.node} / {event.peer}"
    parts = [f"{event.index:>3}", f"t={event.time:g}", event.kind, where]
    if event.message is not None:
        parts.append(event.message)
    if event.detail is not None:
        parts.append(event.detail)
    if event.forced is not None:
        parts.append("forced" if event.forced else "lazy")
    return "  ".join(parts)
