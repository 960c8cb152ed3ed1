"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_progress_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the progress store at a temporary file, so no test touches a real one."""
    path = tmp_path / "progress" / "progress.sqlite"
    monkeypatch.setenv("DTCOURSE_PROGRESS", str(path))
    return path
