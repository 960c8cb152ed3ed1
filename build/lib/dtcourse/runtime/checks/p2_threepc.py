"""Visible checks of p2.threepc. TEMPORARY: re-exports the instructor's checks until
answer-free ones replace them."""

from dtcourse_instructor.grader.phase2_threepc import EXERCISE as _THREEPC

__all__ = ["EXERCISE"]

EXERCISE = _THREEPC
