"""Visible checks of p3.cheapest_commit: the student's numbers and choice for the visible
workloads, compared with salted hashes the course's build computed from its reference.

The student's ``choose(workload)`` returns ``{"variant": ..., "costs": {presumption:
{"forced_writes": ..., "coordinator_writes": ...}}}``: the expected forced writes per
transaction of each presumption for the workload's mix, in total and at the coordinator,
and the presumption with the fewest forced writes among those whose coordinator stays
within the budget (None when none does). The expected answers are stored only as salted
hashes (``data/p3.cheapest_commit.json``), so this module can say right or wrong but holds
no number to copy. The graded hidden tests ask the same for other workloads.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.casedata import load_cases, matches_digest

__all__ = ["EXERCISE", "NUMBERS", "answer_of", "cheapest_choice", "cheapest_expected"]

EXERCISE_ID = "p3.cheapest_commit"
NUMBERS = ("forced_writes", "coordinator_writes")


def _describe(workload: dict[str, Any]) -> str:
    kinds = ", ".join(
        f"{kind['share']:.0%} with {kind['participants']} participants aborting "
        f"{kind['abort_rate']:.0%}"
        for kind in workload["mix"]
    )
    return f"workload [{kinds}; coordinator budget {workload['coordinator_budget']:g}]"


def answer_of(
    choose: Callable[[dict[str, Any]], Any], workload: dict[str, Any], presumptions: list[str]
) -> dict[str, Any]:
    """The student's answer for one workload, its shape checked, with advice if it is off."""
    where = _describe(workload)
    try:
        answer = choose(copy.deepcopy(workload))
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(f"{where}: choose raised {type(error).__name__}: {error}") from None
    assert isinstance(answer, dict) and {"variant", "costs"} <= set(answer), (
        f"{where}: choose returned {answer!r}; return a dict with keys 'variant' and 'costs'"
    )
    assert answer["variant"] is None or answer["variant"] in presumptions, (
        f"{where}: variant {answer['variant']!r} is not one of {', '.join(presumptions)} "
        "(or None when no presumption fits the budget)"
    )
    table = answer["costs"]
    assert isinstance(table, dict) and set(table) == set(presumptions), (
        f"{where}: 'costs' must map each of {', '.join(presumptions)} to its numbers, got "
        f"{sorted(table) if isinstance(table, dict) else table!r}"
    )
    for variant, numbers in table.items():
        assert isinstance(numbers, dict) and set(NUMBERS) <= set(numbers), (
            f"{where}: costs[{variant!r}] must be a dict with {' and '.join(NUMBERS)}"
        )
        for name in NUMBERS:
            value = numbers[name]
            assert (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ), f"{where}: costs[{variant!r}][{name!r}] is {value!r}, not a number"
    return answer


def _visible(choose: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    data = load_cases(EXERCISE_ID)
    for case in data["workloads"]:
        answer = answer_of(choose, case["workload"], data["presumptions"])
        yield case, answer, data


_WEIGH = (
    "weigh the cost of a commit and of an abort (measure, or your own nodes' counts) by how "
    "often each happens, then each class of the mix by its share; coordinator_writes counts "
    "only the forced writes at C (writes_by_node)"
)


def cheapest_expected(choose: Any) -> None:
    """Every presumption's expected forced writes, in total and at the coordinator."""
    for case, answer, data in _visible(choose):
        for variant, digests in case["costs"].items():
            for name in NUMBERS:
                value = round(float(answer["costs"][variant][name]), data["digits"]) + 0.0
                assert matches_digest(value, digests[name], data["salt"]), (
                    f"{_describe(case['workload'])}: {name} of {variant} is not {value:g}; "
                    + _WEIGH
                )


def cheapest_choice(choose: Any) -> None:
    """The presumption with the fewest forced writes among those within the budget."""
    for case, answer, data in _visible(choose):
        assert matches_digest(answer["variant"], case["variant"], data["salt"]), (
            f"{_describe(case['workload'])}: {answer['variant']} is not the right choice. "
            "Keep the presumptions whose coordinator_writes fit the budget and take the one "
            "with the fewest forced_writes (on a tie, the first in the list); None if none "
            "fits"
        )


EXERCISE = Exercise(
    EXERCISE_ID,
    (("expected", cheapest_expected), ("choice", cheapest_choice)),
)
