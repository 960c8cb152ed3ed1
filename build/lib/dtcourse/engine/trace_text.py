"""A sequence diagram as plain text, for terminals and for feedback where images are unwanted.

One line per event: its index and time, a column per node with the lifelines drawn as
``|`` (``:`` while the node is down), the event drawn on them, then the same event in
words (``c1 --Prepare--> p1``) so the text can be read, searched and compared in tests.
"""

from __future__ import annotations

from typing import Any

from dtcourse.engine.trace_layout import Arrow, Mark, SequenceLayout, layout

_GLYPHS = {
    "start": "o",
    "timeout": "@",
    "crash": "X",
    "recover": "^",
    "duplicate": "2",
    "deliver": "?",
    "drop": "?",
}


def _mark_glyph(mark: Mark) -> str:
    if mark.kind == "log":
        return "#" if mark.forced else "="
    if mark.kind == "decide":
        return f"[{(mark.label or '?').upper()}]"
    glyph = _GLYPHS.get(mark.kind, "*")
    return f"{glyph} {mark.label}" if mark.label and mark.kind == "timeout" else glyph


def _summary(event: Any, arrow: Arrow | None, mark: Mark | None) -> str:
    kind = event.kind
    if arrow is not None:
        link = f"{arrow.sender} --{arrow.label}-->"
        if arrow.kind == "drop":
            why = f": {arrow.detail}" if arrow.detail else ""
            return f"{arrow.sender} --{arrow.label}--X {arrow.receiver}  (dropped{why})"
        if arrow.kind == "duplicate":
            return f"{link} {arrow.receiver}  (duplicate copy)"
        return f"{link} {arrow.receiver}"
    if kind == "send":
        return f"{event.node} sends {event.message or '?'} to {event.peer or '?'}"
    if kind == "duplicate":
        return f"network duplicates {event.node} --{event.message or '?'}--> {event.peer or '?'}"
    if kind == "log":
        how = "forced" if event.forced else "lazy"
        return f"{event.node} log {event.detail or '?'} ({how})"
    if kind == "decide":
        return f"{event.node} decides {(event.detail or '?').upper()}"
    if kind == "timeout":
        return f"{event.node} timeout" + (f" {event.detail}" if event.detail else "")
    if kind == "crash":
        return f"{event.node} CRASHES"
    if kind == "recover":
        return f"{event.node} recovers"
    if kind == "start":
        return f"{event.node} starts"
    if kind in ("partition", "heal"):
        what = event.detail or (f"{event.node} | {event.peer}" if event.peer else "")
        return f"{kind} {what}".rstrip()
    if mark is not None:  # a delivery or drop with no known sender
        return f"{event.node} {kind} {event.message or '?'}"
    return f"{event.node} {kind}"


class _Canvas:
    """One line of lanes: lifelines first, then the event drawn over them."""

    def __init__(self, lanes: int, width: int) -> None:
        self.chars = [" "] * (lanes * width)

    def put(self, column: int, text: str, limit: int | None = None) -> None:
        end = len(self.chars) if limit is None else min(limit, len(self.chars))
        for offset, char in enumerate(text):
            if column + offset >= end:
                break
            if column + offset >= 0:
                self.chars[column + offset] = char

    def __str__(self) -> str:
        return "".join(self.chars)


def _arrow_text(
    arrow: Arrow, start: int, end: int, *, column: int, full: bool
) -> tuple[int, str]:
    """The arrow between two lane columns; a drop stops half-way at an X.

    A send is drawn dotted (the message is on its way); a delivery solid, ending at the
    receiver's lifeline; a drop solid, ending in an X that never lands on a lifeline.
    """
    left, right = min(start, end), max(start, end)
    span = right - left
    if arrow.kind == "drop" and full:
        span = max(span // 2, min(len(arrow.label) + 4, span - 1))
        if span % column == 0:
            span -= 1
    body_length = max(span - 1, 1)
    label = arrow.label if len(arrow.label) + 2 <= body_length else ""
    dash = "-" if full else "."
    pad = (body_length - len(label)) // 2
    body = dash * pad + label + dash * (body_length - len(label) - pad)
    dropped = arrow.kind == "drop" and full
    if start <= end:
        head = "X" if dropped else ">"
        return start, "+" + body[: max(span - 1, 0)] + head
    head = "X" if dropped else "<"
    text = head + body[: max(span - 1, 0)] + "+"
    return start - len(text) + 1, text


def text_sequence(trace: Any, *, max_events: int | None = None, width: int | None = None) -> str:
    """The trace as a text sequence diagram, one line per event.

    ``width`` is the number of characters per node column (by default wide enough for
    every name and most message labels); ``max_events`` keeps only the first events, like
    ``sequence_diagram``.
    """
    plan: SequenceLayout = layout(trace, max_events=max_events)
    events = tuple(trace.events)[: len(plan.event_rows)]
    longest = max((len(node) for node in plan.nodes), default=4)
    label = max((len(arrow.label) for arrow in plan.arrows), default=0)
    # Wide enough for names, and for message labels up to a point: the summary has them all.
    column = width if width else max(longest + 3, min(label + 6, 20), 12)
    lanes = len(plan.nodes)
    arrows_by_end = {arrow.end_event: arrow for arrow in plan.arrows if arrow.end_event is not None}
    marks_by_event = {mark.event: mark for mark in plan.marks}
    sends = {arrow.send_event: arrow for arrow in plan.arrows if arrow.send_event is not None}

    def lane_column(node: str) -> int:
        return plan.lane(node) * column

    def is_down(node: str, row: int) -> bool:
        return any(
            span.node == node
            and span.start_row < row
            and (span.end_row is None or row < span.end_row)
            for span in plan.down
        )

    time_width = max((len(f"{event.time:g}") for event in events), default=1) + 2
    header = _Canvas(lanes, column)
    for node in plan.nodes:
        header.put(lane_column(node), node)
    lines = [f"{'#':>4} {'t':>{time_width}}  {header}".rstrip()]
    for position, event in enumerate(events):
        row = plan.event_rows[position]
        canvas = _Canvas(lanes, column)
        for node in plan.nodes:
            canvas.put(lane_column(node), ":" if is_down(node, row) else "|")
        arrow = arrows_by_end.get(position)
        mark = marks_by_event.get(position)
        if arrow is not None:
            start, text = _arrow_text(
                arrow,
                lane_column(arrow.sender),
                lane_column(arrow.receiver),
                column=column,
                full=True,
            )
            canvas.put(start, text)
        elif event.kind == "send" and position in sends:
            planned = sends[position]
            start, text = _arrow_text(
                planned,
                lane_column(planned.sender),
                lane_column(planned.receiver),
                column=column,
                full=False,
            )
            canvas.put(start, text)
        elif event.kind in ("partition", "heal"):
            for gap in range(lanes):
                canvas.put(gap * column + 1, "~" * (column - 2))
        elif mark is not None:
            at = lane_column(mark.node)
            canvas.put(at, _mark_glyph(mark), limit=at + column - 1)
        summary = _summary(event, arrow, mark)
        when = f"t={event.time:g}"
        lines.append(f"{event.index:>4} {when:>{time_width}}  {canvas}  {summary}".rstrip())
    if plan.hidden_events:
        lines.append(f"... {plan.hidden_events} more events not shown")
    return "\n".join(lines)
