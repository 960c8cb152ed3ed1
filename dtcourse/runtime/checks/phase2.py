"""TEMPORARY: answer-free checks replace this."""

from dtcourse_instructor.grader.phase2 import EXERCISES

__all__ = ["EXERCISES"]
