"""Distributed deadlock detection over a global wait-for graph.

Each site knows only its own lock table, so it sees only its local wait-for edges
("T1 waits for T2 here"). A deadlock that spans sites is a cycle in the *union* of the
local graphs that no single local graph contains. A detector collects the local graphs
(centralised detection), finds a cycle and breaks it by aborting one transaction of the
cycle, the victim. The rule used here is "youngest dies": the transaction that started
last has done the least work, and an older transaction is never starved by repeated
aborts (Bernstein, Hadzilacos and Goodman, ch. 3; Ozsu and Valduriez, ch. 11).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dtcourse.errors import DTCourseError

WaitFor = Mapping[str, Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Deadlock:
    """A cycle (each transaction waits for the next, the last for the first) and its victim."""

    cycle: tuple[str, ...]
    victim: str


def _sort_key(txn: str) -> tuple[int, str]:
    digits = "".join(ch for ch in txn if ch.isdigit())
    return (int(digits) if digits else -1, txn)


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


def find_cycle(graph: Mapping[str, Iterable[str]]) -> tuple[str, ...] | None:
    """A cycle of the graph, rotated to start at its smallest transaction, or None.

    Depth-first search in a fixed order, so the same graph always yields the same cycle.
    """
    succ = {node: sorted(targets, key=_sort_key) for node, targets in graph.items()}
    colour: dict[str, int] = {}
    for start in sorted(succ, key=_sort_key):
        if colour.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = 1
        while stack:
            node, i = stack[-1]
            targets = succ.get(node, [])
            if i == len(targets):
                stack.pop()
                path.pop()
                colour[node] = 2
                continue
            stack[-1] = (node, i + 1)
            nxt = targets[i]
            if colour.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                low = cycle.index(min(cycle, key=_sort_key))
                return tuple(cycle[low:] + cycle[:low])
            if not colour.get(nxt):
                colour[nxt] = 1
                stack.append((nxt, 0))
                path.append(nxt)
    return None


def is_cycle(graph: Mapping[str, Iterable[str]], cycle: Iterable[str]) -> bool:
    """Whether ``cycle`` lists distinct transactions, each waiting for the next."""
    nodes = list(cycle)
    if not nodes or len(set(nodes)) != len(nodes):
        return False
    return all(
        nodes[(i + 1) % len(nodes)] in set(graph.get(node, ())) for i, node in enumerate(nodes)
    )


def choose_victim(cycle: Iterable[str], started: Mapping[str, float]) -> str:
    """Youngest dies: the latest start time; ties go to the larger name."""
    members = list(cycle)
    if not members:
        raise DTCourseError("an empty cycle has no victim")
    missing = [txn for txn in members if txn not in started]
    if missing:
        raise DTCourseError(f"no start time for {', '.join(missing)}: give every transaction one")
    return max(members, key=lambda txn: (started[txn], _sort_key(txn)))


def detect(local: WaitFor, started: Mapping[str, float]) -> Deadlock | None:
    """Collect the local graphs, find a global cycle, pick its victim."""
    cycle = find_cycle(global_graph(local))
    if cycle is None:
        return None
    return Deadlock(cycle, choose_victim(cycle, started))


def local_cycles(local: WaitFor) -> dict[str, tuple[str, ...]]:
    """The cycle each site would find on its own (most global deadlocks have none)."""
    found = {}
    for site, edges in local.items():
        cycle = find_cycle(global_graph({site: edges}))
        if cycle is not None:
            found[site] = cycle
    return found


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
