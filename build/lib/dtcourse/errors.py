"""One small error hierarchy, so every front end can turn failures into a one-line message.

Each message says what was wrong and what to do about it; the command line prints it
without a traceback and exits non-zero.
"""


class DTCourseError(Exception):
    """Base of every error the course raises on purpose."""


class SyllabusError(DTCourseError):
    """The syllabus data is malformed."""


class ProgressError(DTCourseError):
    """The progress store cannot be used (corrupt, foreign, unknown item)."""


class ModelError(DTCourseError):
    """A model or actor handler misbehaved."""


class DatabaseError(DTCourseError):
    """A resource manager or the coordinator's log failed."""


class GradingError(DTCourseError):
    """Building, running or grading notebooks failed."""
