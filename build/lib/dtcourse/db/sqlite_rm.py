"""A SQLite participant whose prepared state survives the process dying.

SQLite has no ``PREPARE TRANSACTION``, so the vote is built from ordinary tables. ``prepare``
writes, in one local transaction, the branch's changes as intent rows, a lock row per
account it touches, and a prepared record; that transaction is the participant's forced
write. ``commit_prepared`` applies the intents and deletes the three kinds of rows, again in
one local transaction; ``rollback_prepared`` only deletes them. A branch that was begun but
never prepared lives in memory and dies with the process, as presumed abort wants.

Other writers honour the lock rows: a write to a locked account waits up to
``lock_timeout`` seconds and then fails with ``LockTimeout``, which is how an in-doubt
transaction visibly holds its locks. Each participant is its own database file, i.e. its
own site. WAL mode with ``synchronous=FULL`` makes every local commit an fsync of the log.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dtcourse.db.base import FORMAT_ID, LockTimeout, ResourceManager, Update, Vote, Xid, check_name
from dtcourse.errors import DatabaseError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dtc_prepared (
    gtrid TEXT PRIMARY KEY, bqual TEXT NOT NULL, format_id INTEGER NOT NULL,
    prepared_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dtc_intents (
    gtrid TEXT NOT NULL, account INTEGER NOT NULL, delta INTEGER NOT NULL,
    PRIMARY KEY (gtrid, account));
CREATE TABLE IF NOT EXISTS dtc_locks (account INTEGER PRIMARY KEY, gtrid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dtc_applied (gtrid TEXT PRIMARY KEY);
"""

_POLL_SECONDS = 0.01


class SqliteResourceManager(ResourceManager):
    """One SQLite file as one 2PC participant (see the module docstring for the design)."""

    def __init__(
        self,
        path: Path | str,
        name: str | None = None,
        *,
        lock_timeout: float = 2.0,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path)
        self.name = check_name(name or self.path.stem)
        self.lock_timeout = lock_timeout
        self.forced_writes = 0
        self._branches: dict[Xid, list[Update]] = {}
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise DatabaseError(
                f"bad SQLite synchronous setting {synchronous!r}: use OFF, NORMAL, FULL or EXTRA"
            )
        if not self.path.parent.is_dir():
            raise DatabaseError(
                f"cannot open participant {self.name}: folder {self.path.parent} does not "
                "exist; create it or pick another --workdir"
            )
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise DatabaseError(
                f"cannot use {self.path} as participant {self.name}: {error}; "
                "point at a participant database file or an empty folder"
            ) from None

    # -- plumbing ------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A local write transaction that takes SQLite's write lock at once."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise DatabaseError(f"participant {self.name} ({self.path}): {error}") from None
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise DatabaseError(f"participant {self.name}: commit failed: {error}") from None

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise DatabaseError(
                f"participant {self.name} ({self.path}): {error}; was the bank created "
                "(dtcourse bank) in this folder?"
            ) from None

    def _aggregate(self, xid: Xid) -> dict[int, int]:
        try:
            updates = self._branches.pop(xid)
        except KeyError:
            raise DatabaseError(
                f"participant {self.name} has no active branch {xid.gtrid}: call begin first"
            ) from None
        deltas: dict[int, int] = {}
        for update in updates:
            deltas[update.account] = deltas.get(update.account, 0) + update.delta
        return deltas

    def _acceptable(self, conn: sqlite3.Connection, gtrid: str, deltas: dict[int, int]) -> bool:
        """Every account exists, is not locked by another branch and stays non-negative."""
        for account, delta in deltas.items():
            row = conn.execute(
                "SELECT balance FROM dtc_accounts WHERE id = ?", (account,)
            ).fetchone()
            if row is None or row[0] + delta < 0:
                return False
            lock = conn.execute(
                "SELECT gtrid FROM dtc_locks WHERE account = ?", (account,)
            ).fetchone()
            if lock is not None and lock[0] != gtrid:
                return False
        return True

    # -- schema and inspection -----------------------------------------------------------
    def create_bank(self, balances: Mapping[int, int]) -> None:
        pending = self.in_doubt()
        if pending:
            raise DatabaseError(
                f"participant {self.name} has {len(pending)} in-doubt transaction(s) "
                f"({', '.join(x.gtrid for x in pending[:3])}...): resolve them first with "
                "`dtcourse indoubt` and `dtcourse resolve`"
            )
        with self._write() as conn:
            conn.execute("DROP TABLE IF EXISTS dtc_accounts")
            conn.execute(
                "CREATE TABLE dtc_accounts (id INTEGER PRIMARY KEY, "
                "balance INTEGER NOT NULL CHECK (balance >= 0))"
            )
            for table in ("dtc_prepared", "dtc_intents", "dtc_locks", "dtc_applied"):
                conn.execute(f"DELETE FROM {table}")
            conn.executemany(
                "INSERT INTO dtc_accounts VALUES (?, ?)", sorted(balances.items())
            )
        self.forced_writes += 1

    def balances(self) -> dict[int, int]:
        return dict(self._query("SELECT id, balance FROM dtc_accounts ORDER BY id"))

    def applied(self) -> set[str]:
        return {row[0] for row in self._query("SELECT gtrid FROM dtc_applied")}

    def locks(self) -> dict[int, str]:
        """Accounts locked by prepared branches, with the gtrid holding each lock."""
        return dict(self._query("SELECT account, gtrid FROM dtc_locks ORDER BY account"))

    # -- a branch ------------------------------------------------------------------------
    def begin(self, xid: Xid) -> None:
        if xid in self._branches:
            raise DatabaseError(f"participant {self.name}: branch {xid.gtrid} already begun")
        self._branches[xid] = []

    def execute(self, xid: Xid, update: Update) -> None:
        if xid not in self._branches:
            raise DatabaseError(
                f"participant {self.name} has no active branch {xid.gtrid}: call begin first"
            )
        deadline = time.monotonic() + self.lock_timeout
        while True:
            rows = self._query("SELECT gtrid FROM dtc_locks WHERE account = ?", (update.account,))
            if not rows or rows[0][0] == xid.gtrid:
                break
            if time.monotonic() >= deadline:
                holder = rows[0][0]
                raise LockTimeout(
                    f"account {update.account} at participant {self.name} is locked by "
                    f"prepared transaction {holder} (gave up after {self.lock_timeout:g} s); "
                    f"run recovery or `dtcourse resolve {holder} --commit|--abort`"
                )
            time.sleep(_POLL_SECONDS)
        self._branches[xid].append(update)

    def prepare(self, xid: Xid) -> Vote:
        deltas = self._aggregate(xid)
        with self._write() as conn:
            if not self._acceptable(conn, xid.gtrid, deltas):
                return Vote.NO
            conn.execute(
                "INSERT INTO dtc_prepared VALUES (?, ?, ?, ?)",
                (xid.gtrid, xid.bqual, xid.format_id, time.time()),
            )
            conn.executemany(
                "INSERT INTO dtc_intents VALUES (?, ?, ?)",
                [(xid.gtrid, account, delta) for account, delta in deltas.items()],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO dtc_locks VALUES (?, ?)",
                [(account, xid.gtrid) for account in deltas],
            )
        self.forced_writes += 1
        return Vote.YES

    def commit_one_phase(self, xid: Xid) -> bool:
        deltas = self._aggregate(xid)
        with self._write() as conn:
            if not self._acceptable(conn, xid.gtrid, deltas):
                return False
            conn.executemany(
                "UPDATE dtc_accounts SET balance = balance + ? WHERE id = ?",
                [(delta, account) for account, delta in deltas.items()],
            )
            conn.execute("INSERT INTO dtc_applied VALUES (?)", (xid.gtrid,))
        self.forced_writes += 1
        return True

    def rollback(self, xid: Xid) -> None:
        self._branches.pop(xid, None)

    # -- the second phase and recovery ---------------------------------------------------
    def _finish(self, xid: Xid, commit: bool) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT 1 FROM dtc_prepared WHERE gtrid = ? AND bqual = ?",
                (xid.gtrid, xid.bqual),
            ).fetchone()
            if row is None:
                return
            if commit:
                conn.execute(
                    "UPDATE dtc_accounts SET balance = balance + "
                    "(SELECT delta FROM dtc_intents i WHERE i.gtrid = ? AND i.account = id) "
                    "WHERE id IN (SELECT account FROM dtc_intents WHERE gtrid = ?)",
                    (xid.gtrid, xid.gtrid),
                )
                conn.execute("INSERT INTO dtc_applied VALUES (?)", (xid.gtrid,))
            for table in ("dtc_intents", "dtc_locks", "dtc_prepared"):
                conn.execute(f"DELETE FROM {table} WHERE gtrid = ?", (xid.gtrid,))
        self.forced_writes += 1

    def commit_prepared(self, xid: Xid) -> None:
        self._finish(xid, commit=True)

    def rollback_prepared(self, xid: Xid) -> None:
        self._finish(xid, commit=False)

    def in_doubt(self) -> list[Xid]:
        rows = self._query(
            "SELECT gtrid, bqual FROM dtc_prepared WHERE format_id = ? ORDER BY prepared_at",
            (FORMAT_ID,),
        )
        return [Xid(gtrid, bqual) for gtrid, bqual in rows]

    def close(self) -> None:
        self._branches.clear()
        self._conn.close()
