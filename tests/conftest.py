"""Fixtures shared by the whole suite."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from leak_support import leftover_folders, postgres_servers, stop_servers


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Send the session's temporary files to one folder; fail if anything is left in it.

    Clusters, grading scratch folders and run stores are made with ``tempfile``, so they
    all land here, away from other people's runs on the same machine. At the end no
    PostgreSQL server may still run from it and no ``dtcourse-*``/``dtc-*`` folder may
    remain; a server found there is stopped before the failure is reported.
    """
    tmp_path_factory.getbasetemp()  # pytest's own folders stay where they were
    folder = Path(tempfile.mkdtemp(prefix="session-"))
    folder.chmod(0o755)  # a throwaway cluster's server user must traverse it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(folder))
        patch.setenv("TMPDIR", str(folder))
        yield folder
    servers = postgres_servers(folder)
    stop_servers(servers)
    left = leftover_folders(folder)
    shutil.rmtree(folder, ignore_errors=True)
    problems = [f"PostgreSQL server {pid} still runs in {data}" for pid, data in servers.items()]
    problems += [f"temporary folder {name} was left behind" for name in left]
    if problems:
        pytest.fail("the tests left things behind:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def isolated_progress_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the progress store at a temporary file, so no test touches a real one."""
    path = tmp_path / "progress" / "progress.sqlite"
    monkeypatch.setenv("DTCOURSE_PROGRESS", str(path))
    return path
