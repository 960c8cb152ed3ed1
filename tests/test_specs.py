"""TCommit and TwoPhase against TLC's published numbers and independent enumerations."""

from __future__ import annotations

import itertools

import pytest

from dtcourse.commit.specs import build, rm_names
from dtcourse.commit.specs.tcommit import TCommit
from dtcourse.commit.specs.twophase import TPState, TwoPhase
from dtcourse.engine.checker import check
from dtcourse.errors import ModelError

STATUSES = ("working", "prepared", "committed", "aborted")


# -- TwoPhase -------------------------------------------------------------------------------


def test_twophase_three_rms_matches_tlc_exactly() -> None:
    # tlaplus Examples manifest.json for TwoPhase.cfg (RM = {r1, r2, r3}):
    # distinctStates 288, totalStates 1146, stateDepth 11.
    result = check(build("twophase", 3))
    assert (result.distinct, result.generated, result.depth) == (288, 1146, 11)
    assert result.ok and result.complete


@pytest.mark.parametrize(("rms", "distinct"), [(5, 8_832), (6, 50_816)])
def test_twophase_state_counts_match_tlc(rms: int, distinct: int) -> None:
    result = check(build("twophase", rms))
    assert result.distinct == distinct
    assert result.ok


def test_twophase_examples_are_shortest() -> None:
    result = check(build("twophase", 3))
    # One RM chooses to abort; or three prepares, three receipts, TMCommit, one receipt.
    assert len(result.examples["some RM aborts"]) == 1
    assert len(result.examples["some RM commits"]) == 8
    assert len(result.examples["every RM commits"]) == 10
    assert result.examples["some RM commits"].actions[-2:] == (
        ("TMCommit",),
        ("RMRcvCommitMsg", "r1"),
    )


def _reachable(model) -> list:
    """Every reachable state, by a plain BFS written here, cross-checked with the checker."""
    seen = set(model.init_states())
    frontier = list(seen)
    while frontier:
        nxt = []
        for state in frontier:
            for action in model.actions(state):
                succ = model.next_state(state, action)
                if succ is not None and succ not in seen:
                    seen.add(succ)
                    nxt.append(succ)
        frontier = nxt
    assert len(seen) == check(model).distinct
    return sorted(seen, key=repr)


@pytest.mark.parametrize("rms", [2, 3, 4])
def test_twophase_successors_hook_agrees_with_actions_and_next_state(rms: int) -> None:
    model = build("twophase", rms)
    for state in _reachable(model):
        expected = [
            (action, model.next_state(state, action))
            for action in model.actions(state)
            if model.next_state(state, action) is not None
        ]
        assert len(expected) == len(list(model.actions(state)))
        assert list(model.successors(state)) == expected
        assert model.next_states(state) == [successor for _, successor in expected]


def test_twophase_disabled_actions_have_no_successor() -> None:
    model = build("twophase", 2)
    init = model.init_states()[0]
    assert model.next_state(init, ("TMCommit",)) is None
    assert model.next_state(init, ("TMRcvPrepared", "r1")) is None
    assert model.next_state(init, ("RMRcvCommitMsg", "r1")) is None
    prepared = model.next_state(init, ("RMPrepare", "r1"))
    assert prepared.rm_state == ("prepared", "working")
    assert prepared.msgs == {("Prepared", "r1")}
    assert model.next_state(prepared, ("RMPrepare", "r1")) is None
    assert model.next_state(prepared, ("RMChooseToAbort", "r1")) is None


class CommitTooEarly(TwoPhase):
    """A broken TM that may commit before hearing from every RM."""

    successors = None  # type: ignore[assignment]

    def actions(self, state):
        yield from super().actions(state)
        if state.tm_state == "init" and state.tm_prepared != frozenset(self.rms):
            yield ("TMCommit",)

    def next_state(self, state, action):
        if action == ("TMCommit",) and state.tm_state == "init":
            return TPState(
                state.rm_state, "committed", state.tm_prepared, state.msgs | {("Commit",)}
            )
        return super().next_state(state, action)


@pytest.mark.parametrize("symmetry", [False, True])
def test_broken_twophase_violates_tcconsistent_with_a_real_shortest_trace(symmetry: bool) -> None:
    model = CommitTooEarly(("r1", "r2", "r3"))
    result = check(model, symmetry=symmetry)
    assert not result.ok
    [violation] = [v for v in result.violations if v.property == "TCConsistent"]
    # TMCommit, an RM receives Commit, another RM chooses to abort.
    assert len(violation.path) == 3
    assert ("TMCommit",) in violation.path.actions
    _assert_replays(model, violation.path)
    assert "committed" in violation.path.last.rm_state
    assert "aborted" in violation.path.last.rm_state


def _assert_replays(model, path) -> None:
    assert path.init in list(model.init_states())
    state = path.init
    for action, expected in path.steps:
        assert action in list(model.actions(state))
        state = model.next_state(state, action)
        assert state == expected


def test_twophase_format_state_is_sorted_and_readable() -> None:
    model = build("twophase", 2)
    state = TPState(
        ("prepared", "prepared"),
        "init",
        frozenset({"r2", "r1"}),
        frozenset({("Prepared", "r2"), ("Prepared", "r1")}),
    )
    text = model.format_state(state)
    assert text == (
        "rmState [r1: prepared, r2: prepared] tmState init tmPrepared {r1, r2} "
        "msgs {Prepared, r1; Prepared, r2}"
    )
    assert model.format_action(("RMPrepare", "r1")) == "RMPrepare(r1)"
    assert model.format_action(("TMCommit",)) == "TMCommit"


# -- TCommit --------------------------------------------------------------------------------


def test_tcommit_three_rms_matches_tlc_exactly() -> None:
    # tlaplus Examples manifest.json for TCommit.cfg (RM = {r1, r2, r3}):
    # distinctStates 34, totalStates 94, stateDepth 7.
    result = check(build("tcommit", 3))
    assert (result.distinct, result.generated, result.depth) == (34, 94, 7)
    assert result.ok


def _tcommit_brute_force(n: int) -> set[tuple[str, ...]]:
    """Reachable rmState functions, from the TLA+ next-state relation read as a predicate
    over pairs of all 4^n functions (no successor function involved)."""

    def step(s: tuple[str, ...], t: tuple[str, ...]) -> bool:
        changed = [i for i in range(n) if s[i] != t[i]]
        if len(changed) != 1:
            return False
        i = changed[0]
        prepare = s[i] == "working" and t[i] == "prepared"
        can_commit = all(x in ("prepared", "committed") for x in s)
        not_committed = all(x != "committed" for x in s)
        commit = s[i] == "prepared" and can_commit and t[i] == "committed"
        abort = s[i] in ("working", "prepared") and not_committed and t[i] == "aborted"
        return prepare or commit or abort

    everything = list(itertools.product(STATUSES, repeat=n))
    reached = {("working",) * n}
    while True:
        more = {t for t in everything for s in reached if t not in reached and step(s, t)}
        if not more:
            return reached
        reached |= more


@pytest.mark.parametrize("rms", [2, 3, 4])
def test_tcommit_counts_match_brute_force(rms: int) -> None:
    expected = _tcommit_brute_force(rms)
    assert check(build("tcommit", rms)).distinct == len(expected)


@pytest.mark.parametrize("rms", [3, 4, 5, 6, 7])
def test_tcommit_counts_follow_the_closed_form(rms: int) -> None:
    # No RM committed: any mix of working, prepared, aborted (3^n). Some RM committed:
    # every RM prepared or committed, at least one committed (2^n - 1).
    assert check(build("tcommit", rms)).distinct == 3**rms + 2**rms - 1


def test_tcommit_decide_distinguishes_its_two_disjuncts() -> None:
    model = build("tcommit", 2)
    both_prepared = ("prepared", "prepared")
    assert set(model.actions(both_prepared)) == {
        ("Decide", "r1", "committed"),
        ("Decide", "r1", "aborted"),
        ("Decide", "r2", "committed"),
        ("Decide", "r2", "aborted"),
    }
    assert model.next_state(("working", "prepared"), ("Decide", "r2", "committed")) is None
    assert model.next_state(("committed", "prepared"), ("Decide", "r2", "aborted")) is None
    assert model.format_action(("Decide", "r1", "aborted")) == "Decide(r1) -> aborted"


# -- symmetry -------------------------------------------------------------------------------


def _permute_twophase(state: TPState, rms: tuple[str, ...], perm: tuple[int, ...]) -> TPState:
    """Rename RM rms[i] to rms[perm[i]] everywhere in the state."""
    rename = {rms[i]: rms[perm[i]] for i in range(len(rms))}
    rm_state = [""] * len(rms)
    for i, status in enumerate(state.rm_state):
        rm_state[perm[i]] = status
    msgs = frozenset((m[0], rename[m[1]]) if len(m) == 2 else m for m in state.msgs)
    return TPState(
        tuple(rm_state), state.tm_state, frozenset(rename[r] for r in state.tm_prepared), msgs
    )


def _canonical_twophase(state: TPState, rms: tuple[str, ...]) -> str:
    return min(
        repr((p.rm_state, p.tm_state, sorted(p.tm_prepared), sorted(p.msgs)))
        for perm in itertools.permutations(range(len(rms)))
        for p in [_permute_twophase(state, rms, perm)]
    )


@pytest.mark.parametrize("rms", [3, 4])
def test_twophase_symmetry_explores_exactly_one_state_per_orbit(rms: int) -> None:
    model = build("twophase", rms)
    orbits = {_canonical_twophase(state, model.rms) for state in _reachable(model)}
    reduced = check(model, symmetry=True)
    assert reduced.distinct == len(orbits)
    assert reduced.ok


@pytest.mark.parametrize("rms", [3, 4])
def test_twophase_representative_is_a_member_of_the_orbit(rms: int) -> None:
    model = build("twophase", rms)
    for state in _reachable(model):
        rep = model.representative(state)
        assert _canonical_twophase(rep, model.rms) == _canonical_twophase(state, model.rms)
        assert model.representative(rep) == rep


@pytest.mark.parametrize("rms", [3, 4, 5])
def test_tcommit_symmetry_orbits(rms: int) -> None:
    model = build("tcommit", rms)
    orbits = {tuple(sorted(s)) for s in _tcommit_brute_force(rms)} if rms < 5 else None
    reduced = check(model, symmetry=True)
    if orbits is not None:
        assert reduced.distinct == len(orbits)
    # Multisets over {working, prepared, aborted}, plus the all-prepared-or-committed ones
    # with at least one committed.
    assert reduced.distinct == (rms + 1) * (rms + 2) // 2 + rms


def test_symmetric_examples_replay_as_real_runs() -> None:
    model = build("twophase", 4)
    result = check(model, symmetry=True)
    for path in result.examples.values():
        _assert_replays(model, path)


# -- factory --------------------------------------------------------------------------------


def test_build_accepts_counts_and_names() -> None:
    assert build("twophase", 2).rms == ("r1", "r2")
    assert isinstance(build("TCommit", ["a", "b"]), TCommit)
    assert build("tcommit", ["a", "b"]).rms == ("a", "b")


@pytest.mark.parametrize(
    ("name", "rms", "words"),
    [
        ("paxos", 3, "unknown specification 'paxos'"),
        ("twophase", 0, "at least 1"),
        ("twophase", [], "at least one"),
        ("twophase", ["a", "a"], "distinct"),
        ("twophase", "abc", "count or a list"),
        ("twophase", True, "integer"),
    ],
)
def test_build_rejects_bad_input_clearly(name, rms, words: str) -> None:
    with pytest.raises(ModelError, match=words):
        build(name, rms)


def test_rm_names_are_those_of_the_tlc_configurations() -> None:
    assert rm_names(3) == ("r1", "r2", "r3")


def test_type_invariants_reject_ill_typed_states() -> None:
    tp = build("twophase", 2)
    [type_ok] = [p for p in tp.properties() if p.name == "TPTypeOK"]
    good = tp.init_states()[0]
    assert type_ok.condition(tp, good)
    assert not type_ok.condition(tp, good._replace(rm_state=("working", "bogus")))
    assert not type_ok.condition(tp, good._replace(rm_state=("working",)))
    assert not type_ok.condition(tp, good._replace(tm_state="prepared"))
    assert not type_ok.condition(tp, good._replace(tm_prepared=frozenset({"r9"})))
    assert not type_ok.condition(tp, good._replace(msgs=frozenset({("Prepared", "r9")})))
    tc = build("tcommit", 2)
    [tc_type_ok] = [p for p in tc.properties() if p.name == "TCTypeOK"]
    assert tc_type_ok.condition(tc, ("working", "aborted"))
    assert not tc_type_ok.condition(tc, ("working", "undecided"))
