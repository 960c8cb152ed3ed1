"""The naive money transfer: two local transactions at two banks, and what a crash does.

Each bank is its own SQLite database with an ``accounts`` table and a ``ledger`` of the
entries it applied. A client moves money with one committed local transaction per bank,
exactly the tempting program of the first reading:

    BEGIN; debit at bank A;  COMMIT
    BEGIN; credit at bank B; COMMIT

Faults are injected per transfer: the client crashes before its first step or between the
two steps, bank B refuses the credit (the account is frozen) and nobody undoes the debit,
or the credit's reply is lost and the client retries a credit that had in fact committed.
Every step is really committed to the bank's file, so what survives a crash is exactly what
the databases say. The run is recorded as a ``Trace`` (client and banks as nodes) so the
lost money can be drawn as a sequence diagram.
"""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from dtcourse.engine.trace import Event, EventKind, Trace
from dtcourse.errors import DTCourseError

Fault = Literal[
    "none", "crash_before_first", "crash_between", "lost_reply_retry", "rejected_credit"
]
FAULTS: tuple[str, ...] = get_args(Fault)
Order = Literal["debit_first", "credit_first"]
ORDERS: tuple[str, ...] = get_args(Order)

#: Faults after which the banks disagree about the transfer (see ``breaks``).
BREAKING_FAULTS: frozenset[str] = frozenset(
    {"crash_between", "lost_reply_retry", "rejected_credit"}
)



def breaks(fault: str, order: str) -> bool:
    """Whether ``fault`` leaves one step of a transfer applied and the other not (or twice)."""
    if fault == "rejected_credit":
        return order == "debit_first"
    return fault in BREAKING_FAULTS


CLIENT = "client"
_NAME = re.compile(r"^[A-Za-z][\w-]{0,31}$")

_SCHEMA = """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL,
    frozen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY,
    transfer TEXT NOT NULL,
    account TEXT NOT NULL,
    amount INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Transfer:
    """Move ``amount`` from an account at one bank to an account at another."""

    id: str
    source_bank: str
    source_account: str
    target_bank: str
    target_account: str
    amount: int

    def __str__(self) -> str:
        return (
            f"{self.id}: {self.amount} from {self.source_bank}/{self.source_account} "
            f"to {self.target_bank}/{self.target_account}"
        )


@dataclass(frozen=True)
class Entry:
    """A ledger line a bank committed: ``amount`` is negative for a debit."""

    transfer: str
    account: str
    amount: int


@dataclass(frozen=True)
class BankState:
    """What one bank's database holds after a run."""

    name: str
    balances: Mapping[str, int]
    ledger: tuple[Entry, ...]

    @property
    def total(self) -> int:
        return sum(self.balances.values())


@dataclass(frozen=True)
class TransferRun:
    """The outcome of a run: each bank's state, the transfers started, the trace."""

    banks: Mapping[str, BankState]
    transfers: tuple[Transfer, ...]
    faults: Mapping[str, Fault]
    order: Order
    expected_total: int
    trace: Trace

    @property
    def total(self) -> int:
        return sum(bank.total for bank in self.banks.values())

    def broken(self) -> tuple[str, ...]:
        """Ids of transfers whose fault leaves the banks disagreeing about them.

        Known from the faults injected, not from the databases: a refused credit breaks a
        transfer only when the debit went first.
        """
        return tuple(t.id for t in self.transfers if breaks(self.faults[t.id], self.order))

    def summary(self) -> str:
        lines = [f"total money: {self.total} (expected {self.expected_total})"]
        for bank in self.banks.values():
            balances = ", ".join(f"{name} {value}" for name, value in bank.balances.items())
            lines.append(f"  {bank.name}: {balances}")
        return "\n".join(lines)


class _Bank:
    """One bank's database; every method is one short local transaction."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self.connection = sqlite3.connect(path, isolation_level=None)
        # In this lab the client crashes, never a bank or the machine: a commit only has to
        # survive the client's process, which SQLite's rollback journal gives without an
        # fsync per commit (synchronous = OFF protects against application crashes, not
        # power loss), so a run costs milliseconds.
        self.connection.execute("PRAGMA journal_mode = TRUNCATE")
        self.connection.execute("PRAGMA synchronous = OFF")

    def create(self, opening: Mapping[str, int]) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany(
                "INSERT INTO accounts (id, balance) VALUES (?, ?)", sorted(opening.items())
            )

    def apply(self, transfer: str, account: str, amount: int) -> bool:
        """Debit or credit and write the ledger line, atomically; False when refused."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE accounts SET balance = balance + ? WHERE id = ? AND frozen = 0",
                (amount, account),
            ).rowcount
            if changed == 1:
                db.execute(
                    "INSERT INTO ledger (transfer, account, amount) VALUES (?, ?, ?)",
                    (transfer, account, amount),
                )
        return changed == 1

    def set_frozen(self, account: str, frozen: bool) -> None:
        with self._transaction() as db:
            db.execute("UPDATE accounts SET frozen = ? WHERE id = ?", (int(frozen), account))

    def state(self) -> BankState:
        db = self.connection
        balances = dict(db.execute("SELECT id, balance FROM accounts ORDER BY id").fetchall())
        ledger = tuple(
            Entry(transfer, account, amount)
            for transfer, account, amount in db.execute(
                "SELECT transfer, account, amount FROM ledger ORDER BY seq"
            )
        )
        return BankState(self.name, MappingProxyType(balances), ledger)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


@dataclass
class _Recorder:
    """Appends trace events with a step clock; a lab-local helper, never shared."""

    events: list[Event] = field(default_factory=list)

    def add(self, kind: EventKind, node: str, **fields: Any) -> int:
        index = len(self.events)
        self.events.append(Event(index=index, time=float(index), kind=kind, node=node, **fields))
        return index

    def message(self, sender: str, receiver: str, text: str, *, lost: bool = False) -> None:
        sent = self.add("send", sender, peer=receiver, message=text)
        if lost:
            self.add("drop", sender, peer=receiver, message=text, send_index=sent)
        else:
            self.add("deliver", receiver, peer=sender, message=text, send_index=sent)


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise DTCourseError(
            f"{what} {name!r} is not a valid name: use letters, digits, '-' or '_', "
            "starting with a letter (e.g. 'bank-a', 'alice')"
        )
    return name


def _check_inputs(
    opening: Mapping[str, Mapping[str, int]],
    transfers: Sequence[Transfer],
    faults: Mapping[str, str],
    order: str,
) -> None:
    if not opening:
        raise DTCourseError("no banks given: pass opening balances like {'bank-a': {'alice': 500}}")
    for bank, accounts in opening.items():
        _check_name("bank", bank)
        for account, balance in accounts.items():
            _check_name(f"account at {bank}:", account)
            if isinstance(balance, bool) or not isinstance(balance, int) or balance < 0:
                raise DTCourseError(
                    f"opening balance of {bank}/{account} is {balance!r}: use a whole number >= 0"
                )
    seen: set[str] = set()
    for transfer in transfers:
        if not isinstance(transfer, Transfer):
            raise DTCourseError(f"{transfer!r} is not a Transfer; build one with Transfer(...)")
        _check_name("transfer id", transfer.id)
        if transfer.id in seen:
            raise DTCourseError(f"transfer id {transfer.id!r} is used twice; give each its own")
        seen.add(transfer.id)
        for bank, account in (
            (transfer.source_bank, transfer.source_account),
            (transfer.target_bank, transfer.target_account),
        ):
            if account not in opening.get(bank, {}):
                raise DTCourseError(
                    f"transfer {transfer.id} names {bank}/{account}, which is not among the "
                    "opening balances; add the account or fix the transfer"
                )
        if isinstance(transfer.amount, bool) or not isinstance(transfer.amount, int) or (
            transfer.amount <= 0
        ):
            raise DTCourseError(
                f"transfer {transfer.id} moves {transfer.amount!r}: use a whole number > 0"
            )
    for transfer_id, fault in faults.items():
        if transfer_id not in seen:
            raise DTCourseError(f"a fault is given for unknown transfer {transfer_id!r}")
        if fault not in FAULTS:
            raise DTCourseError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
    if order not in ORDERS:
        raise DTCourseError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")


def _run_one(
    banks: Mapping[str, _Bank], transfer: Transfer, fault: str, order: str, log: _Recorder
) -> None:
    """The naive client for one transfer, with the fault injected where it belongs."""
    debit = ("debit", transfer.source_bank, transfer.source_account, -transfer.amount)
    credit = ("credit", transfer.target_bank, transfer.target_account, transfer.amount)
    steps = (debit, credit) if order == "debit_first" else (credit, debit)
    for position, (what, bank, account, amount) in enumerate(steps):
        if (fault, position) in (("crash_before_first", 0), ("crash_between", 1)):
            log.add("crash", CLIENT, detail=f"{transfer.id} {'before ' + what}")
            log.add("recover", CLIENT, detail="restarts, forgets the transfer")
            return
        request = f"{what} {account} {abs(amount)} ({transfer.id})"
        log.message(CLIENT, bank, request)
        refuse = what == "credit" and fault == "rejected_credit"
        if refuse:
            banks[bank].set_frozen(account, True)
        applied = banks[bank].apply(transfer.id, account, amount)
        if refuse:
            banks[bank].set_frozen(account, False)
        if not applied:
            log.add("decide", bank, detail=f"refuse {transfer.id}")
            log.message(bank, CLIENT, f"refused ({transfer.id})")
            return  # the naive client gives up; nobody undoes the other step
        log.add("log", bank, detail=f"commit {what} {transfer.id}", forced=True)
        if what == "credit" and fault == "lost_reply_retry":
            log.message(bank, CLIENT, f"ok ({transfer.id})", lost=True)
            log.add("timeout", CLIENT, detail=f"no reply: retry {what}")
            log.message(CLIENT, bank, request)
            banks[bank].apply(transfer.id, account, amount)
            log.add("log", bank, detail=f"commit {what} {transfer.id} again", forced=True)
        log.message(bank, CLIENT, f"ok ({transfer.id})")


def run_transfers(
    opening: Mapping[str, Mapping[str, int]],
    transfers: Sequence[Transfer],
    faults: Mapping[str, Fault] | None = None,
    *,
    order: Order = "debit_first",
    workdir: Path | None = None,
) -> TransferRun:
    """Create the banks, run the transfers one by one with their faults, read the result.

    ``workdir`` keeps the SQLite files for inspection; it must not already hold banks of
    the same names (nothing is overwritten). Without it a temporary folder is used and
    removed afterwards.
    """
    faults = dict(faults or {})
    _check_inputs(opening, transfers, faults, order)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="dtcourse-transfer-") as scratch:
            return _run_in(Path(scratch), opening, transfers, faults, order)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    existing = [bank for bank in opening if (workdir / f"{bank}.sqlite").exists()]
    if existing:
        raise DTCourseError(
            f"{workdir} already holds {existing[0]}.sqlite; pass an empty folder (nothing "
            "is overwritten)"
        )
    return _run_in(workdir, opening, transfers, faults, order)


def _run_in(
    folder: Path,
    opening: Mapping[str, Mapping[str, int]],
    transfers: Sequence[Transfer],
    faults: Mapping[str, str],
    order: str,
) -> TransferRun:
    banks = {name: _Bank(folder / f"{name}.sqlite", name) for name in opening}
    try:
        for name, bank in banks.items():
            bank.create(opening[name])
        log = _Recorder()
        for transfer in transfers:
            _run_one(banks, transfer, faults.get(transfer.id, "none"), order, log)
        states = {name: bank.state() for name, bank in banks.items()}
    finally:
        for bank in banks.values():
            bank.close()
    return TransferRun(
        banks=MappingProxyType(states),
        transfers=tuple(transfers),
        faults=MappingProxyType({t.id: cast(Fault, faults.get(t.id, "none")) for t in transfers}),
        order=order,  # type: ignore[arg-type]
        expected_total=sum(sum(accounts.values()) for accounts in opening.values()),
        trace=Trace(nodes=(CLIENT, *opening), events=tuple(log.events)),
    )


DEMO_OPENING: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {"bank-a": MappingProxyType({"alice": 500}), "bank-b": MappingProxyType({"bob": 200})}
)
DEMO_TRANSFER = Transfer("t1", "bank-a", "alice", "bank-b", "bob", 100)


def demo(fault: Fault = "crash_between", order: Order = "debit_first") -> TransferRun:
    """Alice (500 at bank A) sends 100 to Bob (200 at bank B), with one fault."""
    return run_transfers(DEMO_OPENING, [DEMO_TRANSFER], {DEMO_TRANSFER.id: fault}, order=order)


_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
)


def random_workload(
    seed: int, *, banks: int = 2, accounts: int = 4, transfers: int = 8
) -> tuple[dict[str, dict[str, int]], list[Transfer]]:
    """Opening balances and transfers between different banks that never overdraw.

    Each amount is at most what the source account holds at that point of a clean run,
    so with no faults every balance stays at or above zero.
    """
    if banks < 2 or not 2 <= accounts <= len(_NAMES) or transfers < 0:
        raise DTCourseError(
            f"random_workload needs banks >= 2, 2 <= accounts <= {len(_NAMES)} and "
            f"transfers >= 0 (got banks={banks}, accounts={accounts}, transfers={transfers})"
        )
    if accounts < banks:
        raise DTCourseError(f"give at least one account per bank ({banks} banks, {accounts})")
    rng = random.Random(seed)
    bank_names = [f"bank-{chr(ord('a') + i)}" for i in range(banks)]
    home = {name: bank_names[i % banks] for i, name in enumerate(_NAMES[:accounts])}
    initial = {name: rng.randrange(50, 1000, 10) for name in home}
    balance = dict(initial)
    planned: list[Transfer] = []
    for number in range(1, transfers + 1):
        source = rng.choice([name for name, value in balance.items() if value > 0] or list(home))
        target = rng.choice([name for name in home if home[name] != home[source]])
        if balance[source] < 2:
            continue
        amount = rng.randint(1, balance[source] // 2)
        balance[source] -= amount
        balance[target] += amount
        planned.append(Transfer(f"t{number}", home[source], source, home[target], target, amount))
    opening: dict[str, dict[str, int]] = {bank: {} for bank in bank_names}
    for name, value in initial.items():
        opening[home[name]][name] = value
    return opening, planned
