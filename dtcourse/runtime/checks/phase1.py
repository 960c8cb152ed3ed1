"""TEMPORARY: answer-free checks replace this."""

from dtcourse_instructor.grader.phase1 import EXERCISES

__all__ = ["EXERCISES"]
