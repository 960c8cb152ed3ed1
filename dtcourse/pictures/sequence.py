"""Sequence diagrams of protocol runs, placed by ``dtcourse.engine.trace_layout`` so the text
form (``text_sequence``) and the picture always agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch

from dtcourse.engine.trace_layout import Arrow, Mark, SequenceLayout, layout
from dtcourse.errors import DTCourseError
from dtcourse.pictures.figure import (
    BOTTOM_INCHES,
    CRASH,
    CROSS,
    DECISION_COLOURS,
    DECISION_KINDS,
    DOWN,
    DROPPED,
    DUPLICATE,
    FONT,
    HOURGLASS,
    LANE_INCHES,
    LEFT_INCHES,
    LEGEND_INCHES,
    LIFELINE,
    LOG,
    MESSAGE,
    OTHER_DECISION,
    PARTITION,
    RECOVER,
    ROW_INCHES,
    TIMEOUT,
    TOP_INCHES,
    course_figure,
    figure_of,
)

__all__ = ["sequence_diagram"]


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
    point: dict[str, Any] = {"linestyle": "none", "zorder": 6}
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
        figure: Figure = course_figure(width, height)
        ax = figure.add_axes(
            (
                LEFT_INCHES / width,
                BOTTOM_INCHES / height,
                (max(lanes, 2) * LANE_INCHES) / width,
                1 - (TOP_INCHES + BOTTOM_INCHES) / height,
            )
        )
    figure = figure_of(ax)
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
