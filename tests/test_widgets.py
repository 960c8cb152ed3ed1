"""The widgets driven headlessly: setting ``.value`` fires the same observers a click does."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

import pytest

from dtcourse.errors import ProgressError
from dtcourse.runtime import widgets
from dtcourse.runtime.progress import ProgressStore
from dtcourse.runtime.syllabus import Reference, load_syllabus


@pytest.fixture
def store(tmp_path: Path) -> ProgressStore:
    return ProgressStore(tmp_path / "progress.sqlite")


def _events(store: ProgressStore) -> list[tuple[str, str, str]]:
    frame = store.events()
    return list(zip(frame["item_id"], frame["kind"], frame["source"], strict=True))


def _complete_phase(store: ProgressStore, phase_id: str) -> None:
    phase = store.syllabus.phase(phase_id)
    store.mark_many([r.id for r in phase.resources], "cli")
    store.mark_many([e.id for e in phase.exercises], "check")


# --- resource list --------------------------------------------------------------------


def test_resource_list_shows_phase_resources_in_order(store: ProgressStore) -> None:
    phase = store.syllabus.phase("phase2")
    widget = widgets.resource_list("phase2", store)
    assert list(widget.toggles) == [r.id for r in phase.resources]
    cards = [
        child.children[0].value for child in widget.children if "dtc-row" in child._dom_classes
    ]
    assert len(cards) == len(phase.resources)
    for resource, card in zip(phase.resources, cards, strict=True):
        assert html.escape(resource.title) in card
        # The learning path's minutes exactly, then the exercise estimate beside them.
        assert (
            f"reading {resource.minutes} min + exercises about {resource.exercise_minutes} min"
            in card
        )
        assert html.escape(resource.focus) in card
        assert f'<span class="dtc-order">{resource.order}</span>' in card
        for reference in resource.references:
            if reference.url:
                assert f'href="{html.escape(reference.url, quote=True)}" target="_blank"' in card


def test_toggling_a_resource_appends_widget_events(store: ProgressStore) -> None:
    widget = widgets.resource_list("phase1", store)
    toggle = widget.toggles["p1.basics"]
    assert toggle.value is False
    assert toggle.description == "Mark as read"

    assert "reading 0 of 65 minutes + exercises 0 of about 75 minutes" in widget.summary.value
    toggle.value = True
    assert _events(store) == [("p1.basics", "read", "widget")]
    assert store.view().loc["p1.basics", "status"] == "done"
    assert toggle.description == "Read"
    assert "1 of 2 read" in widget.summary.value
    assert "reading 30 of 65 minutes + exercises 0 of about 75 minutes" in widget.summary.value

    toggle.value = False
    assert _events(store)[-1] == ("p1.basics", "unread", "widget")
    assert store.view().loc["p1.basics", "status"] == "todo"
    assert len(_events(store)) == 2


def test_resource_list_counts_passed_exercises_apart_from_reading(store: ProgressStore) -> None:
    widget = widgets.resource_list("phase1", store)
    store.mark("p1.transfer", "check")
    widget.refresh()
    assert "0 of 2 read" in widget.summary.value
    assert "reading 0 of 65 minutes + exercises 30 of about 75 minutes" in widget.summary.value


def test_resource_list_refresh_shows_reads_from_elsewhere_without_new_events(
    store: ProgressStore,
) -> None:
    widget = widgets.resource_list("phase1", store)
    store.mark("p1.acid", "cli")
    assert widget.toggles["p1.acid"].value is False
    widget.refresh()
    assert widget.toggles["p1.acid"].value is True
    assert widget.toggles["p1.acid"].button_style == "success"
    # Syncing from the store must not write the value back as a new event.
    assert _events(store) == [("p1.acid", "read", "cli")]


def test_dependency_notice_appears_and_disappears(store: ProgressStore) -> None:
    widget = widgets.resource_list("phase2", store)
    assert "Complete Phase 1 (Foundations) first" in widget.notice.value
    for title in ("Distributed Transaction Basics", "Catch the broken money transfer"):
        assert html.escape(title) in widget.notice.value

    store.mark("p1.basics", "cli")
    widget.refresh()
    assert "Distributed Transaction Basics" not in widget.notice.value
    assert "ACID in Distributed Systems" in widget.notice.value

    _complete_phase(store, "phase1")
    widget.refresh()
    assert widget.notice.value == ""


def test_phase_without_dependency_has_no_notice(store: ProgressStore) -> None:
    assert widgets.resource_list("phase1", store).notice.value == ""


def test_unknown_phase_is_a_clear_error(store: ProgressStore) -> None:
    with pytest.raises(Exception, match="unknown phase 'phase9'"):
        widgets.resource_list("phase9", store)


# --- checklist ------------------------------------------------------------------------


def test_checklist_lines_follow_the_syllabus(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    syllabus = store.syllabus
    assert list(widget.checks) == [item.id for item in syllabus.checklist]
    assert [box.description for box in widget.checks.values()] == [
        item.text for item in syllabus.checklist
    ]
    assert all(box.disabled for box in widget.checks.values())
    assert set(widget.ticks) == {v.id for v in syllabus.videos} | {
        a.id for a in syllabus.additional
    }
    assert not any(tick.disabled for tick in widget.ticks.values())


def test_exercise_passed_elsewhere_shows_after_refresh(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    phase1 = store.syllabus.phase("phase1")
    assert widget.checks["check.phase1"].value is False
    assert "Catch the broken money transfer" in widget.missing["check.phase1"].value

    store.mark_many([r.id for r in phase1.resources], "cli")
    store.mark("p1.transfer", "check")
    widget.refresh()
    assert widget.checks["check.phase1"].value is False
    missing = widget.missing["check.phase1"].value
    assert "Catch the broken money transfer" not in missing
    assert "Serializability across sites" in missing

    store.mark("p1.serializability", "check")
    widget.refresh()
    assert widget.checks["check.phase1"].value is True
    assert "Complete." in widget.missing["check.phase1"].value
    assert widget.checks["check.phase2"].value is False
    assert all(source != "widget" for _, _, source in _events(store))


def test_refresh_button_rereads_the_store(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    _complete_phase(store, "phase3")
    widget.refresh_button.click()
    assert widget.checks["check.phase3"].value is True


def test_supplementary_ticks_write_events_and_derive_the_line(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    supplementary = widget.checks["check.supplementary"]
    total = len(widget.ticks)
    assert f"0 of {total} reviewed" in widget.missing["check.supplementary"].value

    video = store.syllabus.videos[0]
    widget.ticks[video.id].value = True
    assert _events(store) == [(video.id, "reviewed", "widget")]
    assert f"1 of {total} reviewed" in widget.missing["check.supplementary"].value
    assert supplementary.value is False

    for item_id, tick in widget.ticks.items():
        if item_id != video.id:
            tick.value = True
    assert supplementary.value is True
    assert f"All {total} reviewed" in widget.missing["check.supplementary"].value
    assert len(_events(store)) == total

    widget.ticks[video.id].value = False
    assert _events(store)[-1] == (video.id, "unreviewed", "widget")
    assert supplementary.value is False
    assert len(_events(store)) == total + 1


def test_reveal_toggle_shows_and_hides_the_ticks(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    assert widget.items_box.layout.display == "none"
    widget.reveal.value = True
    assert widget.items_box.layout.display == "flex"
    assert widget.reveal.description == "Hide items"
    widget.reveal.value = False
    assert widget.items_box.layout.display == "none"
    assert _events(store) == []


def test_progress_bar_counts_reading_and_exercise_minutes(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    done, planned = store.minutes()
    estimated = store.syllabus.total_exercise_minutes
    assert done == 0 and widget.progress.max == planned + estimated
    assert widget.minutes_label.value == (
        f"reading and videos 0 of {planned} minutes + exercises 0 of about {estimated} minutes"
    )

    store.mark("p1.basics", "cli")
    widget.refresh()
    basics = store.syllabus.item("p1.basics").minutes
    assert widget.progress.value == basics
    assert widget.minutes_label.value.startswith(
        f"reading and videos {basics} of {planned} minutes + "
    )

    video = next(v for v in store.syllabus.videos if v.minutes)
    widget.ticks[video.id].value = True
    assert widget.progress.value == basics + video.minutes
    assert f"{basics + video.minutes} of {planned} minutes" in widget.minutes_label.value

    store.mark("p1.transfer", "check")
    widget.refresh()
    transfer = store.syllabus.exercise("p1.transfer").minutes
    assert widget.progress.value == basics + video.minutes + transfer
    assert widget.minutes_label.value.endswith(
        f"+ exercises {transfer} of about {estimated} minutes"
    )
    assert widget.progress.bar_style == "info"


def test_everything_done_fills_the_bar(store: ProgressStore) -> None:
    syllabus = store.syllabus
    store.mark_many([item.id for item in syllabus.trackable_items()], "cli")
    widget = widgets.checklist(store)
    assert all(box.value for box in widget.checks.values())
    assert all(tick.value for tick in widget.ticks.values())
    assert widget.progress.value == widget.progress.max
    assert widget.progress.bar_style == "success"


def test_no_output_on_stdout_or_stderr(store: ProgressStore, capfd: pytest.CaptureFixture) -> None:
    listing = widgets.resource_list("phase2", store)
    board = widgets.checklist(store)
    listing.toggles["p2.twopc"].value = True
    board.ticks[store.syllabus.videos[0].id].value = True
    board.reveal.value = True
    board.refresh_button.click()
    listing.refresh()
    board._repr_mimebundle_()
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_a_failing_store_is_reported_inside_the_widget(
    store: ProgressStore, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    widget = widgets.checklist(store)
    store.path.unlink()
    store.path.write_bytes(b"not a database at all, " * 10)
    video = store.syllabus.videos[0]
    widget.ticks[video.id].value = True
    assert "dtc-error" in widget._error.value
    assert "Could not update progress" in widget._error.value
    assert capfd.readouterr().err == ""


def test_missing_default_store_location_is_a_progress_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    monkeypatch.setenv("DTCOURSE_PROGRESS", str(directory))
    with pytest.raises(ProgressError, match="is a directory"):
        widgets.checklist()


def test_default_store_is_opened_when_a_widget_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "default.sqlite"
    monkeypatch.setenv("DTCOURSE_PROGRESS", str(path))
    widget = widgets.checklist()
    assert path.exists()
    widget.ticks[load_syllabus().videos[0].id].value = True
    assert len(ProgressStore(path).events()) == 1


def test_import_touches_no_store(tmp_path: Path) -> None:
    path = tmp_path / "never.sqlite"
    code = "import dtcourse.runtime.widgets, sys; sys.exit(0)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"DTCOURSE_PROGRESS": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not path.exists()


# --- pure helpers ---------------------------------------------------------------------


def test_reference_html_escapes_text_and_links_only_web_urls() -> None:
    hostile = Reference(
        title="<script>alert(1)</script>",
        authors=("A & B",),
        year=1999,
        url='https://example.org/?a=1&b="2"',
        note="<b>note</b>",
    )
    line = widgets.reference_html(hostile)
    assert "<script>" not in line and "&lt;script&gt;" in line
    assert "A &amp; B" in line
    assert 'href="https://example.org/?a=1&amp;b=&quot;2&quot;"' in line
    assert 'target="_blank"' in line
    assert "&lt;b&gt;note&lt;/b&gt;" in line

    unsafe = widgets.reference_html(Reference(title="x", url="javascript:alert(1)"))
    assert "href" not in unsafe


def test_dependency_gaps_name_the_missing_items(store: ProgressStore) -> None:
    syllabus = store.syllabus
    phase2 = syllabus.phase("phase2")
    assert widgets.phase_dependencies(phase2) == ("phase1",)
    assert widgets.phase_dependencies(syllabus.phase("phase1")) == ()
    gaps = widgets.dependency_gaps(syllabus, phase2, store.checklist())
    assert [gap.phase_id for gap in gaps] == ["phase1"]
    assert "ACID in Distributed Systems" in gaps[0].missing
    _complete_phase(store, "phase1")
    assert widgets.dependency_gaps(syllabus, phase2, store.checklist()) == ()
    assert widgets.notice_html(()) == ""


def test_missing_line_separates_readings_from_exercises(store: ProgressStore) -> None:
    phase1 = store.syllabus.phase("phase1")
    store.mark("p1.basics", "cli")
    status = next(s for s in store.checklist() if s.id == "check.phase1")
    line = widgets.missing_html(status, phase1)
    assert "<b>to read:</b> ACID in Distributed Systems" in line
    assert "<b>to pass:</b> Catch the broken money transfer, Serializability" in line
    assert "Distributed Transaction Basics" not in line
    plain = widgets.missing_html(status)
    assert "<b>to do:</b> Catch the broken money transfer, ACID in Distributed Systems" in plain


def test_refresh_if_changed_follows_the_store_version(store: ProgressStore) -> None:
    widget = widgets.checklist(store)
    assert widget.refresh_if_changed() is False
    store.mark("p1.basics", "cli")
    assert widget.refresh_if_changed() is True
    assert widget.progress.value == store.syllabus.item("p1.basics").minutes
    assert widget.refresh_if_changed() is False
    listing = widgets.resource_list("phase1", store)
    store.mark("p1.acid", "cli")
    assert listing.toggles["p1.acid"].value is False
    listing._repr_mimebundle_()
    assert listing.toggles["p1.acid"].value is True


def test_repr_is_short_and_names_the_store(store: ProgressStore) -> None:
    board = widgets.checklist(store)
    listing = widgets.resource_list("phase2", store)
    assert repr(board) == (
        f"Checklist(4 lines, {len(board.ticks)} supplementary items, store={str(store.path)!r})"
    )
    assert repr(listing) == f"ResourceList('phase2', 3 resources, store={str(store.path)!r})"
    # ipywidgets cuts the plain-text form at 110 characters.
    assert board._repr_mimebundle_()["text/plain"].startswith(repr(board)[:100])


def test_trace_viewer_steps_through_a_simulation():
    from dtcourse.commit.protocols import build
    from dtcourse.engine.sim import Fault, simulate
    from dtcourse.runtime.widgets import trace_viewer

    result = simulate(build("2pc", 2), seed=3, faults=[Fault(1.5, "crash", "C")])
    viewer = trace_viewer(result.trace)
    events = result.trace.events
    assert viewer.slider.max == len(events) - 1
    assert viewer.slider.value == viewer.slider.max  # the whole run first
    viewer.slider.value = 0
    assert viewer.diagram.value.count("\n") == 1  # header and the first event only
    assert "event 0</b>" in viewer.caption.value
    viewer.forward.click()
    assert viewer.slider.value == 1 and "event 1</b>" in viewer.caption.value
    viewer.back.click()
    viewer.back.click()  # stops at the first event
    assert viewer.slider.value == 0
    crash = next(event.index for event in events if event.kind == "crash")
    viewer.slider.value = crash
    assert "CRASHES" in viewer.caption.value


def test_trace_viewer_refuses_what_is_not_a_trace():
    from dtcourse.errors import DTCourseError
    from dtcourse.runtime.widgets import trace_viewer

    with pytest.raises(DTCourseError, match="needs a Trace"):
        trace_viewer("not a trace")
