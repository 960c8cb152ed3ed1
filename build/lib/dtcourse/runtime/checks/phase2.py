"""The visible checks of Core Concepts, one module per exercise."""

from dtcourse.runtime.checks import (
    Exercise,
    p2_blocking,
    p2_deadlock,
    p2_recovery,
    p2_threepc,
    p2_twopc_coordinator,
    p2_twopc_participant,
)

__all__ = ["EXERCISES"]

EXERCISES: tuple[Exercise, ...] = (
    p2_twopc_participant.EXERCISE,
    p2_twopc_coordinator.EXERCISE,
    p2_blocking.EXERCISE,
    p2_threepc.EXERCISE,
    p2_recovery.EXERCISE,
    p2_deadlock.EXERCISE,
)
