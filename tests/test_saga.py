"""The saga world: simulated services, crashes that cannot be caught, interleavings of
any orchestrator function, and the runs recorded for the reading; driven here by the
instructor's reference orchestrator, which the student package does not ship."""

from __future__ import annotations

import json
import threading

import pytest
from dtcourse_instructor.casedata import render_package_data
from dtcourse_instructor.reference.p3_saga import Orchestrator, orchestrate, recorded_runs
from hypothesis import given, settings
from hypothesis import strategies as st

from dtcourse.errors import DTCourseError
from dtcourse.lessons.saga import (
    COMMITTED,
    COMPENSATED,
    DEMO_STORES,
    ORDER_STORES,
    RECORDINGS,
    CrashCaught,
    Faults,
    Saga,
    Step,
    anomaly_demo,
    demo_sagas,
    order_saga,
    recordings,
    run,
    run_interleaved,
    serial_outcomes,
    trip_saga,
    trip_stores,
)


def _compensations(result):
    return [c.step for c in result.calls if c.kind == "compensate" and c.effective]


def test_no_failure_commits_every_step_once_and_applies_its_effects():
    result = run(orchestrate, order_saga())
    assert result.outcome == COMMITTED
    assert [c.step for c in result.calls] == list(order_saga().names)
    assert result.stores["inventory"]["widgets"] == 3
    assert result.stores["payments"]["alice"] == 70
    assert result.stores["orders"]["o1"] == "APPROVED"
    assert result.trace.decisions() == {"orchestrator": COMMITTED}


@pytest.mark.parametrize("failing", order_saga().names[:3])
def test_a_failure_compensates_the_completed_steps_in_reverse_order(failing):
    saga = order_saga()
    result = run(orchestrate, saga, Faults(fail_step=failing))
    completed = saga.names[: saga.number(failing) - 1]
    assert result.outcome == COMPENSATED
    assert _compensations(result) == list(reversed(completed))
    assert result.status[failing] == "failed"
    assert result.stores["inventory"] == ORDER_STORES["inventory"]
    assert result.stores["payments"] == ORDER_STORES["payments"]


def test_business_rule_failure_out_of_stock_needs_no_injection():
    result = run(orchestrate, order_saga(quantity=9))
    assert result.outcome == COMPENSATED
    assert result.status["reserve_stock"] == "failed"
    assert result.stores["orders"]["o1"] == "REJECTED"


def test_transient_compensation_failures_are_retried_until_they_succeed():
    faults = Faults(fail_step="charge_card", compensation_failures=(("reserve_stock", 3),))
    result = run(orchestrate, order_saga(), faults)
    attempts = [c for c in result.calls if c.kind == "compensate" and c.step == "reserve_stock"]
    assert [c.ok for c in attempts] == [False, False, False, True]
    assert result.outcome == COMPENSATED


def test_requests_are_idempotent():
    def twice(saga, services, log):
        for step in saga.steps:
            assert services.execute(step) and services.execute(step)
        return COMMITTED

    result = run(twice, order_saga())
    assert [c.effective for c in result.calls] == [True, False] * 4
    assert result.stores["inventory"]["widgets"] == 3


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(1, 6),
    fail=st.integers(0, 6),
    crash_points=st.frozensets(st.integers(1, 30), max_size=3),
    flaky=st.integers(0, 3),
)
def test_reference_keeps_the_saga_property_under_any_crashes(length, fail, crash_points, flaky):
    saga = trip_saga(length)
    failing = saga.names[fail - 1] if 1 <= fail <= length else None
    faults = Faults(
        fail_step=failing,
        compensation_failures=tuple((name, flaky) for name in saga.names[:-1]),
        crash_at=crash_points,
    )
    result = run(orchestrate, saga, faults, stores=trip_stores(saga))
    if failing is None:
        assert result.outcome == COMMITTED
        assert set(result.status.values()) == {"done"}
    else:
        assert result.outcome == COMPENSATED
        assert "done" not in result.status.values()
        assert result.stores == trip_stores(saga)
        undone = _compensations(result)
        assert undone == sorted(undone, key=saga.number, reverse=True)
    assert result.crashes == len([p for p in crash_points if p <= result.crash_points])


def test_a_crash_after_a_reply_loses_it_and_recovery_asks_again():
    result = run(orchestrate, order_saga(), Faults(crash_at=frozenset({3})))
    assert result.crashes == 1
    assert [c.step for c in result.calls][:3] == ["create_order", "reserve_stock", "reserve_stock"]
    assert result.calls[2].effective is False  # the repeated request changed nothing
    kinds = [e.kind for e in result.trace.events]
    assert "drop" in kinds and "crash" in kinds and "recover" in kinds
    assert result.outcome == COMMITTED


def test_recovery_from_the_log_goes_backward_once_a_failure_is_logged():
    saga = order_saga()
    state = Orchestrator.recover(
        saga, [("done", "create_order"), ("done", "reserve_stock"), ("failed", "charge_card")]
    )
    assert state.next_request() == ("compensate", saga.step("reserve_stock"))
    state, records = state.on_reply("compensate", saga.step("reserve_stock"), True)
    assert records == (("compensated", "reserve_stock"),)
    assert state.next_request() == ("compensate", saga.step("create_order"))
    with pytest.raises(DTCourseError, match="unknown record"):
        Orchestrator.recover(saga, [("begun", "x")])


def test_malformed_sagas_and_requests_are_refused_with_a_reason():
    with pytest.raises(DTCourseError, match="no steps"):
        Saga("s", ())
    with pytest.raises(DTCourseError, match="repeats"):
        Saga("s", (Step("a", "x", "a", "undo a"), Step("a", "x", "a")))
    with pytest.raises(DTCourseError, match="no compensation"):
        Saga("s", (Step("a", "x", "a"), Step("b", "x", "b")))

    def foreign(saga, services, log):
        services.execute(Step("other", "x", "other"))

    with pytest.raises(DTCourseError, match="not a step"):
        run(foreign, order_saga())


def test_the_anomaly_is_an_outcome_no_serial_order_gives():
    demo = anomaly_demo(orchestrate)
    assert demo.outcomes == {"o1": COMPENSATED, "o2": COMPENSATED}
    assert demo.stores["inventory"]["widgets"] == 2
    seen_by_o2 = [r.value for r in demo.readings if r.saga == "o2"]
    assert seen_by_o2 == [0]  # o1's reservation, which was undone later
    serial = serial_outcomes(
        orchestrate, demo_sagas(), stores=DEMO_STORES, failing={"o1": "charge_card"}
    )
    assert len(serial) == 2
    assert all(outcome["o2"] == COMMITTED for outcome in serial.values())
    assert dict(demo.outcomes) not in serial.values()


def _plain(saga, services, log):
    """A correct orchestrator written as a plain loop, unlike the reference's state machine."""
    done = [record[1] for record in log.records() if record[0] == "done"]
    undone = {record[1] for record in log.records() if record[0] == "compensated"}
    failed = any(record[0] == "failed" for record in log.records())
    if not failed:
        for step in saga.steps[len(done) :]:
            if not services.execute(step):
                log.write(("failed", step.name))
                failed = True
                break
            log.write(("done", step.name))
            done.append(step.name)
    if not failed:
        return COMMITTED
    for name in reversed(done):
        if name in undone:
            continue
        while not services.compensate(saga.step(name)):
            pass
        log.write(("compensated", name))
    return COMPENSATED


def test_any_orchestrator_function_can_be_interleaved_one_request_per_turn():
    demo = anomaly_demo(_plain)
    assert demo.outcomes == anomaly_demo(orchestrate).outcomes
    assert demo.trace == anomaly_demo(orchestrate).trace  # same requests, same log writes
    sends = [e for e in demo.trace.events if e.kind == "send" and e.node.startswith("saga")]
    assert [e.node for e in sends][:5] == ["saga o1", "saga o1", "saga o2", "saga o2", "saga o1"]
    assert threading.active_count() == 1


def test_an_orchestrator_that_fails_in_an_interleaving_stops_every_thread():
    def o2_breaks(saga, services, log):
        if saga.id == "o2":
            services.execute(saga.steps[0])
            raise ValueError("o2 broke")
        return orchestrate(saga, services, log)

    with pytest.raises(ValueError, match="o2 broke"):
        anomaly_demo(o2_breaks)
    assert threading.active_count() == 1
    with pytest.raises(DTCourseError, match="not a saga id"):
        run_interleaved(orchestrate, demo_sagas(), ["o3"])
    assert threading.active_count() == 1


def _catches_and_returns(saga, services, log):
    try:
        return orchestrate(saga, services, log)
    except BaseException:  # noqa: BLE001 - the mistake under test
        return COMMITTED


def _catches_and_carries_on(saga, services, log):
    while True:
        try:
            return orchestrate(saga, services, log)
        except BaseException:  # noqa: BLE001 - the mistake under test: "recover" in-process
            continue


@pytest.mark.parametrize("orchestrator", [_catches_and_returns, _catches_and_carries_on])
def test_an_orchestrator_that_catches_its_crash_is_caught_out(orchestrator):
    before = run(orchestrate, order_saga(), Faults(crash_at=frozenset({2})))
    with pytest.raises(CrashCaught, match="do not catch OrchestratorCrash"):
        run(orchestrator, order_saga(), Faults(crash_at=frozenset({2})))
    # Nothing a dead orchestrator asks for happens: a fresh world sees the same as before.
    again = run(orchestrate, order_saga(), Faults(crash_at=frozenset({2})))
    assert again == before


def test_a_dead_orchestrator_changes_neither_the_services_nor_the_log():
    seen = {}

    def keeps_going(saga, services, log):
        try:
            services.execute(saga.steps[0])  # crash point 1: the crash happens here
        except BaseException:  # noqa: BLE001 - the mistake under test
            seen["answer"] = services.execute(saga.steps[1])
            log.write(("done", "reserve_stock"))
            seen["records"] = log.records()
        return COMMITTED

    with pytest.raises(CrashCaught, match="returned 'committed'"):
        run(keeps_going, order_saga(), Faults(crash_at=frozenset({1})))
    assert seen == {"answer": True, "records": ()}


def test_the_recorded_runs_are_what_the_reference_does_now():
    """The reading shows recordings; they must be the reference's current behaviour, and the
    file in the package must be what the build writes (run `dtcourse build` if not)."""
    recorded = recordings()
    live = recorded_runs()
    assert recorded.runs.keys() == live.keys()
    for name, result in live.items():
        assert recorded.runs[name] == result, name
    assert recorded.lost_sale == anomaly_demo(orchestrate)
    assert recorded.runs["fails at charge_card"].story() == "T1 ok, T2 ok, T3 failed, C2 ok, C1 ok"
    written = render_package_data()
    relative = RECORDINGS.relative_to(RECORDINGS.parents[1])
    assert RECORDINGS.read_text(encoding="utf-8") == written[relative]


def test_recordings_refuse_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(DTCourseError, match="missing"):
        recordings(tmp_path / "none.json")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"format": 99}), encoding="utf-8")
    with pytest.raises(DTCourseError, match="format 99"):
        recordings(foreign)
