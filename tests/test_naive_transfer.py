"""The naive transfer lab: real SQLite banks, injected faults, and the trace of a run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dtcourse.engine.trace_text import text_sequence
from dtcourse.errors import DTCourseError
from dtcourse.lessons.naive_transfer import (
    FAULTS,
    ORDERS,
    Entry,
    Transfer,
    breaks,
    demo,
    random_workload,
    run_transfers,
)

# (fault, order) -> (alice, bob) after the reading's transfer of 100 (table in p1.basics)
READING_TABLE = {
    ("none", "debit_first"): (400, 300),
    ("crash_between", "debit_first"): (400, 200),
    ("crash_between", "credit_first"): (500, 300),
    ("lost_reply_retry", "debit_first"): (400, 400),
    ("rejected_credit", "debit_first"): (400, 200),
    ("crash_before_first", "debit_first"): (500, 200),
    ("rejected_credit", "credit_first"): (500, 200),
}


@pytest.mark.parametrize(("fault", "order"), sorted(READING_TABLE))
def test_the_readings_table_row_by_row(fault: str, order: str) -> None:
    run = demo(fault, order)  # type: ignore[arg-type]
    alice = run.banks["bank-a"].balances["alice"]
    bob = run.banks["bank-b"].balances["bob"]
    assert (alice, bob) == READING_TABLE[(fault, order)]
    assert run.expected_total == 700
    assert run.total == alice + bob
    assert run.broken() == (("t1",) if breaks(fault, order) else ())


def test_every_fault_and_order_combination_runs() -> None:
    for fault in FAULTS:
        for order in ORDERS:
            run = demo(fault, order)  # type: ignore[arg-type]
            assert (run.total != 700) == breaks(fault, order)


def test_the_ledger_shows_a_retried_credit_twice() -> None:
    run = demo("lost_reply_retry")
    assert run.banks["bank-b"].ledger == (Entry("t1", "bob", 100), Entry("t1", "bob", 100))
    assert run.banks["bank-a"].ledger == (Entry("t1", "alice", -100),)


def test_the_trace_of_the_lost_debit_tells_the_story() -> None:
    trace = demo("crash_between").trace
    assert trace.nodes == ("client", "bank-a", "bank-b")
    kinds = [(event.kind, event.node) for event in trace.events]
    assert ("log", "bank-a") in kinds
    assert kinds[-2] == ("crash", "client")
    assert not [event for event in trace.events if "bank-b" in (event.node, event.peer)]
    text = text_sequence(trace)
    assert "client --debit alice 100 (t1)--> bank-a" in text
    assert "client CRASHES" in text


def test_the_trace_of_a_retry_shows_the_dropped_reply_and_two_commits() -> None:
    trace = demo("lost_reply_retry").trace
    assert len(trace.of_kind("drop")) == 1
    assert [e.detail for e in trace.of_kind("log") if e.node == "bank-b"] == [
        "commit credit t1",
        "commit credit t1 again",
    ]
    assert all(trace.send_of(e) is not None for e in trace.of_kind("deliver", "drop"))


def test_a_refused_credit_unfreezes_the_account_afterwards(tmp_path: Path) -> None:
    transfers = [
        Transfer("t1", "bank-a", "alice", "bank-b", "bob", 100),
        Transfer("t2", "bank-a", "alice", "bank-b", "bob", 50),
    ]
    opening = {"bank-a": {"alice": 500}, "bank-b": {"bob": 200}}
    run = run_transfers(opening, transfers, {"t1": "rejected_credit"}, workdir=tmp_path)
    assert run.banks["bank-b"].balances["bob"] == 250
    assert run.banks["bank-a"].balances["alice"] == 350
    with sqlite3.connect(tmp_path / "bank-b.sqlite") as db:
        assert db.execute("SELECT frozen FROM accounts").fetchall() == [(0,)]


def test_workdir_keeps_the_databases_and_refuses_to_overwrite(tmp_path: Path) -> None:
    opening = {"bank-a": {"alice": 500}, "bank-b": {"bob": 200}}
    run_transfers(opening, [], workdir=tmp_path)
    assert (tmp_path / "bank-a.sqlite").exists()
    with pytest.raises(DTCourseError, match="already holds bank-a.sqlite"):
        run_transfers(opening, [], workdir=tmp_path)


@pytest.mark.parametrize(
    ("opening", "transfers", "faults", "message"),
    [
        ({}, [], {}, "no banks given"),
        ({"bank a": {"x": 1}}, [], {}, "not a valid name"),
        ({"bank-a": {"alice": -5}}, [], {}, "whole number >= 0"),
        ({"bank-a": {"alice": 5}}, [Transfer("t1", "bank-a", "alice", "bank-b", "bob", 1)], {},
         "not among the opening balances"),
        ({"bank-a": {"alice": 5, "bob": 1}},
         [Transfer("t1", "bank-a", "alice", "bank-a", "bob", 0)], {}, "whole number > 0"),
        ({"bank-a": {"alice": 5, "bob": 1}},
         [Transfer("t1", "bank-a", "alice", "bank-a", "bob", 1)], {"t1": "meteor"},
         "unknown fault"),
        ({"bank-a": {"alice": 5}}, [], {"t9": "crash_between"}, "unknown transfer"),
    ],
)
def test_bad_input_is_refused_clearly(opening, transfers, faults, message) -> None:
    with pytest.raises(DTCourseError, match=message):
        run_transfers(opening, transfers, faults)


def test_duplicate_transfer_ids_are_refused() -> None:
    t = Transfer("t1", "bank-a", "alice", "bank-b", "bob", 1)
    with pytest.raises(DTCourseError, match="used twice"):
        run_transfers({"bank-a": {"alice": 5}, "bank-b": {"bob": 0}}, [t, t])


@pytest.mark.parametrize("seed", range(6))
def test_random_workloads_conserve_money_and_never_overdraw_without_faults(seed: int) -> None:
    opening, transfers = random_workload(seed, banks=3, accounts=6, transfers=12)
    assert all(t.source_bank != t.target_bank for t in transfers)
    run = run_transfers(opening, transfers)
    assert run.total == run.expected_total
    assert all(v >= 0 for bank in run.banks.values() for v in bank.balances.values())
    for transfer in transfers:
        entries = [
            e for bank in run.banks.values() for e in bank.ledger if e.transfer == transfer.id
        ]
        assert sorted(e.amount for e in entries) == [-transfer.amount, transfer.amount]


def test_random_workload_is_reproducible_and_checks_its_shape() -> None:
    assert random_workload(3) == random_workload(3)
    assert random_workload(3) != random_workload(4)
    with pytest.raises(DTCourseError, match="banks >= 2"):
        random_workload(1, banks=1)


def test_a_crash_between_steps_loses_exactly_that_transfer() -> None:
    opening, transfers = random_workload(11, transfers=6)
    victim = transfers[2]
    run = run_transfers(opening, transfers, {victim.id: "crash_between"})
    assert run.broken() == (victim.id,)
    assert run.total == run.expected_total - victim.amount
