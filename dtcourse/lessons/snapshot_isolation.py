"""Snapshot isolation at every site is not snapshot isolation across sites.

Each site here is a small multiversion store that gives the branches it runs snapshot
isolation: a branch reads the last versions committed before its snapshot, and it may
commit a write only if no other transaction committed a write to the same item after that
snapshot (first committer wins). A transaction that spans sites commits with two-phase
commit: ``prepare`` checks and locks its writes at every site, and ``commit`` installs
them one site at a time, so a commit reaches the sites at different moments, as it does
in any real system.

What "committed before the snapshot" means depends on the clock:

* ``"local"``: each site counts its own commits. A branch takes its snapshot from the
  site's counter when the transaction first touches that site, and each site stamps a
  commit with its own next number. Every site is snapshot isolated on its own, but a
  transaction's snapshots at two sites need not describe one moment: an audit can see a
  transfer's debit at one bank and not its credit at the other.
* ``"oracle"``: one timestamp oracle, as in Percolator, hands out a start timestamp when a
  transaction begins and a commit timestamp once it has prepared everywhere. Every branch
  reads at the start timestamp and every site stamps the commit with the same number. A
  read that meets a write whose commit timestamp is below its snapshot, but which has not
  reached this site yet, waits for it (Percolator's reader cannot tell whether a lock's
  owner already has its commit timestamp, so it waits for any older lock; this simulation
  knows, and waits only when it must). Every transaction then reads one snapshot.

``run_schedule`` executes a schedule of steps under one clock and returns what each
transaction read, the history in the course's notation (for the precedence graphs of
``dtcourse.lessons.histories``), and the reads that broke atomic visibility: a
transaction that saw some of another transaction's writes and not the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dtcourse.errors import DTCourseError

__all__ = [
    "BANKS",
    "CLOCKS",
    "Read",
    "SIRun",
    "Step",
    "audit_demo",
    "begin",
    "commit",
    "prepare",
    "read",
    "run_schedule",
    "transfer_and_audit",
    "write",
]

Clock = Literal["local", "oracle"]
CLOCKS: tuple[str, ...] = ("local", "oracle")
Action = Literal["begin", "read", "write", "prepare", "commit"]
Key = tuple[str, str]  # (item, site)

_TXN = re.compile(r"^T(\d+)$")

#: Alice's balance x at bank A and Bob's balance y at bank B, as in Phase 1.
BANKS: Mapping[Key, int] = {("x", "A"): 500, ("y", "B"): 200}


@dataclass(frozen=True)
class Step:
    """One step of a schedule: a transaction begins, reads, writes, prepares or commits.

    ``commit`` with no site installs the transaction's writes at every site it has not
    committed at yet (a read-only transaction just finishes).
    """

    txn: str
    action: Action
    item: str | None = None
    site: str | None = None
    value: int | None = None

    def __str__(self) -> str:
        match self.action:
            case "read":
                return f"{self.txn} reads {self.item}@{self.site}"
            case "write":
                return f"{self.txn} writes {self.item}@{self.site} = {self.value}"
            case "commit" if self.site is not None:
                return f"{self.txn} commits at {self.site}"
        return f"{self.txn} {self.action}s"


def begin(txn: str) -> Step:
    return Step(txn, "begin")


def read(txn: str, item: str, site: str) -> Step:
    return Step(txn, "read", item, site)


def write(txn: str, item: str, site: str, value: int) -> Step:
    return Step(txn, "write", item, site, value)


def prepare(txn: str) -> Step:
    return Step(txn, "prepare")


def commit(txn: str, site: str | None = None) -> Step:
    return Step(txn, "commit", site=site)


@dataclass(frozen=True)
class Read:
    """A value a transaction read, and whose write it was (None: the initial value)."""

    txn: str
    item: str
    site: str
    value: int
    writer: str | None
    snapshot: int
    waited: bool = False


@dataclass(frozen=True)
class SIRun:
    """What a schedule did under one clock."""

    clock: str
    reads: tuple[Read, ...]
    history: str
    committed: tuple[str, ...]
    aborted: tuple[str, ...]
    fractured: tuple[str, ...]
    waiting: tuple[str, ...]
    log: tuple[str, ...]

    @property
    def snapshot_consistent(self) -> bool:
        """No transaction saw part of another's writes (atomic visibility held)."""
        return not self.fractured

    def value(self, txn: str, item: str, site: str) -> int:
        """The value ``txn`` read for ``item`` at ``site`` (its last read of it)."""
        found = [r for r in self.reads if (r.txn, r.item, r.site) == (txn, item, site)]
        if not found:
            raise DTCourseError(f"{txn} never read {item}@{site} in this run")
        return found[-1].value

    def total(self, txn: str) -> int:
        """The sum of the last value ``txn`` read of each item: an auditor's total."""
        last = {(r.item, r.site): r.value for r in self.reads if r.txn == txn}
        return sum(last.values())

    def summary(self) -> str:
        lines = [f"clock: {self.clock}", f"history: {self.history}"]
        for r in self.reads:
            origin = f"{r.writer}'s write" if r.writer else "the initial value"
            waited = " (after waiting)" if r.waited else ""
            lines.append(f"  {r.txn} read {r.item}@{r.site} = {r.value}, {origin}{waited}")
        lines.append("snapshot consistent" if self.snapshot_consistent else "NOT snapshot "
                     "consistent: " + "; ".join(self.fractured))  # fmt: skip
        if self.aborted:
            lines.append(f"aborted: {', '.join(self.aborted)}")
        if self.waiting:
            lines.append(f"still waiting at the end: {'; '.join(self.waiting)}")
        return "\n".join(lines)


# --- the stores ------------------------------------------------------------------------


@dataclass
class _Version:
    value: int
    writer: str
    stamp: int


@dataclass
class _Site:
    name: str
    clock: int = 0
    versions: dict[str, list[_Version]] = field(default_factory=dict)
    locks: dict[str, str] = field(default_factory=dict)


@dataclass
class _Txn:
    name: str
    start: int | None = None
    snapshots: dict[str, int] = field(default_factory=dict)
    writes: dict[Key, int] = field(default_factory=dict)
    prepared: bool = False
    stamp: int | None = None
    installed: set[str] = field(default_factory=set)
    aborted: bool = False
    committing: bool = False

    @property
    def number(self) -> str:
        found = _TXN.match(self.name)
        assert found is not None  # checked when the transaction is created
        return found[1]

    def write_sites(self) -> list[str]:
        return sorted({site for _, site in self.writes})


@dataclass
class _Op:
    """An operation of the history, in real-time order; reads know the version they read."""

    action: str  # "r" or "w"
    txn: str
    item: str
    site: str
    version: str | None = None  # for a read: the writer of the version read

    def text(self, number: str) -> str:
        return f"{self.action}{number}[{self.item}]@{self.site}"


class _Run:
    def __init__(self, clock: str, initial: Mapping[Key, int]) -> None:
        if clock not in CLOCKS:
            raise DTCourseError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
        self.clock = clock
        self.initial = dict(initial)
        self.oracle = 0
        self.sites: dict[str, _Site] = {}
        self.txns: dict[str, _Txn] = {}
        self.reads: list[Read] = []
        self.ops: list[_Op] = []
        self.log: list[str] = []
        self.blocked: dict[str, list[Step]] = {}
        self.resuming = False

    # -- helpers ---------------------------------------------------------------------

    def site(self, name: str) -> _Site:
        return self.sites.setdefault(name, _Site(name))

    def txn(self, name: str) -> _Txn:
        if name not in self.txns:
            if not _TXN.match(name):
                raise DTCourseError(
                    f"transaction names are T followed by a number (T1, T2, ...), got {name!r}"
                )
            self.txns[name] = _Txn(name)
        return self.txns[name]

    def snapshot(self, txn: _Txn, site: str) -> int:
        if self.clock == "oracle":
            if txn.start is None:
                self.start(txn)
            assert txn.start is not None
            return txn.start
        if site not in txn.snapshots:
            txn.snapshots[site] = self.site(site).clock
        return txn.snapshots[site]

    def start(self, txn: _Txn) -> None:
        if self.clock == "oracle" and txn.start is None:
            self.oracle += 1
            txn.start = self.oracle
            self.log.append(f"{txn.name} begins: start timestamp {txn.start} from the oracle")
        elif self.clock == "local":
            self.log.append(f"{txn.name} begins: each site will give it a snapshot of its own")

    # -- steps -----------------------------------------------------------------------

    def step(self, step: Step) -> None:
        if not isinstance(step, Step):
            raise DTCourseError(f"a schedule holds Step values (begin, read, ...), not {step!r}")
        txn = self.txn(step.txn)
        if txn.aborted and step.action != "begin":
            self.log.append(f"{step}: skipped, {txn.name} has aborted")
            return
        if step.txn in self.blocked:
            self.blocked[step.txn].append(step)
            self.log.append(f"{step}: queued behind {txn.name}'s waiting read")
            return
        if not self.perform(txn, step):
            self.blocked[txn.name] = [step]

    def perform(self, txn: _Txn, step: Step, *, waited: bool = False) -> bool:
        """Run one step; False when it must wait (a read behind a commit in flight)."""
        match step.action:
            case "begin":
                self.start(txn)
            case "read":
                item, site = _need(step.item, step), _need(step.site, step)
                return self.read(txn, item, site, waited=waited)
            case "write":
                if step.value is None:
                    raise DTCourseError(f"{step}: a write needs a value")
                site = _need(step.site, step)
                self.snapshot(txn, site)
                txn.writes[(_need(step.item, step), site)] = step.value
                self.log.append(f"{step} (buffered until commit)")
            case "prepare":
                self.prepare(txn)
            case "commit":
                self.commit(txn, step.site)
            case _:
                raise DTCourseError(f"unknown action in {step!r}")
        return True

    def read(self, txn: _Txn, item: str, site: str, *, waited: bool = False) -> bool:
        snapshot = self.snapshot(txn, site)
        own = txn.writes.get((item, site))
        if own is not None:
            self.record(Read(txn.name, item, site, own, txn.name, snapshot, waited))
            return True
        store = self.site(site)
        holder = store.locks.get(item)
        if holder is not None and holder != txn.name:
            owner = self.txns[holder]
            if owner.stamp is not None and owner.stamp <= snapshot and site not in owner.installed:
                self.log.append(
                    f"{txn.name} reads {item}@{site}: waits, {holder} committed at "
                    f"timestamp {owner.stamp} <= {snapshot} but has not reached {site} yet"
                )
                return False
        visible = [v for v in store.versions.get(item, []) if v.stamp <= snapshot]
        if visible:
            value, writer = visible[-1].value, visible[-1].writer
        else:
            if (item, site) not in self.initial:
                raise DTCourseError(
                    f"{txn.name} reads {item}@{site}, which has no initial value; give one in "
                    "initial={(item, site): value}"
                )
            value, writer = self.initial[(item, site)], None
        self.record(Read(txn.name, item, site, value, writer, snapshot, waited))
        return True

    def record(self, found: Read) -> None:
        self.reads.append(found)
        self.ops.append(_Op("r", found.txn, found.item, found.site, found.writer))
        origin = f"{found.writer}'s write" if found.writer else "the initial value"
        self.log.append(
            f"{found.txn} reads {found.item}@{found.site} at snapshot {found.snapshot}: "
            f"{found.value} ({origin})"
        )

    def prepare(self, txn: _Txn) -> None:
        problems = []
        for (item, site), _ in sorted(txn.writes.items()):
            store = self.site(site)
            holder = store.locks.get(item)
            if holder is not None and holder != txn.name:
                problems.append(f"{item}@{site} is locked by {holder}")
            newer = [v for v in store.versions.get(item, []) if v.stamp > self.snapshot(txn, site)]
            if newer:
                problems.append(
                    f"{newer[-1].writer} committed {item}@{site} after {txn.name}'s snapshot "
                    "(first committer wins)"
                )
        if problems:
            txn.aborted = True
            self.log.append(f"{txn.name} prepares: votes no and aborts: {'; '.join(problems)}")
            return
        for item, site in txn.writes:
            self.site(site).locks[item] = txn.name
        txn.prepared = True
        where = ", ".join(txn.write_sites()) or "no site (read-only)"
        self.log.append(f"{txn.name} prepares at {where}: every site votes yes, writes locked")

    def commit(self, txn: _Txn, only: str | None) -> None:
        if txn.writes and not txn.prepared:
            raise DTCourseError(
                f"{txn.name} commits before it prepared: add prepare({txn.name!r}) first"
            )
        txn.committing = True
        if self.clock == "oracle" and txn.writes and txn.stamp is None:
            self.oracle += 1
            txn.stamp = self.oracle
            self.log.append(f"{txn.name} gets commit timestamp {txn.stamp} from the oracle")
        sites = [only] if only is not None else txn.write_sites()
        if not txn.writes:
            self.log.append(f"{txn.name} commits (read-only)")
        for name in sites:
            if name in txn.installed or name not in txn.write_sites():
                continue
            store = self.site(name)
            if self.clock == "local":
                store.clock += 1
                stamp = store.clock
            else:
                assert txn.stamp is not None
                stamp = txn.stamp
            for (item, site), value in sorted(txn.writes.items()):
                if site != name:
                    continue
                store.versions.setdefault(item, []).append(_Version(value, txn.name, stamp))
                store.locks.pop(item, None)
                self.ops.append(_Op("w", txn.name, item, site))
            txn.installed.add(name)
            self.log.append(f"{txn.name} commits at {name} (version stamped {stamp})")
            self.resume()

    def resume(self) -> None:
        """Retry the waiting transactions, oldest wait first, after a commit landed.

        A resumed step may itself commit and unblock others, so this loops until nothing
        moves; the guard keeps a commit made while resuming from re-entering.
        """
        if self.resuming:
            return
        self.resuming = True
        try:
            moved = True
            while moved:
                moved = False
                for name in list(self.blocked):
                    queue, txn = self.blocked[name], self.txns[name]
                    while queue:
                        head = queue.pop(0)
                        if not self.perform(txn, head, waited=True):
                            queue.insert(0, head)
                            break
                        moved = True
                    if not queue:
                        del self.blocked[name]
        finally:
            self.resuming = False

    # -- the result ------------------------------------------------------------------

    def version_order(self) -> dict[Key, list[str]]:
        """The writers of each item at each site, oldest version first."""
        return {
            (item, site.name): [v.writer for v in versions]
            for site in self.sites.values()
            for item, versions in site.versions.items()
        }

    def result(self) -> SIRun:
        committed = tuple(
            t.name for t in self.txns.values()
            if not t.aborted and t.name not in self.blocked
            and (t.committing or not t.writes)
        )  # fmt: skip
        aborted = tuple(t.name for t in self.txns.values() if t.aborted)
        ops = _serialize(self.ops)
        numbers = {t.name: t.number for t in self.txns.values()}
        parts = [op.text(numbers[op.txn]) for op in ops]
        parts += [f"c{numbers[name]}" for name in committed]
        parts += [f"a{numbers[name]}" for name in aborted]
        waiting = tuple(
            f"{name} waits to read {queue[0].item}@{queue[0].site}"
            for name, queue in self.blocked.items()
        )
        return SIRun(
            clock=self.clock,
            reads=tuple(self.reads),
            history=" ".join(parts),
            committed=committed,
            aborted=aborted,
            fractured=_fractured(self.reads, self.txns, committed, self.version_order()),
            waiting=waiting,
            log=tuple(self.log),
        )


def _need(value: str | None, step: Step) -> str:
    if value is None:
        raise DTCourseError(f"{step.action} step of {step.txn} needs an item and a site")
    return value


def _serialize(ops: Sequence[_Op]) -> list[_Op]:
    """The operations in real-time order, except that a read of an older version is moved
    before the write that replaced it: conflict order follows versions, not wall time."""
    ordered = list(ops)
    index = 0
    while index < len(ordered):
        op = ordered[index]
        if op.action == "r":
            key = (op.item, op.site)
            same = [
                i for i in range(index)
                if ordered[i].action == "w" and (ordered[i].item, ordered[i].site) == key
            ]  # fmt: skip
            read_from = max(
                (i for i in same if ordered[i].txn == op.version), default=-1
            )
            later = [i for i in same if i > read_from and ordered[i].txn != op.txn]
            if later:
                ordered.insert(later[0], ordered.pop(index))
        index += 1
    return ordered


def _fractured(
    reads: Sequence[Read],
    txns: Mapping[str, _Txn],
    committed: Iterable[str],
    order: Mapping[Key, list[str]],
) -> tuple[str, ...]:
    """Readers that saw some, but not all, of a committed writer's writes that they read."""
    alive = set(committed)
    found: list[str] = []
    for reader in sorted({r.txn for r in reads}):
        last = {(r.item, r.site): r for r in reads if r.txn == reader}
        for writer in sorted(alive - {reader}):
            written = txns[writer].writes
            keys = sorted(k for k in last if k in written)
            if len(keys) < 2:
                continue
            saw = {k: _saw(last[k], writer, order.get(k, [])) for k in keys}
            if len(set(saw.values())) > 1:
                seen = [f"{i}@{s}" for (i, s), v in saw.items() if v]
                missed = [f"{i}@{s}" for (i, s), v in saw.items() if not v]
                found.append(
                    f"{reader} saw {writer}'s write of {', '.join(seen)} "
                    f"but not of {', '.join(missed)}"
                )
    return tuple(found)


def _saw(found: Read, writer: str, writers: Sequence[str]) -> bool:
    """Did the version read include ``writer``'s write: is it ``writer``'s version or a
    later one of the same item at the same site?"""
    if found.writer is None or writer not in writers or found.writer not in writers:
        return False
    return writers.index(found.writer) >= writers.index(writer)


def run_schedule(
    schedule: Iterable[Step], *, clock: str = "local", initial: Mapping[Key, int] = BANKS
) -> SIRun:
    """Execute the steps in order under ``clock`` (``"local"`` or ``"oracle"``)."""
    run = _Run(clock, initial)
    for step in schedule:
        run.step(step)
    return run.result()


def transfer_and_audit() -> tuple[Step, ...]:
    """The reading's schedule: T1 moves 100 from Alice (x at bank A) to Bob (y at bank B)
    and its commit reaches bank A first; T2, an audit, reads both balances in between."""
    return (
        begin("T1"),
        read("T1", "x", "A"),
        write("T1", "x", "A", 400),
        read("T1", "y", "B"),
        write("T1", "y", "B", 300),
        prepare("T1"),
        commit("T1", "A"),
        begin("T2"),
        read("T2", "x", "A"),
        read("T2", "y", "B"),
        commit("T1", "B"),
        commit("T2"),
    )


def audit_demo(clock: str = "local") -> SIRun:
    """The transfer and the audit under one clock, over the reading's two banks."""
    return run_schedule(transfer_and_audit(), clock=clock, initial=BANKS)
