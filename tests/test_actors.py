"""The actor model: effects, durability, timing, network semantics, errors, symmetry."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dtcourse.commit.protocols import build
from dtcourse.commit.protocols.threepc import naive_rule
from dtcourse.engine.actors import (
    ActorSystem,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Node,
    Out,
    Partition,
    Recover,
    Timeout,
    describe_state,
)
from dtcourse.engine.checker import check
from dtcourse.engine.model import Path
from dtcourse.engine.network import Faults, Network, bipartitions
from dtcourse.errors import ModelError


@dataclass(frozen=True)
class Ping:
    n: int


@dataclass(frozen=True)
class Count:
    seen: int = 0


class Pinger(Node):
    """Sends one Ping, logs lazily then forced, decides when the Pong comes back."""

    def __init__(self, name: str, peer: str) -> None:
        super().__init__(name)
        self.peer = peer

    def on_start(self, out: Out) -> Count:
        out.send(self.peer, Ping(1))
        out.set_timer("retry", waiting_on=(self.peer,))
        return Count()

    def on_message(self, state: Count, src: str, msg: object, out: Out) -> Count:
        out.log("lazy-note", force=False)
        out.decide("commit")
        return Count(state.seen + 1)

    def on_timeout(self, state: Count, timer: str, out: Out) -> Count:
        out.log("forced-note", force=True)
        return state

    def on_recover(self, log: tuple[object, ...], out: Out) -> Count:
        return Count(len(log))


class Ponger(Node):
    def on_start(self, out: Out) -> Count:
        return Count()

    def on_message(self, state: Count, src: str, msg: object, out: Out) -> Count:
        out.send(src, msg)
        return Count(state.seen + 1)


def pair(**kwargs: object) -> ActorSystem:
    return ActorSystem([Pinger("A", "B"), Ponger("B")], **kwargs)  # type: ignore[arg-type]


def after(system: ActorSystem, *actions: object):
    state = system.init_states()[0]
    for action in actions:
        assert action in system.actions(state), f"{action} not enabled"
        state = system.next_state(state, action)
        assert state is not None
    return state


def test_start_sends_and_sets_timers() -> None:
    system = pair()
    state = system.init_states()[0]
    assert system.envelopes(state) == [("A", "B", Ping(1))]
    assert system.record(state, "A").timers == (("retry", ("B",)),)
    assert Deliver("A", "B", Ping(1)) in system.actions(state)


def test_a_delivered_message_leaves_the_network_and_runs_the_handler() -> None:
    system = pair()
    state = after(system, Deliver("A", "B", Ping(1)))
    assert system.local(state, "B") == Count(1)
    assert system.envelopes(state) == [("B", "A", Ping(1))]


def test_lazy_records_are_lost_in_a_crash_and_forced_ones_flush_the_buffer() -> None:
    system = pair(faults=Faults(crashes=2, recover=True))
    state = after(system, Deliver("A", "B", Ping(1)), Deliver("B", "A", Ping(1)))
    record = system.record(state, "A")
    assert record.buffered == ("lazy-note",) and record.durable == ()
    crashed = after(system, Deliver("A", "B", Ping(1)), Deliver("B", "A", Ping(1)), Crash("A"))
    assert system.record(crashed, "A").buffered == ()
    assert system.record(crashed, "A").durable == ()
    recovered = system.next_state(crashed, Recover("A"))
    assert system.local(recovered, "A") == Count(0)  # rebuilt from an empty durable log
    # A forced write makes the lazy record before it durable too.
    flushed = after(
        system, Deliver("A", "B", Ping(1)), Deliver("B", "A", Ping(1)), Timeout("A", "retry")
    )
    assert system.record(flushed, "A").durable == ("lazy-note", "forced-note")
    survived = system.next_state(flushed, Crash("A"))
    assert system.record(survived, "A").durable == ("lazy-note", "forced-note")
    assert system.local(system.next_state(survived, Recover("A")), "A") == Count(2)


def test_a_decision_never_acted_on_is_erased_by_a_crash_but_a_made_one_survives() -> None:
    system = pair(faults=Faults(crashes=1, recover=True))
    decided = after(system, Deliver("A", "B", Ping(1)), Deliver("B", "A", Ping(1)))
    assert system.record(decided, "A").decision == ("commit", False)
    crashed = system.next_state(decided, Crash("A"))
    assert system.record(crashed, "A").decision is None
    made = system.next_state(decided, Timeout("A", "retry"))  # forces the log: acted on
    assert system.record(made, "A").decision == ("commit", True)
    assert system.record(system.next_state(made, Crash("A")), "A").decision == ("commit", True)


def test_crash_discards_timers_and_volatile_state_and_respects_the_budget() -> None:
    system = pair(faults=Faults(crashes=1))
    state = after(system, Crash("A"))
    assert system.local(state, "A") is None
    assert system.record(state, "A").timers == ()
    assert not any(isinstance(a, Crash) for a in system.actions(state))
    assert not any(isinstance(a, Recover) for a in system.actions(state))  # crash-stop


def test_crash_stop_forgets_messages_to_the_dead_node() -> None:
    system = pair(faults=Faults(crashes=1))
    state = after(system, Crash("B"))
    assert system.envelopes(state) == []


def test_a_message_to_a_down_node_is_lost_under_crash_recovery() -> None:
    system = pair(faults=Faults(crashes=1, recover=True))
    state = after(system, Crash("B"), Deliver("A", "B", Ping(1)))
    assert system.envelopes(state) == []
    assert system.local(state, "B") is None
    assert state.failed


def test_perfect_failure_detector_fires_only_for_a_crashed_or_cut_off_node() -> None:
    system = pair(timing="perfect", faults=Faults(crashes=1, partitions=1))
    state = system.init_states()[0]
    assert Timeout("A", "retry") not in system.actions(state)
    assert Timeout("A", "retry") in system.actions(after(system, Crash("B")))
    split = after(system, Partition((("A",), ("B",))))
    assert Timeout("A", "retry") in system.actions(split)
    asynchronous = pair(timing="async")
    assert Timeout("A", "retry") in asynchronous.actions(asynchronous.init_states()[0])


def test_partitioned_messages_are_lost_and_heal_restores_the_link() -> None:
    system = pair(faults=Faults(partitions=1))
    state = after(system, Partition((("A",), ("B",))), Deliver("A", "B", Ping(1)))
    assert system.envelopes(state) == [] and system.local(state, "B") == Count(0)
    assert sorted(bipartitions(3)) == [(0, 0, 1), (0, 1, 0), (0, 1, 1)]


def test_loss_and_duplication_are_options() -> None:
    reliable = pair()
    assert not any(
        isinstance(a, Drop | Duplicate) for a in reliable.actions(reliable.init_states()[0])
    )
    lossy = pair(network=Network(loss=True))
    assert system_envelopes_after(lossy, Drop("A", "B", Ping(1))) == []
    dup = pair(network=Network(duplicate=True))
    state = after(dup, Duplicate("A", "B", Ping(1)))
    assert ("A", "B", Ping(1)) in dup.envelopes(state)  # still in flight: it can arrive again
    again = dup.next_state(state, Deliver("A", "B", Ping(1)))
    assert dup.local(again, "B") == Count(2)


def system_envelopes_after(system: ActorSystem, action: object) -> list:
    return system.envelopes(after(system, action))


def test_disabled_actions_give_no_state() -> None:
    system = pair()
    state = system.init_states()[0]
    assert system.next_state(state, Deliver("B", "A", Ping(1))) is None
    assert system.next_state(state, Crash("A")) is None  # no crash budget
    assert system.next_state(state, Drop("A", "B", Ping(1))) is None  # not lossy


def test_trace_of_pairs_each_delivery_with_its_send() -> None:
    system = pair()
    state = system.init_states()[0]
    s1 = system.next_state(state, Deliver("A", "B", Ping(1)))
    s2 = system.next_state(s1, Deliver("B", "A", Ping(1)))
    trace = system.trace_of(
        Path(state, ((Deliver("A", "B", Ping(1)), s1), (Deliver("B", "A", Ping(1)), s2)))
    )
    kinds = [e.kind for e in trace.events]
    assert kinds[:3] == ["start", "send", "start"]
    delivers = [e for e in trace.events if e.kind == "deliver"]
    assert [trace.events[e.send_index].message for e in delivers] == ["Ping(1)", "Ping(1)"]
    assert trace.events[delivers[1].send_index].node == "B"
    assert trace.decisions() == {"A": "commit"}
    assert delivers[1].time == 2.0


# -- bad handlers ------------------------------------------------------------------------------


class Broken(Node):
    def __init__(self, name: str, fault: str) -> None:
        super().__init__(name)
        self.fault = fault

    def on_start(self, out: Out) -> object:
        return Count()

    def on_message(self, state: Count, src: str, msg: object, out: Out) -> object:
        match self.fault:
            case "raise":
                raise ZeroDivisionError("boom")
            case "none":
                return None
            case "unhashable":
                return {"seen": 1}
            case "unknown":
                out.send("Z", msg)
        return state


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("raise", "raised ZeroDivisionError: boom"),
        ("none", "returned None"),
        ("unhashable", "not hashable"),
        ("unknown", "send to unknown node 'Z'"),
    ],
)
def test_bad_handlers_name_node_handler_event_and_the_run(fault: str, expected: str) -> None:
    system = ActorSystem([Pinger("A", "B"), Broken("B", fault)])
    with pytest.raises(ModelError) as caught:
        check(system)
    message = str(caught.value)
    assert expected in message
    assert "node 'B'" in message and "on_message" in message and "Ping(1) from A" in message
    assert "A sends Ping(1) to B" in message  # the trace that led there
    assert "fix the handler" in message


def test_bad_start_handler_is_reported_without_a_trace() -> None:
    class NoStart(Node):
        pass

    with pytest.raises(ModelError, match=r"node 'X': NoStart.on_start is not written yet"):
        ActorSystem([NoStart("X")]).init_states()


def test_bad_effects_are_rejected_inside_the_handler() -> None:
    out = Out("A", frozenset({"A", "B"}))
    with pytest.raises(ModelError, match="not hashable"):
        out.send("B", ["list"])
    with pytest.raises(ModelError, match="'commit' or 'abort'"):
        out.decide("maybe")
    with pytest.raises(ModelError, match="unknown node"):
        out.set_timer("t", waiting_on=("Q",))


def test_bad_system_configuration() -> None:
    with pytest.raises(ModelError, match="unique"):
        ActorSystem([Ponger("A"), Ponger("A")])
    with pytest.raises(ModelError, match="unknown node"):
        ActorSystem([Ponger("A")], participants=["B"])
    with pytest.raises(ModelError, match="timing"):
        ActorSystem([Ponger("A")], timing="sometimes")
    with pytest.raises(ModelError, match="non-negative"):
        Faults(crashes=-1)


# -- symmetry ----------------------------------------------------------------------------------


def test_representative_is_the_same_for_every_member_of_an_orbit() -> None:
    system = build("2pc", 3, votes="any", crashes=1, symmetry=True)
    result = check(system, max_states=3000)
    seen = 0
    for state in list(_states(system, 400)):
        rep = system.representative(state)
        for mapping in system._renamings:
            assert system.representative(system.rename(state, mapping)) == rep
        seen += 1
    assert seen > 100
    assert result.distinct == 3000


def _states(system: ActorSystem, limit: int):
    frontier = list(system.init_states())
    seen = set(frontier)
    while frontier and len(seen) < limit:
        state = frontier.pop()
        yield state
        for action in system.actions(state):
            nxt = system.next_state(state, action)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)


def test_symmetry_reduction_explores_fewer_states_with_the_same_verdicts() -> None:
    plain = check(build("2pc", 3))
    reduced_system = build("2pc", 3, symmetry=True)
    reduced = check(reduced_system, symmetry=True)
    assert reduced.complete and plain.complete
    assert reduced.distinct < plain.distinct / 3
    always = lambda r: sorted(v.property for v in r.violations if v.kind == "always")  # noqa: E731
    assert always(reduced) == always(plain) == []


def _reachable_states(system: ActorSystem, limit: int = 3_000) -> list:
    seen = {system.init_states()[0]}
    frontier = list(seen)
    while frontier and len(seen) < limit:
        state = frontier.pop(0)
        for action in system.actions(state):
            nxt = system.next_state(state, action)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return sorted(seen, key=lambda s: describe_state(system, s))


@pytest.mark.parametrize(
    "make",
    [
        lambda: build("2pc", 2, crashes=1, recover=True, loss=True, duplicate=True),
        lambda: build("3pc", 2, crashes=1, partitions=1, rule=naive_rule),
        lambda: build("2pc", 2, crashes=1, cooperative=True, partitions=1),
        lambda: build("3pc", 2, crashes=2, timing="async", rule=naive_rule),
    ],
)
def test_successors_hook_agrees_with_actions_and_next_state(make) -> None:
    system = make()
    for state in _reachable_states(system):
        expected = [(a, system.next_state(state, a)) for a in system.actions(state)]
        expected = [(a, t) for a, t in expected if t is not None]
        got = system.successors(state)
        assert [a for a, _ in got] == [a for a, _ in expected]
        assert [t for _, t in got] == [t for _, t in expected]
        assert all(type(t) is type(state) for _, t in got)
