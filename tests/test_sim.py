"""The simulator: determinism, metrics, faults, chaos, and the Trace it returns."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.commit.protocols import build
from dtcourse.engine.actors import ActorSystem, Node
from dtcourse.engine.sim import Fault, Latency, chaos, simulate
from dtcourse.engine.trace import Event, Trace
from dtcourse.errors import ModelError


def test_same_seed_same_trace_different_seed_different_timing() -> None:
    system = build("2pc", 3, votes="any")
    options = {"loss": 0.2, "crash_probability": 0.5, "recover_after": 4.0}
    first = simulate(system, seed=11, **options)
    again = simulate(build("2pc", 3, votes="any"), seed=11, **options)
    assert first.trace == again.trace and first.metrics == again.metrics
    other = simulate(system, seed=12, **options)
    assert other.trace != first.trace


SCRIPT = """
from dtcourse.commit.protocols import build
from dtcourse.engine.sim import simulate
from dtcourse.engine.trace_text import text_sequence
from dtcourse_instructor.reference.p2_threepc import terminate
r = simulate(build("3pc", 3, votes="any", rule=terminate), seed=5, loss=0.3, crash_probability=0.5,
             recover_after=3.0)
print(text_sequence(r.trace))
"""


def test_traces_do_not_depend_on_the_hash_seed() -> None:
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


def test_2pc_failure_free_metrics() -> None:
    from dtcourse.commit.costs import measure

    result = simulate(build("2pc", 3, votes="yes"), seed=1)
    metrics = result.metrics
    # The textbook's presumed-nothing accounting (the Phase 2 reading's table): 4n messages,
    # 2n + 1 forced writes (prepared and commit at each participant, commit at the
    # coordinator), one lazy end record; three message delays (PREPARE, YES, COMMIT) until
    # the last participant decides, two until the coordinator does.
    assert metrics.messages == {"Ack": 3, "Commit": 3, "Prepare": 3, "Vote": 3}
    assert metrics.forced_writes == {"C": 1, "P1": 2, "P2": 2, "P3": 2}
    assert metrics.lazy_writes == {"C": 1}
    assert metrics.critical_path_hops == 3
    assert metrics.decision_hops["C"] == 2
    assert set(result.decisions.values()) == {"commit"} and len(result.decisions) == 4
    assert all(t > 0 for t in metrics.decision_times.values())
    assert result.ok
    # The same counts as Phase 3's cost table, which its tests hold against a table
    # derived by hand from the protocol rules.
    cost = measure("presumed nothing", 3)
    assert (cost.messages, cost.forced_writes, cost.lazy_writes, cost.delays) == (12, 7, 1, 3)


def test_3pc_takes_two_more_hops_than_2pc() -> None:
    result = simulate(build("3pc", 3, votes="yes", rule=terminate), seed=1)
    assert result.metrics.critical_path_hops == 5
    assert result.metrics.messages["PreCommit"] == 3
    assert result.metrics.messages["Ack"] == 3


def test_constant_latency_gives_exact_decision_times() -> None:
    result = simulate(build("2pc", 2, votes="yes"), seed=0, latency=Latency("constant", 1, 1))
    assert result.metrics.decision_times == {"C": 2.0, "P1": 3.0, "P2": 3.0}


def test_scheduled_crash_and_recovery_show_in_the_trace() -> None:
    system = build("2pc", 2, votes="yes")
    result = simulate(
        system,
        seed=3,
        latency=Latency("constant", 1, 1),
        faults=[Fault(1.5, "crash", "C"), Fault(8.0, "recover", "C")],
    )
    kinds = [(e.kind, e.node, e.time) for e in result.trace.events]
    assert ("crash", "C", 1.5) in kinds and ("recover", "C", 8.0) in kinds
    drops = [e for e in result.trace.events if e.kind == "drop"]
    assert drops and all(e.detail == "receiver down" for e in drops)
    # The votes arrive at t=2, after the crash, and are lost. Presumed nothing writes no
    # record before the decision, so the recovered coordinator knows nothing of the
    # transaction and answers the participants' inquiries with abort; it decides nothing.
    assert result.decisions == {"P1": "abort", "P2": "abort"}


def test_total_loss_drops_every_message() -> None:
    result = simulate(build("2pc", 2, votes="yes"), seed=0, loss=1.0, horizon=20)
    sends = result.trace.of_kind("send")
    drops = result.trace.of_kind("drop")
    assert sends and len(drops) == len(sends)
    assert all(result.trace.send_of(d).kind == "send" for d in drops)  # type: ignore[union-attr]
    assert result.trace.of_kind("deliver") == ()


def test_chaos_keeps_2pc_atomic_over_many_faulty_schedules() -> None:
    result = chaos(lambda: build("2pc", 3), runs=300, seed=1)
    assert result.ok and result.runs == 300
    assert result.outcomes.get("commit", 0) > 0 and result.outcomes.get("abort", 0) > 0


def test_chaos_finds_3pc_partition_violations_with_traces() -> None:
    split = Fault(3.0, "partition", groups=(("C", "P1"), ("P2", "P3")))
    result = chaos(build("3pc", 3, votes="yes", rule=terminate), runs=50, seed=2, faults=[split])
    assert not result.ok
    bad = result.failures[0]
    assert "AC1 agreement" in bad.violations
    assert set(bad.trace.decisions().values()) == {"commit", "abort"}
    rerun = simulate(build("3pc", 3, votes="yes", rule=terminate), seed=bad.seed, faults=[split])
    assert rerun.trace == bad.trace


def test_trace_to_frame_and_decisions() -> None:
    trace = simulate(build("2pc", 2, votes="yes"), seed=4).trace
    frame = trace.to_frame()
    assert list(frame.columns) == [
        "index",
        "time",
        "kind",
        "node",
        "peer",
        "message",
        "detail",
        "forced",
        "send_index",
    ]
    assert len(frame) == len(trace.events)
    assert frame["index"].tolist() == list(range(len(trace.events)))
    delivered = frame[frame["kind"] == "deliver"]
    assert (frame.loc[delivered["send_index"].astype(int), "kind"] == "send").all()
    assert trace.decisions() == {"C": "commit", "P1": "commit", "P2": "commit"}
    empty = Trace(("A",), ()).to_frame()
    assert len(empty) == 0 and "send_index" in empty.columns
    assert Trace(("A",), (Event(0, 0.0, "decide", "A", detail="abort"),)).decisions() == {
        "A": "abort"
    }


def test_bad_simulation_input_is_refused_clearly() -> None:
    system = build("2pc", 2)
    with pytest.raises(ModelError, match="loss must be a probability"):
        simulate(system, loss=1.5)
    with pytest.raises(ModelError, match="unknown node 'X'"):
        simulate(system, faults=[Fault(1.0, "crash", "X")])
    with pytest.raises(ModelError, match="split all nodes"):
        simulate(system, faults=[Fault(1.0, "partition", groups=(("C",), ("P1",)))])
    with pytest.raises(ModelError, match="unknown fault kind 'crsh'"):
        simulate(system, faults=[Fault(1.0, "crsh", "P1")])  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="runs must be"):
        chaos(system, runs=0)
    with pytest.raises(ModelError, match="latency"):
        Latency("gaussian")


def test_a_failing_handler_in_a_simulation_names_the_seed_and_the_run() -> None:
    class Grumpy(Node):
        def on_start(self, out):  # type: ignore[no-untyped-def]
            if self.name == "A":
                out.send("B", "hello")
            return 0

        def on_message(self, state, src, msg, out):  # type: ignore[no-untyped-def]
            raise KeyError("oops")

    system = ActorSystem([Grumpy("A"), Grumpy("B")])
    with pytest.raises(ModelError, match=r"node 'B', on_message on message hello from A.*seed 9"):
        simulate(system, seed=9)
