"""Distributed deadlock: the global graph, cycles, scenarios, and the reference detector."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference.p2_deadlock import choose_victim, find_cycle, find_deadlock
from hypothesis import given
from hypothesis import strategies as st

import dtcourse.lessons.deadlock as lesson
from dtcourse.errors import DTCourseError
from dtcourse.lessons.deadlock import global_graph, is_cycle, random_scenario

SITES = {"A": [("T1", "T2")], "B": [("T2", "T3")], "C": [("T3", "T1")]}


def test_a_cycle_across_sites_is_seen_only_globally() -> None:
    assert all(find_cycle(global_graph({s: e})) is None for s, e in SITES.items())
    found = find_deadlock(SITES, {"T1": 1, "T2": 5, "T3": 3})
    assert found is not None
    assert found.cycle == ("T1", "T2", "T3")
    assert found.victim == "T2"


def test_no_cycle_means_no_deadlock() -> None:
    local = {"A": [("T1", "T2")], "B": [("T2", "T3")]}
    assert find_deadlock(local, {"T1": 1, "T2": 2, "T3": 3}) is None


def test_victim_ties_go_to_the_larger_name() -> None:
    assert choose_victim(("T2", "T10"), {"T2": 4, "T10": 4}) == "T10"


def test_bad_edges_are_reported() -> None:
    with pytest.raises(DTCourseError, match="pair"):
        global_graph({"A": [("T1",)]})
    with pytest.raises(DTCourseError, match="start time"):
        choose_victim(("T1", "T2"), {"T1": 1})


@given(st.integers(0, 10_000), st.booleans())
def test_random_scenarios_have_the_cycle_they_promise(seed: int, deadlock: bool) -> None:
    scenario = random_scenario(seed, deadlock=deadlock)
    graph = global_graph(scenario.local)
    cycle = find_cycle(graph)
    assert (cycle is not None) == deadlock
    if cycle is not None:
        assert is_cycle(graph, cycle)
        found = find_deadlock(scenario.local, scenario.started)
        assert found is not None and found.victim in cycle


def test_is_cycle_rejects_non_cycles() -> None:
    graph = global_graph(SITES)
    assert is_cycle(graph, ("T2", "T3", "T1"))
    assert not is_cycle(graph, ("T1", "T3", "T2"))
    assert not is_cycle(graph, ("T1", "T1"))
    assert not is_cycle(graph, ())
    assert not any(is_cycle(global_graph({s: e}), ("T1", "T2", "T3")) for s, e in SITES.items())


def test_the_lesson_gives_no_detector() -> None:
    """Finding the cycle and choosing the victim is exercise p2.deadlock."""
    assert set(lesson.__all__) == {
        "Deadlock", "Scenario", "WaitFor", "global_graph", "is_cycle", "random_scenario"
    }
    for name in ("detect", "find_cycle", "choose_victim", "local_cycles"):
        assert not hasattr(lesson, name), name
