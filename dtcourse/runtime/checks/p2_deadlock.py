"""Visible checks of p2.deadlock: distributed deadlock detection, judged by properties.

No detector ships with the student package. The scenarios come from ``dtcourse build``
(the instructor's lock situations, with and without a global cycle), and the answers are
judged without an expected cycle:

* ``none``: where no global cycle exists, the answer is None;
* ``cycle``: where one exists, the answer's cycle is a cycle of the global wait-for graph
  (``is_cycle``), whichever one it is;
* ``victim``: the victim is the youngest transaction (latest start) of the answer's cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dtcourse.lessons.deadlock import Scenario, global_graph, is_cycle
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.casedata import load_cases

__all__ = [
    "EXERCISE",
    "VISIBLE_COUNT",
    "VISIBLE_SEED",
    "VISIBLE_SIZE",
    "check_cycle",
    "check_victim",
    "cycle",
    "none",
    "verdict",
    "victim",
]

#: The visible scenarios: this seed, this many of each kind, this many transactions.
VISIBLE_SEED = 0
VISIBLE_COUNT = 4
VISIBLE_SIZE = 6


def verdict(find: Callable, scenario: Scenario) -> tuple[tuple[str, ...], str] | None:
    """The student's answer on ``scenario`` as (cycle, victim), or None."""
    assert callable(find), "pass your function itself: find_deadlock(local, started)"
    shown = f"local graphs {scenario.local}, start times {scenario.started}"
    try:
        got = find({s: list(e) for s, e in scenario.local.items()}, dict(scenario.started))
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"find_deadlock raised {type(error).__name__}: {error} on {shown}"
        ) from None
    if got is None:
        return None
    if hasattr(got, "cycle") and hasattr(got, "victim"):
        return tuple(got.cycle), got.victim
    try:
        found, chosen = got
        return tuple(found), chosen
    except (TypeError, ValueError):
        raise AssertionError(
            f"return a Deadlock(cycle, victim) or None, not {got!r} (on {shown})"
        ) from None


def check_cycle(scenario: Scenario, got: tuple[tuple[str, ...], str] | None) -> None:
    """A scenario with a global deadlock: the answer names a cycle of the global graph."""
    assert got is not None, (
        f"{scenario.local} has a deadlock across sites, but you returned None: "
        "combine the sites' edges into one graph first"
    )
    graph = global_graph(scenario.local)
    assert is_cycle(graph, got[0]), (
        f"{got[0]} is not a cycle of the global wait-for graph of {scenario.local}: each "
        "transaction must wait for the next, the last for the first"
    )


def check_victim(scenario: Scenario, got: tuple[tuple[str, ...], str] | None) -> None:
    """The victim belongs to the answer's cycle and started no earlier than any member."""
    assert got is not None, f"{scenario.local} has a deadlock, but you returned None"
    found, chosen = got
    unknown = [t for t in found if t not in scenario.started]
    assert not unknown, f"{found} names unknown transactions: {unknown}"
    starts = {t: scenario.started[t] for t in found}
    assert chosen in starts, f"the victim {chosen!r} is not in your cycle {found}"
    younger = [t for t in found if starts[t] > starts[chosen]]
    assert not younger, (
        f"for the cycle {found} with start times {starts} the victim {chosen} is not the "
        f"youngest: {younger[0]} started later (youngest dies: the latest start)"
    )


def _scenarios(kind: str) -> list[Scenario]:
    return [
        Scenario(
            {site: tuple((w, h) for w, h in edges) for site, edges in case["local"].items()},
            dict(case["started"]),
        )
        for case in load_cases("p2.deadlock")[kind]
    ]


def none(find: Any) -> None:
    """No global cycle: report None, even when waits cross sites."""
    for scenario in _scenarios("none"):
        got = verdict(find, scenario)
        assert got is None, f"there is no deadlock in {scenario.local}, but you returned {got}"


def cycle(find: Any) -> None:
    """A cycle across sites: return a real cycle of the global wait-for graph."""
    for scenario in _scenarios("deadlock"):
        check_cycle(scenario, verdict(find, scenario))


def victim(find: Any) -> None:
    """The victim is the youngest transaction of the cycle (the latest start time)."""
    for scenario in _scenarios("deadlock"):
        got = verdict(find, scenario)
        check_cycle(scenario, got)
        check_victim(scenario, got)


EXERCISE = Exercise("p2.deadlock", (("none", none), ("cycle", cycle), ("victim", victim)))
