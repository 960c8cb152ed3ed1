"""``dtcourse build``: course/ text files -> source/ notebooks -> release/ with nbgrader."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build",
        help="build source/ notebooks from course/ and the student release/ with nbgrader",
        description="Convert each phase's jupytext file in course/ into "
        "source/<phase>/<phase>.ipynb, then run nbgrader generate_assignment into release/.",
    )
    parser.add_argument("--root", type=Path, help="course folder (default: this repository)")
    parser.add_argument("--phase", action="append", help="only this phase (repeatable)")
    parser.add_argument(
        "--no-release", action="store_true", help="only regenerate source/, skip nbgrader"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dtcourse_instructor.build import build

    build(args.root, phases=args.phase, release=not args.no_release)
    return 0
