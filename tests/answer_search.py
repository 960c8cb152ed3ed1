"""Plug every public function and class of the installed student package into every
exercise's visible checks; print what was tried as JSON.

Run by ``test_student_wheel.py`` inside a fresh environment that holds only the student
wheel, so whatever passes here is an answer a student could import. Each attempt runs
under a time limit (SIGALRM); an attempt that runs out of time is reported as such, never
as a pass or a fail.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import itertools
import json
import pkgutil
import signal
import sys
import time
from typing import Any

import dtcourse
from dtcourse.engine.actors import Node
from dtcourse.runtime.checks import registry

LIMIT_SECONDS = 20
PAIR_EXERCISES = ("p3.presumed_abort",)


class OutOfTime(BaseException):  # noqa: N818 - an event, not an error
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise OutOfTime


def public_objects() -> dict[str, Any]:
    """``module.name`` -> object, for functions and classes defined in the package."""
    found: dict[str, Any] = {}
    for info in pkgutil.walk_packages(dtcourse.__path__, "dtcourse."):
        try:
            module = importlib.import_module(info.name)
        except Exception as error:  # a module that does not import is worth reporting
            found[f"{info.name} (import failed: {error})"] = None
            continue
        names = getattr(module, "__all__", None) or [
            name for name in vars(module) if not name.startswith("_")
        ]
        for name in names:
            value = getattr(module, name, None)
            if (inspect.isfunction(value) or inspect.isclass(value)) and (
                getattr(value, "__module__", "") or ""
            ).startswith("dtcourse"):
                found.setdefault(f"{value.__module__}.{value.__qualname__}", value)
    return found


def candidates(exercise_id: str, objects: dict[str, Any]) -> list[tuple[str, Any]]:
    plain = [(name, value) for name, value in objects.items() if value is not None]
    if exercise_id not in PAIR_EXERCISES:
        return plain
    nodes = [
        (name, value)
        for name, value in plain
        if inspect.isclass(value) and issubclass(value, Node) and value is not Node
    ]
    by_module = itertools.groupby(sorted(nodes), key=lambda item: item[1].__module__)
    pairs = [
        (f"({a} , {b})", (first, second))
        for _, group in by_module
        for (a, first), (b, second) in itertools.permutations(list(group), 2)
    ]
    return plain + pairs


def attempt(exercise: Any, obj: Any) -> str:
    """'pass', 'fail' or 'timeout' for one object against every visible part."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(LIMIT_SECONDS)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for _, part in exercise.parts:
                part(obj)
        return "pass"
    except OutOfTime:
        return "timeout"
    except BaseException:  # noqa: BLE001 - any failure of any kind is a fail
        return "fail"
    finally:
        signal.alarm(0)


def main() -> int:
    objects = public_objects()
    report: dict[str, Any] = {"objects": sorted(objects), "exercises": {}}
    started = time.monotonic()
    for exercise_id, exercise in registry().items():
        outcome: dict[str, list[str]] = {"pass": [], "fail": [], "timeout": []}
        for name, obj in candidates(exercise_id, objects):
            outcome[attempt(exercise, obj)].append(name)
        report["exercises"][exercise_id] = outcome
    report["seconds"] = round(time.monotonic() - started, 1)
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
