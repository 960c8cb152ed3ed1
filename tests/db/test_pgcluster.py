"""The throwaway PostgreSQL cluster: found wherever PostgreSQL is, never outliving its owner."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from leak_support import postgres_servers, run_inner_suite

from dtcourse.db import pgcluster
from dtcourse.db.pgcluster import MISSING_MESSAGE, PgCluster, find_pg_bin, throwaway_cluster
from dtcourse.errors import DatabaseError

REPOSITORY = Path(__file__).resolve().parents[2]


def fake_bin(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        program = folder / name
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return folder


def fake_pg_config(folder: Path, bindir: Path) -> None:
    program = folder / "pg_config"
    program.write_text(f"#!/bin/sh\necho {bindir}\n")
    program.chmod(0o755)


@pytest.fixture
def no_debian(tmp_path: Path) -> Path:
    return tmp_path / "no-debian"


def test_dtcourse_pg_bin_comes_first(tmp_path, no_debian):
    chosen = fake_bin(tmp_path / "chosen", "initdb", "pg_ctl")
    on_path = fake_bin(tmp_path / "on-path", "initdb", "pg_ctl")
    env = {"DTCOURSE_PG_BIN": str(chosen), "PATH": str(on_path)}
    assert find_pg_bin(env, no_debian) == chosen


def test_a_wrong_dtcourse_pg_bin_is_an_error_not_a_silent_fallback(tmp_path, no_debian):
    empty = fake_bin(tmp_path / "empty")
    with pytest.raises(DatabaseError, match="DTCOURSE_PG_BIN .* holds no initdb"):
        find_pg_bin({"DTCOURSE_PG_BIN": str(empty), "PATH": ""}, no_debian)


def test_pg_config_bindir_comes_before_path(tmp_path, no_debian):
    server = fake_bin(tmp_path / "server", "initdb", "pg_ctl")
    on_path = fake_bin(tmp_path / "on-path", "initdb", "pg_ctl")
    fake_pg_config(on_path, server)
    assert find_pg_bin({"PATH": str(on_path)}, no_debian) == server


def test_a_pg_config_without_the_server_programs_falls_back_to_path(tmp_path, no_debian):
    client_only = fake_bin(tmp_path / "client", "psql")
    on_path = fake_bin(tmp_path / "on-path", "initdb", "pg_ctl")
    fake_pg_config(on_path, client_only)
    assert find_pg_bin({"PATH": str(on_path)}, no_debian) == on_path


def test_the_newest_debian_version_is_taken_by_number(tmp_path):
    root = tmp_path / "postgresql"
    for version in ("9.6", "15", "17", "100-beta"):
        fake_bin(root / version / "bin", "initdb", "pg_ctl")
    fake_bin(root / "18" / "bin", "psql")  # a client-only install is passed over
    assert find_pg_bin({"PATH": ""}, root) == root / "17" / "bin"


def test_nothing_installed_gives_none_and_a_message_naming_no_version(tmp_path, no_debian):
    assert find_pg_bin({"PATH": str(fake_bin(tmp_path / "empty"))}, no_debian) is None
    assert "apt-get install postgresql" in MISSING_MESSAGE
    assert not re.search(r"\d", MISSING_MESSAGE)


def test_no_postgresql_version_is_written_into_the_code():
    pattern = re.compile(r"postgresql/\d|PostgreSQL \d\d")
    for package in ("dtcourse", "instructor"):
        for path in (REPOSITORY / package).rglob("*.py"):
            assert not pattern.search(path.read_text(encoding="utf-8")), path


def _interrupt_after_start(monkeypatch, *, wait: bool) -> list[PgCluster]:
    """Make ``pg_ctl start`` run, then raise KeyboardInterrupt as a Ctrl-C there would.

    Without ``wait`` the start returns before the server is up (``pg_ctl`` without -w),
    so the interruption lands while the server is still on its way.
    """
    seen: list[PgCluster] = []
    real_run = PgCluster._run

    def run(self: PgCluster, *args: str):
        if args[0] == "pg_ctl" and args[-1] == "start":
            seen.append(self)
            real_run(self, *(a for a in args if wait or a != "-w"))
            raise KeyboardInterrupt
        return real_run(self, *args)

    monkeypatch.setattr(PgCluster, "_run", run)
    return seen


@pytest.mark.parametrize("wait", [True, False], ids=["server-up", "server-starting"])
def test_an_interrupted_start_leaves_no_server_and_no_folder(pg_cluster, monkeypatch, wait):
    seen = _interrupt_after_start(monkeypatch, wait=wait)
    with pytest.raises(KeyboardInterrupt), throwaway_cluster():
        pytest.fail("the with block must not run")
    (cluster,) = seen
    assert postgres_servers(cluster.root) == {}
    assert not cluster.root.exists()


def test_a_failing_with_block_stops_the_server(pg_cluster):
    with pytest.raises(RuntimeError), throwaway_cluster() as cluster:
        assert postgres_servers(cluster.root)  # it runs inside the block
        raise RuntimeError("the owner fails")
    assert postgres_servers(cluster.root) == {}
    assert not cluster.root.exists()


def test_the_cluster_runs_as_the_server_user_only_when_root():
    expected = "postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    assert pgcluster._server_user() == expected


def test_a_server_a_test_leaves_running_fails_the_session_and_is_stopped(pg_cluster, tmp_path):
    result = run_inner_suite(tmp_path, (
        "from pathlib import Path\n"
        "from dtcourse.db.pgcluster import start_cluster\n"
        "def test_leaks():\n"
        "    cluster = start_cluster()\n"
        "    Path('datadir.txt').write_text(str(cluster.datadir))\n"
    ))
    assert result.returncode != 0, result.stdout
    assert "PostgreSQL server" in result.stdout and "still runs" in result.stdout
    assert postgres_servers(Path((tmp_path / "datadir.txt").read_text())) == {}
