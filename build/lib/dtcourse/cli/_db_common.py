"""Options and helpers shared by the database-lab commands (bank, indoubt, resolve)."""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dtcourse.errors import DatabaseError

if TYPE_CHECKING:
    from dtcourse.db.coordinator import Coordinator


def add_site_options(parser: argparse.ArgumentParser, default_backend: str | None) -> None:
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres"), default=default_backend,
        help="participant databases (default: sqlite, or postgres when --dsn is given)",
    )
    parser.add_argument(
        "--dsn", action="append", default=[], metavar="DSN",
        help="a PostgreSQL participant (repeat for several; they may be on different hosts)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, metavar="DIR",
        help="folder of the SQLite participants and the coordinator's log "
        "(default: $DTCOURSE_BANK_DIR or the user data folder)",
    )


def backend_of(args: argparse.Namespace) -> str:
    backend = args.backend or ("postgres" if args.dsn else "sqlite")
    if backend == "sqlite" and args.dsn:
        raise DatabaseError("--dsn names PostgreSQL participants: use it with --backend postgres")
    return backend


def workdir_of(args: argparse.Namespace) -> Path:
    from dtcourse.db.bank import default_workdir

    return args.workdir if args.workdir is not None else default_workdir()


@dataclass(frozen=True)
class Existing:
    """An existing bank's coordinator; ``has_log`` is False when no decision log was found."""

    coordinator: Coordinator
    has_log: bool
    workdir: Path

    def decision(self, gtrid: str) -> str:
        if not self.has_log:
            return "unknown (no coordinator log)"
        return self.coordinator.log.decision(gtrid)


@contextmanager
def open_existing(args: argparse.Namespace) -> Iterator[Existing]:
    """Open the participants and log of a bank made earlier, creating no new sites."""
    from dtcourse.db.bank import LOG_FILE, Site, open_site, postgres_sites
    from dtcourse.db.coordinator import Coordinator, DecisionLog

    backend = backend_of(args)
    workdir = workdir_of(args)
    if backend == "postgres":
        if not args.dsn:
            raise DatabaseError(
                "name the PostgreSQL participants with --dsn (repeat it for each one)"
            )
        sites = postgres_sites(args.dsn)
    else:
        files = sorted(workdir.glob("p*.db")) if workdir.is_dir() else []
        if not files:
            raise DatabaseError(
                f"no SQLite participants (p*.db) in {workdir}: run `dtcourse bank "
                f"--workdir {workdir}` first or point --workdir at the bank's folder"
            )
        sites = [Site("sqlite", path.stem, str(path)) for path in files]
    log_path = workdir / LOG_FILE
    has_log = log_path.is_file()
    try:
        with ExitStack() as stack:
            rms = [stack.enter_context(open_site(site)) for site in sites]
            if not has_log:  # an empty log: every decision is unknown, nothing is written
                log_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / LOG_FILE
            log = stack.enter_context(DecisionLog(log_path))
            yield Existing(Coordinator(log, rms), has_log, workdir)
    except sqlite3.Error as error:
        raise DatabaseError(f"cannot read the bank in {workdir}: {error}") from None
