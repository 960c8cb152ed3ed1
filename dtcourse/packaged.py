"""Files the build writes into the package: read them back, refusing a missing or foreign one.

Recorded costs, recorded saga runs and the visible cases are JSON documents with a
``format`` number; a file that is missing or of another format means the installation is
broken, and the message says so in words a student can act on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dtcourse.errors import DTCourseError

__all__ = ["load_packaged"]


def load_packaged(path: Path, what: str, format_number: int) -> dict[str, Any]:
    """The document at ``path`` (``what`` names it in errors), checked to be of the format."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DTCourseError(f"{what} are missing ({path}); reinstall dtcourse") from None
    if document.get("format") != format_number:
        raise DTCourseError(
            f"{path} has format {document.get('format')!r}, this dtcourse reads "
            f"{format_number}; reinstall dtcourse"
        )
    return dict(document)
