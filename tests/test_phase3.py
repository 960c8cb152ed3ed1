"""Phase 3: the saga and presumed abort exercises' checks give partial credit where it is
due, and the notebook builds, runs and grades (reference full marks, stub zero, partial in
between)."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from dtcourse_instructor.authoring import convert, write_notebook
from dtcourse_instructor.course_folder import course_root
from dtcourse_instructor.grader import grade_part as verify
from dtcourse_instructor.grader import registry
from dtcourse_instructor.reference.p3_saga import orchestrate
from dtcourse_instructor.resource_list import fill_generated

from dtcourse.lessons.saga import COMMITTED, COMPENSATED, Faults, order_saga, run
from dtcourse.runtime.checks import check, check_part
from dtcourse.runtime.syllabus import load_syllabus

ROOT = course_root()
TEXT = ROOT / "course" / "phase3_advanced_topics.py"
ASSIGNMENT = "phase3_advanced_topics"
PARTS = ("commit", "compensate", "retry", "recover")


def _replay(saga, log):
    completed, compensating = [], False
    for kind, name in log.records():
        if kind == "done":
            completed.append(name)
        elif kind == "failed":
            compensating = True
        elif kind == "compensated":
            completed.remove(name)
    return completed, compensating


def reference(saga, services, log):
    completed, compensating = _replay(saga, log)
    if not compensating:
        for step in saga.steps[len(completed) :]:
            if not services.execute(step):
                log.write(("failed", step.name))
                compensating = True
                break
            log.write(("done", step.name))
            completed.append(step.name)
    if not compensating:
        return COMMITTED
    for name in reversed(completed):
        while not services.compensate(saga.step(name)):
            pass
        log.write(("compensated", name))
    return COMPENSATED


def forgets_recovery(saga, services, log):
    done = []
    for step in saga.steps:
        if not services.execute(step):
            log.write(("failed", step.name))
            for earlier in reversed(done):
                while not services.compensate(earlier):
                    pass
            return COMPENSATED
        log.write(("done", step.name))
        done.append(step)
    return COMMITTED


def wrong_order(saga, services, log):
    completed, compensating = _replay(saga, log)
    if not compensating:
        for step in saga.steps[len(completed) :]:
            if not services.execute(step):
                log.write(("failed", step.name))
                compensating = True
                break
            log.write(("done", step.name))
            completed.append(step.name)
    if not compensating:
        return COMMITTED
    for name in list(completed):  # oldest first: the wrong way round
        while not services.compensate(saga.step(name)):
            pass
        log.write(("compensated", name))
    return COMPENSATED


def gives_up(saga, services, log):
    completed, compensating = _replay(saga, log)
    if not compensating:
        for step in saga.steps[len(completed) :]:
            if not services.execute(step):
                log.write(("failed", step.name))
                compensating = True
                break
            log.write(("done", step.name))
            completed.append(step.name)
    if not compensating:
        return COMMITTED
    for name in reversed(completed):
        services.compensate(saga.step(name))  # one try only
        log.write(("compensated", name))
    return COMPENSATED


def compensates_the_failed_step(saga, services, log):
    done = []
    for step in saga.steps:
        done.append(step)
        if not services.execute(step):
            for earlier in reversed(done):
                while not services.compensate(earlier):
                    pass
            return COMPENSATED
        log.write(("done", step.name))
    return COMMITTED


def stub(saga, services, log):
    raise NotImplementedError()


def catches_its_crash(saga, services, log):
    """Survives a crash by catching it and carrying on in the same process: what a real
    orchestrator cannot do, and what passed before crashes were made uncatchable."""
    while True:
        try:
            return reference(saga, services, log)
        except BaseException:  # noqa: BLE001 - the mistake under test
            continue


def reverses_wrongly_after_restart(saga, services, log):
    """Right without crashes; after a restart it undoes oldest first."""
    restarted = bool(log.records())
    completed, compensating = _replay(saga, log)
    if not compensating:
        for step in saga.steps[len(completed) :]:
            if not services.execute(step):
                log.write(("failed", step.name))
                compensating = True
                break
            log.write(("done", step.name))
            completed.append(step.name)
    if not compensating:
        return COMMITTED
    for name in list(completed) if restarted else list(reversed(completed)):
        while not services.compensate(saga.step(name)):
            pass
        log.write(("compensated", name))
    return COMPENSATED


HARDER = {
    "commit": {"lengths": (1, 6)},
    "compensate": {"lengths": (2, 6)},
    "retry": {"lengths": (5,), "failures": 4},
    "recover": {"lengths": (5,), "crashes": 2},
}


def _passes(solution) -> dict[str, bool]:
    passed = {}
    for part in PARTS:
        try:
            verify("p3.saga", part, solution)
            verify("p3.saga", part, solution, **HARDER[part])
            passed[part] = True
        except (AssertionError, NotImplementedError):
            passed[part] = False
    return passed


def test_the_exercise_is_registered_with_its_parts():
    assert tuple(name for name, _ in registry()["p3.saga"].parts) == PARTS


@pytest.mark.parametrize("solution", [reference, orchestrate])
def test_a_correct_orchestrator_passes_every_part(solution):
    assert _passes(solution) == dict.fromkeys(PARTS, True)


@pytest.mark.parametrize(
    ("solution", "failing"),
    [
        (stub, set(PARTS)),
        (forgets_recovery, {"recover"}),
        (wrong_order, {"compensate"}),
        (gives_up, {"retry"}),
        (compensates_the_failed_step, {"compensate", "retry", "recover"}),
    ],
)
def test_a_partly_right_orchestrator_fails_exactly_the_parts_it_gets_wrong(solution, failing):
    passed = _passes(solution)
    assert {part for part, ok in passed.items() if not ok} == failing


def _visible_failing(solution) -> set[str]:
    failing = set()
    for part in PARTS:
        try:
            check_part("p3.saga", part, solution)
        except (AssertionError, NotImplementedError):
            failing.add(part)
    return failing


@pytest.mark.parametrize(
    ("solution", "failing"),
    [
        (reference, set()),
        (orchestrate, set()),
        (stub, set(PARTS)),
        (forgets_recovery, {"recover"}),
        (wrong_order, {"compensate"}),
        (gives_up, {"retry"}),
        (compensates_the_failed_step, {"compensate", "retry", "recover"}),
        (catches_its_crash, {"recover"}),
        (reverses_wrongly_after_restart, {"recover"}),
    ],
)
def test_the_visible_checks_judge_by_the_saga_definition_alone(solution, failing):
    """The student package's checks hold no orchestrator, yet accept every correct one
    (the reference's state machine, a plain loop) and reject each known mistake."""
    assert _visible_failing(solution) == failing


@pytest.mark.parametrize("solution", [catches_its_crash, reverses_wrongly_after_restart])
def test_the_hidden_recover_part_fails_the_new_mistakes_too(solution):
    assert {part for part, ok in _passes(solution).items() if not ok} == {"recover"}


def test_recover_messages_say_what_went_wrong_after_the_crash():
    with pytest.raises(AssertionError, match="do not catch OrchestratorCrash"):
        check_part("p3.saga", "recover", catches_its_crash)
    with pytest.raises(AssertionError, match="after the restart") as caught:
        check_part("p3.saga", "recover", reverses_wrongly_after_restart)
    assert "C1, C2" in str(caught.value) and "crash point" in str(caught.value)


def test_failure_messages_name_the_rule_and_show_the_requests():
    with pytest.raises(AssertionError, match=r"reverse order: C2, C1") as caught:
        verify("p3.saga", "compensate", wrong_order)
    assert "requests: T1 ok, T2 ok, T3 failed" in str(caught.value)
    with pytest.raises(AssertionError, match="never goes forward again|log.records"):
        verify("p3.saga", "recover", forgets_recovery)
    with pytest.raises(AssertionError, match="retry a compensation"):
        verify("p3.saga", "retry", gives_up)


def test_a_runaway_orchestrator_is_stopped_with_advice():
    def retries_forever(saga, services, log):
        for step in saga.steps:
            while not services.execute(step):
                pass
        return COMMITTED

    with pytest.raises(AssertionError, match="A failed step is final"):
        verify("p3.saga", "compensate", retries_forever)


def test_check_prints_a_verdict_and_records_a_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DTCOURSE_PROGRESS", str(tmp_path / "progress.sqlite"))
    assert check("p3.saga", wrong_order) is None
    out = capsys.readouterr()
    assert "3 of 4 checks pass" in out.out and "compensate:" in out.out
    assert out.err == ""
    from dtcourse.runtime.progress import ProgressStore

    assert ProgressStore().view().loc["p3.saga", "status"] == "todo"
    check("p3.saga", reference)
    assert "all 4 checks pass" in capsys.readouterr().out

    assert ProgressStore().view().loc["p3.saga", "status"] == "done"


def test_orchestrate_runs_the_notebook_example():
    result = run(orchestrate, order_saga(), Faults(fail_step="charge_card"))
    assert result.story() == "T1 ok, T2 ok, T3 failed, C2 ok, C1 ok"


# --- the notebook ----------------------------------------------------------------------


def test_text_file_is_in_step_with_the_syllabus():
    text = TEXT.read_text(encoding="utf-8")
    assert fill_generated(text, load_syllabus()) == text


def test_notebook_converts_with_the_syllabus_points_and_hidden_tests():
    notebook = convert(TEXT, load_syllabus())
    graded = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert sum(c.metadata["nbgrader"]["points"] for c in graded) == 25
    assert len(graded) == 9
    for cell in graded:
        assert "### BEGIN HIDDEN TESTS" in cell.source
        hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1]
        assert "grade_part(" in hidden
    tags = [c.metadata.get("tags", []) for c in notebook.cells]
    assert ["parameters"] in tags
    sources = "\n".join(c.source for c in notebook.cells)
    for needed in ('resource_list("phase3")', "checklist()", "sequence_diagram(", "plot_costs("):
        assert needed in sources


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("p3course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    notebook = convert(TEXT, load_syllabus())
    write_notebook(notebook, root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    return root


@pytest.mark.slow
def test_papermill_runs_the_notebook_without_errors(course, tmp_path):
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
        str(out),
        parameters={"progress_store": str(tmp_path / "progress.sqlite"), "ci": True},
        progress_bar=False,
        kernel_name="python3",
    )
    executed = nbformat.read(out, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    assert any("all 4 checks pass" in o.get("text", "") for o in outputs)


_PARTIAL = """def run_saga(saga, services, log):
    done = []
    for step in saga.steps:
        if not services.execute(step):
            log.write(("failed", step.name))
            for earlier in reversed(done):
                while not services.compensate(earlier):
                    pass
            return "compensated"
        log.write(("done", step.name))
        done.append(step)
    return "committed"
"""


_PARTIALS = {
    "p3-saga-solution1": _PARTIAL,
    # the presumed-nothing code copied without a change
    "p3-presumed_abort-solution1": """class PresumedAbortCoordinator(PresumedNothingCoordinator):
    pass


class PresumedAbortParticipant(PresumedNothingParticipant):
    pass
""",
    # the right numbers, but the coordinator's budget forgotten
    "p3-cheapest_commit-solution1": """def choose(workload):
    table = {}
    for variant in ("presumed abort", "presumed commit", "presumed nothing"):
        total = at_c = 0.0
        for kind in workload["mix"]:
            n, share, rate = kind["participants"], kind["share"], kind["abort_rate"]
            for outcome, weight in (("commit", 1 - rate), ("abort", rate)):
                total += share * weight * measure(variant, n, outcome).forced_writes
                nodes = writes_by_node(variant, n, outcome).set_index("node")
                at_c += share * weight * float(nodes.loc["C", "forced_writes"])
        table[variant] = {"forced_writes": total, "coordinator_writes": at_c}
    return {"variant": min(table, key=lambda v: table[v]["forced_writes"]), "costs": table}
""",
}


@pytest.mark.slow
def test_round_trip_reference_full_stub_zero_partial_between(course):
    from dtcourse_instructor.grading import generate_release, grade

    generate_release(course, [ASSIGNMENT])
    source = nbformat.read(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    released = nbformat.writes(release)
    assert "BEGIN HIDDEN TESTS" not in released and "BEGIN SOLUTION" not in released
    partial = nbformat.from_dict(release)
    for cell in partial.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = _PARTIALS[cell.metadata["nbgrader"]["grade_id"]]
    for student, notebook in (("reference", source), ("stub", release), ("partial", partial)):
        target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
    report = grade(course, [ASSIGNMENT], report=lambda line: None)
    assert not report.problems
    totals = dict.fromkeys(("reference", "stub", "partial"), 0.0)
    for score in report.scores:
        totals[score.student] += score.score
    print({student: f"{seconds:.1f} s" for (student, _), seconds in report.seconds.items()})
    # partial: saga 7 of 10; the presumed-nothing code copied unchanged passes commit cost
    # and safety (7 of 10); the right numbers with the budget forgotten (2 of 5)
    assert totals == {"reference": 25, "stub": 0, "partial": 16}, report.scores
    hidden = re.findall(
        r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS",
        "\n".join(cell.source for cell in source.cells),
        re.S,
    )
    secrets = [line.strip() for block in hidden for line in block.splitlines() if line.strip()]
    assert secrets
    for student in ("reference", "stub", "partial"):
        page = next((course / "feedback" / student / ASSIGNMENT).glob("*.html"))
        text = page.read_text(encoding="utf-8")
        leaked = [line for line in secrets if html.escape(line) in text or line in text]
        assert not leaked, f"feedback for {student} shows hidden tests: {leaked[:2]}"


# --- p3.presumed_abort and p3.cheapest_commit ------------------------------------------


PA_PARTS = ("commit cost", "abort cost", "safety")
# The hidden tests' harder settings, as the notebook's hidden regions pass them.
PA_HARDER = {
    "commit cost": {"sizes": (1, 2, 5)},
    "abort cost": {"sizes": (1, 2, 5)},
    "safety": {"participants": 2, "crashes": 2},
}


def _stubbed(source: str) -> str:
    """A solution cell as the release shows it: each solution region becomes a stub."""
    return re.sub(
        r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION",
        r"\1# YOUR CODE HERE\n\1raise NotImplementedError()",
        source,
        flags=re.S,
    )


@pytest.fixture(scope="module")
def pa_code() -> dict[str, str]:
    """The notebook's presumed-nothing cell and the presumed abort solution cell."""
    notebook = convert(TEXT, load_syllabus())
    given = next(c.source for c in notebook.cells if "class PresumedNothingCoordinator" in c.source)
    solution = next(
        c.source
        for c in notebook.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == "p3-presumed_abort-solution1"
    )
    return {"given": given, "solution": solution}


def _cells(pa_code: dict[str, str], *, stub: bool = False) -> dict:
    namespace: dict = {}
    exec(compile(pa_code["given"], "presumed_nothing", "exec"), namespace)
    solution = _stubbed(pa_code["solution"]) if stub else pa_code["solution"]
    exec(compile(solution, "presumed_abort", "exec"), namespace)
    return namespace


def _pa_failing(classes) -> set[str]:
    failing = set()
    for part in PA_PARTS:
        try:
            verify("p3.presumed_abort", part, classes)
            verify("p3.presumed_abort", part, classes, **PA_HARDER[part])
        except (AssertionError, NotImplementedError):
            failing.add(part)
    return failing


def _variants(pa_code) -> dict[str, tuple[type, type, set[str]]]:
    """Partly right submissions, each from the notebook's own code with one mistake, and
    the parts each must fail."""
    ns = _cells(pa_code)
    coordinator, participant = ns["PresumedAbortCoordinator"], ns["PresumedAbortParticipant"]
    Inquiry, Ack = ns["Inquiry"], ns["Ack"]
    CoordinatorState = ns["CoordinatorState"]

    class ForcesAbort(coordinator):
        def decide(self, decision, tell, out):
            if decision == "abort":
                out.log("abort", force=True)  # the mistake: presumed nothing's forced abort
            return super().decide(decision, tell, out)

    class NoPresumption(coordinator):
        def on_message(self, state, src, msg, out):
            if isinstance(msg, Inquiry) and state.phase == "forgotten":
                return state  # the mistake: no answer for a transaction it forgot
            return super().on_message(state, src, msg, out)

    class ForgetsCommits(coordinator):
        def decide(self, decision, tell, out):
            super().decide(decision, tell, out)
            return CoordinatorState("forgotten")  # the mistake: forgets before the ACKs

    class AcksAborts(participant):
        def learn(self, state, decision, src, out):
            if decision == "abort":
                out.send(src, Ack())  # the mistake: an abort acknowledged
            return super().learn(state, decision, src, out)

    class ForcesAbortRecords(participant):
        def learn(self, state, decision, src, out):
            if decision == "abort" and state.phase == "prepared":
                out.log("abort", force=True)  # the mistake: a participant forces its abort
            return super().learn(state, decision, src, out)

    stub = _cells(pa_code, stub=True)
    return {
        "solution": (coordinator, participant, set()),
        "stub": (stub["PresumedAbortCoordinator"], stub["PresumedAbortParticipant"], set(PA_PARTS)),
        "presumed nothing unchanged": (
            ns["PresumedNothingCoordinator"],
            ns["PresumedNothingParticipant"],
            {"abort cost"},
        ),
        "coordinator forces its abort": (ForcesAbort, participant, {"abort cost"}),
        "participants force their aborts": (coordinator, ForcesAbortRecords, {"abort cost"}),
        "aborts acknowledged": (coordinator, AcksAborts, {"abort cost"}),
        "inquiries unanswered": (NoPresumption, participant, {"safety"}),
        # it also writes no end record, which the lazy count catches
        "commits forgotten early": (ForgetsCommits, participant, {"commit cost", "safety"}),
    }


VARIANT_NAMES = (
    "solution",
    "stub",
    "presumed nothing unchanged",
    "coordinator forces its abort",
    "participants force their aborts",
    "aborts acknowledged",
    "inquiries unanswered",
    "commits forgotten early",
)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_presumed_abort_submissions_fail_exactly_the_parts_they_get_wrong(pa_code, name):
    coordinator, participant, failing = _variants(pa_code)[name]
    assert _pa_failing((coordinator, participant)) == failing


def _pa_visible_failing(classes) -> set[str]:
    failing = set()
    for part in PA_PARTS:
        try:
            check_part("p3.presumed_abort", part, classes)
        except (AssertionError, NotImplementedError):
            failing.add(part)
    return failing


def _lazy_mistakes(pa_code):
    ns = _cells(pa_code)
    coordinator, participant = ns["PresumedAbortCoordinator"], ns["PresumedAbortParticipant"]

    class WritesNoAbort(participant):
        def learn(self, state, decision, src, out):
            if decision == "abort":  # the mistake: no abort record, not even a lazy one
                out.decide("abort")
                out.cancel_timer("decision")
                return type(state)("abort")
            return super().learn(state, decision, src, out)

    class LogsAbortLazily(coordinator):
        def decide(self, decision, tell, out):
            if decision == "abort":
                out.log("abort", force=False)  # the mistake: presumed abort writes none
            return super().decide(decision, tell, out)

    return {
        "participants write no abort record": (coordinator, WritesNoAbort, {"abort cost"}),
        "the coordinator logs its abort lazily": (LogsAbortLazily, participant, {"abort cost"}),
    }


@pytest.mark.parametrize("name", [*VARIANT_NAMES, "reference", *(
    "participants write no abort record", "the coordinator logs its abort lazily")])
def test_the_visible_presumed_abort_checks_need_no_answer(pa_code, name):
    """The student package's checks accept the notebook's solution and the instructor's R*
    nodes (written differently, with the read-only vote and co-location), and reject each
    known mistake, now including the lazy writes the reading prescribes."""
    from dtcourse_instructor.reference import p3_presumed_abort as reference

    cases = {**_variants(pa_code), **_lazy_mistakes(pa_code)}
    cases["reference"] = (
        reference.PresumedAbortCoordinator,
        reference.PresumedAbortParticipant,
        set(),
    )
    coordinator, participant, failing = cases[name]
    assert _pa_visible_failing((coordinator, participant)) == failing


def test_lazy_write_mistakes_are_named_in_the_message(pa_code):
    coordinator, participant, _ = _lazy_mistakes(pa_code)["participants write no abort record"]
    with pytest.raises(AssertionError, match="lazy writes: yours 0, the cost table's 2") as e:
        check_part("p3.presumed_abort", "abort cost", (coordinator, participant))
    assert "writes its abort record lazily" in str(e.value)


def test_the_given_presumed_nothing_code_costs_what_the_table_says(pa_code):
    from dtcourse.commit.costs import measure, measure_nodes

    ns = _cells(pa_code)
    for n in (1, 2, 4):
        for outcome in ("commit", "abort"):
            mine = measure_nodes(
                ns["PresumedNothingCoordinator"], ns["PresumedNothingParticipant"], n, outcome
            )
            table = measure("presumed nothing", n, outcome)
            assert (mine.messages, mine.forced_writes, mine.lazy_writes, mine.delays) == (
                table.messages,
                table.forced_writes,
                table.lazy_writes,
                table.delays,
            )


def test_the_solution_writes_no_abort_record_at_the_coordinator(pa_code):
    from dtcourse.commit.costs import run_nodes

    ns = _cells(pa_code)
    result = run_nodes(ns["PresumedAbortCoordinator"], ns["PresumedAbortParticipant"], 3, "abort")
    metrics = result.metrics
    assert metrics.forced_writes.get("C", 0) == 0 and metrics.lazy_writes.get("C", 0) == 0
    assert sum(metrics.lazy_writes.values()) == 2  # the two prepared participants' aborts


def test_failure_messages_name_the_rule_and_show_the_run(pa_code):
    variants_ = _variants(pa_code)
    coordinator, participant, _ = variants_["coordinator forces its abort"]
    with pytest.raises(AssertionError, match=r"forced writes: yours 3, the cost table's 2") as e:
        verify("p3.presumed_abort", "abort cost", (coordinator, participant))
    assert "the coordinator writes no abort record at all" in str(e.value)
    coordinator, participant, _ = variants_["inquiries unanswered"]
    with pytest.raises(AssertionError, match="AC5") as e:
        verify("p3.presumed_abort", "safety", (coordinator, participant))
    assert "can never decide" in str(e.value) and "C CRASHES" in str(e.value)
    coordinator, participant, _ = variants_["commits forgotten early"]
    with pytest.raises(AssertionError, match="AC1 agreement"):
        verify("p3.presumed_abort", "safety", (coordinator, participant))


def test_the_packages_own_nodes_are_refused_with_advice(pa_code):
    from dtcourse.commit.protocols import variants
    from dtcourse.engine.actors import Node

    class Coordinator(variants.Coordinator):
        def __init__(self, name, participants):
            super().__init__(name, participants, "abort")

    class Participant(variants.Participant):
        def __init__(self, name, coordinator, vote="yes"):
            super().__init__(name, coordinator, "abort", vote)

    assert _pa_failing((Coordinator, Participant)) == set(PA_PARTS)
    with pytest.raises(AssertionError, match="write the handlers yourself") as e:
        verify("p3.presumed_abort", "commit cost", (Coordinator, Participant))
    assert "subclasses dtcourse.commit.protocols.variants.Coordinator" in str(e.value)

    class Borrower(Node):
        """Not a subclass, but its handlers are the package's."""

        def __init__(self, name, coordinator, vote="yes"):
            super().__init__(name)
            self.coordinator, self.presumption, self.vote = coordinator, "abort", vote

        on_start = variants.Participant.on_start
        on_message = variants.Participant.on_message

    given = _cells(pa_code)["PresumedAbortCoordinator"]
    with pytest.raises(AssertionError, match="takes on_start, on_message from dtcourse"):
        verify("p3.presumed_abort", "safety", (given, Borrower))


def test_presumed_abort_checks_refuse_a_wrong_shape_with_advice():
    with pytest.raises(AssertionError, match="as a pair"):
        verify("p3.presumed_abort", "commit cost", object)
    with pytest.raises(AssertionError, match="class itself"):
        verify("p3.presumed_abort", "abort cost", (object(), object()))

    from dtcourse.engine.actors import Node

    class WrongSignature(Node):
        def __init__(self, name):
            super().__init__(name)

    with pytest.raises(AssertionError, match="keep the constructors' signatures"):
        verify("p3.presumed_abort", "commit cost", (WrongSignature, WrongSignature))
    with pytest.raises(AssertionError, match="keep the constructors' signatures"):
        verify("p3.presumed_abort", "safety", (WrongSignature, WrongSignature))


def _cheapest_failing(choose, hidden=None) -> set[str]:
    failing = set()
    for part in ("expected", "choice"):
        try:
            if hidden is None:
                check_part("p3.cheapest_commit", part, choose)
            else:
                verify("p3.cheapest_commit", part, choose, workloads=hidden)
        except (AssertionError, NotImplementedError):
            failing.add(part)
    return failing


def _numbers(workload, *, coordinator_too=True, outcomes=("commit", "abort")):
    """Each presumption's expected forced writes, as a student would count them: here
    from the nodes' runs (presumed abort from the instructor's nodes, the others from the
    package's), not from the reference's own function."""
    from dtcourse_instructor.reference import p3_presumed_abort as pa

    from dtcourse.commit import costs

    table = {}
    for variant in ("presumed abort", "presumed commit", "presumed nothing"):
        total = at_c = 0.0
        for kind in workload["mix"]:
            n, share, rate = kind["participants"], kind["share"], kind["abort_rate"]
            for outcome in outcomes:
                weight = share * ((1 - rate) if outcome == "commit" else rate)
                if variant == "presumed abort":
                    result = costs.run_nodes(
                        pa.PresumedAbortCoordinator, pa.PresumedAbortParticipant, n, outcome
                    )
                else:
                    result = costs.run(variant, n, outcome)
                total += weight * sum(result.metrics.forced_writes.values())
                if coordinator_too:
                    at_c += weight * result.metrics.forced_writes.get("C", 0)
        table[variant] = {"forced_writes": total, "coordinator_writes": at_c}
    return table


def counts_its_own(workload):
    table = _numbers(workload)
    budget = workload["coordinator_budget"]
    fits = [v for v in table if table[v]["coordinator_writes"] <= budget + 1e-9]
    return {"variant": min(fits, key=lambda v: table[v]["forced_writes"], default=None),
            "costs": table}  # fmt: skip


def forgets_the_budget(workload):
    table = _numbers(workload)
    return {"variant": min(table, key=lambda v: table[v]["forced_writes"]), "costs": table}


def commits_only(workload):
    """Counts commits only, yet happens to pick right on the visible workloads."""
    from dtcourse_instructor.reference.p3_cheapest_commit import choose as right

    numbers = _numbers(workload, outcomes=("commit",))
    return {"variant": right(workload)["variant"], "costs": numbers}


HIDDEN_WORKLOADS = [
    {"mix": [{"share": 1.0, "participants": 5, "abort_rate": 0.6}], "coordinator_budget": 3},
    {"mix": [{"share": 0.5, "participants": 4, "abort_rate": 0.02},
             {"share": 0.5, "participants": 2, "abort_rate": 0.1}], "coordinator_budget": 0.9},
    {"mix": [{"share": 0.6, "participants": 4, "abort_rate": 0.0},
             {"share": 0.4, "participants": 1, "abort_rate": 0.5}], "coordinator_budget": 0.7},
]  # fmt: skip


@pytest.mark.parametrize(
    ("choose", "failing"),
    [
        ("reference", set()),
        (counts_its_own, set()),
        (forgets_the_budget, {"choice"}),
        (commits_only, {"expected"}),
        (lambda workload: "presumed abort", {"expected", "choice"}),
    ],
)
def test_cheapest_commit_checks_give_credit_for_the_numbers_and_the_choice_apart(
    choose, failing
):
    from dtcourse_instructor.reference.p3_cheapest_commit import choose as right

    choose = right if choose == "reference" else choose
    assert _cheapest_failing(choose) == failing
    assert _cheapest_failing(choose, HIDDEN_WORKLOADS) == failing


def test_cheapest_commit_hidden_workloads_cover_an_unaffordable_budget():
    from dtcourse_instructor.reference.p3_cheapest_commit import choose as right

    choices = {right(workload)["variant"] for workload in HIDDEN_WORKLOADS}
    assert None in choices and "presumed abort" in choices


def test_cheapest_commit_messages_hold_no_expected_number():
    with pytest.raises(AssertionError, match="keys 'variant' and 'costs'"):
        check_part("p3.cheapest_commit", "expected", lambda workload: "presumed abort")
    with pytest.raises(AssertionError, match="fit the budget") as caught:
        check_part("p3.cheapest_commit", "choice", forgets_the_budget)
    assert "presumed commit is not the right choice" in str(caught.value)
    with pytest.raises(AssertionError, match="forced_writes of presumed abort is not") as caught:
        check_part("p3.cheapest_commit", "expected", commits_only)
    from dtcourse_instructor.reference.p3_cheapest_commit import VISIBLE_WORKLOADS, choose

    right = choose(VISIBLE_WORKLOADS[0])["costs"]["presumed abort"]["forced_writes"]
    assert f"{right:g}" not in str(caught.value)


def test_cheapest_commit_visible_data_holds_hashes_only():
    from dtcourse_instructor.casedata import render_cases
    from dtcourse_instructor.reference.p3_cheapest_commit import VISIBLE_WORKLOADS, choose

    data = ROOT / "dtcourse" / "runtime" / "checks" / "data" / "p3.cheapest_commit.json"
    text = data.read_text(encoding="utf-8")
    assert text == render_cases()["p3.cheapest_commit.json"]  # run `dtcourse build` if not
    assert '"variant": "presumed' not in text and '"variant": null' not in text
    for workload in VISIBLE_WORKLOADS:
        answer = choose(workload)
        for numbers in answer["costs"].values():
            for value in numbers.values():
                if value != int(value):  # whole numbers also count participants
                    assert f"{round(value, 6):g}" not in text.replace('"', " ").split()


# --- no public object of the student package answers these exercises --------------------

SEARCHED = (
    "dtcourse.lessons.saga",
    "dtcourse.lessons.outbox",
    "dtcourse.commit.costs",
    "dtcourse.commit.protocols",
    "dtcourse.commit.protocols.catalog",
    "dtcourse.commit.protocols.variants",
    "dtcourse.commit.protocols.twopc",
    "dtcourse.commit.protocols.threepc",
    "dtcourse.commit.protocols.paxos_commit",
)


def _public(module_name: str) -> dict[str, object]:
    import importlib

    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    return {f"{module_name}.{name}": getattr(module, name) for name in names}


def _passed_parts(exercise: str, obj: object) -> list[str]:
    from dtcourse.runtime.checks import registry as visible

    passed = []
    for part, check_one in visible()[exercise].parts:
        try:
            check_one(obj)
        except BaseException:  # noqa: BLE001 - anything but a pass is a fail here
            continue
        passed.append(part)
    return passed


def test_no_public_object_of_the_package_answers_the_phase3_exercises(capsys):
    """The answer search of issue 9 for Phase 3: every public function and class of the
    modules these exercises touch, plugged into each visible check (node classes in every
    coordinator/participant pairing), passes none entirely; what passes a part is listed."""
    from dtcourse.engine.actors import Node

    objects = {name: obj for module in SEARCHED for name, obj in _public(module).items()}
    callables = {name: obj for name, obj in objects.items() if callable(obj)}
    nodes = {
        name: obj
        for name, obj in callables.items()
        if isinstance(obj, type) and issubclass(obj, Node) and obj is not Node
    }
    tried, passing = 0, {}
    for exercise in ("p3.saga", "p3.cheapest_commit"):
        for name, obj in callables.items():
            tried += 1
            if parts := _passed_parts(exercise, obj):
                passing[(exercise, name)] = parts
    for coordinator in nodes:
        for participant in nodes:
            tried += 1
            pair = (nodes[coordinator], nodes[participant])
            if parts := _passed_parts("p3.presumed_abort", pair):
                passing[("p3.presumed_abort", f"{coordinator} + {participant}")] = parts
    with capsys.disabled():
        print(f"\nanswer search, Phase 3: {tried} objects and pairs tried; parts passed: {passing}")
    full = {
        key: parts
        for key, parts in passing.items()
        if len(parts) == len(dict(registry()[key[0]].parts))
    }
    assert not full, f"package objects answer an exercise: {full}"
    assert len(nodes) >= 6 and tried > 100
