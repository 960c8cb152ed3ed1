"""``dtcourse indoubt``: list the branches that voted YES and still wait for a decision."""

from __future__ import annotations

import argparse
import json

from dtcourse.cli._db_common import add_site_options, open_existing


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "indoubt",
        help="list in-doubt transactions at the participants",
        description="List prepared transactions still waiting for the coordinator's "
        "decision, with what the coordinator's log says about each.",
    )
    add_site_options(parser, default_backend=None)
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_existing(args) as bank:
        rows = [
            {"gtrid": d.gtrid, "participant": d.participant, "log": bank.decision(d.gtrid)}
            for d in bank.coordinator.in_doubt()
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no in-doubt transactions")
    else:
        print(f"{'GTRID':<24} {'PARTICIPANT':<12} COORDINATOR LOG")
        for row in rows:
            print(f"{row['gtrid']:<24} {row['participant']:<12} {row['log']}")
    return 0
