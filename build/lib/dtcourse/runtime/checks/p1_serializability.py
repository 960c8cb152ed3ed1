"""Visible checks of p1.serializability. TEMPORARY: re-exports the instructor's checks until
answer-free ones replace them."""

from dtcourse_instructor.grader.phase1 import EXERCISES as _ALL

__all__ = ["EXERCISE"]

EXERCISE = next(exercise for exercise in _ALL if exercise.id == "p1.serializability")
