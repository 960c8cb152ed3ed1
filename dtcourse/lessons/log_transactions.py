"""Exactly-once read-process-write over a log, the way Kafka's transactions do it.

A processor reads records from an input log, writes one output record per input record
to an output log, and records how far it has read (its *committed offset*) so that after
a crash it resumes where it left off. Those are two writes to two places, the dual write
of the outbox section all over again, and a crash between them repeats work:

* ``"at-least-once"``: write the output, then commit the offset. A crash in between makes
  the restarted processor read the same input again and write its output twice.
* ``"transactional"``: the outputs of a batch *and* its offset commit belong to one
  transaction. The processor registers under a fixed transactional id; starting up bumps
  the id's **epoch**, which fences any older instance still running (a *zombie*), and
  finishes whatever its predecessor left open: a transaction whose commit was already
  decided is rolled forward, any other is aborted. To commit, the **transaction
  coordinator** first writes "prepare commit" to its own log (the commit point), then
  appends a **commit marker** to every log the transaction wrote (the second phase),
  then "complete". Outputs are appended as they are produced, so a reader must choose:
  ``read_uncommitted`` sees every output record, including those of aborted and open
  transactions; ``read_committed`` sees only records of committed transactions and stops
  at the first open one.

Crashes are injected at numbered crash points, as in ``dtcourse.lessons.outbox``; a
crashed processor is restarted from the logs until the input is consumed. Logs, markers
and the coordinator's log survive a crash; the processor's memory does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dtcourse.errors import DTCourseError

__all__ = [
    "MODES",
    "Fenced",
    "LogRecord",
    "PipelineRun",
    "ProcessCrash",
    "crash_points",
    "pipeline",
    "read_committed",
    "read_uncommitted",
    "zombie_demo",
]

Mode = Literal["at-least-once", "transactional"]
MODES: tuple[str, ...] = ("at-least-once", "transactional")
TRANSACTIONAL_ID = "payments-processor"
MAX_RESTARTS = 100


class ProcessCrash(BaseException):  # noqa: N818 - a crash, not an error to handle
    """The processor died at a crash point."""


class Fenced(DTCourseError):
    """A write or commit from an instance whose epoch is no longer the current one."""


@dataclass(frozen=True)
class LogRecord:
    """One record of a log: data (``key``, ``value``) or a control marker.

    ``txn`` names the transaction that wrote a data record (None outside transactions);
    a marker record has ``marker`` set to ``"commit"`` or ``"abort"`` for ``txn``.
    """

    offset: int
    key: str
    value: int
    txn: str | None = None
    marker: Literal["commit", "abort"] | None = None


@dataclass
class _Log:
    name: str
    records: list[LogRecord] = field(default_factory=list)

    def append(self, key: str, value: int, txn: str | None = None,
               marker: Literal["commit", "abort"] | None = None) -> None:  # fmt: skip
        self.records.append(LogRecord(len(self.records), key, value, txn, marker))


def read_uncommitted(records: Sequence[LogRecord]) -> list[LogRecord]:
    """Every data record, whatever became of its transaction."""
    return [r for r in records if r.marker is None]


def read_committed(records: Sequence[LogRecord]) -> list[LogRecord]:
    """Data records outside transactions or of committed ones, up to the first record of a
    transaction that has no marker yet (it may still commit or abort)."""
    outcome = {r.txn: r.marker for r in records if r.marker is not None}
    seen: list[LogRecord] = []
    for record in records:
        if record.marker is not None:
            continue
        if record.txn is not None and record.txn not in outcome:
            break  # an open transaction: nothing after it is stable yet
        if record.txn is None or outcome[record.txn] == "commit":
            seen.append(record)
    return seen


@dataclass
class _Coordinator:
    """The transaction coordinator: the current epoch and state of the transactional id,
    kept in its own durable log."""

    epoch: int = 0
    state: str = "empty"  # "empty", "ongoing", "prepare commit", "complete"
    txn: str | None = None
    written: set[str] = field(default_factory=set)
    pending_offset: int | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class _World:
    """What survives a crash: the logs, the committed offsets, the coordinator."""

    input: _Log
    output: _Log = field(default_factory=lambda: _Log("ledger"))
    offsets: _Log = field(default_factory=lambda: _Log("offsets"))
    coordinator: _Coordinator = field(default_factory=_Coordinator)
    events: list[str] = field(default_factory=list)
    sequence: int = 0

    def committed_offset(self) -> int:
        stable = read_committed(self.offsets.records)
        return stable[-1].value if stable else 0

    def log_for(self, name: str) -> _Log:
        return self.output if name == "ledger" else self.offsets

    def markers(self, txn: str, marker: Literal["commit", "abort"], crashes: _Crashes) -> None:
        for name in sorted(self.coordinator.written):
            self.log_for(name).append("marker", 0, txn, marker)
            article = "an" if marker == "abort" else "a"
            self.events.append(f"coordinator writes {article} {marker} marker for {txn} in {name}")
            crashes.point(f"{marker} marker in {name}")

    # -- the coordinator's operations ------------------------------------------------

    def init(self, crashes: _Crashes) -> int:
        """A new instance registers: bump the epoch and finish what was left open."""
        c = self.coordinator
        c.epoch += 1
        c.log.append(f"epoch {c.epoch}")
        self.events.append(f"instance with epoch {c.epoch} registers")
        if c.state == "prepare commit" and c.txn is not None:
            self.events.append(f"coordinator rolls {c.txn} forward: its commit was decided")
            self.finish_commit(crashes)
        elif c.state == "ongoing" and c.txn is not None:
            self.events.append(f"coordinator aborts {c.txn}, left open by an older instance")
            self.markers(c.txn, "abort", crashes)
            c.state, c.written, c.pending_offset = "empty", set(), None
            c.log.append(f"abort {c.txn}")
        return c.epoch

    def check(self, epoch: int) -> None:
        if epoch != self.coordinator.epoch:
            raise Fenced(
                f"epoch {epoch} is fenced: epoch {self.coordinator.epoch} owns "
                f"{TRANSACTIONAL_ID} now"
            )

    def begin(self, epoch: int) -> str:
        self.check(epoch)
        self.sequence += 1
        txn = f"e{epoch}.t{self.sequence}"
        c = self.coordinator
        c.state, c.txn, c.written, c.pending_offset = "ongoing", txn, set(), None
        c.log.append(f"begin {txn}")
        return txn

    def produce(self, epoch: int, txn: str, key: str, value: int) -> None:
        self.check(epoch)
        self.output.append(key, value, txn)
        self.coordinator.written.add("ledger")

    def send_offsets(self, epoch: int, txn: str, offset: int) -> None:
        self.check(epoch)
        self.offsets.append("position", offset, txn)
        self.coordinator.written.add("offsets")
        self.coordinator.pending_offset = offset

    def commit(self, epoch: int, txn: str, crashes: _Crashes) -> None:
        self.check(epoch)
        c = self.coordinator
        c.state = "prepare commit"
        c.log.append(f"prepare commit {txn}")
        self.events.append(f"coordinator logs 'prepare commit' for {txn}: the commit point")
        crashes.point("prepare commit logged")
        self.finish_commit(crashes)

    def finish_commit(self, crashes: _Crashes) -> None:
        c = self.coordinator
        assert c.txn is not None
        self.markers(c.txn, "commit", crashes)
        c.log.append(f"complete commit {c.txn}")
        c.state, c.written, c.pending_offset = "complete", set(), None


@dataclass
class _Crashes:
    at: frozenset[int]
    passed: int = 0
    names: list[str] = field(default_factory=list)

    def point(self, name: str) -> None:
        self.passed += 1
        self.names.append(name)
        if self.passed in self.at:
            raise ProcessCrash(f"crash at point {self.passed} ({name})")


def _process(world: _World, mode: str, crashes: _Crashes, batch: int) -> None:
    """One processor instance, from start-up until the input is consumed (or it crashes)."""
    if mode == "at-least-once":
        while (position := world.committed_offset()) < len(world.input.records):
            record = world.input.records[position]
            world.output.append(record.key, record.value)
            world.events.append(f"writes output for {record.key}")
            crashes.point(f"output for {record.key} written")
            world.offsets.append("position", position + 1)
            world.events.append(f"commits offset {position + 1}")
            crashes.point(f"offset {position + 1} committed")
        return
    epoch = world.init(crashes)
    crashes.point("registered")
    while (position := world.committed_offset()) < len(world.input.records):
        chunk = world.input.records[position : position + batch]
        txn = world.begin(epoch)
        for record in chunk:
            world.produce(epoch, txn, record.key, record.value)
            world.events.append(f"{txn} writes output for {record.key}")
            crashes.point(f"output for {record.key} written")
        world.send_offsets(epoch, txn, position + len(chunk))
        world.events.append(f"{txn} adds offset {position + len(chunk)} to the transaction")
        crashes.point("offset added")
        world.commit(epoch, txn, crashes)


@dataclass(frozen=True)
class PipelineRun:
    """The logs after the input was consumed, and what each kind of reader sees."""

    mode: str
    input_keys: tuple[str, ...]
    output: tuple[LogRecord, ...]
    committed_view: tuple[str, ...]
    uncommitted_view: tuple[str, ...]
    crashes: int
    points: int
    point_names: tuple[str, ...]
    events: tuple[str, ...]

    def duplicates(self, view: str = "read_committed") -> tuple[str, ...]:
        """Input keys whose output a reader sees more than once."""
        keys = self.committed_view if view == "read_committed" else self.uncommitted_view
        return tuple(sorted(key for key, count in Counter(keys).items() if count > 1))

    @property
    def lost(self) -> tuple[str, ...]:
        """Input keys whose output a read_committed reader never sees."""
        return tuple(k for k in self.input_keys if k not in self.committed_view)

    @property
    def exactly_once(self) -> bool:
        return not self.lost and not self.duplicates()


def _inputs(count: int) -> _Log:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DTCourseError(f"records must be a positive number of input records, got {count!r}")
    log = _Log("payments")
    for i in range(1, count + 1):
        log.append(f"p{i}", 10 * i)
    return log


def pipeline(
    mode: str = "transactional", crash_at: Iterable[int] = (), *, records: int = 4,
    batch: int = 2,
) -> PipelineRun:  # fmt: skip
    """Process ``records`` input records, crashing at the given crash points (numbered
    from 1 over the whole run) and restarting until the input is consumed."""
    if mode not in MODES:
        raise DTCourseError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if batch < 1:
        raise DTCourseError(f"batch must be at least 1, got {batch!r}")
    world = _World(_inputs(records))
    crashes = _Crashes(frozenset(crash_at))
    crashed = 0
    for _ in range(MAX_RESTARTS):
        try:
            _process(world, mode, crashes, batch)
            break
        except ProcessCrash as crash:
            crashed += 1
            world.events.append(f"CRASH: {crash}; the processor restarts")
    else:  # pragma: no cover - only a bug in this module gets here
        raise DTCourseError(f"the pipeline did not finish after {MAX_RESTARTS} restarts")
    return PipelineRun(
        mode=mode,
        input_keys=tuple(r.key for r in world.input.records),
        output=tuple(world.output.records),
        committed_view=tuple(r.key for r in read_committed(world.output.records)),
        uncommitted_view=tuple(r.key for r in read_uncommitted(world.output.records)),
        crashes=crashed,
        points=crashes.passed,
        point_names=tuple(crashes.names),
        events=tuple(world.events),
    )


def crash_points(mode: str, *, records: int = 4, batch: int = 2) -> int:
    """How many crash points a run without crashes passes."""
    return pipeline(mode, records=records, batch=batch).points


def zombie_demo(records: int = 4) -> PipelineRun:
    """An instance stalls mid-transaction (a long pause, not a crash), a replacement takes
    over and processes everything, and then the stalled one wakes up and tries to commit.

    Its epoch has been bumped, so its commit is refused (fenced); its open transaction was
    aborted when the replacement registered, so readers never see its output.
    """
    world = _World(_inputs(records))
    crashes = _Crashes(frozenset())
    old = world.init(crashes)
    txn = world.begin(old)
    first = world.input.records[0]
    world.produce(old, txn, first.key, first.value)
    world.events.append(f"{txn} (epoch {old}) writes output for {first.key}, then stalls")
    _process(world, "transactional", crashes, batch=2)
    try:
        world.send_offsets(old, txn, 1)
        world.commit(old, txn, crashes)
    except Fenced as refused:
        world.events.append(f"the stalled instance wakes up and tries to commit: {refused}")
    return PipelineRun(
        mode="transactional",
        input_keys=tuple(r.key for r in world.input.records),
        output=tuple(world.output.records),
        committed_view=tuple(r.key for r in read_committed(world.output.records)),
        uncommitted_view=tuple(r.key for r in read_uncommitted(world.output.records)),
        crashes=0,
        points=crashes.passed,
        point_names=tuple(crashes.names),
        events=tuple(world.events),
    )
