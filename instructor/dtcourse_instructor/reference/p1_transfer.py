"""Reference solution of p1.transfer: the invariant audit of the naive transfer's banks.

The audit sees only what the banks hold (balances and committed ledger entries) and the
transfers that were started; which faults were injected is not its to see. A transfer is
sound when its source bank holds exactly one debit of it and its target bank exactly one
credit; none of either (a crash before the first step) is sound too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from dtcourse.lessons.naive_transfer import BankState, Transfer

__all__ = ["audit"]


def audit(
    banks: Mapping[str, BankState], transfers: Sequence[Transfer], expected_total: int
) -> list[str]:
    """Every violation of the banks' invariants, as messages; empty when all is well."""
    problems: list[str] = []
    total = sum(bank.total for bank in banks.values())
    if total != expected_total:
        change = total - expected_total
        problems.append(
            f"total is {total}, expected {expected_total}: "
            f"{abs(change)} {'created' if change > 0 else 'destroyed'}"
        )
    for bank in banks.values():
        problems.extend(
            f"negative balance: {bank.name}/{account} holds {balance}"
            for account, balance in bank.balances.items()
            if balance < 0
        )
    steps: Counter[tuple[str, str, str]] = Counter()  # (transfer, bank, debit|credit)
    for bank in banks.values():
        for entry in bank.ledger:
            steps[entry.transfer, bank.name, "debit" if entry.amount < 0 else "credit"] += 1
    for transfer in transfers:
        debits = steps[transfer.id, transfer.source_bank, "debit"]
        credits = steps[transfer.id, transfer.target_bank, "credit"]
        if (debits, credits) not in ((0, 0), (1, 1)):
            problems.append(
                f"transfer {transfer.id} applied {debits} time(s) at {transfer.source_bank} "
                f"and {credits} time(s) at {transfer.target_bank}"
            )
    return problems
