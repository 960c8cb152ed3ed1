"""Find what a test run left behind: PostgreSQL servers and dtcourse temporary folders."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

#: Name prefixes of every temporary folder the course's code makes.
TEMP_PREFIXES = ("dtcourse-", "dtc-")


def postgres_servers(under: Path) -> dict[int, str]:
    """PostgreSQL server processes whose data folder lies under ``under``: pid -> data folder.

    Read from /proc; empty where there is none (the suite's PostgreSQL tests run on Linux).
    """
    found: dict[int, str] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    prefix = str(under.resolve())
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # the process ended meanwhile
        words = [arg.decode(errors="replace") for arg in args if arg]
        if not words or not Path(words[0]).name.startswith("postgres") or "-D" not in words:
            continue
        datadir = words[words.index("-D") + 1] if words.index("-D") + 1 < len(words) else ""
        if datadir.startswith(prefix):
            found[int(entry.name)] = datadir
    return found


def leftover_folders(folder: Path) -> list[str]:
    """Names of the course's temporary folders still in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIXES))


def stop_servers(pids: dict[int, str], wait: float = 10.0) -> None:
    """Shut the servers down at once (SIGQUIT) and wait until they are gone."""
    for pid in pids:
        try:
            os.kill(pid, getattr(signal, "SIGQUIT", signal.SIGTERM))
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + wait
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def run_inner_suite(folder: Path, test_body: str) -> subprocess.CompletedProcess[str]:
    """Run one test file with this suite's conftest in a separate pytest process."""
    here = Path(__file__).resolve().parent
    shutil.copy(here / "conftest.py", folder / "conftest.py")
    shutil.copy(here / "leak_support.py", folder / "leak_support.py")
    (folder / "test_inner.py").write_text(test_body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )
