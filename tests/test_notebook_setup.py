"""The notebooks' first cell: where progress goes while a tool runs the notebook."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from leak_support import leftover_folders

from dtcourse.runtime.notebook import GRADING_ENV, SCRATCH_ENV, setup


@pytest.fixture
def grading(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv(GRADING_ENV, "autograde")
    monkeypatch.delenv(SCRATCH_ENV, raising=False)
    return monkeypatch


def test_under_nbgrader_progress_goes_to_the_scratch_folder_of_the_grading_process(
    grading, tmp_path
):
    grading.setenv(SCRATCH_ENV, str(tmp_path))
    before = leftover_folders(Path(tempfile.gettempdir()))
    setup("0.0.0")
    assert os.environ["DTCOURSE_PROGRESS"] == str(tmp_path / "progress.sqlite")
    assert leftover_folders(Path(tempfile.gettempdir())) == before  # the kernel made none


def test_without_a_scratch_folder_one_cache_file_serves_every_run(grading, tmp_path):
    grading.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = leftover_folders(Path(tempfile.gettempdir()))
    setup("0.0.0")
    first = os.environ["DTCOURSE_PROGRESS"]
    setup("0.0.0")
    assert os.environ["DTCOURSE_PROGRESS"] == first
    assert Path(first).is_relative_to(tmp_path / "cache")
    assert leftover_folders(Path(tempfile.gettempdir())) == before


def test_outside_grading_the_given_store_is_used(monkeypatch, tmp_path):
    monkeypatch.delenv(GRADING_ENV, raising=False)
    setup("0.0.0", tmp_path / "mine.sqlite")
    assert os.environ["DTCOURSE_PROGRESS"] == str(tmp_path / "mine.sqlite")
