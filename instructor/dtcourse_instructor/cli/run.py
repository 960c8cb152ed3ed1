"""``dtcourse run``: execute the phase notebooks with papermill, as CI does."""

from __future__ import annotations

import argparse
import ast
import contextlib
import tempfile
from pathlib import Path


def _value(text: str) -> object:
    """``-p seed 3`` gives an int, ``-p name x`` a string: like papermill's own -p."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="execute the phase notebooks with papermill (fast CI parameters)",
        description="Execute every phase notebook with papermill, using fast parameters and a "
        "temporary progress store, and print each notebook's time.",
    )
    parser.add_argument(
        "--release",
        action="store_true",
        help="run release/ instead of source/: each notebook runs until its first unsolved "
        "exercise, whose stub raises NotImplementedError",
    )
    parser.add_argument(
        "--out", type=Path,
        help="keep the executed notebooks in this folder (default: not kept)",
    )
    parser.add_argument("--root", type=Path, help="course folder (default: this repository)")
    parser.add_argument("--phase", action="append", help="only this phase (repeatable)")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="set a notebook parameter (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dtcourse.runtime.syllabus import load_syllabus
    from dtcourse_instructor.authoring import select_phases
    from dtcourse_instructor.course_folder import course_root
    from dtcourse_instructor.runner import run_notebooks, stopped_at_exercise

    root = course_root(args.root)
    print(f"course folder: {root}")
    chosen = select_phases(load_syllabus(), args.phase)
    notebooks = [root / (item.release if args.release else item.source) for item in chosen]
    missing = [str(path) for path in notebooks if not path.exists()]
    if missing:
        from dtcourse.errors import GradingError

        raise GradingError(f"missing notebooks: {', '.join(missing)}; run `dtcourse build` first")
    parameters = {name: _value(value) for name, value in args.parameter}
    with contextlib.ExitStack() as stack:
        out = args.out or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="dtcourse-run-out-", ignore_cleanup_errors=True)
        ))
        results = run_notebooks(notebooks, out, parameters, release=args.release)
    kept = f"outputs in {out}" if args.out else "outputs not kept (--out DIR keeps them)"
    total = sum(result.seconds for result in results)
    failed = [
        result
        for result in results
        if result.error and not (args.release and stopped_at_exercise(result))
    ]
    print(f"{len(results) - len(failed)} of {len(results)} notebooks ran in {total:.1f} s; {kept}")
    return 1 if failed else 0
