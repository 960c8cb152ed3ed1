"""The resource-manager interface shared by every backend, and the transaction ids it uses.

A global transaction has one id (the *gtrid*) chosen by the coordinator. Each participant
holds one branch of it, named by an X/Open XA triple: a format id that marks the branch as
ours, the gtrid, and the participant's name as branch qualifier (*bqual*). PostgreSQL
stores the triple as its gid (``pg_prepared_xacts.gid``) through psycopg's ``conn.xid``;
the SQLite participant stores the same three fields in its prepared record. Users and the
``dtcourse resolve`` command name a transaction by its gtrid.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from dtcourse.errors import DatabaseError

#: XA format id of every branch this course creates ("DTC" in ASCII); branches with another
#: format id belong to someone else and are never touched by recovery.
FORMAT_ID = 0x445443

_GTRID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


class LockTimeout(DatabaseError):
    """A write waited for a lock held by another (often in-doubt) transaction and gave up."""


def check_gtrid(gtrid: str) -> str:
    if not _GTRID.match(gtrid):
        raise DatabaseError(
            f"bad global transaction id {gtrid!r}: use 1-64 letters, digits, '_', '.', ':' "
            "or '-', starting with a letter or digit"
        )
    return gtrid


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise DatabaseError(
            f"bad participant name {name!r}: use 1-32 letters, digits, '_' or '-', "
            "starting with a letter"
        )
    return name


@dataclass(frozen=True, order=True)
class Xid:
    """One participant's branch of a global transaction (an XA triple)."""

    gtrid: str
    bqual: str
    format_id: int = FORMAT_ID

    def __post_init__(self) -> None:
        check_gtrid(self.gtrid)
        check_name(self.bqual)


class Vote(Enum):
    """A participant's answer to *prepare*: YES means the branch is durable and locked."""

    YES = "yes"
    NO = "no"


@dataclass(frozen=True)
class Update:
    """Add ``delta`` to the balance of ``account`` (negative for a debit).

    The bank workload needs nothing else, and a typed operation lets the SQLite participant
    stage it as an intent row instead of running arbitrary SQL.
    """

    account: int
    delta: int


class ResourceManager(ABC):
    """A participant in two-phase commit: one database, one site.

    The life of a branch: ``begin`` → ``execute``\\* → ``prepare`` (the vote) → then
    ``commit_prepared`` or ``rollback_prepared`` on the coordinator's decision. A branch
    that was never prepared dies with the process (presumed abort); a prepared one survives
    it and is listed by ``in_doubt()`` until the decision arrives. Both second-phase calls
    are idempotent, so recovery can repeat them safely.

    ``forced_writes`` counts the durable commits this object issued (each is at least one
    fsync on a durable configuration), so benchmarks can report the cost of the protocol.
    """

    name: str
    forced_writes: int

    # -- schema and inspection -----------------------------------------------------------
    @abstractmethod
    def create_bank(self, balances: Mapping[int, int]) -> None:
        """Drop any previous bank tables here and create ``dtc_accounts`` with these balances."""

    @abstractmethod
    def balances(self) -> dict[int, int]:
        """Committed balances (prepared but undecided changes are not included)."""

    @abstractmethod
    def applied(self) -> set[str]:
        """Gtrids whose branch committed here: the evidence used to check atomicity."""

    # -- a branch ------------------------------------------------------------------------
    @abstractmethod
    def begin(self, xid: Xid) -> None: ...

    @abstractmethod
    def execute(self, xid: Xid, update: Update) -> None:
        """Perform ``update`` inside the branch; raises ``LockTimeout`` when blocked too long."""

    @abstractmethod
    def prepare(self, xid: Xid) -> Vote:
        """Vote: YES after a forced write that makes the branch survive a crash, else NO."""

    @abstractmethod
    def commit_one_phase(self, xid: Xid) -> bool:
        """Commit a branch without prepare (single-site transaction); False if it failed."""

    @abstractmethod
    def rollback(self, xid: Xid) -> None:
        """Abort a branch that was begun in this process and not prepared."""

    # -- the second phase and recovery ---------------------------------------------------
    @abstractmethod
    def commit_prepared(self, xid: Xid) -> None:
        """Commit a prepared branch; a branch no longer prepared here is left alone."""

    @abstractmethod
    def rollback_prepared(self, xid: Xid) -> None:
        """Roll back a prepared branch; a branch no longer prepared here is left alone."""

    @abstractmethod
    def in_doubt(self) -> list[Xid]:
        """Branches of ours that are prepared here and still wait for a decision."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ResourceManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def total(participants: Sequence[ResourceManager]) -> int:
    """The bank's invariant: the sum of every committed balance at every participant."""
    return sum(sum(rm.balances().values()) for rm in participants)
