"""Pictures of precedence graphs: nodes on a circle, one arrow per edge, a cycle in red.

The picture draws the edges it is given and the cycle it is told about; it never decides
which edges a history has or whether it is serializable, since that is the Phase 1
exercise. Each arrow is labelled with the items of the history's conflicts that match it
(``x@A``), so a reader can trace every arrow back to two operations, and an arrow with no
conflict behind it says so. Drawn on a figure created here (never through pyplot), so
nothing global changes; in a notebook it shows itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from dtcourse.errors import DTCourseError
from dtcourse.lessons.histories import (
    Edge,
    History,
    Operation,
    as_history,
    committed,
    conflicts,
    format_history,
    sites,
    txn_sort_key,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CYCLE_COLOUR",
    "EDGE_COLOUR",
    "NODE_COLOUR",
    "cycle_edges",
    "draw_precedence",
    "edge_label",
    "node_positions",
    "precedence_figure",
]

CYCLE_COLOUR = "#c0392b"
EDGE_COLOUR = "#34495e"
NODE_COLOUR = "#eaf2f8"
NODE_RADIUS = 0.16
NO_CONFLICT = "no conflict"


def cycle_edges(cycle: Sequence[str] | None) -> frozenset[Edge]:
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


def edge_label(history: str | Iterable[Operation], edge: Edge, site: str | None = None) -> str:
    """The items whose conflicts match ``edge`` (``x@A, y@B``), or ``no conflict``.

    With ``site``, only that site's conflicts count.
    """
    seen: dict[str, None] = {}
    for conflict in conflicts(history):
        op = conflict.first
        if conflict.edge == edge and (site is None or op.site == site):
            seen[f"{op.item}@{op.site}" if op.site else str(op.item)] = None
    return ", ".join(seen) or NO_CONFLICT


def _edge_set(edges: Iterable[Sequence[str]], what: str) -> frozenset[Edge]:
    found: set[Edge] = set()
    for edge in edges:
        if isinstance(edge, str) or len(edge) != 2:
            raise DTCourseError(
                f"{what} must be (from, to) pairs like ('T1', 'T2'); found {edge!r}"
            )
        found.add((str(edge[0]), str(edge[1])))
    return frozenset(found)


def _sort_edges(edges: Iterable[Edge]) -> list[Edge]:
    return sorted(edges, key=lambda e: (txn_sort_key(e[0]), txn_sort_key(e[1])))


def draw_precedence(
    ax: Axes,
    nodes: Iterable[str],
    edges: Iterable[Edge],
    *,
    labels: Mapping[Edge, str] | None = None,
    cycle: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Draw ``nodes`` and ``edges`` on ``ax``; the edges of ``cycle`` in red."""
    from matplotlib.patches import Circle, FancyArrowPatch

    edge_set = _edge_set(edges, "edges")
    red = cycle_edges(cycle)
    positions = node_positions({*nodes, *(node for edge in edge_set for node in edge)})
    for node, (x, y) in positions.items():
        ax.add_patch(
            Circle((x, y), NODE_RADIUS, facecolor=NODE_COLOUR, edgecolor=EDGE_COLOUR, zorder=3)
        )
        ax.text(x, y, node, ha="center", va="center", fontsize=11, zorder=4)
    for edge in _sort_edges(edge_set):
        a, b = edge
        if a == b:
            continue  # a transaction never conflicts with itself; nothing to draw
        colour = CYCLE_COLOUR if edge in red else EDGE_COLOUR
        bend = 0.25 if (b, a) in edge_set else 0.0
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
        label = (labels or {}).get(edge)
        if not label:
            continue
        (xa, ya), (xb, yb) = positions[a], positions[b]
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        # the label sits on the bulge of a bent arrow: offset perpendicular to the edge
        dx, dy = xb - xa, yb - ya
        length = math.hypot(dx, dy) or 1.0
        offset = bend * length / 2 + 0.1
        lx, ly = mx + dy / length * offset, my - dx / length * offset
        ax.text(lx, ly, label, ha="center", va="center", fontsize=9,
                color=colour, zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)


def _labels(ops: History, edges: Iterable[Edge], site: str | None = None) -> dict[Edge, str]:
    return {edge: edge_label(ops, edge, site) for edge in edges}


def precedence_figure(
    history: str | Iterable[Operation],
    edges: Iterable[Sequence[str]],
    *,
    cycle: Sequence[str] | None = None,
    site_edges: Mapping[str, Iterable[Sequence[str]]] | None = None,
    title: str | None = None,
) -> Figure:
    """Draw the given precedence graph of a history, with each site's graph beside it.

    ``edges`` are the global graph's edges, ``site_edges`` (optional) each site's own, and
    ``cycle`` (optional) a cycle among ``edges`` to draw in red, such as ``("T1", "T2")``
    for T1 → T2 → T1. The nodes are the history's committed transactions and any other
    transaction an edge names. The site panels show why local serializability is not
    enough: every local graph can be acyclic while their union has a cycle.
    """
    from dtcourse.pictures.figure import CourseFigure

    ops = as_history(history)
    if not ops:
        raise DTCourseError("the history is empty: give at least one read or write")
    global_edges = _edge_set(edges, "edges")
    cycle_text = " → ".join((*cycle, cycle[0])) if cycle else ""
    missing = _sort_edges(cycle_edges(cycle) - global_edges)
    if missing:
        raise DTCourseError(
            f"the cycle {cycle_text} uses the edge {missing[0][0]} → {missing[0][1]}, which "
            "is not among the edges given: pass every edge of the graph in edges"
        )
    by_site = {str(site): _edge_set(found, f"the edges of site {site}")
               for site, found in (site_edges or {}).items()}
    order = [site for site in sites(ops) if site in by_site]
    order += [site for site in by_site if site not in order]
    nodes = committed(ops)
    panels: list[tuple[str, frozenset[Edge], dict[Edge, str], Sequence[str] | None]] = [
        (f"site {site}", by_site[site], _labels(ops, by_site[site], site), None)
        for site in order
    ]
    label = "global" if panels else "precedence graph"
    if cycle:
        label += f"\ncycle {cycle_text}: not serializable"
    panels.append((label, global_edges, _labels(ops, global_edges), cycle))
    figure = CourseFigure(figsize=(max(3.4 * len(panels), 5.0), 3.6), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, drawn, labels, red) in zip(axes, panels, strict=True):
        draw_precedence(ax, nodes, drawn, labels=labels, cycle=red, title=name)
    figure.suptitle(title or format_history(ops), fontsize=10, family="monospace")
    return figure
