"""Read-process-write over a log: at-least-once against transactions with markers and epochs."""

from __future__ import annotations

import itertools

import pytest

from dtcourse.errors import DTCourseError
from dtcourse.lessons.log_transactions import (
    MODES,
    Fenced,
    LogRecord,
    crash_points,
    pipeline,
    read_committed,
    read_uncommitted,
    zombie_demo,
)

KEYS = ("p1", "p2", "p3", "p4")


@pytest.mark.parametrize("mode", MODES)
def test_without_crashes_every_record_is_processed_once(mode):
    run = pipeline(mode)
    assert run.committed_view == run.uncommitted_view == KEYS
    assert run.exactly_once and run.crashes == 0


def test_at_least_once_repeats_work_after_a_crash_between_output_and_offset():
    names = pipeline("at-least-once").point_names
    between = names.index("output for p2 written") + 1
    run = pipeline("at-least-once", [between])
    assert run.crashes == 1
    assert run.duplicates() == ("p2",)
    assert run.committed_view == ("p1", "p2", "p2", "p3", "p4")
    assert run.lost == ()


def test_at_least_once_never_loses_but_often_duplicates():
    points = crash_points("at-least-once")
    runs = [pipeline("at-least-once", [k]) for k in range(1, points + 1)]
    assert all(r.lost == () for r in runs)
    assert sum(bool(r.duplicates()) for r in runs) == len(KEYS)  # one per output write


def test_transactional_is_exactly_once_for_read_committed_at_every_crash_point():
    points = crash_points("transactional")
    assert points == 13
    for k in range(1, points + 1):
        run = pipeline("transactional", [k])
        assert run.exactly_once, (k, run.events)
        assert run.crashes == 1


def test_transactional_survives_two_crashes_anywhere():
    points = crash_points("transactional")
    for pair in itertools.combinations(range(1, points + 4), 2):
        run = pipeline("transactional", pair)
        assert run.exactly_once, (pair, run.events)


def test_read_uncommitted_sees_the_aborted_attempts():
    names = pipeline("transactional").point_names
    run = pipeline("transactional", [names.index("offset added") + 1])
    assert run.exactly_once
    assert run.duplicates("read_uncommitted") == ("p1", "p2")
    assert any("aborts" in line for line in run.events)


def test_a_crash_after_the_commit_point_rolls_forward():
    names = pipeline("transactional").point_names
    run = pipeline("transactional", [names.index("prepare commit logged") + 1])
    assert any("rolls e1.t1 forward" in line for line in run.events)
    assert run.duplicates("read_uncommitted") == ()  # nothing was redone
    assert run.exactly_once


def test_a_zombie_is_fenced_and_its_output_never_seen():
    run = zombie_demo()
    assert run.committed_view == KEYS
    assert run.uncommitted_view == ("p1", *KEYS)
    assert any("fenced" in line for line in run.events)
    aborted = {r.txn for r in run.output if r.marker == "abort"}
    assert aborted == {"e1.t1"}


def test_read_committed_stops_at_an_open_transaction():
    records = [
        LogRecord(0, "a", 1),
        LogRecord(1, "b", 2, "t1"),
        LogRecord(2, "c", 3, "t2"),
        LogRecord(3, "marker", 0, "t2", "commit"),
        LogRecord(4, "d", 4),
    ]
    assert [r.key for r in read_committed(records)] == ["a"]  # t1 is still open
    closed = [*records, LogRecord(5, "marker", 0, "t1", "abort")]
    assert [r.key for r in read_committed(closed)] == ["a", "c", "d"]
    assert [r.key for r in read_uncommitted(closed)] == ["a", "b", "c", "d"]


def test_fenced_is_a_course_error_with_guidance():
    assert issubclass(Fenced, DTCourseError)
    with pytest.raises(DTCourseError, match="unknown mode"):
        pipeline("exactly-once")
    with pytest.raises(DTCourseError, match="positive number"):
        pipeline(records=0)
    with pytest.raises(DTCourseError, match="batch"):
        pipeline(batch=0)


@pytest.mark.parametrize("batch", [1, 3, 5])
def test_any_batch_size_is_exactly_once(batch):
    points = crash_points("transactional", records=5, batch=batch)
    for k in range(1, points + 1):
        assert pipeline("transactional", [k], records=5, batch=batch).exactly_once
