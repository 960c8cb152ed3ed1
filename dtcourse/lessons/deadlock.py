"""Distributed deadlock: sites' wait-for graphs, their union, and scenarios to try.

Each site knows only its own lock table, so it sees only its local wait-for edges
("T1 waits for T2 here"). A deadlock that spans sites is a cycle in the *union* of the
local graphs that no single local graph contains. A detector collects the local graphs
(centralised detection), finds a cycle and breaks it by aborting one transaction of the
cycle, the victim, by "youngest dies": the transaction that started last has done the
least work, and an older transaction is never starved by repeated aborts (Bernstein,
Hadzilacos and Goodman, ch. 3; Ozsu and Valduriez, ch. 11).

Writing that detector is exercise ``p2.deadlock``, so this module gives only what the
exercise hands out: the union of the local graphs (``global_graph``), a test that a list of
transactions is a cycle of a graph (``is_cycle``), the answer's type (``Deadlock``) and
random lock situations to try a detector on (``random_scenario``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dtcourse.errors import DTCourseError

__all__ = ["Deadlock", "Scenario", "WaitFor", "global_graph", "is_cycle", "random_scenario"]

WaitFor = Mapping[str, Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Deadlock:
    """A cycle (each transaction waits for the next, the last for the first) and its victim."""

    cycle: tuple[str, ...]
    victim: str


def global_graph(local: WaitFor) -> dict[str, frozenset[str]]:
    """The union of the sites' wait-for edges: waiter -> the transactions it waits for."""
    if not isinstance(local, Mapping):
        raise DTCourseError(
            "give the local wait-for graphs as a mapping {site: [(waiter, holder), ...]}"
        )
    graph: dict[str, set[str]] = {}
    for site, edges in local.items():
        for edge in edges:
            try:
                waiter, holder = edge
            except (TypeError, ValueError):
                raise DTCourseError(
                    f"site {site}: a wait-for edge is a (waiter, holder) pair, not {edge!r}"
                ) from None
            graph.setdefault(str(waiter), set()).add(str(holder))
            graph.setdefault(str(holder), set())
    return {txn: frozenset(holders) for txn, holders in graph.items()}


def is_cycle(graph: Mapping[str, Iterable[str]], cycle: Iterable[str]) -> bool:
    """Whether ``cycle`` lists distinct transactions, each waiting for the next."""
    nodes = list(cycle)
    if not nodes or len(set(nodes)) != len(nodes):
        return False
    return all(
        nodes[(i + 1) % len(nodes)] in set(graph.get(node, ())) for i, node in enumerate(nodes)
    )


@dataclass(frozen=True)
class Scenario:
    """Sites' local wait-for edges and the transactions' start times."""

    local: dict[str, tuple[tuple[str, str], ...]]
    started: dict[str, int]


def random_scenario(
    seed: int,
    *,
    sites: int = 3,
    transactions: int = 6,
    waits: int = 6,
    deadlock: bool | None = None,
) -> Scenario:
    """A random lock situation; ``deadlock`` forces a global cycle in (True) or out (False).

    A forced deadlock threads its cycle through several sites, so no single site sees it.
    """
    if sites < 1 or transactions < 2 or waits < 0:
        raise DTCourseError("a scenario needs at least 1 site, 2 transactions and 0 waits")
    rng = random.Random(seed)
    names = [f"T{i}" for i in range(1, transactions + 1)]
    site_names = [chr(ord("A") + i) for i in range(sites)]
    started = dict(zip(names, rng.sample(range(1, 10 * transactions), transactions), strict=True))
    edges: list[tuple[str, str, str]] = []
    if deadlock:
        members = rng.sample(names, rng.randint(2, min(transactions, 4)))
        for i, waiter in enumerate(members):
            holder = members[(i + 1) % len(members)]
            edges.append((site_names[i % sites], waiter, holder))
    order = {name: rng.random() for name in names}
    for _ in range(waits):
        waiter, holder = rng.sample(names, 2)
        if deadlock is False and order[waiter] > order[holder]:
            waiter, holder = holder, waiter  # waits go one way only: no cycle is possible
        edges.append((rng.choice(site_names), waiter, holder))
    local: dict[str, list[tuple[str, str]]] = {site: [] for site in site_names}
    for site, waiter, holder in edges:
        if (waiter, holder) not in local[site]:
            local[site].append((waiter, holder))
    return Scenario({s: tuple(e) for s, e in local.items()}, started)
