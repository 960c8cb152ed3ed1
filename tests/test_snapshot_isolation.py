"""Snapshot isolation per site against one timestamp oracle, on the reading's transfer."""

from __future__ import annotations

import itertools

import pytest
from dtcourse_instructor.reference.p1_serializability import is_conflict_serializable

from dtcourse.errors import DTCourseError
from dtcourse.lessons.histories import local_history
from dtcourse.lessons.snapshot_isolation import (
    BANKS,
    CLOCKS,
    audit_demo,
    begin,
    commit,
    prepare,
    read,
    run_schedule,
    transfer_and_audit,
    write,
)

TRANSFER = (
    begin("T1"),
    read("T1", "x", "A"),
    write("T1", "x", "A", 400),
    read("T1", "y", "B"),
    write("T1", "y", "B", 300),
    prepare("T1"),
)
COMMITS = (commit("T1", "A"), commit("T1", "B"))
AUDIT = (begin("T2"), read("T2", "x", "A"), read("T2", "y", "B"))


def interleavings():
    """Every schedule that runs the transfer's two site commits and the audit's three steps
    in their own orders, interleaved in every way, after the transfer has prepared."""
    for slots in itertools.combinations(range(5), 2):
        commits, audit = iter(COMMITS), iter(AUDIT)
        tail = [next(commits) if i in slots else next(audit) for i in range(5)]
        yield (*TRANSFER, *tail, commit("T2"))


def test_local_clocks_let_the_audit_see_half_a_transfer():
    run = audit_demo("local")
    assert run.value("T2", "x", "A") == 400  # the debit, committed at bank A
    assert run.value("T2", "y", "B") == 200  # not the credit, still in flight to bank B
    assert run.total("T2") == 600
    assert not run.snapshot_consistent
    assert run.fractured == ("T2 saw T1's write of x@A but not of y@B",)
    assert run.committed == ("T1", "T2") and run.aborted == ()


def test_each_site_is_serializable_but_the_global_history_is_not():
    run = audit_demo("local")
    assert run.history == "r1[x]@A r1[y]@B w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2"
    for site in ("A", "B"):
        assert is_conflict_serializable(local_history(run.history, site))
    assert not is_conflict_serializable(run.history)


def test_the_oracle_makes_the_audit_wait_for_the_credit():
    run = audit_demo("oracle")
    assert run.total("T2") == 700
    assert run.snapshot_consistent
    waited = [r for r in run.reads if r.waited]
    assert [(r.txn, r.item, r.site, r.value, r.writer) for r in waited] == [
        ("T2", "y", "B", 300, "T1")
    ]
    assert is_conflict_serializable(run.history)
    assert run.history.index("w1[y]@B") < run.history.index("r2[y]@B")
    assert any("waits" in line for line in run.log)


def test_an_audit_that_began_before_the_commit_timestamp_sees_neither_write():
    schedule = (*TRANSFER, begin("T2"), *COMMITS, read("T2", "x", "A"), read("T2", "y", "B"),
                commit("T2"))  # fmt: skip
    run = run_schedule(schedule, clock="oracle")
    assert (run.value("T2", "x", "A"), run.value("T2", "y", "B")) == (500, 200)
    assert not any(r.waited for r in run.reads)
    # The reads happened after the writes in real time, but read the older versions: the
    # history puts them first, so its precedence graph says T2 before T1.
    assert run.history.startswith("r1[x]@A r1[y]@B r2[x]@A w1[x]@A r2[y]@B w1[y]@B")
    assert is_conflict_serializable(run.history)


@pytest.mark.parametrize("schedule", list(interleavings()), ids=lambda s: "-".join(
    f"{step.txn}{step.action[0]}{step.site or ''}" for step in s[6:-1]))
def test_every_interleaving_under_the_oracle_reads_one_snapshot(schedule):
    run = run_schedule(schedule, clock="oracle")
    assert run.snapshot_consistent, run.summary()
    assert run.total("T2") == 700
    assert is_conflict_serializable(run.history)
    assert run.waiting == ()


def test_some_interleaving_under_local_clocks_breaks_the_snapshot():
    broken = [s for s in interleavings() if not run_schedule(s, clock="local").snapshot_consistent]
    assert broken
    for schedule in broken:
        run = run_schedule(schedule, clock="local")
        assert run.total("T2") != 700
        assert not is_conflict_serializable(run.history)


@pytest.mark.parametrize("clock", CLOCKS)
def test_first_committer_wins_at_a_site(clock):
    schedule = (
        begin("T1"), begin("T3"),
        read("T1", "x", "A"), read("T3", "x", "A"),
        write("T1", "x", "A", 450), write("T3", "x", "A", 480),
        prepare("T1"), commit("T1"),
        prepare("T3"), commit("T3"),
    )  # fmt: skip
    run = run_schedule(schedule, clock=clock)
    assert run.committed == ("T1",)
    assert run.aborted == ("T3",)
    assert "first committer wins" in "\n".join(run.log)
    assert "w3" not in run.history and run.history.endswith("c1 a3")


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_transaction_reads_its_own_write(clock):
    schedule = (begin("T1"), write("T1", "x", "A", 1), read("T1", "x", "A"), prepare("T1"),
                commit("T1"))  # fmt: skip
    run = run_schedule(schedule, clock=clock)
    assert run.value("T1", "x", "A") == 1


def test_a_prepared_lock_blocks_a_second_writer_under_both_clocks():
    for clock in CLOCKS:
        schedule = (begin("T1"), write("T1", "y", "B", 1), prepare("T1"), begin("T2"),
                    write("T2", "y", "B", 2), prepare("T2"), commit("T1"))  # fmt: skip
        run = run_schedule(schedule, clock=clock)
        assert run.aborted == ("T2",), clock
        assert any("locked by T1" in line for line in run.log)


def test_steps_of_a_waiting_transaction_queue_behind_its_read():
    schedule = (*TRANSFER, commit("T1", "A"), *AUDIT, read("T2", "x", "A"), commit("T2"),
                commit("T1", "B"))  # fmt: skip
    run = run_schedule(schedule, clock="oracle")
    t2 = [(r.item, r.value) for r in run.reads if r.txn == "T2"]
    assert t2 == [("x", 400), ("y", 300), ("x", 400)]
    assert run.committed == ("T1", "T2")


def test_a_read_still_waiting_at_the_end_is_reported():
    schedule = (*TRANSFER, commit("T1", "A"), *AUDIT)
    run = run_schedule(schedule, clock="oracle")
    assert run.waiting == ("T2 waits to read y@B",)
    assert "T2" not in run.committed
    assert "still waiting" in run.summary()


def test_the_reading_schedule_and_banks():
    assert BANKS == {("x", "A"): 500, ("y", "B"): 200}
    steps = transfer_and_audit()
    assert [str(step) for step in steps[6:10]] == [
        "T1 commits at A", "T2 begins", "T2 reads x@A", "T2 reads y@B",
    ]


def test_mistakes_are_refused_with_guidance():
    with pytest.raises(DTCourseError, match="unknown clock 'vector'"):
        run_schedule((), clock="vector")
    with pytest.raises(DTCourseError, match="T followed by a number"):
        run_schedule((begin("audit"),))
    with pytest.raises(DTCourseError, match=r"add prepare\('T1'\) first"):
        run_schedule((write("T1", "x", "A", 1), commit("T1")))
    with pytest.raises(DTCourseError, match="no initial value"):
        run_schedule((read("T1", "z", "C"),))
    with pytest.raises(DTCourseError, match="never read"):
        audit_demo().value("T1", "z", "C")
    with pytest.raises(DTCourseError, match="Step values"):
        run_schedule(["T1 reads x"])  # type: ignore[list-item]
