"""Where the course lives on disk.

The package is installed editable from the course repository, so the course root (with
``course/``, ``source/``, ``release/`` and ``nbgrader_config.py``) is the parent of the
package folder. Commands take ``--root`` to work on a copy.
"""

from __future__ import annotations

from pathlib import Path

from dtcourse.errors import DTCourseError


def course_root(root: Path | None = None) -> Path:
    """The course root, checked to look like one."""
    candidate = (root or Path(__file__).resolve().parent.parent).resolve()
    if not (candidate / "nbgrader_config.py").exists():
        raise DTCourseError(
            f"{candidate} is not a course folder (no nbgrader_config.py); pass --root with the "
            "folder that holds course/, source/ and release/"
        )
    return candidate
