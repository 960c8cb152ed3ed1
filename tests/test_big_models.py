"""Bigger models checked completely: the state counts pin the engine's semantics, and the
verdicts the protocols' correctness under failures. Slow (tens of seconds each)."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit import properties
from dtcourse.commit.protocols import build
from dtcourse.commit.protocols.catalog import build as build_variant
from dtcourse.engine.checker import check

pytestmark = pytest.mark.slow


def test_3pc_with_three_participants_and_two_crashes_is_atomic_and_non_blocking() -> None:
    result = check(build("3pc", 3, crashes=2, rule=terminate))
    assert result.complete and result.ok, result.summary()
    assert (result.distinct, result.generated, result.depth) == (507_824, 2_588_203, 33)
    assert {properties.SOME_COMMIT, properties.SOME_ABORT} <= set(result.examples)


def test_paxos_commit_f1_survives_a_crash_and_recovery_completely() -> None:
    system = build_variant("paxos commit", 1, "any", crashes=1, recover=True)
    result = check(system)
    assert result.complete and result.ok, result.summary()
    assert (result.distinct, result.generated, result.depth) == (1_817_484, 10_032_568, 28)
