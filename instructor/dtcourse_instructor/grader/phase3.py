"""Hidden tests for Phase 3: the saga orchestrator (p3.saga), presumed abort
(p3.presumed_abort) and the cheapest commit for a workload (p3.cheapest_commit).

The saga and presumed-abort parts judge by definitions and by counts the student package
already holds (the saga's definition; the checker; the cost table's recorded
presumed-abort row), so the hidden tests run the visible parts with longer sagas, more
sizes and more crashes. The cheapest-commit parts compare with the reference's numbers
for any workload, since the visible check only knows hashes of the visible ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks import p3_presumed_abort as visible_presumed_abort
from dtcourse.runtime.checks import p3_saga as visible_saga
from dtcourse.runtime.checks.p3_cheapest_commit import NUMBERS, answer_of
from dtcourse_instructor.reference import p3_cheapest_commit as cheapest

__all__ = ["EXERCISES", "cheapest_choice", "cheapest_expected"]


def _answers(choose: Any, workloads: Iterable[dict[str, Any]] | None):
    presumptions = list(cheapest.PRESUMPTIONS)
    for workload in workloads or cheapest.VISIBLE_WORKLOADS:
        yield workload, answer_of(choose, workload, presumptions), cheapest.choose(workload)


def cheapest_expected(choose: Any, *, workloads: Iterable[dict[str, Any]] | None = None):
    """Every presumption's expected forced writes, in total and at the coordinator."""
    for _, answer, right in _answers(choose, workloads):
        for variant, numbers in right["costs"].items():
            for name in NUMBERS:
                mine = answer["costs"][variant][name]
                assert abs(mine - numbers[name]) < 10**-cheapest.DIGITS, (
                    f"a hidden workload: {name} of {variant} is {mine:g}, which is not what "
                    "the cost table gives; weigh each outcome by its rate and each class of "
                    "the mix by its share"
                )


def cheapest_choice(choose: Any, *, workloads: Iterable[dict[str, Any]] | None = None):
    """The presumption with the fewest forced writes among those within the budget."""
    for _, answer, right in _answers(choose, workloads):
        assert answer["variant"] == right["variant"], (
            f"a hidden workload: {answer['variant']} is not the right choice; keep the "
            "presumptions within the coordinator's budget, then take the fewest forced writes"
        )


EXERCISES: tuple[Exercise, ...] = (
    # The visible parts judge by definitions and recorded counts alone; the hidden tests
    # pass them harder settings.
    visible_saga.EXERCISE,
    visible_presumed_abort.EXERCISE,
    Exercise(
        "p3.cheapest_commit",
        (("expected", cheapest_expected), ("choice", cheapest_choice)),
    ),
)
