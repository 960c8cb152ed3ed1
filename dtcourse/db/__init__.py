"""Real resource managers, a durable coordinator and the crash torture of the database lab.

SQLite participants need no server; PostgreSQL participants (``postgres_rm``) and the
throwaway cluster (``pgcluster``) import psycopg only when used.
"""

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
    reference_recovery,
)
from dtcourse.db.sqlite_rm import SqliteResourceManager

__all__ = [
    "FORMAT_ID",
    "Coordinator",
    "DecisionLog",
    "InDoubt",
    "LockTimeout",
    "LogEntry",
    "Outcome",
    "RecoveryReport",
    "RecoveryStep",
    "ResourceManager",
    "Resolve",
    "SqliteResourceManager",
    "Update",
    "Vote",
    "Xid",
    "crash_points",
    "reference_recovery",
]
