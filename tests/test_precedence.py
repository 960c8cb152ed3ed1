"""Histories, conflicts, precedence graphs, cycles and anomaly names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtcourse.errors import DTCourseError
from dtcourse.lessons.histories import (
    Operation,
    classify_anomaly,
    committed,
    conflicts,
    dirty_reads,
    find_cycle,
    format_history,
    is_conflict_serializable,
    is_topological_order,
    local_history,
    parse_history,
    precedence_graph,
    serial_order,
)


def test_parse_reads_sites_values_commits_and_aborts() -> None:
    ops = parse_history("r1[x]@A w2[y=5]@B c1 a2")
    assert ops == (
        Operation("r", "T1", "x", "A"),
        Operation("w", "T2", "y", "B", "5"),
        Operation("c", "T1"),
        Operation("a", "T2"),
    )
    assert format_history(ops) == "r1[x]@A w2[y=5]@B c1 a2"


def test_parse_uses_the_default_site_for_untagged_accesses() -> None:
    ops = parse_history("r1[x] w1[y]@B", default_site="A")
    assert (ops[0].site, ops[1].site) == ("A", "B")


@pytest.mark.parametrize(
    ("text", "hint"),
    [("q1[x]", "cannot read operation 1"), ("r1", "name the item"), ("c1[x]", "takes no item")],
)
def test_parse_refuses_bad_notation_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(DTCourseError, match=hint):
        parse_history(text)


def test_a_history_of_foreign_values_is_refused() -> None:
    with pytest.raises(DTCourseError, match="Operation values"):
        precedence_graph([("r", 1, "x")])  # type: ignore[list-item]


def test_conflicts_need_same_item_same_site_different_transactions_and_a_write() -> None:
    found = conflicts("r1[x]@A r2[x]@A w2[x]@B w3[y]@A r1[x]@A w1[x]@A w2[x]@A")
    assert [str(c) for c in found] == [
        "r1[x]@A before w2[x]@A",
        "r2[x]@A before w1[x]@A",
        "r1[x]@A before w2[x]@A",
        "w1[x]@A before w2[x]@A",
    ]
    assert [c.kind for c in found] == ["rw", "rw", "rw", "ww"]


def test_aborted_transactions_have_no_node_and_no_edge() -> None:
    graph = precedence_graph("w1[x]@A r2[x]@A w3[x]@A a1 c2 c3")
    assert graph.nodes == ("T2", "T3")
    assert graph.edges == {("T2", "T3")}
    assert committed("w1[x] a1 r2[x]") == ("T2",)


def test_the_readings_single_site_example_has_a_cycle_and_its_variant_does_not() -> None:
    h1 = precedence_graph("r1[x] w2[x] r2[y] w1[y] c1 c2")
    assert h1.edges == {("T1", "T2"), ("T2", "T1")}
    assert find_cycle(h1) == ("T1", "T2")
    assert serial_order(h1) is None
    h1b = precedence_graph("r1[x] w2[x] w1[y] r2[y] c1 c2")
    assert h1b.edges == {("T1", "T2")}
    assert find_cycle(h1b) is None
    assert serial_order(h1b) == ("T1", "T2")


def test_each_site_serializable_but_the_union_is_not() -> None:
    history = "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2"
    for site in ("A", "B"):
        assert is_conflict_serializable(local_history(history, site))
    assert not is_conflict_serializable(history)
    assert precedence_graph(local_history(history, "A")).edges == {("T1", "T2")}
    assert precedence_graph(local_history(history, "B")).edges == {("T2", "T1")}


def test_edges_know_the_conflicts_behind_them() -> None:
    graph = precedence_graph("w1[x]@A r2[x]@A r2[y]@B w1[y]@B")
    assert [str(c) for c in graph.reasons(("T2", "T1"))] == ["r2[y]@B before w1[y]@B"]


def test_cycle_of_three_is_found_and_rotated_to_the_smallest() -> None:
    graph = precedence_graph("w2[y] r3[y] w3[z] r1[z] w1[x] r2[x]")
    assert find_cycle(graph) == ("T1", "T2", "T3")


def test_serial_order_follows_numbers_among_free_transactions() -> None:
    graph = precedence_graph("w10[x] r2[x] r3[y] w1[y]")
    assert graph.edges == {("T10", "T2"), ("T3", "T1")}
    assert serial_order(graph) == ("T3", "T1", "T10", "T2")
    assert is_topological_order(graph, ("T10", "T3", "T2", "T1"))
    assert not is_topological_order(graph, ("T2", "T10", "T3", "T1"))
    assert not is_topological_order(graph, ("T3", "T1", "T10"))


@pytest.mark.parametrize(
    ("history", "anomaly"),
    [
        ("w1[x=50] r2[x=50] a1 c2", "dirty read"),
        ("w1[x]@A r2[x]@A a1 r2[y]@B c2", "dirty read"),
        ("r1[x=10] r2[x=10] w1[x=11] c1 w2[x=11] c2", "lost update"),
        ("r1[x] r1[y] r2[x] r2[y] w1[x=off] w2[y=off] c1 c2", "write skew"),
        ("r1[x]@A r1[y]@B r2[x]@A r2[y]@B w1[x]@A w2[y]@B c1 c2", "write skew"),
        ("w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2", "read skew"),
        ("w1[x] w2[x] w2[y] w1[y] c1 c2", "other"),
        ("r1[x] w1[x] r2[x] w2[x] c1 c2", None),
        ("w1[x] r2[x] c1 c2", None),
        ("w1[x] a1 r2[x] c2", None),
    ],
)
def test_anomaly_names(history: str, anomaly: str | None) -> None:
    assert classify_anomaly(history) == anomaly


def test_a_read_of_a_write_that_commits_later_is_not_a_dirty_read() -> None:
    assert dirty_reads("w1[x] r2[x] c1 c2") == ()
    assert len(dirty_reads("w1[x] r2[x] a1 c2")) == 1


_OPS = st.tuples(
    st.sampled_from("rw"), st.integers(1, 4), st.sampled_from("xyz"), st.sampled_from("AB")
).map(lambda t: Operation(t[0], f"T{t[1]}", t[2], t[3]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_OPS, max_size=12))
def test_cycle_and_serial_order_agree_and_orders_are_valid(ops: list[Operation]) -> None:
    graph = precedence_graph(ops)
    cycle = find_cycle(graph)
    order = serial_order(graph)
    assert (cycle is None) == (order is not None)
    if order is not None:
        assert is_topological_order(graph, order)
    else:
        assert all(
            (cycle[i], cycle[(i + 1) % len(cycle)]) in graph.edges for i in range(len(cycle))
        )


@settings(max_examples=100, deadline=None)
@given(st.lists(_OPS, max_size=10))
def test_serial_histories_are_serializable(ops: list[Operation]) -> None:
    serial = sorted(ops, key=lambda op: op.txn)  # stable: keeps each transaction's order
    assert is_conflict_serializable(serial)
    assert classify_anomaly(serial) is None


# --- the picture ---------------------------------------------------------------------------


def _arrow_colours(ax) -> list[str]:
    from matplotlib.colors import to_hex
    from matplotlib.patches import FancyArrowPatch

    return [to_hex(p.get_edgecolor()) for p in ax.patches if isinstance(p, FancyArrowPatch)]


def test_figure_highlights_the_cycle_in_the_global_panel_only() -> None:
    from dtcourse.pictures.figure import CourseFigure
    from dtcourse.pictures.precedence import CYCLE_COLOUR, EDGE_COLOUR, precedence_figure

    figure = precedence_figure("w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2", by_site=True)
    assert isinstance(figure, CourseFigure)
    site_a, site_b, union = figure.axes
    assert _arrow_colours(site_a) == [EDGE_COLOUR]
    assert _arrow_colours(site_b) == [EDGE_COLOUR]
    assert _arrow_colours(union) == [CYCLE_COLOUR, CYCLE_COLOUR]
    assert "not serializable" in union.get_title()
    assert "serializable" in site_a.get_title() and "not" not in site_a.get_title()
    labels = {text.get_text() for text in union.texts}
    assert {"T1", "T2", "x@A", "y@B"} <= labels
    assert figure._repr_png_().startswith(b"\x89PNG")


def test_figure_of_an_acyclic_history_has_no_red() -> None:
    from dtcourse.pictures.precedence import CYCLE_COLOUR, precedence_figure

    (ax,) = precedence_figure("r1[x] w2[x] w1[y] r2[y] c1 c2").axes
    assert CYCLE_COLOUR not in _arrow_colours(ax)
    assert ax.get_title().endswith("acyclic: serializable")


def test_figure_refuses_an_empty_history() -> None:
    from dtcourse.pictures.precedence import precedence_figure

    with pytest.raises(DTCourseError, match="history is empty"):
        precedence_figure("")
