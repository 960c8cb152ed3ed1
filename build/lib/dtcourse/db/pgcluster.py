"""A throwaway PostgreSQL cluster for tests, benchmarks and ``dtcourse bank``.

``initdb`` refuses to run as root, so as root every binary runs as the ``postgres`` user
(``runuser``), in a temporary folder that user owns. The server listens on a free port of
127.0.0.1 and on a Unix socket inside the temporary folder; DSNs use the socket.
``max_prepared_transactions`` is 20 (the server default 0 disables ``PREPARE
TRANSACTION``).

Durability: with ``durable=True`` (benchmarks) the server keeps PostgreSQL's defaults
(``fsync=on``, ``synchronous_commit=on``), so ``PREPARE TRANSACTION`` and ``COMMIT
PREPARED`` each force the WAL. With ``durable=False`` (tests, the bank demo) it runs with
``fsync=off``, ``synchronous_commit=off`` and ``full_page_writes=off``: the crash torture
kills the *client* process, never the server, so these settings change speed, not what
the tests prove. Never use them for data you want to keep.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dtcourse.errors import DatabaseError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DEBIAN_PACKAGE = "postgresql"
MISSING_MESSAGE = (
    f"PostgreSQL binaries not found in {PG_BIN}: install the Debian package "
    f"'{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE})"
)


def find_pg_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: ``$DTCOURSE_PG_BIN`` or Debian's place."""
    configured = os.environ.get("DTCOURSE_PG_BIN")
    for folder in (Path(configured) if configured else None, PG_BIN):
        if folder is not None and (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PgCluster:
    """A running throwaway cluster; ``stop()`` shuts it down and deletes its folder."""

    root: Path
    bin_dir: Path
    port: int
    run_as: str | None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise DatabaseError(
                f"{args[0]} failed for the throwaway PostgreSQL cluster in {self.root}: "
                f"{detail[-1] if detail else 'exit ' + str(result.returncode)}"
            )
        return result

    def createdb(self, name: str) -> str:
        """Create database ``name`` and return its DSN."""
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U",
                  "postgres", name)
        return self.dsn(name)

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(durable: bool = False, max_prepared: int = 20) -> PgCluster:
    """initdb and start a cluster in a new temporary folder; raise if PostgreSQL is missing."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise DatabaseError(MISSING_MESSAGE)
    run_as: str | None = None
    root = Path(tempfile.mkdtemp(prefix="dtcourse-pg-"))
    try:
        if os.geteuid() == 0:
            run_as = "postgres"
            try:
                shutil.chown(root, user="postgres", group=None)
            except LookupError:
                raise DatabaseError(
                    "running as root, the PostgreSQL cluster needs the 'postgres' user, which "
                    f"does not exist: install the Debian package '{DEBIAN_PACKAGE}'"
                ) from None
        root.chmod(0o755)
        # Every folder above the data directory must be traversable by the server's user.
        for parent in root.parents:
            if not os.access(parent, os.X_OK):
                raise DatabaseError(f"folder {parent} is not traversable; set TMPDIR elsewhere")
        cluster = PgCluster(root=root, bin_dir=bin_dir, port=free_port(), run_as=run_as)
        cluster.socket_dir.mkdir()
        if run_as:
            shutil.chown(cluster.socket_dir, user=run_as)
        cluster._run("initdb", "-D", str(cluster.datadir), "-U", "postgres", "-A", "trust",
                     "--no-sync", "-E", "UTF8", "--no-instructions")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{cluster.socket_dir}'",
            "max_prepared_transactions": str(max_prepared),
            "max_connections": "60",
            "shared_buffers": "'32MB'",
        }
        if not durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        cluster._run("pg_ctl", "-D", str(cluster.datadir), "-l", str(root / "server.log"),
                     "-o", options, "-w", "-t", "60", "start")
        return cluster
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@contextmanager
def throwaway_cluster(durable: bool = False, max_prepared: int = 20) -> Iterator[PgCluster]:
    cluster = start_cluster(durable=durable, max_prepared=max_prepared)
    try:
        yield cluster
    finally:
        cluster.stop()
