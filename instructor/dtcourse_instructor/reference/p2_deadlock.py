"""Reference for p2.deadlock: centralised detection over the global wait-for graph.

``find_deadlock`` collects the local graphs, finds a cycle by depth-first search in a fixed
order (so the same graph always yields the same cycle) and picks its victim by "youngest
dies". ``visible_cases()`` gives the visible check its scenarios: lock situations with no
global cycle (the answer there is None), and situations with one (the check then judges
the student's cycle and victim by their properties, so it stores no cycle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dtcourse.errors import DTCourseError
from dtcourse.lessons.deadlock import Deadlock, Scenario, WaitFor, global_graph, random_scenario
from dtcourse.runtime.checks.p2_deadlock import VISIBLE_COUNT, VISIBLE_SEED, VISIBLE_SIZE

__all__ = ["choose_victim", "find_cycle", "find_deadlock", "scenarios", "visible_cases"]


def _sort_key(txn: str) -> tuple[int, str]:
    digits = "".join(ch for ch in txn if ch.isdigit())
    return (int(digits) if digits else -1, txn)


def find_cycle(graph: Mapping[str, Iterable[str]]) -> tuple[str, ...] | None:
    """A cycle of the graph, rotated to start at its smallest transaction, or None."""
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


def choose_victim(cycle: Iterable[str], started: Mapping[str, float]) -> str:
    """Youngest dies: the latest start time; ties go to the larger name."""
    members = list(cycle)
    if not members:
        raise DTCourseError("an empty cycle has no victim")
    missing = [txn for txn in members if txn not in started]
    if missing:
        raise DTCourseError(f"no start time for {', '.join(missing)}: give every transaction one")
    return max(members, key=lambda txn: (started[txn], _sort_key(txn)))


def find_deadlock(local: WaitFor, started: Mapping[str, float]) -> Deadlock | None:
    """Collect the local graphs, find a global cycle, pick its victim."""
    cycle = find_cycle(global_graph(local))
    if cycle is None:
        return None
    return Deadlock(cycle, choose_victim(cycle, started))


def scenarios(seed: int, count: int, deadlock: bool, size: int) -> list[Scenario]:
    """The lock situations of one part: ``count`` of them from ``seed``, over 3 sites."""
    return [
        random_scenario(seed * 1000 + i, sites=3, transactions=size, waits=size, deadlock=deadlock)
        for i in range(count)
    ]


def _as_data(scenario: Scenario) -> dict[str, Any]:
    return {
        "local": {site: [list(edge) for edge in edges] for site, edges in scenario.local.items()},
        "started": dict(scenario.started),
    }


def visible_cases() -> dict[str, Any]:
    """Scenarios without and with a deadlock, as the reference judges them."""
    cases: dict[str, Any] = {"none": [], "deadlock": []}
    kinds = (("none", VISIBLE_SEED, False), ("deadlock", VISIBLE_SEED + 1, True))
    for key, seed, deadlock in kinds:
        for scenario in scenarios(seed, VISIBLE_COUNT, deadlock, VISIBLE_SIZE):
            found = find_deadlock(scenario.local, scenario.started)
            assert (found is not None) == deadlock, f"random_scenario broke its promise: {scenario}"
            cases[key].append(_as_data(scenario))
    return cases
