"""Random runs, shortening, and the checker's early answers (stop at the first violation,
random runs interleaved with the search, a memory bound)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit.protocols import build
from dtcourse.engine.actors import Timeout
from dtcourse.engine.checker import check
from dtcourse.engine.model import Path, Property
from dtcourse.engine.walks import Walker, random_runs, shorten
from dtcourse.errors import ModelError


@dataclass(frozen=True)
class Wide:
    """Five ways forward at every step, each to a new state, and a bad state at ``bad``
    steps: a breadth-first search would need 5**bad states to get there, any run of that
    length gets there."""

    bad: int = 30

    def init_states(self):
        return [(0, 0)]

    def actions(self, state):
        return list(range(5)) if state[0] < 60 else []

    def next_state(self, state, action):
        return (state[0] + 1, state[1] * 5 + action)

    def properties(self):
        return [
            Property.always("shallow", lambda m, s: s[0] != m.bad),
            Property.sometimes("ten steps", lambda m, s: s[0] == 10),
        ]


@dataclass(frozen=True)
class Detour:
    """Counting up by 1 or 2 (or 0, a step that goes nowhere new): the bad number is
    reached by runs full of useless steps, which shortening removes."""

    bad: int = 9

    def init_states(self):
        return [0]

    def actions(self, state):
        return ["+0", "+1", "+2"] if state < 20 else []

    def next_state(self, state, action):
        return state + int(action[1:])

    def properties(self):
        return [Property.always("never bad", lambda m, s: s != m.bad)]


def _replays(model, path: Path) -> bool:
    state = path.init
    for action, expected in path.steps:
        if action not in list(model.actions(state)):
            return False
        state = model.next_state(state, action)
        if state != expected:
            return False
    return True


# -- shortening ----------------------------------------------------------------------------


def test_shorten_drops_steps_that_do_not_matter() -> None:
    model = Detour()
    run = ["+0", "+1", "+0", "+0", "+2", "+0", "+1", "+1", "+0", "+2", "+2", "+0"]
    path = shorten(model, 0, run, lambda s: s == 9)
    assert path.last == 9 and _replays(model, path)
    assert "+0" not in path.actions and len(path) < 7


def test_shorten_stops_at_the_first_violating_state() -> None:
    path = shorten(Detour(), 0, ["+2", "+2", "+2", "+2", "+1", "+2"], lambda s: s >= 9)
    assert path.last == 9


def test_shorten_refuses_a_run_that_never_violates() -> None:
    with pytest.raises(ModelError, match="does not reach a violating state"):
        shorten(Detour(), 0, ["+1"], lambda s: s == 9)


# -- random runs -----------------------------------------------------------------------------


def test_random_runs_find_a_deep_violation_and_say_it_is_no_proof() -> None:
    result = random_runs(Wide(bad=30), runs=20, depth=40, seed=3)
    [found] = result.violations
    assert found.property == "shallow" and len(found.path) == 30
    assert _replays(Wide(bad=30), found.path)
    assert "ten steps" in result.examples
    clean = random_runs(Wide(bad=99), runs=5, depth=20, seed=3)
    assert clean.ok and clean.runs == 5 and clean.steps == 100
    assert "NOT a proof" in clean.summary()
    assert "ten steps" in clean.examples


def test_random_runs_are_deterministic_for_a_seed() -> None:
    def actions(seed: int) -> tuple:
        walker = Walker(Detour(bad=99), Detour(bad=99).properties(), seed=seed, depth=30)
        walker.advance(200)
        return (walker.runs, walker.steps, walker._path and tuple(a for a, _ in walker._path))

    assert actions(5) == actions(5)
    assert actions(5) != actions(6)


def test_random_runs_report_what_they_cannot_check() -> None:
    result = random_runs(build("2pc", 2, crashes=1), runs=10, depth=20)
    assert "non-blocking" in result.unchecked


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"runs": 0}, "runs"), ({"depth": 0}, "depth"), ({"seed": "x"}, "seed")],
)
def test_random_runs_refuse_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ModelError, match=message):
        random_runs(Detour(), **kwargs)


def test_failures_come_at_varied_moments_not_all_first() -> None:
    system = build("3pc", 2, crashes=1, partitions=1, rule=terminate)
    walker = Walker(system, system.properties(), seed=1, depth=30)
    first_steps = []
    for _ in range(40):
        walker.advance(1)
        first_steps.append(walker._path[0][0] if walker._path else None)
        walker._state = None
    faults = sum(1 for action in first_steps if action is not None and system.is_fault(action))
    # Uniformly, the seven partitions and four crashes would be chosen first most of the time.
    assert faults < 20


# -- the checker's early answers ---------------------------------------------------------------


def test_stop_at_first_keeps_the_shortest_trace_and_leaves_the_rest_open() -> None:
    model = Detour(bad=9)
    full = check(model)
    early = check(model, stop_at_first=True)
    assert full.complete and not early.complete
    assert early.stopped_by == "violation" and early.reason == "stopped at the first violation"
    [violation] = early.violations
    assert violation.shortest and len(violation.path) == 5 and violation.path.last == 9
    assert early.distinct < full.distinct


def test_stop_at_first_does_not_judge_liveness_on_a_partial_graph() -> None:
    system = build("3pc", 2, partitions=1, rule=terminate)
    early = check(system, stop_at_first=True)
    assert [v.kind for v in early.violations] == ["always"]
    assert early.blocking is None
    full = check(system)
    assert {v.kind for v in full.violations} == {"always", "blocking"}


def test_default_search_is_complete_as_graded_checks_need() -> None:
    result = check(Detour(bad=9))
    assert result.complete and result.stopped_by is None and result.random_runs == 0


def test_hunting_finds_what_breadth_first_cannot_reach() -> None:
    model = Wide(bad=30)
    bfs = check(model, stop_at_first=True, max_states=100_000)
    assert bfs.violations == () and bfs.stopped_by == "states"
    result = check(model, stop_at_first=True, hunt=True, max_states=100_000, seed=2)
    [violation] = result.violations
    assert not violation.shortest and "random run" in violation.message
    assert len(violation.path) == 30 and _replays(model, violation.path)
    assert result.stopped_by == "violation" and result.random_runs > 0
    again = check(model, stop_at_first=True, hunt=True, max_states=100_000, seed=2)
    assert again.violations[0].path == violation.path and again.distinct == result.distinct
    assert result.to_dict()["violations"][0]["shortest"] is False


def test_the_3pc_partition_counterexample_comes_early() -> None:
    system = build("3pc", 3, partitions=1, rule=terminate)
    result = check(system, stop_at_first=True, hunt=True)
    [violation] = result.violations
    assert violation.property.startswith("AC1") and _replays(system, violation.path)
    assert result.distinct < 200_000  # a complete search has 2.1 million states


def test_memory_limit_stops_with_a_clear_reason() -> None:
    result = check(Wide(bad=99), max_memory=1)
    assert not result.complete and not result.ok
    assert result.stopped_by == "memory" and "memory limit" in result.reason


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_bad_memory_limits_are_refused(bad) -> None:
    with pytest.raises(ModelError, match="max_memory"):
        check(Detour(), max_memory=bad)


def test_perfect_timing_timeouts_are_not_enabled_by_next_state_alone() -> None:
    system = build("3pc", 2, partitions=1, rule=terminate)
    state = system.init_states()[0]
    # The coordinator's vote timer waits on the participants, none of whom failed.
    assert system.next_state(state, Timeout("C", "votes")) is None
