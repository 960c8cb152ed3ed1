"""Crash torture: a real child process killed with SIGKILL, then recovery, then checks."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from dtcourse_instructor.reference.p2_recovery import recovery_step

from dtcourse.db import InDoubt, LogEntry, Resolve
from dtcourse.db.bank import torture


def abort_everything(log: Sequence[LogEntry], in_doubt: Sequence[InDoubt]) -> list[Resolve]:
    """Wrong: ignores the log, so it aborts transactions that were already committed."""
    return [Resolve(d.participant, d.gtrid, False) for d in in_doubt]


def commit_everything(log: Sequence[LogEntry], in_doubt: Sequence[InDoubt]) -> list[Resolve]:
    """Wrong: commits branches whose transaction never reached a commit decision."""
    return [Resolve(d.participant, d.gtrid, True) for d in in_doubt]


def do_nothing(log: Sequence[LogEntry], in_doubt: Sequence[InDoubt]) -> list[Resolve]:
    """Wrong: leaves in-doubt branches holding their locks forever."""
    return []


def test_reference_recovery_survives_200_crash_injected_transfers_on_sqlite(tmp_path):
    report = torture(recovery_step, backend="sqlite", transfers=200, seed=0, workdir=tmp_path)
    assert report.ok, report.violations
    assert report.transfers >= 200
    assert report.crashes >= 20  # one kill per child batch of at most 8 transfers
    assert report.resolved > 0  # some crashes left branches in doubt
    assert report.committed > 0 and report.aborted > 0
    assert report.committed + report.aborted == report.transfers
    assert report.balance_after == report.balance_before == 12 * 1000
    assert (report.in_doubt_left, report.lost_acknowledged, report.partial_commits) == (0, 0, 0)


@pytest.mark.parametrize(
    ("wrong", "symptom"),
    [
        (abort_everything, "lost_acknowledged"),
        (commit_everything, "partial_commits"),
        (do_nothing, "in_doubt_left"),
    ],
)
def test_the_torture_catches_a_wrong_recovery(tmp_path, wrong, symptom):
    report = torture(wrong, backend="sqlite", transfers=100, seed=0, workdir=tmp_path)
    assert not report.ok
    assert getattr(report, symptom) > 0
    assert report.violations
    assert "FAILED" in str(report)


def test_a_recovery_that_raises_is_reported_clearly(tmp_path):
    from dtcourse.errors import DatabaseError

    def broken(log, in_doubt):
        return [("p1", d.gtrid, True) for d in in_doubt]

    with pytest.raises(DatabaseError, match="Resolve"):
        torture(broken, backend="sqlite", transfers=100, seed=0, workdir=tmp_path)


def test_torture_rejects_impossible_shapes(tmp_path):
    from dtcourse.errors import DatabaseError

    with pytest.raises(DatabaseError, match="at least 2 participants"):
        torture(recovery_step, participants=1, workdir=tmp_path)
    with pytest.raises(DatabaseError, match="accounts"):
        torture(recovery_step, accounts=1, workdir=tmp_path)


# -- a second run in the same folder -------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def bank_where(request, tmp_path) -> dict:
    """Where a bank lives: a folder for SQLite; for PostgreSQL, databases that outlive a run."""
    where = {"backend": request.param, "workdir": tmp_path / "bank"}
    if request.param == "postgres":
        where["dsns"] = request.getfixturevalue("pg_dsns")(3)
    return where


def applied_gtrids(where: dict) -> set[str]:
    """Every gtrid committed at any participant."""
    from dtcourse.db.bank import open_site, postgres_sites, sqlite_sites

    sites = (
        postgres_sites(where["dsns"]) if "dsns" in where else sqlite_sites(where["workdir"], 3)
    )
    found: set[str] = set()
    for site in sites:
        with open_site(site) as rm:
            found |= rm.applied()
    return found


@pytest.mark.parametrize("crash_every", [0, 10])
def test_a_second_run_in_the_same_place_continues_the_bank_with_new_gtrids(
    bank_where, crash_every
):
    from dtcourse.db.bank import run_bank

    options = {"participants": 3, "transfers": 40, "crash_every": crash_every, "seed": 7}
    first = run_bank(**bank_where, **options, recovery=recovery_step)
    applied_first = applied_gtrids(bank_where)
    second = run_bank(**bank_where, **options, recovery=recovery_step)
    applied_second = applied_gtrids(bank_where)
    for report in (first, second):
        assert report.ok, report.violations
        assert report.transfers >= 40
        assert report.total_before == report.total_after == 12 * 1000
    assert not first.continued and "new bank" in first.note
    assert second.continued and "continuing the bank" in second.note
    assert first.run != second.run
    # The second run kept the first run's commits and added its own, under new gtrids.
    assert applied_first < applied_second
    assert len(applied_first) == first.committed
    assert len(applied_second) == first.committed + second.committed


def test_a_fresh_run_replaces_the_bank_and_still_uses_new_gtrids(bank_where):
    from dtcourse.db.bank import run_bank

    options = {"participants": 3, "transfers": 30, "crash_every": 6, "seed": 7}
    first = run_bank(**bank_where, **options, recovery=recovery_step)
    before = applied_gtrids(bank_where)
    second = run_bank(**bank_where, **options, fresh=True, recovery=recovery_step)
    after = applied_gtrids(bank_where)
    assert first.ok and second.ok, (first.violations, second.violations)
    assert not second.continued and "new bank" in second.note and "--fresh" in second.note
    assert after and not after & before  # a new bank, and no gtrid of the old one again


def test_a_bank_of_another_shape_is_replaced_and_the_note_says_why(tmp_path):
    from dtcourse.db.bank import run_bank

    run_bank(workdir=tmp_path, participants=2, accounts=6, transfers=5)
    report = run_bank(workdir=tmp_path, participants=2, accounts=8, transfers=5)
    assert report.ok and not report.continued
    assert "new bank" in report.note and "6 accounts" in report.note


def test_the_torture_run_twice_in_one_folder_keeps_every_check(tmp_path):
    options = {"backend": "sqlite", "transfers": 60, "seed": 7, "batch": 10}
    first = torture(recovery_step, **options, workdir=tmp_path)
    second = torture(recovery_step, **options, workdir=tmp_path)
    assert first.ok and second.ok, (first.violations, second.violations)
    assert first.transfers >= 60 and second.transfers >= 60
    assert first.run != second.run
