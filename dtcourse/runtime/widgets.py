"""Widgets for the course notebooks: a phase's reading list and the completion checklist.

Neither widget keeps progress of its own. Ticking a box appends an event to the progress
store, and every box shows what the store derives, so a resource read in another
notebook or an exercise passed by ``check()`` appears after ``refresh()``. Values set
while syncing from the store never write events back, and nothing is ever printed to
stderr: a widget in a graded notebook must not cost points, so a failure is shown inside
the widget instead.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from dtcourse.engine.trace import Trace
from dtcourse.errors import DTCourseError
from dtcourse.runtime.syllabus import time_text

if TYPE_CHECKING:
    from dtcourse.runtime.progress import ChecklistStatus, ProgressStore
    from dtcourse.runtime.syllabus import Phase, Reference, Resource, Syllabus

SOURCE = "widget"

# Scoped to the dtc- classes and built on JupyterLab's theme variables, so the widgets
# follow a light or dark theme and leave the rest of the page alone.
_CSS = """
<style>
.dtc-panel { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 6px;
  padding: 10px 14px; background: var(--jp-layout-color1, #fff); }
.dtc-res, .dtc-sub, .dtc-notice, .dtc-error, .dtc-missing, .dtc-link, .dtc-group {
  line-height: 1.45; }
.dtc-heading { font-size: 15px; font-weight: 600; color: var(--jp-ui-font-color0, #111);
  margin: 0 0 2px 0; }
.dtc-sub { color: var(--jp-ui-font-color2, #666); font-size: 12px; }
.dtc-row { border-top: 1px solid var(--jp-border-color3, #eee); padding: 8px 0 6px 0; }
.dtc-res { line-height: 1.45; color: var(--jp-ui-font-color1, #222); }
.dtc-order { display: inline-block; min-width: 22px; height: 22px; border-radius: 11px;
  background: var(--jp-brand-color1, #1976d2); color: #fff; text-align: center;
  font-weight: 600; font-size: 12px; line-height: 22px; margin-right: 8px; }
.dtc-title { font-weight: 600; font-size: 14px; }
.dtc-meta { color: var(--jp-ui-font-color2, #666); font-size: 12px; margin-left: 8px; }
.dtc-focus { margin: 2px 0 0 30px; }
.dtc-next { margin: 2px 0 0 30px; color: var(--jp-ui-font-color2, #666); font-size: 12px; }
.dtc-refs { margin: 4px 0 0 30px; padding-left: 16px; font-size: 12px; }
.dtc-refs a, .dtc-link a { color: var(--jp-content-link-color, #1976d2); }
.dtc-needs { display: inline-block; margin-left: 8px; font-size: 11px; padding: 0 6px;
  border-radius: 8px; background: var(--jp-warn-color3, #fff3e0);
  color: var(--jp-warn-color0, #e65100); }
.dtc-notice { border-left: 4px solid var(--jp-warn-color1, #f57c00); padding: 6px 10px;
  background: var(--jp-warn-color3, #fff3e0); color: var(--jp-ui-font-color1, #222);
  border-radius: 3px; }
.dtc-error { border-left: 4px solid var(--jp-error-color1, #d32f2f); padding: 6px 10px;
  background: var(--jp-error-color3, #ffebee); color: var(--jp-ui-font-color1, #222);
  border-radius: 3px; }
.dtc-missing { margin: 0 0 4px 28px; color: var(--jp-ui-font-color2, #666);
  font-size: 12px; }
.dtc-missing.dtc-done { color: var(--jp-success-color0, #2e7d32); }
.dtc-group { font-weight: 600; font-size: 12px; margin: 6px 0 0 0; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--jp-ui-font-color2, #666); }
.dtc-link { font-size: 12px; color: var(--jp-ui-font-color2, #666); }
.dtc-tick .widget-label-basic span { font-size: 13px; }
.dtc-checklist input[type="checkbox"] { accent-color: var(--jp-success-color1, #388e3c); }
.dtc-done-line .widget-label-basic span { color: var(--jp-success-color0, #2e7d32);
  font-weight: 600; }
</style>
"""

_PANEL_WIDTH = "100%"
_PANEL_MAX_WIDTH = "860px"


def resource_list(phase_id: str, store: ProgressStore | None = None) -> ResourceList:
    """A phase's resources in reading order, each with a "mark as read" toggle."""
    return ResourceList(phase_id, store)


def checklist(store: ProgressStore | None = None) -> Checklist:
    """The learning path's completion checklist, kept in step with the progress store."""
    return Checklist(store)


# --- pure helpers ---------------------------------------------------------------------


@dataclass(frozen=True)
class DependencyGap:
    """A phase that must be completed first, and what it still lacks."""

    phase_id: str
    title: str
    missing: tuple[str, ...]


def phase_dependencies(phase: Phase) -> tuple[str, ...]:
    """The other phases a phase's resources depend on, in first-mentioned order."""
    seen: list[str] = []
    for resource in phase.resources:
        for dependency in resource.dependencies:
            if dependency != phase.id and dependency not in seen:
                seen.append(dependency)
    return tuple(seen)


def dependency_gaps(
    syllabus: Syllabus, phase: Phase, statuses: tuple[ChecklistStatus, ...]
) -> tuple[DependencyGap, ...]:
    """The phase's dependencies that the checklist does not yet show as completed."""
    by_id = {status.id: status for status in statuses}
    gaps = []
    for dependency in phase_dependencies(phase):
        for item in syllabus.checklist:
            status = by_id.get(item.id)
            if item.kind == "phase" and item.phase == dependency and status and not status.done:
                required = syllabus.phase(dependency)
                title = f"Phase {required.number} ({required.name})"
                gaps.append(DependencyGap(dependency, title, status.missing))
    return tuple(gaps)


def notice_html(gaps: tuple[DependencyGap, ...]) -> str:
    """The warning shown above a reading list whose prerequisites are not done."""
    if not gaps:
        return ""
    lines = []
    for gap in gaps:
        missing = ", ".join(html.escape(title) for title in gap.missing)
        lines.append(
            f"<div><b>Complete {html.escape(gap.title)} first</b>: missing {missing}.</div>"
        )
    return f'<div class="dtc-notice">{"".join(lines)}</div>'


def reference_html(reference: Reference) -> str:
    """One reference line; only web links become anchors, and they open in a new tab."""
    title = html.escape(reference.title)
    url = reference.url or ""
    if url.startswith(("https://", "http://")):
        title = (
            f'<a href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">{title}</a>'
        )
    parts = [title]
    if reference.authors:
        parts.append(html.escape(", ".join(reference.authors)))
    if reference.year is not None:
        parts.append(f"({reference.year})")
    text = " — ".join(parts[:2]) + (f" {parts[2]}" if len(parts) > 2 else "")
    if reference.note:
        text += f'. <span class="dtc-sub">{html.escape(reference.note)}</span>'
    return f"<li>{text}</li>"


def resource_html(resource: Resource, syllabus: Syllabus) -> str:
    """A resource card: order, title, kind and minutes, focus, references, next step."""
    needs = "".join(
        f'<span class="dtc-needs">after Phase {syllabus.phase(dep).number}</span>'
        for dep in resource.dependencies
        if dep != resource.phase
    )
    refs = "".join(reference_html(reference) for reference in resource.references)
    parts = [
        '<div class="dtc-res">',
        f'<span class="dtc-order">{resource.order}</span>',
        f'<span class="dtc-title">{html.escape(resource.title)}</span>',
        f'<span class="dtc-meta">{html.escape(resource.kind)} · '
        f"{time_text(resource.minutes, resource.exercise_minutes)}</span>",
        needs,
        f'<div class="dtc-focus"><span class="dtc-sub">Focus:</span> '
        f"{html.escape(resource.focus)}</div>",
    ]
    if refs:
        parts.append(f'<ul class="dtc-refs">{refs}</ul>')
    if resource.next_step:
        parts.append(f'<div class="dtc-next">Next: {html.escape(resource.next_step)}</div>')
    parts.append("</div>")
    return "".join(parts)


def missing_html(status: ChecklistStatus, phase: Phase | None = None) -> str:
    """What a phase line still lacks, readings and exercises apart when the phase is known."""
    if status.done:
        return '<div class="dtc-missing dtc-done">Complete.</div>'
    readings = {r.title for r in phase.resources} if phase is not None else set()
    exercises = {e.title for e in phase.exercises} if phase is not None else set()
    groups = [
        ("to read", [t for t in status.missing if t in readings]),
        ("to pass", [t for t in status.missing if t in exercises]),
        ("to do", [t for t in status.missing if t not in readings and t not in exercises]),
    ]
    parts = [
        f"<b>{label}:</b> {', '.join(html.escape(title) for title in titles)}"
        for label, titles in groups
        if titles
    ]
    return f'<div class="dtc-missing">Still {" · ".join(parts)}</div>'


def minutes_text(done: int, planned: int) -> str:
    return f"{done} of {planned} minutes"


# --- the widgets ----------------------------------------------------------------------


def _open_store(store: ProgressStore | None) -> ProgressStore:
    """The given store, else the default one: opened when a widget is made, not imported."""
    if store is not None:
        return store
    from dtcourse.runtime.progress import ProgressStore

    return ProgressStore()


def _error_html(error: Exception) -> str:
    return f'<div class="dtc-error">Could not update progress: {html.escape(str(error))}</div>'


class _StoreBound:
    """Shared plumbing: a sync guard and error reporting inside the widget."""

    _store: ProgressStore
    _error: widgets.HTML
    _syncing: bool
    _seen_version: int = -1

    @contextmanager
    def _sync(self) -> Iterator[None]:
        """Observers fire on programmatic changes too; inside this block they do nothing."""
        previous, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = previous

    def _record(self, item_id: str, done: bool) -> bool:
        """Append a mark or unmark event; a failure is shown in the widget, not raised."""
        try:
            if done:
                self._store.mark(item_id, SOURCE)
            else:
                self._store.unmark(item_id, SOURCE)
        except Exception as error:  # shown to the student: never a traceback on stderr
            self._error.value = _error_html(error)
            return False
        self._error.value = ""
        return True

    def _observer(
        self, item_id: str, after: Callable[[], None]
    ) -> Callable[[dict[str, Any]], None]:
        def on_change(change: dict[str, Any]) -> None:
            if self._syncing:
                return
            self._record(item_id, bool(change["new"]))
            self._safe_refresh(after)

        return on_change

    def _safe_refresh(self, refresh: Callable[[], object]) -> None:
        try:
            refresh()
        except Exception as error:  # shown to the student: never a traceback on stderr
            self._error.value = _error_html(error)

    def refresh(self) -> None:
        """Re-read the store and show what it holds now."""
        # Read the counter first: an event recorded while showing is caught next time.
        version = self._store.version()
        self._show()
        self._seen_version = version

    def refresh_if_changed(self) -> bool:
        """Refresh only when the store has new events since the last refresh (one query)."""
        if self._store.version() == self._seen_version:
            return False
        self.refresh()
        return True

    def _show(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        # The default repr lists every child widget, CSS included: thousands of characters
        # in a notebook saved without a browser. Say what it is and where progress lives.
        return f"{type(self).__name__}({self._describe()}, store={str(self._store.path)!r})"

    def _describe(self) -> str:
        return ""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Showing the same widget again (re-running its cell) shows fresh progress.
        self._safe_refresh(self.refresh_if_changed)
        return super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]


def _refresh_button(on_click: Callable[[], None]) -> widgets.Button:
    button = widgets.Button(
        description="Refresh",
        icon="refresh",
        tooltip="Read the progress store again",
        layout=widgets.Layout(width="100px", flex="0 0 auto"),
    )
    button.on_click(lambda _button: on_click())
    return button


def _panel_layout() -> widgets.Layout:
    return widgets.Layout(width=_PANEL_WIDTH, max_width=_PANEL_MAX_WIDTH)


class ResourceList(_StoreBound, widgets.VBox):
    """A phase's reading list bound to the progress store.

    ``toggles`` (per resource id), ``notice`` and ``summary`` are attributes so a notebook
    or a test can drive it without a browser.
    """

    def __init__(self, phase_id: str, store: ProgressStore | None = None) -> None:
        widgets.VBox.__init__(self, layout=_panel_layout())
        self._syncing = False
        self._store = _open_store(store)
        self._syllabus = self._store.syllabus
        self._phase = self._syllabus.phase(phase_id)
        self._error = widgets.HTML("")
        self.notice = widgets.HTML("")
        toggles: dict[str, widgets.ToggleButton] = {}
        rows: list[widgets.Widget] = []
        for resource in self._phase.resources:
            toggle = widgets.ToggleButton(
                value=False,
                layout=widgets.Layout(width="130px", flex="0 0 auto", margin="6px 0 0 8px"),
            )
            toggle.add_class(f"dtc-read-{_css_name(resource.id)}")
            toggle.observe(self._observer(resource.id, self.refresh), names="value")
            toggles[resource.id] = toggle
            card = widgets.HTML(
                resource_html(resource, self._syllabus), layout=widgets.Layout(flex="1 1 auto")
            )
            row = widgets.HBox([card, toggle], layout=widgets.Layout(width="100%"))
            row.add_class("dtc-row")
            rows.append(row)
        self.toggles: Mapping[str, widgets.ToggleButton] = MappingProxyType(toggles)
        self.summary = widgets.HTML("")
        header = widgets.HBox(
            [
                widgets.HTML(
                    f'<div class="dtc-heading">{html.escape(self._phase.title)}</div>',
                    layout=widgets.Layout(flex="1 1 auto"),
                ),
                _refresh_button(lambda: self._safe_refresh(self.refresh)),
            ],
            layout=widgets.Layout(width="100%", align_items="center"),
        )
        self.children = (
            widgets.HTML(_CSS),
            header,
            self.summary,
            self.notice,
            *rows,
            self._error,
        )
        self.add_class("dtc-panel")
        self.add_class("dtc-resource-list")
        self.refresh()

    @property
    def phase_id(self) -> str:
        return self._phase.id

    def _describe(self) -> str:
        return f"{self._phase.id!r}, {len(self.toggles)} resources"

    def _show(self) -> None:
        """Read marks, minutes read and the dependency notice, as the store has them."""
        view = self._store.view()
        gaps = dependency_gaps(self._syllabus, self._phase, self._store.checklist())
        with self._sync():
            for resource in self._phase.resources:
                done = bool(view.loc[resource.id, "status"] == "done")
                _style_read_toggle(self.toggles[resource.id], done)
            self.notice.value = notice_html(gaps)
        count = sum(1 for toggle in self.toggles.values() if toggle.value)
        minutes = self._store.minute_totals(self._phase.id)
        self.summary.value = (
            f'<div class="dtc-sub">{count} of {len(self.toggles)} read · '
            f"{html.escape(minutes.describe())}</div>"
        )


def _style_read_toggle(toggle: widgets.ToggleButton, done: bool) -> None:
    toggle.value = done
    toggle.description = "Read" if done else "Mark as read"
    toggle.icon = "check" if done else ""
    toggle.button_style = "success" if done else ""
    toggle.tooltip = "Click to mark as unread" if done else "Click when you have read it"


class Checklist(_StoreBound, widgets.VBox):
    """The completion checklist: derived phase lines, tickable supplementary material.

    Its parts are attributes so a notebook or a test can drive it without a browser:
    ``checks`` and ``missing`` (per checklist id), ``ticks`` (per video and additional
    resource id), ``reveal`` and ``items_box``, ``progress``, ``minutes_label`` and
    ``refresh_button``.
    """

    def __init__(self, store: ProgressStore | None = None) -> None:
        widgets.VBox.__init__(self, layout=_panel_layout())
        self._syncing = False
        self._store = _open_store(store)
        self._syllabus = self._store.syllabus
        self._error = widgets.HTML("")
        self.progress = widgets.IntProgress(
            min=0, max=1, value=0, layout=widgets.Layout(width="60%", flex="1 1 auto")
        )
        self.minutes_label = widgets.Label("", layout=widgets.Layout(margin="0 0 0 12px"))
        self.refresh_button = _refresh_button(lambda: self._safe_refresh(self.refresh))
        self.ticks: Mapping[str, widgets.Checkbox] = MappingProxyType({})
        self.items_box = widgets.VBox([])
        self.reveal = widgets.ToggleButton(value=False)

        boxes: dict[str, widgets.Checkbox] = {}
        missing: dict[str, widgets.HTML] = {}
        lines: list[widgets.Widget] = []
        supplementary_id: str | None = None
        for item in self._syllabus.checklist:
            box = widgets.Checkbox(
                value=False,
                disabled=True,
                description=item.text,
                indent=False,
                layout=widgets.Layout(width="auto"),
            )
            box.add_class(f"dtc-check-{_css_name(item.id)}")
            boxes[item.id] = box
            missing[item.id] = widgets.HTML("")
            if item.kind == "supplementary":
                supplementary_id = item.id
                lines.append(self._supplementary_section(box, missing[item.id]))
            else:
                lines.append(widgets.VBox([box, missing[item.id]]))
        self.checks: Mapping[str, widgets.Checkbox] = MappingProxyType(boxes)
        self.missing: Mapping[str, widgets.HTML] = MappingProxyType(missing)
        self._supplementary_id = supplementary_id
        self._phases = {
            item.id: self._syllabus.phase(item.phase)
            for item in self._syllabus.checklist
            if item.kind == "phase" and item.phase is not None
        }

        header = widgets.HBox(
            [
                widgets.HTML(
                    '<div class="dtc-heading">Completion checklist</div>',
                    layout=widgets.Layout(flex="1 1 auto"),
                ),
                self.refresh_button,
            ],
            layout=widgets.Layout(width="100%", align_items="center"),
        )
        bar = widgets.HBox(
            [self.progress, self.minutes_label],
            layout=widgets.Layout(width="100%", align_items="center", margin="4px 0 8px 0"),
        )
        self.children = (widgets.HTML(_CSS), header, bar, *lines, self._error)
        self.add_class("dtc-panel")
        self.add_class("dtc-checklist")
        self.refresh()

    def _supplementary_section(self, box: widgets.Checkbox, missing: widgets.HTML) -> widgets.VBox:
        """The supplementary line, a toggle, and the ticks it reveals (hidden at first)."""
        ticks: dict[str, widgets.Checkbox] = {}
        rows: list[widgets.Widget] = []
        if self._syllabus.additional:
            rows.append(widgets.HTML('<div class="dtc-group">Additional resources</div>'))
        for extra in self._syllabus.additional:
            links = ", ".join(_link(ref.title, ref.url) for ref in extra.references)
            detail = html.escape(extra.description) + (f" — {links}" if links else "")
            rows.append(self._tick_row(extra.id, extra.title, detail, ticks))
        if self._syllabus.videos:
            rows.append(widgets.HTML('<div class="dtc-group">Videos</div>'))
        for video in self._syllabus.videos:
            length = f"{video.minutes} min" if video.minutes is not None else "length unknown"
            detail = f"{html.escape(video.channel)} · {length} · {_link('watch', video.url)}"
            rows.append(self._tick_row(video.id, video.title, detail, ticks))
        self.ticks = MappingProxyType(ticks)
        self.items_box = widgets.VBox(
            rows, layout=widgets.Layout(display="none", margin="0 0 0 28px")
        )
        self.reveal = widgets.ToggleButton(
            value=False,
            description="Show items",
            icon="chevron-down",
            tooltip="Tick each additional resource and video as you review it",
            layout=widgets.Layout(width="130px", flex="0 0 auto"),
        )
        self.reveal.add_class("dtc-reveal")
        self.reveal.observe(self._on_reveal, names="value")
        line = widgets.HBox(
            [box, self.reveal],
            layout=widgets.Layout(width="100%", justify_content="space-between"),
        )
        return widgets.VBox([line, missing, self.items_box])

    def _tick_row(
        self, item_id: str, title: str, detail: str, ticks: dict[str, widgets.Checkbox]
    ) -> widgets.Widget:
        tick = widgets.Checkbox(
            value=False, description=title, indent=False, layout=widgets.Layout(width="auto")
        )
        tick.add_class("dtc-tick")
        tick.add_class(f"dtc-tick-{_css_name(item_id)}")
        tick.observe(self._observer(item_id, self.refresh), names="value")
        ticks[item_id] = tick
        info = widgets.HTML(
            f'<div class="dtc-link">{detail}</div>', layout=widgets.Layout(margin="0 0 4px 24px")
        )
        return widgets.VBox([tick, info])

    def _describe(self) -> str:
        return f"{len(self.checks)} lines, {len(self.ticks)} supplementary items"

    def _on_reveal(self, change: dict[str, Any]) -> None:
        shown = bool(change["new"])
        self.items_box.layout.display = "flex" if shown else "none"
        self.reveal.description = "Hide items" if shown else "Show items"
        self.reveal.icon = "chevron-up" if shown else "chevron-down"

    def _show(self) -> None:
        """Phase lines, supplementary ticks and minutes, as the store has them."""
        view = self._store.view()
        statuses = self._store.checklist()
        minutes = self._store.minute_totals()
        done, planned = minutes.done, minutes.planned
        with self._sync():
            for status in statuses:
                if status.id in self.checks:
                    box = self.checks[status.id]
                    box.value = status.done
                    if status.done:
                        box.add_class("dtc-done-line")
                    else:
                        box.remove_class("dtc-done-line")
                    self.missing[status.id].value = (
                        self._supplementary_missing(status)
                        if status.id == self._supplementary_id
                        else missing_html(status, self._phases.get(status.id))
                    )
            for item_id, tick in self.ticks.items():
                tick.value = bool(view.loc[item_id, "status"] == "done")
        self.progress.max = max(planned, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress.bar_style = "success" if planned and done >= planned else "info"
        self.minutes_label.value = minutes.describe("reading and videos")

    def _supplementary_missing(self, status: ChecklistStatus) -> str:
        total = len(self.ticks)
        reviewed = total - len(status.missing)
        if status.done:
            return f'<div class="dtc-missing dtc-done">All {total} reviewed.</div>'
        return f'<div class="dtc-missing">{reviewed} of {total} reviewed.</div>'


def _link(text: str, url: str | None) -> str:
    if url and url.startswith(("https://", "http://")):
        return (
            f'<a href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">{html.escape(text)}</a>'
        )
    return html.escape(text)


def _css_name(item_id: str) -> str:
    """An item id as a CSS class fragment (ids contain dots)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in item_id)


def trace_viewer(trace: Trace | str | PathLike[str], nodes: Any = None) -> TraceViewer:
    """Step through a trace (a simulation, a counterexample, or the path of a saved one)
    one event at a time, with the verdict of each property after every step.

    When the trace does not carry verdicts (a simulation), they come from replaying it,
    on ``nodes`` when given (see ``dtcourse.engine.replay.rebuild``).
    """
    return TraceViewer(_as_trace(trace), nodes)


def _as_trace(trace: Any) -> Trace:
    if isinstance(trace, str | PathLike) and Path(trace).suffix == ".json":
        return Trace.load(trace)
    if not isinstance(trace, Trace) or not trace.events:
        raise DTCourseError(
            "trace_viewer needs a Trace with at least one event, e.g. simulate(...).trace "
            "or system.trace_of(result.blocking), or the path of a saved trace (.json)"
        )
    return trace


def _with_verdicts(trace: Trace, nodes: Any) -> tuple[Trace, str]:
    """The trace with each step's verdicts, replaying it when it has none; and a note
    when they cannot be had."""
    if not trace.steps or any(step.verdicts for step in trace.steps):
        return trace, ""
    from dtcourse.engine.replay import replay

    try:
        result = replay(trace, nodes)
    except DTCourseError as error:
        return trace, f"verdicts unavailable: {error}"
    steps = tuple(
        replace(step, verdicts=again.verdicts)
        for step, again in zip(trace.steps, result.trace.steps, strict=False)
    )
    divergence = result.divergence
    note = "" if divergence is None else f"verdicts stop where the replay {divergence.describe()}"
    return replace(trace, steps=steps + trace.steps[len(steps) :]), note


class TraceViewer(widgets.VBox):
    """A slider over a trace's events: the text sequence diagram up to the chosen event,
    and, for a trace with steps, which properties hold after the step that event is in.

    Reading a counterexample one step at a time is how students find the step where the
    protocol went wrong; the text form keeps every step on screen without scrolling images.
    """

    def __init__(self, trace: Trace, nodes: Any = None) -> None:
        trace = _as_trace(trace)
        self.trace, self.note = _with_verdicts(trace, nodes)
        kinds = {p.get("name"): p.get("kind") for p in (trace.system or {}).get("properties", ())}
        self._kinds = kinds
        last = len(trace.events) - 1
        self.slider = widgets.IntSlider(
            value=last, min=0, max=last, description="event", continuous_update=True,
            layout=widgets.Layout(width="95%"),
        )  # fmt: skip
        self.back = widgets.Button(description="◀", layout=widgets.Layout(width="3em"))
        self.forward = widgets.Button(description="▶", layout=widgets.Layout(width="3em"))
        self.caption = widgets.HTML()
        self.verdicts = widgets.HTML()
        self.diagram = widgets.HTML()
        self.back.on_click(lambda _: self._step(-1))
        self.forward.on_click(lambda _: self._step(+1))
        self.slider.observe(lambda _: self._show(), names="value")
        controls = widgets.HBox([self.back, self.slider, self.forward])
        super().__init__(
            [controls, self.caption, self.verdicts, self.diagram], layout=_panel_layout()
        )
        self._show()

    def _step(self, delta: int) -> None:
        self.slider.value = min(max(self.slider.value + delta, 0), self.slider.max)

    def _show(self) -> None:
        from dtcourse.engine.trace_text import text_sequence

        upto = self.slider.value + 1
        shown = Trace(self.trace.nodes, self.trace.events[:upto])
        lines = text_sequence(shown).splitlines()
        event = self.trace.events[upto - 1]
        self.caption.value = (
            f"<b>event {event.index}</b> of {len(self.trace.events)}, "
            f"t={event.time:g}: {html.escape(lines[-1].strip())}"
        )
        self.verdicts.value = self._verdict_html(event.index)
        self.diagram.value = (
            "<pre style='font-size: 12px; line-height: 1.25; margin: 0'>"
            + html.escape("\n".join(lines))
            + "</pre>"
        )

    def verdicts_at(self, event_index: int) -> dict[str, bool]:
        """Which properties hold after the step that caused event ``event_index``."""
        number = self.trace.step_of(event_index)
        return {} if number is None else dict(self.trace.steps[number].verdicts)

    def _verdict_html(self, event_index: int) -> str:
        number = self.trace.step_of(event_index)
        if number is None:
            return ""
        step = self.trace.steps[number]
        parts = []
        for name, holds in step.verdicts:
            kind = self._kinds.get(name, "always")
            if kind == "sometimes":
                mark, color = ("reached", "var(--jp-success-color1, #388e3c)") if holds else (
                    "not yet", "var(--jp-ui-font-color2, #666)")  # fmt: skip
            else:
                mark, color = ("holds", "var(--jp-success-color1, #388e3c)") if holds else (
                    "VIOLATED", "var(--jp-error-color1, #d32f2f)")  # fmt: skip
            parts.append(
                f"<span style='color: {color}; margin-right: 12px'>"
                f"{html.escape(name)}: {mark}</span>"
            )
        note = f"<div class='dtc-sub'>{html.escape(self.note)}</div>" if self.note else ""
        body = "".join(parts) or "<span class='dtc-sub'>no properties judged</span>"
        return (
            f"<div style='font-size: 12px'><b>after step {number}</b> "
            f"({html.escape(step.label)}): {body}</div>{note}"
        )
