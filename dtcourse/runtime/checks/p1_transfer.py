"""Visible checks of p1.transfer: the audit against runs of the naive transfer.

Nothing here knows how to audit. What a correct audit must report is known from the run
itself: which transfers the lab broke (from the faults it injected, which the audit never
sees), the total against the opening total, and the negative balances. The graded hidden
tests pass runs of their own through ``runs``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dtcourse.lessons.naive_transfer import (
    Fault,
    Order,
    Transfer,
    TransferRun,
    random_workload,
    run_transfers,
)
from dtcourse.runtime.checks import Exercise

__all__ = [
    "EXERCISE",
    "judge_run",
    "transfer_clean",
    "transfer_lost_debit",
    "transfer_other_faults",
    "visible_clean_runs",
    "visible_fault_runs",
    "visible_lost_debit_runs",
]

Audit = Callable[..., Any]


def _workload_run(
    seed: int,
    faults: Mapping[int, Fault] | None = None,
    *,
    banks: int = 2,
    accounts: int = 4,
    transfers: int = 6,
    order: Order = "debit_first",
) -> TransferRun:
    """A random workload; ``faults`` maps a transfer's position (from 0) to its fault."""
    opening, planned = random_workload(seed, banks=banks, accounts=accounts, transfers=transfers)
    chosen = {planned[i].id: fault for i, fault in (faults or {}).items() if i < len(planned)}
    return run_transfers(opening, planned, chosen, order=order)


def _describe(run: TransferRun) -> str:
    faults = ", ".join(f"{tid}: {fault}" for tid, fault in run.faults.items() if fault != "none")
    size = f"{len(run.banks)} banks, {sum(len(b.balances) for b in run.banks.values())} accounts"
    return (
        f"a run of {len(run.transfers)} transfers ({size}, {run.order.replace('_', ' ')}, "
        f"faults: {faults or 'none'})"
    )


def _violations(audit: Audit, run: TransferRun) -> list[str]:
    try:
        found = audit(run.banks, run.transfers, run.expected_total)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"audit raised {type(error).__name__}: {error} on {_describe(run)}"
        ) from None
    assert isinstance(found, list | tuple), (
        f"audit must return a list of messages (strings), not {type(found).__name__}"
    )
    for message in found:
        assert isinstance(message, str), (
            f"audit must return a list of strings; it returned {message!r} in the list"
        )
    return list(found)


def _names(message_list: Sequence[str], word: str) -> bool:
    pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE)
    return any(pattern.search(message) for message in message_list)


def _short(found: list[str], limit: int = 300) -> str:
    text = repr(found)
    return text if len(text) <= limit else text[: limit - 5] + " ...]"


def judge_run(audit: Audit, run: TransferRun) -> None:
    """Everything a correct audit reports about one run, and nothing more."""
    found = _violations(audit, run)
    where = _describe(run)
    shown = f"audit returned {_short(found)}"
    broken = set(run.broken())
    negatives = [
        (bank.name, account, value)
        for bank in run.banks.values()
        for account, value in bank.balances.items()
        if value < 0
    ]
    if not broken and not negatives and run.total == run.expected_total:
        assert not found, f"{where} is consistent, but {shown}: report only real violations"
        return
    if run.total != run.expected_total:
        change = "destroyed" if run.total < run.expected_total else "created"
        assert any("total" in message.lower() for message in found), (
            f"{where}: the total is {run.total} instead of {run.expected_total} (money "
            f"{change}), but no message mentions the total; {shown}"
        )
    for transfer in run.transfers:
        named = _names(found, transfer.id)
        if transfer.id in broken:
            assert named, (
                f"{where}: transfer {transfer.id} was not applied exactly once at both banks "
                f"(fault {run.faults[transfer.id]}), but no message names it; {shown}"
            )
        else:
            assert not named, (
                f"{where}: transfer {transfer.id} was applied correctly, yet a message names "
                f"it; {shown}"
            )
    for bank, account, value in negatives:
        assert any(
            _names([message], account) and "negative" in message.lower() for message in found
        ), (
            f"{where}: {bank}/{account} has a negative balance ({value}), but no message "
            f"says 'negative' and names {account}; {shown}"
        )


def visible_clean_runs() -> tuple[TransferRun, ...]:
    """Runs where nothing is broken: no faults, and a crash before any step."""
    return (
        _workload_run(1),
        _workload_run(2, banks=3, accounts=5, transfers=8),
        _workload_run(3, {1: "crash_before_first", 3: "crash_before_first"}),
        _workload_run(4, {0: "crash_before_first"}, order="credit_first"),
    )


def visible_lost_debit_runs() -> tuple[TransferRun, ...]:
    """The reading's demo (700 becomes 600) and a crash after a debit in a busier run."""
    demo = run_transfers(
        {"bank-a": {"alice": 500}, "bank-b": {"bob": 200}},
        [Transfer("t1", "bank-a", "alice", "bank-b", "bob", 100)],
        {"t1": "crash_between"},
    )
    return (demo, _workload_run(5, {2: "crash_between"}))


def visible_fault_runs() -> tuple[TransferRun, ...]:
    """The other rows of the reading's table: created money, refused credits, retries,
    and an overdraft caused by a transfer that never arrived."""
    overdraft = run_transfers(
        {"bank-a": {"alice": 100, "carol": 0}, "bank-b": {"bob": 0}},
        [
            Transfer("t1", "bank-a", "alice", "bank-b", "bob", 100),
            Transfer("t2", "bank-b", "bob", "bank-a", "carol", 60),
        ],
        {"t1": "crash_between"},
    )
    return (
        _workload_run(6, {1: "crash_between"}, order="credit_first"),
        _workload_run(7, {0: "lost_reply_retry"}),
        _workload_run(8, {3: "rejected_credit"}),
        overdraft,
    )


def _each(audit: Audit, runs: Iterable[TransferRun] | None, default: Callable[[], Any]) -> None:
    for run in default() if runs is None else runs:
        judge_run(audit, run)


def transfer_clean(audit: Audit, *, runs: Iterable[TransferRun] | None = None) -> None:
    """Consistent runs: the audit reports nothing."""
    _each(audit, runs, visible_clean_runs)


def transfer_lost_debit(audit: Audit, *, runs: Iterable[TransferRun] | None = None) -> None:
    """A crash between the debit and the credit: the lost money and the transfer named."""
    _each(audit, runs, visible_lost_debit_runs)


def transfer_other_faults(audit: Audit, *, runs: Iterable[TransferRun] | None = None) -> None:
    """Money created, refused credits, retried credits, errors that cancel in the total."""
    _each(audit, runs, visible_fault_runs)


EXERCISE = Exercise(
    "p1.transfer",
    (
        ("clean", transfer_clean),
        ("lost_debit", transfer_lost_debit),
        ("faults", transfer_other_faults),
    ),
)
