"""Check messages say what is wrong and what to do (deadlock victim, presumed abort)."""

from __future__ import annotations

import pytest
from dtcourse_instructor.grader.phase2 import deadlock_victim
from dtcourse_instructor.reference.p2_deadlock import find_cycle

from dtcourse.commit.protocols import variants
from dtcourse.engine.actors import Node
from dtcourse.lessons.deadlock import global_graph
from dtcourse.runtime.checks.p3_presumed_abort import _classes


def victim_outside_the_cycle(local, started):
    """A real cycle, but the victim is a transaction that is not on it."""
    cycle = find_cycle(global_graph(local))
    outside = sorted(set(started) - set(cycle)) or ["T999"]
    return cycle, outside[0]


def test_a_victim_outside_the_cycle_is_called_that():
    with pytest.raises(AssertionError) as caught:
        deadlock_victim(victim_outside_the_cycle)
    message = str(caught.value)
    assert "is not in the cycle" in message and "aborting it breaks no cycle" in message
    assert "Choose the victim among the cycle's transactions" in message


class BorrowedCoordinator(variants.Coordinator):
    pass


class OwnParticipant(Node):
    pass


def test_a_presumed_abort_class_built_on_the_package_says_why_and_what_to_do():
    with pytest.raises(AssertionError) as caught:
        _classes((BorrowedCoordinator, OwnParticipant))
    message = str(caught.value)
    assert "answers nothing" not in message
    assert "subclasses dtcourse.commit.protocols.variants.Coordinator" in message
    assert "would then judge the course's own protocol code, not yours" in message
    assert "Make BorrowedCoordinator a plain dtcourse.engine.actors.Node subclass" in message
