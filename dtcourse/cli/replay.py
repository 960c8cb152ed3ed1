"""``dtcourse replay``: run a saved trace again and say whether it still happens."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXIT_DIVERGES = 1
EXIT_BAD_FILE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a saved trace and report where it diverges",
        description=(
            "Take the steps of a saved trace (from dtcourse check --save-trace, dtcourse "
            "simulate --save-trace, trace.save(path) or a failing check) again with the node "
            "classes the trace names, print the run as a text sequence diagram with the "
            "verdict of every property after each step, and report the first step where the "
            "run now goes differently."
        ),
        epilog=(
            "exit status: 0 the replay matches the saved run; 1 it diverges; 2 the file "
            "cannot be replayed (not a trace, a wrong version, an unknown action, a node "
            "class that cannot be found)."
        ),
    )
    parser.add_argument("file", type=Path, help="the saved trace (JSON)")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="write a sequence diagram")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dtcourse.engine.replay import replay
    from dtcourse.engine.trace_text import text_sequence

    result = replay(args.file)
    if args.json:
        data = result.to_dict()
        data["file"] = str(args.file)
        print(json.dumps(data, indent=2))
    else:
        about = result.saved.about
        what = ", ".join(
            f"{k} {v}" for k, v in about.items() if k in ("source", "property", "seed")
        )
        print(f"trace {args.file}" + (f" ({what})" if what else ""))
        if result.trace.events:
            print(text_sequence(result.trace))
        print(result.summary())
    if args.plot:
        from dtcourse.cli.simulate import write_plot

        write_plot(result.trace, args.plot)
    return 0 if result.matches else EXIT_DIVERGES
