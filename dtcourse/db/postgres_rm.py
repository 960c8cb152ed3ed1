"""A PostgreSQL participant through psycopg 3's two-phase API.

``prepare`` is ``PREPARE TRANSACTION`` (``conn.tpc_prepare``): the server forces the branch
to its log and keeps its row locks until ``COMMIT PREPARED`` or ``ROLLBACK PREPARED``,
even across a server restart. Branches are named with ``conn.xid(FORMAT_ID, gtrid,
participant)``. The second phase and recovery run on a separate autocommit connection,
because ``COMMIT PREPARED`` cannot run inside a transaction block. Any DSN works, so the
participants of one transaction may live on different hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dtcourse.db.base import FORMAT_ID, LockTimeout, ResourceManager, Update, Vote, Xid, check_name
from dtcourse.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg


def describe_dsn(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable DSN>"
    parts.pop("password", None)
    return " ".join(f"{key}={value}" for key, value in parts.items())


def _first_line(error: Exception) -> str:
    """The first line of a server error (PostgreSQL adds detail lines), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _connect(dsn: str, autocommit: bool) -> psycopg.Connection:
    import psycopg

    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as error:
        raise DatabaseError(
            f"cannot connect to PostgreSQL ({describe_dsn(dsn)}): {_first_line(error)}; check "
            "the --dsn value and that the server is running"
        ) from None


class PostgresResourceManager(ResourceManager):
    """One PostgreSQL database as one 2PC participant."""

    def __init__(self, dsn: str, name: str | None = None, *, lock_timeout: float = 2.0) -> None:
        import psycopg

        self.dsn = dsn
        self.forced_writes = 0
        self._psycopg = psycopg
        self._conn = _connect(dsn, autocommit=False)
        self._admin = _connect(dsn, autocommit=True)
        self.database = self._admin.info.dbname
        self.name = check_name(name or self.database.replace(".", "_"))
        self._active: Xid | None = None
        self._failed = False
        limit = self._admin.execute("SHOW max_prepared_transactions").fetchone()
        if limit is None or int(limit[0]) == 0:
            self.close()
            raise DatabaseError(
                f"PostgreSQL ({describe_dsn(dsn)}) has max_prepared_transactions = 0, which "
                "disables PREPARE TRANSACTION: set it above 0 (e.g. 20) and restart the server"
            )
        self._conn.execute(
            "SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout * 1000)}ms",)
        )
        self._conn.commit()

    def _pxid(self, xid: Xid) -> psycopg.Xid:
        return self._conn.xid(xid.format_id, xid.gtrid, xid.bqual)

    def _error(self, what: str, error: Exception) -> DatabaseError:
        return DatabaseError(f"participant {self.name}: {what}: {_first_line(error)}")

    # -- schema and inspection -----------------------------------------------------------
    def create_bank(self, balances: Mapping[int, int]) -> None:
        pending = self.in_doubt()
        if pending:
            raise DatabaseError(
                f"participant {self.name} has {len(pending)} in-doubt transaction(s) "
                f"({', '.join(x.gtrid for x in pending[:3])}...): resolve them first with "
                "`dtcourse indoubt` and `dtcourse resolve`"
            )
        try:
            with self._admin.transaction():
                self._admin.execute("DROP TABLE IF EXISTS dtc_accounts, dtc_applied")
                self._admin.execute(
                    "CREATE TABLE dtc_accounts (id integer PRIMARY KEY, "
                    "balance bigint NOT NULL CHECK (balance >= 0))"
                )
                self._admin.execute("CREATE TABLE dtc_applied (gtrid text PRIMARY KEY)")
                with self._admin.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO dtc_accounts VALUES (%s, %s)", sorted(balances.items())
                    )
        except self._psycopg.Error as error:
            raise self._error("cannot create the bank tables", error) from None
        self.forced_writes += 1

    def _select(self, sql: str) -> list[tuple]:
        try:
            return self._admin.execute(sql).fetchall()
        except self._psycopg.Error as error:
            raise self._error("query failed (was the bank created?)", error) from None

    def balances(self) -> dict[int, int]:
        return {int(a): int(b) for a, b in self._select("SELECT id, balance FROM dtc_accounts")}

    def applied(self) -> set[str]:
        return {row[0] for row in self._select("SELECT gtrid FROM dtc_applied")}

    def prepared_xacts(self) -> list[tuple]:
        """Rows of ``pg_prepared_xacts`` for this database: (gid, prepared, owner, database)."""
        return self._admin.execute(
            "SELECT gid, prepared, owner, database FROM pg_prepared_xacts "
            "WHERE database = current_database() ORDER BY prepared"
        ).fetchall()

    # -- a branch ------------------------------------------------------------------------
    def begin(self, xid: Xid) -> None:
        if self._active is not None:
            raise DatabaseError(
                f"participant {self.name} already runs branch {self._active.gtrid}: "
                "one branch per connection"
            )
        self._conn.tpc_begin(self._pxid(xid))
        self._active, self._failed = xid, False

    def _check_active(self, xid: Xid) -> None:
        if self._active != xid:
            raise DatabaseError(
                f"participant {self.name} has no active branch {xid.gtrid}: call begin first"
            )

    def execute(self, xid: Xid, update: Update) -> None:
        self._check_active(xid)
        if self._failed:
            return
        errors = self._psycopg.errors
        try:
            cur = self._conn.execute(
                "UPDATE dtc_accounts SET balance = balance + %s WHERE id = %s",
                (update.delta, update.account),
            )
            if cur.rowcount != 1:
                self._failed = True
        except errors.CheckViolation:
            self._failed = True
        except errors.LockNotAvailable:
            self.rollback(xid)
            raise LockTimeout(
                f"account {update.account} at participant {self.name} is locked by another "
                "transaction, perhaps an in-doubt prepared one (see pg_prepared_xacts); run "
                "recovery or `dtcourse resolve GID --commit|--abort`"
            ) from None

    def prepare(self, xid: Xid) -> Vote:
        self._check_active(xid)
        if self._failed:
            self.rollback(xid)
            return Vote.NO
        try:
            self._conn.execute("INSERT INTO dtc_applied VALUES (%s)", (xid.gtrid,))
            self._conn.tpc_prepare()
        except self._psycopg.Error:
            self.rollback(xid)
            return Vote.NO
        self._active = None
        self.forced_writes += 1
        return Vote.YES

    def commit_one_phase(self, xid: Xid) -> bool:
        self._check_active(xid)
        if self._failed:
            self.rollback(xid)
            return False
        try:
            self._conn.execute("INSERT INTO dtc_applied VALUES (%s)", (xid.gtrid,))
            self._conn.tpc_commit()
        except self._psycopg.Error:
            self.rollback(xid)
            return False
        self._active = None
        self.forced_writes += 1
        return True

    def rollback(self, xid: Xid) -> None:
        if self._active != xid:
            return
        self._active = None
        try:
            self._conn.tpc_rollback()
        except self._psycopg.Error:
            self._conn.rollback()

    # -- the second phase and recovery ---------------------------------------------------
    def _finish(self, xid: Xid, commit: bool) -> None:
        pxid = self._pxid(xid)
        try:
            if commit:
                self._admin.tpc_commit(pxid)
            else:
                self._admin.tpc_rollback(pxid)
        except self._psycopg.errors.UndefinedObject:
            return  # already finished here: the second phase is idempotent
        except self._psycopg.Error as error:
            verb = "COMMIT PREPARED" if commit else "ROLLBACK PREPARED"
            raise self._error(f"{verb} {xid.gtrid} failed", error) from None
        self.forced_writes += 1

    def commit_prepared(self, xid: Xid) -> None:
        self._finish(xid, commit=True)

    def rollback_prepared(self, xid: Xid) -> None:
        self._finish(xid, commit=False)

    def in_doubt(self) -> list[Xid]:
        found = []
        for pxid in self._admin.tpc_recover():
            if pxid.format_id != FORMAT_ID or pxid.database != self.database or not pxid.bqual:
                continue
            try:
                found.append(Xid(pxid.gtrid, pxid.bqual))
            except DatabaseError:
                continue  # our format id but not a name we would have written
        return found

    def close(self) -> None:
        for conn in (self._conn, self._admin):
            if conn is not None and not conn.closed:
                conn.close()
