"""The transactional outbox on SQLite: a service, a relay, a broker and a deduplicating consumer.

The service writes the business row and the outbox row in **one local transaction**. The
relay publishes unsent outbox rows to the broker, then marks them sent, so a crash
between the two publishes again: delivery is at least once. The consumer applies each
message's effect and records the message id in **one local transaction** of its own
database, so a redelivered message is recognised and skipped; it commits its read
position separately afterwards, as a consumer of a real broker does, so crashes make it
see messages again. Three SQLite files stand for the service's database, the broker's
log and the consumer's database.

Crashes are injected at every step boundary: ``Crashes(at={3, 7})`` kills "the process"
at the 3rd and 7th crash point it passes. A crash raises ``ProcessCrash`` (a
``BaseException``, so nothing catches it by accident); the open connection is dropped
without committing, which is what the database sees when a process dies, and the
pipeline restarts from the files. ``deliver`` runs everything to quiescence and
``verify`` states the guarantees: no committed order's message is lost, no effect is
applied twice. The naive dual write (``outbox=False``) and a consumer without
deduplication (``dedup=False``) show what each half of the pattern prevents.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dtcourse.errors import DTCourseError

SERVICE_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL, sent INTEGER DEFAULT 0
);
"""
BROKER_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, payload TEXT NOT NULL
);
"""
CONSUMER_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS shipments (order_id TEXT NOT NULL, amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""
MAX_RESTARTS = 200


class ProcessCrash(BaseException):  # noqa: N818 - a crash, not an error to handle
    """The process died at a crash point."""


@dataclass
class Crashes:
    """Crash at the listed crash points (numbered from 1 over the whole run)."""

    at: frozenset[int] = frozenset()
    passed: int = 0
    names: list[str] = field(default_factory=list)

    def point(self, name: str) -> None:
        self.passed += 1
        self.names.append(name)
        if self.passed in self.at:
            raise ProcessCrash(f"crash at point {self.passed} ({name})")


@dataclass(frozen=True)
class Pipeline:
    """Where the three databases live, and which halves of the pattern are used."""

    folder: Path
    outbox: bool = True
    dedup: bool = True

    def connect(self, name: str, schema: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.folder / f"{name}.sqlite", isolation_level=None)
        conn.executescript(schema)
        return conn


@dataclass(frozen=True)
class Report:
    """What happened: orders committed, messages published, effects applied."""

    committed: tuple[str, ...]
    published: dict[str, int]
    applied: dict[str, int]
    crashes: int
    points: int

    @property
    def lost(self) -> tuple[str, ...]:
        return tuple(o for o in self.committed if self.applied.get(o, 0) == 0)

    @property
    def doubled(self) -> tuple[str, ...]:
        return tuple(o for o, count in self.applied.items() if count > 1)

    @property
    def redelivered(self) -> int:
        """Messages the broker holds more than once: the price of at-least-once."""
        return sum(count - 1 for count in self.published.values())


def place_order(pipe: Pipeline, crashes: Crashes, order_id: str, amount: int) -> None:
    """The service: the order and its message in one local transaction (or, naively,
    the order first and a direct publish after)."""
    conn = pipe.connect("service", SERVICE_SCHEMA)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT 1 FROM orders WHERE id = ?", (order_id,)).fetchone():
            conn.execute("ROLLBACK")  # a retried request: already placed
            return
        conn.execute("INSERT INTO orders VALUES (?, ?)", (order_id, amount))
        crashes.point("service: order written")
        if pipe.outbox:
            conn.execute(
                "INSERT INTO outbox (id, topic, payload) VALUES (?, 'orders', ?)",
                (order_id, str(amount)),
            )
            crashes.point("service: outbox row written")
        conn.execute("COMMIT")
        crashes.point("service: committed")
        if not pipe.outbox:
            _publish(pipe, order_id, str(amount))
            crashes.point("service: published directly")
    finally:
        conn.close()


def _publish(pipe: Pipeline, message_id: str, payload: str) -> None:
    broker = pipe.connect("broker", BROKER_SCHEMA)
    try:
        broker.execute("INSERT INTO log (id, payload) VALUES (?, ?)", (message_id, payload))
    finally:
        broker.close()


def relay(pipe: Pipeline, crashes: Crashes) -> int:
    """Publish every unsent outbox row, then mark it sent; returns how many it published."""
    if not pipe.outbox:
        return 0
    conn = pipe.connect("service", SERVICE_SCHEMA)
    try:
        rows = conn.execute("SELECT id, payload FROM outbox WHERE sent = 0 ORDER BY id").fetchall()
        for message_id, payload in rows:
            _publish(pipe, message_id, payload)
            crashes.point("relay: published")
            conn.execute("UPDATE outbox SET sent = 1 WHERE id = ?", (message_id,))
            crashes.point("relay: marked sent")
        return len(rows)
    finally:
        conn.close()


def consume(pipe: Pipeline, crashes: Crashes) -> int:
    """Apply every message after the consumer's read position; returns how many it read."""
    broker = pipe.connect("broker", BROKER_SCHEMA)
    conn = pipe.connect("consumer", CONSUMER_SCHEMA)
    try:
        row = conn.execute("SELECT position FROM cursor WHERE name = 'orders'").fetchone()
        start = row[0] if row else 0
        messages = broker.execute(
            "SELECT position, id, payload FROM log WHERE position > ? ORDER BY position", (start,)
        ).fetchall()
        for position, message_id, payload in messages:
            conn.execute("BEGIN IMMEDIATE")
            seen = conn.execute("SELECT 1 FROM processed WHERE id = ?", (message_id,)).fetchone()
            if not (pipe.dedup and seen):
                conn.execute("INSERT INTO shipments VALUES (?, ?)", (message_id, int(payload)))
                conn.execute("INSERT OR IGNORE INTO processed VALUES (?)", (message_id,))
            crashes.point("consumer: effect written")
            conn.execute("COMMIT")
            crashes.point("consumer: committed")
            conn.execute(
                "INSERT INTO cursor VALUES ('orders', ?) "
                "ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (position,),
            )
            crashes.point("consumer: position saved")
        return len(messages)
    finally:
        conn.close()
        broker.close()


def deliver(
    folder: Path,
    orders: Iterable[tuple[str, int]],
    crash_at: Iterable[int] = (),
    *,
    outbox: bool = True,
    dedup: bool = True,
) -> Report:
    """Place the orders, relay and consume until nothing is left, restarting after each
    crash; the client retries an order until its request returns."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("*.sqlite")):
        raise DTCourseError(f"{folder} already holds a run's databases; use an empty folder")
    pipe = Pipeline(folder, outbox, dedup)
    crashes = Crashes(frozenset(crash_at))
    wanted = list(orders)
    placed: set[str] = set()
    crashed = 0
    for _ in range(MAX_RESTARTS):
        try:
            for order_id, amount in wanted:
                if order_id not in placed:
                    place_order(pipe, crashes, order_id, amount)
                    placed.add(order_id)
            while relay(pipe, crashes) + consume(pipe, crashes):
                pass
            break
        except ProcessCrash:
            crashed += 1
    else:  # pragma: no cover - each crash point fires once, so restarts are bounded
        raise DTCourseError(f"the pipeline did not settle within {MAX_RESTARTS} restarts")
    return _report(pipe, crashes, crashed)


def _report(pipe: Pipeline, crashes: Crashes, crashed: int) -> Report:
    service = pipe.connect("service", SERVICE_SCHEMA)
    broker = pipe.connect("broker", BROKER_SCHEMA)
    consumer = pipe.connect("consumer", CONSUMER_SCHEMA)
    try:
        committed = tuple(r[0] for r in service.execute("SELECT id FROM orders ORDER BY id"))
        published = Counter(r[0] for r in broker.execute("SELECT id FROM log"))
        applied = Counter(r[0] for r in consumer.execute("SELECT order_id FROM shipments"))
    finally:
        for conn in (service, broker, consumer):
            conn.close()
    return Report(committed, dict(published), dict(applied), crashed, crashes.passed)


def verify(report: Report) -> None:
    """The outbox's guarantees; raises ``AssertionError`` naming what went wrong (even
    under ``python -O``, which strips ``assert`` statements)."""
    if report.lost:
        raise AssertionError(f"messages lost: orders {list(report.lost)} were never shipped")
    if report.doubled:
        raise AssertionError(f"effects applied twice: orders {list(report.doubled)}")
