"""Markdown generated from the syllabus, for the parts of a notebook that must read offline.

Committed notebooks carry no outputs, so a list drawn by a widget is invisible on GitHub
or nbviewer. The phase text files therefore hold Markdown between markers
(``<!-- resources:phase1 -->`` ... ``<!-- /resources -->`` for a phase's reading list,
``<!-- resource:p1.basics -->`` ... ``<!-- /resource -->`` for a reading's heading), and
``fill_generated`` rewrites every marked region from the syllabus. The notebook text never
retypes a title, a duration or a number of points, so it cannot drift from the data.
"""

from __future__ import annotations

import re

from dtcourse.errors import SyllabusError
from dtcourse.runtime.syllabus import Resource, Syllabus, time_text


def _minutes(minutes: int) -> str:
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _time(reading: int, exercises: int) -> str:
    """A reading's time, e.g. "reading 40 minutes + exercises about 70 minutes": the
    learning path's minutes exactly, then the course's estimate for the exercises."""
    return time_text(reading, exercises, unit="minutes")


def _points(points: int) -> str:
    return f"{points} point" + ("s" if points != 1 else "")


def resource_markdown(syllabus: Syllabus, phase_id: str) -> str:
    """A phase's readings in order, with duration, focus and exercises, as a Markdown list."""
    phase = syllabus.phase(phase_id)
    lines = [
        f"**{phase.title}**: {len(phase.resources)} readings, {_points(phase.points)} of "
        f"exercises; {_time(phase.minutes, phase.exercise_minutes)}.",
        "",
    ]
    for resource in phase.resources:
        lines.append(
            f"{resource.order}. **{resource.title}** ({resource.kind}, "
            f"{_time(resource.minutes, resource.exercise_minutes)}). Focus: {resource.focus}."
        )
        for exercise in phase.exercises:
            if exercise.resource == resource.id:
                lines.append(
                    f"   - Exercise `{exercise.id}`: {exercise.title} "
                    f"({_points(exercise.points)}, about {_minutes(exercise.minutes)})"
                )
        if resource.next_step:
            lines.append(f"   - Next step: {resource.next_step}")
    return "\n".join(lines)


def _resource(syllabus: Syllabus, resource_id: str) -> Resource:
    for resource in syllabus.resources:
        if resource.id == resource_id:
            return resource
    known = ", ".join(resource.id for resource in syllabus.resources)
    raise SyllabusError(f"unknown resource {resource_id!r}; the resources are: {known}")


def resource_heading_markdown(syllabus: Syllabus, resource_id: str) -> str:
    """A reading's section heading: its number and title, then minutes and focus."""
    resource = _resource(syllabus, resource_id)
    return (
        f"## {resource.order}. {resource.title}\n\n"
        f"*{resource.kind} · {_time(resource.minutes, resource.exercise_minutes)} · "
        f"Focus: {resource.focus}*"
    )


_REGION = re.compile(
    r"(?P<open><!-- (?P<kind>resources|resource):(?P<key>[\w.-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close>(?P<prefix>[ \t]*(?:#[ \t]?)?)<!-- /(?P=kind) -->)",
    re.DOTALL,
)


def _render(syllabus: Syllabus, kind: str, key: str) -> str:
    if kind == "resources":
        return resource_markdown(syllabus, key)
    return resource_heading_markdown(syllabus, key)


def fill_generated(text: str, syllabus: Syllabus) -> str:
    """Rewrite every marked region of ``text`` from the syllabus.

    Works on Markdown and on jupytext percent files, where each Markdown line starts with
    ``# ``: the region keeps the comment prefix of its closing marker line.
    """

    def replace(match: re.Match[str]) -> str:
        prefix = match["prefix"]
        body = _render(syllabus, match["kind"], match["key"])
        lines = [(prefix + line).rstrip() if line else prefix.rstrip() for line in body.split("\n")]
        return match["open"] + "\n".join(lines) + "\n" + match["close"]

    return _REGION.sub(replace, text)


def generated_regions(text: str) -> list[tuple[str, str]]:
    """The ``(kind, key)`` of each marked region, in order (for tests and the build)."""
    return [(match["kind"], match["key"]) for match in _REGION.finditer(text)]
