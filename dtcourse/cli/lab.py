"""``dtcourse lab``: copy the student notebooks into a workspace and open JupyterLab there."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1-65535")
    return port


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="open the course in JupyterLab",
        description=(
            "Copy the course notebooks into your workspace (your edited notebooks are kept; "
            "a newer version is saved next to them) and start JupyterLab there."
        ),
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path("~/dtcourse"),
        metavar="DIR",
        help="where your copy of the notebooks lives (default: ~/dtcourse)",
    )
    parser.add_argument("--port", type=_port, metavar="N", help="port for JupyterLab")
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser window"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="copy the notebooks and print the JupyterLab command without starting it",
    )
    # The release folder of the repository; other folders are for testing.
    parser.add_argument("--release", type=Path, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def jupyter_command(workspace: Path, port: int | None, no_browser: bool) -> list[str]:
    """The JupyterLab command, run by this Python so no activated environment is needed."""
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={workspace}"]
    if port is not None:
        command.append(f"--port={port}")
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import subprocess

    from dtcourse.errors import DTCourseError
    from dtcourse.runtime.labconfig import student_lab_environment
    from dtcourse.runtime.workspace import default_release_root, sync_release

    release = (args.release or default_release_root()).expanduser()
    workspace = args.workspace.expanduser().absolute()
    report = sync_release(release, workspace)
    print(f"workspace: {workspace}")
    for line in report.lines():
        print(f"  {line}")
    command = jupyter_command(workspace, args.port, args.no_browser)
    env = student_lab_environment(workspace)
    if args.dry_run:
        print(f"would run: JUPYTER_CONFIG_PATH={env['JUPYTER_CONFIG_PATH']} {shlex.join(command)}")
        return 0
    if importlib.util.find_spec("jupyterlab") is None:
        raise DTCourseError(
            f"JupyterLab is not installed for {sys.executable}: run `make lab`, or "
            "`pip install jupyterlab` in this environment"
        )
    print(f"starting: {shlex.join(command)}", flush=True)
    try:
        if os.name == "posix":
            # Become JupyterLab, so Ctrl-C and its shutdown prompt reach it directly.
            os.chdir(workspace)
            os.execve(command[0], command, env)
        return subprocess.call(command, cwd=workspace, env=env)
    except OSError as error:
        raise DTCourseError(f"cannot start JupyterLab: {error}") from None
