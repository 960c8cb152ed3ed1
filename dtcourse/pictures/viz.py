"""Pictures of protocol runs: sequence diagrams, state machines and cost plots.

Every function returns a matplotlib ``Figure`` built without pyplot, so nothing is shown,
no global figure list grows and no backend is chosen at import. Figures display
themselves in a notebook (they carry a PNG representation) and save with ``savefig``.
The placement of trace events is decided in ``seqlayout`` so the text form
(``text_sequence``) and the picture always agree.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

from dtcourse.engine.trace_layout import Arrow, Mark, SequenceLayout, layout
from dtcourse.engine.trace_text import text_sequence
from dtcourse.errors import DTCourseError
from dtcourse.pictures.statemachines import (
    StateMachine,
    Transition,
    as_transitions,
    check_machine,
    positions,
    protocol_state_machine,
)

__all__ = [
    "CourseFigure",
    "plot_checker_stats",
    "plot_costs",
    "plot_metrics",
    "protocol_state_machine",
    "sequence_diagram",
    "state_diagram",
    "text_sequence",
]

# Colours chosen to stay distinct for the common forms of colour blindness.
MESSAGE = "#1f5a96"
DUPLICATE = "#8e44ad"
DROPPED = "#7f8c8d"
CROSS = "#c0392b"
CRASH = "#d62728"
RECOVER = "#2e8b57"
TIMEOUT = "#d35400"
LOG = "#2c3e50"
LIFELINE = "#555555"
DOWN = "#bbbbbb"
PARTITION = "#f0c987"
DECISION_COLOURS = {"commit": "#2e8b57", "abort": "#c0392b"}
# Outcomes named otherwise (sagas: committed, compensated) take the colour of their kind.
DECISION_KINDS = {"committed": "commit", "aborted": "abort", "compensated": "abort"}
OTHER_DECISION = "#7f8c8d"
COST_COLUMNS = ("messages", "forced_writes", "lazy_writes", "delays")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")

#: An hourglass: two triangles meeting at the centre, drawn as one closed marker path.
HOURGLASS = Path([(-1, 1), (1, 1), (-1, -1), (1, -1), (-1, 1)], closed=False)

LANE_INCHES = 1.9
ROW_INCHES = 0.3
LEGEND_INCHES = 2.1
LEFT_INCHES = 0.75
TOP_INCHES = 0.85
BOTTOM_INCHES = 0.35
FONT = 7.5


class CourseFigure(Figure):
    """A Figure that shows itself as a PNG in a notebook, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        return to_png(self)


def to_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for notebooks, files and tests)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _figure(width: float, height: float) -> CourseFigure:
    return CourseFigure(figsize=(width, height), dpi=100)


# --- sequence diagrams -------------------------------------------------------------------


@dataclass
class _LabelPlacer:
    """Keeps text labels from landing on one another.

    Sizes are estimated from the font size and the axes' scale (inches per data unit),
    which is enough for short labels; each label tries a few spots along its arrow.
    """

    x_inches: float
    y_inches: float
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    def extent(self, text: str, size: float) -> tuple[float, float]:
        lines = text.split("\n")
        width = max(len(line) for line in lines) * size * 0.6 / 72 + 0.08
        height = len(lines) * size * 1.3 / 72 + 0.05
        return width / self.x_inches, height / self.y_inches

    def _box(self, x: float, y: float, w: float, h: float, ha: str) -> tuple[float, ...]:
        left = {"left": x, "center": x - w / 2, "right": x - w}[ha]
        return (left, y - h / 2, left + w, y + h / 2)

    def free(self, box: tuple[float, ...]) -> bool:
        return all(
            box[2] <= other[0] or other[2] <= box[0] or box[3] <= other[1] or other[3] <= box[1]
            for other in self.boxes
        )

    def reserve(self, x: float, y: float, text: str, size: float, ha: str = "center") -> None:
        w, h = self.extent(text, size)
        self.boxes.append(self._box(x, y, w, h, ha))  # type: ignore[arg-type]

    def place(
        self, spots: Sequence[tuple[float, float]], text: str, size: float, ha: str = "center"
    ) -> tuple[float, float]:
        w, h = self.extent(text, size)
        for x, y in spots:
            box = self._box(x, y, w, h, ha)
            if self.free(box):
                self.boxes.append(box)  # type: ignore[arg-type]
                return x, y
        x, y = spots[0]
        self.boxes.append(self._box(x, y, w, h, ha))  # type: ignore[arg-type]
        return x, y


def _lifeline_segments(plan: SequenceLayout, node: str, bottom: float) -> list[tuple]:
    """(start, end, down?) pieces of a node's lifeline, top to bottom."""
    pieces: list[tuple[float, float, bool]] = []
    cursor = -0.6
    for span in plan.down:
        if span.node != node:
            continue
        end = bottom if span.end_row is None else float(span.end_row)
        pieces.append((cursor, float(span.start_row), False))
        pieces.append((float(span.start_row), end, True))
        cursor = end
    pieces.append((cursor, bottom, False))
    return [piece for piece in pieces if piece[1] > piece[0]]


def _draw_lifelines(ax: Axes, plan: SequenceLayout, bottom: float) -> None:
    for lane, node in enumerate(plan.nodes):
        for start, end, down in _lifeline_segments(plan, node, bottom):
            ax.plot(
                [lane, lane],
                [start, end],
                color=DOWN if down else LIFELINE,
                linestyle=(0, (3, 3)) if down else "-",
                linewidth=1.0 if down else 1.3,
                zorder=1,
                gid="lifeline-down" if down else "lifeline",
            )
        names_at = [(1.0, "bottom", 6)]
        if plan.rows > 25:  # long diagrams repeat the names at the foot
            names_at.append((0.0, "top", -6))
        for y, va, offset in names_at:
            ax.annotate(
                node,
                xy=(lane, y),
                xycoords=ax.get_xaxis_transform(),
                xytext=(0, offset),
                textcoords="offset points",
                ha="center",
                va=va,
                fontsize=9,
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "#eef2f7", "edgecolor": LIFELINE},
                gid="node-label",
                annotation_clip=False,
            )


def _draw_partitions(ax: Axes, plan: SequenceLayout, bottom: float, left: float) -> None:
    for span in plan.partitions:
        end = bottom if span.end_row is None else span.end_row
        ax.axhspan(span.start_row, end, color=PARTITION, alpha=0.35, zorder=0, gid="partition")
        ax.text(
            left + 0.05,
            span.start_row + 0.15,
            f"partition {span.label}" if span.label else "partition",
            fontsize=FONT,
            style="italic",
            color="#8a5a00",
            va="top",
            ha="left",
            zorder=2,
        )


def _arrow_geometry(arrow: Arrow, plan: SequenceLayout, bottom: float) -> tuple[tuple, tuple]:
    start = (float(plan.lane(arrow.sender)), float(arrow.send_row))
    target_x = float(plan.lane(arrow.receiver))
    end_row = float(arrow.end_row)
    if arrow.kind == "drop":
        # Lost on the way: the arrow stops part-way, where the loss happened.
        return start, (start[0] + 0.55 * (target_x - start[0]), end_row)
    if arrow.kind == "in-flight":
        # Still travelling when the trace ends: dotted, running off the foot of the diagram.
        return start, (start[0] + 0.5 * (target_x - start[0]), bottom)
    return start, (target_x, end_row)


def _draw_arrow(
    ax: Axes, arrow: Arrow, plan: SequenceLayout, placer: _LabelPlacer, bottom: float
) -> None:
    (x0, y0), (x1, y1) = _arrow_geometry(arrow, plan, bottom)
    self_message = arrow.sender == arrow.receiver
    if self_message and y1 <= y0:
        y1 = y0 + 0.5
    if arrow.kind == "in-flight":
        ax.plot([x0, x1], [y0, y1], color=MESSAGE, linestyle=":", linewidth=1.1, gid="in-flight")
    else:
        style = {
            "message": ("-|>", MESSAGE, "-"),
            "duplicate": ("-|>", DUPLICATE, (0, (4, 2))),
            "drop": ("-", DROPPED, "-"),
        }[arrow.kind]
        patch = FancyArrowPatch(
            (x0, y0),
            (x1, y1),
            arrowstyle=style[0],
            mutation_scale=10,
            color=style[1],
            linestyle=style[2],
            linewidth=1.2,
            shrinkA=0,
            shrinkB=1 if arrow.kind != "drop" else 0,
            connectionstyle="arc3,rad=-0.6" if self_message else "arc3",
            zorder=3,
            gid=arrow.kind,
        )
        ax.add_patch(patch)
        if arrow.kind == "drop":
            ax.plot(
                [x1], [y1], marker="x", markersize=9, markeredgewidth=2.2, color=CROSS,
                linestyle="none", zorder=5, gid="drop-x",
            )  # fmt: skip
    along = (0.75, 0.6, 0.9, 0.45) if arrow.kind == "in-flight" else (0.5, 0.35, 0.65, 0.22, 0.78)
    spots = [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in along]
    if self_message:
        spots = [(x0 + 0.22, (y0 + y1) / 2)]
    text = arrow.label
    if arrow.kind == "in-flight":
        text = f"{arrow.label} …"
    elif arrow.kind == "drop" and arrow.detail:
        text = f"{arrow.label}\n({arrow.detail})"
    x, y = placer.place(spots, text, FONT)
    ax.text(
        x,
        y,
        text,
        fontsize=FONT,
        color=DUPLICATE if arrow.kind == "duplicate" else "#1b1b1b",
        ha="center",
        va="center",
        zorder=6,
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
              "alpha": 0.85},
        gid="message-label",
    )  # fmt: skip


def _decision_kind(value: str) -> str:
    value = value.lower()
    return DECISION_KINDS.get(value, value)


def _decision_box(ax: Axes, x: float, y: float, value: str, size: float = 8) -> None:
    colour = DECISION_COLOURS.get(_decision_kind(value), OTHER_DECISION)
    ax.text(
        x, y, value.upper(), fontsize=size, fontweight="bold", color="white",
        ha="center", va="center", zorder=7, gid="decision",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": "none"},
    )  # fmt: skip


def _side_label(ax: Axes, x: float, y: float, text: str, placer: _LabelPlacer) -> None:
    short = text if len(text) <= 28 else text[:27] + "…"
    placer.reserve(x + 0.08, y, short, FONT - 0.5, ha="left")
    ax.text(
        x + 0.08, y, short, fontsize=FONT - 0.5, color="#444444", ha="left", va="center",
        zorder=6, bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none",
                        "alpha": 0.8},
    )  # fmt: skip


def _draw_mark(ax: Axes, mark: Mark, plan: SequenceLayout, placer: _LabelPlacer) -> None:
    x, y = float(plan.lane(mark.node)), float(mark.row)
    point = {"linestyle": "none", "zorder": 6}
    if mark.kind == "decide":
        placer.reserve(x, y, (mark.label or "?").upper(), 8)
        _decision_box(ax, x, y, mark.label or "?")
        return
    if mark.kind == "log":
        ax.plot([x], [y], marker="s", markersize=7, color=LOG, markeredgewidth=1.3,
                markerfacecolor=LOG if mark.forced else "white",
                gid="log-forced" if mark.forced else "log-lazy", **point)  # fmt: skip
    elif mark.kind == "timeout":
        ax.plot([x], [y], marker=HOURGLASS, markersize=9, color=TIMEOUT, gid="timeout", **point)
    elif mark.kind == "crash":
        ax.plot([x], [y], marker="X", markersize=12, color=CRASH, markeredgecolor="white",
                gid="crash", **point)  # fmt: skip
    elif mark.kind == "recover":
        ax.plot([x], [y], marker="^", markersize=9, color=RECOVER, gid="recover", **point)
    elif mark.kind == "start":
        ax.plot([x], [y], marker="o", markersize=5, color=LIFELINE, markerfacecolor="white",
                gid="start", **point)  # fmt: skip
    elif mark.kind == "duplicate":
        ax.plot([x], [y], marker="D", markersize=6, color=DUPLICATE, markerfacecolor="white",
                gid="duplicate-mark", **point)  # fmt: skip
    else:  # a delivery or drop whose sender is unknown
        ax.plot([x], [y], marker="v", markersize=6, color=DROPPED, gid=mark.kind, **point)
    if mark.label and mark.kind in ("log", "timeout", "duplicate", "deliver", "drop"):
        _side_label(ax, x, y, mark.label, placer)


def _legend_handles(plan: SequenceLayout) -> list[Any]:
    arrows = {arrow.kind for arrow in plan.arrows}
    marks = {mark.kind for mark in plan.marks}
    forced = {mark.forced for mark in plan.marks if mark.kind == "log"}
    decisions = {_decision_kind(mark.label or "") for mark in plan.marks if mark.kind == "decide"}
    entries: list[tuple[bool, Any]] = [
        ("message" in arrows, Line2D([], [], color=MESSAGE, lw=1.2, label="message")),
        ("duplicate" in arrows,
         Line2D([], [], color=DUPLICATE, lw=1.2, ls=(0, (4, 2)), label="duplicate copy")),
        ("duplicate" in marks,
         Line2D([], [], color=DUPLICATE, marker="D", ms=6, mfc="white", ls="none",
                label="network duplicates")),
        ("drop" in arrows,
         Line2D([], [], color=DROPPED, lw=1.2, marker="x", ms=8, mec=CROSS, mew=2,
                markevery=[1], label="dropped message")),
        ("in-flight" in arrows,
         Line2D([], [], color=MESSAGE, lw=1.1, ls=":", label="in flight at end")),
        (True in forced,
         Line2D([], [], color=LOG, marker="s", ms=7, ls="none", label="forced log write")),
        (bool(forced - {True}),
         Line2D([], [], color=LOG, marker="s", ms=7, mfc="white", ls="none",
                label="lazy log write")),
        ("timeout" in marks,
         Line2D([], [], color=TIMEOUT, marker=HOURGLASS, ms=9, ls="none", label="timeout")),
        ("crash" in marks,
         Line2D([], [], color=CRASH, marker="X", ms=10, mec="white", ls="none", label="crash")),
        (bool(plan.down),
         Line2D([], [], color=DOWN, lw=1.0, ls=(0, (3, 3)), label="node down")),
        ("recover" in marks,
         Line2D([], [], color=RECOVER, marker="^", ms=8, ls="none", label="recovery")),
        ("commit" in decisions, Patch(color=DECISION_COLOURS["commit"], label="decides COMMIT")),
        ("abort" in decisions, Patch(color=DECISION_COLOURS["abort"], label="decides ABORT")),
        (bool(decisions - {"commit", "abort"}), Patch(color=OTHER_DECISION, label="decides")),
        (bool(plan.partitions), Patch(color=PARTITION, alpha=0.5, label="network partition")),
        ("start" in marks,
         Line2D([], [], color=LIFELINE, marker="o", ms=5, mfc="white", ls="none", label="start")),
    ]  # fmt: skip
    return [handle for present, handle in entries if present]


def _time_ticks(ax: Axes, plan: SequenceLayout) -> None:
    ticks, labels = [], []
    previous = None
    for row, time in enumerate(plan.row_times):
        if time != previous:
            ticks.append(row)
            labels.append(f"{time:g}")
        previous = time
    ax.set_yticks(ticks, labels, fontsize=FONT)
    ax.tick_params(axis="y", length=2, colors="#666666")
    ax.set_ylabel("time", fontsize=8, color="#666666")


def sequence_diagram(
    trace: Any,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    max_events: int | None = None,
) -> Figure:
    """Draw ``trace`` as a sequence diagram: a lifeline per node, time flowing down.

    Messages are arrows from send to delivery; dropped ones stop part-way at a red X;
    later copies of a duplicated message are dashed purple. Squares are log writes
    (filled: forced, hollow: lazy), hourglasses timeouts, red crosses crashes (the lifeline
    is dashed while the node is down), triangles recoveries, coloured boxes decisions;
    shaded bands are network partitions. ``max_events`` draws only the first events.
    """
    plan = layout(trace, max_events=max_events)
    if not plan.nodes:
        raise DTCourseError("the trace has no nodes to draw; give the Trace its node names")
    rows = max(plan.rows, 1)
    lanes = len(plan.nodes)
    handles = _legend_handles(plan)
    if ax is None:
        width = LEFT_INCHES + max(lanes, 2) * LANE_INCHES + LEGEND_INCHES
        legend_height = 0.3 + 0.24 * len(handles)
        height = max(TOP_INCHES + BOTTOM_INCHES + (rows + 1) * ROW_INCHES, legend_height + 1.0)
        figure = _figure(width, height)
        ax = figure.add_axes(
            (
                LEFT_INCHES / width,
                BOTTOM_INCHES / height,
                (max(lanes, 2) * LANE_INCHES) / width,
                1 - (TOP_INCHES + BOTTOM_INCHES) / height,
            )
        )
    figure = ax.get_figure()
    in_flight = any(arrow.kind == "in-flight" for arrow in plan.arrows)
    bottom = rows - 0.4 + (1.6 if in_flight else 0.6 if plan.hidden_events else 0)
    left, right = -0.5, lanes - 0.5
    if lanes == 1:
        right = 1.5
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, -0.8)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#cccccc")
    _time_ticks(ax, plan)

    box = ax.get_position()
    fig_width, fig_height = figure.get_size_inches()
    placer = _LabelPlacer(
        x_inches=box.width * fig_width / (right - left),
        y_inches=box.height * fig_height / (bottom + 0.8),
    )
    _draw_partitions(ax, plan, bottom, left)
    _draw_lifelines(ax, plan, bottom)
    for mark in plan.marks:  # marks first: message labels then steer around them
        _draw_mark(ax, mark, plan, placer)
    for arrow in plan.arrows:  # and around every arrow's end (a head or a cross)
        end = _arrow_geometry(arrow, plan, bottom)[1]
        if arrow.kind != "in-flight":
            placer.reserve(end[0], end[1], "XX", FONT)
    for arrow in plan.arrows:
        _draw_arrow(ax, arrow, plan, placer, bottom)
    if plan.hidden_events:
        ax.text(
            (left + right) / 2, rows - 0.1, f"… {plan.hidden_events} more events not shown",
            fontsize=FONT, style="italic", color="#666666", ha="center", va="center",
        )  # fmt: skip
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
            fontsize=FONT,
            frameon=False,
        )
    if title:
        ax.set_title(title, loc="left", fontsize=10, pad=26)
    return figure


# --- state machines ----------------------------------------------------------------------


def _state_box(ax: Axes, x: float, y: float, name: str, *, final: bool, initial: bool) -> Any:
    width = _state_width(name)
    height = STATE_HEIGHT
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0.02,rounding_size=0.2",
        facecolor="#eef2f7" if not final else "#f7f3e8",
        edgecolor=LOG,
        linewidth=2.4 if final else 1.3,
        zorder=3,
        gid="state",
    )
    ax.add_patch(patch)
    if final:  # a second outline marks a state with no way out
        ax.add_patch(
            FancyBboxPatch(
                (x - width / 2 + 0.07, y - height / 2 + 0.07), width - 0.14, height - 0.14,
                boxstyle="round,pad=0.02,rounding_size=0.15", facecolor="none",
                edgecolor=LOG, linewidth=0.8, zorder=4,
            )
        )  # fmt: skip
    colour = DECISION_COLOURS.get(
        {"committed": "commit", "aborted": "abort"}.get(name, ""), "#1b1b1b"
    )
    ax.text(x, y, name, ha="center", va="center", fontsize=10, zorder=5, color=colour,
            fontweight="bold" if final else "normal", gid="state-label")  # fmt: skip
    if initial:
        ax.plot([x - width / 2 - 0.55], [y], marker="o", markersize=7, color=LOG, zorder=5)
        ax.add_patch(
            FancyArrowPatch((x - width / 2 - 0.55, y), (x - width / 2, y), arrowstyle="-|>",
                            mutation_scale=12, color=LOG, shrinkA=3, shrinkB=0, zorder=4)
        )  # fmt: skip
    return patch, width, height


def _edge_bend(
    transition: Transition, pos: Mapping[str, tuple[float, float]], pairs: set[tuple[str, str]]
) -> float:
    """Curvature of an edge: straight between neighbouring layers, bent around others."""
    (x0, y0), (x1, y1) = pos[transition.source], pos[transition.target]
    if (transition.target, transition.source) in pairs:
        return 0.25  # two-way pair: both bend the same way, so they separate
    crosses = any(
        state not in (transition.source, transition.target)
        and min(x0, x1) < sx < max(x0, x1)
        and _near_segment((sx, sy), (x0, y0), (x1, y1), 0.7)
        for state, (sx, sy) in pos.items()
    )
    if not crosses:
        return 0.0
    return 0.35 if y1 <= y0 else -0.35


def _near_segment(point, a, b, distance) -> bool:
    (px, py), (ax_, ay), (bx, by) = point, a, b
    length_sq = (bx - ax_) ** 2 + (by - ay) ** 2
    t = max(0.0, min(1.0, ((px - ax_) * (bx - ax_) + (py - ay) * (by - ay)) / length_sq))
    return math.dist((px, py), (ax_ + t * (bx - ax_), ay + t * (by - ay))) < distance


def state_diagram(
    states: Sequence[str] | StateMachine,
    transitions: Iterable[Transition | tuple] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    initial: str | None = None,
) -> Figure:
    """Draw a state machine: states as boxes in layers, transitions as labelled arrows.

    Pass a ``StateMachine`` (``protocol_state_machine("2pc-participant")``) or a list of
    state names and ``(source, target, label)`` transitions; the first state is initial.
    States with no way out get a double outline.
    """
    if isinstance(states, StateMachine):
        machine = states
        if transitions is not None:
            raise DTCourseError("give either a StateMachine or states and transitions, not both")
    else:
        if isinstance(states, str):
            raise DTCourseError("states must be a list of state names, not one string")
        names = tuple(str(state) for state in states)
        machine = StateMachine("custom", names, as_transitions(transitions or ()), initial=initial)
    check_machine(machine.states, machine.transitions)
    pos = positions(machine.states, machine.transitions, machine.start, dx=3.8, dy=1.9)
    pairs = {(t.source, t.target) for t in machine.transitions}
    x_range, y_range = _machine_bounds(machine, pos, pairs)
    if ax is None:
        scale = 0.8  # inches per unit
        heading_room = 0.45 if (title or machine.title) else 0.1
        width = (x_range[1] - x_range[0]) * scale
        height = (y_range[1] - y_range[0]) * scale + heading_room
        figure = _figure(width, height)
        ax = figure.add_axes((0, 0, 1, 1 - heading_room / height))
    figure = ax.get_figure()
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    ax.set_aspect("equal")
    ax.set_axis_off()
    finals = set(machine.final_states)
    boxes: dict[str, tuple[Any, float, float]] = {}
    for state in machine.states:
        x, y = pos[state]
        boxes[state] = _state_box(
            ax, x, y, state, final=state in finals, initial=state == machine.start
        )
    for transition in machine.transitions:
        _draw_transition(ax, transition, pos, boxes, pairs)
    heading = title if title is not None else machine.title
    if heading:
        ax.set_title(heading, loc="left", fontsize=11, x=0.01)
    return figure


STATE_HEIGHT = 0.62
LOOP_LABEL_RISE = 0.75


def _state_width(name: str) -> float:
    return max(1.3, 0.16 * len(name) + 0.5)


def _curve_middle(
    a: tuple[float, float], b: tuple[float, float], bend: float
) -> tuple[float, float]:
    """The middle of matplotlib's arc3 curve: half-way along the chord, pushed out by
    ``bend / 2`` of the chord turned a quarter."""
    (x0, y0), (x1, y1) = a, b
    return (x0 + x1) / 2 + bend / 2 * (y1 - y0), (y0 + y1) / 2 - bend / 2 * (x1 - x0)


def _exit_fraction(dx: float, dy: float, width: float, height: float) -> float:
    """How far along a segment from a box's centre the segment leaves the box."""
    limits = [abs(width / 2 / dx) if dx else math.inf, abs(height / 2 / dy) if dy else math.inf]
    return min(min(limits), 1.0)


def _visible_middle(a, b, size_a, size_b) -> tuple[float, float]:
    """The middle of the part of a straight edge that lies between the two boxes, where
    its label belongs (boxes of different widths would push it off-centre otherwise)."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    leave = _exit_fraction(dx, dy, *size_a)
    enter = 1 - _exit_fraction(dx, dy, *size_b)
    t = (leave + enter) / 2
    return x0 + t * dx, y0 + t * dy


def _machine_bounds(machine: StateMachine, pos, pairs) -> tuple[tuple, tuple]:
    """Data limits that hold every box, loop, curve and label, with a small margin."""
    xs: list[float] = []
    ys: list[float] = []
    for state, (x, y) in pos.items():
        half = _state_width(state) / 2
        xs += [x - half - (0.75 if state == machine.start else 0), x + half]
        ys += [y - STATE_HEIGHT / 2, y + STATE_HEIGHT / 2]
    for transition in machine.transitions:
        lines = max(transition.label.count("\n") + 1, 1)
        half_label = 0.09 * lines + 0.1
        if transition.source == transition.target:
            x, y = pos[transition.source]
            ys.append(y + STATE_HEIGHT / 2 + LOOP_LABEL_RISE + half_label)
            continue
        bend = _edge_bend(transition, pos, pairs)
        mx, my = _curve_middle(pos[transition.source], pos[transition.target], bend)
        ys += [my - half_label, my + half_label]
    margin = 0.3
    return (min(xs) - margin, max(xs) + margin), (min(ys) - margin, max(ys) + margin)


def _draw_transition(ax, transition, pos, boxes, pairs) -> None:
    source_patch, width, height = boxes[transition.source]
    x0, y0 = pos[transition.source]
    label_style = {
        "fontsize": 8, "ha": "center", "va": "center", "zorder": 6, "color": "#1b1b1b",
        "bbox": {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none",
                 "alpha": 0.9},
        "gid": "transition-label",
    }  # fmt: skip
    if transition.source == transition.target:
        top = y0 + height / 2
        ax.add_patch(
            FancyArrowPatch((x0 - 0.3, top), (x0 + 0.3, top), arrowstyle="-|>",
                            connectionstyle="arc3,rad=-1.6", mutation_scale=12, color=LOG,
                            linewidth=1.2, shrinkA=0, shrinkB=0, zorder=2, gid="transition")
        )  # fmt: skip
        ax.text(x0, top + LOOP_LABEL_RISE, transition.label, **label_style)
        return
    x1, y1 = pos[transition.target]
    bend = _edge_bend(transition, pos, pairs)
    ax.add_patch(
        FancyArrowPatch((x0, y0), (x1, y1), patchA=source_patch,
                        patchB=boxes[transition.target][0], arrowstyle="-|>",
                        connectionstyle=f"arc3,rad={bend}", mutation_scale=14, color=LOG,
                        linewidth=1.2, shrinkA=2, shrinkB=2, zorder=2, gid="transition")
    )  # fmt: skip
    if bend == 0.0:
        mx, my = _visible_middle(
            (x0, y0), (x1, y1), (width, height), (boxes[transition.target][1], height)
        )
    else:
        mx, my = _curve_middle((x0, y0), (x1, y1), bend)
    if transition.label:
        ax.text(mx, my, transition.label, **label_style)


# --- metric plots ------------------------------------------------------------------------


def _message_type(label: Any) -> str:
    text = str(label)
    return text.split("(", 1)[0].strip() or text


def _metrics_from_events(frame: Any) -> dict[str, dict[str, int]]:
    needed = {"kind", "node", "message", "forced"}
    missing = needed - set(frame.columns)
    if missing:
        raise DTCourseError(
            f"cannot plot metrics from a table without columns {sorted(missing)}; "
            "pass a Trace, trace.to_frame(), or a dict of counts"
        )
    sends = frame[frame["kind"] == "send"]
    messages: dict[str, int] = {}
    for label in sends["message"]:
        key = _message_type(label)
        messages[key] = messages.get(key, 0) + 1
    logs = frame[frame["kind"] == "log"]
    forced: dict[str, int] = {}
    lazy: dict[str, int] = {}
    for node, is_forced in zip(logs["node"], logs["forced"], strict=True):
        target = forced if bool(is_forced is True or is_forced == True) else lazy  # noqa: E712
        target[str(node)] = target.get(str(node), 0) + 1
    return {"messages": messages, "forced_writes": forced, "lazy_writes": lazy}


def metric_counts(source: Any) -> dict[str, dict[str, int]]:
    """Messages by type and log writes by node, from a trace, its frame, or given counts."""
    if hasattr(source, "events") and hasattr(source, "to_frame"):
        return _metrics_from_events(source.to_frame())
    if hasattr(source, "columns"):
        return _metrics_from_events(source)
    if isinstance(source, Mapping):
        result: dict[str, dict[str, int]] = {}
        for key in ("messages", "forced_writes", "lazy_writes"):
            value = source.get(key, {})
            if not isinstance(value, Mapping):
                raise DTCourseError(
                    f"metrics[{key!r}] must map names to counts (e.g. {{'Prepare': 3}}), "
                    f"got {type(value).__name__}"
                )
            result[key] = {str(name): int(count) for name, count in value.items()}
        if not any(result.values()):
            raise DTCourseError(
                "no metrics to plot: expected keys 'messages', 'forced_writes', 'lazy_writes'"
            )
        return result
    raise DTCourseError(
        f"cannot plot metrics from a {type(source).__name__}; pass a Trace, "
        "trace.to_frame(), or a dict with 'messages', 'forced_writes', 'lazy_writes'"
    )


def _bar_axes(axes: Sequence[Axes] | Axes | None, count: int, width: float) -> list[Axes]:
    if axes is None:
        figure = _figure(width, 3.2)
        return list(figure.subplots(1, count, squeeze=False)[0])
    found = list(axes) if isinstance(axes, Sequence | Iterable) else [axes]
    if len(found) != count:
        raise DTCourseError(f"this plot needs {count} axes, got {len(found)}")
    return found


def _tidy(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def plot_metrics(frame_or_dict: Any, *, ax: Sequence[Axes] | None = None) -> Figure:
    """Bar charts of a run's costs: messages sent by type, log writes by node.

    Accepts a ``Trace``, its ``to_frame()``, or counts such as
    ``{"messages": {"Prepare": 3}, "forced_writes": {"c1": 1}, "lazy_writes": {...}}``.
    ``ax``, if given, is a pair of axes.
    """
    counts = metric_counts(frame_or_dict)
    left, right = _bar_axes(ax, 2, 9.0)
    messages = counts["messages"]
    names = list(messages)
    bars = left.bar(names, [messages[n] for n in names], color=MESSAGE, gid="messages")
    left.bar_label(bars, fontsize=8)
    left.set_title("messages sent, by type", fontsize=10, loc="left")
    left.set_ylabel("messages", fontsize=9)
    nodes = list(dict.fromkeys([*counts["forced_writes"], *counts["lazy_writes"]]))
    if hasattr(frame_or_dict, "nodes"):  # a trace: keep its lifeline order
        nodes = [n for n in frame_or_dict.nodes if n in nodes] + [
            n for n in nodes if n not in frame_or_dict.nodes
        ]
    positions_ = range(len(nodes))
    forced = [counts["forced_writes"].get(n, 0) for n in nodes]
    lazy = [counts["lazy_writes"].get(n, 0) for n in nodes]
    forced_bars = right.bar([p - 0.2 for p in positions_], forced, width=0.4, color=LOG,
                            label="forced", gid="forced")  # fmt: skip
    lazy_bars = right.bar([p + 0.2 for p in positions_], lazy, width=0.4, color="white",
                          edgecolor=LOG, hatch="//", label="lazy", gid="lazy")  # fmt: skip
    right.bar_label(forced_bars, fontsize=8)
    right.bar_label(lazy_bars, fontsize=8)
    right.set_xticks(list(positions_), nodes)
    right.set_title("log writes, by node", fontsize=10, loc="left")
    right.set_ylabel("writes", fontsize=9)
    right.legend(fontsize=8, frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1, 1))
    for axis in (left, right):
        _tidy(axis)
        axis.margins(y=0.15)
        axis.yaxis.get_major_locator().set_params(integer=True)
    figure = left.get_figure()
    if ax is None:
        figure.set_layout_engine("constrained")
    return figure


def _require_columns(frame: Any, columns: Iterable[str], what: str) -> None:
    if not hasattr(frame, "columns"):
        raise DTCourseError(f"{what} needs a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DTCourseError(
            f"{what}: the table has no column(s) {missing}; its columns are {list(frame.columns)}"
        )


def plot_costs(
    frame: Any,
    x: str = "participants",
    y: str | Sequence[str] | None = None,
    hue: str = "variant",
    *,
    style: str | None = "outcome",
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Line plots of a cost table: one panel per measure in ``y``, one line per ``hue``
    value (and per ``style`` value, drawn dashed/dotted, when the table has that column).

    ``y`` defaults to every cost column the table has among messages, forced_writes,
    lazy_writes and delays. Repeated rows for the same point (several seeds) are averaged.
    """
    if y is None:
        present = getattr(frame, "columns", ())
        y = [name for name in COST_COLUMNS if name in present] or list(COST_COLUMNS[:1])
    measures = [y] if isinstance(y, str) else list(y)
    if not measures:
        raise DTCourseError("plot_costs needs at least one measure in y")
    use_style = style if style is not None and style in getattr(frame, "columns", ()) else None
    _require_columns(frame, [x, hue, *measures], "plot_costs")
    if len(frame) == 0:
        raise DTCourseError("plot_costs: the cost table is empty; run the cost sweep first")
    axes = _bar_axes(ax, len(measures), 3.6 * len(measures) + 1.4)
    keys = [hue] + ([use_style] if use_style else [])
    grouped = frame.groupby([*keys, x], sort=True)[measures].mean(numeric_only=True).reset_index()
    hues = list(dict.fromkeys(frame[hue]))
    styles = list(dict.fromkeys(frame[use_style])) if use_style else [None]
    dashes = ["-", "--", ":", "-."]
    numeric_x = frame[x].dtype.kind in "iuf"
    spread = float(frame[x].max() - frame[x].min()) if numeric_x else 0.0
    dodge = 0.012 * spread if numeric_x and len(hues) > 1 else 0.0
    markers = ["o", "s", "^", "D", "v", "P"]
    for axis, measure in zip(axes, measures, strict=True):
        for h_number, hue_value in enumerate(hues):
            for s_number, style_value in enumerate(styles):
                rows = grouped[grouped[hue] == hue_value]
                if use_style:
                    rows = rows[rows[use_style] == style_value]
                if len(rows) == 0:
                    continue
                label = str(hue_value) + (f" ({style_value})" if use_style else "")
                # Equal costs are common (variants differ in one place): a small sideways
                # shift per variant keeps every line visible instead of hidden behind another.
                shift = (h_number - (len(hues) - 1) / 2) * dodge
                axis.plot(
                    rows[x] + shift, rows[measure], label=label,
                    color=PALETTE[h_number % len(PALETTE)],
                    linestyle=dashes[s_number % len(dashes)],
                    marker=markers[h_number % len(markers)], markersize=5, linewidth=1.5,
                )  # fmt: skip
        axis.set_title(measure.replace("_", " "), fontsize=10, loc="left")
        axis.set_xlabel(x.replace("_", " "), fontsize=9)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        _tidy(axis)
    figure = axes[0].get_figure()
    handles, labels = axes[0].get_legend_handles_labels()
    if ax is None:
        figure.set_layout_engine("constrained")
        figure.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    else:
        axes[-1].legend(fontsize=8, frameon=False)
    return figure


def _field(item: Any, names: Sequence[str]) -> Any:
    for name in names:
        if isinstance(item, Mapping) and name in item:
            return item[name]
        if hasattr(item, name):
            return getattr(item, name)
    return None


def plot_checker_stats(results: Any, *, ax: Sequence[Axes] | None = None) -> Figure:
    """Horizontal bars of what each model-checker run cost: states explored and seconds.

    ``results`` is a DataFrame with columns ``name``, ``states``, ``seconds``; a list of
    checker results (``CheckResult`` objects, or dicts with those fields); or a dict from
    a name to such a result.
    """
    name_keys = ("name", "label", "model")
    state_keys = ("states", "distinct", "states_explored", "unique_states", "explored")
    second_keys = ("seconds", "elapsed", "duration")
    named: list[str] = []
    if hasattr(results, "columns"):
        records = results.to_dict("records")
    elif _field(results, state_keys) is not None:  # one result on its own
        records = [results]
    elif isinstance(results, Mapping):
        named = [str(name) for name in results]
        records = list(results.values())
    elif isinstance(results, Iterable) and not isinstance(results, str | bytes):
        records = list(results)
    else:
        raise DTCourseError(
            f"cannot plot checker statistics from a {type(results).__name__}; pass a list of "
            "results or a DataFrame with columns name, states, seconds"
        )
    if not records:
        raise DTCourseError("no checker results to plot")
    names, states, seconds = [], [], []
    for number, record in enumerate(records):
        name, count, secs = (_field(record, keys) for keys in (name_keys, state_keys, second_keys))
        if named:
            name = named[number]
        if count is None or secs is None:
            raise DTCourseError(
                f"checker result {number} has no states count or seconds; give each result "
                f"'states' and 'seconds' (and a 'name')"
            )
        names.append(str(name) if name is not None else f"run {number + 1}")
        states.append(int(count))
        seconds.append(float(secs))
    left, right = _bar_axes(ax, 2, 9.0)
    slots = list(range(len(names)))[::-1]  # first result on top; names may repeat
    states_bars = left.barh(slots, states, color=MESSAGE, gid="states")
    left.bar_label(states_bars, labels=[f"{n:,}" for n in states], fontsize=8, padding=2)
    left.set_title("states explored", fontsize=10, loc="left")
    time_bars = right.barh(slots, seconds, color=TIMEOUT, gid="seconds")
    right.bar_label(time_bars, labels=[f"{t:.2f} s" for t in seconds], fontsize=8, padding=2)
    for axis in (left, right):
        axis.set_yticks(slots, names)
    right.set_title("seconds", fontsize=10, loc="left")
    if max(states) / max(min(states), 1) > 100:
        left.set_xscale("log")
    for axis in (left, right):
        _tidy(axis)
        axis.margins(x=0.2)
    figure = left.get_figure()
    if ax is None:
        figure.set_layout_engine("constrained")
        figure.set_size_inches(9.0, 0.9 + 0.4 * len(names))
    return figure
