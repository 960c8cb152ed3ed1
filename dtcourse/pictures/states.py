"""State-machine diagrams: boxes for states, curved arrows for transitions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from dtcourse.errors import DTCourseError
from dtcourse.pictures.figure import DECISION_COLOURS, LOG, course_figure, figure_of
from dtcourse.pictures.statemachines import (
    StateMachine,
    Transition,
    as_transitions,
    check_machine,
    positions,
)

__all__ = ["state_diagram"]


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
        figure: Figure = course_figure(width, height)
        ax = figure.add_axes((0, 0, 1, 1 - heading_room / height))
    figure = figure_of(ax)
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
