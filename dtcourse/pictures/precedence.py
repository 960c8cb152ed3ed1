"""Pictures of precedence graphs: nodes on a circle, one arrow per edge, the cycle in red.

Drawn on a figure created here (never through pyplot), so nothing global changes and the
caller decides whether to show, save or test the picture; in a notebook it shows itself. Each
arrow is labelled with the items whose conflicts put it there (``x@A``), so a student
can trace every arrow back to two operations of the history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from dtcourse.errors import DTCourseError
from dtcourse.lessons.histories import (
    Operation,
    PrecedenceGraph,
    as_history,
    find_cycle,
    format_history,
    local_history,
    precedence_graph,
    sites,
    txn_sort_key,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CYCLE_COLOUR = "#c0392b"
EDGE_COLOUR = "#34495e"
NODE_COLOUR = "#eaf2f8"
NODE_RADIUS = 0.16


def cycle_edges(cycle: Sequence[str] | None) -> frozenset[tuple[str, str]]:
    """The edges of a cycle given as its nodes (T1, T2 means T1 -> T2 -> T1)."""
    if not cycle:
        return frozenset()
    return frozenset((cycle[i], cycle[(i + 1) % len(cycle)]) for i in range(len(cycle)))


def node_positions(nodes: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Nodes evenly on a unit circle, the first at the left, in transaction order."""
    ordered = sorted(nodes, key=txn_sort_key)
    if len(ordered) == 1:
        return {ordered[0]: (0.0, 0.0)}
    return {
        node: (-math.cos(2 * math.pi * i / len(ordered)), math.sin(2 * math.pi * i / len(ordered)))
        for i, node in enumerate(ordered)
    }


def edge_label(graph: PrecedenceGraph, edge: tuple[str, str]) -> str:
    """The items behind an edge, e.g. ``x@A, y@B`` (``rw``/``wr``/``ww`` kept out: brevity)."""
    seen: dict[str, None] = {}
    for conflict in graph.reasons(edge):
        op = conflict.first
        seen[f"{op.item}@{op.site}" if op.site else str(op.item)] = None
    return ", ".join(seen)


def draw_precedence(
    ax: Axes,
    graph: PrecedenceGraph,
    *,
    title: str | None = None,
    highlight_cycle: bool = True,
) -> tuple[str, ...] | None:
    """Draw ``graph`` on ``ax``; returns the cycle it highlighted (None if acyclic)."""
    from matplotlib.patches import Circle, FancyArrowPatch

    cycle = find_cycle(graph) if highlight_cycle else None
    red = cycle_edges(cycle)
    positions = node_positions(graph.nodes)
    for node, (x, y) in positions.items():
        ax.add_patch(
            Circle((x, y), NODE_RADIUS, facecolor=NODE_COLOUR, edgecolor=EDGE_COLOUR, zorder=3)
        )
        ax.text(x, y, node, ha="center", va="center", fontsize=11, zorder=4)
    for edge in sorted(graph.edges, key=lambda e: (txn_sort_key(e[0]), txn_sort_key(e[1]))):
        a, b = edge
        if a not in positions or b not in positions:
            continue
        colour = CYCLE_COLOUR if edge in red else EDGE_COLOUR
        bend = 0.25 if (b, a) in graph.edges else 0.0
        arrow = FancyArrowPatch(
            positions[a],
            positions[b],
            connectionstyle=f"arc3,rad={bend}",
            arrowstyle="-|>",
            mutation_scale=16,
            linewidth=2.2 if edge in red else 1.4,
            color=colour,
            shrinkA=NODE_RADIUS * 100,
            shrinkB=NODE_RADIUS * 100,
            zorder=2,
        )
        ax.add_patch(arrow)
        (xa, ya), (xb, yb) = positions[a], positions[b]
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        # the label sits on the bulge of a bent arrow: offset perpendicular to the edge
        dx, dy = xb - xa, yb - ya
        length = math.hypot(dx, dy) or 1.0
        offset = bend * length / 2 + 0.1
        lx, ly = mx + dy / length * offset, my - dx / length * offset
        ax.text(lx, ly, edge_label(graph, edge), ha="center", va="center", fontsize=9,
                color=colour, zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    verdict = (
        f"cycle {' → '.join((*cycle, cycle[0]))}: not serializable"
        if cycle
        else "acyclic: serializable"
    )
    ax.set_title(f"{title}\n{verdict}" if title else verdict, fontsize=10)
    return cycle


def precedence_figure(
    history: str | Iterable[Operation], *, title: str | None = None, by_site: bool = False
) -> Figure:
    """The precedence graph of a history; with ``by_site``, each site's graph beside it.

    The per-site panels show why local serializability is not enough: every local graph
    can be acyclic while the global one, their union, has a cycle.
    """
    from dtcourse.pictures.figure import CourseFigure

    ops = as_history(history)
    if not ops:
        raise DTCourseError("the history is empty: give at least one read or write")
    places = sites(ops) if by_site else ()
    panels = [(f"site {site}", precedence_graph(local_history(ops, site))) for site in places]
    panels.append(("global" if places else "precedence graph", precedence_graph(ops)))
    figure = CourseFigure(figsize=(max(3.4 * len(panels), 5.0), 3.6), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, graph) in zip(axes, panels, strict=True):
        draw_precedence(ax, graph, title=label)
    figure.suptitle(title or format_history(ops), fontsize=10, family="monospace")
    return figure
