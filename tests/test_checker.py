"""The checker on small models whose answers are known by hand."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtcourse.commit.specs import build
from dtcourse.commit.specs.twophase import TwoPhase
from dtcourse.engine.checker import (
    CheckResult,
    ModelFailure,
    Stats,
    check,
    default_format_action,
    print_progress,
)
from dtcourse.engine.model import Path, Property
from dtcourse.errors import DTCourseError, ModelError

# -- toy models -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ladder:
    """Counting up by 1 or by 3 from 0, below ``top``; the shortest way to ``n`` is known."""

    top: int = 20
    bad: int | None = None
    goal: int | None = None

    def init_states(self):
        return [0]

    def actions(self, state):
        return [a for a in ("+1", "+3") if state + int(a[1:]) < self.top]

    def next_state(self, state, action):
        return state + int(action[1:])

    def properties(self):
        props = [Property.always("below top", lambda m, s: s < m.top)]
        if self.bad is not None:
            props.append(Property.always("never bad", lambda m, s: s != m.bad))
        if self.goal is not None:
            props.append(Property.sometimes("reach goal", lambda m, s: s == m.goal))
        return props


@dataclass(frozen=True)
class Unbounded:
    """Counts up forever: only a limit can end its exploration."""

    def init_states(self):
        return [0]

    def actions(self, state):
        return ["inc"]

    def next_state(self, state, action):
        return state + 1

    def properties(self):
        return [Property.sometimes("never", lambda m, s: s < 0)]


@dataclass(frozen=True)
class Commit:
    """A coordinator and one participant. The coordinator may crash before deciding; a
    crashed coordinator may recover, but recovery is not an allowed way out of blocking
    unless ``recovery_allowed``. State: (coordinator, participant)."""

    recovery_allowed: bool = False

    def init_states(self):
        return [("init", "idle")]

    def actions(self, state):
        coordinator, participant = state
        acts = []
        if participant == "idle":
            acts.append("vote")
        if coordinator == "init":
            acts += ["decide", "crash"]
        if coordinator == "decided" and participant == "waiting":
            acts.append("learn")
        if coordinator == "crashed":
            acts.append("recover")
        return acts

    def next_state(self, state, action):
        coordinator, participant = state
        return {
            "vote": (coordinator, "waiting"),
            "decide": ("decided", participant),
            "crash": ("crashed", participant),
            "learn": (coordinator, "done"),
            "recover": ("init", participant),
        }[action]

    def properties(self):
        return [
            Property.blocking(
                "participant never blocks",
                pending=lambda m, s: ["p"] if s[1] == "waiting" else [],
                resolved=lambda m, s, key: s[1] == "done",
                allowed=lambda m, a: m.recovery_allowed or a != "recover",
            )
        ]


@dataclass(frozen=True)
class Chain:
    """A participant waits through ``length`` steps before it is done: never blocked."""

    length: int = 50

    def init_states(self):
        return [0]

    def actions(self, state):
        return ["step"] if state < self.length else []

    def next_state(self, state, action):
        return state + 1

    def properties(self):
        return [
            Property.blocking(
                "finishes",
                pending=lambda m, s: ["p"] if s < m.length else [],
                resolved=lambda m, s, key: s == m.length,
            )
        ]


def _replays(model, path: Path) -> bool:
    state = path.init
    if state not in list(model.init_states()):
        return False
    for action, expected in path.steps:
        if action not in list(model.actions(state)):
            return False
        state = model.next_state(state, action)
        if state != expected:
            return False
    return True


# -- always and sometimes -------------------------------------------------------------------


def test_always_violation_comes_with_the_shortest_trace() -> None:
    # 7 = 3 + 3 + 1: three steps, though +1 seven times also gets there first in DFS order.
    model = Ladder(bad=7)
    result = check(model)
    assert result.complete and not result.ok
    [violation] = result.violations
    assert violation.property == "never bad" and violation.kind == "always"
    assert len(violation.path) == 3
    assert violation.path.last == 7
    assert sorted(violation.path.actions) == ["+1", "+3", "+3"]
    assert _replays(model, violation.path)


def test_properties_failing_in_the_same_state_share_the_shortest_trace() -> None:
    class TwoInvariants(Ladder):
        def properties(self):
            return [
                Property.always("not 7", lambda m, s: s != 7),
                Property.always("below 7", lambda m, s: s < 7),
                Property.sometimes("six", lambda m, s: s == 6),
                Property.sometimes("even", lambda m, s: s % 2 == 0 and s > 4),
            ]

    result = check(TwoInvariants())
    paths = {v.property: v.path for v in result.violations}
    assert set(paths) == {"not 7", "below 7"}
    assert paths["not 7"] == paths["below 7"] and len(paths["not 7"]) == 3
    assert result.examples["six"] == result.examples["even"]
    assert len(result.examples["six"]) == 2


def test_a_clean_model_passes_with_exact_statistics() -> None:
    result = check(Ladder(top=10))
    assert result.ok and result.complete and result.reason is None
    assert result.distinct == 10  # 0..9
    # Every state below 7 has two successors, 7..8 one, 9 none; plus the initial state.
    assert result.generated == 1 + 7 * 2 + 2
    # Levels: {0}, {1,3}, {2,4,6}, {5,7,9}, {8}: 0 -> 3 -> 6 -> 7 -> 8 needs four steps.
    assert result.depth == 5
    assert result.violations == ()


def test_sometimes_reached_gives_a_shortest_example() -> None:
    result = check(Ladder(goal=9))
    assert result.ok
    assert len(result.examples["reach goal"]) == 3
    assert result.examples["reach goal"].last == 9


def test_sometimes_never_reached_is_a_violation_without_a_path() -> None:
    result = check(Ladder(top=10, goal=42))
    assert result.complete and not result.ok
    [violation] = result.violations
    assert violation.kind == "sometimes" and violation.property == "reach goal"
    assert violation.path is None
    assert "no reachable state" in violation.message


# -- limits ---------------------------------------------------------------------------------


def test_state_limit_gives_an_explicit_incomplete_result() -> None:
    result = check(build("twophase", 3), max_states=100)
    assert not result.complete and not result.ok
    assert result.reason == "state limit 100 reached"
    assert result.distinct == 100
    # An unfinished search never calls a sometimes property unreachable.
    assert all(v.kind != "sometimes" for v in result.violations)
    assert "every RM commits" in result.unreached
    assert "INCOMPLETE (state limit 100 reached)" in result.summary()


def test_a_limit_exactly_at_the_state_count_still_completes() -> None:
    assert check(build("twophase", 3), max_states=288).complete
    assert not check(build("twophase", 3), max_states=287).complete


def test_incomplete_run_still_reports_violations_it_found() -> None:
    result = check(Ladder(top=1000, bad=7), max_states=50)
    assert not result.complete
    assert [v.property for v in result.violations] == ["never bad"]
    assert len(result.violations[0].path) == 3


def test_time_limit_ends_an_endless_model() -> None:
    result = check(Unbounded(), max_seconds=0.2)
    assert not result.complete
    assert result.reason == "time limit 0.2 s reached"
    assert result.violations == ()
    assert result.unreached == ("never",)
    assert result.to_dict()["ok"] is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_states": 0},
        {"max_states": True},
        {"max_states": 2.5},  # would never equal a state count: no limit at all
        {"max_seconds": 0},
        {"max_seconds": -1},
    ],
)
def test_bad_limits_are_refused(kwargs) -> None:
    with pytest.raises(ModelError, match="must be a positive"):
        check(Ladder(), **kwargs)


# -- progress -------------------------------------------------------------------------------


def test_progress_receives_snapshots_including_a_final_one() -> None:
    snapshots: list[Stats] = []
    result = check(Unbounded(), max_seconds=0.3, progress=snapshots.append)
    assert snapshots
    assert all(isinstance(s, Stats) for s in snapshots)
    assert snapshots[-1].distinct == result.distinct
    assert [s.distinct for s in snapshots] == sorted(s.distinct for s in snapshots)


def test_print_progress_writes_lines_to_the_given_stream() -> None:
    stream = io.StringIO()
    check(build("twophase", 3), progress=print_progress(stream))
    text = stream.getvalue()
    assert text.endswith("\n")
    assert "checked 288 states (1,146 generated), depth 11" in text


def test_an_error_in_the_progress_callback_is_not_blamed_on_the_model() -> None:
    def explode(stats: Stats) -> None:
        raise RuntimeError("display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        check(Ladder(), progress=explode)


# -- blocking -------------------------------------------------------------------------------


def test_blocking_witness_is_the_shortest_path_to_a_blocked_state() -> None:
    model = Commit()
    result = check(model)
    assert not result.ok
    assert result.blocking is not None
    # The participant voted and the coordinator crashed: only recovery could help.
    assert result.blocking.actions == ("vote", "crash")
    assert result.blocking.last == ("crashed", "waiting")
    [violation] = result.violations
    assert violation.kind == "blocking" and violation.path == result.blocking
    assert "'p'" in violation.message
    assert _replays(model, result.blocking)


def test_each_blocking_property_is_judged_on_its_own() -> None:
    class TwoViews(Commit):
        def properties(self):
            return [
                *super().properties(),
                Property.blocking(
                    "coordinator decides",
                    pending=lambda m, s: ["c"] if s[0] != "decided" else [],
                    resolved=lambda m, s, key: s[0] == "decided",
                ),
            ]

    result = check(TwoViews())
    # With recovery allowed, the coordinator can always come back and decide.
    assert [v.property for v in result.violations] == ["participant never blocks"]


def test_no_blocking_when_recovery_is_allowed() -> None:
    result = check(Commit(recovery_allowed=True))
    assert result.ok and result.blocking is None


def test_a_partial_run_reports_no_blocking_it_cannot_prove() -> None:
    assert check(Chain(length=50)).ok
    result = check(Chain(length=50), max_states=20)
    assert not result.complete
    assert result.blocking is None and result.violations == ()


def test_blocking_with_symmetry_is_refused() -> None:
    class SymmetricCommit(Commit):
        def representative(self, state):
            return state

    with pytest.raises(ModelError, match="symmetry"):
        check(SymmetricCommit(), symmetry=True)


# -- symmetry -------------------------------------------------------------------------------


def test_symmetry_needs_a_representative() -> None:
    with pytest.raises(ModelError, match="representative"):
        check(Ladder(), symmetry=True)


def test_symmetry_counts_orbits_and_keeps_paths_real() -> None:
    @dataclass(frozen=True)
    class Mirror(Ladder):
        """Integers from -top to top, symmetric under negation."""

        def actions(self, state):
            return [a for a in ("+1", "-1") if abs(state + int(a)) < self.top]

        def next_state(self, state, action):
            return state + int(action)

        def representative(self, state):
            # Deliberately not the member the search meets first: stored states must stay
            # the concrete ones, or the trace 0 -> -1 by "+1" would be reported.
            return -abs(state)

    model = Mirror(top=6, goal=4)
    plain, reduced = check(model), check(model, symmetry=True)
    assert plain.distinct == 11 and reduced.distinct == 6
    path = reduced.examples["reach goal"]
    assert path.last == 4 and len(path) == 4
    assert _replays(model, path)


# -- model errors ---------------------------------------------------------------------------


class Faulty(Ladder):
    def __init__(self, fault: str) -> None:
        super().__init__(top=10)
        object.__setattr__(self, "fault", fault)

    def actions(self, state):
        if self.fault == "actions" and state == 4:
            raise KeyError("no moves")
        return super().actions(state)

    def next_state(self, state, action):
        if self.fault == "next" and state == 4 and action == "+3":
            raise ZeroDivisionError("bad arithmetic")
        if self.fault == "unhashable" and state == 4:
            return [state + 1]
        return super().next_state(state, action)

    def properties(self):
        props = super().properties()
        if self.fault == "property":
            props.append(Property.always("fragile", lambda m, s: 1 / (s - 5) != 0))
        return props


def test_next_state_raising_names_action_state_and_path() -> None:
    with pytest.raises(ModelError) as caught:
        check(Faulty("next"))
    message = str(caught.value)
    assert "next_state() raised ZeroDivisionError('bad arithmetic')" in message
    assert "action '+3'" in message and "state 4" in message
    assert "after +1 -> +3" in message or "after +3 -> +1" in message
    assert isinstance(caught.value, ModelFailure)
    path = caught.value.path
    assert path.last == 4 and len(path) == 2
    assert caught.value.action is None  # the failing action is named in the message


def test_actions_raising_is_reported() -> None:
    with pytest.raises(ModelError, match=r"actions\(\) raised KeyError.* on state 4"):
        check(Faulty("actions"))


def test_unhashable_state_is_reported_with_the_action() -> None:
    with pytest.raises(ModelError, match=r"action '\+1' produced a state that is not hashable"):
        check(Faulty("unhashable"))


def test_property_raising_is_reported() -> None:
    with pytest.raises(ModelError, match=r"property 'fragile' raised ZeroDivisionError"):
        check(Faulty("property"))


def test_unhashable_initial_state_is_reported() -> None:
    class ListInit(Ladder):
        def init_states(self):
            return [[0]]

    with pytest.raises(ModelError, match="not hashable.*at an initial state"):
        check(ListInit())


def test_no_initial_state_is_reported() -> None:
    class Empty(Ladder):
        def init_states(self):
            return []

    with pytest.raises(ModelError, match="returned no state"):
        check(Empty())


def test_an_object_that_is_not_a_model_is_refused() -> None:
    with pytest.raises(ModelError, match="no actions"):
        check(object.__new__(type("Thing", (), {"init_states": lambda self: [0]})))


def test_model_errors_are_course_errors() -> None:
    assert issubclass(ModelError, DTCourseError)


# -- results --------------------------------------------------------------------------------


def _without_timing(result: CheckResult) -> dict:
    data = result.to_dict()
    del data["seconds"], data["states_per_second"]
    return data


def test_to_dict_is_json_ready_with_traces() -> None:
    result = check(Ladder(bad=7, goal=42))
    data = json.loads(json.dumps(result.to_dict()))
    for key in (
        "distinct", "generated", "depth", "seconds", "states_per_second",
        "complete", "reason", "violations", "blocking", "ok",
    ):  # fmt: skip
        assert key in data
    assert data["ok"] is False and data["blocking"] is None
    bad = next(v for v in data["violations"] if v["property"] == "never bad")
    assert bad["trace"][0] == {"action": None, "state": "0"}
    assert [step["action"] for step in bad["trace"][1:]] == ["+1", "+3", "+3"]
    assert bad["trace"][-1]["state"] == "7"
    never = next(v for v in data["violations"] if v["property"] == "reach goal")
    assert never["trace"] is None


def test_to_dict_uses_the_models_formatting_and_reports_blocking() -> None:
    data = check(Commit()).to_dict()
    assert [step["action"] for step in data["blocking"]] == [None, "vote", "crash"]
    tp = check(build("twophase", 2)).to_dict()
    trace = tp["examples"]["some RM commits"]
    assert trace[-1]["action"] == "RMRcvCommitMsg(r1)"
    assert trace[-1]["state"].startswith("rmState [r1: committed, r2: prepared]")


def test_summary_shows_verdicts_and_traces() -> None:
    text = check(Ladder(bad=7)).summary()
    assert text.startswith("complete: ")
    assert "VIOLATED always 'never bad'" in text
    assert "3. " in text
    assert "OK: every property holds" in check(Ladder()).summary()


def test_default_action_labels() -> None:
    assert default_format_action(("RMPrepare", "r1")) == "RMPrepare(r1)"
    assert default_format_action(("TMCommit",)) == "TMCommit"
    assert default_format_action("vote") == "vote"
    assert default_format_action(7) == "7"


def test_results_are_deterministic_within_a_process() -> None:
    model = build("twophase", 4)
    assert _without_timing(check(model)) == _without_timing(check(model))
    assert _without_timing(check(model, symmetry=True)) == _without_timing(
        check(model, symmetry=True)
    )


def test_successors_hook_and_plain_actions_give_the_same_result() -> None:
    model = build("twophase", 4)

    class Plain:
        """The same model without its one-pass successors hook."""

        successors = None

        def __getattr__(self, name):
            return getattr(model, name)

    assert _without_timing(check(Plain())) == _without_timing(check(model))


class _WithoutNextStates:
    """A model seen without its states-only hook: the checker's general loop."""

    next_states = None

    def __init__(self, model) -> None:
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"symmetry": True},
        {"max_states": 100},
        {"max_states": 1000, "symmetry": True},
        {"stop_at_first": True},
    ],
)
def test_the_lean_loop_gives_what_the_general_loop_gives(options) -> None:
    model = build("twophase", 4)
    assert _without_timing(check(model, **options)) == _without_timing(
        check(_WithoutNextStates(model), **options)
    )


def test_the_lean_loop_stops_at_the_first_violation_like_the_general_loop() -> None:
    class CommitTooEarly(TwoPhase):
        """The TM may commit before hearing from every RM; both hooks see it."""

        def successors(self, state):
            yield from super().successors(state)
            if state.tm_state == "init" and state.tm_prepared != frozenset(self.rms):
                commit = state._replace(tm_state="committed", msgs=state.msgs | {("Commit",)})
                yield ("TMCommit",), commit

        def next_states(self, state):
            return [t for _, t in self.successors(state)]

    model = CommitTooEarly(("r1", "r2", "r3"))
    lean = check(model, stop_at_first=True)
    general = check(_WithoutNextStates(model), stop_at_first=True)
    assert _without_timing(lean) == _without_timing(general)
    assert lean.violations[0].property == "TCConsistent" and lean.stopped_by == "violation"


_SCRIPT = """
import json
from dtcourse.engine.checker import check
from dtcourse.commit.specs import build
from dtcourse.commit.specs.twophase import TwoPhase
data = check(build("twophase", 3), symmetry={symmetry}).to_dict()
del data["seconds"], data["states_per_second"]
print(json.dumps(data, sort_keys=True))
"""


@pytest.mark.parametrize("symmetry", [False, True])
def test_results_do_not_depend_on_hash_randomisation(symmetry: bool) -> None:
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT.format(symmetry=symmetry)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


# -- random graphs against independent answers ----------------------------------------------


@dataclass(frozen=True)
class Graph:
    """A transition system given by its edges; node ``bad`` breaks an invariant, nodes in
    ``waiting`` wait for a node in ``done`` and edges labelled ``"fail"`` may not help."""

    edges: tuple[tuple[int, int, str], ...]
    bad: int
    waiting: frozenset[int]
    done: frozenset[int]

    def init_states(self):
        return [0]

    def actions(self, state):
        return [(label, target) for source, target, label in self.edges if source == state]

    def next_state(self, state, action):
        return action[1]

    def properties(self):
        return [
            Property.always("not bad", lambda m, s: s != m.bad),
            Property.blocking(
                "waiting ends",
                pending=lambda m, s: ["w"] if s in m.waiting else [],
                resolved=lambda m, s, key: s in m.done,
                allowed=lambda m, a: a[0] != "fail",
            ),
        ]


def _distances(graph: Graph, start: int, allowed_only: bool = False) -> dict[int, int]:
    dist = {start: 0}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for source, target, label in graph.edges:
                if source == node and target not in dist and not (allowed_only and label == "fail"):
                    dist[target] = dist[node] + 1
                    nxt.append(target)
        frontier = nxt
    return dist


graphs = st.integers(min_value=1, max_value=9).flatmap(
    lambda n: st.builds(
        Graph,
        edges=st.lists(
            st.tuples(
                st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from(["ok", "fail"])
            ),
            max_size=25,
        ).map(tuple),
        bad=st.integers(0, n - 1),
        waiting=st.frozensets(st.integers(0, n - 1)),
        done=st.frozensets(st.integers(0, n - 1)),
    )
)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_random_graphs_match_independent_search(graph: Graph) -> None:
    result = check(graph)
    reachable = _distances(graph, 0)
    assert result.complete and result.distinct == len(reachable)
    assert result.depth == max(reachable.values()) + 1
    verdicts = {v.property: v for v in result.violations}
    if graph.bad in reachable:
        path = verdicts["not bad"].path
        assert len(path) == reachable[graph.bad] and path.last == graph.bad
        assert _replays(graph, path)
    else:
        assert "not bad" not in verdicts
    blocked = [
        node
        for node in reachable
        if node in graph.waiting
        and not any(n in graph.done for n in _distances(graph, node, allowed_only=True))
    ]
    if blocked:
        witness = verdicts["waiting ends"].path
        assert witness == result.blocking
        assert witness.last in blocked
        assert len(witness) == min(reachable[node] for node in blocked)
        assert _replays(graph, witness)
    else:
        assert "waiting ends" not in verdicts and result.blocking is None
