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


def _cells(phase) -> list[tuple[str | None, object]]:
    """Every cell of a phase's text, with the reading it belongs to (None before the first)."""
    path = course_root() / next(
        f.text for f in phase_files(SYLLABUS) if f.assignment == phase.assignment
    )
    current = None
    cells = []
    for cell in jupytext.read(path, fmt="py:percent").cells:
        found = MARKER.search(cell.source) if cell.cell_type == "markdown" else None
        if found:
            current = found["id"]
        cells.append((current, cell))
    return cells


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _reading(resource_id: str) -> str:
    phase = SYLLABUS.phase(SYLLABUS.phase_of(resource_id))
    return _flat(_sections(phase)[resource_id])


@pytest.mark.parametrize("phase", SYLLABUS.phases, ids=lambda phase: phase.id)
def test_each_reading_shows_its_minutes_and_its_exercise_estimate(phase):
    sections = _sections(phase)
    for resource in phase.resources:
        expected = (
            f"reading {resource.minutes} minutes + exercises about "
            f"{resource.exercise_minutes} minutes"
        )
        assert expected in sections[resource.id], resource.id


CITATION = re.compile(r"\[([A-Z][^\[\]]*?(?:\d{4}|n\.d\.)[^\[\]]*)\]")


@pytest.mark.parametrize("phase", SYLLABUS.phases, ids=lambda phase: phase.id)
def test_every_citation_is_in_the_readings_sources(phase):
    for resource_id, text in _sections(phase).items():
        cut = text.rfind("### Sources")
        body, sources = text[:cut], text[cut:]
        for found in CITATION.finditer(body):
            for part in _flat(found[1]).split(";"):
                cited = re.match(r"\s*(\S+).*? (\d{4}|n\.d\.)", part)
                assert cited, f"{resource_id}: cannot read the citation {part!r}"
                author, year = cited[1], cited[2]
                assert author in sources, f"{resource_id}: [{part.strip()}] is not in its Sources"
                assert year == "n.d." or year in sources, f"{resource_id}: [{part.strip()}]"


# What an expert review found wrong or misleading must not come back; what replaced it
# must stay. Whitespace is flattened, so a phrase may span lines of the text.
REMOVED = {
    "p1.basics": ("(also called fail-stop)", "it is why two-phase commit can block"),
    "p1.acid": ("serializable only (snapshot isolation allows it)",
                "the auditor above is a read skew"),
    "p2.threephase": ("five messages per participant instead of four",
                      "makes progress as long as at least F + 1"),
    "p2.challenges": ("never let a younger one wait for an older one (wound-wait)",
                      "wound-wait with its read-write transactions' timestamps"),
    "p3.optimization": ("it makes progress whenever F + 1 acceptors are up",),
}  # fmt: skip
KEPT = {
    "p1.basics": ("**fail-stop** means crash-stop *plus* reliable detection",
                  "Two-phase commit can block even with a *perfect* failure detector",
                  "once anything fails, aborting is always allowed"),
    "p1.acid": ("| write skew on items | G2-item | possible | **prevented** | **possible** | "
                "prevented |",
                "| write skew through a predicate | G2 | possible | possible | possible | "
                "prevented |",
                "call their snapshot-based level `REPEATABLE READ`",
                "T2 writes x blindly",
                "The course counts a dirty read only when the reader **commits**",
                "**G0, write cycle**", "**G1a, aborted read**", "**G1b, intermediate read**",
                "**G1c, circular information flow**", "**G-single**", "**G2-item**"),
    "p2.twopc": ("do **not** cooperate", "with `cooperative=True`",
                 "every participant is prepared before the coordinator crashes",
                 "Give the participants a perfect failure detector",
                 "a participant that votes NO aborts its branch alone and **writes nothing**",
                 "a statement about failure-free runs only"),
    "p2.threephase": ("3PC sends **5** messages per participant", "it is **6** against **4**",
                      "**Safety needs no timing assumption.**", "*eventual synchrony*",
                      "### A consensus primer", "#### Atomic commitment and consensus",
                      "non-blocking atomic commit requires a perfect failure detector"),
    "p2.challenges": ("the older one *wounds* the younger holder (aborts it)",
                      "the younger one *dies*", "which orders them by age",
                      "reports such outcomes **per branch**", "`XA_HEURMIX`", "`xa_forget`"),
    "p3.patterns": ("age is when a transaction started, not its commit timestamp",
                    "### Try-Confirm/Cancel", "### Transactions on a log",
                    "### Snapshot isolation across sites needs one clock"),
    "p3.optimization": ("the *active participants*",
                        "a participant that votes NO aborts alone and writes nothing",
                        "one leader stays in charge long enough"),
}  # fmt: skip


@pytest.mark.parametrize("resource_id", sorted(REMOVED))
def test_corrected_statements_do_not_come_back(resource_id):
    text = _reading(resource_id)
    for phrase in REMOVED[resource_id]:
        assert phrase not in text, f"{resource_id} says again: {phrase!r}"


@pytest.mark.parametrize("resource_id", sorted(KEPT))
def test_corrections_stay_in_their_reading(resource_id):
    text = _reading(resource_id)
    for phrase in KEPT[resource_id]:
        assert _flat(phrase) in text, f"{resource_id} lost: {phrase!r}"


def test_adya_classes_are_each_defined_once():
    text = _reading("p1.acid")
    for name in ("G0", "G1a", "G1b", "G1c", "G-single", "G2-item"):
        assert len(re.findall(rf"^- \*\*{re.escape(name)}\b", _sections(
            SYLLABUS.phase("phase1"))["p1.acid"], flags=re.M)) == 1, name
    assert "G2-item" in text[text.index("Jepsen consistency map"):]


NEW_SECTIONS = {
    "p2.threephase": (("### A consensus primer", "### Paxos Commit"),),
    "p3.patterns": (
        ("### Try-Confirm/Cancel", "### The transactional outbox"),
        ("### Transactions on a log", "### Snapshot isolation across sites"),
        ("### Snapshot isolation across sites", "### Percolator"),
    ),
}


@pytest.mark.parametrize("resource_id", sorted(NEW_SECTIONS))
def test_new_sections_sit_in_their_reading_with_a_run_or_a_figure(resource_id):
    phase = SYLLABUS.phase(SYLLABUS.phase_of(resource_id))
    cells = [cell for reading, cell in _cells(phase) if reading == resource_id]
    headings = [
        (i, cell.source) for i, cell in enumerate(cells)
        if cell.cell_type == "markdown" and cell.source.startswith("### ")
    ]  # fmt: skip
    for start, follower in NEW_SECTIONS[resource_id]:
        first = next(i for i, source in headings if source.startswith(start))
        after = next(i for i, source in headings if i > first)
        assert cells[after].source.startswith(follower), (start, cells[after].source[:40])
        code = [c for c in cells[first:after] if c.cell_type == "code"]
        assert code, f"{start} in {resource_id} has no run or figure"
        words = sum(len(re.findall(r"[A-Za-z][A-Za-z'-]*", c.source))
                    for c in cells[first:after] if c.cell_type == "markdown")  # fmt: skip
        assert words >= 400, f"{start} in {resource_id} has only {words} words"
