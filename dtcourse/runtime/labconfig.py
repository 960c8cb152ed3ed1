"""The student's JupyterLab: no instructor tools, whatever else is installed.

A student who installs only the wheel has no nbgrader at all. Where nbgrader is installed
too (an instructor trying the student view, or a hub image with both), ``dtcourse lab``
hides its instructor tools (formgrader, create assignment, the course list and the
Nbgrader menu) through an extra Jupyter configuration folder put first on
``JUPYTER_CONFIG_PATH``; the assignment list and validation stay, since students use them
to fetch, check and submit on a course hub.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "HIDDEN_LAB_PLUGINS",
    "HIDDEN_SERVER_EXTENSIONS",
    "student_lab_environment",
    "write_student_config",
]

HIDDEN_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:menu",
)
HIDDEN_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
CONFIG_FOLDER = Path(".dtcourse", "jupyter-config")


def write_student_config(workspace: Path) -> Path:
    """Write the configuration folder inside the workspace and return it."""
    folder = workspace / CONFIG_FOLDER
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    page = {"disabledExtensions": {plugin: True for plugin in HIDDEN_LAB_PLUGINS}}
    server = {
        "ServerApp": {"jpserver_extensions": {name: False for name in HIDDEN_SERVER_EXTENSIONS}}
    }
    _write_json(folder / "labconfig" / "page_config.json", page)
    _write_json(folder / "jupyter_server_config.json", server)
    return folder


def student_lab_environment(
    workspace: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment JupyterLab runs in: the student configuration wins over the rest."""
    env = dict(os.environ if base is None else base)
    folder = write_student_config(workspace)
    rest = env.get("JUPYTER_CONFIG_PATH")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(folder), *([rest] if rest else [])])
    return env


def _write_json(path: Path, value: object) -> None:
    text = json.dumps(value, indent=1, sort_keys=True) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
