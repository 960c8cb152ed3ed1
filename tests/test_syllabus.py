from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from dtcourse.errors import SyllabusError
from dtcourse.runtime.syllabus import (
    DEFAULT_PATH,
    AdditionalResource,
    Exercise,
    Resource,
    Video,
    load_syllabus,
)

REPO = Path(__file__).resolve().parents[1]

EXERCISES = {
    "p1.transfer": ("p1.basics", "Catch the broken money transfer", 10),
    "p1.serializability": ("p1.acid", "Serializability across sites", 10),
    "p2.twopc.participant": ("p2.twopc", "2PC participant", 10),
    "p2.twopc.coordinator": ("p2.twopc", "2PC coordinator", 15),
    "p2.blocking": ("p2.twopc", "Find the blocking scenario", 5),
    "p2.threepc": ("p2.threephase", "3PC with termination", 15),
    "p2.recovery": ("p2.challenges", "Coordinator recovery on a real database", 10),
    "p2.deadlock": ("p2.challenges", "Challenge: distributed deadlock detection", 5),
    "p3.saga": ("p3.patterns", "Saga with compensations", 10),
    "p3.presumed_abort": ("p3.optimization", "Presumed abort", 10),
    "p3.cheapest_commit": ("p3.optimization", "Pick the cheapest commit", 5),
}


# --- the packaged syllabus -------------------------------------------------------------


def test_default_file_is_the_course_file_through_the_package_link() -> None:
    assert DEFAULT_PATH.parent.name == "runtime"
    assert DEFAULT_PATH.resolve() == (REPO / "course" / "syllabus.toml").resolve()


def test_loads_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_syllabus().title == "Distributed Transactions"


def test_phases_match_the_learning_path() -> None:
    syllabus = load_syllabus()
    assert [(p.id, p.number, p.name, p.assignment) for p in syllabus.phases] == [
        ("phase1", 1, "Foundations", "phase1_foundations"),
        ("phase2", 2, "Core Concepts", "phase2_core_concepts"),
        ("phase3", 3, "Advanced Topics", "phase3_advanced_topics"),
    ]


def test_resources_titles_minutes_and_order_match_the_learning_path() -> None:
    syllabus = load_syllabus()
    rows = [
        (r.phase, r.order, r.id, r.title, r.kind, r.minutes) for r in syllabus.resources
    ]
    assert rows == [
        ("phase1", 1, "p1.basics", "Distributed Transaction Basics", "Article", 30),
        ("phase1", 2, "p1.acid", "ACID in Distributed Systems", "Article", 35),
        ("phase2", 1, "p2.twopc", "Two-Phase Commit", "Article", 40),
        ("phase2", 2, "p2.threephase", "Three-Phase Commit", "Article", 35),
        ("phase2", 3, "p2.challenges", "Distributed Transaction Challenges", "Article", 30),
        ("phase3", 1, "p3.patterns", "Distributed Transaction Patterns", "Article", 40),
        ("phase3", 2, "p3.optimization", "Distributed Transaction Optimization", "Article", 35),
    ]
    basics = syllabus.item("p1.basics")
    assert isinstance(basics, Resource)
    assert basics.focus == (
        "Understanding what distributed transactions are and why they're needed"
    )
    assert basics.next_step == "Move to resource 2"
    assert syllabus.item("p1.acid").next_step == "Move to Phase 2"  # type: ignore[union-attr]
    assert syllabus.item("p2.twopc").dependencies == ("phase1",)  # type: ignore[union-attr]
    assert syllabus.item("p2.threephase").dependencies == ()  # type: ignore[union-attr]


def test_exercises_ids_resources_and_points() -> None:
    syllabus = load_syllabus()
    got = {e.id: (e.resource, e.title, e.points) for e in syllabus.exercises}
    assert got == EXERCISES
    for exercise in syllabus.exercises:
        resource = syllabus.item(exercise.resource)
        assert isinstance(resource, Resource)
        assert resource.phase == exercise.phase
    assert syllabus.exercise("p2.threepc").points == 15
    assert syllabus.total_points == sum(points for _, _, points in EXERCISES.values()) == 105


def test_checklist_texts_are_the_learning_paths() -> None:
    checklist = load_syllabus().checklist
    assert [(c.id, c.text, c.kind, c.phase) for c in checklist] == [
        ("check.phase1", "Phase 1 completed", "phase", "phase1"),
        ("check.phase2", "Phase 2 completed", "phase", "phase2"),
        ("check.phase3", "Phase 3 completed", "phase", "phase3"),
        ("check.supplementary", "Supplementary materials reviewed", "supplementary", None),
    ]


def test_additional_resources_and_video_groups() -> None:
    syllabus = load_syllabus()
    assert [(a.id, a.title) for a in syllabus.additional] == [
        ("extra.guide", "Distributed Transactions Guide"),
        ("extra.tp", "Transaction Processing"),
        ("extra.ds", "Distributed Systems"),
    ]
    groups = {v.group for v in syllabus.videos}
    assert groups == {"Distributed Transactions", "Transaction Processing"}
    kleppmann = syllabus.item("video.kleppmann-2pc")
    assert isinstance(kleppmann, Video)
    assert kleppmann.minutes == 19
    assert kleppmann.url == "https://www.youtube.com/watch?v=-_rdWB9hN1c"
    assert all(v.url.startswith("https://") for v in syllabus.videos)


def test_every_item_carries_references_with_web_addresses() -> None:
    syllabus = load_syllabus()
    for item in (*syllabus.resources, *syllabus.additional, *syllabus.videos):
        assert item.references, f"{item.id} has no references"
    for item in (*syllabus.resources, *syllabus.additional, *syllabus.videos):
        for ref in item.references:
            assert ref.url is None or re.match(r"^https?://\S+$", ref.url), ref
    # Unconfirmed addresses are left out.
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    assert "github.com/cockroachdb" not in text


def test_total_minutes_is_resources_plus_known_video_durations() -> None:
    syllabus = load_syllabus()
    assert sum(r.minutes for r in syllabus.resources) == 245
    assert syllabus.total_minutes == 245 + 19 + 41


LEARNING_PATH = REPO / "course" / "learning-path.md"
_PHASE_HEADING = re.compile(r"^### Phase (\d+): (.+)$")
_RESOURCE_LINE = re.compile(r"^(\d+)\. \*\*(.+)\*\* — \[(\w+)\]$")
_DURATION_LINE = re.compile(r"^   - Duration: (\d+) minutes$")


def _learning_path_readings() -> list[tuple[int, str, int, str, str, int]]:
    """(phase number, phase name, order, title, kind, minutes) of each reading, parsed from
    the learning path itself rather than retyped."""
    rows: list[tuple[int, str, int, str, str, int]] = []
    phase: tuple[int, str] | None = None
    pending: tuple[int, str, str] | None = None
    for line in LEARNING_PATH.read_text(encoding="utf-8").splitlines():
        if found := _PHASE_HEADING.match(line):
            phase = (int(found[1]), found[2])
        elif (found := _RESOURCE_LINE.match(line)) and phase is not None:
            pending = (int(found[1]), found[2], found[3])
        elif (found := _DURATION_LINE.match(line)) and phase and pending:
            rows.append((*phase, *pending, int(found[1])))
            pending = None
    return rows


def test_reading_minutes_are_exactly_the_learning_paths() -> None:
    readings = _learning_path_readings()
    assert len(readings) == 7, "the learning path lists seven readings"
    syllabus = load_syllabus()
    ours = [
        (syllabus.phase(r.phase).number, syllabus.phase(r.phase).name, r.order, r.title, r.kind,
         r.minutes)
        for r in syllabus.resources
    ]
    assert ours == readings


def test_each_reading_has_an_exercise_estimate_apart_from_its_minutes() -> None:
    syllabus = load_syllabus()
    for resource in syllabus.resources:
        own = [e for e in syllabus.exercises if e.resource == resource.id]
        assert own, f"{resource.id} has no exercise"
        assert resource.exercise_minutes == sum(e.minutes for e in own) > 0
    # The estimates are honest: with its exercises a reading takes longer than the
    # learning path's minutes alone, but not absurdly so.
    for resource in syllabus.resources:
        ratio = (resource.minutes + resource.exercise_minutes) / resource.minutes
        assert 1.5 <= ratio <= 3.0, (resource.id, ratio)
    assert [p.exercise_minutes for p in syllabus.phases] == [75, 160, 100]
    assert syllabus.total_exercise_minutes == 335
    # The planned minutes stay the learning path's: estimates never leak into them.
    assert syllabus.total_minutes == 245 + 19 + 41


def test_trackable_items_are_unique_in_reading_order() -> None:
    syllabus = load_syllabus()
    ids = [item.id for item in syllabus.trackable_items()]
    assert len(ids) == len(set(ids)) == 7 + 9 + 5 + 6
    assert ids[:4] == ["p1.basics", "p1.transfer", "p1.acid", "p1.serializability"]
    kinds = [type(item) for item in syllabus.trackable_items()]
    assert kinds[-9:] == [AdditionalResource] * 3 + [Video] * 6
    assert syllabus.item_kind("p3.saga") == "exercise"
    assert isinstance(syllabus.item("p3.saga"), Exercise)


def test_objects_are_immutable() -> None:
    syllabus = load_syllabus()
    with pytest.raises(dataclasses.FrozenInstanceError):
        syllabus.title = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        syllabus.phases[0].resources[0].minutes = 1  # type: ignore[misc]
    assert isinstance(syllabus.phases, tuple)
    assert isinstance(syllabus.phases[0].resources[0].references, tuple)
    hash(syllabus.phases[0])


def test_unknown_ids_are_refused_with_guidance() -> None:
    syllabus = load_syllabus()
    with pytest.raises(SyllabusError, match="unknown item 'p9.nothing'.*dtcourse progress"):
        syllabus.item("p9.nothing")
    with pytest.raises(SyllabusError, match="checklist"):
        syllabus.item("check.phase1")
    with pytest.raises(SyllabusError, match="unknown phase 'phase9'.*phase1, phase2, phase3"):
        syllabus.phase("phase9")
    with pytest.raises(SyllabusError, match="unknown exercise 'p1.basics'"):
        syllabus.exercise("p1.basics")


# --- malformed files ------------------------------------------------------------------

MINIMAL = """\
schema = 1
title = "T"
overview = "O"
prerequisites = "P"
closing_note = "N"

[[phases]]
id = "phase1"
number = 1
name = "Foundations"
assignment = "phase1_foundations"

[[resources]]
id = "p1.basics"
phase = "phase1"
order = 1
title = "Basics"
kind = "Article"
minutes = 30
focus = "F"
dependencies = []

[[resources.references]]
title = "A paper"
authors = ["A. Author"]
year = 1981
url = "https://example.org/paper.pdf"

[[exercises]]
id = "p1.transfer"
phase = "phase1"
resource = "p1.basics"
title = "Transfer"
points = 10
minutes = 25

[[additional]]
id = "extra.guide"
title = "Guide"
description = "D"

[[videos]]
id = "video.one"
group = "Distributed Transactions"
title = "V"
channel = "C"
url = "https://example.org/v"

[[checklist]]
id = "check.phase1"
text = "Phase 1 completed"
kind = "phase"
phase = "phase1"

[[checklist]]
id = "check.supplementary"
text = "Supplementary materials reviewed"
kind = "supplementary"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syllabus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_minimal_file_loads(tmp_path: Path) -> None:
    syllabus = load_syllabus(write(tmp_path, MINIMAL))
    assert [i.id for i in syllabus.trackable_items()] == [
        "p1.basics", "p1.transfer", "extra.guide", "video.one",
    ]
    assert syllabus.item("video.one").minutes is None  # type: ignore[union-attr]
    assert syllabus.total_minutes == 30
    assert syllabus.item("p1.basics").exercise_minutes == 25  # type: ignore[union-attr]
    assert syllabus.total_exercise_minutes == 25


BAD_CASES = {
    "missing field": (
        ('title = "Basics"\n', ""),
        r"resource 'p1.basics': field 'title' is missing",
    ),
    "wrong type": (
        ("minutes = 30", 'minutes = "30"'),
        r"resource 'p1.basics': field 'minutes' must be an integer, not a string",
    ),
    "boolean for a number": (
        ("points = 10", "points = true"),
        r"exercise 'p1.transfer': field 'points' must be an integer, not a boolean",
    ),
    "exercise without a time estimate": (
        ("minutes = 25\n", ""),
        r"exercise 'p1.transfer': field 'minutes' is missing",
    ),
    "zero exercise minutes": (
        ("minutes = 25", "minutes = 0"),
        r"exercise 'p1.transfer': field 'minutes' must be a positive integer, not 0",
    ),
    "exercise minutes as text": (
        ("minutes = 25", 'minutes = "about 25"'),
        r"exercise 'p1.transfer': field 'minutes' must be an integer, not a string",
    ),
    "unknown phase": (
        ('phase = "phase1"\norder = 1', 'phase = "phase7"\norder = 1'),
        r"resource 'p1.basics': field 'phase' names unknown phase 'phase7'",
    ),
    "zero minutes": (
        ("minutes = 30", "minutes = 0"),
        r"resource 'p1.basics': field 'minutes' must be a positive integer, not 0",
    ),
    "negative minutes": (
        ("minutes = 30", "minutes = -5"),
        r"resource 'p1.basics': field 'minutes' must be a positive integer, not -5",
    ),
    "dependency on an unknown phase": (
        ("dependencies = []", 'dependencies = ["phase0"]'),
        r"resource 'p1.basics': field 'dependencies' names unknown phase 'phase0'",
    ),
    "exercise on an unknown resource": (
        ('resource = "p1.basics"', 'resource = "p1.nothing"'),
        r"exercise 'p1.transfer': field 'resource' names unknown resource 'p1.nothing'",
    ),
    "duplicate id across kinds": (
        ('id = "video.one"', 'id = "p1.transfer"'),
        r"video 'p1.transfer': duplicate id: 'p1.transfer' is already used by the exercise",
    ),
    "duplicate id of a phase": (
        ('id = "extra.guide"', 'id = "phase1"'),
        r"additional resource 'phase1': duplicate id: 'phase1' is already used by the phase",
    ),
    "bad checklist kind": (
        ('kind = "supplementary"', 'kind = "bonus"'),
        r"checklist item 'check.supplementary': field 'kind' must be one of",
    ),
    "reference without title": (
        ('title = "A paper"\n', ""),
        r"resource 'p1.basics', reference #1: field 'title' is missing",
    ),
    "authors not strings": (
        ('authors = ["A. Author"]', "authors = [1]"),
        r"field 'authors' must be a list of strings",
    ),
    "table where a list belongs": (
        ("[[videos]]", "[videos]"),
        r"top level: field 'videos' must be an array of tables",
    ),
    "unsupported schema": (
        ("schema = 1", "schema = 2"),
        r"top level: schema 2 is not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_malformed_file_gives_one_clear_error(tmp_path: Path, case: str) -> None:
    (old, new), message = BAD_CASES[case]
    path = write(tmp_path, replace_once(MINIMAL, old, new))
    with pytest.raises(SyllabusError) as raised:
        load_syllabus(path)
    text = str(raised.value)
    assert text.startswith(f"{path.resolve()}: "), text
    assert re.search(message, text), text
    assert "\n" not in text


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, replace_once(MINIMAL, 'focus = "F"', "focus = F"))
    line = 1 + MINIMAL.splitlines().index('focus = "F"')
    with pytest.raises(SyllabusError, match=rf"invalid TOML: .*line {line}"):
        load_syllabus(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SyllabusError, match="cannot read the syllabus .*nope.toml"):
        load_syllabus(tmp_path / "nope.toml")


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert load_syllabus(path).title == "T"
    assert load_syllabus(path) is load_syllabus(path)
    path.write_text(replace_once(MINIMAL, 'title = "T"', 'title = "Renamed"'), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_syllabus(path).title == "Renamed"
