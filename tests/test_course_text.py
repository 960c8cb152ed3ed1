"""Every reading is taught in its notebook: enough original text, in order, with sources."""

from __future__ import annotations

import re

import jupytext
import pytest
from dtcourse_instructor.authoring import phase_files
from dtcourse_instructor.course_folder import course_root

from dtcourse.runtime.syllabus import load_syllabus

SYLLABUS = load_syllabus()
MARKER = re.compile(r"<!-- resource:(?P<id>[\w.]+) -->")


def _sections(phase) -> dict[str, str]:
    """The Markdown of each reading: from its marker to the next reading's marker."""
    path = course_root() / next(
        f.text for f in phase_files(SYLLABUS) if f.assignment == phase.assignment
    )
    notebook = jupytext.read(path, fmt="py:percent")
    sections: dict[str, list[str]] = {}
    current = None
    for cell in notebook.cells:
        found = MARKER.search(cell.source) if cell.cell_type == "markdown" else None
        if found:
            current = found["id"]
            sections[current] = []
        if current and cell.cell_type == "markdown":
            sections[current].append(cell.source)
    return {key: "\n".join(parts) for key, parts in sections.items()}


@pytest.mark.parametrize("phase", SYLLABUS.phases, ids=lambda phase: phase.id)
def test_each_reading_is_taught_in_order_with_enough_text_and_sources(phase):
    sections = _sections(phase)
    assert list(sections) == [resource.id for resource in phase.resources]
    for resource in phase.resources:
        text = sections[resource.id]
        words = len(re.findall(r"[A-Za-z][A-Za-z'-]*", text))
        assert words >= 1200, f"{resource.id} has {words} words of teaching text; needs 1,200"
        assert "Sources" in text, f"{resource.id} has no Sources list"
        assert f"{resource.minutes} min" in text, f"{resource.id} does not state its minutes"
