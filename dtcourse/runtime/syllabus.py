"""The syllabus: the learning path, exercises and references as typed, immutable objects.

Everything the course shows or tracks (phases, resources, exercises, additional
resources, videos, the completion checklist) comes from one TOML file, so notebooks,
widgets, the progress store and the command line can never disagree about an id, a title
or a number of points. Malformed data is refused with one error naming the file, the item
and the field, because a half-loaded syllabus would silently hide an exercise.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

from dtcourse.errors import SyllabusError

SCHEMA_VERSION = 1
DEFAULT_PATH = Path(__file__).with_name("syllabus.toml")

ChecklistKind = Literal["phase", "supplementary"]
CHECKLIST_KINDS: tuple[str, ...] = ("phase", "supplementary")


@dataclass(frozen=True)
class Reference:
    """A source behind an item; ``url`` is absent when no reliable link is known."""

    title: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    url: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Resource:
    """A reading of the learning path, in its phase's order.

    ``minutes`` is the learning path's duration, kept exactly; ``exercise_minutes`` is the
    course's own estimate for the reading's exercises (the sum of theirs), shown next to
    it so that a student can plan honestly.
    """

    id: str
    phase: str
    order: int
    title: str
    kind: str
    minutes: int
    focus: str
    next_step: str | None
    dependencies: tuple[str, ...]
    references: tuple[Reference, ...]
    exercise_minutes: int = 0


@dataclass(frozen=True)
class AdditionalResource:
    id: str
    title: str
    description: str
    references: tuple[Reference, ...]


@dataclass(frozen=True)
class Video:
    """A supplementary video; ``minutes`` is None when its running time is not known."""

    id: str
    title: str
    group: str
    channel: str
    minutes: int | None
    url: str
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class Exercise:
    """A graded exercise; ``minutes`` estimates the time a student needs for it."""

    id: str
    phase: str
    resource: str
    title: str
    points: int
    minutes: int


@dataclass(frozen=True)
class Phase:
    id: str
    number: int
    name: str
    assignment: str
    resources: tuple[Resource, ...]
    exercises: tuple[Exercise, ...]

    @property
    def title(self) -> str:
        return f"Phase {self.number}: {self.name}"

    @property
    def minutes(self) -> int:
        """Reading minutes: the learning path's durations of the phase's resources."""
        return sum(resource.minutes for resource in self.resources)

    @property
    def exercise_minutes(self) -> int:
        """The estimated minutes of the phase's exercises."""
        return sum(exercise.minutes for exercise in self.exercises)

    @property
    def points(self) -> int:
        return sum(exercise.points for exercise in self.exercises)


@dataclass(frozen=True)
class ChecklistItem:
    """A line of the completion checklist; derived from progress, never marked directly."""

    id: str
    text: str
    kind: ChecklistKind
    phase: str | None


Item = Resource | Exercise | AdditionalResource | Video


@dataclass(frozen=True)
class Syllabus:
    title: str
    overview: str
    prerequisites: str
    phases: tuple[Phase, ...]
    additional: tuple[AdditionalResource, ...]
    videos: tuple[Video, ...]
    checklist: tuple[ChecklistItem, ...]
    closing_note: str

    def phase(self, phase_id: str) -> Phase:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        known = ", ".join(phase.id for phase in self.phases)
        raise SyllabusError(f"unknown phase {phase_id!r}; the phases are: {known}")

    @property
    def resources(self) -> tuple[Resource, ...]:
        return tuple(resource for phase in self.phases for resource in phase.resources)

    @property
    def exercises(self) -> tuple[Exercise, ...]:
        return tuple(exercise for phase in self.phases for exercise in phase.exercises)

    def trackable_items(self) -> tuple[Item, ...]:
        """Every item progress can be recorded for, in reading order.

        Each resource is followed by its exercises, phase by phase; then the additional
        resources and the videos.
        """
        items: list[Item] = []
        for phase in self.phases:
            for resource in phase.resources:
                items.append(resource)
                items.extend(e for e in phase.exercises if e.resource == resource.id)
        items.extend(self.additional)
        items.extend(self.videos)
        return tuple(items)

    @functools.cached_property
    def _index(self) -> Mapping[str, Item]:
        return MappingProxyType({item.id: item for item in self.trackable_items()})

    def item(self, item_id: str) -> Item:
        found = self._index.get(item_id)
        if found is not None:
            return found
        if any(check.id == item_id for check in self.checklist):
            raise SyllabusError(
                f"{item_id!r} is a checklist line, not an item: it is derived from the items "
                "it lists; run `dtcourse progress` to see the item ids"
            )
        raise SyllabusError(
            f"unknown item {item_id!r}; run `dtcourse progress` to list the item ids "
            f"(for example {self.trackable_items()[0].id!r})"
        )

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(exercise.id for exercise in self.exercises)
        raise SyllabusError(f"unknown exercise {exercise_id!r}; the exercises are: {known}")

    def item_kind(self, item_id: str) -> str:
        """``resource``, ``exercise``, ``additional`` or ``video``."""
        return kind_of(self.item(item_id))

    def phase_of(self, item_id: str) -> str | None:
        """The phase id of a resource or exercise; None for supplementary material."""
        item = self.item(item_id)
        return item.phase if isinstance(item, Resource | Exercise) else None

    @property
    def total_minutes(self) -> int:
        """Planned minutes: the resources plus every video whose running time is known."""
        return sum(r.minutes for r in self.resources) + sum(v.minutes or 0 for v in self.videos)

    @property
    def total_exercise_minutes(self) -> int:
        """The estimated minutes of every exercise, apart from the planned minutes."""
        return sum(exercise.minutes for exercise in self.exercises)

    @property
    def total_points(self) -> int:
        return sum(phase.points for phase in self.phases)


def time_text(reading: int, exercises: int, unit: str = "min") -> str:
    """A reading's time, the learning path's minutes first: "reading 40 min + exercises
    about 60 min"; the exercise part only when there are exercises."""
    text = f"reading {reading} {unit}"
    return text + (f" + exercises about {exercises} {unit}" if exercises else "")


def kind_of(item: Item) -> str:
    match item:
        case Resource():
            return "resource"
        case Exercise():
            return "exercise"
        case AdditionalResource():
            return "additional"
        case Video():
            return "video"
    raise TypeError(f"not a syllabus item: {item!r}")


def load_syllabus(path: Path | None = None) -> Syllabus:
    """Load and validate the syllabus; the packaged file when ``path`` is None.

    Results are cached per file and its modification time, so notebooks may call this
    freely and an edited file is read again.
    """
    target = Path(path) if path is not None else DEFAULT_PATH
    try:
        stat = target.stat()
    except OSError as error:
        raise SyllabusError(
            f"cannot read the syllabus {target}: {error.strerror or error}; "
            "pass the path of an existing syllabus.toml"
        ) from None
    return _load_cached(target.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load_cached(path: Path, mtime_ns: int, size: int) -> Syllabus:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SyllabusError(f"{path}: invalid TOML: {error}; fix the file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SyllabusError(f"cannot read the syllabus {path}: {error}") from None
    return _Parser(path).syllabus(data)


class _Table:
    """Typed access to one TOML table, with errors that name the file, item and field."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, Mapping):
            self.fail(f"must be a table, not {_type_name(data)}")
        self.data: Mapping[str, Any] = data

    def fail(self, message: str) -> None:
        raise SyllabusError(f"{self.path}: {self.where}: {message}")

    def field_error(self, name: str, message: str) -> SyllabusError:
        return SyllabusError(f"{self.path}: {self.where}: field {name!r} {message}")

    def _get(self, name: str, expected: type | tuple[type, ...], label: str, default: Any) -> Any:
        if name not in self.data:
            if default is _REQUIRED:
                raise self.field_error(name, "is missing")
            return default
        value = self.data[name]
        # bool is an int subclass in Python: a 'true' where a number belongs is a mistake.
        if isinstance(value, bool) and bool not in _as_tuple(expected):
            raise self.field_error(name, f"must be {label}, not a boolean")
        if not isinstance(value, expected):
            raise self.field_error(name, f"must be {label}, not {_type_name(value)}")
        return value

    def text(self, name: str) -> str:
        value = self._get(name, str, "a string", _REQUIRED)
        if not value.strip():
            raise self.field_error(name, "must not be empty")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._get(name, str, "a string", None)
        if value is not None and not value.strip():
            raise self.field_error(name, "must not be empty (leave the field out instead)")
        return value

    def integer(self, name: str, *, positive: bool = False) -> int:
        value: int = self._get(name, int, "an integer", _REQUIRED)
        if positive and value <= 0:
            raise self.field_error(name, f"must be a positive integer, not {value}")
        return value

    def optional_integer(self, name: str, *, positive: bool = False) -> int | None:
        value: int | None = self._get(name, int, "an integer", None)
        if value is not None and positive and value <= 0:
            raise self.field_error(name, f"must be a positive integer, not {value}")
        return value

    def texts(self, name: str, *, required: bool = True) -> tuple[str, ...]:
        values = self._get(name, list, "a list of strings", _REQUIRED if required else [])
        for value in values:
            if not isinstance(value, str):
                raise self.field_error(
                    name, f"must be a list of strings; it holds {_type_name(value)} {value!r}"
                )
        return tuple(values)

    def tables(self, name: str, label: str, *, required: bool = True) -> list[_Table]:
        values = self._get(
            name, list, f"an array of tables ([[{name}]])", _REQUIRED if required else []
        )
        return [
            _Table(self.path, f"{label} #{index + 1}", value) for index, value in enumerate(values)
        ]

    def identify(self, kind: str) -> _Table:
        """Name this table by its id in later errors (\"resource 'p1.basics'\")."""
        item_id = self.text("id")
        self.where = f"{kind} {item_id!r}"
        return self


_REQUIRED = object()


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, str] = {}

    def claim(self, table: _Table, kind: str) -> str:
        item_id = table.text("id")
        table.identify(kind)
        if item_id in self.seen:
            table.fail(f"duplicate id: {item_id!r} is already used by the {self.seen[item_id]}")
        self.seen[item_id] = kind
        return item_id

    def references(self, table: _Table) -> tuple[Reference, ...]:
        refs = []
        for ref in table.tables("references", f"{table.where}, reference", required=False):
            refs.append(
                Reference(
                    title=ref.text("title"),
                    authors=ref.texts("authors", required=False),
                    year=ref.optional_integer("year", positive=True),
                    url=ref.optional_text("url"),
                    note=ref.optional_text("note"),
                )
            )
        return tuple(refs)

    def syllabus(self, data: dict[str, Any]) -> Syllabus:
        top = _Table(self.path, "top level", data)
        schema = top.integer("schema")
        if schema != SCHEMA_VERSION:
            top.fail(
                f"schema {schema} is not supported (this version of dtcourse reads schema "
                f"{SCHEMA_VERSION}); upgrade dtcourse or fix the file"
            )

        phase_rows = []
        for table in top.tables("phases", "phase"):
            phase_id = self.claim(table, "phase")
            phase_rows.append(
                (
                    phase_id,
                    table.integer("number", positive=True),
                    table.text("name"),
                    table.text("assignment"),
                )
            )
        if not phase_rows:
            top.fail("field 'phases' must list at least one phase")
        numbers = [row[1] for row in phase_rows]
        if len(set(numbers)) != len(numbers):
            top.fail(f"phases must have distinct numbers, got {numbers}")
        phase_ids = {row[0] for row in phase_rows}

        def known_phase(table: _Table, name: str) -> str:
            value = table.text(name)
            if value not in phase_ids:
                raise table.field_error(
                    name, f"names unknown phase {value!r}; known phases: {sorted(phase_ids)}"
                )
            return value

        resources: list[Resource] = []
        for table in top.tables("resources", "resource"):
            resource_id = self.claim(table, "resource")
            dependencies = table.texts("dependencies", required=False)
            for dependency in dependencies:
                if dependency not in phase_ids:
                    raise table.field_error(
                        "dependencies",
                        f"names unknown phase {dependency!r}; known phases: {sorted(phase_ids)}",
                    )
            resources.append(
                Resource(
                    id=resource_id,
                    phase=known_phase(table, "phase"),
                    order=table.integer("order", positive=True),
                    title=table.text("title"),
                    kind=table.text("kind"),
                    minutes=table.integer("minutes", positive=True),
                    focus=table.text("focus"),
                    next_step=table.optional_text("next_step"),
                    dependencies=dependencies,
                    references=self.references(table),
                )
            )
        by_id = {resource.id: resource for resource in resources}
        orders: dict[tuple[str, int], str] = {}
        for resource in resources:
            key = (resource.phase, resource.order)
            if key in orders:
                raise SyllabusError(
                    f"{self.path}: resource {resource.id!r}: field 'order' {resource.order} is "
                    f"already used by {orders[key]!r} in {resource.phase}"
                )
            orders[key] = resource.id

        exercises: list[Exercise] = []
        for table in top.tables("exercises", "exercise", required=False):
            exercise_id = self.claim(table, "exercise")
            phase_id = known_phase(table, "phase")
            resource_id = table.text("resource")
            if resource_id not in by_id:
                raise table.field_error("resource", f"names unknown resource {resource_id!r}")
            if by_id[resource_id].phase != phase_id:
                raise table.field_error(
                    "phase",
                    f"is {phase_id!r} but resource {resource_id!r} belongs to "
                    f"{by_id[resource_id].phase!r}",
                )
            exercises.append(
                Exercise(
                    id=exercise_id,
                    phase=phase_id,
                    resource=resource_id,
                    title=table.text("title"),
                    points=table.integer("points", positive=True),
                    minutes=table.integer("minutes", positive=True),
                )
            )
        resources = [
            dataclasses.replace(
                resource,
                exercise_minutes=sum(e.minutes for e in exercises if e.resource == resource.id),
            )
            for resource in resources
        ]

        additional = []
        for table in top.tables("additional", "additional resource", required=False):
            additional.append(
                AdditionalResource(
                    id=self.claim(table, "additional resource"),
                    title=table.text("title"),
                    description=table.text("description"),
                    references=self.references(table),
                )
            )

        videos = []
        for table in top.tables("videos", "video", required=False):
            videos.append(
                Video(
                    id=self.claim(table, "video"),
                    title=table.text("title"),
                    group=table.text("group"),
                    channel=table.text("channel"),
                    minutes=table.optional_integer("minutes", positive=True),
                    url=table.text("url"),
                    references=self.references(table),
                )
            )

        checklist = []
        for table in top.tables("checklist", "checklist item"):
            check_id = self.claim(table, "checklist item")
            kind = table.text("kind")
            if kind not in CHECKLIST_KINDS:
                raise table.field_error("kind", f"must be one of {CHECKLIST_KINDS}, not {kind!r}")
            phase = known_phase(table, "phase") if kind == "phase" else None
            if kind == "supplementary" and "phase" in table.data:
                raise table.field_error("phase", 'is only allowed for kind = "phase"')
            checklist.append(
                ChecklistItem(
                    id=check_id,
                    text=table.text("text"),
                    kind=cast(ChecklistKind, kind),
                    phase=phase,
                )
            )

        phases = tuple(
            Phase(
                id=phase_id,
                number=number,
                name=name,
                assignment=assignment,
                resources=tuple(
                    sorted((r for r in resources if r.phase == phase_id), key=lambda r: r.order)
                ),
                exercises=tuple(e for e in exercises if e.phase == phase_id),
            )
            for phase_id, number, name, assignment in sorted(phase_rows, key=lambda row: row[1])
        )
        return Syllabus(
            title=top.text("title"),
            overview=top.text("overview"),
            prerequisites=top.text("prerequisites"),
            phases=phases,
            additional=tuple(additional),
            videos=tuple(videos),
            checklist=tuple(checklist),
            closing_note=top.text("closing_note"),
        )
