"""p2.threepc: the termination rule of three-phase commit, judged on every global state.

When the coordinator of 3PC fails, the participants that are still up elect a new
coordinator, which collects their states and applies the termination rule (Skeen 1981;
Bernstein, Hadzilacos and Goodman, 7.5). 3PC keeps one promise that makes the rule safe
under crash-stop: no participant is ever "working" or "aborted" while another is
"precommitted" or "committed", and nobody commits before everybody has precommitted.
The checks below enumerate every global state that promise allows, crash any subset of
participants, and require the rule applied to the survivors to decide (non-blocking) and
to agree with every decision already made, by survivors or by the dead. Under a network
partition the promise does not help: each side applies the rule to its own members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import combinations, product
from typing import Any

from dtcourse.exercises import Exercise

STATES = ("working", "prepared", "precommitted", "committed", "aborted")
_EARLY = {"working", "aborted"}
_LATE = {"precommitted", "committed"}


def reference_rule(states: Mapping[str, str]) -> str:
    """Skeen's rule: any aborted or working -> abort; any committed or precommitted ->
    commit; all prepared (uncertain) -> abort."""
    values = set(states.values())
    if values & {"aborted", "working"}:
        return "abort"
    if values & _LATE:
        return "commit"
    return "abort"


def possible(global_state: tuple[str, ...]) -> bool:
    """The 3PC promises: nobody early (working, aborted) while anybody is late, and a
    commit only once everybody has precommitted."""
    values = set(global_state)
    if "committed" in values and not values <= _LATE:
        return False
    return not (values & _EARLY and values & _LATE)


def decided(global_state: tuple[str, ...]) -> set[str]:
    return {
        {"committed": "commit", "aborted": "abort"}[s]
        for s in global_state
        if s in ("committed", "aborted")
    }


def _rule(obj: Any) -> Callable:
    rule = obj.get("rule") if isinstance(obj, Mapping) else obj
    assert callable(rule), "pass {'rule': terminate, 'partition': partition_answer}"
    return rule


def _ask(rule: Callable, states: dict[str, str]) -> Any:
    try:
        got = rule(dict(states))
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"your rule raised {type(error).__name__}: {error} on {states}"
        ) from None
    assert got in ("commit", "abort"), (
        f"the rule must return 'commit' or 'abort', got {got!r} for {states}"
    )
    return got


def _global_states(participants: int) -> Iterator[tuple[str, ...]]:
    for combo in product(STATES, repeat=participants):
        if possible(combo):
            yield combo


def threepc_rule(obj: Any, *, participants: int = 3) -> None:
    """The rule on every set of reachable states of the survivors, as the textbook says."""
    rule = _rule(obj)
    names = [f"P{i}" for i in range(1, participants + 1)]
    seen = set()
    for combo in _global_states(participants):
        for size in range(1, participants + 1):
            for alive in combinations(range(participants), size):
                states = {names[i]: combo[i] for i in alive}
                key = tuple(sorted(states.values()))
                if key in seen:
                    continue
                seen.add(key)
                want = reference_rule(states)
                got = _ask(rule, states)
                assert got == want, (
                    f"survivors in states {states}: the termination rule decides {want}, not {got}"
                )


def threepc_crash_stop(obj: Any, *, participants: int = 3) -> None:
    """Crash-stop: for every possible global state and every set of survivors, the rule
    decides and agrees with any decision already made (so 3PC never blocks)."""
    rule = _rule(obj)
    names = [f"P{i}" for i in range(1, participants + 1)]
    for combo in _global_states(participants):
        made = decided(combo)
        for size in range(1, participants + 1):
            for alive in combinations(range(participants), size):
                states = {names[i]: combo[i] for i in alive}
                got = _ask(rule, states)
                dead = {names[i]: combo[i] for i in range(participants) if i not in alive}
                assert not made or got in made, (
                    f"global state {dict(zip(names, combo, strict=True))}: the survivors "
                    f"{states} decide {got}, but {sorted(made)} was already decided (crashed "
                    f"{dead or 'nobody'}): AC1 is violated"
                )


def partition_sides(participants: int = 3) -> tuple[dict[str, str], dict[str, str]]:
    """The textbook split: the coordinator precommitted P1, then the network split P1
    (with the coordinator) from the others, which only ever got to prepared."""
    names = [f"P{i}" for i in range(1, participants + 1)]
    return {names[0]: "precommitted"}, {n: "prepared" for n in names[1:]}


def threepc_partition(obj: Any, *, participants: int = 3) -> None:
    """The two sides of the partition, each running the termination rule alone."""
    answer = obj.get("partition") if isinstance(obj, Mapping) else None
    assert isinstance(answer, Mapping), "partition_answer must be a dict (see the template)"
    side_a, side_b = partition_sides(participants)
    for key, side in (("side_with_P1", side_a), ("other_side", side_b)):
        assert key in answer, f"partition_answer has no {key!r}; keep the template's keys"
        want = reference_rule(side)
        assert answer[key] == want, (
            f"partition_answer[{key!r}] is {answer[key]!r}: apply the termination rule to "
            f"the states on that side, {side}"
        )
    assert answer.get("atomic") is False, (
        "partition_answer['atomic']: do the two sides agree? (True or False)"
    )


EXERCISE = Exercise(
    "p2.threepc",
    (
        ("rule", threepc_rule),
        ("crash_stop", threepc_crash_stop),
        ("partition", threepc_partition),
    ),
)
