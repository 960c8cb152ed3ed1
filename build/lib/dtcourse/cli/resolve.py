"""``dtcourse resolve``: decide an in-doubt transaction by hand (a heuristic decision)."""

from __future__ import annotations

import argparse
import sys

from dtcourse.cli._db_common import add_site_options, open_existing
from dtcourse.errors import DatabaseError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "resolve",
        help="commit or abort an in-doubt transaction by hand",
        description="Send a decision to every participant where GID is in doubt. This is "
        "a heuristic decision: if it disagrees with the coordinator's, the transaction "
        "ends half committed. Refused when the coordinator's log says otherwise, "
        "unless --force.",
    )
    parser.add_argument("gid", metavar="GID", help="the global transaction id (see indoubt)")
    decision = parser.add_mutually_exclusive_group(required=True)
    decision.add_argument("--commit", action="store_true")
    decision.add_argument("--abort", action="store_true")
    parser.add_argument("--force", action="store_true",
                        help="decide even against the coordinator's log")
    add_site_options(parser, default_backend=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    wanted = "commit" if args.commit else "abort"
    with open_existing(args) as bank:
        branches = [d for d in bank.coordinator.in_doubt() if d.gtrid == args.gid]
        if not branches:
            raise DatabaseError(
                f"{args.gid} is not in doubt at any participant of the bank in "
                f"{bank.workdir if not args.dsn else 'the given --dsn databases'}; "
                "list in-doubt transactions with `dtcourse indoubt`"
            )
        logged = bank.decision(args.gid)
        if bank.has_log and logged != wanted and not args.force:
            raise DatabaseError(
                f"the coordinator's log says {logged} for {args.gid} "
                f"({'commit record' if logged == 'commit' else 'no commit record: presumed'}"
                f"); resolving it as {wanted} would break atomicity. Run recovery, or "
                "pass --force if you know the log is wrong"
            )
        print(
            f"warning: heuristic decision: {wanted} {args.gid} by hand "
            f"(coordinator's log: {logged}). If another participant learns a different "
            "outcome, the transaction is no longer atomic.",
            file=sys.stderr,
        )
        for branch in branches:
            bank.coordinator.resolve(branch, commit=args.commit)
        left = [d for d in bank.coordinator.in_doubt() if d.gtrid == args.gid]
    if left:
        raise DatabaseError(f"{args.gid} is still in doubt at {left[0].participant}")
    where = ", ".join(b.participant for b in branches)
    print(f"{'committed' if args.commit else 'aborted'} {args.gid} at {where}")
    return 0
