"""Histories: the student's tools (notation, conflicts), the instructor's reference theory
(precedence graphs, cycles, serial orders, anomaly names) and the picture."""

from __future__ import annotations

import pytest
from dtcourse_instructor.reference.p1_serializability import (
    analyse,
    classify_anomaly,
    dirty_reads,
    find_cycle,
    is_conflict_serializable,
    is_topological_order,
    lost_updates,
    precedence_graph,
    serial_order,
    site_graphs,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from dtcourse.errors import DTCourseError
from dtcourse.lessons.histories import (
    Operation,
    committed,
    conflicts,
    format_history,
    local_history,
    parse_history,
)

# --- the student's tools ------------------------------------------------------------------


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
        conflicts([("r", 1, "x")])  # type: ignore[list-item]


def test_conflicts_need_same_item_same_site_different_transactions_and_a_write() -> None:
    found = conflicts("r1[x]@A r2[x]@A w2[x]@B w3[y]@A r1[x]@A w1[x]@A w2[x]@A")
    assert [str(c) for c in found] == [
        "r1[x]@A before w2[x]@A",
        "r2[x]@A before w1[x]@A",
        "r1[x]@A before w2[x]@A",
        "w1[x]@A before w2[x]@A",
    ]
    assert [c.kind for c in found] == ["rw", "rw", "rw", "ww"]


def test_conflicts_list_aborted_transactions_too_the_graph_leaves_them_out() -> None:
    history = "w1[x]@A r2[x]@A w3[x]@A a1 c2 c3"
    assert [c.edge for c in conflicts(history)] == [("T1", "T2"), ("T1", "T3"), ("T2", "T3")]
    graph = precedence_graph(history)
    assert graph.nodes == ("T2", "T3")
    assert graph.edges == {("T2", "T3")}
    assert committed("w1[x] a1 r2[x]") == ("T2",)


# --- the reference theory -------------------------------------------------------------------


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
    graphs = site_graphs(history)
    assert {site: graph.edges for site, graph in graphs.items()} == {
        "A": {("T1", "T2")},
        "B": {("T2", "T1")},
    }
    assert analyse(history).sites == {"A": {("T1", "T2")}, "B": {("T2", "T1")}}


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


#: The reading's anomalies and the two textbook histories of issue 12, with their verdicts:
#: history -> (global edges, serializable, anomaly).
ANOMALY_TABLE: dict[str, tuple[set[tuple[str, str]], bool, str | None]] = {
    # dirty read: T2 read what T1 wrote, T1 aborted afterwards, T2 committed
    "w1[x=50] r2[x=50] a1 c2": (set(), True, "dirty read"),
    # lost update, the reading's two increments: both read 10, both write 11
    "r1[x=10] r2[x=10] w1[x=11] c1 w2[x=11] c2": (
        {("T1", "T2"), ("T2", "T1")}, False, "lost update"),
    # lost update as Berenson et al. 1995 define it (P4): the second writer writes blindly
    "r1[x] w2[x] w1[x] c1": ({("T1", "T2"), ("T2", "T1")}, False, "lost update"),
    # write skew, the doctors on call, on one site and across two
    "r1[x] r1[y] r2[x] r2[y] w1[x=off] w2[y=off] c1 c2": (
        {("T1", "T2"), ("T2", "T1")}, False, "write skew"),
    "r1[x]@A r1[y]@B r2[x]@A r2[y]@B w1[x=off]@A w2[y=off]@B c1 c2": (
        {("T1", "T2"), ("T2", "T1")}, False, "write skew"),
    # read skew, the auditor that sees half a transfer
    "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2": ({("T1", "T2"), ("T2", "T1")}, False, "read skew"),
    # a dirty read whose reader aborts too is not counted (Adya's G1a needs a committed reader)
    "w1[x] r2[x] a1 a2": (set(), True, None),
}


@pytest.mark.parametrize(("history", "expected"), ANOMALY_TABLE.items())
def test_the_anomaly_tables_histories_get_their_verdicts(history: str, expected) -> None:
    edges, serializable, anomaly = expected
    verdict = analyse(history)
    assert (verdict.edges, verdict.serializable, verdict.anomaly) == (edges, serializable, anomaly)
    assert (verdict.order is not None) == serializable
    assert classify_anomaly(history) == anomaly


def test_a_blind_second_writer_is_a_lost_update_not_other() -> None:
    assert lost_updates("r1[x] w2[x] w1[x] c1") == (("T1", "T2", "x"),)
    assert lost_updates("r1[x]@A w2[x]@A w1[x]@A c1 c2") == (("T1", "T2", "x@A"),)
    # the other order of the writes loses nothing of T2's: T1 wrote before T2 did
    assert lost_updates("r1[x] w1[x] w2[x] c1 c2") == ()
    assert classify_anomaly("r1[x] w1[x] w2[x] c1 c2") is None


def test_a_dirty_read_counts_only_a_committed_reader() -> None:
    assert dirty_reads("w1[x] r2[x] a1 a2") == ()
    assert len(dirty_reads("w1[x] r2[x] a1 c2")) == 1
    assert len(dirty_reads("w1[x] r2[x] a1")) == 1  # a missing commit counts as one
    # one reader aborts, the other commits: still a dirty read
    assert classify_anomaly("w1[x]@A r2[x]@A r3[x]@A a2 a1 c3") == "dirty read"


@pytest.mark.parametrize(
    ("history", "anomaly"),
    [
        ("w1[x]@A r2[x]@A a1 r2[y]@B c2", "dirty read"),
        ("r1[x]@A r2[x]@A w2[x]@A w1[x]@A c1 c2", "lost update"),
        ("r1[y]@B r2[x]@A w2[y]@B w1[y]@B c2 c1", "lost update"),
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
        assert cycle is not None
        assert all(
            (cycle[i], cycle[(i + 1) % len(cycle)]) in graph.edges for i in range(len(cycle))
        )


@settings(max_examples=200, deadline=None)
@given(st.lists(_OPS, max_size=12))
def test_the_global_graph_is_the_union_of_the_sites(ops: list[Operation]) -> None:
    union = {edge for graph in site_graphs(ops).values() for edge in graph.edges}
    assert union == precedence_graph(ops).edges


@settings(max_examples=100, deadline=None)
@given(st.lists(_OPS, max_size=10))
def test_serial_histories_are_serializable(ops: list[Operation]) -> None:
    serial = sorted(ops, key=lambda op: op.txn)  # stable: keeps each transaction's order
    assert is_conflict_serializable(serial)
    assert classify_anomaly(serial) is None


# --- the picture: draws what it is given ----------------------------------------------------


def _arrow_colours(ax) -> list[str]:
    from matplotlib.colors import to_hex
    from matplotlib.patches import FancyArrowPatch

    return [to_hex(p.get_edgecolor()) for p in ax.patches if isinstance(p, FancyArrowPatch)]


AUDITOR = "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2"


def test_figure_draws_the_given_sites_and_the_given_cycle_in_the_global_panel_only() -> None:
    from dtcourse.pictures.figure import CourseFigure
    from dtcourse.pictures.precedence import CYCLE_COLOUR, EDGE_COLOUR, precedence_figure

    figure = precedence_figure(
        AUDITOR,
        {("T1", "T2"), ("T2", "T1")},
        site_edges={"A": {("T1", "T2")}, "B": {("T2", "T1")}},
        cycle=("T1", "T2"),
    )
    assert isinstance(figure, CourseFigure)
    site_a, site_b, union = figure.axes
    assert _arrow_colours(site_a) == [EDGE_COLOUR]
    assert _arrow_colours(site_b) == [EDGE_COLOUR]
    assert _arrow_colours(union) == [CYCLE_COLOUR, CYCLE_COLOUR]
    assert "cycle T1 → T2 → T1: not serializable" in union.get_title()
    assert site_a.get_title() == "site A"
    labels = {text.get_text() for text in union.texts}
    assert {"T1", "T2", "x@A", "y@B"} <= labels
    assert {text.get_text() for text in site_b.texts} == {"T1", "T2", "y@B"}
    assert figure._repr_png_().startswith(b"\x89PNG")


def test_figure_decides_nothing_it_draws_the_edges_it_is_given() -> None:
    from dtcourse.pictures.precedence import CYCLE_COLOUR, precedence_figure

    # a wrong picture drawn faithfully: one edge, no cycle, no verdict in the title
    (ax,) = precedence_figure(AUDITOR, {("T1", "T2")}).axes
    assert len(_arrow_colours(ax)) == 1 and CYCLE_COLOUR not in _arrow_colours(ax)
    assert ax.get_title() == "precedence graph"
    # an edge with no conflict behind it says so, and names a node outside the history
    (ax,) = precedence_figure(AUDITOR, {("T1", "T3")}).axes
    texts = {text.get_text() for text in ax.texts}
    assert {"T3", "no conflict"} <= texts


def test_figure_refuses_an_empty_history_bad_edges_and_a_cycle_it_was_not_given() -> None:
    from dtcourse.pictures.precedence import precedence_figure

    with pytest.raises(DTCourseError, match="history is empty"):
        precedence_figure("", set())
    with pytest.raises(DTCourseError, match="pairs like"):
        precedence_figure(AUDITOR, {"T1T2"})
    with pytest.raises(DTCourseError, match="T2 → T1, which is not among the edges"):
        precedence_figure(AUDITOR, {("T1", "T2")}, cycle=("T1", "T2"))
