"""dtcourse: an interactive course on distributed transactions.

Importing the package has no side effects: nothing is configured, opened or drawn.
The version lives in the repository's ``VERSION`` file and reaches Python through the
installed distribution's metadata, so the wheel, the instructor package and the notebooks
agree on one number.
"""

from importlib.metadata import version
from typing import Any

__version__ = version("dtcourse")
__all__ = ["__version__", "check"]


def check(exercise_id: str, obj: Any) -> None:
    """Run an exercise's visible checks, print the verdict and record a pass."""
    from dtcourse.runtime.checks import check as run_check

    run_check(exercise_id, obj)
