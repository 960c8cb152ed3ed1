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
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dtcourse.errors import DatabaseError

__all__ = [
    "MISSING_MESSAGE",
    "PgCluster",
    "find_pg_bin",
    "free_port",
    "start_cluster",
    "throwaway_cluster",
]

#: Where Debian and Ubuntu put each installed major version: ``<root>/<version>/bin``.
DEBIAN_ROOT = Path("/usr/lib/postgresql")
DEBIAN_PACKAGE = "postgresql"
#: The server programs a throwaway cluster needs (``createdb`` ships beside them).
TOOLS = ("initdb", "pg_ctl")
MISSING_MESSAGE = (
    "PostgreSQL server programs (initdb, pg_ctl) not found through $DTCOURSE_PG_BIN, "
    f"pg_config --bindir, PATH or {DEBIAN_ROOT}/*/bin: install PostgreSQL (Debian/Ubuntu: "
    f"apt-get install {DEBIAN_PACKAGE}) or set DTCOURSE_PG_BIN to the folder holding them"
)


def _has_tools(folder: Path) -> bool:
    return all(
        (folder / name).is_file() or (folder / f"{name}.exe").is_file() for name in TOOLS
    )


def _pg_config_bindir(path: str | None) -> Path | None:
    program = shutil.which("pg_config", path=path)
    if program is None:
        return None
    try:
        result = subprocess.run(
            [program, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip()
    return Path(text) if text else None


def _on_path(path: str | None) -> Path | None:
    initdb = shutil.which("initdb", path=path)
    return Path(initdb).parent if initdb and shutil.which("pg_ctl", path=path) else None


def _version_key(folder: Path) -> tuple[int, ...]:
    """``.../17/bin`` -> (17,), ``.../9.6/bin`` -> (9, 6): newest first, by number."""
    parts = folder.parent.name.split(".")
    return tuple(int(part) for part in parts) if all(p.isdigit() for p in parts) else ()


def find_pg_bin(
    environ: Mapping[str, str] | None = None, debian_root: Path = DEBIAN_ROOT
) -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed.

    Looked up in this order: ``$DTCOURSE_PG_BIN``; ``pg_config --bindir``; the folders on
    ``PATH``; the newest version under ``/usr/lib/postgresql`` (Debian and Ubuntu keep the
    server programs off ``PATH``). No version is assumed, so any installed one is found.
    """
    env = os.environ if environ is None else environ
    configured = env.get("DTCOURSE_PG_BIN")
    if configured:
        if not _has_tools(Path(configured)):
            raise DatabaseError(
                f"DTCOURSE_PG_BIN is {configured}, which holds no initdb and pg_ctl: point it "
                "at PostgreSQL's bin folder, or unset it to search pg_config, PATH and "
                f"{debian_root}"
            )
        return Path(configured)
    path = env.get("PATH")
    bindir = _pg_config_bindir(path)
    if bindir is not None and _has_tools(bindir):
        return bindir
    on_path = _on_path(path)
    if on_path is not None and _has_tools(on_path):
        return on_path
    versions = sorted(
        (folder for folder in debian_root.glob("*/bin") if _version_key(folder)),
        key=_version_key,
        reverse=True,
    )
    return next((folder for folder in versions if _has_tools(folder)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """``postgres`` when running as root (initdb refuses root), else None: run as oneself."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise DatabaseError(
            "running as root, the PostgreSQL cluster needs the 'postgres' user, which does "
            f"not exist: install the Debian package '{DEBIAN_PACKAGE}'"
        ) from None
    return "postgres"


@dataclass(frozen=True)
class PgCluster:
    """A throwaway cluster's folder and server; ``stop()`` shuts it down and deletes both."""

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

    @property
    def _unix_socket(self) -> bool:
        return os.name == "posix"

    def dsn(self, dbname: str = "postgres") -> str:
        host = self.socket_dir if self._unix_socket else "127.0.0.1"
        return f"host={host} port={self.port} user=postgres dbname={dbname}"

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
        host = str(self.socket_dir) if self._unix_socket else "127.0.0.1"
        self._run("createdb", "-h", host, "-p", str(self.port), "-U", "postgres", name)
        return self.dsn(name)

    def _pid_file(self, wait: float) -> Path | None:
        """The server's ``postmaster.pid``, waiting up to ``wait`` seconds for it to appear."""
        pid_file = self.datadir / "postmaster.pid"
        deadline = time.monotonic() + wait
        while not pid_file.exists():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return pid_file

    def stop(self, wait_for_server: float = 0.0) -> None:
        """Stop the server if one runs, then delete the folder; safe at any stage.

        ``wait_for_server``: after an interrupted start the server may still be on its way
        up; give it this long to write ``postmaster.pid`` so it can be stopped too.
        """
        try:
            pid_file = self._pid_file(wait_for_server)
            if pid_file is not None:
                try:
                    self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
                except (DatabaseError, subprocess.SubprocessError):
                    pid = pid_file.read_text().split("\n", 1)[0].strip()
                    self._run("pg_ctl", "kill", "QUIT", pid)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(
    durable: bool = False,
    max_prepared: int = 20,
    on_created: Callable[[PgCluster], None] | None = None,
) -> PgCluster:
    """initdb and start a cluster in a new temporary folder; raise if PostgreSQL is missing.

    Any failure or interruption (KeyboardInterrupt included) stops whatever started and
    deletes the folder before the exception goes on. ``on_created`` receives the cluster
    before any program runs, so a caller's own cleanup owns it from the first moment
    (``throwaway_cluster`` uses it to leave no gap before its ``finally``).
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise DatabaseError(MISSING_MESSAGE)
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="dtcourse-pg-"))
    cluster = PgCluster(root=root, bin_dir=bin_dir, port=free_port(), run_as=run_as)
    starting = False
    try:
        if on_created is not None:
            on_created(cluster)
        if run_as:
            shutil.chown(root, user=run_as)
        root.chmod(0o755)
        # Every folder above the data directory must be traversable by the server's user.
        for parent in root.parents:
            if not os.access(parent, os.X_OK):
                raise DatabaseError(f"folder {parent} is not traversable; set TMPDIR elsewhere")
        cluster.socket_dir.mkdir()
        if run_as:
            shutil.chown(cluster.socket_dir, user=run_as)
        cluster._run("initdb", "-D", str(cluster.datadir), "-U", "postgres", "-A", "trust",
                     "--no-sync", "-E", "UTF8", "--no-instructions")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{cluster.socket_dir}'" if cluster._unix_socket else "''",
            "max_prepared_transactions": str(max_prepared),
            "max_connections": "60",
            "shared_buffers": "'32MB'",
        }
        if not durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        starting = True
        cluster._run("pg_ctl", "-D", str(cluster.datadir), "-l", str(root / "server.log"),
                     "-o", options, "-w", "-t", "60", "start")
        return cluster
    except BaseException:
        cluster.stop(wait_for_server=2.0 if starting else 0.0)
        raise


@contextmanager
def throwaway_cluster(durable: bool = False, max_prepared: int = 20) -> Iterator[PgCluster]:
    """A running cluster for the ``with`` block, stopped and deleted however the block ends."""
    created: list[PgCluster] = []
    try:
        yield start_cluster(durable=durable, max_prepared=max_prepared, on_created=created.append)
    finally:
        for cluster in created:
            cluster.stop()
