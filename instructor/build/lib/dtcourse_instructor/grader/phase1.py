"""Checks for Phase 1: the transfer audit and the serializability of multi-site histories.

Every part takes the student's function and optional harder settings (the graded hidden
tests pass their own runs or histories); with no settings a part uses the visible cases
below, which the notebook shows the student anyway. Expected answers are never stored:
they come from what the lab injected (which transfers a fault broke) and from the
reference theory in ``dtcourse.lessons.histories``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dtcourse.lessons.histories import (
    ANOMALIES,
    History,
    format_history,
    is_topological_order,
    parse_history,
    precedence_graph,
    serial_order,
)
from dtcourse.lessons.histories import classify_anomaly as reference_anomaly
from dtcourse.lessons.naive_transfer import (
    Fault,
    Order,
    Transfer,
    TransferRun,
    random_workload,
    run_transfers,
)
from dtcourse.runtime.checks import Exercise

# ---------------------------------------------------------------------------------------
# p1.transfer: the audit that catches a broken naive transfer

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


def _judge(audit: Audit, run: TransferRun) -> None:
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
        _judge(audit, run)


def transfer_clean(audit: Audit, *, runs: Iterable[TransferRun] | None = None) -> None:
    """Consistent runs: the audit reports nothing."""
    _each(audit, runs, visible_clean_runs)


def transfer_lost_debit(audit: Audit, *, runs: Iterable[TransferRun] | None = None) -> None:
    """A crash between the debit and the credit: the lost money and the transfer named."""
    _each(audit, runs, visible_lost_debit_runs)


def transfer_other_faults(audit: Audit, *, runs: Iterable[TransferRun] | None = None) -> None:
    """Money created, refused credits, retried credits, errors that cancel in the total."""
    _each(audit, runs, visible_fault_runs)


# ---------------------------------------------------------------------------------------
# p1.serializability: precedence graphs of multi-site histories

Analyse = Callable[[History], Any]

#: The reading's histories, the ones the notebook works through in the open.
VISIBLE_HISTORIES: tuple[str, ...] = (
    "r1[x]@A w2[x]@A r2[y]@A w1[y]@A c1 c2",
    "r1[x]@A w2[x]@A w1[y]@A r2[y]@A c1 c2",
    "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2",
    "w1[x=50]@A r2[x=50]@A a1 c2",
    "r1[x=10]@A r2[x=10]@A w1[x=11]@A c1 w2[x=11]@A c2",
    "r1[x]@A r1[y]@B r2[x]@A r2[y]@B w1[x=off]@A w2[y=off]@B c1 c2",
    "r1[x]@A w1[x]@A r2[x]@A w2[x]@A r3[y]@B w3[y]@B c1 c2 c3",
)


def _field(verdict: Any, name: str) -> Any:
    if isinstance(verdict, Mapping):
        if name not in verdict:
            raise AssertionError(f"your verdict has no {name!r}; return a Verdict(...)")
        return verdict[name]
    if not hasattr(verdict, name):
        raise AssertionError(
            f"your verdict ({type(verdict).__name__}) has no {name!r}; return a Verdict(...)"
        )
    return getattr(verdict, name)


def _verdict(analyse: Analyse, history: History) -> Any:
    try:
        return analyse(history)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"analyse raised {type(error).__name__}: {error} on {format_history(history)}"
        ) from None


def _edges(value: Any, history: str) -> set[tuple[str, str]]:
    try:
        edges = {(str(a), str(b)) for a, b in value}
    except (TypeError, ValueError):
        raise AssertionError(
            f"{history}: edges must be a set of (from, to) pairs like ('T1', 'T2'), "
            f"not {value!r}"
        ) from None
    return edges


def _histories(histories: Iterable[str] | None) -> list[tuple[str, History]]:
    chosen = VISIBLE_HISTORIES if histories is None else tuple(histories)
    return [(text, parse_history(text)) for text in chosen]


def _arrow(edge: tuple[str, str]) -> str:
    return f"{edge[0]} → {edge[1]}"


def serializability_edges(analyse: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """The precedence graph's edges, exactly."""
    for text, history in _histories(histories):
        graph = precedence_graph(history)
        got = _edges(_field(_verdict(analyse, history), "edges"), text)
        missing = sorted(graph.edges - got)
        extra = sorted(got - graph.edges)
        if missing:
            edge = missing[0]
            why = graph.reasons(edge)[0]
            raise AssertionError(
                f"{text}: the edge {_arrow(edge)} is missing; it comes from the conflict "
                f"{why}"
            )
        if extra:
            raise AssertionError(
                f"{text}: the edge {_arrow(extra[0])} is not in the precedence graph: no "
                "conflict (different transactions, same item at the same site, at least one "
                "write, neither aborted) orders them that way"
            )


def serializability_verdict(analyse: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """Serializable or not, and a valid equivalent serial order when it is."""
    for text, history in _histories(histories):
        graph = precedence_graph(history)
        verdict = _verdict(analyse, history)
        expected = serial_order(graph) is not None
        serializable = _field(verdict, "serializable")
        assert isinstance(serializable, bool), (
            f"{text}: serializable must be True or False, not {serializable!r}"
        )
        assert serializable == expected, (
            f"{text}: you said serializable={serializable}, but its precedence graph "
            + ("has no cycle" if expected else "has a cycle")
        )
        order = _field(verdict, "order")
        if not expected:
            assert order is None, f"{text}: not serializable, so order must be None"
            continue
        assert order is not None and is_topological_order(graph, [str(t) for t in order]), (
            f"{text}: the order {order!r} is not an equivalent serial order; it must list "
            f"every committed transaction ({', '.join(graph.nodes)}) once and put Ti before "
            "Tj for every edge Ti → Tj"
        )


def serializability_anomaly(analyse: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """The anomaly's name, by the rules in the notebook."""
    for text, history in _histories(histories):
        expected = reference_anomaly(history)
        got = _field(_verdict(analyse, history), "anomaly")
        assert got is None or got in ANOMALIES, (
            f"{text}: anomaly must be None or one of {', '.join(ANOMALIES)}, not {got!r}"
        )
        assert got == expected, f"{text}: the anomaly is {expected!r}, not {got!r}"


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "p1.transfer",
        (
            ("clean", transfer_clean),
            ("lost_debit", transfer_lost_debit),
            ("faults", transfer_other_faults),
        ),
    ),
    Exercise(
        "p1.serializability",
        (
            ("edges", serializability_edges),
            ("verdict", serializability_verdict),
            ("anomaly", serializability_anomaly),
        ),
    ),
)
