"""Reference for p2.threepc: Skeen's termination rule, and the states it must judge.

The rule is written in the exercise's words (``working``, ``prepared`` for uncertain,
``precommitted``, ``committed``, ``aborted``), which are also the words the 3PC participants
of ``dtcourse.commit.protocols.threepc`` report to their rule, so ``terminate`` plugs into
``build("3pc", ..., rule=terminate)`` as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import combinations, product
from typing import Any

from dtcourse.runtime.checks.casedata import answer_digest
from dtcourse.runtime.checks.p2_threepc import VISIBLE_PARTICIPANTS, rule_salt

__all__ = ["STATES", "possible", "survivor_reports", "terminate", "visible_cases"]

STATES = ("working", "prepared", "precommitted", "committed", "aborted")
_EARLY = {"working", "aborted"}
_LATE = {"precommitted", "committed"}


def terminate(states: Mapping[str, str]) -> str:
    """Skeen's rule: any aborted or working -> abort (TR1); any committed or precommitted ->
    commit (TR2, TR4); all prepared (uncertain) -> abort (TR3)."""
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


def survivor_reports(participants: int) -> Iterator[dict[str, str]]:
    """Every set of states the survivors of a crash-stop run of 3PC can report, once per
    multiset of states (the rule must not depend on who reported what)."""
    names = tuple(f"P{i}" for i in range(1, participants + 1))
    seen: set[tuple[str, ...]] = set()
    for combo in product(STATES, repeat=participants):
        if not possible(combo):
            continue
        for size in range(1, participants + 1):
            for alive in combinations(range(participants), size):
                states = {names[i]: combo[i] for i in alive}
                key = tuple(sorted(states.values()))
                if key not in seen:
                    seen.add(key)
                    yield states


def visible_cases() -> dict[str, Any]:
    """The reports of the visible setting, each with its decision as a salted digest."""
    return {
        "rule": [
            {"states": states, "digest": answer_digest(terminate(states), rule_salt(states))}
            for states in survivor_reports(VISIBLE_PARTICIPANTS)
        ]
    }
