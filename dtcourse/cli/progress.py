"""``dtcourse progress``: show the progress table, or mark and unmark items."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtcourse.runtime.progress import ItemStatus, ProgressStore


def _store_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--store",
        type=Path,
        default=default,
        metavar="PATH",
        help="progress file to use (default: $DTCOURSE_PROGRESS, else your user data folder)",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "progress",
        help="show or record your progress through the course",
        description=(
            "Show your progress through the learning path, phase by phase, with the "
            "completion checklist; or mark items as done (read, passed, reviewed) and undo it."
        ),
    )
    _store_option(parser, None)
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of a table"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    for name, verb in (("mark", "done"), ("unmark", "not done")):
        action = actions.add_parser(
            name,
            help=f"record items as {verb}",
            description=(
                f"Record one or more items as {verb}. Item ids are listed by "
                "`dtcourse progress` (for example p1.basics or p2.twopc.participant); "
                "checklist lines follow from the items and cannot be marked."
            ),
        )
        action.add_argument("items", nargs="+", metavar="ITEM", help="item id")
        # SUPPRESS keeps a --store given before the action word.
        _store_option(action, argparse.SUPPRESS)
    parser.set_defaults(func=run, action=None)


def run(args: argparse.Namespace) -> int:
    import json

    from dtcourse.runtime.progress import DONE_KIND, UNDONE_KIND, ProgressStore

    store = ProgressStore(args.store)
    if args.action in ("mark", "unmark"):
        items = list(dict.fromkeys(args.items))
        if args.action == "mark":
            store.mark_many(items, source="cli")
        else:
            store.unmark_many(items, source="cli")
        kinds = DONE_KIND if args.action == "mark" else UNDONE_KIND
        for item_id in items:
            item = store.syllabus.item(item_id)
            kind = kinds[store.syllabus.item_kind(item_id)]
            print(f"{item_id}: {item.title}: {kind}")
        return 0
    if args.json:
        print(json.dumps(store.summary(), indent=2, ensure_ascii=False))
        return 0
    print(format_progress(store), end="")
    return 0


def format_progress(store: ProgressStore) -> str:
    """The plain-text table: items grouped by phase, then the checklist and minutes."""
    from dtcourse.runtime.syllabus import time_text

    syllabus = store.syllabus
    statuses = {status.id: status for status in store.items()}
    width = max(len(item_id) for item_id in statuses)
    lines = [f"{syllabus.title}: progress", f"store: {store.path}", ""]

    def row(status: ItemStatus, label: str, indent: str = "  ") -> str:
        box = "[x]" if status.done else "[ ]"
        return f"{indent}{box} {status.id:<{width}}  {label}"

    for phase in syllabus.phases:
        minutes = store.minute_totals(phase.id)
        lines.append(f"{phase.title}  ({minutes.describe(unit='min')})")
        for resource in phase.resources:
            time = time_text(resource.minutes, resource.exercise_minutes)
            lines.append(
                row(
                    statuses[resource.id],
                    f"{resource.order}. {resource.title} ({resource.kind}, {time})",
                )
            )
            for exercise in phase.exercises:
                if exercise.resource == resource.id:
                    lines.append(
                        row(
                            statuses[exercise.id],
                            f"   exercise: {exercise.title} ({exercise.points} points, "
                            f"about {exercise.minutes} min)",
                        )
                    )
        lines.append("")
    lines.append("Additional resources")
    lines.extend(row(statuses[extra.id], extra.title) for extra in syllabus.additional)
    lines.append("")
    groups = list(dict.fromkeys(video.group for video in syllabus.videos))
    for group in groups:
        lines.append(f"Supplementary videos: {group}")
        for video in syllabus.videos:
            if video.group == group:
                length = f", {video.minutes} min" if video.minutes is not None else ""
                lines.append(row(statuses[video.id], f"{video.title} ({video.channel}{length})"))
        lines.append("")
    lines.append("Completion checklist")
    for check in store.checklist():
        box = "[x]" if check.done else "[ ]"
        todo = f" (to do: {_first(check.missing, 3)})" if check.missing else ""
        lines.append(f"  {box} {check.text}{todo}")
    lines.append("")
    lines.append(f"Minutes: {store.minute_totals().describe('reading and videos')}")
    lines.append("Mark an item done: dtcourse progress mark ITEM  (undo: ... unmark ITEM)")
    return "\n".join(lines) + "\n"


def _first(titles: tuple[str, ...], count: int) -> str:
    shown = "; ".join(titles[:count])
    rest = len(titles) - count
    return f"{shown}; and {rest} more" if rest > 0 else shown
