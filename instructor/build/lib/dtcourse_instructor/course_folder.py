"""Where the course lives on disk: the folder with ``nbgrader_config.py``.

Instructors run commands inside a clone of the course, which may not be the clone the
package was installed from, so the folder is chosen in this order: ``--root`` when given,
the current folder when it holds ``nbgrader_config.py``, then the repository this package
was installed from (an editable install). Commands print the folder they use.
"""

from __future__ import annotations

from pathlib import Path

from dtcourse.errors import DTCourseError

__all__ = ["CONFIG_NAME", "course_root"]

CONFIG_NAME = "nbgrader_config.py"


def _is_course(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file()


def course_root(root: Path | None = None, *, cwd: Path | None = None) -> Path:
    """The course folder, checked to look like one."""
    if root is not None:
        candidate = root.resolve()
        if not _is_course(candidate):
            raise DTCourseError(
                f"{candidate} is not a course folder (no {CONFIG_NAME}); pass --root with the "
                "folder that holds course/, source/ and release/"
            )
        return candidate
    here = (cwd or Path.cwd()).resolve()
    if _is_course(here):
        return here
    installed_from = Path(__file__).resolve().parents[2]
    if _is_course(installed_from):
        return installed_from
    raise DTCourseError(
        f"{here} is not a course folder (no {CONFIG_NAME}): run this command inside the "
        "course repository or pass --root with its folder"
    )
