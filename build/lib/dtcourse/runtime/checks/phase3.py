"""The visible checks of Advanced Topics, one module per exercise."""

from dtcourse.runtime.checks import Exercise, p3_cheapest_commit, p3_presumed_abort, p3_saga

__all__ = ["EXERCISES"]

EXERCISES: tuple[Exercise, ...] = (
    p3_saga.EXERCISE,
    p3_presumed_abort.EXERCISE,
    p3_cheapest_commit.EXERCISE,
)
