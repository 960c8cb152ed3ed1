from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from dtcourse.cli import main
from dtcourse.cli.lab import jupyter_command
from dtcourse.errors import DTCourseError
from dtcourse.runtime.workspace import MANIFEST_NAME, default_release_root, sha256, sync_release

NB1 = "phase1_foundations/phase1.ipynb"
NB2 = "phase2_core_concepts/phase2.ipynb"


@pytest.fixture
def release(tmp_path: Path) -> Path:
    root = tmp_path / "release"
    for relative, text in {
        NB1: '{"cells": ["phase 1, v1"]}',
        NB2: '{"cells": ["phase 2, v1"]}',
        "phase2_core_concepts/data/accounts.csv": "id,balance\n1,100\n",
        "phase1_foundations/.ipynb_checkpoints/phase1-checkpoint.ipynb": "{}",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "home" / "dtcourse"


def lab(capsys: pytest.CaptureFixture[str], release: Path, workspace: Path, *extra: str):
    code = main(
        ["lab", "--release", str(release), "--workspace", str(workspace), "--dry-run", *extra]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_first_run_copies_everything_and_prints_the_command(
    capsys: pytest.CaptureFixture[str], release: Path, workspace: Path
) -> None:
    code, out, err = lab(capsys, release, workspace, "--port", "8899", "--no-browser")
    assert (code, err) == (0, "")
    assert f"copied {NB1}" in out and f"copied {NB2}" in out
    assert "copied phase2_core_concepts/data/accounts.csv" in out
    assert (workspace / NB1).read_text() == '{"cells": ["phase 1, v1"]}'
    assert not (workspace / "phase1_foundations" / ".ipynb_checkpoints").exists()
    manifest = json.loads((workspace / MANIFEST_NAME).read_text())
    assert manifest["files"][NB1] == sha256(release / NB1)
    assert len(manifest["files"]) == 3

    command = shlex.split(out.split("would run: ", 1)[1].strip())
    assert command[:4] == [sys.executable, "-m", "jupyter", "lab"]
    assert f"--ServerApp.root_dir={workspace}" in command
    assert "--port=8899" in command and "--no-browser" in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def test_command_without_options() -> None:
    command = jupyter_command(Path("/w"), None, False)
    assert not any(part.startswith("--port") for part in command)
    assert "--no-browser" not in command


def test_edited_notebook_is_kept_and_new_version_put_beside_it(
    capsys: pytest.CaptureFixture[str], release: Path, workspace: Path
) -> None:
    lab(capsys, release, workspace)
    (workspace / NB1).write_text('{"cells": ["my answers"]}')
    (release / NB1).write_text('{"cells": ["phase 1, v2"]}')
    (release / NB2).write_text('{"cells": ["phase 2, v2"]}')

    code, out, _ = lab(capsys, release, workspace)
    assert code == 0
    sidecar = "phase1_foundations/phase1.new.ipynb"
    assert f"kept your edited {NB1}; the new version is at {sidecar}" in out
    assert f"updated {NB2}" in out
    assert (workspace / NB1).read_text() == '{"cells": ["my answers"]}'
    assert (workspace / sidecar).read_text() == '{"cells": ["phase 1, v2"]}'
    assert (workspace / NB2).read_text() == '{"cells": ["phase 2, v2"]}'
    assert "1 file(s) already up to date" in out

    # Running again changes nothing and still reports the kept notebook.
    code, out, _ = lab(capsys, release, workspace)
    assert f"kept your edited {NB1}" in out
    assert "updated" not in out and "copied" not in out
    assert (workspace / NB1).read_text() == '{"cells": ["my answers"]}'


def test_an_edited_new_version_is_not_overwritten_either(
    capsys: pytest.CaptureFixture[str], release: Path, workspace: Path
) -> None:
    lab(capsys, release, workspace)
    (workspace / NB1).write_text("mine")
    (release / NB1).write_text("v2")
    lab(capsys, release, workspace)
    sidecar = workspace / "phase1_foundations/phase1.new.ipynb"
    sidecar.write_text("mine too")
    (release / NB1).write_text("v3")
    _, out, _ = lab(capsys, release, workspace)
    second = "phase1_foundations/phase1.new-2.ipynb"
    assert f"the new version is at {second}" in out
    assert (workspace / NB1).read_text() == "mine"
    assert sidecar.read_text() == "mine too"
    assert (workspace / second).read_text() == "v3"


def test_an_untouched_new_version_is_refreshed(release: Path, workspace: Path) -> None:
    sync_release(release, workspace)
    (workspace / NB1).write_text("mine")
    (release / NB1).write_text("v2")
    sync_release(release, workspace)
    (release / NB1).write_text("v3")
    report = sync_release(release, workspace)
    assert [k.new_version for k in report.kept] == ["phase1_foundations/phase1.new.ipynb"]
    assert (workspace / "phase1_foundations/phase1.new.ipynb").read_text() == "v3"


def test_deleted_file_is_restored_and_new_release_files_are_added(
    release: Path, workspace: Path
) -> None:
    sync_release(release, workspace)
    (workspace / NB2).unlink()
    (release / "phase3_advanced_topics").mkdir()
    (release / "phase3_advanced_topics/phase3.ipynb").write_text("p3")
    report = sync_release(release, workspace)
    assert set(report.copied) == {NB2, "phase3_advanced_topics/phase3.ipynb"}
    assert (workspace / NB2).exists()


def test_files_not_in_the_manifest_that_differ_are_kept(release: Path, workspace: Path) -> None:
    (workspace / "phase1_foundations").mkdir(parents=True)
    (workspace / NB1).write_text("an older copy made by hand")
    (workspace / "notes.md").write_text("my notes")
    report = sync_release(release, workspace)
    assert [k.path for k in report.kept] == [NB1]
    assert (workspace / NB1).read_text() == "an older copy made by hand"
    assert (workspace / "notes.md").read_text() == "my notes"


def test_files_dropped_from_the_release_stay(release: Path, workspace: Path) -> None:
    sync_release(release, workspace)
    (release / NB2).unlink()
    sync_release(release, workspace)
    assert (workspace / NB2).exists()


def test_unreadable_manifest_keeps_everything_that_differs(
    release: Path, workspace: Path
) -> None:
    sync_release(release, workspace)
    (workspace / MANIFEST_NAME).write_text("{ not json")
    (release / NB2).write_text("v2")
    report = sync_release(release, workspace)
    assert report.updated == ()
    assert [k.path for k in report.kept] == [NB2]
    assert any("unreadable" in note for note in report.notes)
    assert json.loads((workspace / MANIFEST_NAME).read_text())["format"] == 1


def test_missing_release_says_to_build(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: Path
) -> None:
    code, out, err = lab(capsys, tmp_path / "no-release", workspace)
    assert code == 2
    assert err.count("\n") == 1
    assert "run `dtcourse build`" in err
    assert not workspace.exists()


def test_empty_release_says_to_build(tmp_path: Path, workspace: Path) -> None:
    (tmp_path / "release").mkdir()
    with pytest.raises(DTCourseError, match="has no files"):
        sync_release(tmp_path / "release", workspace)


def test_workspace_that_is_a_file_is_refused(
    capsys: pytest.CaptureFixture[str], release: Path, tmp_path: Path
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = lab(capsys, release, target)
    assert code == 2
    assert "is a file, not a folder" in err
    assert target.read_text() == "x"


def test_bad_port_is_refused(capsys: pytest.CaptureFixture[str], release: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lab", "--release", str(release), "--port", "99999", "--dry-run"])
    assert exited.value.code == 2
    assert "outside 1-65535" in capsys.readouterr().err


def test_default_release_is_the_packaged_notebooks() -> None:
    import dtcourse

    root = default_release_root()
    assert root == Path(dtcourse.__file__).resolve().parent / "runtime" / "notebooks"
    assert sorted(p.name for p in root.glob("*/*.ipynb")) == [
        "phase1_foundations.ipynb",
        "phase2_core_concepts.ipynb",
        "phase3_advanced_topics.ipynb",
    ]


def test_help_hides_the_release_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    out = capsys.readouterr().out
    assert "--workspace" in out and "--dry-run" in out and "--no-browser" in out
    assert "--release" not in out
