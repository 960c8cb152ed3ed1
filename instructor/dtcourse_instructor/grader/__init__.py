"""Hidden-test logic: each exercise's parts run with the instructor's harder settings.

A graded test cell's hidden region calls ``grade_part(exercise, part, obj, **settings)``.
Parts may use the reference solutions, which students never receive.
"""

from __future__ import annotations

from typing import Any

from dtcourse.errors import DTCourseError
from dtcourse.runtime.checks import Exercise, exercises_by_id, phase_exercises
from dtcourse.runtime.syllabus import load_syllabus

__all__ = ["grade_part", "registry"]


def registry() -> dict[str, Exercise]:
    """Every exercise of the syllabus with hidden parts, by id."""
    return exercises_by_id(__name__)


def grade_part(exercise_id: str, part: str, obj: Any, **settings: Any) -> None:
    """Run one part with hidden settings; raises AssertionError when the answer is wrong."""
    try:
        phase_id = load_syllabus().exercise(exercise_id).phase
    except DTCourseError:
        raise DTCourseError(f"no exercise {exercise_id!r}") from None
    for exercise in phase_exercises(__name__, phase_id):
        if exercise.id == exercise_id:
            parts = dict(exercise.parts)
            if part not in parts:
                raise DTCourseError(f"exercise {exercise_id} has no part {part!r}")
            parts[part](obj, **settings)
            return
    raise DTCourseError(f"exercise {exercise_id!r} has no hidden parts")
