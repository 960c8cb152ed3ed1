"""Distributed deadlock detection: the global graph, its cycles, the victim."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtcourse.errors import DTCourseError
from dtcourse.lessons.deadlock import (
    choose_victim,
    detect,
    find_cycle,
    global_graph,
    is_cycle,
    local_cycles,
    random_scenario,
)

SITES = {"A": [("T1", "T2")], "B": [("T2", "T3")], "C": [("T3", "T1")]}


def test_a_cycle_across_sites_is_seen_only_globally() -> None:
    assert local_cycles(SITES) == {}
    found = detect(SITES, {"T1": 1, "T2": 5, "T3": 3})
    assert found is not None
    assert found.cycle == ("T1", "T2", "T3")
    assert found.victim == "T2"


def test_no_cycle_means_no_deadlock() -> None:
    assert detect({"A": [("T1", "T2")], "B": [("T2", "T3")]}, {"T1": 1, "T2": 2, "T3": 3}) is None


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
        assert detect(scenario.local, scenario.started).victim in cycle


def test_is_cycle_rejects_non_cycles() -> None:
    graph = global_graph(SITES)
    assert is_cycle(graph, ("T2", "T3", "T1"))
    assert not is_cycle(graph, ("T1", "T3", "T2"))
    assert not is_cycle(graph, ("T1", "T1"))
