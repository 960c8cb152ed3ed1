"""``dtcourse bank``: transfers between accounts spread over several databases."""

from __future__ import annotations

import argparse
import json

from dtcourse.cli._db_common import add_site_options, backend_of, workdir_of
from dtcourse.cli._load import load_function


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bank",
        help="run bank transfers with two-phase commit, optionally crashing the coordinator",
        description="Run bank transfers as distributed transactions over several "
        "participants (SQLite files, or PostgreSQL databases with prepared transactions). "
        "With --crash-every K, a child process runs the transfers and is killed "
        "once every K transfers, and after each crash the coordinator recovers with your "
        "recovery step (--recovery, exercise p2.recovery; none ships). A bank already in the "
        "folder (or at the --dsn databases) with the same shape is continued; --fresh "
        "replaces it. Every run uses new global transaction ids. Prints which bank was used, "
        "the totals before and after, committed, aborted, in-doubt branches resolved and "
        "throughput.",
        epilog="Branches an old run left in doubt are rolled back when the bank is made "
        "afresh; a continued bank resolves them with --recovery. Your step may leave some in "
        "doubt: list them with `dtcourse indoubt` and decide each by hand with `dtcourse "
        "resolve GID --commit|--abort`, which refuses a decision that contradicts the "
        "coordinator's log.",
    )
    add_site_options(parser, default_backend=None)
    parser.add_argument("--participants", type=int, default=3, metavar="N")
    parser.add_argument("--accounts", type=int, default=12, metavar="A")
    parser.add_argument("--transfers", type=int, default=100, metavar="T")
    parser.add_argument("--crash-every", type=int, default=0, metavar="K",
                        help="crash the coordinator's process once every K transfers (0: never)")
    parser.add_argument("--recovery", metavar="FILE.py:NAME",
                        help="the coordinator's recovery step, step(log, in_doubt) -> "
                        "[Resolve, ...], as a function NAME in FILE.py: your answer to "
                        "exercise p2.recovery (required with --crash-every)")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument("--fresh", action="store_true",
                        help="replace the bank found in the folder with a new one")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dtcourse.db.bank import run_bank
    from dtcourse.errors import DatabaseError

    recovery = None
    if args.recovery is not None:
        recovery = load_function(args.recovery, "--recovery", DatabaseError)
    report = run_bank(
        backend_of(args),
        workdir=workdir_of(args),
        dsns=args.dsn,
        participants=args.participants,
        accounts=args.accounts,
        transfers=args.transfers,
        crash_every=args.crash_every,
        seed=args.seed,
        recovery=recovery,
        fresh=args.fresh,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.note[:1].upper() + report.note[1:])
        print(f"backend          {report.backend} ({report.participants} participants, "
              f"{report.accounts} accounts)")
        print(f"total before     {report.total_before}")
        print(f"total after      {report.total_after}")
        print(f"transfers        {report.transfers} (global transaction ids {report.run}-*)")
        print(f"committed        {report.committed}")
        print(f"aborted          {report.aborted}")
        print(f"crashes          {report.crashes}")
        print(f"in-doubt resolved {report.in_doubt_resolved}")
        print(f"transfers/second {report.transfers_per_second:.1f}")
        if report.forced_writes is not None and report.transfers:
            print(f"forced writes    {report.forced_writes / report.transfers:.2f} per transfer")
        for violation in report.violations[:5]:
            print(f"VIOLATION        {violation}")
    return 0 if report.ok else 1
