"""Sequence diagrams, state diagrams and metric plots render what the trace says."""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from dtcourse.engine.trace import Event, Trace
from dtcourse.engine.trace_layout import layout
from dtcourse.engine.trace_text import text_sequence
from dtcourse.errors import DTCourseError
from dtcourse.pictures.figure import to_png
from dtcourse.pictures.plots import metric_counts, plot_checker_stats, plot_costs, plot_metrics
from dtcourse.pictures.sequence import sequence_diagram
from dtcourse.pictures.statemachines import (
    Transition,
    layers,
    protocol_names,
    protocol_state_machine,
)
from dtcourse.pictures.states import state_diagram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_trace(nodes: tuple[str, ...], rows: list[tuple]) -> Trace:
    """Rows are (time, kind, node, {other fields}); indexes follow the order."""
    events = []
    for index, (time, kind, node, *rest) in enumerate(rows):
        extra = rest[0] if rest else {}
        events.append(Event(index=index, time=time, kind=kind, node=node, **extra))
    return Trace(nodes, tuple(events))


def send(t, src, dst, msg):
    return (t, "send", src, {"peer": dst, "message": msg})


def deliver(t, dst, src, msg, ref):
    return (t, "deliver", dst, {"peer": src, "message": msg, "send_index": ref})


@pytest.fixture
def crash_trace() -> Trace:
    """2PC: p2's Prepare is dropped, p1 crashes after voting, the coordinator aborts."""
    return make_trace(
        ("c", "p1", "p2"),
        [
            (0, "start", "c"),  # 0
            (0, "start", "p1"),  # 1
            (0, "start", "p2"),  # 2
            send(0, "c", "p1", "Prepare"),  # 3
            send(0, "c", "p2", "Prepare"),  # 4
            deliver(1, "p1", "c", "Prepare", 3),  # 5
            (1.5, "drop", "c", {"peer": "p2", "message": "Prepare", "send_index": 4}),  # 6
            (2, "log", "p1", {"detail": "prepared", "forced": True}),  # 7
            send(2, "p1", "c", "Vote(yes)"),  # 8
            (2.5, "crash", "p1"),  # 9
            deliver(3, "c", "p1", "Vote(yes)", 8),  # 10
            (5, "timeout", "c", {"detail": "votes"}),  # 11
            (5, "log", "c", {"detail": "abort", "forced": True}),  # 12
            (5, "decide", "c", {"detail": "abort"}),  # 13
            send(5, "c", "p2", "Abort"),  # 14
            deliver(6, "p2", "c", "Abort", 14),  # 15
            (6, "log", "p2", {"detail": "abort", "forced": False}),  # 16
            (6, "decide", "p2", {"detail": "abort"}),  # 17
            (8, "recover", "p1"),  # 18
        ],
    )


@pytest.fixture
def fault_trace() -> Trace:
    """A duplicate copy, a partition and a message still in flight at the end."""
    return make_trace(
        ("c", "p1"),
        [
            send(0, "c", "p1", "Prepare"),  # 0
            (1, "duplicate", "c", {"peer": "p1", "message": "Prepare", "send_index": 0}),  # 1
            deliver(1, "p1", "c", "Prepare", 0),  # 2
            deliver(2, "p1", "c", "Prepare", 0),  # 3
            (3, "partition", "c", {"detail": "c | p1"}),  # 4
            (4, "heal", "c"),  # 5
            send(5, "p1", "c", "Vote(yes)"),  # 6
        ],
    )


def artists(figure: Figure, gid: str) -> list:
    ax = figure.axes[0]
    return [a for a in (*ax.patches, *ax.lines, *ax.texts, *ax.collections) if a.get_gid() == gid]


# --- layout ---------------------------------------------------------------------------------


def test_layout_pairs_each_delivery_and_drop_with_its_send(crash_trace):
    plan = layout(crash_trace)
    kinds = sorted((a.kind, a.sender, a.receiver, a.label) for a in plan.arrows)
    assert kinds == [
        ("drop", "c", "p2", "Prepare"),
        ("message", "c", "p1", "Prepare"),
        ("message", "c", "p2", "Abort"),
        ("message", "p1", "c", "Vote(yes)"),
    ]
    vote = next(a for a in plan.arrows if a.label == "Vote(yes)")
    assert vote.send_row < vote.end_row


def test_layout_broadcast_sends_and_simultaneous_starts_share_a_row(crash_trace):
    plan = layout(crash_trace)
    rows = plan.event_rows
    assert rows[0] == rows[1] == rows[2]  # three starts at t=0
    assert rows[3] == rows[4]  # c sends Prepare to both at once
    assert rows[4] < rows[5]  # a delivery gets its own row
    assert len(set(rows)) == plan.rows


def test_layout_node_is_down_from_crash_to_recovery(crash_trace):
    plan = layout(crash_trace)
    (span,) = plan.down
    assert span.node == "p1"
    assert span.start_row == plan.event_rows[9]
    assert span.end_row == plan.event_rows[18]


def test_layout_duplicates_partitions_and_in_flight(fault_trace):
    plan = layout(fault_trace)
    assert [a.kind for a in plan.arrows] == ["message", "duplicate", "in-flight"]
    (band,) = plan.partitions
    assert (band.start_row, band.end_row, band.label) == (
        plan.event_rows[4],
        plan.event_rows[5],
        "c | p1",
    )


def test_layout_matches_sends_without_send_index():
    trace = make_trace(
        ("a", "b"),
        [
            send(0, "a", "b", "M"),
            send(0, "a", "b", "M"),
            (1, "deliver", "b", {"peer": "a", "message": "M"}),
            (2, "deliver", "b", {"peer": "a", "message": "M"}),
        ],
    )
    plan = layout(trace)
    assert [(a.kind, a.send_event) for a in plan.arrows] == [("message", 0), ("message", 1)]


def test_layout_max_events_keeps_the_first_events(crash_trace):
    plan = layout(crash_trace, max_events=5)
    assert plan.hidden_events == len(crash_trace.events) - 5
    assert {a.kind for a in plan.arrows} == {"in-flight"}


def test_layout_draws_undeclared_nodes_to_the_right():
    trace = make_trace(("c",), [send(0, "c", "x", "Hello")])
    assert layout(trace).nodes == ("c", "x")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (object(), "needs 'nodes' and 'events'"),
        (Trace(("a",), (Event(0, 0.0, "explode", "a"),)), "unknown kind 'explode'"),  # type: ignore[arg-type]
    ],
)
def test_bad_traces_are_refused_clearly(value, words):
    with pytest.raises(DTCourseError, match=words):
        sequence_diagram(value)
    with pytest.raises(DTCourseError, match=words):
        text_sequence(value)


def test_negative_max_events_is_refused(crash_trace):
    with pytest.raises(DTCourseError, match="max_events"):
        sequence_diagram(crash_trace, max_events=-1)


# --- text ---------------------------------------------------------------------------------


def test_text_sequence_has_a_line_per_event_and_says_what_happened(crash_trace):
    text = text_sequence(crash_trace)
    lines = text.splitlines()
    assert len(lines) == 1 + len(crash_trace.events)
    assert lines[0].split() == ["#", "t", "c", "p1", "p2"]
    assert lines[6].endswith("c --Prepare--> p1")
    assert lines[7].endswith("c --Prepare--X p2  (dropped)")
    assert lines[10].endswith("p1 CRASHES")
    assert lines[11].endswith("p1 --Vote(yes)--> c")
    assert lines[14].endswith("c decides ABORT")
    assert "p1 log prepared (forced)" in lines[8]
    assert "p2 log abort (lazy)" in lines[17]


def test_text_sequence_draws_lanes(crash_trace):
    lines = text_sequence(crash_trace).splitlines()
    column = lines[0].index("p1")
    delivery = lines[6]
    assert delivery[column] == ">"  # the arrow head sits on p1's lifeline
    assert "Prepare" in delivery[:column]
    after_crash = lines[12]  # p1 is down here
    assert after_crash[column] == ":"
    assert "[ABORT]" in lines[14]


def test_text_sequence_marks_copies_and_hidden_events(fault_trace, crash_trace):
    text = text_sequence(fault_trace)
    assert "c --Prepare--> p1  (duplicate copy)" in text
    assert "partition c | p1" in text
    short = text_sequence(crash_trace, max_events=4)
    assert short.splitlines()[-1] == f"... {len(crash_trace.events) - 4} more events not shown"


# --- sequence diagram --------------------------------------------------------------------


def test_sequence_diagram_draws_an_arrow_per_delivery_and_drop(crash_trace, capfd):
    figure = sequence_diagram(crash_trace, title="2PC, p1 crashes")
    assert isinstance(figure, Figure)
    arrows = [p for p in figure.axes[0].patches if isinstance(p, FancyArrowPatch)]
    deliveries = len(crash_trace.of_kind("deliver"))
    drops = len(crash_trace.of_kind("drop"))
    assert len(arrows) == deliveries + drops == 4
    (cross,) = artists(figure, "drop-x")
    assert isinstance(cross, Line2D) and cross.get_marker() == "x"
    (crash,) = artists(figure, "crash")
    assert crash.get_marker() == "X"
    names = [t.get_text() for t in artists(figure, "node-label")]
    assert names == ["c", "p1", "p2"]
    assert {t.get_text() for t in artists(figure, "decision")} == {"ABORT"}
    assert len(artists(figure, "lifeline-down")) == 1
    assert len(artists(figure, "log-forced")) == 2
    assert len(artists(figure, "log-lazy")) == 1
    assert len(artists(figure, "timeout")) == 1
    assert len(artists(figure, "recover")) == 1
    labels = {t.get_text() for t in artists(figure, "message-label")}
    assert labels == {"Prepare", "Vote(yes)", "Abort"}
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "dropped message" in legend and "crash" in legend and "forced log write" in legend
    assert "duplicate copy" not in legend  # only what the trace contains
    png = to_png(figure)
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    out, err = capfd.readouterr()
    assert err == ""


def test_sequence_diagram_distinguishes_duplicates_partitions_in_flight(fault_trace, capfd):
    figure = sequence_diagram(fault_trace)
    assert len(artists(figure, "duplicate")) == 1
    assert artists(figure, "duplicate")[0].get_linestyle() != "-"
    assert len(artists(figure, "duplicate-mark")) == 1
    assert len(artists(figure, "partition")) == 1
    assert len(artists(figure, "in-flight")) == 1
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(PNG_MAGIC)
    assert capfd.readouterr().err == ""


def test_sequence_diagram_grows_with_the_trace_and_draws_into_given_axes(crash_trace):
    small = sequence_diagram(crash_trace, max_events=6)
    large = sequence_diagram(crash_trace)
    assert large.get_size_inches()[1] > small.get_size_inches()[1]
    assert any("more events not shown" in t.get_text() for t in small.axes[0].texts)
    figure = Figure(figsize=(6, 6))
    ax = figure.add_subplot()
    assert sequence_diagram(crash_trace, ax=ax) is figure
    assert len(figure.axes) == 1


def test_sequence_diagram_of_forty_steps_keeps_labels_apart(capfd):
    nodes = ("c", "p1", "p2", "p3", "p4")
    rows: list[tuple] = []
    for step in range(10):
        target = nodes[1 + step % 4]
        rows.append(send(step, "c", target, f"M{step}"))
        rows.append(deliver(step + 0.5, target, "c", f"M{step}", len(rows) - 1))
        rows.append((step + 0.5, "log", target, {"detail": "prepared", "forced": True}))
        rows.append((step + 0.6, "decide", target, {"detail": "commit"}))
    trace = make_trace(nodes, rows)
    figure = sequence_diagram(trace)
    renderer = FigureCanvasAgg(figure).get_renderer()
    texts = [
        t
        for t in figure.axes[0].texts
        if t.get_gid() in ("message-label", "decision") or t.get_bbox_patch() is not None
    ]
    assert len(artists(figure, "message-label")) == 10
    boxes = [t.get_window_extent(renderer) for t in texts]
    overlaps = [
        (texts[i].get_text(), texts[j].get_text())
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], start=i + 1)
        if a.overlaps(b)
    ]
    assert overlaps == []
    assert capfd.readouterr().err == ""


def test_figures_show_themselves_in_notebooks(crash_trace):
    figure = sequence_diagram(crash_trace)
    assert figure._repr_png_().startswith(PNG_MAGIC)


def test_importing_viz_changes_no_global_state():
    # dict.items reads the settings without resolving the backend (which would load pyplot)
    code = (
        "import matplotlib, sys; before = dict(dict.items(matplotlib.rcParams)); "
        "import dtcourse.pictures.sequence, dtcourse.pictures.states, dtcourse.pictures.plots; "
        "assert dict(dict.items(matplotlib.rcParams)) == before; "
        "assert 'matplotlib.pyplot' not in sys.modules; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
    assert done.stderr == ""


# --- state diagrams ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["2pc-participant", "2pc-coordinator", "3pc-participant"])
def test_protocol_state_machines_render(name, capfd):
    machine = protocol_state_machine(name)
    figure = state_diagram(machine)
    states = {t.get_text() for t in artists(figure, "state-label")}
    assert states == set(machine.states)
    assert len(artists(figure, "transition")) == len(machine.transitions)
    assert len(artists(figure, "transition-label")) == len(machine.transitions)
    assert to_png(figure).startswith(PNG_MAGIC)
    assert capfd.readouterr().err == ""


def test_protocol_state_machines_have_the_textbook_shape():
    participant = protocol_state_machine("2pc-participant")
    assert participant.start == "working"
    assert set(participant.final_states) == {"committed", "aborted"}
    edges = {(t.source, t.target) for t in participant.transitions}
    assert ("prepared", "committed") in edges and ("working", "committed") not in edges
    three = protocol_state_machine("3pc-participant")
    assert ("precommitted", "committed") in {(t.source, t.target) for t in three.transitions}
    assert set(protocol_names()) == {"2pc-participant", "2pc-coordinator", "3pc-participant"}


def test_unknown_protocol_names_the_known_ones():
    with pytest.raises(DTCourseError, match="2pc-participant"):
        protocol_state_machine("4pc")


def test_layers_follow_longest_paths_and_ignore_back_edges():
    transitions = [
        Transition("a", "b"),
        Transition("b", "c"),
        Transition("a", "c"),
        Transition("c", "a", "retry"),
        Transition("b", "b", "loop"),
    ]
    assert layers(["a", "b", "c"], transitions) == {"a": 0, "b": 1, "c": 2}


def test_state_diagram_from_tuples_into_given_axes():
    figure = Figure()
    ax = figure.add_subplot()
    result = state_diagram(
        ["idle", "busy"], [("idle", "busy", "go"), ("busy", "idle", "done")], ax=ax, title="t"
    )
    assert result is figure
    assert ax.get_title(loc="left") == "t"
    assert len(artists(figure, "transition")) == 2


@pytest.mark.parametrize(
    ("states", "transitions", "words"),
    [
        (["a", "a"], [], "listed twice"),
        (["a"], [("a", "b")], "undeclared state 'b'"),
        (["a"], ["a->b"], "cannot read transition"),
        ("ab", [], "list of state names"),
        ([], [], "at least one state"),
    ],
)
def test_state_diagram_refuses_bad_machines(states, transitions, words):
    with pytest.raises(DTCourseError, match=words):
        state_diagram(states, transitions)


def test_state_diagram_refuses_an_initial_state_it_does_not_have():
    with pytest.raises(DTCourseError, match="initial state 'b' is not one of the states"):
        state_diagram(["a"], [], initial="b")


# --- metric plots ------------------------------------------------------------------------


def test_plot_metrics_counts_messages_by_type_and_writes_by_node(crash_trace, capfd):
    figure = plot_metrics(crash_trace)
    left, right = figure.axes[:2]
    message_bars = [p for p in left.patches if p.get_gid() == "messages"]
    heights = {
        label.get_text(): bar.get_height()
        for label, bar in zip(left.get_xticklabels(), message_bars, strict=True)
    }
    assert heights == {"Prepare": 2, "Vote": 1, "Abort": 1}
    forced = [p.get_height() for p in right.patches if p.get_gid() == "forced"]
    lazy = [p.get_height() for p in right.patches if p.get_gid() == "lazy"]
    assert [t.get_text() for t in right.get_xticklabels()] == ["c", "p1", "p2"]
    assert forced == [1, 1, 0] and lazy == [0, 0, 1]
    assert to_png(figure).startswith(PNG_MAGIC)
    assert capfd.readouterr().err == ""


def test_plot_metrics_accepts_frames_and_counts(crash_trace):
    from_frame = metric_counts(crash_trace.to_frame())
    assert from_frame == metric_counts(crash_trace)
    figure = plot_metrics({"messages": {"Prepare": 3, "Commit": 3}, "forced_writes": {"c": 2}})
    bars = [p for p in figure.axes[0].patches if p.get_gid() == "messages"]
    assert [b.get_height() for b in bars] == [3, 3]
    with pytest.raises(DTCourseError, match="no metrics"):
        plot_metrics({})
    with pytest.raises(DTCourseError, match="must map names to counts"):
        plot_metrics({"messages": 3})
    with pytest.raises(DTCourseError, match="cannot plot metrics"):
        plot_metrics(42)


def cost_table() -> pd.DataFrame:
    rows = []
    for variant, per in (("presumed-nothing", 4), ("presumed-abort", 3)):
        for outcome in ("commit", "abort"):
            for n in range(1, 5):
                for seed in range(2):
                    rows.append(
                        {
                            "variant": variant,
                            "outcome": outcome,
                            "participants": n,
                            "messages": per * n + seed,
                            "forced_writes": n + 1,
                            "lazy_writes": n,
                            "delays": 4,
                        }
                    )
    return pd.DataFrame(rows)


def test_plot_costs_draws_a_line_per_variant_and_outcome(capfd):
    figure = plot_costs(cost_table(), y=["messages", "forced_writes"])
    messages_ax = figure.axes[0]
    assert len(figure.axes) == 2
    assert len(messages_ax.lines) == 4  # 2 variants x 2 outcomes
    line = messages_ax.lines[0]
    shift = line.get_xdata()[0] - 1  # variants are shifted a little apart
    assert 0 < abs(shift) < 0.1
    assert [round(v - shift, 6) for v in line.get_xdata()] == [1, 2, 3, 4]
    assert list(line.get_ydata()) == [4.5, 8.5, 12.5, 16.5]  # seeds averaged
    assert to_png(figure).startswith(PNG_MAGIC)
    assert capfd.readouterr().err == ""


def test_plot_costs_names_missing_columns():
    with pytest.raises(DTCourseError, match="latency"):
        plot_costs(cost_table(), y="latency")
    with pytest.raises(DTCourseError, match="empty"):
        plot_costs(cost_table().iloc[0:0], y="messages")
    with pytest.raises(DTCourseError, match="DataFrame"):
        plot_costs([1, 2], y="messages")


def test_plot_costs_into_given_axes():
    figure = Figure()
    ax = figure.add_subplot()
    assert plot_costs(cost_table(), y="messages", ax=[ax]) is figure
    assert isinstance(figure.axes[0], Axes)


def test_plot_checker_stats(capfd):
    class Result:
        distinct = 288
        seconds = 0.25

    figure = plot_checker_stats({"2pc n=3": Result(), "3pc n=3": {"states": 90, "seconds": 1}})
    left, right = figure.axes[:2]
    assert [p.get_width() for p in left.patches if p.get_gid() == "states"] == [288, 90]
    rows = {t.get_text(): y for t, y in zip(left.get_yticklabels(), left.get_yticks(), strict=True)}
    assert rows["2pc n=3"] > rows["3pc n=3"]  # the first result is drawn on top
    frame = pd.DataFrame({"name": ["a", "a"], "states": [5, 7], "seconds": [0.1, 0.2]})
    same_names = plot_checker_stats(frame)
    assert len([p for p in same_names.axes[0].patches if p.get_gid() == "states"]) == 2
    with pytest.raises(DTCourseError, match="no states count"):
        plot_checker_stats([{"name": "x"}])
    with pytest.raises(DTCourseError, match="no checker results"):
        plot_checker_stats([])
    assert capfd.readouterr().err == ""


def test_all_plot_kinds_render_headless_without_warnings(crash_trace, recwarn):
    for figure in (
        sequence_diagram(crash_trace),
        state_diagram(protocol_state_machine("2pc-participant")),
        plot_metrics(crash_trace),
        plot_costs(cost_table()),
    ):
        assert to_png(figure).startswith(PNG_MAGIC)
    assert [str(w.message) for w in recwarn] == []


def test_saga_outcomes_take_the_colour_of_their_kind():
    from dtcourse.engine.trace import Event, Trace
    from dtcourse.pictures.figure import DECISION_COLOURS
    from dtcourse.pictures.sequence import sequence_diagram

    events = (
        Event(0, 0.0, "decide", "orchestrator", detail="compensated"),
        Event(1, 1.0, "decide", "other", detail="committed"),
    )
    figure = sequence_diagram(Trace(("orchestrator", "other"), events))
    boxes = {
        text.get_text(): text.get_bbox_patch().get_facecolor()
        for ax in figure.axes
        for text in ax.texts
        if text.get_gid() == "decision"
    }
    from matplotlib.colors import to_rgba

    assert boxes["COMPENSATED"] == to_rgba(DECISION_COLOURS["abort"])
    assert boxes["COMMITTED"] == to_rgba(DECISION_COLOURS["commit"])
