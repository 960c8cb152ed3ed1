"""End to end in a real browser: JupyterLab renders the checklist, and a click on a video's
tick travels through the widget comm to the kernel and lands in the SQLite store."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    LabServer,
    jupyter_lab,
    run_all_cells,
)

from dtcourse.progress import ProgressStore

pytestmark = pytest.mark.slow

DEADLINE_MS = 90_000
NOTEBOOK = "checklist.ipynb"
SCREENSHOT_COPY = os.environ.get("DTCOURSE_BROWSER_SCREENSHOT")


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(CHROMIUM_MISSING)
    pytest.skip(CHROMIUM_MISSING)


def _write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells.append(
        nbformat.v4.new_code_cell("import dtcourse.widgets\n\ndtcourse.widgets.checklist()")
    )
    nbformat.write(notebook, path)


def _video_status(store: ProgressStore, video_id: str) -> str:
    return str(store.view().loc[video_id, "status"])


def _wait_for_status(store: ProgressStore, video_id: str, deadline_s: float) -> str:
    deadline = time.monotonic() + deadline_s
    status = _video_status(store, video_id)
    while status != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = _video_status(store, video_id)
    return status


def _context(server: LabServer, what: str) -> str:
    return f"{what}\n--- server log tail ---\n{server.log_tail()}"


def test_checklist_tick_in_browser_reaches_the_store(tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    store_path = tmp_path / "progress.sqlite"
    store = ProgressStore(store_path)
    video = store.syllabus.videos[0]
    tick_selector = f".dtc-tick-{video.id.replace('.', '-')} input[type=checkbox]"
    assert _video_status(store, video.id) == "todo"
    screenshot = tmp_path / "checklist.png"

    with jupyter_lab(tmp_path, env={"DTCOURSE_PROGRESS": str(store_path)}) as server:
        _write_notebook(server.root_dir / NOTEBOOK)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.set_default_timeout(DEADLINE_MS)
                try:
                    page.goto(f"{server.url}lab/tree/{NOTEBOOK}")
                    page.wait_for_selector(".jp-Notebook .jp-Cell")
                    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                    run_all_cells(page)
                    page.wait_for_selector(".dtc-checklist .dtc-reveal")
                    page.click(".dtc-checklist .dtc-reveal")
                    page.wait_for_selector(tick_selector, state="visible")
                    page.click(tick_selector)
                except PlaywrightError as error:
                    page.screenshot(path=str(screenshot))
                    pytest.fail(_context(server, f"browser step failed: {error}"))

                status = _wait_for_status(store, video.id, DEADLINE_MS / 1000)
                assert status == "done", _context(
                    server, f"the click on {video.id!r} never reached the store {store_path}"
                )
                events = store.events()
                assert list(events["item_id"]) == [video.id]
                assert list(events["source"]) == ["widget"]
                assert list(events["kind"]) == ["reviewed"]

                # The widget re-reads the store after the click: the minutes label shows
                # the video's running time.
                done, planned = store.minutes()
                label = page.locator(".dtc-checklist").get_by_text(f"{done} of {planned} minutes")
                label.wait_for()
                assert page.is_checked(tick_selector)
                page.screenshot(path=str(screenshot))
            finally:
                browser.close()

    assert screenshot.stat().st_size > 0
    if SCREENSHOT_COPY:
        shutil.copyfile(screenshot, SCREENSHOT_COPY)
