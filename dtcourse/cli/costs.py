"""``dtcourse costs``: the cost of one transaction under every commit variant."""

from __future__ import annotations

import argparse
import json

MAX_PARTICIPANTS = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "costs",
        help="messages, forced writes and delays of every commit variant",
        description=(
            "Run every commit variant (presumed nothing, presumed abort, presumed commit, "
            "read-only, one-phase, co-located, Paxos Commit with F = 1) once without faults "
            "and print what one transaction cost: messages, forced and lazy log writes, and "
            "message delays until every node has decided, for commits and aborts. "
            "Conventions: a flat tree, the coordinator is not a participant unless "
            "co-located, an abort is one participant voting no. Presumed abort, read-only "
            "and co-located run on presumed-abort nodes, which are the exercise "
            "p3.presumed_abort: their rows were counted the same way when the course was "
            "built, and the package ships the counts, not the nodes."
        ),
        epilog="exit status: 0 printed; 2 bad input.",
    )
    parser.add_argument(
        "--participants",
        "-n",
        default=3,
        type=str,
        help="number of participants (default 3); one-phase rows appear only for 1",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(func=run)


def _count(text: str) -> int:
    from dtcourse.errors import DTCourseError

    try:
        value = int(text)
    except ValueError:
        raise DTCourseError(
            f"--participants takes a whole number from 1 to {MAX_PARTICIPANTS}, got {text!r}"
        ) from None
    if not 1 <= value <= MAX_PARTICIPANTS:
        raise DTCourseError(
            f"--participants takes a whole number from 1 to {MAX_PARTICIPANTS}, got {value}"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from dtcourse.commit.costs import cost_rows, recorded_variants

    n = _count(str(args.participants))
    rows = cost_rows([n])
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    header = ("variant", "outcome", "n", "messages", "forced", "lazy", "delays")
    table = [
        (r.variant, r.outcome, str(r.participants), str(r.messages), str(r.forced_writes),
         str(r.lazy_writes), str(r.delays))
        for r in rows
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    for line in (header, *table):
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    print(
        f"\n{n} participant{'s' if n != 1 else ''}; flat tree; coordinator not a participant "
        "unless co-located; abort = one participant votes no; delays = message delays until "
        "every node has decided."
    )
    recorded = ", ".join(recorded_variants())
    print(
        f"{recorded}: counted when the course was built (their nodes are the exercise "
        "p3.presumed_abort); the others counted now."
    )
    return 0
