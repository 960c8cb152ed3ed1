"""The bank workload and its crash torture.

Accounts are spread over N participants (account ``a`` lives at participant
``a % N``); a transfer debits one account and credits another at a different participant,
so every transfer is a distributed transaction. The invariant is the total balance.

The torture runs transfers in a real child process (``python -m dtcourse.db.child``) and
kills it (SIGKILL on POSIX, ``Popen.kill`` elsewhere), either at a named point of the
protocol (see ``crash_points``) or after a random delay, which lands anywhere: inside a
SQLite commit, between two statements, while writing an acknowledgement. The child appends
``begin``, ``ack`` and ``abort`` lines to a file; an ``ack`` is written once the commit
record is forced, which is when a client may be told "committed". After each crash the
parent runs the coordinator's recovery (the step under test) and checks, from what the
databases say:

* the total balance is unchanged;
* no branch is left in doubt;
* every transaction committed at all of its participants or at none (atomicity);
* every acknowledged transaction committed (no acknowledged transfer lost).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dtcourse.db.base import ResourceManager, Update, total
from dtcourse.db.coordinator import Coordinator, DecisionLog, RecoveryStep, crash_points
from dtcourse.errors import DatabaseError

BACKENDS: tuple[str, ...] = ("sqlite", "postgres")
INITIAL_BALANCE = 1000
LOG_FILE = "coordinator.db"


@dataclass(frozen=True)
class Site:
    """Where one participant lives: a SQLite file or a PostgreSQL DSN."""

    backend: str
    name: str
    location: str


@dataclass(frozen=True)
class Transfer:
    source: int
    target: int
    amount: int


def participant_name(index: int) -> str:
    return f"p{index + 1}"


def home(account: int, participants: int) -> str:
    return participant_name(account % participants)


def sqlite_sites(workdir: Path, participants: int) -> list[Site]:
    return [
        Site("sqlite", participant_name(i), str(workdir / f"{participant_name(i)}.db"))
        for i in range(participants)
    ]


def postgres_sites(dsns: Sequence[str]) -> list[Site]:
    return [Site("postgres", participant_name(i), dsn) for i, dsn in enumerate(dsns)]


def open_site(site: Site, lock_timeout: float = 2.0, synchronous: str = "FULL") -> ResourceManager:
    if site.backend == "sqlite":
        from dtcourse.db.sqlite_rm import SqliteResourceManager

        return SqliteResourceManager(
            site.location, site.name, lock_timeout=lock_timeout, synchronous=synchronous
        )
    if site.backend == "postgres":
        from dtcourse.db.postgres_rm import PostgresResourceManager

        return PostgresResourceManager(site.location, site.name, lock_timeout=lock_timeout)
    raise DatabaseError(f"unknown backend {site.backend!r}: use one of {', '.join(BACKENDS)}")


def plan_transfers(rng: random.Random, accounts: int, participants: int, count: int) -> list[
    Transfer
]:
    """Random transfers, each between accounts at two different participants when N > 1."""
    plan = []
    for _ in range(count):
        source = rng.randrange(accounts)
        target = rng.randrange(accounts)
        while target == source or (
            participants > 1 and home(target, participants) == home(source, participants)
        ):
            target = rng.randrange(accounts)
        plan.append(Transfer(source, target, rng.randint(1, 50)))
    return plan


def transfer_work(transfer: Transfer, participants: int) -> dict[str, list[Update]]:
    work: dict[str, list[Update]] = {}
    work.setdefault(home(transfer.source, participants), []).append(
        Update(transfer.source, -transfer.amount)
    )
    work.setdefault(home(transfer.target, participants), []).append(
        Update(transfer.target, transfer.amount)
    )
    return work


def check_shape(participants: int, accounts: int, transfers: int) -> None:
    if participants < 1:
        raise DatabaseError(f"--participants must be at least 1, got {participants}")
    if accounts < max(2, participants):
        raise DatabaseError(
            f"--accounts must be at least 2 and at least the number of participants "
            f"({participants}), got {accounts}"
        )
    if transfers < 0:
        raise DatabaseError(f"--transfers must be 0 or more, got {transfers}")


@contextmanager
def bank_sites(
    backend: str, participants: int, workdir: Path, dsns: Sequence[str] = ()
) -> Iterator[list[Site]]:
    """Sites for a bank run; for PostgreSQL without DSNs, a throwaway cluster meanwhile."""
    if backend == "sqlite":
        if dsns:
            raise DatabaseError("--dsn is for the postgres backend; use --workdir for sqlite")
        yield sqlite_sites(workdir, participants)
    elif backend == "postgres":
        if dsns:
            yield postgres_sites(dsns)
            return
        from dtcourse.db.pgcluster import throwaway_cluster

        with throwaway_cluster() as cluster:
            names = [participant_name(i) for i in range(participants)]
            yield postgres_sites([cluster.createdb(name) for name in names])
    else:
        raise DatabaseError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")


def create_bank(rms: Sequence[ResourceManager], accounts: int, log: DecisionLog) -> int:
    """Fresh accounts with ``INITIAL_BALANCE`` each, after discarding what an old run left.

    Branches an old run left in doubt are rolled back: the accounts are made afresh, so
    their outcome no longer matters, and their locks must go. Returns how many there were.
    """
    leftovers = _roll_back_leftovers(Coordinator(log, rms))
    _replace_bank(rms, accounts, log)
    return leftovers


def _roll_back_leftovers(coordinator: Coordinator) -> int:
    """Roll back every branch in doubt; returns how many there were."""
    leftovers = coordinator.in_doubt()
    for branch in leftovers:
        coordinator.resolve(branch, commit=False)
    return len(leftovers)


def _replace_bank(rms: Sequence[ResourceManager], accounts: int, log: DecisionLog) -> None:
    for index, rm in enumerate(rms):
        rm.create_bank({a: INITIAL_BALANCE for a in range(accounts) if a % len(rms) == index})
    log.clear()


@dataclass(frozen=True)
class BankStart:
    """How a run found its bank: ``note`` says whether it continued it or made a new one."""

    run: str  # the gtrid prefix of this run, unique in the coordinator's log
    continued: bool
    note: str
    resolved: int  # in-doubt branches an earlier, interrupted run left and recovery resolved


def _accounts_at(rm: ResourceManager) -> set[int] | None:
    """The accounts a participant holds; None when it holds no bank at all."""
    try:
        return set(rm.balances())
    except DatabaseError:
        return None


def _bank_mismatch(rms: Sequence[ResourceManager], accounts: int) -> str | None:
    """Why the participants' bank is not one of ``accounts`` accounts over them; None if it is.

    A bank of another shape cannot be continued: the workload puts account ``a`` at
    participant ``a % N``, and the totals would not be comparable.
    """
    found: list[set[int]] = []
    for rm in rms:
        ids = _accounts_at(rm)
        if ids is None:
            return f"participant {rm.name} holds no bank"
        found.append(ids)
    expected = [{a for a in range(accounts) if a % len(rms) == i} for i in range(len(rms))]
    if found == expected:
        return None
    return (
        f"the bank there has {sum(len(ids) for ids in found)} accounts, not {accounts} over "
        f"{len(rms)} participants"
    )


def open_bank(
    rms: Sequence[ResourceManager],
    accounts: int,
    log: DecisionLog,
    *,
    fresh: bool = False,
    where: str = "the participants",
    recovery: RecoveryStep | None = None,
) -> BankStart:
    """Continue the bank the participants hold, or make a new one; start a run in the log.

    An interrupted earlier run may have left branches in doubt. A bank made anew rolls them
    back (its accounts are new, so their outcome no longer matters); a continued bank needs
    their real outcome, so ``recovery`` (the step of exercise p2.recovery) resolves them,
    and without one the run stops and says how to resolve them. The bank is continued when
    it has the requested shape and ``fresh`` is False; its balances then carry over and the
    run's totals are checked against what it held. Every run gets a new gtrid prefix from
    the log, so no gtrid is used twice, even in a bank made anew with the same seed.
    """
    coordinator = Coordinator(log, rms)
    mismatch = _bank_mismatch(rms, accounts)
    continuing = mismatch is None and not fresh
    leftovers = coordinator.in_doubt()
    resolved = 0
    if leftovers and continuing:
        if recovery is None:
            raise DatabaseError(
                f"the bank in {where} has {len(leftovers)} branch(es) in doubt from an "
                "interrupted run: pass --recovery FILE.py:NAME to resolve them with your "
                "step, decide each with `dtcourse resolve GID --commit|--abort`, or start "
                "a new bank with --fresh"
            )
        resolved = len(coordinator.recover(recovery).actions)
    elif leftovers:
        resolved = _roll_back_leftovers(coordinator)
    if continuing:
        note = (
            f"continuing the bank in {where} ({accounts} accounts, total {total(rms)}); "
            "--fresh starts a new one"
        )
    else:
        if mismatch is None:
            note = f"new bank in {where}, replacing the one there (--fresh)"
        elif all(_accounts_at(rm) is None for rm in rms):
            note = f"new bank in {where}"
        else:
            note = f"new bank in {where}, replacing the old one: {mismatch}"
        _replace_bank(rms, accounts, log)
    return BankStart(log.start_run(), continuing, note, resolved)


def _where(backend: str, workdir: Path, dsns: Sequence[str]) -> str:
    if backend != "postgres":
        return str(workdir)
    return "the --dsn databases" if dsns else "a throwaway PostgreSQL cluster"


def default_workdir() -> Path:
    """Where ``dtcourse bank``, ``indoubt`` and ``resolve`` keep SQLite sites and the log."""
    configured = os.environ.get("DTCOURSE_BANK_DIR")
    if configured:
        return Path(configured)
    import platformdirs

    return platformdirs.user_data_path("dtcourse") / "bank"


@dataclass(frozen=True)
class BankReport:
    """The result of ``dtcourse bank``."""

    backend: str
    participants: int
    accounts: int
    transfers: int
    committed: int
    aborted: int
    in_doubt_resolved: int
    crashes: int
    total_before: int
    total_after: int
    seconds: float
    forced_writes: int | None
    violations: tuple[str, ...] = ()
    run: str = ""  # the gtrid prefix of this run
    continued: bool = False  # True when this run went on with an existing bank
    note: str = ""  # which bank the run used, in words

    @property
    def transfers_per_second(self) -> float:
        return self.transfers / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and self.total_before == self.total_after

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {
            "transfers_per_second": round(self.transfers_per_second, 1),
            "ok": self.ok,
        }


def run_bank(
    backend: str = "sqlite",
    *,
    workdir: Path,
    dsns: Sequence[str] = (),
    participants: int = 3,
    accounts: int = 12,
    transfers: int = 100,
    crash_every: int = 0,
    seed: int = 0,
    recovery: RecoveryStep | None = None,
    fresh: bool = False,
) -> BankReport:
    """Run the bank: in this process, or with a crash every ``crash_every`` transfers, each
    followed by recovery with ``recovery`` (your step from exercise p2.recovery).

    A bank already in ``workdir`` (or at ``dsns``) with the same shape is continued unless
    ``fresh``; the report's ``note`` says which (see ``open_bank``).
    """
    if dsns:
        participants = len(dsns)
    check_shape(participants, accounts, transfers)
    if crash_every < 0:
        raise DatabaseError(f"--crash-every must be 0 (no crashes) or more, got {crash_every}")
    workdir.mkdir(parents=True, exist_ok=True)
    if crash_every:
        if recovery is None:
            raise DatabaseError(
                "--crash-every needs the coordinator's recovery step: --recovery FILE.py:NAME, "
                "your step(log, in_doubt) from exercise p2.recovery"
            )
        report = torture(
            recovery,
            backend=backend, transfers=transfers, seed=seed, participants=participants,
            accounts=accounts, batch=crash_every, dsns=dsns, workdir=workdir, fresh=fresh,
        )
        return BankReport(
            backend, participants, accounts, report.transfers, report.committed,
            report.aborted, report.resolved, report.crashes, report.balance_before,
            report.balance_after, report.seconds, None, report.violations,
            run=report.run, continued=report.continued, note=report.note,
        )
    with ExitStack() as stack:
        sites = stack.enter_context(bank_sites(backend, participants, workdir, dsns))
        rms = [stack.enter_context(open_site(site)) for site in sites]
        log = stack.enter_context(DecisionLog(workdir / LOG_FILE))
        start = open_bank(
            rms, accounts, log, fresh=fresh, where=_where(backend, workdir, dsns),
            recovery=recovery,
        )
        coordinator = Coordinator(log, rms)
        before, forced_before = total(rms), coordinator.forced_writes
        plan = plan_transfers(random.Random(seed), accounts, len(rms), transfers)
        started = time.perf_counter()
        committed = 0
        for index, transfer in enumerate(plan):
            work = transfer_work(transfer, len(rms))
            committed += coordinator.run(f"{start.run}-{index}", work).committed
        seconds = time.perf_counter() - started
        return BankReport(
            backend, len(rms), accounts, transfers, committed, transfers - committed,
            start.resolved, 0, before, total(rms), seconds,
            coordinator.forced_writes - forced_before,
            run=start.run, continued=start.continued, note=start.note,
        )


# -- the crash torture ------------------------------------------------------------------

#: The exit status of a torture child that ended itself at its crash point where the
#: platform has no SIGKILL (128 + 9, what a shell reports for a SIGKILL).
KILLED_EXIT = 137


def was_killed(returncode: int) -> bool:
    """Whether a torture child died the way a crash kills it (SIGKILL, or ``KILLED_EXIT``)."""
    sigkill = getattr(signal, "SIGKILL", None)
    return returncode == KILLED_EXIT or (sigkill is not None and returncode == -sigkill)


@dataclass(frozen=True)
class TortureReport:
    """What the torture saw; ``ok`` is True when every check held after every crash."""

    backend: str
    transfers: int
    crashes: int
    committed: int
    aborted: int
    resolved: int
    balance_before: int
    balance_after: int
    in_doubt_left: int
    lost_acknowledged: int
    partial_commits: int = 0
    violations: tuple[str, ...] = ()
    seconds: float = 0.0
    run: str = ""  # the gtrid prefix of this run
    continued: bool = False  # True when the run went on with an existing bank
    note: str = ""  # which bank the run used, in words
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ok", not self.violations)

    def __str__(self) -> str:
        lines = [
            f"crash torture on {self.backend}: {'OK' if self.ok else 'FAILED'}",
            f"  transfers exposed to crashes: {self.transfers} ({self.crashes} crashes)",
            f"  committed {self.committed}, aborted {self.aborted}, "
            f"in-doubt branches resolved {self.resolved}",
            f"  total balance before {self.balance_before}, after {self.balance_after}",
            f"  left in doubt {self.in_doubt_left}, acknowledged but lost "
            f"{self.lost_acknowledged}, partially committed {self.partial_commits}",
        ]
        lines += [f"  violation: {v}" for v in self.violations[:5]]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Journal:
    """The child's begin/ack/abort lines, as read back after it died."""

    begun: dict[str, tuple[str, ...]]
    acked: frozenset[str]

    @classmethod
    def read(cls, path: Path) -> _Journal:
        begun: dict[str, tuple[str, ...]] = {}
        acked: set[str] = set()
        if path.exists():
            for line in path.read_text().splitlines(keepends=True):
                if not line.endswith("\n"):
                    continue  # torn by the kill
                kind, gtrid, *rest = line.split()
                if kind == "begin":
                    begun[gtrid] = tuple(rest[0].split(","))
                elif kind == "ack":
                    acked.add(gtrid)
        return cls(begun, frozenset(acked))


def _run_child(config: dict, scratch: Path, kill_after: float | None) -> tuple[bool, float]:
    """Run one child batch; return (killed, seconds the batch ran)."""
    config_path = scratch / f"round-{config['round']}.json"
    config_path.write_text(json.dumps(config))
    stderr_path = scratch / f"round-{config['round']}.stderr"
    killed = False
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dtcourse.db.child", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            ready = proc.stdout.readline() if proc.stdout else ""
            started = time.monotonic()
            if ready.strip() == "ready" and kill_after is not None:
                try:
                    proc.wait(timeout=kill_after)
                except subprocess.TimeoutExpired:
                    proc.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
                    killed = True
            code = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
    killed = killed or was_killed(code)
    if code != 0 and not killed:
        tail = stderr_path.read_text().strip().splitlines()
        raise DatabaseError(
            f"the torture's child process failed (exit {code}): "
            f"{tail[-1] if tail else 'no message'}"
        )
    return killed, time.monotonic() - started


def torture(
    recovery: RecoveryStep,
    backend: str = "sqlite",
    transfers: int = 200,
    seed: int = 0,
    *,
    participants: int = 3,
    accounts: int = 12,
    batch: int = 8,
    random_share: float = 0.3,
    dsns: Sequence[str] = (),
    workdir: Path | str | None = None,
    stop_on_violation: bool = True,
    synchronous: str = "NORMAL",
    fresh: bool = False,
) -> TortureReport:
    """Crash a real process running transfers, recover with ``recovery``, check invariants.

    Every child process runs up to ``batch`` transfers and is killed once: at a named
    point of a random transfer (before prepare, after some prepares, after the decision,
    after some commits), or, for a ``random_share`` of the batches, after a random delay.
    The run continues until at least ``transfers`` transfers have started in a child. For
    PostgreSQL without ``dsns`` a throwaway cluster is started and stopped.

    A bank already in ``workdir`` (or at ``dsns``) is continued unless ``fresh`` (see
    ``open_bank``); every run takes new gtrids from the coordinator's log, and the child's
    journals live in a scratch folder of the run, so nothing of an earlier run is mistaken
    for this one's.

    SQLite sites run in WAL mode with ``synchronous=NORMAL`` by default: a commit then
    survives the death of the process (what the torture does), though not a power cut.
    Pass ``synchronous="FULL"`` to pay an fsync per commit as ``dtcourse bank`` does.

    Branches the step leaves in doubt stay in doubt, for ``dtcourse indoubt`` to show; the
    next bank made in the same place rolls them back.
    """
    check_shape(participants, accounts, transfers)
    if participants < 2:
        raise DatabaseError("the crash torture needs at least 2 participants")
    if batch < 1:
        raise DatabaseError(f"the batch size (--crash-every) must be at least 1, got {batch}")
    rng = random.Random(seed)
    started_at = time.monotonic()
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dtc-")))
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dtc-run-")))
        sites = stack.enter_context(bank_sites(backend, participants, workdir, dsns))
        rms = [open_site(site, synchronous=synchronous) for site in sites]
        for rm in rms:
            stack.callback(rm.close)
        log = stack.enter_context(DecisionLog(workdir / LOG_FILE))
        start = open_bank(
            rms, accounts, log, fresh=fresh, where=_where(backend, workdir, dsns),
            recovery=recovery,
        )
        coordinator = Coordinator(log, rms)
        before = total(rms)
        points = crash_points(2)
        seconds_per_transfer = 0.05
        counts = {"transfers": 0, "crashes": 0, "committed": 0, "aborted": 0, "resolved": 0}
        counts["resolved"] = start.resolved
        lost = partial = 0
        violations: list[str] = []
        round_no = planned = 0
        while counts["transfers"] < transfers and not (violations and stop_on_violation):
            round_no += 1
            size = min(batch, transfers - counts["transfers"])
            plan = plan_transfers(rng, accounts, len(sites), size)
            kill_after: float | None = None
            crash_at: list[object] = [rng.randrange(size), rng.choice(points)]
            if rng.random() < random_share:
                crash_at = [-1, ""]
                kill_after = rng.uniform(0, seconds_per_transfer * size)
            journal_path = scratch / f"round-{round_no}.journal"
            config = {
                "round": round_no,
                "sites": [asdict(site) for site in sites],
                "log": str(workdir / LOG_FILE),
                "journal": str(journal_path),
                "transfers": [asdict(t) for t in plan],
                "participants": len(sites),
                "prefix": start.run,
                "first": planned,
                "crash_index": crash_at[0],
                "crash_point": crash_at[1],
                "synchronous": synchronous,
                "lock_timeout": 0.5,
            }
            planned += size
            killed, seconds = _run_child(config, scratch, kill_after)
            journal = _Journal.read(journal_path)
            if kill_after is None and journal.begun:  # learn how long a transfer takes
                seconds_per_transfer = max(0.002, seconds / len(journal.begun))
            counts["crashes"] += killed
            counts["transfers"] += len(journal.begun)
            report = coordinator.recover(recovery)
            counts["resolved"] += len(report.actions)
            # -- the checks, from the databases' own evidence --
            applied = {rm.name: rm.applied() for rm in rms}
            for gtrid, where in journal.begun.items():
                done = [p for p in where if gtrid in applied.get(p, set())]
                if done and len(done) < len(where):
                    partial += 1
                    violations.append(
                        f"{gtrid} committed at {', '.join(done)} but not at "
                        f"{', '.join(p for p in where if p not in done)}"
                    )
                if len(done) == len(where):
                    counts["committed"] += 1
                else:
                    counts["aborted"] += 1
                if gtrid in journal.acked and len(done) < len(where):
                    lost += 1
                    violations.append(f"{gtrid} was acknowledged as committed but is not")
            now = total(rms)
            if now != before:
                violations.append(f"total balance {now} after round {round_no}, expected {before}")
            waiting = coordinator.in_doubt()
            if waiting:
                violations.append(
                    f"{len(waiting)} branch(es) left in doubt after recovery, e.g. "
                    f"{waiting[0].gtrid} at {waiting[0].participant}"
                )
        after = total(rms)
        left = len(coordinator.in_doubt())
    return TortureReport(
        backend=backend,
        transfers=counts["transfers"],
        crashes=counts["crashes"],
        committed=counts["committed"],
        aborted=counts["aborted"],
        resolved=counts["resolved"],
        balance_before=before,
        balance_after=after,
        in_doubt_left=left,
        lost_acknowledged=lost,
        partial_commits=partial,
        violations=tuple(violations),
        seconds=time.monotonic() - started_at,
        run=start.run,
        continued=start.continued,
        note=start.note,
    )
