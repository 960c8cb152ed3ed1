"""What a phase notebook's first cells call: version check, parameters, grading mode.

nbgrader and papermill both run notebooks unattended. Under nbgrader the progress of
the instructor must not change, and tracebacks must stay short so that hidden tests do not
show up in feedback; under papermill the notebook uses the store it is given.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dtcourse import __version__
from dtcourse.errors import DTCourseError

GRADING_ENV = "NBGRADER_EXECUTION"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def grading() -> bool:
    """True while nbgrader autogrades or validates this notebook."""
    return bool(os.environ.get(GRADING_ENV))


def setup(required_version: str, progress_store: str | os.PathLike[str] | None = None) -> None:
    """Check the installed dtcourse and choose where progress goes.

    Called by the locked first cell with the version the notebook was built against.
    """
    if _version_tuple(__version__) < _version_tuple(required_version):
        raise DTCourseError(
            f"this notebook needs dtcourse {required_version} or newer, but {__version__} "
            "is installed; run `make lab` from the course folder to update it"
        )
    if grading():
        scratch = Path(tempfile.mkdtemp(prefix="dtcourse-grading-"))
        os.environ["DTCOURSE_PROGRESS"] = str(scratch / "progress.sqlite")
        _minimal_tracebacks()
    elif progress_store:
        os.environ["DTCOURSE_PROGRESS"] = os.fspath(progress_store)


def _minimal_tracebacks() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the notebook stack
        return
    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("xmode", "Minimal")
