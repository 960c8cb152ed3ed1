"""p2.threepc: the termination rule of three-phase commit, judged in the protocol itself.

When the 3PC coordinator fails, the participants that are still up elect a new coordinator,
which collects their states and applies the termination rule (Skeen 1981; Bernstein,
Hadzilacos and Goodman, 7.5). The student writes that rule as a function of the reported
states, in the words of the notebook: ``working``, ``prepared`` (uncertain),
``precommitted``, ``committed``, ``aborted``.

It is judged three ways. First against the textbook on every set of states the survivors
of a crash-stop run can report (3PC's promise: nobody is working or aborted while anybody
is precommitted or committed, and nobody commits before all precommitted). Then inside the
reference 3PC: the rule is plugged into its participants and the model checker explores
every run with crashes under a perfect failure detector, where AC1-AC4 and non-blocking must
hold. Last, the student uses the checker to produce the partition counterexample and reads
off who decided what.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import combinations, product
from typing import Any

from dtcourse.commit import properties
from dtcourse.commit.protocols import votes_for
from dtcourse.engine.actors import ActorSystem, Partition
from dtcourse.engine.network import Faults
from dtcourse.errors import ModelError
from dtcourse.runtime.checks import Exercise
from dtcourse_instructor.grader.commitruns import COORDINATOR, names, replay, trace_text

STATES = ("working", "prepared", "precommitted", "committed", "aborted")
_EARLY = {"working", "aborted"}
_LATE = {"precommitted", "committed"}
# The reference protocol's phase names, in the exercise's words.
_WORDS = {
    "working": "working",
    "uncertain": "prepared",
    "precommitted": "precommitted",
    "commit": "committed",
    "abort": "aborted",
}
# How long a failing rule's run may be searched for (the systems here are small).
_TRACE_SEARCH_SECONDS = 2.0


def reference_rule(states: Mapping[str, str]) -> str:
    """Skeen's rule: any aborted or working -> abort; any committed or precommitted ->
    commit; all prepared (uncertain) -> abort."""
    values = set(states.values())
    if values & _EARLY:
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


def in_protocol(rule: Callable[[Mapping[str, str]], str]) -> Callable[[Mapping[str, str]], str]:
    """``rule`` (in the notebook's words) as the reference 3PC's termination rule."""

    def translated(states: Mapping[str, str]) -> str:
        return rule({name: _WORDS.get(phase, phase) for name, phase in states.items()})

    return translated


def system(
    rule: Callable[[Mapping[str, str]], str] | None = None,
    participants: int = 2,
    *,
    votes: str | tuple[str, ...] = "any",
    crashes: int = 0,
    partitions: int = 0,
) -> ActorSystem:
    """The reference 3PC under a perfect failure detector, its participants terminating
    with ``rule`` (a function of ``{name: state}`` returning ``"commit"`` or ``"abort"``;
    the textbook rule when None), with every atomic-commit property attached."""
    from dtcourse.commit.protocols import threepc

    parts = names(participants)
    nodes = threepc.nodes(
        COORDINATOR,
        parts,
        votes_for(parts, votes),  # type: ignore[arg-type]
        rule=None if rule is None else in_protocol(rule),
    )
    return ActorSystem(
        nodes,
        faults=Faults(crashes=crashes, partitions=partitions),
        timing="perfect",
        participants=parts,
        properties=properties.properties(),
        name="3pc",
        trace_search_seconds=_TRACE_SEARCH_SECONDS,
    )


def _global_states(participants: int) -> Iterator[tuple[str, ...]]:
    for combo in product(STATES, repeat=participants):
        if possible(combo):
            yield combo


def threepc_rule(obj: Any, *, participants: int = 3) -> None:
    """The rule on every set of states the survivors can report, as the textbook says."""
    rule = _rule(obj)
    parts = names(participants)
    seen = set()
    for combo in _global_states(participants):
        for size in range(1, participants + 1):
            for alive in combinations(range(participants), size):
                states = {parts[i]: combo[i] for i in alive}
                key = tuple(sorted(states.values()))
                if key in seen:
                    continue
                seen.add(key)
                want = reference_rule(states)
                got = _ask(rule, states)
                assert got == want, (
                    f"survivors in states {states}: the termination rule decides {want}, not {got}"
                )


def threepc_crash_stop(
    obj: Any, *, participants: int = 2, crashes: int = 1, votes: Any = "any"
) -> None:
    """Your rule inside the reference 3PC, model-checked under crash-stop failures with a
    perfect failure detector: AC1-AC4 hold and no live participant ever blocks."""
    rule = _rule(obj)
    try:
        model = system(rule, participants, votes=votes, crashes=crashes)
    except ModelError as error:
        raise AssertionError(f"cannot build the system: {error}") from None
    from dtcourse.engine.checker import check

    where = (
        f"model checking 3PC with your rule ({participants} participants, votes {votes}, "
        f"{crashes} crash{'es' if crashes != 1 else ''}, crash-stop, perfect failure detector)"
    )
    try:
        result = check(model, max_states=50_000)
    except ModelError as error:
        text = str(error).split("; fix the handler")[0]
        raise AssertionError(f"{where}: {text}") from None
    for violation in result.violations:
        if violation.path is None:
            if result.complete:
                raise AssertionError(f"{where}: no run ever reaches '{violation.property}'")
            continue
        raise AssertionError(
            f"{where}: '{violation.property}' is violated; the shortest run:\n"
            + trace_text(model, violation.path)
        )
    assert result.complete, f"{where}: the search did not finish ({result.reason})"


# -- the partition counterexample ------------------------------------------------------------


def _answer(answer: Any, key: str) -> Any:
    assert isinstance(answer, Mapping), "partition_answer must be a dict (see the template)"
    assert key in answer, f"partition_answer has no {key!r}; keep every key of the template"
    return answer[key]


def _names(value: Any, key: str) -> frozenset[str]:
    ok = isinstance(value, set | frozenset | list | tuple) and all(
        isinstance(v, str) for v in value
    )
    assert ok, f"partition_answer[{key!r}] must be a set of node names such as {{'C', 'P1'}}"
    return frozenset(value)


def threepc_partition(obj: Any, **settings: Any) -> None:
    """The checker's AC1 counterexample under a partition, replayed and read correctly."""
    answer = obj.get("partition") if isinstance(obj, Mapping) else None
    result = _answer(answer, "result")
    violation = next(
        (v for v in getattr(result, "violations", ()) if v.property == properties.AC1), None
    )
    assert violation is not None and violation.path is not None, (
        "partition_answer['result'] must be the CheckResult of a check that found the AC1 "
        "violation; this one has none (did you allow a partition with partitions=1?)"
    )
    path = violation.path
    splits = [a for a in path.actions if isinstance(a, Partition)]
    assert splits, "the AC1 violation in your result has no partition: allow partitions=1"
    rule = obj.get("rule") if isinstance(obj, Mapping) else None
    replayed = system(
        rule if callable(rule) else None, settings.get("participants", 2), partitions=1
    )
    last = replay(replayed, path, "the AC1 counterexample")
    decided = {
        name: rec.decision[0]
        for name, rec in zip(replayed.names, replayed.records(last), strict=True)
        if rec.decision is not None
    }
    side = next(g for g in splits[0].groups if COORDINATOR in g)
    got_side = _names(_answer(answer, "coordinator_side"), "coordinator_side")
    assert got_side == frozenset(side), (
        f"partition_answer['coordinator_side'] is {set(got_side)}; which nodes are on the "
        "coordinator's side of the partition in your run? Look for the shaded band."
    )
    for key, value in (("committed", "commit"), ("aborted", "abort")):
        want = frozenset(n for n, d in decided.items() if d == value)
        got = _names(_answer(answer, key), key)
        assert got == want, (
            f"partition_answer[{key!r}] is {set(got) or 'empty'}; in the last state of your "
            f"counterexample, which nodes decided {value}? (the coloured boxes)"
        )
    assert _answer(answer, "atomic") is False, (
        "partition_answer['atomic']: do all nodes that decided agree? (True or False)"
    )


EXERCISE = Exercise(
    "p2.threepc",
    (
        ("rule", threepc_rule),
        ("crash_stop", threepc_crash_stop),
        ("partition", threepc_partition),
    ),
)
