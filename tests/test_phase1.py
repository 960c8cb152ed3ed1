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
from dtcourse_instructor.grader import grade_part as verify
from dtcourse_instructor.grader import registry
from dtcourse_instructor.grader.phase1 import (
    VISIBLE_HISTORIES,
    visible_clean_runs,
    visible_fault_runs,
    visible_lost_debit_runs,
)
from dtcourse_instructor.resource_list import (
    fill_generated,
    generated_regions,
    resource_heading_markdown,
    resource_markdown,
)

import dtcourse
from dtcourse.lessons.histories import Verdict
from dtcourse.lessons.naive_transfer import Transfer, random_workload, run_transfers
from dtcourse.runtime.checks import check
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
    assert lines[0] == "**Phase 1: Foundations**: 2 readings, 65 minutes, 20 points of exercises."
    assert lines[2].startswith("1. **Distributed Transaction Basics** (Article, 30 minutes)")
    assert "Exercise `p1.transfer`: Catch the broken money transfer (10 points)" in markdown
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
    assert points == {"p1-transfer": 10, "p1-serializability": 10}
    assert len(graded) == 6


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


# --- p1.serializability -----------------------------------------------------------------------


def test_reference_analyse_passes_every_visible_part(reference) -> None:
    for name, _ in registry()["p1.serializability"].parts:
        verify("p1.serializability", name, reference["analyse"])


def test_reference_analyse_agrees_with_the_package_on_many_histories(reference) -> None:
    extra = [
        "r1[x]@A r2[y]@B w1[y]@B w2[x]@A c1 c2",
        "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
        "r4[q]@C w3[q]@C r3[x]@A w2[x]@A r2[y]@B w1[y]@B c1 c2 c3 c4",
        "r1[x]@A w2[x]@A w3[x]@A a2 r1[y]@B w3[y]@B c1 c3",
        "w1[x] w2[x] w2[y] w1[y] c1 c2",
        "w1[x]@A a1 r2[x]@A c2",
    ]
    for part in ("edges", "verdict", "anomaly"):
        verify("p1.serializability", part, reference["analyse"], histories=extra)


def _wrong_direction(reference):
    def analyse(history):
        verdict = reference["analyse"](history)
        return Verdict(frozenset((b, a) for a, b in verdict.edges), verdict.serializable,
                       verdict.order, verdict.anomaly)

    return analyse


def test_reversed_edges_fail_the_edges_part_with_the_conflict_named(reference) -> None:
    with pytest.raises(AssertionError, match=r"the edge T1 → T2 is missing; it comes from"):
        verify("p1.serializability", "edges", _wrong_direction(reference),
               histories=["r1[x]@A w2[x]@A c1 c2"])


def test_edges_from_aborted_transactions_are_rejected(reference) -> None:
    def keeps_aborted(history):
        verdict = reference["analyse"](history)
        return Verdict(verdict.edges | {("T1", "T2")}, verdict.serializable, verdict.order,
                       verdict.anomaly)

    with pytest.raises(AssertionError, match="is not in the precedence graph"):
        verify("p1.serializability", "edges", keeps_aborted, histories=["w1[x]@A r2[x]@A a1 c2"])


def test_a_wrong_serial_order_fails_the_verdict_part(reference) -> None:
    def backwards(history):
        verdict = reference["analyse"](history)
        order = tuple(reversed(verdict.order)) if verdict.order else None
        return Verdict(verdict.edges, verdict.serializable, order, verdict.anomaly)

    with pytest.raises(AssertionError, match="is not an equivalent serial order"):
        verify("p1.serializability", "verdict", backwards)
    verify("p1.serializability", "edges", backwards)


def test_local_only_thinking_fails_the_multi_site_verdict(reference) -> None:
    def per_site(history):
        verdict = reference["analyse"](history)
        by_site: dict[str, list] = {}
        for op in history:
            if op.site is not None:
                by_site.setdefault(op.site, []).append(op)
        local_ok = all(reference["analyse"](tuple(ops)).serializable for ops in by_site.values())
        return Verdict(verdict.edges, local_ok, verdict.order if local_ok else None,
                       verdict.anomaly)

    with pytest.raises(AssertionError, match="has a cycle"):
        verify("p1.serializability", "verdict", per_site)


def test_anomaly_names_are_checked_against_the_rules(reference) -> None:
    def never(history):
        verdict = reference["analyse"](history)
        return Verdict(verdict.edges, verdict.serializable, verdict.order, None)

    with pytest.raises(AssertionError, match="the anomaly is"):
        verify("p1.serializability", "anomaly", never)

    def shouting(history):
        verdict = reference["analyse"](history)
        return {"edges": verdict.edges, "serializable": verdict.serializable,
                "order": verdict.order, "anomaly": (verdict.anomaly or "").upper() or None}

    with pytest.raises(AssertionError, match="must be None or one of"):
        verify("p1.serializability", "anomaly", shouting)


def test_a_verdict_may_be_a_mapping_but_must_have_every_field(reference) -> None:
    def as_dict(history):
        verdict = reference["analyse"](history)
        return {"edges": verdict.edges, "serializable": verdict.serializable,
                "order": verdict.order, "anomaly": verdict.anomaly}

    for part in ("edges", "verdict", "anomaly"):
        verify("p1.serializability", part, as_dict)
    with pytest.raises(AssertionError, match="has no 'order'"):
        verify("p1.serializability", "verdict", lambda h: {"edges": set(), "serializable": False})


def test_visible_histories_include_the_locally_serializable_global_cycle() -> None:
    assert "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2" in VISIBLE_HISTORIES


# --- check(): immediate feedback ------------------------------------------------------------------


def test_check_reports_a_stub_as_not_implemented_and_records_nothing(capsys) -> None:
    def stub(*args):
        raise NotImplementedError()

    check("p1.serializability", stub)
    out = capsys.readouterr()
    assert "0 of 3 checks pass" in out.out and "stub is not written yet" in out.out
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

PARTIAL_ANALYSE = '''from dtcourse.lessons.histories import Verdict, parse_history


def analyse(history):
    ops = list(history)
    aborted = {op.txn for op in ops if op.action == "a"}
    nodes = [t for t in dict.fromkeys(op.txn for op in ops) if t not in aborted]
    edges = set()
    for i, p in enumerate(ops):
        for q in ops[i + 1:]:
            if (p.action in "rw" and q.action in "rw" and p.txn != q.txn
                    and p.txn in nodes and q.txn in nodes
                    and (p.item, p.site) == (q.item, q.site) and "w" in p.action + q.action):
                edges.add((p.txn, q.txn))
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
    return Verdict(frozenset(edges), not two_cycle, order, None)
'''


def _submission(source: Path, replacements: dict[str, str] | None) -> nbformat.NotebookNode:
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        exercise = cell.metadata.get("dtcourse", {}).get("solution")
        if replacements is not None and exercise in replacements:
            cell.source = replacements[exercise]
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
            source, {"p1.transfer": PARTIAL_AUDIT, "p1.serializability": PARTIAL_ANALYSE}
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
    # partial: clean and lost debit (3 + 4), edges (4), a two-cycle-only verdict fails the
    # hidden three-cycles, and no anomaly names
    assert scores["part"] == {
        "p1-transfer-test1": 3,
        "p1-transfer-test2": 4,
        "p1-transfer-test3": 0,
        "p1-serializability-test1": 4,
        "p1-serializability-test2": 0,
        "p1-serializability-test3": 0,
    }

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
