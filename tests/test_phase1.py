"""The Phase 1 notebook: its generated Markdown, its exercises' checks, and grading.

The reference solutions are taken from the notebook's own solution cells, so the checks
are tested against exactly what the source notebook ships.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import pytest
from dtcourse_instructor.authoring import convert, write_notebook
from dtcourse_instructor.casedata import render_cases
from dtcourse_instructor.grader import grade_part as verify
from dtcourse_instructor.grader import registry
from dtcourse_instructor.reference import p1_serializability as reference_theory
from dtcourse_instructor.reference import p1_transfer as reference_transfer
from dtcourse_instructor.reference.p1_serializability import VISIBLE_HISTORIES
from dtcourse_instructor.resource_list import (
    fill_generated,
    generated_regions,
    resource_heading_markdown,
    resource_markdown,
)

import dtcourse
from dtcourse.lessons.histories import (
    Verdict,
    aborted,
    committed,
    conflicts,
    parse_history,
    sites,
    txn_sort_key,
)
from dtcourse.lessons.naive_transfer import Transfer, random_workload, run_transfers
from dtcourse.runtime.checks import check, check_part
from dtcourse.runtime.checks.casedata import DATA_DIR, load_cases
from dtcourse.runtime.checks.p1_transfer import (
    visible_clean_runs,
    visible_fault_runs,
    visible_lost_debit_runs,
)
from dtcourse.runtime.progress import ProgressStore
from dtcourse.runtime.syllabus import load_syllabus

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "course" / "phase1_foundations.py"
ASSIGNMENT = "phase1_foundations"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _cells() -> list[Any]:
    return jupytext.read(TEXT, fmt="py:percent").cells


def _solution_namespace() -> dict[str, Any]:
    """Run the notebook's solution cells, as a student's finished notebook would."""
    namespace: dict[str, Any] = {}
    for cell in _cells():
        if "solution" in cell.metadata.get("dtcourse", {}):
            exec(compile(cell.source, f"<solution {cell.metadata['dtcourse']}>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return _solution_namespace()


# --- the generated Markdown ---------------------------------------------------------------


def test_the_resource_list_cell_is_exactly_what_the_syllabus_generates() -> None:
    syllabus = load_syllabus()
    text = TEXT.read_text(encoding="utf-8")
    assert fill_generated(text, syllabus) == text, "run fill_generated on the phase file"
    marked = [cell for cell in _cells() if "<!-- resources:phase1 -->" in cell.source]
    assert len(marked) == 1 and marked[0].cell_type == "markdown"
    body = marked[0].source.split("<!-- resources:phase1 -->\n")[1].split("\n<!-- /resources")[0]
    assert body == resource_markdown(syllabus, "phase1")


def test_every_reading_has_a_generated_heading_in_order() -> None:
    text = TEXT.read_text(encoding="utf-8")
    assert generated_regions(text) == [
        ("resources", "phase1"),
        ("resource", "p1.basics"),
        ("resource", "p1.acid"),
    ]
    heading = resource_heading_markdown(load_syllabus(), "p1.basics")
    assert heading.startswith("## 1. Distributed Transaction Basics")
    assert "30 minutes" in heading


def test_resource_markdown_lists_readings_minutes_focus_and_exercises() -> None:
    markdown = resource_markdown(load_syllabus(), "phase1")
    lines = markdown.splitlines()
    assert lines[0] == (
        "**Phase 1: Foundations**: 2 readings, 20 points of exercises; "
        "reading 65 minutes + exercises about 75 minutes."
    )
    assert lines[2].startswith(
        "1. **Distributed Transaction Basics** (Article, reading 30 minutes + exercises "
        "about 30 minutes)"
    )
    assert (
        "Exercise `p1.transfer`: Catch the broken money transfer (10 points, about 30 minutes)"
        in markdown
    )
    assert markdown.index("p1.transfer") < markdown.index("ACID in Distributed Systems")


def test_fill_generated_repairs_a_stale_region_and_keeps_the_comment_prefix() -> None:
    stale = "# <!-- resources:phase1 -->\n# old list\n# <!-- /resources -->\n"
    filled = fill_generated(stale, load_syllabus())
    assert "old list" not in filled
    assert all(line.startswith("#") for line in filled.splitlines())
    assert fill_generated(filled, load_syllabus()) == filled


# --- the notebook's shape -------------------------------------------------------------------


def _words_between(start: str, end: str) -> int:
    cells = _cells()
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return len(text.split(start, 1)[1].split(end, 1)[0].split())


def test_each_reading_keeps_its_teaching_text_and_sources() -> None:
    assert _words_between("<!-- resource:p1.basics -->", "<!-- resource:p1.acid -->") >= 1200
    assert _words_between("<!-- resource:p1.acid -->", "## Completion checklist") >= 1200
    markdown = "\n".join(c.source for c in _cells() if c.cell_type == "markdown")
    assert markdown.count("### Sources") == 2
    assert "<!-- figure" not in markdown and "<!-- exercise" not in markdown


def test_the_first_cells_check_the_version_then_take_parameters() -> None:
    cells = [c for c in _cells() if c.cell_type == "code"]
    assert cells[0].metadata.get("dtcourse") == {"locked": True}
    assert f"setup(\"{dtcourse.__version__}\")" in cells[0].source
    assert cells[1].metadata.get("tags") == ["parameters"]
    assert "progress_store = None" in cells[1].source
    assert cells[2].metadata.get("dtcourse") == {"locked": True}
    assert "setup(" in cells[2].source and "progress_store" in cells[2].source
    assert "resource_list(" in cells[3].source
    assert "checklist()" in cells[-1].source


def test_conversion_gives_the_syllabus_points_to_several_graded_cells() -> None:
    notebook = convert(TEXT, load_syllabus())
    graded = [c.metadata["nbgrader"] for c in notebook.cells if c.metadata.get("nbgrader", {})
              .get("grade")]
    points: dict[str, float] = {}
    for meta in graded:
        exercise = meta["grade_id"].rsplit("-test", 1)[0]
        points[exercise] = points.get(exercise, 0) + meta["points"]
    assert points == {
        exercise.id.replace(".", "-"): exercise.points
        for exercise in load_syllabus().exercises
        if exercise.phase == "phase1"
    }
    assert points == {"p1-transfer": 10, "p1-serializability": 10}
    assert len(graded) == 7


def test_every_graded_cell_has_visible_and_hidden_checks() -> None:
    for cell in _cells():
        if "test" not in cell.metadata.get("dtcourse", {}):
            continue
        visible, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
        assert "check_part(" in visible and "dtcourse_instructor" not in visible, cell.source
        hidden = rest.partition("### END HIDDEN TESTS")[0]
        assert "grade_part(" in hidden and "assert " not in hidden, cell.source


# --- p1.transfer ------------------------------------------------------------------------------


def test_reference_audit_passes_every_visible_part(reference: dict[str, Any]) -> None:
    for name, _ in registry()["p1.transfer"].parts:
        verify("p1.transfer", name, reference["audit"])


def test_reference_audit_passes_compensating_and_many_fault_runs(reference) -> None:
    opening = {"bank-a": {"alice": 500}, "bank-b": {"bob": 200}}
    transfers = [
        Transfer("t1", "bank-a", "alice", "bank-b", "bob", 100),
        Transfer("t2", "bank-b", "bob", "bank-a", "alice", 100),
    ]
    cancel = run_transfers(opening, transfers, {"t1": "crash_between", "t2": "lost_reply_retry"})
    assert cancel.total == cancel.expected_total
    big_opening, planned = random_workload(42, banks=4, accounts=10, transfers=25)
    faults = {planned[i].id: f for i, f in ((1, "crash_between"), (9, "rejected_credit"),
                                             (17, "lost_reply_retry"), (20, "crash_before_first"))}
    busy = run_transfers(big_opening, planned, faults)
    verify("p1.transfer", "faults", reference["audit"], runs=[cancel, busy])


def _totals_only(banks, transfers, expected_total) -> list[str]:
    total = sum(sum(bank.balances.values()) for bank in banks.values())
    return [] if total == expected_total else [f"total is {total}, not {expected_total}"]


def _everything_is_wrong(banks, transfers, expected_total) -> list[str]:
    return [f"total mismatch? transfer {t.id}" for t in transfers]


def _no_retries_no_overdrafts(reference: dict[str, Any]) -> Callable[..., list[str]]:
    def audit(banks, transfers, expected_total):
        return [
            message
            for message in reference["audit"](banks, transfers, expected_total)
            if "negative" not in message and ", 2 credit" not in message
        ]

    return audit


def test_an_audit_that_reports_nothing_passes_only_the_clean_runs() -> None:
    verify("p1.transfer", "clean", lambda *args: [])
    with pytest.raises(AssertionError, match="no message mentions the total"):
        verify("p1.transfer", "lost_debit", lambda *args: [])


def test_a_totals_only_audit_misses_the_transfer_and_the_cancelling_pair() -> None:
    verify("p1.transfer", "clean", _totals_only)
    with pytest.raises(AssertionError, match="transfer t1 was not applied exactly once"):
        verify("p1.transfer", "lost_debit", _totals_only)


def test_a_crying_wolf_audit_fails_the_clean_runs() -> None:
    with pytest.raises(AssertionError, match="is consistent, but audit returned"):
        verify("p1.transfer", "clean", _everything_is_wrong)


def test_missing_retries_and_overdrafts_fail_only_the_faults_part(reference) -> None:
    partial = _no_retries_no_overdrafts(reference)
    verify("p1.transfer", "clean", partial)
    verify("p1.transfer", "lost_debit", partial)
    with pytest.raises(AssertionError, match="lost_reply_retry|negative"):
        verify("p1.transfer", "faults", partial)


def test_naming_a_correct_transfer_is_an_error(reference) -> None:
    def blames_t1_too(banks, transfers, expected_total):
        found = reference["audit"](banks, transfers, expected_total)
        return [*found, "transfer t1 looks suspicious"] if found else found

    with pytest.raises(AssertionError, match="applied correctly, yet a message names it"):
        verify("p1.transfer", "lost_debit", blames_t1_too)


def test_a_wrong_return_type_or_a_crash_becomes_a_clear_assertion() -> None:
    with pytest.raises(AssertionError, match="must return a list"):
        verify("p1.transfer", "clean", lambda *args: None)
    with pytest.raises(AssertionError, match="list of strings"):
        verify("p1.transfer", "clean", lambda *args: [1])
    with pytest.raises(AssertionError, match="audit raised KeyError"):
        verify("p1.transfer", "clean", lambda banks, *args: banks["nope"])


def test_visible_runs_cover_what_the_parts_promise() -> None:
    assert all(not run.broken() for run in visible_clean_runs())
    assert any(run.faults.get(t.id) == "crash_before_first"
               for run in visible_clean_runs() for t in run.transfers)
    lost = visible_lost_debit_runs()
    assert lost[0].total == 600 and lost[0].broken() == ("t1",)
    faults = {f for run in visible_fault_runs() for f in run.faults.values()}
    assert {"crash_between", "lost_reply_retry", "rejected_credit"} <= faults
    assert any(v < 0 for run in visible_fault_runs() for bank in run.banks.values()
               for v in bank.balances.values())


def test_visible_transfer_checks_accept_the_notebooks_and_the_references_audit(reference) -> None:
    for audit in (reference["audit"], reference_transfer.audit):
        for name, _ in registry()["p1.transfer"].parts:
            check_part("p1.transfer", name, audit)
            verify("p1.transfer", name, audit)


@pytest.mark.parametrize(
    ("wrong", "part", "message"),
    [
        (lambda *args: [], "lost_debit", "no message mentions the total"),
        (_totals_only, "lost_debit", "transfer t1 was not applied exactly once"),
        (_everything_is_wrong, "clean", "is consistent, but audit returned"),
        (lambda *args: None, "clean", "must return a list"),
    ],
)
def test_visible_transfer_checks_reject_each_known_wrong_audit(wrong, part, message) -> None:
    with pytest.raises(AssertionError, match=message):
        check_part("p1.transfer", part, wrong)


def test_visible_transfer_checks_reject_an_audit_that_skips_retries_and_overdrafts(
    reference,
) -> None:
    partial = _no_retries_no_overdrafts(reference)
    check_part("p1.transfer", "clean", partial)
    check_part("p1.transfer", "lost_debit", partial)
    with pytest.raises(AssertionError, match="lost_reply_retry|negative"):
        check_part("p1.transfer", "faults", partial)


# --- p1.serializability -----------------------------------------------------------------------


def test_reference_analyse_passes_every_visible_and_hidden_part(reference) -> None:
    for name, _ in registry()["p1.serializability"].parts:
        verify("p1.serializability", name, reference["analyse"])
        check_part("p1.serializability", name, reference["analyse"])
    # step 1 on its own: the graded cell passes site_edges itself
    verify("p1.serializability", "sites", reference["site_edges"])
    check_part("p1.serializability", "sites", reference["site_edges"])


def test_the_notebooks_solution_agrees_with_the_reference_on_many_histories(reference) -> None:
    extra = [
        "r1[x]@A r2[y]@B w1[y]@B w2[x]@A c1 c2",
        "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
        "r4[q]@C w3[q]@C r3[x]@A w2[x]@A r2[y]@B w1[y]@B c1 c2 c3 c4",
        "r1[x]@A w2[x]@A w3[x]@A a2 r1[y]@B w3[y]@B c1 c3",
        "w1[x]@A w2[x]@A w2[y]@A w1[y]@A c1 c2",
        "w1[x]@A a1 r2[x]@A c2",
        "r1[y]@B r2[x]@A w2[y]@B w1[y]@B c2 c1",
        "w1[x]@B r2[x]@B w2[y]@A a1 a2",
        "w1[x]@A r2[x]@A r3[x]@A a2 a1 c3",
    ]
    for part in ("sites", "edges", "verdict", "anomaly"):
        verify("p1.serializability", part, reference["analyse"], histories=extra)
    for text in (*VISIBLE_HISTORIES, *extra):
        mine = reference["analyse"](parse_history(text))
        theirs = reference_theory.analyse(text)
        assert (mine.edges, mine.serializable, mine.anomaly) == (
            theirs.edges, theirs.serializable, theirs.anomaly), text
        assert {site: edges for site, edges in mine.sites.items() if edges} == {
            site: edges for site, edges in theirs.sites.items() if edges}, text


def _analyse_differently(history) -> dict[str, Any]:
    """A correct solution in another style: the conflicts tool, a transitive closure for
    cycles, ancestors counted for the order, and a dict instead of a Verdict."""
    ops = list(history)
    gone = aborted(ops)
    live = [c for c in conflicts(ops) if not {c.first.txn, c.second.txn} & gone]
    by_site: dict[str, set] = {}
    for conflict in live:
        by_site.setdefault(conflict.first.site, set()).add(conflict.edge)
    edges = {conflict.edge for conflict in live}
    nodes = committed(ops)
    reach = set(edges)
    while True:
        longer = {(a, d) for a, b in reach for c, d in reach if b == c} - reach
        if not longer:
            break
        reach |= longer
    serializable = not any((n, n) in reach for n in nodes)
    order = None
    if serializable:
        ancestors = {n: sum((m, n) in reach for m in nodes) for n in nodes}
        order = tuple(sorted(nodes, key=lambda n: (ancestors[n], txn_sort_key(n))))

    def at(action, txn, key):
        return [i for i, op in enumerate(ops) if op.txn == txn and op.action == action
                and (op.item, op.site) == key and txn not in gone]

    def anomaly():
        abort_at = {op.txn: i for i, op in enumerate(ops) if op.action == "a"}
        for i, op in enumerate(ops):
            if op.action == "r" and op.txn not in gone:
                earlier = [w for w in ops[:i] if w.action == "w"
                           and (w.item, w.site) == (op.item, op.site)]
                if earlier and earlier[-1].txn != op.txn and abort_at.get(earlier[-1].txn, -1) > i:
                    return "dirty read"
        if serializable:
            return None
        keys = {(op.item, op.site) for op in ops if op.action in ("r", "w")}
        pairs = [(a, b) for a in nodes for b in nodes if a != b]
        for a, b in pairs:
            for k in keys:
                reads, mine, theirs = at("r", a, k), at("w", a, k), at("w", b, k)
                if reads and mine and any(reads[0] < j < mine[-1] for j in theirs):
                    return "lost update"

        def rw(reader, writer, k):
            reads, writes = at("r", reader, k), at("w", writer, k)
            return bool(reads and writes) and reads[0] < writes[-1]

        def wr(writer, reader, k):
            writes, reads = at("w", writer, k), at("r", reader, k)
            return bool(reads and writes) and writes[0] < reads[-1]

        if any(rw(a, b, x) and rw(b, a, y) for a, b in pairs for x in keys for y in keys
               if x != y):
            return "write skew"
        if any(wr(w, r, x) and rw(r, w, y) for w, r in pairs for x in keys for y in keys
               if x != y):
            return "read skew"
        return "other"

    return {"sites": by_site, "edges": edges, "serializable": serializable, "order": order,
            "anomaly": anomaly()}


def test_visible_and_hidden_checks_accept_a_solution_written_differently() -> None:
    hidden = [
        "r4[q]@C w3[q]@C r3[x]@A w2[x]@A r2[y]@B w1[y]@B c1 c2 c3 c4",
        "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
        "r1[y]@B r2[x]@A w2[y]@B w1[y]@B c2 c1",
        "w1[x]@A r2[x]@A r3[x]@A a2 a1 c3",
    ]
    for name, _ in registry()["p1.serializability"].parts:
        check_part("p1.serializability", name, _analyse_differently)
        verify("p1.serializability", name, _analyse_differently, histories=hidden)


def _replace(reference, **fields):
    def analyse(history):
        verdict = reference["analyse"](history)
        values = {"sites": verdict.sites, "edges": verdict.edges,
                  "serializable": verdict.serializable, "order": verdict.order,
                  "anomaly": verdict.anomaly}
        values.update({name: change(history, verdict) for name, change in fields.items()})
        return Verdict(**values)

    return analyse


def _per_site_verdict(reference):
    def serializable(history, verdict):
        by_site: dict[str, list] = {}
        for op in history:
            if op.site is not None:
                by_site.setdefault(op.site, []).append(op)
        return all(reference["analyse"](tuple(ops)).serializable for ops in by_site.values())

    def order(history, verdict):
        return verdict.order if serializable(history, verdict) else None

    return _replace(reference, serializable=serializable, order=order)


def _old_rules(history, verdict):
    """The course's anomaly rules before issue 12: every reader of an aborted write is a
    dirty read, and a lost update needs both transactions to read before the other writes."""
    ops = list(history)
    abort_at = {op.txn: i for i, op in enumerate(ops) if op.action == "a"}
    for i, op in enumerate(ops):
        if op.action == "r":
            earlier = [w for w in ops[:i] if w.action == "w" and (w.item, w.site) == (op.item,
                                                                                     op.site)]
            if earlier and earlier[-1].txn != op.txn and abort_at.get(earlier[-1].txn, -1) > i:
                return "dirty read"
    if verdict.anomaly == "lost update":
        def first_read(t, k):
            return min((i for i, o in enumerate(ops) if (o.action, o.txn, (o.item, o.site))
                        == ("r", t, k)), default=None)

        def last_write(t, k):
            return max((i for i, o in enumerate(ops) if (o.action, o.txn, (o.item, o.site))
                        == ("w", t, k)), default=None)

        names = committed(ops)
        keys = {(o.item, o.site) for o in ops if o.action in ("r", "w")}
        both = any(
            None not in (first_read(a, k), last_write(b, k), first_read(b, k), last_write(a, k))
            and first_read(a, k) < last_write(b, k) and first_read(b, k) < last_write(a, k)
            for a in names for b in names if a != b for k in keys
        )
        return "lost update" if both else "other"
    return verdict.anomaly


KNOWN_WRONG: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    "reversed edges": (
        lambda r: _replace(r, edges=lambda h, v: frozenset((b, a) for a, b in v.edges)),
        "edges", r"the edge T1 → T2 is missing; it comes from the conflict"),
    "aborted transactions keep their edges": (
        lambda r: _replace(r, edges=lambda h, v: v.edges | {
            c.edge for c in conflicts(h)}), "edges", "T1 aborts, and an aborted transaction"),
    "the global graph is one site's": (
        lambda r: _replace(r, edges=lambda h, v: next(
            (e for e in v.sites.values() if e), frozenset())), "edges", "is missing"),
    "every edge at every site": (
        lambda r: _replace(r, sites=lambda h, v: {s: v.edges for s in sites(h)}), "sites",
        "is not in site A's graph: its conflict r2\\[y\\]@B"),
    "a serial order backwards": (
        lambda r: _replace(r, order=lambda h, v: tuple(reversed(v.order)) if v.order else None),
        "verdict", "is not an equivalent serial order"),
    "serializable when each site is": (_per_site_verdict, "verdict", "has a cycle"),
    "never an anomaly": (lambda r: _replace(r, anomaly=lambda h, v: None), "anomaly",
                         "shows an anomaly; name it"),
    "names in capitals": (
        lambda r: _replace(r, anomaly=lambda h, v: v.anomaly.upper() if v.anomaly else None),
        "anomaly", "must be None or one of"),
    "the rules before issue 12": (lambda r: _replace(r, anomaly=_old_rules), "anomaly",
                                  r"r1\[x\]@A w2\[x\]@A w1\[x\]@A c1 c2: the anomaly is not "
                                  "'other'"),
}


@pytest.mark.parametrize("name", KNOWN_WRONG)
def test_visible_and_hidden_checks_reject_each_known_wrong_solution(reference, name) -> None:
    make, part, message = KNOWN_WRONG[name]
    wrong = make(reference)
    with pytest.raises(AssertionError, match=message):
        check_part("p1.serializability", part, wrong)
    with pytest.raises(AssertionError, match=message):
        verify("p1.serializability", part, wrong)
    others = [p for p, _ in registry()["p1.serializability"].parts if p != part]
    if name not in ("aborted transactions keep their edges", "the global graph is one site's"):
        for other in others:  # the mistake costs only its own part
            check_part("p1.serializability", other, wrong)


def test_a_dirty_read_whose_reader_aborts_is_not_named_by_the_hidden_checks(reference) -> None:
    wrong = _replace(reference, anomaly=_old_rules)
    with pytest.raises(AssertionError, match="by the rules this history shows no anomaly"):
        verify("p1.serializability", "anomaly", wrong, histories=["w1[x]@B r2[x]@B w2[y]@A a1 a2"])
    verify("p1.serializability", "anomaly", reference["analyse"],
           histories=["w1[x]@B r2[x]@B w2[y]@A a1 a2", "r1[y]@B r2[x]@A w2[y]@B w1[y]@B c2 c1"])


def test_a_verdict_may_be_a_mapping_but_must_have_every_field(reference) -> None:
    def as_dict(history):
        verdict = reference["analyse"](history)
        return {"sites": verdict.sites, "edges": verdict.edges,
                "serializable": verdict.serializable, "order": verdict.order,
                "anomaly": verdict.anomaly}

    for name, _ in registry()["p1.serializability"].parts:
        check_part("p1.serializability", name, as_dict)
    with pytest.raises(AssertionError, match="has no 'order'"):
        check_part("p1.serializability", "verdict",
                   lambda h: {"edges": set(), "serializable": False})
    with pytest.raises(AssertionError, match="has no 'sites'"):
        check_part("p1.serializability", "sites", lambda h: {"edges": set()})
    with pytest.raises(AssertionError, match="must be a set of"):
        check_part("p1.serializability", "edges", lambda h: {"edges": "T1T2"})


def test_the_case_data_is_what_the_reference_builds_and_names_no_anomaly() -> None:
    path = DATA_DIR / "p1.serializability.json"
    assert render_cases()["p1.serializability.json"] == path.read_text(encoding="utf-8"), (
        "the visible cases are stale: run `dtcourse build` and commit"
    )
    histories = load_cases("p1.serializability")["histories"]
    assert [case["history"] for case in histories] == list(VISIBLE_HISTORIES)
    text = path.read_text(encoding="utf-8")
    for name in ("dirty read", "lost update", "write skew", "read skew", "other"):
        assert name not in text


def test_visible_histories_include_the_global_cycle_and_the_textbook_cases() -> None:
    assert "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2" in VISIBLE_HISTORIES
    assert "r1[x]@A w2[x]@A w1[x]@A c1 c2" in VISIBLE_HISTORIES
    assert "w1[x]@A r2[x]@A a1 a2" in VISIBLE_HISTORIES


_ANOMALY_LABEL = re.compile(r"\*\*(Dirty read|Lost update|Write skew|Read skew)\.\*\*")


def test_the_readings_anomaly_histories_get_the_names_the_text_gives() -> None:
    """Each history shown under an anomaly's bold name in the text is named so by the rules."""
    markdown = "\n".join(c.source for c in _cells() if c.cell_type == "markdown")
    pieces = _ANOMALY_LABEL.split(markdown)
    checked = []
    for label, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for block in re.findall(r"```\n(.*?)```", body, re.S):
            line = block.strip().removeprefix("# ").strip()
            try:
                history = parse_history(line)
            except dtcourse.DTCourseError:
                continue
            assert reference_theory.classify_anomaly(history) == label.lower(), line
            checked.append(label)
    assert {"Dirty read", "Lost update", "Write skew"} <= set(checked), checked


def test_no_public_object_of_the_student_package_passes_phase_1s_checks(capsys) -> None:
    """The answer search, for the modules this exercise touches: plug every public function
    and class into every visible check; none may pass all parts of an exercise."""
    import functools
    import importlib
    import inspect

    from dtcourse.runtime.checks import p1_serializability, p1_transfer

    modules = [
        "dtcourse.lessons.histories",
        "dtcourse.lessons.naive_transfer",
        "dtcourse.pictures.precedence",
        "dtcourse.runtime.checks.p1_serializability",
        "dtcourse.runtime.checks.p1_transfer",
    ]
    # the visible parts, with the transfer runs built once (a run is real SQLite work)
    transfer_runs = {"clean": visible_clean_runs(), "lost_debit": visible_lost_debit_runs(),
                     "faults": visible_fault_runs()}
    parts: dict[str, list[Callable[[Any], None]]] = {
        "p1.transfer": [
            functools.partial(part, runs=transfer_runs[name])
            for name, part in p1_transfer.EXERCISE.parts
        ],
        "p1.serializability": [part for _, part in p1_serializability.EXERCISE.parts],
    }
    assert [name for name, _ in p1_transfer.EXERCISE.parts] == list(transfer_runs)
    tried, passed = [], []
    for module_name in modules:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        for name in names:
            obj = getattr(module, name)
            if not callable(obj) or inspect.ismodule(obj):
                continue
            for exercise, checks in parts.items():
                outcome = []
                for judge in checks:
                    try:
                        judge(obj)
                        outcome.append(True)
                    except Exception:
                        outcome.append(False)
                tried.append(f"{module_name}.{name} -> {exercise}: {sum(outcome)}/{len(outcome)}")
                if all(outcome):
                    passed.append(f"{module_name}.{name} answers {exercise}")
    print("\n".join(tried))
    assert len(tried) > 40
    assert not passed, passed


def test_the_committed_release_never_imports_the_instructor_package() -> None:
    release = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert "dtcourse_instructor" not in release.read_text(encoding="utf-8")


# --- check(): immediate feedback ------------------------------------------------------------------


def test_check_reports_a_stub_as_not_implemented_and_records_nothing(capsys) -> None:
    def stub(*args):
        raise NotImplementedError()

    check("p1.serializability", stub)
    out = capsys.readouterr()
    assert "0 of 4 checks pass" in out.out and "stub is not written yet" in out.out
    assert out.err == ""
    assert ProgressStore().view().loc["p1.serializability", "status"] == "todo"


def test_check_records_a_pass_for_the_reference(reference, capsys) -> None:
    check("p1.transfer", reference["audit"])
    out = capsys.readouterr()
    assert "✅ p1.transfer: all 3 checks pass." in out.out
    assert out.err == ""
    assert ProgressStore().view().loc["p1.transfer", "status"] == "done"


# --- the nbgrader round trip (slow) -------------------------------------------------------------

PARTIAL_AUDIT = '''def audit(banks, transfers, expected_total):
    problems = []
    total = sum(sum(bank.balances.values()) for bank in banks.values())
    if total != expected_total:
        problems.append(f"total is {total}, expected {expected_total}")
    for t in transfers:
        debited = any(e.transfer == t.id for e in banks[t.source_bank].ledger)
        credited = any(e.transfer == t.id for e in banks[t.target_bank].ledger)
        if debited != credited:
            problems.append(f"transfer {t.id} is half-applied")
    return problems
'''

PARTIAL_SITE_EDGES = '''from dtcourse.lessons.histories import Verdict, aborted, conflicts


def site_edges(history):
    gone = aborted(history)
    edges = {}
    for conflict in conflicts(history):
        if conflict.first.txn not in gone and conflict.second.txn not in gone:
            edges.setdefault(conflict.first.site, set()).add(conflict.edge)
    return edges
'''

PARTIAL_ANALYSE = '''def analyse(history):
    ops = list(history)
    aborted = {op.txn for op in ops if op.action == "a"}
    nodes = [t for t in dict.fromkeys(op.txn for op in ops) if t not in aborted]
    sites = site_edges(history)
    edges = set().union(*sites.values())
    # edges right, but a cycle is only noticed between two transactions
    two_cycle = any((b, a) in edges for a, b in edges)
    order = None
    if not two_cycle:
        order, left = [], list(nodes)
        while left:
            free = [t for t in left if not any((s, t) in edges for s in left)]
            if not free:
                order = tuple(left)
                break
            order.append(free[0])
            left.remove(free[0])
        order = tuple(order)
    return Verdict(sites=sites, edges=frozenset(edges), serializable=not two_cycle, order=order,
                   anomaly=None)
'''


def _submission(
    source: Path, replacements: dict[str, list[str]] | None
) -> nbformat.NotebookNode:
    """The source notebook with each exercise's solution cells replaced, in order."""
    notebook = nbformat.read(source, as_version=4)
    left = {exercise: list(cells) for exercise, cells in (replacements or {}).items()}
    for cell in notebook.cells:
        exercise = cell.metadata.get("dtcourse", {}).get("solution")
        if exercise in left:
            cell.source = left[exercise].pop(0)
    assert not any(left.values()), f"more replacements than solution cells: {left}"
    return notebook


@pytest.mark.slow
def test_nbgrader_round_trip_scores_and_feedback(tmp_path: Path, capsys) -> None:
    from dtcourse_instructor.grading import generate_release, grade

    course = tmp_path / "course"
    source = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    write_notebook(convert(TEXT, load_syllabus()), source)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    generate_release(course, [ASSIGNMENT])
    release = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    release_text = release.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in release_text and "BEGIN HIDDEN TESTS" not in release_text
    assert "_workload(_seed" not in release_text and "_histories = (" not in release_text

    submissions = {
        "ref": _submission(source, None),
        "stub": nbformat.read(release, as_version=4),
        "part": _submission(
            source,
            {
                "p1.transfer": [PARTIAL_AUDIT],
                "p1.serializability": [PARTIAL_SITE_EDGES, PARTIAL_ANALYSE],
            },
        ),
    }
    for student, notebook in submissions.items():
        target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)

    report = grade(course, [ASSIGNMENT], report=lambda line: None)
    print(report.seconds)
    assert not report.problems
    scores: dict[str, dict[str, float]] = {}
    for row in report.scores:
        scores.setdefault(row.student, {})[row.grade_id] = row.score
    assert sum(scores["ref"].values()) == 20
    assert sum(scores["stub"].values()) == 0
    # partial: clean and lost debit (3 + 4), each site's graph and the global edges
    # (2 + 2), a two-cycle-only verdict fails the hidden three-cycles, and no anomaly names
    assert scores["part"] == {
        "p1-transfer-test1": 3,
        "p1-transfer-test2": 4,
        "p1-transfer-test3": 0,
        "p1-serializability-test1": 2,
        "p1-serializability-test2": 2,
        "p1-serializability-test3": 0,
        "p1-serializability-test4": 0,
    }
    assert "dtcourse_instructor" not in release_text

    hidden = [
        line.strip()
        for cell in nbformat.read(source, as_version=4).cells
        for block in HIDDEN.findall(cell.source)
        for line in block.splitlines()
        if len(line.strip()) > 12
    ]
    assert hidden
    for student in submissions:
        pages = list((course / "feedback" / student / ASSIGNMENT).glob("*.html"))
        assert pages, f"no feedback for {student}"
        page = pages[0].read_text(encoding="utf-8")
        leaked = [line for line in hidden if html.escape(line) in page or line in page]
        assert not leaked, f"feedback for {student} shows hidden tests: {leaked[:2]}"
    autograded = json.loads(
        (course / "autograded" / "part" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    )
    streams = [
        output
        for cell in autograded["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade")
        for output in cell.get("outputs", [])
        if output.get("name") == "stderr"
    ]
    assert not streams, streams
