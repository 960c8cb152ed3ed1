"""The PostgreSQL participant, recovery and crash torture against a throwaway cluster."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference.p2_recovery import recovery_step

from dtcourse.db import Coordinator, DecisionLog, LockTimeout, Resolve, Update, Vote, Xid
from dtcourse.db.bank import Transfer, create_bank, torture, transfer_work
from dtcourse.db.base import total
from dtcourse.db.postgres_rm import PostgresResourceManager
from dtcourse.errors import DatabaseError


def abort_everything(log, in_doubt):
    """Wrong: ignores the coordinator's log."""
    return [Resolve(d.participant, d.gtrid, False) for d in in_doubt]


@pytest.fixture
def site(pg_dsns):
    (dsn,) = pg_dsns(1)
    rm = PostgresResourceManager(dsn, "p1", lock_timeout=0.2)
    rm.create_bank({0: 100, 1: 100})
    yield rm
    rm.close()


def prepare(rm, gtrid: str, account: int, delta: int) -> Vote:
    xid = Xid(gtrid, rm.name)
    rm.begin(xid)
    rm.execute(xid, Update(account, delta))
    return rm.prepare(xid)


def test_prepared_transaction_survives_the_connection_and_commits(site):
    assert prepare(site, "g1", 0, -40) is Vote.YES
    gids = [row[0] for row in site.prepared_xacts()]
    assert len(gids) == 1  # shown in pg_prepared_xacts
    dsn = site.dsn
    site.close()  # the client dies: the prepared transaction stays
    again = PostgresResourceManager(dsn, "p1")
    assert again.in_doubt() == [Xid("g1", "p1")]
    again.commit_prepared(Xid("g1", "p1"))
    again.commit_prepared(Xid("g1", "p1"))  # idempotent
    assert again.balances() == {0: 60, 1: 100}
    assert again.applied() == {"g1"} and again.in_doubt() == []
    again.close()


def test_prepared_transaction_keeps_its_row_lock(site):
    assert prepare(site, "holder", 0, -1) is Vote.YES
    other = PostgresResourceManager(site.dsn, "p1", lock_timeout=0.2)
    xid = Xid("writer", "p1")
    other.begin(xid)
    with pytest.raises(LockTimeout, match="locked"):
        other.execute(xid, Update(0, 5))
    site.rollback_prepared(Xid("holder", "p1"))
    other.begin(xid)
    other.execute(xid, Update(0, 5))
    assert other.commit_one_phase(xid)
    assert other.balances()[0] == 105
    other.close()


def test_votes_no_on_overdraft_and_unknown_account(site):
    assert prepare(site, "g1", 0, -101) is Vote.NO
    assert prepare(site, "g2", 9, 1) is Vote.NO
    assert site.in_doubt() == [] and site.balances() == {0: 100, 1: 100}


def test_create_bank_refuses_while_in_doubt(site):
    prepare(site, "g1", 0, -1)
    with pytest.raises(DatabaseError, match="in-doubt"):
        site.create_bank({0: 1})
    site.rollback_prepared(Xid("g1", "p1"))


def test_clear_errors_for_bad_servers(pg_cluster):
    with pytest.raises(DatabaseError, match="cannot connect"):
        PostgresResourceManager(pg_cluster.dsn("no_such_db"))
    with pytest.raises(DatabaseError, match="cannot connect"):
        PostgresResourceManager("host=/nonexistent port=1 user=x dbname=y")


def test_coordinator_recovery_across_two_databases(pg_dsns, tmp_path):
    dsns = pg_dsns(2)
    rms = [PostgresResourceManager(dsn, f"p{i + 1}") for i, dsn in enumerate(dsns)]
    log = DecisionLog(tmp_path / "coordinator.db")
    create_bank(rms, accounts=4, log=log)

    def crash(point: str) -> None:
        if point == "after-commit:1":
            raise RuntimeError("crash")

    coordinator = Coordinator(log, rms, crash=crash)
    with pytest.raises(RuntimeError):
        coordinator.run("t1", transfer_work(Transfer(0, 1, 10), 2))
    assert [d.participant for d in coordinator.in_doubt()] == ["p2"]
    report = Coordinator(log, rms).recover(recovery_step)
    assert (report.committed, report.aborted, report.forgotten) == (1, 0, 1)
    assert total(rms) == 4000 and all("t1" in rm.applied() for rm in rms)
    for rm in rms:
        rm.close()
    log.close()


def test_reference_recovery_survives_200_crash_injected_transfers_on_postgres(pg_dsns, tmp_path):
    report = torture(recovery_step, backend="postgres", transfers=200, seed=3, dsns=pg_dsns(3),
                     workdir=tmp_path, batch=12)
    assert report.ok, report.violations
    assert report.transfers >= 200 and report.crashes >= 20
    assert report.resolved > 0 and report.committed > 0
    assert report.balance_after == report.balance_before
    assert (report.in_doubt_left, report.lost_acknowledged, report.partial_commits) == (0, 0, 0)


def test_the_postgres_torture_catches_a_wrong_recovery(pg_dsns, tmp_path):
    report = torture(abort_everything, backend="postgres", transfers=100, seed=0,
                     dsns=pg_dsns(3), workdir=tmp_path)
    assert not report.ok and report.lost_acknowledged > 0


def test_in_doubt_lock_demo_on_postgres(pg_dsns, tmp_path):
    from dtcourse.db import in_doubt_lock_demo

    (dsn,) = pg_dsns(1)
    report = in_doubt_lock_demo("postgres", dsn=dsn, workdir=tmp_path, lock_timeout=0.1)
    assert report.in_doubt_before == ("p1:demo-1",)
    assert report.blocked and report.released and report.in_doubt_after == ()
    assert "pg_prepared_xacts at p1: gid=" in str(report)
