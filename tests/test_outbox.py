"""The transactional outbox under a crash at every step: nothing lost, nothing applied twice."""

from __future__ import annotations

import itertools

import pytest

from dtcourse.errors import DTCourseError
from dtcourse.lessons.outbox import deliver, verify

ORDERS = (("o1", 30), ("o2", 45), ("o3", 10))


def _points(tmp_path, **options) -> int:
    calm = deliver(tmp_path / "calm", ORDERS, **options)
    verify(calm)
    assert calm.crashes == 0 and calm.redelivered == 0
    return calm.points


def test_a_calm_run_ships_every_order_once(tmp_path):
    report = deliver(tmp_path, ORDERS)
    verify(report)
    assert report.committed == ("o1", "o2", "o3")
    assert report.applied == {"o1": 1, "o2": 1, "o3": 1}
    assert report.points == 3 * 3 + 3 * 2 + 3 * 3  # service, relay, consumer steps


def test_a_crash_between_every_pair_of_steps_loses_and_doubles_nothing(tmp_path):
    points = _points(tmp_path)
    redelivered = 0
    for point in range(1, points + 1):
        report = deliver(tmp_path / f"crash{point}", ORDERS, [point])
        verify(report)
        assert report.crashes == 1
        assert report.committed == ("o1", "o2", "o3")
        redelivered += report.redelivered
    assert redelivered > 0, "a relay crash after publishing must publish again (at least once)"


def test_two_crashes_anywhere_lose_and_double_nothing(tmp_path):
    points = _points(tmp_path)
    for first, gap in itertools.product(range(1, points + 1, 2), (1, 4)):
        report = deliver(tmp_path / f"c{first}-{gap}", ORDERS, [first, first + gap])
        verify(report)


def test_the_naive_dual_write_loses_a_message(tmp_path):
    points = _points(tmp_path, outbox=False)
    lost = []
    for point in range(1, points + 1):
        report = deliver(tmp_path / f"naive{point}", ORDERS, [point], outbox=False)
        lost.extend(report.lost)
    assert lost, "a crash between the commit and the publish should lose the message"
    with pytest.raises(AssertionError, match="messages lost"):
        verify(deliver(tmp_path / "naive-again", ORDERS, [2], outbox=False))


def test_a_consumer_without_deduplication_applies_an_effect_twice(tmp_path):
    points = _points(tmp_path, dedup=False)
    doubled = []
    for point in range(1, points + 1):
        report = deliver(tmp_path / f"nodedup{point}", ORDERS, [point], dedup=False)
        doubled.extend(report.doubled)
    assert doubled
    with pytest.raises(AssertionError, match="applied twice"):
        bad = next(
            r
            for p in range(1, points + 1)
            if (r := deliver(tmp_path / f"again{p}", ORDERS, [p], dedup=False)).doubled
        )
        verify(bad)


def test_a_used_folder_is_refused(tmp_path):
    deliver(tmp_path, ORDERS)
    with pytest.raises(DTCourseError, match="use an empty folder"):
        deliver(tmp_path, ORDERS)
