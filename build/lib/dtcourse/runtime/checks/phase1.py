"""The visible checks of Foundations, one module per exercise."""

from dtcourse.runtime.checks import Exercise, p1_serializability, p1_transfer

__all__ = ["EXERCISES"]

EXERCISES: tuple[Exercise, ...] = (
    p1_transfer.EXERCISE,
    p1_serializability.EXERCISE,
)
