"""The student's JupyterLab hides nbgrader's instructor tools even where nbgrader is installed."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser_support import jupyter_lab

from dtcourse.runtime.labconfig import HIDDEN_LAB_PLUGINS, student_lab_environment

pytestmark = pytest.mark.slow


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _page_config(url: str) -> dict:
    with urllib.request.urlopen(f"{url}lab", timeout=20) as response:
        html = response.read().decode()
    found = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S)
    assert found, "the lab page carries no configuration"
    return json.loads(found.group(1))


def test_student_lab_hides_instructor_tools_that_a_plain_lab_shows(tmp_path: Path) -> None:
    with jupyter_lab(tmp_path / "plain") as plain:
        assert _status(f"{plain.url}formgrader") == 200
        assert not set(HIDDEN_LAB_PLUGINS) & set(_page_config(plain.url)["disabledExtensions"])
    workspace = tmp_path / "student" / "notebooks"
    workspace.mkdir(parents=True)
    env = student_lab_environment(workspace, {})
    extra = {"JUPYTER_CONFIG_PATH": env["JUPYTER_CONFIG_PATH"]}
    with jupyter_lab(tmp_path / "student", env=extra) as student:
        assert _status(f"{student.url}formgrader") == 404
        disabled = _page_config(student.url)["disabledExtensions"]
        assert set(HIDDEN_LAB_PLUGINS) <= set(disabled)
        assert "@jupyter/nbgrader:assignment-list" not in disabled
