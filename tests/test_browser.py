"""End to end in a real browser: JupyterLab renders the widgets, and clicks travel through
the widget comm to the kernel and land in the SQLite store.

A video ticked in the checklist is recorded; a resource marked read in a resource list
below it is recorded too, and shows in the checklist once its Refresh button is pressed.
"""

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

from dtcourse.runtime.progress import ProgressStore

DEADLINE_MS = 90_000
NOTEBOOK = "widgets.ipynb"
PHASE = "phase1"
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
        nbformat.v4.new_code_cell("from dtcourse.runtime.widgets import checklist\n\nchecklist()")
    )
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            f"from dtcourse.runtime.widgets import resource_list\n\nresource_list({PHASE!r})"
        )
    )
    nbformat.write(notebook, path)


def _wait_until_done(store: ProgressStore, item_id: str) -> None:
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while store.view().loc[item_id, "status"] != "done":
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the click on {item_id!r} never reached the store {store.path} "
                f"within {DEADLINE_MS / 1000:.0f} s"
            )
        time.sleep(0.2)


def _minutes_label(page: Any, store: ProgressStore) -> Any:
    done, planned = store.minutes()
    return page.locator(".dtc-checklist").get_by_text(f"{done} of {planned} minutes")


def _drive(page: Any, server: LabServer, store: ProgressStore) -> None:
    video = store.syllabus.videos[0]
    resource = store.syllabus.phase(PHASE).resources[0]
    tick = f".dtc-checklist .dtc-tick-{_css(video.id)} input[type=checkbox]"
    read_button = f".dtc-resource-list .dtc-read-{_css(resource.id)}"

    page.goto(f"{server.url}lab/tree/{NOTEBOOK}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    run_all_cells(page)
    page.wait_for_selector(".dtc-checklist .dtc-reveal")
    page.wait_for_selector(read_button)

    page.click(".dtc-checklist .dtc-reveal")
    page.click(tick, timeout=DEADLINE_MS)
    _wait_until_done(store, video.id)
    # The checklist re-reads the store after its own click: the video's minutes count.
    _minutes_label(page, store).wait_for()
    assert page.is_checked(tick)

    page.click(read_button)
    _wait_until_done(store, resource.id)
    page.locator(read_button).get_by_text("Read").wait_for()
    # The checklist learns about a read recorded elsewhere only when refreshed.
    page.click(".dtc-checklist button:has-text('Refresh')")
    _minutes_label(page, store).wait_for()


def _css(item_id: str) -> str:
    return item_id.replace(".", "-")


@pytest.mark.slow
def test_widgets_in_browser_write_to_the_store(tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    store = ProgressStore(tmp_path / "progress.sqlite")
    assert store.version() == 0
    screenshot = tmp_path / "widgets.png"

    with (
        jupyter_lab(tmp_path, env={"DTCOURSE_PROGRESS": str(store.path)}) as server,
        sync_playwright() as playwright,
    ):
        _write_notebook(server.root_dir / NOTEBOOK)
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(DEADLINE_MS)
            try:
                _drive(page, server, store)
            except (PlaywrightError, AssertionError) as error:
                page.screenshot(path=str(screenshot))
                pytest.fail(
                    f"{error}\nscreenshot: {screenshot}\n--- server log tail ---\n"
                    f"{server.log_tail()}"
                )
            page.locator(".dtc-checklist").scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()

    events = store.events()
    video = store.syllabus.videos[0].id
    resource = store.syllabus.phase(PHASE).resources[0].id
    assert list(events["item_id"]) == [video, resource]
    assert list(events["kind"]) == ["reviewed", "read"]
    assert list(events["source"]) == ["widget", "widget"]
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
