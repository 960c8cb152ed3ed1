"""What a phase notebook's first cells call: version check, parameters, grading mode.

nbgrader and papermill both run notebooks unattended. Under nbgrader the progress of
the instructor must not change, and tracebacks must stay short so that hidden tests do not
show up in feedback; under papermill the notebook uses the store it is given.

A kernel never makes a temporary folder of its own: it may die at any moment (a student's
``os._exit``, a crash, a timeout), and nothing inside it would then remove the folder.
The process that runs the notebooks owns the folder instead: it makes one, names it in
``$DTCOURSE_SCRATCH`` for the kernel, and removes it when the run ends, however it ends.
"""

from __future__ import annotations

import os
from pathlib import Path

from dtcourse import __version__
from dtcourse.errors import DTCourseError

GRADING_ENV = "NBGRADER_EXECUTION"
#: A folder for one run's throwaway files, made and removed by the process running the
#: notebook (``dtcourse grade`` sets it for every submission it grades).
SCRATCH_ENV = "DTCOURSE_SCRATCH"


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
        os.environ["DTCOURSE_PROGRESS"] = str(grading_progress_store())
        _minimal_tracebacks()
    elif progress_store:
        os.environ["DTCOURSE_PROGRESS"] = os.fspath(progress_store)


def grading_progress_store() -> Path:
    """Where progress goes while nbgrader runs the notebook: never the user's own store.

    In ``$DTCOURSE_SCRATCH`` when the grading process gave one; otherwise (nbgrader run
    by hand, or a student's Validate button) one throwaway file in the user cache folder,
    shared by every such run, so nothing piles up.
    """
    scratch = os.environ.get(SCRATCH_ENV, "").strip()
    if scratch:
        return Path(scratch) / "progress.sqlite"
    import platformdirs

    return platformdirs.user_cache_path("dtcourse", appauthor=False) / "grading-progress.sqlite"


def _minimal_tracebacks() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the notebook stack
        return
    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("xmode", "Minimal")
