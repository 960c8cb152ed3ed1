"""Plots of what runs measured: messages and log writes, costs per variant, checker statistics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dtcourse.errors import DTCourseError
from dtcourse.pictures.figure import (
    COST_COLUMNS,
    LOG,
    MESSAGE,
    PALETTE,
    TIMEOUT,
    course_figure,
    figure_of,
)

__all__ = ["metric_counts", "plot_checker_stats", "plot_costs", "plot_metrics"]


def _message_type(label: Any) -> str:
    text = str(label)
    return text.split("(", 1)[0].strip() or text


def _metrics_from_events(frame: Any) -> dict[str, dict[str, int]]:
    needed = {"kind", "node", "message", "forced"}
    missing = needed - set(frame.columns)
    if missing:
        raise DTCourseError(
            f"cannot plot metrics from a table without columns {sorted(missing)}; "
            "pass a Trace, trace.to_frame(), or a dict of counts"
        )
    sends = frame[frame["kind"] == "send"]
    messages: dict[str, int] = {}
    for label in sends["message"]:
        key = _message_type(label)
        messages[key] = messages.get(key, 0) + 1
    logs = frame[frame["kind"] == "log"]
    forced: dict[str, int] = {}
    lazy: dict[str, int] = {}
    for node, is_forced in zip(logs["node"], logs["forced"], strict=True):
        target = forced if bool(is_forced is True or is_forced == True) else lazy  # noqa: E712
        target[str(node)] = target.get(str(node), 0) + 1
    return {"messages": messages, "forced_writes": forced, "lazy_writes": lazy}


def metric_counts(source: Any) -> dict[str, dict[str, int]]:
    """Messages by type and log writes by node, from a trace, its frame, or given counts."""
    if hasattr(source, "events") and hasattr(source, "to_frame"):
        return _metrics_from_events(source.to_frame())
    if hasattr(source, "columns"):
        return _metrics_from_events(source)
    if isinstance(source, Mapping):
        result: dict[str, dict[str, int]] = {}
        for key in ("messages", "forced_writes", "lazy_writes"):
            value = source.get(key, {})
            if not isinstance(value, Mapping):
                raise DTCourseError(
                    f"metrics[{key!r}] must map names to counts (e.g. {{'Prepare': 3}}), "
                    f"got {type(value).__name__}"
                )
            result[key] = {str(name): int(count) for name, count in value.items()}
        if not any(result.values()):
            raise DTCourseError(
                "no metrics to plot: expected keys 'messages', 'forced_writes', 'lazy_writes'"
            )
        return result
    raise DTCourseError(
        f"cannot plot metrics from a {type(source).__name__}; pass a Trace, "
        "trace.to_frame(), or a dict with 'messages', 'forced_writes', 'lazy_writes'"
    )


def _bar_axes(axes: Sequence[Axes] | Axes | None, count: int, width: float) -> list[Axes]:
    if axes is None:
        figure = course_figure(width, 3.2)
        return list(figure.subplots(1, count, squeeze=False)[0])
    found = list(axes) if isinstance(axes, Sequence | Iterable) else [axes]
    if len(found) != count:
        raise DTCourseError(f"this plot needs {count} axes, got {len(found)}")
    return found


def _tidy(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def plot_metrics(frame_or_dict: Any, *, ax: Sequence[Axes] | None = None) -> Figure:
    """Bar charts of a run's costs: messages sent by type, log writes by node.

    Accepts a ``Trace``, its ``to_frame()``, or counts such as
    ``{"messages": {"Prepare": 3}, "forced_writes": {"c1": 1}, "lazy_writes": {...}}``.
    ``ax``, if given, is a pair of axes.
    """
    counts = metric_counts(frame_or_dict)
    left, right = _bar_axes(ax, 2, 9.0)
    messages = counts["messages"]
    names = list(messages)
    bars = left.bar(names, [messages[n] for n in names], color=MESSAGE, gid="messages")
    left.bar_label(bars, fontsize=8)
    left.set_title("messages sent, by type", fontsize=10, loc="left")
    left.set_ylabel("messages", fontsize=9)
    nodes = list(dict.fromkeys([*counts["forced_writes"], *counts["lazy_writes"]]))
    if hasattr(frame_or_dict, "nodes"):  # a trace: keep its lifeline order
        nodes = [n for n in frame_or_dict.nodes if n in nodes] + [
            n for n in nodes if n not in frame_or_dict.nodes
        ]
    positions_ = range(len(nodes))
    forced = [counts["forced_writes"].get(n, 0) for n in nodes]
    lazy = [counts["lazy_writes"].get(n, 0) for n in nodes]
    forced_bars = right.bar([p - 0.2 for p in positions_], forced, width=0.4, color=LOG,
                            label="forced", gid="forced")  # fmt: skip
    lazy_bars = right.bar([p + 0.2 for p in positions_], lazy, width=0.4, color="white",
                          edgecolor=LOG, hatch="//", label="lazy", gid="lazy")  # fmt: skip
    right.bar_label(forced_bars, fontsize=8)
    right.bar_label(lazy_bars, fontsize=8)
    right.set_xticks(list(positions_), nodes)
    right.set_title("log writes, by node", fontsize=10, loc="left")
    right.set_ylabel("writes", fontsize=9)
    right.legend(fontsize=8, frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1, 1))
    for axis in (left, right):
        _tidy(axis)
        axis.margins(y=0.15)
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure = figure_of(left)
    if ax is None:
        figure.set_layout_engine("constrained")
    return figure


def _require_columns(frame: Any, columns: Iterable[str], what: str) -> None:
    if not hasattr(frame, "columns"):
        raise DTCourseError(f"{what} needs a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DTCourseError(
            f"{what}: the table has no column(s) {missing}; its columns are {list(frame.columns)}"
        )


def plot_costs(
    frame: Any,
    x: str = "participants",
    y: str | Sequence[str] | None = None,
    hue: str = "variant",
    *,
    style: str | None = "outcome",
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Line plots of a cost table: one panel per measure in ``y``, one line per ``hue``
    value (and per ``style`` value, drawn dashed/dotted, when the table has that column).

    ``y`` defaults to every cost column the table has among messages, forced_writes,
    lazy_writes and delays. Repeated rows for the same point (several seeds) are averaged.
    """
    if y is None:
        present = getattr(frame, "columns", ())
        y = [name for name in COST_COLUMNS if name in present] or list(COST_COLUMNS[:1])
    measures = [y] if isinstance(y, str) else list(y)
    if not measures:
        raise DTCourseError("plot_costs needs at least one measure in y")
    use_style = style if style is not None and style in getattr(frame, "columns", ()) else None
    _require_columns(frame, [x, hue, *measures], "plot_costs")
    if len(frame) == 0:
        raise DTCourseError("plot_costs: the cost table is empty; run the cost sweep first")
    axes = _bar_axes(ax, len(measures), 3.6 * len(measures) + 1.4)
    keys = [hue] + ([use_style] if use_style else [])
    grouped = frame.groupby([*keys, x], sort=True)[measures].mean(numeric_only=True).reset_index()
    hues = list(dict.fromkeys(frame[hue]))
    styles = list(dict.fromkeys(frame[use_style])) if use_style else [None]
    dashes = ["-", "--", ":", "-."]
    numeric_x = frame[x].dtype.kind in "iuf"
    spread = float(frame[x].max() - frame[x].min()) if numeric_x else 0.0
    dodge = 0.012 * spread if numeric_x and len(hues) > 1 else 0.0
    markers = ["o", "s", "^", "D", "v", "P"]
    for axis, measure in zip(axes, measures, strict=True):
        for h_number, hue_value in enumerate(hues):
            for s_number, style_value in enumerate(styles):
                rows = grouped[grouped[hue] == hue_value]
                if use_style:
                    rows = rows[rows[use_style] == style_value]
                if len(rows) == 0:
                    continue
                label = str(hue_value) + (f" ({style_value})" if use_style else "")
                # Equal costs are common (variants differ in one place): a small sideways
                # shift per variant keeps every line visible instead of hidden behind another.
                shift = (h_number - (len(hues) - 1) / 2) * dodge
                axis.plot(
                    rows[x] + shift, rows[measure], label=label,
                    color=PALETTE[h_number % len(PALETTE)],
                    linestyle=dashes[s_number % len(dashes)],
                    marker=markers[h_number % len(markers)], markersize=5, linewidth=1.5,
                )  # fmt: skip
        axis.set_title(measure.replace("_", " "), fontsize=10, loc="left")
        axis.set_xlabel(x.replace("_", " "), fontsize=9)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        _tidy(axis)
    figure = figure_of(axes[0])
    handles, labels = axes[0].get_legend_handles_labels()
    if ax is None:
        figure.set_layout_engine("constrained")
        figure.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    else:
        axes[-1].legend(fontsize=8, frameon=False)
    return figure


def _field(item: Any, names: Sequence[str]) -> Any:
    for name in names:
        if isinstance(item, Mapping) and name in item:
            return item[name]
        if hasattr(item, name):
            return getattr(item, name)
    return None


def plot_checker_stats(results: Any, *, ax: Sequence[Axes] | None = None) -> Figure:
    """Horizontal bars of what each model-checker run cost: states explored and seconds.

    ``results`` is a DataFrame with columns ``name``, ``states``, ``seconds``; a list of
    checker results (``CheckResult`` objects, or dicts with those fields); or a dict from
    a name to such a result.
    """
    name_keys = ("name", "label", "model")
    state_keys = ("states", "distinct", "states_explored", "unique_states", "explored")
    second_keys = ("seconds", "elapsed", "duration")
    named: list[str] = []
    if hasattr(results, "columns"):
        records = results.to_dict("records")
    elif _field(results, state_keys) is not None:  # one result on its own
        records = [results]
    elif isinstance(results, Mapping):
        named = [str(name) for name in results]
        records = list(results.values())
    elif isinstance(results, Iterable) and not isinstance(results, str | bytes):
        records = list(results)
    else:
        raise DTCourseError(
            f"cannot plot checker statistics from a {type(results).__name__}; pass a list of "
            "results or a DataFrame with columns name, states, seconds"
        )
    if not records:
        raise DTCourseError("no checker results to plot")
    names, states, seconds = [], [], []
    for number, record in enumerate(records):
        name, count, secs = (_field(record, keys) for keys in (name_keys, state_keys, second_keys))
        if named:
            name = named[number]
        if count is None or secs is None:
            raise DTCourseError(
                f"checker result {number} has no states count or seconds; give each result "
                f"'states' and 'seconds' (and a 'name')"
            )
        names.append(str(name) if name is not None else f"run {number + 1}")
        states.append(int(count))
        seconds.append(float(secs))
    left, right = _bar_axes(ax, 2, 9.0)
    slots = list(range(len(names)))[::-1]  # first result on top; names may repeat
    states_bars = left.barh(slots, states, color=MESSAGE, gid="states")
    left.bar_label(states_bars, labels=[f"{n:,}" for n in states], fontsize=8, padding=2)
    left.set_title("states explored", fontsize=10, loc="left")
    time_bars = right.barh(slots, seconds, color=TIMEOUT, gid="seconds")
    right.bar_label(time_bars, labels=[f"{t:.2f} s" for t in seconds], fontsize=8, padding=2)
    for axis in (left, right):
        axis.set_yticks(slots, names)
    right.set_title("seconds", fontsize=10, loc="left")
    if max(states) / max(min(states), 1) > 100:
        left.set_xscale("log")
    for axis in (left, right):
        _tidy(axis)
        axis.margins(x=0.2)
    figure = figure_of(left)
    if ax is None:
        figure.set_layout_engine("constrained")
        figure.set_size_inches(9.0, 0.9 + 0.4 * len(names))
    return figure
