"""Histories of reads and writes at several sites: the notation, and the tools to read it.

Isolation across sites is decided by one picture, the precedence graph of the global
history (Bernstein, Hadzilacos and Goodman 1987, ch. 2). Drawing that graph, finding its
cycle and naming the anomaly is the Phase 1 exercise, so none of it is here. What is here
is what a student is handed: the textbook notation read into immutable values
(``r1[x]@A w2[y=5]@B c1 a2``), each site's view of a history, the list of conflicting pairs
of operations, and ``Verdict``, the shape of the exercise's answer.

A transaction is *committed* unless the history aborts it; histories in the course often
leave out the commits, which then count as happening at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from dtcourse.errors import DTCourseError

__all__ = [
    "ANOMALIES",
    "Action",
    "Conflict",
    "Edge",
    "History",
    "Operation",
    "Verdict",
    "aborted",
    "as_history",
    "committed",
    "conflicts",
    "format_history",
    "local_history",
    "parse_history",
    "sites",
    "transactions",
    "txn_sort_key",
]

Action = Literal["r", "w", "c", "a"]
Edge = tuple[str, str]

#: The anomaly names the exercise's rules use, in the order the rules are tried.
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
    def edge(self) -> Edge:
        return (self.first.txn, self.second.txn)

    @property
    def kind(self) -> str:
        """``wr``, ``rw`` or ``ww``: the dependency the conflict creates."""
        return f"{self.first.action}{self.second.action}"

    def __str__(self) -> str:
        return f"{self.first} before {self.second}"


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


def conflicts(history: str | Iterable[Operation]) -> tuple[Conflict, ...]:
    """Every ordered pair of conflicting operations, in history order.

    Aborted transactions are listed too: a conflict is a fact about two operations, and
    which conflicts count for the precedence graph is for its builder to decide.
    """
    ops = as_history(history)
    return tuple(
        Conflict(first, second)
        for i, first in enumerate(ops)
        for second in ops[i + 1 :]
        if _conflicting(first, second)
    )


@dataclass(frozen=True)
class Verdict:
    """What the serializability exercise's ``analyse`` returns for one history.

    ``sites`` maps each site to the edges of its own precedence graph (what that site can
    see), ``edges`` are the global graph's; ``order`` is an equivalent serial order when
    the history is serializable, else None; ``anomaly`` is one of ``ANOMALIES`` or None.
    """

    sites: Mapping[str, frozenset[Edge]]
    edges: frozenset[Edge]
    serializable: bool
    order: tuple[str, ...] | None
    anomaly: str | None
