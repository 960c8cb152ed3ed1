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
