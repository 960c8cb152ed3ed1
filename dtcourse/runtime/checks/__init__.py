"""Visible checks: immediate feedback in the student's lab, with no answer inside.

Each exercise has *parts*: functions that take the student's object and raise
``AssertionError`` with a message a student can act on. ``check()`` runs an exercise's
parts, prints a verdict and records a pass; a graded test cell calls ``check_part()`` so a
failure is an ordinary assertion with a clean message. The checks of one phase live in
``dtcourse.runtime.checks.<phase id>``; the instructor's hidden tests live elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dtcourse.errors import DTCourseError

__all__ = [
    "Exercise",
    "Part",
    "check",
    "check_part",
    "exercises_by_id",
    "phase_exercises",
    "registry",
]

Part = Callable[[Any], None]


@dataclass(frozen=True)
class Exercise:
    """An exercise's checkable parts, in the order ``check()`` runs them."""

    id: str
    parts: tuple[tuple[str, Part], ...]


def phase_exercises(package: str, phase_id: str) -> tuple[Exercise, ...]:
    """The ``EXERCISES`` of ``<package>.<phase id>``: the visible checks here, the hidden
    parts in the instructor's grader."""
    return tuple(importlib.import_module(f"{package}.{phase_id}").EXERCISES)


def exercises_by_id(package: str) -> dict[str, Exercise]:
    """Every exercise of the syllabus that ``package`` checks, by id."""
    from dtcourse.runtime.syllabus import load_syllabus

    return {
        exercise.id: exercise
        for phase in load_syllabus().phases
        for exercise in phase_exercises(package, phase.id)
    }


def registry() -> dict[str, Exercise]:
    """Every exercise of the syllabus that has visible checks, by id."""
    return exercises_by_id(__name__)


def _lookup(exercise_id: str) -> Exercise:
    """Only the exercise's own phase module is imported: phases do not depend on each other."""
    from dtcourse.runtime.syllabus import load_syllabus

    try:
        phase_id = load_syllabus().exercise(exercise_id).phase
    except DTCourseError:
        known = ", ".join(exercise.id for exercise in load_syllabus().exercises)
        raise DTCourseError(f"no exercise {exercise_id!r}; known exercises: {known}") from None
    for exercise in phase_exercises(__name__, phase_id):
        if exercise.id == exercise_id:
            return exercise
    raise DTCourseError(f"exercise {exercise_id!r} has no checks in {__name__}.{phase_id}")


def check_part(exercise_id: str, part: str, obj: Any) -> None:
    """Run one visible part; raises AssertionError when the answer is wrong."""
    parts = dict(_lookup(exercise_id).parts)
    if part not in parts:
        raise DTCourseError(f"exercise {exercise_id} has no part {part!r}; parts: {list(parts)}")
    parts[part](obj)


def check(exercise_id: str, obj: Any) -> None:
    """Immediate feedback: run the visible parts, print a verdict, record a pass.

    Prints to stdout only and returns None, so it is safe inside a graded cell.
    """
    exercise = _lookup(exercise_id)
    failures: list[tuple[str, str]] = []
    for name, part in exercise.parts:
        try:
            part(obj)
        except AssertionError as error:
            message = str(error) or "an assertion failed"
            failures.append((name, message + _save_counterexample(exercise_id, name, error)))
        except NotImplementedError as error:
            failures.append((name, _not_written(error)))
        except DTCourseError as error:  # the course's own message says what and what to do
            failures.append((name, str(error)))
        except Exception as error:  # the student's code raised: show it, briefly
            failures.append((name, f"your code raised {type(error).__name__}: {error}"))
    total = len(exercise.parts)
    if not failures:
        print(f"✅ {exercise_id}: all {total} checks pass.")
        _record_pass(exercise_id)
        return
    print(f"❌ {exercise_id}: {total - len(failures)} of {total} checks pass.")
    for name, message in failures:
        print(f"  • {name}: {message}")


def _save_counterexample(exercise_id: str, part: str, error: AssertionError) -> str:
    """Save the run a failed part carries (``dtcourse.engine.replay.Counterexample``) in
    ``counterexamples/`` next to the notebook; returns the lines saying where and how to
    replay it (nothing when there is no run, a note when it cannot be written)."""
    from pathlib import Path

    from dtcourse.engine.trace import Trace

    trace = getattr(error, "trace", None)
    if not isinstance(trace, Trace):
        return ""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{exercise_id}.{part}")
    target = Path("counterexamples") / f"{safe}.json"
    try:
        trace.save(target)
    except (OSError, ValueError, DTCourseError) as problem:
        return f"\n    (the counterexample could not be saved: {problem})"
    return (
        f"\n    counterexample saved to {target}; after a fix, replay it with:"
        f"\n    from dtcourse.engine.replay import replay; replay({str(target)!r})"
    )


def _not_written(error: NotImplementedError) -> str:
    """``detect is not written yet (...)``, naming the function whose stub raised."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_qualname if tb is not None else "your code"
    where = where.rsplit(".<locals>.", 1)[-1]  # a function defined inside another
    return (
        f"{where} is not written yet (it raises NotImplementedError): replace "
        "`raise NotImplementedError()` with your code"
    )


def _record_pass(exercise_id: str) -> None:
    from dtcourse.runtime.progress import ProgressStore

    try:
        ProgressStore().mark(exercise_id, source="check")
    except DTCourseError as error:
        print(f"  (progress not recorded: {error})")
