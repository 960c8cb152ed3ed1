"""End to end in a real browser: JupyterLab renders the checklist, and a click on a video's
tick travels through the widget comm to the kernel and lands in the SQLite store."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

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


def _click_first_video(page: Any, server: LabServer, tick_selector: str) -> None:
    page.goto(f"{server.url}lab/tree/{NOTEBOOK}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    run_all_cells(page)
    page.wait_for_selector(".dtc-checklist .dtc-reveal")
    page.click(".dtc-checklist .dtc-reveal")
    page.wait_for_selector(tick_selector, state="visible")
    page.click(tick_selector)


@pytest.mark.slow
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

    with (
        jupyter_lab(tmp_path, env={"DTCOURSE_PROGRESS": str(store_path)}) as server,
        sync_playwright() as playwright,
    ):
        _write_notebook(server.root_dir / NOTEBOOK)
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(DEADLINE_MS)
            try:
                _click_first_video(page, server, tick_selector)
                status = _wait_for_status(store, video.id, DEADLINE_MS / 1000)
                assert status == "done", (
                    f"the click on {video.id!r} never reached the store {store_path}"
                )
                # The widget re-reads the store after the click: the minutes label counts
                # the video's running time and the tick stays ticked.
                done, planned = store.minutes()
                page.locator(".dtc-checklist").get_by_text(
                    f"{done} of {planned} minutes"
                ).wait_for()
                assert page.is_checked(tick_selector)
            except (PlaywrightError, AssertionError) as error:
                page.screenshot(path=str(screenshot))
                pytest.fail(
                    f"{error}\nscreenshot: {screenshot}\n--- server log tail ---\n"
                    f"{server.log_tail()}"
                )
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()

    events = store.events()
    assert list(events["item_id"]) == [video.id]
    assert list(events["source"]) == ["widget"]
    assert list(events["kind"]) == ["reviewed"]
    assert screenshot.stat().st_size > 0
    if SCREENSHOT_COPY:
        shutil.copyfile(screenshot, SCREENSHOT_COPY)


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_chromium_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome) as raised:
        _require_chromium()
    assert str(raised.value) == CHROMIUM_MISSING
    assert "apt-get install chromium" in CHROMIUM_MISSING
