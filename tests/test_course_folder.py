"""Instructor commands use the course folder they run in, or --root, and say which."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dtcourse_instructor.course_folder import CONFIG_NAME, course_root

from dtcourse.cli import main
from dtcourse.errors import DTCourseError

REPOSITORY = Path(__file__).resolve().parents[1]


def course_copy(folder: Path) -> Path:
    """A clone of the course elsewhere: what an instructor gets with git clone."""
    folder.mkdir(parents=True)
    shutil.copy(REPOSITORY / CONFIG_NAME, folder)
    return folder


def test_the_current_folder_wins_over_the_installed_repository(tmp_path, monkeypatch):
    clone = course_copy(tmp_path / "clone")
    monkeypatch.chdir(clone)
    assert course_root() == clone.resolve() != REPOSITORY


def test_root_wins_over_the_current_folder(tmp_path, monkeypatch):
    clone, other = course_copy(tmp_path / "clone"), course_copy(tmp_path / "other")
    monkeypatch.chdir(clone)
    assert course_root(other) == other.resolve()


def test_a_folder_that_is_no_course_falls_back_to_the_installed_repository(tmp_path):
    assert course_root(cwd=tmp_path) == REPOSITORY


def test_a_root_without_nbgrader_config_says_what_is_missing(tmp_path):
    with pytest.raises(DTCourseError) as caught:
        course_root(tmp_path)
    message = str(caught.value)
    assert f"{tmp_path.resolve()} is not a course folder (no {CONFIG_NAME})" in message
    assert "--root" in message


def test_grade_in_a_clone_uses_and_names_the_clone(tmp_path, monkeypatch, capsys):
    clone = course_copy(tmp_path / "clone")
    monkeypatch.chdir(clone)
    code = main(["grade"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.splitlines()[0] == f"course folder: {clone.resolve()}"
    assert f"no submissions found under {clone.resolve() / 'submitted'}" in err
    assert str(REPOSITORY / "submitted") not in err


@pytest.mark.parametrize("command", ["grade", "run"])
def test_commands_refuse_a_root_that_is_no_course(tmp_path, capsys, command):
    code = main([command, "--root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("dtcourse: error:") and f"no {CONFIG_NAME}" in err
