"""Try-Confirm/Cancel: the happy path, a declined Try, and the three coordinator hazards."""

from __future__ import annotations

import pytest

from dtcourse.errors import DTCourseError
from dtcourse.lessons.tcc import (
    COORDINATOR,
    SCENARIOS,
    SERVICES,
    Faults,
    run_tcc,
    scenario,
)

STOCK, BALANCE = 5, 100


def _messages(run, label):
    return [e for e in run.trace.events if e.kind == "deliver" and e.message == label]


def test_every_try_succeeds_then_every_service_confirms():
    run = scenario("all confirm")
    assert run.outcome == "confirmed" and run.atomic
    assert run.stores["inventory"] == {"available": STOCK - 2, "reserved": 0, "sold": 2}
    assert run.stores["payments"] == {"balance": BALANCE - 30, "held": 0}
    assert run.stores["orders"] == {"o1": "APPROVED"}
    # The decision is logged (forced) before the first Confirm is sent.
    log = next(e.index for e in run.trace.events if e.kind == "log" and e.detail == "confirm")
    first = next(e.index for e in run.trace.events if e.kind == "send" and e.message == "Confirm")
    assert log < first


def test_while_in_flight_others_see_a_reservation_not_a_sale():
    run = scenario("all confirm")
    tried = [o for o in run.observed if o.why == "Try reserves"]
    inventory = dict(next(o.state for o in tried if o.service == "inventory"))
    payments = dict(next(o.state for o in tried if o.service == "payments"))
    assert inventory == {"available": STOCK - 2, "reserved": 2, "sold": 0}
    assert payments == {"balance": BALANCE, "held": 30}  # held, not charged


def test_a_declined_try_cancels_the_others_and_charges_nothing():
    run = scenario("card declined")
    assert run.outcome == "cancelled" and run.atomic
    assert run.records["payments"] == "declined"
    assert run.stores["inventory"] == {"available": STOCK, "reserved": 0, "sold": 0}
    assert run.stores["payments"] == {"balance": BALANCE, "held": 0}
    assert run.stores["orders"] == {"o1": "CANCELLED"}
    # Unlike a saga's refund, the card's balance never moved.
    assert all(dict(o.state).get("balance", BALANCE) == BALANCE for o in run.observed)


def test_a_try_overtaken_by_its_cancel_is_refused():
    run = scenario("Try overtaken by its Cancel")
    assert run.outcome == "cancelled" and run.atomic
    assert run.records["inventory"] == "refused late"
    assert run.stores["inventory"] == {"available": STOCK, "reserved": 0, "sold": 0}
    cancel = next(e.time for e in _messages(run, "Cancel") if e.node == "inventory")
    late_try = next(e.time for e in _messages(run, "Try") if e.node == "inventory")
    assert cancel < late_try
    assert any("Cancel before any Try" in line for line in run.log)


def test_reservations_expire_when_the_coordinator_is_gone():
    run = scenario("coordinator dies after the Tries")
    assert run.outcome == "cancelled" and run.atomic
    assert set(run.records.values()) == {"expired"}
    assert run.stores["inventory"]["reserved"] == 0
    expiries = [e for e in run.trace.events if e.kind == "timeout" and e.node in SERVICES]
    assert len(expiries) == len(SERVICES)
    assert all(e.time == 1 + SCENARIOS["coordinator dies after the Tries"].expiry
               for e in expiries)  # fmt: skip


def test_a_coordinator_back_after_the_expiry_finds_a_mixed_outcome():
    run = scenario("coordinator back after the expiry")
    assert run.outcome == "mixed" and not run.atomic
    assert run.records == {"orders": "confirmed", "inventory": "expired", "payments": "expired"}
    assert run.stores["orders"] == {"o1": "APPROVED"}
    assert run.stores["payments"]["balance"] == BALANCE  # an approved order nobody paid for
    refused = [e for e in run.trace.events if e.kind == "deliver" and e.message == "refused"]
    assert {e.peer for e in refused} == {"inventory", "payments"}


def test_an_expiry_longer_than_the_outage_keeps_the_outcome_atomic():
    run = run_tcc(Faults(crash_after_decision=True, recover_at=20.0, expiry=30.0))
    assert run.outcome == "confirmed"
    assert run.stores["payments"] == {"balance": BALANCE - 30, "held": 0}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_reservation_is_ever_left_behind(name):
    run = scenario(name)
    assert "tried" not in run.records.values()
    assert run.stores["inventory"]["reserved"] == 0
    assert run.stores["payments"]["held"] == 0
    inventory = run.stores["inventory"]
    assert inventory["available"] + inventory["sold"] == STOCK
    assert run.trace.nodes == (COORDINATOR, *SERVICES)


def test_not_enough_stock_is_a_declined_try():
    run = run_tcc(quantity=6)
    assert run.outcome == "cancelled"
    assert run.records["inventory"] == "declined"


def test_mistakes_are_refused():
    with pytest.raises(DTCourseError, match="unknown service 'shipping'"):
        Faults(decline="shipping")
    with pytest.raises(DTCourseError, match="choose one crash"):
        Faults(crash_after_try=True, crash_after_decision=True)
    with pytest.raises(DTCourseError, match="unknown scenario"):
        scenario("nothing")
    with pytest.raises(DTCourseError, match="positive"):
        run_tcc(quantity=0)
