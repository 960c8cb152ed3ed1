"""Reference solution of p1.serializability: precedence graphs, cycles, serial orders and
anomaly names of multi-site histories.

The theory is Bernstein, Hadzilacos and Goodman 1987, ch. 2: the precedence graph of the
committed projection, acyclic exactly when the history is conflict-serializable. The
anomaly names follow the textbooks: lost update and read skew as Berenson et al. 1995
define them (P4 ``r1[x] … w2[x] … w1[x] … c1`` and A5A), dirty read as Adya's G1a (a
*committed* transaction read a value an aborted one wrote). The student package holds only
the notation and the list of conflicts; everything that decides is here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dtcourse.errors import DTCourseError
from dtcourse.lessons.histories import (
    Conflict,
    Edge,
    History,
    Operation,
    Verdict,
    aborted,
    as_history,
    committed,
    conflicts,
    local_history,
    sites,
    txn_sort_key,
)
from dtcourse.runtime.checks.casedata import answer_digest
from dtcourse.runtime.checks.p1_serializability import anomaly_salt

__all__ = [
    "VISIBLE_HISTORIES",
    "Anomaly",
    "PrecedenceGraph",
    "analyse",
    "case",
    "classify_anomaly",
    "dirty_reads",
    "find_cycle",
    "is_conflict_serializable",
    "is_topological_order",
    "lost_updates",
    "precedence_graph",
    "serial_order",
    "site_graphs",
    "visible_cases",
]

Anomaly = Literal["dirty read", "lost update", "write skew", "read skew", "other"]

#: The reading's histories, the ones the notebook works through in the open. The last two
#: are the textbook cases the rules were aligned with: Berenson's lost update whose second
#: writer writes blindly, and a dirty read whose reader aborts too (not counted, Adya).
VISIBLE_HISTORIES: tuple[str, ...] = (
    "r1[x]@A w2[x]@A r2[y]@A w1[y]@A c1 c2",
    "r1[x]@A w2[x]@A w1[y]@A r2[y]@A c1 c2",
    "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2",
    "w1[x=50]@A r2[x=50]@A a1 c2",
    "r1[x=10]@A r2[x=10]@A w1[x=11]@A c1 w2[x=11]@A c2",
    "r1[x]@A r1[y]@B r2[x]@A r2[y]@B w1[x=off]@A w2[y=off]@B c1 c2",
    "r1[x]@A w1[x]@A r2[x]@A w2[x]@A r3[y]@B w3[y]@B c1 c2 c3",
    "r1[x]@A w2[x]@A w1[x]@A c1 c2",
    "w1[x]@A r2[x]@A a1 a2",
)


@dataclass(frozen=True)
class PrecedenceGraph:
    """One node per committed transaction, an edge Ti -> Tj per ordered conflict."""

    nodes: tuple[str, ...]
    edges: frozenset[Edge]
    conflicts: tuple[Conflict, ...]

    def successors(self, node: str) -> tuple[str, ...]:
        return tuple(sorted((b for a, b in self.edges if a == node), key=txn_sort_key))

    def reasons(self, edge: Edge) -> tuple[Conflict, ...]:
        """The conflicts that put ``edge`` into the graph (why the arrow is there)."""
        return tuple(conflict for conflict in self.conflicts if conflict.edge == edge)


def precedence_graph(history: str | Iterable[Operation]) -> PrecedenceGraph:
    """The graph of the committed projection: aborted transactions give no node, no edge."""
    ops = as_history(history)
    gone = aborted(ops)
    found = tuple(
        conflict
        for conflict in conflicts(ops)
        if conflict.first.txn not in gone and conflict.second.txn not in gone
    )
    return PrecedenceGraph(
        nodes=committed(ops),
        edges=frozenset(conflict.edge for conflict in found),
        conflicts=found,
    )


def site_graphs(history: str | Iterable[Operation]) -> dict[str, PrecedenceGraph]:
    """Each site's own graph: what that site sees; the global graph is their union."""
    ops = as_history(history)
    return {site: precedence_graph(local_history(ops, site)) for site in sites(ops)}


def find_cycle(graph: PrecedenceGraph) -> tuple[str, ...] | None:
    """A cycle as the list of its nodes (T1, T2 means T1 -> T2 -> T1), or None.

    Depth-first search in a fixed node order, so the same graph always yields the same
    cycle; the cycle is rotated to start at its smallest transaction.
    """
    colour: dict[str, str] = {node: "white" for node in graph.nodes}
    path: list[str] = []

    def visit(node: str) -> tuple[str, ...] | None:
        colour[node] = "grey"
        path.append(node)
        for nxt in graph.successors(node):
            if colour.get(nxt) == "grey":
                cycle = path[path.index(nxt) :]
                start = cycle.index(min(cycle, key=txn_sort_key))
                return tuple(cycle[start:] + cycle[:start])
            if colour.get(nxt) == "white":
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph.nodes, key=txn_sort_key):
        if colour[node] == "white":
            found = visit(node)
            if found is not None:
                return found
    return None


def serial_order(graph: PrecedenceGraph) -> tuple[str, ...] | None:
    """An equivalent serial order (a topological order of the graph), or None on a cycle.

    Among the transactions free to go next, the lowest-numbered goes first.
    """
    incoming = {node: 0 for node in graph.nodes}
    for _, target in graph.edges:
        incoming[target] += 1
    ready = sorted((n for n, count in incoming.items() if count == 0), key=txn_sort_key)
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for nxt in graph.successors(node):
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
                ready.sort(key=txn_sort_key)
    return tuple(order) if len(order) == len(graph.nodes) else None


def is_topological_order(graph: PrecedenceGraph, order: Sequence[str]) -> bool:
    """Whether ``order`` lists every node once and respects every edge."""
    if sorted(order) != sorted(graph.nodes):
        return False
    position = {node: index for index, node in enumerate(order)}
    return all(position[a] < position[b] for a, b in graph.edges)


def is_conflict_serializable(history: str | Iterable[Operation]) -> bool:
    return find_cycle(precedence_graph(history)) is None


def dirty_reads(history: str | Iterable[Operation]) -> tuple[Conflict, ...]:
    """Reads by a committed transaction of a value written by one that aborts later.

    Adya's G1a ("aborted reads") counts only committed readers: a reader that aborts too
    leaves nothing behind that depends on the value that never existed.
    """
    ops = as_history(history)
    gone = aborted(ops)
    found: list[Conflict] = []
    for index, read in enumerate(ops):
        if read.action != "r" or read.txn in gone:
            continue
        writer = next(
            (
                op
                for op in reversed(ops[:index])
                if op.action == "w" and op.item == read.item and op.site == read.site
            ),
            None,
        )
        if writer is None or writer.txn == read.txn:
            continue
        outcome = next(
            (op for op in ops if op.txn == writer.txn and op.action in ("c", "a")), None
        )
        if outcome is not None and outcome.action == "a" and ops.index(outcome) > index:
            found.append(Conflict(writer, read))
    return tuple(found)


Key = tuple[str | None, str | None]  # (item, site)


def _positions(ops: History, action: str, txn: str, key: Key) -> list[int]:
    return [
        index
        for index, op in enumerate(ops)
        if op.action == action and op.txn == txn and (op.item, op.site) == key
    ]


def _keys(ops: History) -> tuple[Key, ...]:
    return tuple(dict.fromkeys((op.item, op.site) for op in ops if op.is_access))


def _read_before_write(ops: History, reader: str, writer: str, key: Key) -> bool:
    reads, writes = _positions(ops, "r", reader, key), _positions(ops, "w", writer, key)
    return bool(reads and writes) and reads[0] < writes[-1]


def _write_before_read(ops: History, writer: str, reader: str, key: Key) -> bool:
    writes, reads = _positions(ops, "w", writer, key), _positions(ops, "r", reader, key)
    return bool(reads and writes) and writes[0] < reads[-1]


def lost_updates(history: str | Iterable[Operation]) -> tuple[tuple[str, str, str], ...]:
    """(reader, other writer, item) of every committed ``r1[x] … w2[x] … w1[x]`` pattern.

    Berenson et al.'s P4: T1 reads x, T2 then writes x (blindly or not), T1 then writes x
    from what it read, and T2's update is lost.
    """
    ops = as_history(history)
    gone = aborted(ops)
    live = tuple(op for op in ops if op.txn not in gone)
    found: list[tuple[str, str, str]] = []
    names = committed(ops)
    for first in names:
        for second in names:
            if first == second:
                continue
            for key in _keys(live):
                reads = _positions(live, "r", first, key)
                rewrites = _positions(live, "w", first, key)
                if not reads or not rewrites:
                    continue
                if any(
                    reads[0] < index < rewrites[-1]
                    for index in _positions(live, "w", second, key)
                ):
                    item = f"{key[0]}@{key[1]}" if key[1] else str(key[0])
                    found.append((first, second, item))
    return tuple(found)


def classify_anomaly(history: str | Iterable[Operation]) -> Anomaly | None:
    """Name the anomaly a history shows, or None when it shows none.

    The rules, checked in this order:

    1. ``dirty read``: a committed transaction reads a value written by a transaction that
       aborts after the read (Adya's G1a; a reader that aborts too is not counted).
    2. None when the committed projection is conflict-serializable.
    3. ``lost update``: a committed transaction reads an item, a second committed
       transaction then writes it, and the first writes it after that (Berenson's P4,
       ``r1[x] … w2[x] … w1[x]``; the second writer may write blindly).
    4. ``write skew``: two committed transactions each read an item the other one later
       writes, and the items differ.
    5. ``read skew``: a committed transaction reads one item before and another item
       after a second transaction wrote both (the auditor that sees half a transfer).
    6. ``other``: a cycle of another shape (longer cycles, cycles of writes only).
    """
    ops = as_history(history)
    if dirty_reads(ops):
        return "dirty read"
    if is_conflict_serializable(ops):
        return None
    if lost_updates(ops):
        return "lost update"
    gone = aborted(ops)
    live = tuple(op for op in ops if op.txn not in gone)
    keys = _keys(live)
    names = committed(ops)
    pairs = [(a, b) for a in names for b in names if a != b]
    for a, b in pairs:
        for x in keys:
            for y in keys:
                if (
                    x != y
                    and _read_before_write(live, a, b, x)
                    and _read_before_write(live, b, a, y)
                ):
                    return "write skew"
    for reader, writer in pairs:
        for x in keys:
            for y in keys:
                if (
                    x != y
                    and _write_before_read(live, writer, reader, x)
                    and _read_before_write(live, reader, writer, y)
                ):
                    return "read skew"
    return "other"


def analyse(history: str | Iterable[Operation]) -> Verdict:
    """The exercise's answer for one history."""
    ops = as_history(history)
    graph = precedence_graph(ops)
    order = serial_order(graph)
    return Verdict(
        sites={site: local.edges for site, local in site_graphs(ops).items()},
        edges=graph.edges,
        serializable=order is not None,
        order=order,
        anomaly=classify_anomaly(ops),
    )


def _pairs(edges: Iterable[Edge]) -> list[list[str]]:
    return [list(edge) for edge in sorted(edges, key=lambda e: (txn_sort_key(e[0]),
                                                                 txn_sort_key(e[1])))]


def case(history: str) -> dict[str, Any]:
    """A history's expected results as JSON-able data; the anomaly only as a salted hash."""
    untagged = [op for op in as_history(history) if op.is_access and op.site is None]
    if untagged:
        raise DTCourseError(
            f"{history}: {untagged[0]} has no site; exercise histories tag every read and "
            "write with its site, as in r1[x]@A"
        )
    verdict = analyse(history)
    return {
        "history": history,
        "sites": {site: _pairs(edges) for site, edges in verdict.sites.items()},
        "edges": _pairs(verdict.edges),
        "serializable": verdict.serializable,
        "anomaly": answer_digest(verdict.anomaly, anomaly_salt(history)),
    }


def visible_cases() -> dict[str, Any]:
    """What the visible checks compare with: the reading's histories and their results."""
    return {"histories": [case(history) for history in VISIBLE_HISTORIES]}
