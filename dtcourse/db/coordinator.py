"""The coordinator: two-phase commit with presumed abort over a durable decision log.

Presumed abort keeps the log small and the failure-free path cheap: the only forced write
is the commit record, made after every participant voted YES and before phase two. An
abort writes nothing, because a transaction the log does not mention is aborted by
presumption. Once every participant has committed, the coordinator forgets the record with
a lazy (unforced) write.

Recovery is a pure step passed in: ``step(log, in_doubt) -> actions``. The coordinator
reads its log (the commit records it has not forgotten), asks every participant for its
in-doubt branches, calls the step, validates and applies the actions, then forgets the
records that no participant still needs. Writing that step is exercise ``p2.recovery``, so
``recover`` takes it as a required argument and no step ships with the course.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dtcourse.db.base import LockTimeout, ResourceManager, Update, Vote, Xid, check_gtrid
from dtcourse.errors import DatabaseError

__all__ = [
    "Coordinator",
    "DecisionLog",
    "InDoubt",
    "LogEntry",
    "Outcome",
    "RecoveryReport",
    "RecoveryStep",
    "Resolve",
    "crash_points",
]

# -- what recovery sees and does ------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """A commit record still in the coordinator's log (presumed abort logs nothing else)."""

    gtrid: str
    participants: tuple[str, ...]
    decision: str = "commit"


@dataclass(frozen=True)
class InDoubt:
    """A participant that voted YES for ``gtrid`` and still waits for the decision."""

    participant: str
    gtrid: str


@dataclass(frozen=True)
class Resolve:
    """A recovery action: tell ``participant`` to commit (True) or abort (False) ``gtrid``."""

    participant: str
    gtrid: str
    commit: bool


RecoveryStep = Callable[[Sequence[LogEntry], Sequence[InDoubt]], Iterable[Resolve]]


@dataclass(frozen=True)
class RecoveryReport:
    actions: tuple[Resolve, ...]
    committed: int
    aborted: int
    forgotten: int
    in_doubt_left: tuple[InDoubt, ...]


@dataclass(frozen=True)
class Outcome:
    """What the client learns about one transaction."""

    gtrid: str
    committed: bool
    reason: str = ""


def crash_points(participants: int) -> tuple[str, ...]:
    """The named points of one transaction where a crash can be injected, in order."""
    prepares = tuple(f"after-prepare:{i}" for i in range(1, participants + 1))
    commits = tuple(f"after-commit:{i}" for i in range(1, participants + 1))
    return ("before-prepare", *prepares, "after-decision", *commits)


# -- the durable log ------------------------------------------------------------------------


class DecisionLog:
    """Commit records in a SQLite file: forced on write, forgotten lazily.

    Two connections: commit records go through one with ``synchronous=FULL`` (a forced
    write), forget records through one with ``synchronous=OFF`` (made durable by the next
    forced write, and harmless to lose: recovery would just repeat an idempotent commit).

    The log also hands out gtrid prefixes (``start_run``). A gtrid must never be used twice
    by one coordinator, even after its commit record was forgotten (XA and PostgreSQL both
    assume it): participants remember committed gtrids, and a reused one would be taken for
    the old transaction. So each log has a random coordinator id, made once, and a run
    counter that only grows; ``clear`` removes commit records, never these.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.forced_writes = 0
        if not self.path.parent.is_dir():
            raise DatabaseError(
                f"cannot open the decision log {self.path}: folder {self.path.parent} does "
                "not exist; create it or pick another --workdir"
            )
        try:
            self._forced = self._open("FULL")
            self._lazy = self._open("OFF")
        except sqlite3.Error as error:
            raise DatabaseError(
                f"cannot use {self.path} as the coordinator's decision log: {error}"
            ) from None

    def _open(self, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS decisions (gtrid TEXT PRIMARY KEY, "
            "decision TEXT NOT NULL, participants TEXT NOT NULL, logged_at REAL NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS coordinator (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "name TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY AUTOINCREMENT, "
            "what TEXT NOT NULL, started_at REAL NOT NULL)"
        )
        conn.execute(
            "INSERT OR IGNORE INTO coordinator VALUES (1, ?)", (f"c{secrets.token_hex(3)}",)
        )
        return conn

    @property
    def coordinator_id(self) -> str:
        """This log's coordinator, named once when the log was made (e.g. ``c1f9a0e``)."""
        row = self._forced.execute("SELECT name FROM coordinator").fetchone()
        return str(row[0])

    def start_run(self, what: str = "bank") -> str:
        """A gtrid prefix no earlier run of this log had, e.g. ``c1f9a0e-r3`` (forced).

        Runs are numbered by SQLite's AUTOINCREMENT, which never hands out a number twice,
        and the coordinator id keeps two logs' gtrids apart at shared participants.
        """
        cursor = self._forced.execute(
            "INSERT INTO runs (what, started_at) VALUES (?, ?)", (what, time.time())
        )
        self.forced_writes += 1
        return f"{self.coordinator_id}-r{cursor.lastrowid}"

    def force_commit(self, gtrid: str, participants: Sequence[str]) -> None:
        try:
            self._forced.execute(
                "INSERT INTO decisions VALUES (?, 'commit', ?, ?)",
                (check_gtrid(gtrid), ",".join(participants), time.time()),
            )
        except sqlite3.IntegrityError:
            raise DatabaseError(
                f"the decision log already holds transaction {gtrid}: gtrids must be unique"
            ) from None
        self.forced_writes += 1

    def forget(self, gtrid: str) -> None:
        self._lazy.execute("DELETE FROM decisions WHERE gtrid = ?", (gtrid,))

    def entries(self) -> list[LogEntry]:
        rows = self._forced.execute(
            "SELECT gtrid, participants, decision FROM decisions ORDER BY logged_at"
        ).fetchall()
        return [LogEntry(g, tuple(p.split(",")) if p else (), d) for g, p, d in rows]

    def decision(self, gtrid: str) -> str:
        """``commit`` if a commit record exists, else ``abort`` (by presumption)."""
        row = self._forced.execute(
            "SELECT decision FROM decisions WHERE gtrid = ?", (gtrid,)
        ).fetchone()
        return row[0] if row else "abort"

    def clear(self) -> None:
        self._forced.execute("DELETE FROM decisions")

    def close(self) -> None:
        self._forced.close()
        self._lazy.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the protocol ---------------------------------------------------------------------------


def _no_crash(point: str) -> None:
    return None


class Coordinator:
    """Runs transactions over named participants and recovers them after a crash.

    ``crash(point)`` is called at every named point of ``crash_points``; the torture's
    child process uses it to kill itself at a chosen point. ``on_commit``
    is called once the commit record is forced: from then on the transaction is committed
    and the client may be told so, before phase two has run.
    """

    def __init__(
        self,
        log: DecisionLog,
        participants: Mapping[str, ResourceManager] | Sequence[ResourceManager],
        crash: Callable[[str], None] = _no_crash,
    ) -> None:
        self.log = log
        if isinstance(participants, Mapping):
            self.participants = dict(participants)
        else:
            self.participants = {rm.name: rm for rm in participants}
        if len(self.participants) == 0:
            raise DatabaseError("a coordinator needs at least one participant")
        self.crash = crash

    @property
    def forced_writes(self) -> int:
        own = self.log.forced_writes
        return own + sum(rm.forced_writes for rm in self.participants.values())

    def _rm(self, name: str) -> ResourceManager:
        try:
            return self.participants[name]
        except KeyError:
            known = ", ".join(sorted(self.participants))
            raise DatabaseError(f"unknown participant {name!r}; known: {known}") from None

    def run(
        self,
        gtrid: str,
        work: Mapping[str, Sequence[Update]],
        on_commit: Callable[[str], None] | None = None,
    ) -> Outcome:
        """Two-phase commit of ``work`` (updates per participant name) as ``gtrid``."""
        order = list(work)
        xids = {name: Xid(gtrid, name) for name in order}
        begun: list[str] = []
        try:
            for name in order:
                self._rm(name).begin(xids[name])
                begun.append(name)
                for update in work[name]:
                    self._rm(name).execute(xids[name], update)
        except LockTimeout as error:
            for name in begun:
                self._rm(name).rollback(xids[name])
            return Outcome(gtrid, False, str(error))
        self.crash("before-prepare")
        for i, name in enumerate(order, 1):
            if self._rm(name).prepare(xids[name]) is Vote.NO:
                for earlier in order[: i - 1]:
                    self._rm(earlier).rollback_prepared(xids[earlier])
                for later in order[i:]:
                    self._rm(later).rollback(xids[later])
                return Outcome(gtrid, False, f"participant {name} voted no")
            self.crash(f"after-prepare:{i}")
        self.log.force_commit(gtrid, order)
        if on_commit is not None:
            on_commit(gtrid)
        self.crash("after-decision")
        for i, name in enumerate(order, 1):
            self._rm(name).commit_prepared(xids[name])
            self.crash(f"after-commit:{i}")
        self.log.forget(gtrid)
        return Outcome(gtrid, True)

    def run_one_phase(self, gtrid: str, participant: str, updates: Sequence[Update]) -> Outcome:
        """A single-site transaction: no vote, no log record, one local commit."""
        rm = self._rm(participant)
        xid = Xid(gtrid, participant)
        rm.begin(xid)
        try:
            for update in updates:
                rm.execute(xid, update)
        except LockTimeout as error:
            rm.rollback(xid)
            return Outcome(gtrid, False, str(error))
        if rm.commit_one_phase(xid):
            return Outcome(gtrid, True)
        return Outcome(gtrid, False, f"participant {participant} refused the update")

    def in_doubt(self) -> list[InDoubt]:
        return list(self._in_doubt_xids())

    def _in_doubt_xids(self) -> dict[InDoubt, Xid]:
        """In-doubt branches with the Xid each participant actually stored."""
        return {
            InDoubt(name, xid.gtrid): xid
            for name, rm in self.participants.items()
            for xid in rm.in_doubt()
        }

    def resolve(self, branch: InDoubt, commit: bool) -> None:
        """Send one decision to one in-doubt branch (recovery and manual resolution)."""
        xid = self._in_doubt_xids().get(branch, Xid(branch.gtrid, branch.participant))
        if commit:
            self._rm(branch.participant).commit_prepared(xid)
        else:
            self._rm(branch.participant).rollback_prepared(xid)

    def recover(self, step: RecoveryStep) -> RecoveryReport:
        """Resolve every in-doubt branch with ``step`` and forget finished commit records."""
        if not callable(step):
            raise DatabaseError(
                f"recover needs the recovery step, a function step(log, in_doubt) returning "
                f"Resolve objects (exercise p2.recovery), not {step!r}"
            )
        log = tuple(self.log.entries())
        known = self._in_doubt_xids()
        waiting = tuple(known)
        actions: list[Resolve] = []
        for action in step(log, waiting):
            if not isinstance(action, Resolve):
                raise DatabaseError(
                    f"the recovery step returned {action!r}: return Resolve(participant, "
                    "gtrid, commit) objects, one per in-doubt branch"
                )
            if InDoubt(action.participant, action.gtrid) not in known:
                raise DatabaseError(
                    f"the recovery step resolved {action.gtrid} at {action.participant}, "
                    "which is not in doubt there: resolve only the InDoubt branches given"
                )
            actions.append(action)
        for action in actions:
            xid = known[InDoubt(action.participant, action.gtrid)]
            if action.commit:
                self._rm(action.participant).commit_prepared(xid)
            else:
                self._rm(action.participant).rollback_prepared(xid)
        left = tuple(self.in_doubt())
        still = {d.gtrid for d in left}
        forgotten = 0
        for entry in log:
            if entry.gtrid not in still and all(p in self.participants for p in entry.participants):
                self.log.forget(entry.gtrid)
                forgotten += 1
        return RecoveryReport(
            actions=tuple(actions),
            committed=sum(a.commit for a in actions),
            aborted=sum(not a.commit for a in actions),
            forgotten=forgotten,
            in_doubt_left=left,
        )
