"""A throw-away JupyterLab server and a headless Chromium for end-to-end tests.

The server runs in its own process group with every Jupyter directory in a temporary
folder, so a test neither reads nor writes the developer's settings, workspaces or
progress, and tearing it down kills the kernels it started as well.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtcourse.db.pgcluster import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = (
    "Debian package chromium is not installed; run `apt-get install chromium` as root "
    "or `make test` which installs it"
)
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# Settings every test session starts from: no news pop-up, no update check, and no
# dialog asking which kernel to use, so nothing covers the notebook in a screenshot.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


@dataclass(frozen=True)
class LabServer:
    """A running server: where it listens and where its log goes."""

    url: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return f"(no server log: {error})"
        return "\n".join(text.splitlines()[-lines:])


def _lab_environment(base: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": base / "lab-user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "lab-workspaces",
        "JUPYTER_CONFIG_DIR": base / "jupyter-config",
        "JUPYTER_DATA_DIR": base / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": base / "jupyter-runtime",
        "IPYTHONDIR": base / "ipython",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env.pop("JUPYTER_PATH", None)
    env.update(extra)
    return env


def _wait_until_up(url: str, process: subprocess.Popen[bytes], deadline: float) -> str | None:
    """None once /api/status answers, else the reason it never did."""
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"the server exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(f"{url}api/status", timeout=2) as response:
                if response.status == 200:
                    return None
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.25)
    return f"no answer from {url}api/status before the deadline ({last})"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and everything it started (kernels share its process group)."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Kernels may outlive a server that exited on SIGTERM: clear the group for good.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def jupyter_lab(
    base: Path, env: Mapping[str, str] | None = None, start_timeout: float = 90.0
) -> Iterator[LabServer]:
    """Start ``jupyter lab`` serving ``base / "notebooks"``; always stop it afterwards."""
    root_dir = base / "notebooks"
    root_dir.mkdir(parents=True, exist_ok=True)
    app_settings = base / "lab-app-settings"
    app_settings.mkdir(parents=True, exist_ok=True)
    (app_settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.app_settings_dir={app_settings}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log_path = base / "jupyter-lab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=_lab_environment(base, env or {}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(url=url, root_dir=root_dir, log_path=log_path, process=process)
    try:
        problem = _wait_until_up(url, process, time.monotonic() + start_timeout)
        if problem is not None:
            raise AssertionError(
                f"JupyterLab did not start: {problem}\n--- server log tail ---\n{server.log_tail()}"
            )
        yield server
    finally:
        _stop(process)


def run_all_cells(page: Any, attempts: int = 3, start_timeout_ms: int = 15_000) -> None:
    """Run every cell from the Run menu, and make sure the kernel really started on them.

    Right after a notebook opens, a Run All can be dropped while the kernel session is
    still connecting: the prompts stay ``[ ]:``. Then
    the request is repeated; a run that has started (``[*]:`` or a number) is left alone.
    """
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
    texts: list[str] = []
    for attempt in range(1, attempts + 1):
        page.click(".jp-Notebook .jp-Cell .jp-InputArea-prompt")
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click(".lm-Menu-item[data-command='runmenu:run-all']")
        deadline = time.monotonic() + start_timeout_ms / 1000
        while time.monotonic() < deadline:
            texts = [text.strip() for text in prompts.all_inner_texts()]
            if texts and all(text not in ("[ ]:", "") for text in texts):
                return
            time.sleep(0.2)
        if attempt == attempts:
            raise AssertionError(
                f"the cells never started running after {attempts} Run All requests "
                f"(prompts: {texts})"
            )
