"""The SQLite participant and the presumed-abort coordinator, without crashes of processes."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from dtcourse_instructor.reference.p2_recovery import recovery_step
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtcourse.db import (
    Coordinator,
    DecisionLog,
    InDoubt,
    LockTimeout,
    Resolve,
    SqliteResourceManager,
    Update,
    Vote,
    Xid,
    crash_points,
)
from dtcourse.db.bank import Transfer, create_bank, transfer_work
from dtcourse.db.base import total
from dtcourse.errors import DatabaseError


def open_rm(folder: Path, name: str = "p1", **options: object) -> SqliteResourceManager:
    return SqliteResourceManager(folder / f"{name}.db", name, **options)


@pytest.fixture
def rm(bank_dir: Path) -> SqliteResourceManager:
    site = open_rm(bank_dir, lock_timeout=0.2)
    site.create_bank({0: 100, 1: 100})
    yield site
    site.close()


def prepare_debit(rm: SqliteResourceManager, gtrid: str, account: int, delta: int) -> Vote:
    xid = Xid(gtrid, rm.name)
    rm.begin(xid)
    rm.execute(xid, Update(account, delta))
    return rm.prepare(xid)


def test_prepared_branch_survives_reopening_and_commits_once(rm, bank_dir):
    assert prepare_debit(rm, "g1", 0, -30) is Vote.YES
    assert rm.balances() == {0: 100, 1: 100}  # not applied before the decision
    rm.close()
    again = open_rm(bank_dir)
    assert again.in_doubt() == [Xid("g1", "p1")]
    assert again.locks() == {0: "g1"}
    again.commit_prepared(Xid("g1", "p1"))
    again.commit_prepared(Xid("g1", "p1"))  # idempotent: no second debit
    assert again.balances() == {0: 70, 1: 100}
    assert again.in_doubt() == [] and again.locks() == {}
    assert again.applied() == {"g1"}
    again.close()


def test_rollback_prepared_discards_the_intents(rm):
    assert prepare_debit(rm, "g1", 1, 25) is Vote.YES
    rm.rollback_prepared(Xid("g1", "p1"))
    assert rm.balances() == {0: 100, 1: 100}
    assert rm.in_doubt() == [] and rm.applied() == set()


def test_votes_no_on_overdraft_and_on_unknown_account(rm):
    assert prepare_debit(rm, "g1", 0, -101) is Vote.NO
    assert prepare_debit(rm, "g2", 7, 5) is Vote.NO
    assert rm.in_doubt() == []
    assert prepare_debit(rm, "g3", 0, -100) is Vote.YES


def test_a_prepared_lock_blocks_other_writers_until_resolved(rm, bank_dir):
    assert prepare_debit(rm, "holder", 0, -10) is Vote.YES
    other = open_rm(bank_dir, lock_timeout=0.1)
    xid = Xid("writer", "p1")
    other.begin(xid)
    with pytest.raises(LockTimeout, match="locked by prepared transaction holder"):
        other.execute(xid, Update(0, 1))
    other.execute(xid, Update(1, 1))  # another account is free
    rm.rollback_prepared(Xid("holder", "p1"))
    other.execute(xid, Update(0, 1))
    assert other.commit_one_phase(xid)
    assert other.balances() == {0: 101, 1: 101}
    other.close()


def test_prepare_votes_no_when_the_lock_was_taken_meanwhile(rm, bank_dir):
    other = open_rm(bank_dir)
    late = Xid("late", "p1")
    other.begin(late)
    other.execute(late, Update(0, -1))
    assert prepare_debit(rm, "early", 0, -1) is Vote.YES
    assert other.prepare(late) is Vote.NO
    other.close()


def test_create_bank_refuses_while_transactions_are_in_doubt(rm):
    prepare_debit(rm, "g1", 0, -1)
    with pytest.raises(DatabaseError, match="in-doubt"):
        rm.create_bank({0: 5})


def test_bad_locations_give_clear_errors(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        SqliteResourceManager(tmp_path / "missing" / "p1.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(DatabaseError, match="cannot use"):
        SqliteResourceManager(junk, "p1")
    with pytest.raises(DatabaseError, match="participant name"):
        SqliteResourceManager(tmp_path / "p1.db", "1 bad")
    with pytest.raises(DatabaseError, match="global transaction id"):
        Xid("has space", "p1")


# -- the coordinator ----------------------------------------------------------------------


@pytest.fixture
def bank(bank_dir):
    rms = [open_rm(bank_dir, f"p{i}", lock_timeout=0.2) for i in (1, 2)]
    log = DecisionLog(bank_dir / "coordinator.db")
    create_bank(rms, accounts=4, log=log)
    yield Coordinator(log, rms)
    for rm in rms:
        rm.close()
    log.close()


def test_commit_costs_one_log_force_and_two_per_participant(bank):
    before = bank.forced_writes
    outcome = bank.run("t1", transfer_work(Transfer(0, 1, 10), 2))
    assert outcome.committed
    assert bank.forced_writes - before == 1 + 2 * 2
    assert bank.log.entries() == []  # forgotten after phase two
    assert bank.participants["p1"].balances()[0] == 990
    assert bank.participants["p2"].balances()[1] == 1010


def test_abort_writes_nothing_to_the_log(bank):
    log_forces = bank.log.forced_writes
    outcome = bank.run("t1", transfer_work(Transfer(0, 1, 5000), 2))
    assert not outcome.committed and "voted no" in outcome.reason
    assert bank.log.forced_writes == log_forces
    assert total(list(bank.participants.values())) == 4000
    assert bank.in_doubt() == []


class Crash(Exception):
    pass


def crash_at(target: str):
    def crash(point: str) -> None:
        if point == target:
            raise Crash(point)

    return crash


def reopen(bank_dir: Path) -> Coordinator:
    rms = [open_rm(bank_dir, f"p{i}") for i in (1, 2)]
    return Coordinator(DecisionLog(bank_dir / "coordinator.db"), rms)


@pytest.mark.parametrize("point", crash_points(2))
def test_recovery_after_a_crash_at_every_named_point(bank, bank_dir, point):
    bank.crash = crash_at(point)
    with pytest.raises(Crash):
        bank.run("t1", transfer_work(Transfer(0, 1, 10), 2))
    fresh = reopen(bank_dir)  # volatile state of the crashed coordinator is gone
    report = fresh.recover(recovery_step)
    decided = point.startswith(("after-decision", "after-commit"))
    applied = [("t1" in rm.applied()) for rm in fresh.participants.values()]
    assert applied == [decided, decided]
    assert total(list(fresh.participants.values())) == 4000
    assert fresh.in_doubt() == [] and report.in_doubt_left == ()
    assert fresh.log.entries() == []
    expected = {"after-prepare:1": (0, 1), "after-prepare:2": (0, 2), "after-decision": (2, 0),
                "after-commit:1": (1, 0)}.get(point, (0, 0))
    assert (report.committed, report.aborted) == expected


def test_recovery_rejects_actions_for_branches_not_in_doubt(bank, bank_dir):
    bank.crash = crash_at("after-prepare:2")
    with pytest.raises(Crash):
        bank.run("t1", transfer_work(Transfer(0, 1, 10), 2))
    fresh = reopen(bank_dir)
    assert set(fresh.in_doubt()) == {InDoubt("p1", "t1"), InDoubt("p2", "t1")}
    with pytest.raises(DatabaseError, match="not in doubt"):
        fresh.recover(lambda log, waiting: [Resolve("p1", "other", True)])
    with pytest.raises(DatabaseError, match="Resolve"):
        fresh.recover(lambda log, waiting: ["commit everything"])
    assert len(fresh.in_doubt()) == 2  # nothing was applied


def test_recovery_needs_its_step(bank, bank_dir):
    with pytest.raises(TypeError):
        bank.recover()  # type: ignore[call-arg]
    with pytest.raises(DatabaseError, match="recovery step"):
        bank.recover(None)  # type: ignore[arg-type]


def test_reference_recovery_is_presumed_abort():
    from dtcourse.db import LogEntry

    waiting = [InDoubt("p1", "a"), InDoubt("p2", "a"), InDoubt("p1", "b")]
    actions = recovery_step([LogEntry("a", ("p1", "p2"))], waiting)
    assert actions == [Resolve("p1", "a", True), Resolve("p2", "a", True),
                       Resolve("p1", "b", False)]


def test_a_new_bank_rolls_back_what_an_old_run_left_in_doubt(bank, bank_dir):
    bank.crash = crash_at("after-decision")
    with pytest.raises(Crash):
        bank.run("t1", transfer_work(Transfer(0, 1, 10), 2))
    fresh = reopen(bank_dir)
    assert len(fresh.in_doubt()) == 2
    assert create_bank(list(fresh.participants.values()), accounts=4, log=fresh.log) == 2
    assert fresh.in_doubt() == [] and fresh.log.entries() == []
    assert total(list(fresh.participants.values())) == 4000


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 700),
                  st.sampled_from((None, *crash_points(2)))),
        min_size=1, max_size=8,
    )
)
def test_any_mix_of_transfers_and_crashes_keeps_the_total(tmp_path_factory, steps):
    folder = tmp_path_factory.mktemp("prop")
    rms = [open_rm(folder, f"p{i}") for i in (1, 2)]
    log = DecisionLog(folder / "coordinator.db")
    create_bank(rms, accounts=4, log=log)
    for rm in rms:
        rm.close()
    log.close()
    for number, (source, target, amount, point) in enumerate(steps):
        if source % 2 == target % 2:
            continue
        coordinator = reopen(folder)
        coordinator.recover(recovery_step)
        coordinator.crash = crash_at(point) if point else crash_at("")
        with contextlib.suppress(Crash):
            coordinator.run(f"t{number}", transfer_work(Transfer(source, target, amount), 2))
        for rm in coordinator.participants.values():
            rm.close()
        coordinator.log.close()
    final = reopen(folder)
    final.recover(recovery_step)
    rms = list(final.participants.values())
    assert total(rms) == 4000
    assert all(b >= 0 for rm in rms for b in rm.balances().values())
    assert final.in_doubt() == []
    with sqlite3.connect(folder / "p1.db") as conn:
        assert conn.execute("SELECT count(*) FROM dtc_intents").fetchone() == (0,)


def test_in_doubt_lock_demo_on_sqlite(tmp_path):
    from dtcourse.db import in_doubt_lock_demo

    report = in_doubt_lock_demo(workdir=tmp_path, lock_timeout=0.1)
    assert report.in_doubt_before == ("p1:demo-1", "p2:demo-1")
    assert report.blocked and report.released
    assert report.in_doubt_after == ()
    text = str(report)
    assert "locked by prepared transaction demo-1" in text
    assert "An operator decides: abort demo-1" in text
    assert "dtcourse resolve demo-1 --abort: rolled back 2 branch(es) at p1, p2" in text
    assert "balance of account 0 is now 999" in text


def test_in_doubt_lock_demo_shows_a_commit_against_the_log_as_heuristic(tmp_path):
    from dtcourse.db import in_doubt_lock_demo

    report = in_doubt_lock_demo(workdir=tmp_path, lock_timeout=0.1, operator_decision="commit")
    assert report.blocked and report.released and report.in_doubt_after == ()
    text = str(report)
    assert "--commit --force" in text and "heuristic" in text
    assert "balance of account 0 is now 969" in text
    with pytest.raises(DatabaseError, match="operator_decision"):
        in_doubt_lock_demo(workdir=tmp_path, operator_decision="maybe")
