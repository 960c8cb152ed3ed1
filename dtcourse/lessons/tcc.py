"""Try-Confirm/Cancel (TCC) over three simulated services, with its classic failure cases.

TCC is two-phase commit moved into the application. Each service offers three
operations on a transaction: **Try** checks the business rules and *reserves* what the
transaction needs (stock set aside, an amount held on a card) in a local transaction of
its own, visible to others as a reservation and not as a sale; **Confirm** turns the
reservation into the real effect and may not fail for a business reason, because Try
already checked; **Cancel** releases it. A coordinator sends Try to every service, logs
its decision durably, then sends Confirm to all or Cancel to all, and repeats itself
until each service acknowledges. Confirm and Cancel are idempotent.

Three rules make the services safe against a coordinator that crashes or a network that
delays, each shown by a scenario of ``run_tcc``:

* a **Cancel for a Try that never arrived** succeeds and is remembered ("empty cancel"),
* a **Try that arrives after its Cancel** is refused ("hanging Try"), so a delayed request
  cannot leave a reservation that nobody will ever release;
* a reservation **expires** on its own after ``Faults.expiry``, so a coordinator that dies
  for good cannot hold stock forever. That last rule is a heuristic decision built into
  the protocol: a coordinator that decided Confirm and comes back after the expiry finds
  some reservations gone, and the outcome is mixed (``Faults.crash_after_decision``).

Everything runs in simulated time with a one-unit message delay and is recorded as a
``Trace`` (for ``sequence_diagram``), with what another transaction would see at each
service after every change.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dtcourse.engine.trace import Trace, TraceBuilder
from dtcourse.errors import DTCourseError

__all__ = [
    "COORDINATOR",
    "OUTCOMES",
    "SCENARIOS",
    "SERVICES",
    "Faults",
    "Observation",
    "TccRun",
    "run_tcc",
    "scenario",
]

COORDINATOR = "coordinator"
SERVICES: tuple[str, ...] = ("orders", "inventory", "payments")
OUTCOMES: tuple[str, ...] = ("confirmed", "cancelled", "mixed")
Record = Literal["tried", "confirmed", "cancelled", "expired", "declined", "refused late"]

DELAY = 1.0  # every message takes one time unit, unless delayed on purpose
TRY_TIMEOUT = 4.0  # the coordinator gives up on missing Try replies after this long
RETRY = 3.0  # and resends an unacknowledged Confirm or Cancel this often
HORIZON = 200.0


@dataclass(frozen=True)
class Faults:
    """What goes wrong in one run.

    ``decline``: the service whose Try fails for a business reason (a declined card).
    ``delay_try``: the service whose Try message is delayed past the coordinator's timeout,
    so that the Cancel overtakes it. ``crash_after_try``: the coordinator crashes right
    after sending the Tries. ``crash_after_decision``: it logs Confirm, sends it to the
    first service only, and crashes. A crashed coordinator recovers at ``recover_at``.
    ``expiry``: how long a service keeps a reservation before cancelling it on its own.
    """

    decline: str | None = None
    delay_try: str | None = None
    crash_after_try: bool = False
    crash_after_decision: bool = False
    recover_at: float = 20.0
    expiry: float = 10.0

    def __post_init__(self) -> None:
        for name in (self.decline, self.delay_try):
            if name is not None and name not in SERVICES:
                raise DTCourseError(f"unknown service {name!r}; the services are {SERVICES}")
        if self.crash_after_try and self.crash_after_decision:
            raise DTCourseError("choose one crash: after the tries or after the decision")
        if self.expiry <= 0 or self.recover_at <= 0:
            raise DTCourseError("expiry and recover_at are positive times")


@dataclass(frozen=True)
class Observation:
    """What another transaction would read at a service, right after a change there."""

    time: float
    service: str
    state: tuple[tuple[str, Any], ...]
    why: str


@dataclass(frozen=True)
class TccRun:
    outcome: str
    trace: Trace
    stores: Mapping[str, Mapping[str, Any]]
    records: Mapping[str, str]
    observed: tuple[Observation, ...]
    log: tuple[str, ...]

    @property
    def atomic(self) -> bool:
        """Every service confirmed, or none did and nothing is left reserved."""
        return self.outcome != "mixed"

    def story(self) -> str:
        return ", ".join(f"{service} {self.records.get(service, 'untouched')}"
                         for service in SERVICES)  # fmt: skip


# --- messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class Try:
    txn: str

    def label(self) -> str:
        return "Try"


@dataclass(frozen=True)
class Reply:
    txn: str
    ok: bool
    stamp: int  # makes a repeated reply a distinct message in the trace

    def label(self) -> str:
        return "yes" if self.ok else "no"


@dataclass(frozen=True)
class Confirm:
    txn: str
    stamp: int

    def label(self) -> str:
        return "Confirm"


@dataclass(frozen=True)
class Cancel:
    txn: str
    stamp: int

    def label(self) -> str:
        return "Cancel"


@dataclass(frozen=True)
class Ack:
    txn: str
    ok: bool
    stamp: int

    def label(self) -> str:
        return "Ack" if self.ok else "refused"


# --- the services ----------------------------------------------------------------------


@dataclass
class _Service:
    name: str
    store: dict[str, Any]
    decline: bool
    records: dict[str, str] = field(default_factory=dict)

    def try_(self, txn: str, need: Mapping[str, int]) -> bool:
        match self.name:
            case "orders":
                self.store[txn] = "PENDING"
                return True
            case "inventory":
                if self.decline or self.store["available"] < need["quantity"]:
                    return False
                self.store["available"] -= need["quantity"]
                self.store["reserved"] += need["quantity"]
                return True
            case _:
                if self.decline or self.store["balance"] - self.store["held"] < need["amount"]:
                    return False
                self.store["held"] += need["amount"]
                return True

    def confirm(self, txn: str, need: Mapping[str, int]) -> None:
        match self.name:
            case "orders":
                self.store[txn] = "APPROVED"
            case "inventory":
                self.store["reserved"] -= need["quantity"]
                self.store["sold"] += need["quantity"]
            case _:
                self.store["held"] -= need["amount"]
                self.store["balance"] -= need["amount"]

    def release(self, txn: str, need: Mapping[str, int]) -> None:
        match self.name:
            case "orders":
                self.store[txn] = "CANCELLED"
            case "inventory":
                self.store["reserved"] -= need["quantity"]
                self.store["available"] += need["quantity"]
            case _:
                self.store["held"] -= need["amount"]


def _initial_stores() -> dict[str, dict[str, Any]]:
    return {
        "orders": {},
        "inventory": {"available": 5, "reserved": 0, "sold": 0},
        "payments": {"balance": 100, "held": 0},
    }


# --- the run ---------------------------------------------------------------------------


class _Run:
    def __init__(self, faults: Faults, txn: str, quantity: int, amount: int) -> None:
        self.faults = faults
        self.txn = txn
        self.need = {"quantity": quantity, "amount": amount}
        self.now = 0.0
        self.queue: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self.seq = itertools.count()
        self.stamps = itertools.count(1)
        self.builder = TraceBuilder((COORDINATOR, *SERVICES))
        stores = _initial_stores()
        self.services = {
            name: _Service(name, stores[name], faults.decline == name) for name in SERVICES
        }
        self.log: list[str] = []
        self.observed: list[Observation] = []
        # the coordinator: volatile state, and its durable log
        self.up = True
        self.durable: list[str] = []
        self.replies: dict[str, bool] = {}
        self.decision: str | None = None
        self.unacked: set[str] = set()
        self.refused: set[str] = set()
        self.finished = False

    # -- plumbing --------------------------------------------------------------------

    def at(self, time: float, kind: str, *payload: Any) -> None:
        heapq.heappush(self.queue, (time, next(self.seq), kind, payload))

    def send(self, src: str, dst: str, msg: Any, delay: float = DELAY) -> None:
        self.builder.add_one(self.now, ("send", src, dst, msg))
        self.at(self.now + delay, "deliver", src, dst, msg)

    def observe(self, service: str, why: str) -> None:
        state = tuple(sorted(self.services[service].store.items()))
        self.observed.append(Observation(self.now, service, state, why))
        self.log.append(f"t={self.now:g} {service}: {why} -> {dict(state)}")

    def write_log(self, record: str) -> None:
        self.durable.append(record)
        self.builder.add_one(self.now, ("log", COORDINATOR, record, True))

    # -- the coordinator -------------------------------------------------------------

    def start(self) -> None:
        self.builder.add_one(self.now, ("start", COORDINATOR))
        for name in SERVICES:
            self.builder.add_one(self.now, ("start", name))
        self.write_log("begin")
        for name in SERVICES:
            delay = TRY_TIMEOUT + 2 * DELAY if name == self.faults.delay_try else DELAY
            self.send(COORDINATOR, name, Try(self.txn), delay)
        self.at(self.now + TRY_TIMEOUT, "timer", "tries")
        if self.faults.crash_after_try:
            self.crash()

    def decide(self, decision: str, why: str) -> None:
        self.decision = decision
        self.write_log(decision)
        self.builder.add_one(self.now, ("decide", COORDINATOR, decision))
        self.log.append(f"t={self.now:g} coordinator decides {decision}: {why}")
        self.unacked = set(SERVICES)
        for position, name in enumerate(SERVICES):
            self.send_decision(name)
            if self.faults.crash_after_decision and decision == "confirm" and position == 0:
                self.crash()
                return
        self.at(self.now + RETRY, "timer", "acks")

    def send_decision(self, name: str) -> None:
        stamp = next(self.stamps)
        message = Confirm(self.txn, stamp) if self.decision == "confirm" else Cancel(
            self.txn, stamp
        )
        self.send(COORDINATOR, name, message)

    def crash(self) -> None:
        self.up = False
        self.builder.add_one(self.now, ("crash", COORDINATOR))
        self.log.append(f"t={self.now:g} coordinator crashes")
        self.at(self.faults.recover_at, "recover")

    def recover(self) -> None:
        self.up = True
        self.builder.add_one(self.now, ("recover", COORDINATOR))
        self.replies = {}
        if "confirm" in self.durable or "cancel" in self.durable:
            self.decision = "confirm" if "confirm" in self.durable else "cancel"
            self.log.append(f"t={self.now:g} coordinator recovers: {self.decision} in its log")
            self.unacked = set(SERVICES)
            for name in SERVICES:
                self.send_decision(name)
            self.at(self.now + RETRY, "timer", "acks")
        else:
            self.decide("cancel", "no decision in its log after a crash")

    def on_coordinator(self, src: str, msg: Any) -> None:
        if isinstance(msg, Reply) and self.decision is None:
            self.replies[src] = msg.ok
            if not msg.ok:
                self.decide("cancel", f"{src} said no")
            elif set(self.replies) == set(SERVICES):
                self.decide("confirm", "every Try succeeded")
        elif isinstance(msg, Ack) and src in self.unacked:
            self.unacked.discard(src)
            if not msg.ok:
                self.refused.add(src)
            if not self.unacked and not self.finished:
                self.finished = True
                self.write_log("end")

    def on_timer(self, name: str) -> None:
        if name == "tries" and self.decision is None:
            self.builder.add_one(self.now, ("timeout", COORDINATOR, "tries"))
            missing = ", ".join(s for s in SERVICES if s not in self.replies)
            self.decide("cancel", f"no reply from {missing} in time")
        elif name == "acks" and self.unacked:
            for service in sorted(self.unacked):
                self.send_decision(service)
            self.at(self.now + RETRY, "timer", "acks")

    # -- a service -------------------------------------------------------------------

    def on_service(self, name: str, msg: Any) -> None:
        service = self.services[name]
        record = service.records.get(self.txn)
        stamp = next(self.stamps)
        if isinstance(msg, Try):
            if record in ("cancelled", "expired", "refused late"):
                service.records[self.txn] = "refused late" if record == "cancelled" else record
                self.log.append(f"t={self.now:g} {name}: Try after Cancel, refused")
                self.send(name, COORDINATOR, Reply(self.txn, False, stamp))
                return
            if record is None:
                ok = service.try_(self.txn, self.need)
                service.records[self.txn] = "tried" if ok else "declined"
                self.observe(name, "Try reserves" if ok else "Try declined")
                if ok:
                    self.at(self.now + self.faults.expiry, "expire", name)
            ok = service.records[self.txn] not in ("declined",)
            self.send(name, COORDINATOR, Reply(self.txn, ok, stamp))
        elif isinstance(msg, Confirm):
            if record == "tried":
                service.confirm(self.txn, self.need)
                service.records[self.txn] = "confirmed"
                self.observe(name, "Confirm")
            ok = service.records.get(self.txn) == "confirmed"
            if not ok:
                self.log.append(f"t={self.now:g} {name}: Confirm refused, reservation {record}")
            self.send(name, COORDINATOR, Ack(self.txn, ok, stamp))
        elif isinstance(msg, Cancel):
            if record == "tried":
                service.release(self.txn, self.need)
                service.records[self.txn] = "cancelled"
                self.observe(name, "Cancel releases")
            elif record is None:
                service.records[self.txn] = "cancelled"
                self.log.append(f"t={self.now:g} {name}: Cancel before any Try, remembered")
            ok = service.records[self.txn] != "confirmed"
            self.send(name, COORDINATOR, Ack(self.txn, ok, stamp))

    def expire(self, name: str) -> None:
        service = self.services[name]
        if service.records.get(self.txn) == "tried":
            service.release(self.txn, self.need)
            service.records[self.txn] = "expired"
            self.builder.add_one(self.now, ("timeout", name, "reservation expired"))
            self.observe(name, "reservation expires")

    # -- the loop --------------------------------------------------------------------

    def run(self) -> TccRun:
        self.start()
        while self.queue:
            time, _, kind, payload = heapq.heappop(self.queue)
            if time > HORIZON:
                break
            self.now = time
            match kind:
                case "deliver":
                    src, dst, msg = payload
                    if dst == COORDINATOR and not self.up:
                        self.builder.add_one(self.now, ("lost", src, dst, msg, "crashed"))
                        continue
                    self.builder.add_one(self.now, ("deliver", src, dst, msg))
                    if dst == COORDINATOR:
                        self.on_coordinator(src, msg)
                    else:
                        self.on_service(dst, msg)
                case "timer" if self.up:
                    self.on_timer(payload[0])
                case "recover":
                    self.recover()
                case "expire":
                    self.expire(payload[0])
        return self.result()

    def result(self) -> TccRun:
        records = {name: s.records.get(self.txn, "untouched") for name, s in
                   self.services.items()}  # fmt: skip
        confirmed = {name for name, r in records.items() if r == "confirmed"}
        reserved = {name for name, r in records.items() if r == "tried"}
        if confirmed == set(SERVICES):
            outcome = "confirmed"
        elif not confirmed and not reserved:
            outcome = "cancelled"
        else:
            outcome = "mixed"
        return TccRun(
            outcome=outcome,
            trace=self.builder.trace(),
            stores={name: dict(s.store) for name, s in self.services.items()},
            records=records,
            observed=tuple(self.observed),
            log=tuple(self.log),
        )


def run_tcc(
    faults: Faults | None = None, *, txn: str = "o1", quantity: int = 2, amount: int = 30
) -> TccRun:
    """One TCC transaction for an order (``quantity`` widgets for ``amount``) under
    ``faults``; the services start with 5 widgets in stock and 100 on the card."""
    if quantity <= 0 or amount <= 0:
        raise DTCourseError("an order needs a positive quantity and amount")
    return _Run(faults or Faults(), txn, quantity, amount).run()


#: The reading's scenarios, by name.
SCENARIOS: Mapping[str, Faults] = {
    "all confirm": Faults(),
    "card declined": Faults(decline="payments"),
    "Try overtaken by its Cancel": Faults(delay_try="inventory"),
    "coordinator dies after the Tries": Faults(crash_after_try=True),
    "coordinator back after the expiry": Faults(crash_after_decision=True),
}


def scenario(name: str) -> TccRun:
    """Run one of ``SCENARIOS``."""
    if name not in SCENARIOS:
        raise DTCourseError(f"unknown scenario {name!r}; choose one of {list(SCENARIOS)}")
    return run_tcc(SCENARIOS[name])
