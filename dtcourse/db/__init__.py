"""Real resource managers, a durable coordinator and the crash torture of the database lab.

For the course: ``in_doubt_lock_demo()`` shows an in-doubt transaction holding its locks
until an operator resolves it; ``torture(step)`` tries a recovery step with the signature
``step(log: Sequence[LogEntry], in_doubt: Sequence[InDoubt]) -> Iterable[Resolve]`` and
returns a ``TortureReport``. The step is exercise ``p2.recovery``: every API that recovers
(``Coordinator.recover``, ``torture``, ``dtcourse bank --crash-every``) takes it as an
argument, and none ships.

SQLite participants need no server; PostgreSQL participants (``postgres_rm``) and the
throwaway cluster (``pgcluster``) import psycopg only when used.
"""

from dtcourse.db.bank import TortureReport, torture
from dtcourse.db.base import FORMAT_ID, LockTimeout, ResourceManager, Update, Vote, Xid
from dtcourse.db.coordinator import (
    Coordinator,
    DecisionLog,
    InDoubt,
    LogEntry,
    Outcome,
    RecoveryReport,
    RecoveryStep,
    Resolve,
    crash_points,
)
from dtcourse.db.demo import DemoReport, in_doubt_lock_demo
from dtcourse.db.sqlite_rm import SqliteResourceManager

__all__ = [
    "FORMAT_ID",
    "Coordinator",
    "DecisionLog",
    "DemoReport",
    "InDoubt",
    "LockTimeout",
    "LogEntry",
    "Outcome",
    "RecoveryReport",
    "RecoveryStep",
    "ResourceManager",
    "Resolve",
    "SqliteResourceManager",
    "TortureReport",
    "Update",
    "Vote",
    "Xid",
    "crash_points",
    "in_doubt_lock_demo",
    "torture",
]
