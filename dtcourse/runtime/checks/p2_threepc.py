"""Visible checks of p2.threepc: the termination rule, in 3PC, and the partition.

No rule ships with the student package, so the three parts judge without one:

* ``rule``: the reports the survivors of a crash-stop run can make with 3 participants,
  each with the textbook's decision stored as a salted digest (written by ``dtcourse
  build`` from the instructor's reference);
* ``crash_stop``: the student's rule inside 3PC, model-checked under crash-stop failures
  with a perfect failure detector: AC1-AC4 and non-blocking are properties, not answers;
* ``partition``: the student's own counterexample, replayed on 3PC with the student's rule,
  and read back from its last state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from dtcourse.commit import properties
from dtcourse.engine.actors import ActorSystem, Partition, SystemState
from dtcourse.engine.model import Path
from dtcourse.errors import ModelError
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.casedata import load_cases, matches_digest

__all__ = [
    "EXERCISE",
    "VISIBLE_PARTICIPANTS",
    "ask",
    "crash_stop",
    "partition",
    "rule_cases",
    "rule_salt",
    "system",
]

COORDINATOR = "C"
#: How many participants the visible cases of the ``rule`` part have (the hidden ones more).
VISIBLE_PARTICIPANTS = 3
# How long a failing rule's run may be searched for (the systems here are small).
_TRACE_SEARCH_SECONDS = 2.0


def rule_salt(states: Mapping[str, str]) -> str:
    """The salt of one report's digest: the multiset of states, so equal decisions of
    different reports give different digests."""
    return "p2.threepc/rule/" + json.dumps(sorted(states.values()))


def _rule(obj: Any) -> Callable[[Mapping[str, str]], str]:
    rule = obj.get("rule") if isinstance(obj, Mapping) else obj
    assert callable(rule), "pass {'rule': terminate, 'partition': partition_answer}"
    return rule


def ask(rule: Callable[[Mapping[str, str]], str], states: Mapping[str, str]) -> str:
    """The rule's decision on ``states``; anything but ``commit`` or ``abort`` fails."""
    try:
        got = rule(dict(states))
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"your rule raised {type(error).__name__}: {error} on {dict(states)}"
        ) from None
    assert got in ("commit", "abort"), (
        f"the rule must return 'commit' or 'abort', got {got!r} for {dict(states)}"
    )
    return got


def rule_cases(obj: Any) -> None:
    """The rule on every report the survivors of 3 participants can make."""
    rule = _rule(obj)
    for case in load_cases("p2.threepc")["rule"]:
        states = case["states"]
        got = ask(rule, states)
        assert matches_digest(got, case["digest"], rule_salt(states)), (
            f"survivors in states {states}: your rule decides {got}, which is not what the "
            "termination rule decides here. Which states may the participants that did not "
            "report be in, given what these states promise? (TR1-TR4 in the reading)"
        )


def system(
    rule: Callable[[Mapping[str, str]], str],
    participants: int = 2,
    **options: Any,
) -> ActorSystem:
    """3PC terminating with ``rule``, as ``build("3pc", participants, rule=rule, **options)``,
    with a short search for the run behind a failing handler."""
    from dtcourse.commit.protocols import build

    built = build("3pc", participants, rule=rule, **options)
    built.trace_search_seconds = _TRACE_SEARCH_SECONDS
    return built


def _trace_text(model: ActorSystem, path: Path, limit: int = 40) -> str:
    from dtcourse.engine.trace_text import text_sequence

    try:
        return text_sequence(model.trace_of(path), max_events=limit)
    except Exception:  # feedback must never fail because a picture could not be drawn
        return "\n".join(f"  {n}. {model.format_action(a)}" for n, a in enumerate(path.actions, 1))


def crash_stop(obj: Any, *, participants: int = 2, crashes: int = 1, votes: Any = "any") -> None:
    """Your rule inside 3PC, model-checked under crash-stop failures with a perfect failure
    detector: AC1-AC4 hold and no live participant ever blocks."""
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
            + _trace_text(model, violation.path)
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


def _replay(model: ActorSystem, path: Path, what: str) -> SystemState:
    """The last state of ``path``'s actions taken on ``model`` from its initial state.

    A path's states belong to the system that made it, so each action is matched to the
    equal action ``model`` offers, which carries its own references to messages.
    """
    state = model.init_states()[0]
    for number, action in enumerate(path.actions, start=1):
        mine = next((a for a in model.actions(state) if a == action), None)
        if mine is None:
            raise AssertionError(
                f"{what} does not replay on {model!r}: step {number} "
                f"({model.format_action(action)}) is not possible there; was it produced by "
                "the checker on that system, with your rule?"
            )
        nxt = model.next_state(state, mine)
        assert nxt is not None, f"{what}: step {number} is not enabled on {model!r}"
        state = nxt
    return state


def partition(obj: Any, *, participants: int = 2) -> None:
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
    replayed = system(_rule(obj), participants, partitions=1)
    last = _replay(replayed, path, "the AC1 counterexample")
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
    (("rule", rule_cases), ("crash_stop", crash_stop), ("partition", partition)),
)
