"""Run phase notebooks unattended with papermill, as CI and instructors do.

Each run gets its own temporary progress store so a student's progress is never touched,
and fast parameters so every notebook finishes in well under a minute. The store's folder
belongs to this process, which removes it when the notebook ends, even when its kernel
died; one failing notebook never stops the others.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Parameters for unattended runs: small model-checker budgets, a fixed seed.
CI_PARAMETERS: Mapping[str, Any] = {"seed": 7, "ci": True}


def local_kernel_config(folder: Path) -> Any:
    """Traitlets config for kernels started on this machine: zmq over local sockets.

    Over TCP every ipykernel logs a warning about unencrypted traffic straight to the
    terminal, once per notebook; IPC sockets are local files, so there is nothing to warn
    about and only the tool's own progress is printed. The sockets go into ``folder``
    (absolute: kernel and client run in different folders), which the caller owns and
    removes, so a kernel that died leaves nothing behind. Windows has no IPC transport.
    """
    from traitlets.config import Config

    config = Config()
    if os.name == "posix":
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(folder.resolve() / "kernel")
    return config


@dataclass(frozen=True)
class RunResult:
    notebook: Path
    output: Path
    seconds: float
    error: str | None  # None when every cell ran


def stopped_at_exercise(result: RunResult) -> bool:
    """A student release runs until its first unsolved exercise, whose stub raises
    NotImplementedError (directly, or inside a check that reports it)."""
    return result.error is not None and "NotImplementedError" in result.error


def verdict(result: RunResult, release: bool = False) -> str:
    if result.error is None:
        return "ok"
    if release and stopped_at_exercise(result):
        return f"ok, stops at the first unsolved exercise ({result.error.split(':')[0]})"
    return f"FAILED at {result.error}"


def run_notebooks(
    notebooks: Iterable[Path],
    out_dir: Path,
    parameters: Mapping[str, Any] | None = None,
    report: Callable[[str], None] = print,
    release: bool = False,
) -> list[RunResult]:
    """Execute each notebook in its own folder's context; never stop at the first failure."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for notebook in notebooks:
        output = out_dir / notebook.name
        started = time.perf_counter()
        error = None
        sink = io.StringIO()
        try:
            with (
                tempfile.TemporaryDirectory(prefix="dtcourse-run-", ignore_cleanup_errors=True)
                as scratch,
                contextlib.redirect_stderr(sink),
            ):
                store = Path(scratch) / "progress.sqlite"
                values = {**CI_PARAMETERS, "progress_store": str(store), **(parameters or {})}
                config = local_kernel_config(Path(scratch))
                papermill.execute_notebook(
                    notebook,
                    output,
                    parameters=values,
                    kernel_name="python3",
                    progress_bar=False,
                    cwd=notebook.parent,
                    config=config,
                )
        except PapermillExecutionError as failure:
            error = f"cell {failure.exec_count}: {failure.ename}: {failure.evalue}"
        except Exception as failure:  # the kernel died, a cell timed out, ...
            error = f"{type(failure).__name__}: {failure}".strip(": ")
        seconds = time.perf_counter() - started
        result = RunResult(notebook, output, seconds, error)
        report(f"{notebook.name}: {seconds:.1f} s, {verdict(result, release)}")
        results.append(result)
    return results
