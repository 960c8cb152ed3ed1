"""Where each event of a trace goes in a sequence diagram, decided once for every renderer.

The picture (``dtcourse.pictures.sequence``) and the plain-text form (``trace_text``)
must tell the same story: which send a delivery belongs to, which copies are duplicates,
when a node is down, when the network is split. Working that out here, without any
drawing library, keeps the two renderers thin and lets the rules be tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from dtcourse.engine.trace import EventKind
from dtcourse.errors import DTCourseError

KNOWN_KINDS = frozenset(get_args(EventKind))

#: Kinds drawn as a mark on one lifeline (everything but message movement and partitions).
MARK_KINDS = frozenset({"start", "timeout", "crash", "recover", "log", "decide", "duplicate"})

ArrowKind = Literal["message", "duplicate", "drop", "in-flight"]


@dataclass(frozen=True)
class Arrow:
    """A message drawn from its send towards its receiver.

    ``message``: delivered (the first delivery of a send); ``duplicate``: a later delivery of
    a send already delivered; ``drop``: lost on the way, drawn ending part-way;
    ``in-flight``: sent but neither delivered nor dropped when the trace ends.
    ``end_event`` is the position of the delivery or drop event (None when in flight).
    """

    kind: ArrowKind
    sender: str
    receiver: str
    label: str
    send_row: int
    end_row: int
    send_event: int | None
    end_event: int | None
    detail: str | None = None


@dataclass(frozen=True)
class Mark:
    """Something that happens at one node: a log write, a timeout, a decision, a crash."""

    kind: str
    node: str
    row: int
    event: int
    label: str | None = None
    forced: bool | None = None


@dataclass(frozen=True)
class Span:
    """A stretch of rows: a node being down, or the network being partitioned.

    ``end_row`` is the row where it ends (recovery or heal), or None when it lasts to the
    end of the trace.
    """

    start_row: int
    end_row: int | None
    node: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class SequenceLayout:
    """Everything a renderer needs: lanes, rows with their times, and what to draw where."""

    nodes: tuple[str, ...]
    row_times: tuple[float, ...]
    event_rows: tuple[int, ...]
    arrows: tuple[Arrow, ...]
    marks: tuple[Mark, ...]
    down: tuple[Span, ...]
    partitions: tuple[Span, ...]
    hidden_events: int

    @property
    def rows(self) -> int:
        return len(self.row_times)

    def lane(self, node: str) -> int:
        return self.nodes.index(node)


def check_trace(trace: Any) -> None:
    """Fail with a clear message when ``trace`` is not a Trace-like value."""
    missing = [name for name in ("nodes", "events") if not hasattr(trace, name)]
    if missing:
        raise DTCourseError(
            f"cannot draw a {type(trace).__name__}: a trace needs 'nodes' and 'events' "
            f"(missing {', '.join(missing)}); pass a dtcourse.engine.trace.Trace"
        )
    for position, event in enumerate(trace.events):
        kind = getattr(event, "kind", None)
        if kind not in KNOWN_KINDS:
            raise DTCourseError(
                f"event {position} of the trace has unknown kind {kind!r}; "
                f"expected one of {', '.join(sorted(KNOWN_KINDS))}"
            )
        if not isinstance(getattr(event, "node", None), str):
            raise DTCourseError(f"event {position} of the trace ({kind}) has no node name")


def lifelines(trace: Any, events: Sequence[Any]) -> tuple[str, ...]:
    """The trace's nodes in order, then any node that appears only in events.

    A trace naming a node it did not declare is drawn anyway (to the right), because a
    diagram is most needed exactly when a trace is surprising.
    """
    nodes = list(dict.fromkeys(str(node) for node in trace.nodes))
    for event in events:
        for name in (event.node, getattr(event, "peer", None)):
            if name is not None and event.kind != "partition" and name not in nodes:
                nodes.append(name)
    return tuple(nodes)


def _shares_row(previous: Any, event: Any, row_nodes: set[str]) -> bool:
    """Whether ``event`` may be drawn in the same row as ``previous``.

    Broadcasts (several sends by one node at one moment) fan out from one point, and
    same-kind marks at one moment on different nodes (every node starting) sit side by
    side; everything else gets a row of its own, so nothing overlaps.
    """
    if previous is None or previous.time != event.time or previous.kind != event.kind:
        return False
    if event.kind == "send":
        return previous.node == event.node
    return event.kind in MARK_KINDS - {"duplicate"} and event.node not in row_nodes


def _assign_rows(events: Sequence[Any]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    row_times: list[float] = []
    event_rows: list[int] = []
    previous = None
    row_nodes: set[str] = set()
    for event in events:
        if not _shares_row(previous, event, row_nodes):
            row_times.append(float(event.time))
            row_nodes = set()
        row_nodes.add(event.node)
        event_rows.append(len(row_times) - 1)
        previous = event
    return tuple(row_times), tuple(event_rows)


def _message_label(event: Any) -> str:
    return event.message if event.message is not None else "?"


def _find_send(
    event: Any,
    position: int,
    events: Sequence[Any],
    by_index: dict[int, int],
    ended: set[int],
) -> int | None:
    """The position of the send a delivery or drop belongs to.

    ``send_index`` wins when it names a send; otherwise the oldest matching send not yet
    delivered or dropped, then the newest matching one (a duplicate copy).
    """
    if event.send_index is not None:
        found = by_index.get(event.send_index)
        if found is not None and found < position and events[found].kind == "send":
            return found
    sender = event.peer if event.kind == "deliver" else event.node
    receiver = event.node if event.kind == "deliver" else event.peer
    candidates = [
        p
        for p in range(position)
        if events[p].kind == "send"
        and events[p].node == sender
        and events[p].peer == receiver
        and events[p].message == event.message
    ]
    fresh = [p for p in candidates if p not in ended]
    if fresh:
        return fresh[0]
    return candidates[-1] if candidates else None


def layout(trace: Any, *, max_events: int | None = None) -> SequenceLayout:
    """Place every event of ``trace`` (or its first ``max_events``) into rows and lanes."""
    check_trace(trace)
    if max_events is not None and max_events < 0:
        raise DTCourseError(f"max_events must be 0 or more, got {max_events}")
    events = tuple(trace.events)
    shown = events if max_events is None else events[:max_events]
    nodes = lifelines(trace, shown)
    row_times, event_rows = _assign_rows(shown)
    by_index = {int(event.index): position for position, event in enumerate(shown)}

    arrows: list[Arrow] = []
    marks: list[Mark] = []
    down: list[Span] = []
    partitions: list[Span] = []
    delivered: dict[int, int] = {}  # send position -> deliveries so far
    ended: set[int] = set()  # send positions delivered or dropped
    down_since: dict[str, int] = {}
    open_partitions: list[tuple[int, str | None]] = []

    for position, event in enumerate(shown):
        row = event_rows[position]
        kind = event.kind
        if kind in ("deliver", "drop"):
            send = _find_send(event, position, shown, by_index, ended)
            sender = event.peer if kind == "deliver" else event.node
            receiver = event.node if kind == "deliver" else event.peer
            if send is not None:
                sender, receiver = shown[send].node, shown[send].peer
            if sender is None or receiver is None:
                marks.append(Mark(kind, event.node, row, position, _message_label(event)))
                continue
            arrow_kind: ArrowKind = "drop"
            if kind == "deliver":
                arrow_kind = "duplicate" if send is not None and send in delivered else "message"
                if send is not None:
                    delivered[send] = delivered.get(send, 0) + 1
            if send is not None:
                ended.add(send)
            send_row = event_rows[send] if send is not None else row
            source = event if event.message is not None or send is None else shown[send]
            label = _message_label(source)
            arrows.append(
                Arrow(
                    arrow_kind, sender, receiver, label, send_row, row, send, position, event.detail
                )
            )
        elif kind == "send":
            continue  # drawn with its delivery, drop, or as in flight below
        elif kind == "partition":
            label = event.detail
            if label is None and event.peer is not None:
                label = f"{event.node} | {event.peer}"
            open_partitions.append((row, label))
        elif kind == "heal":
            # A heal naming a partition closes that one; an anonymous heal closes them all.
            closing = [p for p in open_partitions if p[1] == event.detail] or open_partitions
            partitions.extend(Span(start, row, None, label) for start, label in closing)
            open_partitions = [p for p in open_partitions if p not in closing]
        else:
            label = event.detail
            if kind == "duplicate":
                label = f"{_message_label(event)} x2" + (f" to {event.peer}" if event.peer else "")
            marks.append(Mark(kind, event.node, row, position, label, event.forced))
            if kind == "crash" and event.node not in down_since:
                down_since[event.node] = row
            elif kind == "recover" and event.node in down_since:
                down.append(Span(down_since.pop(event.node), row, event.node))

    last_row = max(len(row_times) - 1, 0)
    for position, event in enumerate(shown):
        if event.kind == "send" and position not in ended and event.peer is not None:
            arrows.append(
                Arrow(
                    "in-flight",
                    event.node,
                    event.peer,
                    _message_label(event),
                    event_rows[position],
                    last_row,
                    position,
                    None,
                )
            )
    down.extend(Span(start, None, node) for node, start in down_since.items())
    partitions.extend(Span(start, None, None, label) for start, label in open_partitions)
    return SequenceLayout(
        nodes=nodes,
        row_times=row_times,
        event_rows=event_rows,
        arrows=tuple(arrows),
        marks=tuple(marks),
        down=tuple(sorted(down, key=lambda span: (span.start_row, span.node or ""))),
        partitions=tuple(sorted(partitions, key=lambda span: span.start_row)),
        hidden_events=len(events) - len(shown),
    )
