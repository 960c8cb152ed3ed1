"""Histories of reads and writes at several sites, their conflicts and precedence graphs.

Isolation across sites is decided by one picture: the precedence graph of the global
history (Bernstein, Hadzilacos and Goodman 1987, ch. 2). Every site sees only its own part
of it, so a history can be serializable at each site and still not be serializable as a
whole. This module is that theory as plain functions over immutable values: parse the
textbook notation (``r1[x]@A w2[y=5]@B c1 a2``), list the conflicts, build the graph, find a
cycle or a serial order, and name the classic anomaly the history exhibits.

A transaction is *committed* unless the history aborts it; histories in the course often
leave out the commits, which then count as happening at the end. Aborted transactions
contribute no nodes and no edges: the graph is that of the committed projection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from dtcourse.errors import DTCourseError

Action = Literal["r", "w", "c", "a"]
Anomaly = Literal["dirty read", "lost update", "write skew", "read skew", "other"]

#: The names ``classify_anomaly`` can return, most specific rule first.
ANOMALIES: tuple[str, ...] = ("dirty read", "lost update", "write skew", "read skew", "other")

_TOKEN = re.compile(
    r"^(?P<action>[rwca])(?P<txn>\d+)"
    r"(?:\[(?P<item>[A-Za-z_][\w.]*)(?:=(?P<value>[^\]]*))?\])?"
    r"(?:@(?P<site>[A-Za-z_][\w-]*))?$"
)


@dataclass(frozen=True)
class Operation:
    """One step of a history: transaction ``txn`` reads, writes, commits or aborts.

    ``item`` and ``site`` belong to reads and writes; ``value`` is what was read or written
    when the history shows it (``w1[x=50]``), kept only for display.
    """

    action: Action
    txn: str
    item: str | None = None
    site: str | None = None
    value: str | None = None

    @property
    def is_access(self) -> bool:
        return self.action in ("r", "w")

    def __str__(self) -> str:
        number = self.txn[1:] if self.txn.startswith("T") else self.txn
        text = f"{self.action}{number}"
        if self.item is not None:
            text += f"[{self.item}" + (f"={self.value}" if self.value is not None else "") + "]"
        if self.site is not None:
            text += f"@{self.site}"
        return text


History = tuple[Operation, ...]


@dataclass(frozen=True)
class Conflict:
    """Two operations of different transactions on the same item at the same site, at
    least one a write; ``first`` comes before ``second`` in the history."""

    first: Operation
    second: Operation

    @property
    def edge(self) -> tuple[str, str]:
        return (self.first.txn, self.second.txn)

    @property
    def kind(self) -> str:
        """``wr``, ``rw`` or ``ww``: the dependency the conflict creates."""
        return f"{self.first.action}{self.second.action}"

    def __str__(self) -> str:
        return f"{self.first} before {self.second}"


@dataclass(frozen=True)
class PrecedenceGraph:
    """One node per committed transaction, an edge Ti -> Tj per ordered conflict."""

    nodes: tuple[str, ...]
    edges: frozenset[tuple[str, str]]
    conflicts: tuple[Conflict, ...]

    def successors(self, node: str) -> tuple[str, ...]:
        return tuple(sorted((b for a, b in self.edges if a == node), key=txn_sort_key))

    def reasons(self, edge: tuple[str, str]) -> tuple[Conflict, ...]:
        """The conflicts that put ``edge`` into the graph (why the arrow is there)."""
        return tuple(conflict for conflict in self.conflicts if conflict.edge == edge)


def txn_sort_key(txn: str) -> tuple[int, str]:
    """T2 before T10: number order when names end in a number."""
    digits = re.search(r"\d+$", txn)
    return (int(digits.group()) if digits else -1, txn)


def parse_history(text: str, *, default_site: str | None = None) -> History:
    """Read the textbook notation, e.g. ``"r1[x]@A w2[x=5]@A c1 a2"``.

    Operations are separated by spaces (or commas); ``@SITE`` tags a read or write with
    its site, and untagged accesses get ``default_site``.
    """
    if not isinstance(text, str):
        raise DTCourseError(
            f"a history must be a string such as 'r1[x]@A w2[x]@A', not {type(text).__name__}"
        )
    operations: list[Operation] = []
    for position, token in enumerate(text.replace(",", " ").split(), start=1):
        match = _TOKEN.match(token)
        if match is None:
            raise DTCourseError(
                f"cannot read operation {position} {token!r} of the history: write r1[x], "
                "w2[y=5], c1 or a2, optionally with a site as r1[x]@A"
            )
        action = match["action"]
        item, site = match["item"], match["site"] or None
        if action in ("r", "w") and item is None:
            raise DTCourseError(
                f"operation {position} {token!r} reads or writes nothing: name the item, "
                f"as in {action}{match['txn']}[x]"
            )
        if action in ("c", "a") and item is not None:
            raise DTCourseError(
                f"operation {position} {token!r}: a commit or abort takes no item; "
                f"write {action}{match['txn']}"
            )
        operations.append(
            Operation(
                action=action,  # type: ignore[arg-type]
                txn=f"T{match['txn']}",
                item=item,
                site=(site or default_site) if action in ("r", "w") else site,
                value=match["value"],
            )
        )
    return tuple(operations)


def as_history(history: str | Iterable[Operation]) -> History:
    """Accept the notation or operations, so every function takes either."""
    if isinstance(history, str):
        return parse_history(history)
    operations = tuple(history)
    for operation in operations:
        if not isinstance(operation, Operation):
            raise DTCourseError(
                f"a history holds Operation values, found {type(operation).__name__} "
                f"{operation!r}; build one with parse_history('r1[x]@A w2[x]@A')"
            )
    return operations


def format_history(history: str | Iterable[Operation]) -> str:
    return " ".join(str(operation) for operation in as_history(history))


def transactions(history: str | Iterable[Operation]) -> tuple[str, ...]:
    """Every transaction named in the history, in order of first appearance."""
    return tuple(dict.fromkeys(operation.txn for operation in as_history(history)))


def aborted(history: str | Iterable[Operation]) -> frozenset[str]:
    return frozenset(op.txn for op in as_history(history) if op.action == "a")


def committed(history: str | Iterable[Operation]) -> tuple[str, ...]:
    """Transactions that do not abort (a missing commit counts as one at the end)."""
    ops = as_history(history)
    gone = aborted(ops)
    return tuple(txn for txn in transactions(ops) if txn not in gone)


def sites(history: str | Iterable[Operation]) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(op.site for op in as_history(history) if op.is_access and op.site)
    )


def local_history(history: str | Iterable[Operation], site: str) -> History:
    """What one site sees: its own reads and writes, plus every commit and abort."""
    return tuple(
        op for op in as_history(history) if not op.is_access or op.site == site
    )


def _conflicting(first: Operation, second: Operation) -> bool:
    return (
        first.is_access
        and second.is_access
        and first.txn != second.txn
        and first.item == second.item
        and first.site == second.site
        and "w" in (first.action, second.action)
    )


def conflicts(history: str | Iterable[Operation], *, include_aborted: bool = False) -> tuple[
    Conflict, ...
]:
    """Every ordered pair of conflicting operations, in history order.

    Conflicts involving an aborted transaction are left out unless ``include_aborted``.
    """
    ops = as_history(history)
    gone = frozenset() if include_aborted else aborted(ops)
    found: list[Conflict] = []
    for i, first in enumerate(ops):
        if first.txn in gone:
            continue
        for second in ops[i + 1 :]:
            if second.txn not in gone and _conflicting(first, second):
                found.append(Conflict(first, second))
    return tuple(found)


def precedence_graph(history: str | Iterable[Operation]) -> PrecedenceGraph:
    ops = as_history(history)
    found = conflicts(ops)
    return PrecedenceGraph(
        nodes=committed(ops),
        edges=frozenset(conflict.edge for conflict in found),
        conflicts=found,
    )


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
    """Reads of a value written by a transaction that aborts after the read."""
    ops = as_history(history)
    found: list[Conflict] = []
    for index, read in enumerate(ops):
        if read.action != "r":
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


def _first(ops: History, action: str, txn: str, item: str, site: str | None) -> int | None:
    for index, op in enumerate(ops):
        if op.action == action and op.txn == txn and op.item == item and op.site == site:
            return index
    return None


def _last(ops: History, action: str, txn: str, item: str, site: str | None) -> int | None:
    found = None
    for index, op in enumerate(ops):
        if op.action == action and op.txn == txn and op.item == item and op.site == site:
            found = index
    return found


def _items(ops: History) -> tuple[tuple[str, str | None], ...]:
    return tuple(dict.fromkeys((op.item, op.site) for op in ops if op.is_access and op.item))


def _before(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a < b


def classify_anomaly(history: str | Iterable[Operation]) -> Anomaly | None:
    """Name the anomaly a history shows, or None when it shows none.

    The rules, checked in this order (Berenson et al. 1995 name all four):

    1. ``dirty read``: a transaction reads a value written by a transaction that aborts
       after the read.
    2. None when the committed projection is conflict-serializable.
    3. ``lost update``: two committed transactions each read an item before the other
       writes that same item.
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
    gone = aborted(ops)
    live = [txn for txn in committed(ops)]
    live_ops = tuple(op for op in ops if op.txn not in gone)
    items = _items(live_ops)
    pairs = [(a, b) for a in live for b in live if a != b]

    def read_before_write(reader: str, writer: str, item: str, site: str | None) -> bool:
        return _before(_first(live_ops, "r", reader, item, site),
                       _last(live_ops, "w", writer, item, site))

    def write_before_read(writer: str, reader: str, item: str, site: str | None) -> bool:
        return _before(_first(live_ops, "w", writer, item, site),
                       _last(live_ops, "r", reader, item, site))

    for a, b in pairs:
        for item, site in items:
            if read_before_write(a, b, item, site) and read_before_write(b, a, item, site):
                return "lost update"
    for a, b in pairs:
        for x in items:
            for y in items:
                if x != y and read_before_write(a, b, *x) and read_before_write(b, a, *y):
                    return "write skew"
    for reader, writer in pairs:
        for x in items:
            for y in items:
                if (
                    x != y
                    and write_before_read(writer, reader, *x)
                    and read_before_write(reader, writer, *y)
                ):
                    return "read skew"
    return "other"


@dataclass(frozen=True)
class Verdict:
    """The answer to the serializability exercise for one history.

    ``order`` is an equivalent serial order when the history is serializable, else None;
    ``anomaly`` is one of ``ANOMALIES`` or None.
    """

    edges: frozenset[tuple[str, str]]
    serializable: bool
    order: tuple[str, ...] | None
    anomaly: str | None

