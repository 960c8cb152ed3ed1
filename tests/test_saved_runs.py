"""Saved runs: traces to JSON and back, replay against nodes, divergence, bad files, the
commands, the viewer and the counterexamples a failing check saves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dtcourse_instructor.reference import p2_threepc, p2_twopc_coordinator, p2_twopc_participant
from dtcourse_instructor.reference.p2_threepc import terminate

from dtcourse.cli import main
from dtcourse.commit import messages
from dtcourse.commit.protocols import build
from dtcourse.engine.checker import check
from dtcourse.engine.replay import Counterexample, replay
from dtcourse.engine.sim import Fault, chaos, simulate
from dtcourse.engine.trace import VERSION, Trace, TraceFileError

RULE = f"{p2_threepc.__file__}:terminate"


class Voter(p2_twopc_participant.Participant):
    """A participant defined outside the library, as a student's class would be."""


def ac1_counterexample() -> Trace:
    system = build("3pc", 2, partitions=1, rule=terminate)
    result = check(system, stop_at_first=True)
    [violation] = result.violations
    return system.trace_of(violation.path, {"property": violation.property})


def two_pc_run(
    participant: type[p2_twopc_participant.Participant] = p2_twopc_participant.Participant,
) -> Trace:
    nodes = [
        p2_twopc_coordinator.Coordinator("C", ["P1", "P2"]),
        *(participant(p, "C") for p in ("P1", "P2")),
    ]
    from dtcourse.commit import properties
    from dtcourse.engine.actors import ActorSystem

    system = ActorSystem(nodes, properties=properties.properties(), name="2pc")
    return simulate(system, seed=2).trace


# -- round trips -----------------------------------------------------------------------------------


def test_a_checker_counterexample_saves_loads_and_replays(tmp_path: Path) -> None:
    trace = ac1_counterexample()
    target = trace.save(tmp_path / "deep" / "ac1.json")
    loaded = Trace.load(target)
    assert loaded == trace
    data = json.loads(target.read_text())
    assert data["format"] == "dtcourse-trace" and data["version"] == VERSION
    assert data["about"]["source"] == "checker"
    result = replay(target)
    assert result.matches and result.steps == len(trace.steps)
    last = len(trace.steps) - 1
    assert result.violated() == {"AC1 agreement": last}
    assert dict(trace.steps[last].verdicts)["AC1 agreement"] is False
    assert "MATCHES" in result.summary() and "VIOLATES AC1 agreement" in result.summary()


@pytest.mark.parametrize("seed", range(12))
def test_simulated_runs_with_every_fault_replay_exactly(tmp_path: Path, seed: int) -> None:
    system = build("3pc", 3, rule=terminate)
    run = simulate(
        system,
        seed=seed,
        loss=0.15,
        duplicate=0.3,
        crash_probability=0.4,
        recover_after=3.0,
        faults=[Fault(2.0, "partition", groups=(("C",), ("P1", "P2", "P3"))), Fault(6.0, "heal")],
    )
    assert {step.action["kind"] for step in run.trace.steps[1:]} >= {"deliver", "partition"}
    loaded = Trace.load(run.trace.save(tmp_path / "run.json"))
    assert loaded == run.trace
    result = replay(loaded)
    assert result.matches, result.divergence
    assert [e.kind for e in result.trace.events] == [e.kind for e in run.trace.events]


def test_chaos_failures_replay_with_their_violation(tmp_path: Path) -> None:
    split = Fault(3.0, "partition", groups=(("C", "P1"), ("P2", "P3")))
    result = chaos(build("3pc", 3, rule=terminate), runs=40, seed=1, faults=[split])
    assert result.failures
    for failure in result.failures:
        loaded = Trace.load(failure.trace.save(tmp_path / f"{failure.seed}.json"))
        again = replay(loaded)
        assert again.matches and "AC1 agreement" in again.violated()
        assert loaded.about["seed"] == failure.seed


def test_step_views() -> None:
    trace = ac1_counterexample()
    assert trace.step_of(0) == 0 and trace.steps[0].label == "start"
    for number in range(len(trace.steps)):
        for event in trace.step_events(number):
            assert trace.step_of(event.index) == number


# -- divergence ------------------------------------------------------------------------------------


class Refuser(p2_twopc_participant.Participant):
    """Votes no: the change made after the run was saved."""

    def on_message(self, state, src, msg, out):
        if isinstance(msg, messages.Prepare) and state.phase == "working":
            out.vote("no")
            out.decide("abort")
            out.send(src, messages.Vote("no"))
            return p2_twopc_participant.ParticipantState("abort")
        return super().on_message(state, src, msg, out)


def _prepare_step(trace: Trace, node: str) -> int:
    return next(n for n, s in enumerate(trace.steps) if s.label == f"deliver Prepare C->{node}")


def test_a_changed_node_diverges_at_the_step_where_it_acts_differently() -> None:
    trace = two_pc_run()
    result = replay(trace, {"P2": Refuser("P2", "C")})
    assert not result.matches
    assert result.divergence.step == _prepare_step(trace, "P2")
    assert "Vote(yes)" in " ".join(result.divergence.expected)
    assert "Vote(no)" in " ".join(result.divergence.got)
    assert "diverges at step" in result.summary()
    assert replay(trace, {"P2": Voter("P2", "C")}).matches


def test_a_class_redefined_after_saving_is_the_one_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = two_pc_run(Voter)
    assert trace.system["nodes"][1]["class"].endswith(":Voter")
    saved = trace.save(tmp_path / "voter.json")
    assert replay(saved).matches
    # As a student re-running a notebook cell with a fix: the name now means new code.
    monkeypatch.setattr(sys.modules[__name__], "Voter", Refuser)
    result = replay(saved)
    assert result.divergence is not None
    first = min(_prepare_step(trace, "P1"), _prepare_step(trace, "P2"))
    assert result.divergence.step == first


def test_a_message_that_is_no_longer_sent_is_a_divergence(tmp_path: Path) -> None:
    trace = two_pc_run()
    data = trace.to_json()
    step = _prepare_step(trace, "P1") + 1
    abort = {"$dataclass": "dtcourse.commit.messages:Abort", "fields": {}}
    action = {"kind": "deliver", "src": "C", "dst": "P1", "msg": abort}
    data["steps"].insert(step, {**data["steps"][step], "action": action, "label": "deliver Abort"})
    result = replay(Trace.from_json(data))
    assert result.divergence.step == step and "not in flight" in result.divergence.reason


# -- bad files -------------------------------------------------------------------------------------


def _write(tmp_path: Path, data: object) -> Path:
    target = tmp_path / "bad.json"
    target.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return target


def _edited(edit) -> dict:
    data = ac1_counterexample().to_json()
    edit(data)
    return data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ({"format": "something else"}, "not a saved dtcourse trace"),
        (_edited(lambda d: d.update(version=VERSION + 1)), "upgrade dtcourse"),
        (_edited(lambda d: d.update(version=0)), "save the run again"),
        (_edited(lambda d: d["steps"][1]["action"].update(kind="teleport")), "unknown action"),
        (_edited(lambda d: d["events"][0].pop("kind")), "damaged trace file"),
        (_edited(lambda d: d["steps"][2].update(first=10_000)), "outside the trace"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_with_a_clear_message(tmp_path: Path, content, message) -> None:
    with pytest.raises(TraceFileError, match=message):
        replay(_write(tmp_path, content))


def test_a_missing_node_class_is_named(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["system"]["origin"] = None
        data["system"]["nodes"][1]["class"] = "no_such_module.anywhere:Participant"

    with pytest.raises(
        TraceFileError, match="node class no_such_module.anywhere:Participant of node P1"
    ):
        replay(_write(tmp_path, _edited(edit)))


def test_a_notebook_class_says_where_to_replay(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["system"]["origin"] = None
        data["system"]["nodes"][0]["class"] = "__main__:MyCoordinator"

    with pytest.raises(TraceFileError, match="defined in a notebook"):
        replay(_write(tmp_path, _edited(edit)))


def test_a_missing_file_and_wrong_nodes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match="cannot read"):
        replay(tmp_path / "nowhere.json")
    with pytest.raises(TraceFileError, match="same names"):
        replay(
            two_pc_run(),
            [
                p2_twopc_coordinator.Coordinator("C", ["P1"]),
                p2_twopc_participant.Participant("P1", "C"),
            ],
        )
    with pytest.raises(TraceFileError, match="no node named P9"):
        replay(two_pc_run(), {"P9": p2_twopc_participant.Participant("P9", "C")})


# -- the commands ----------------------------------------------------------------------------------


def test_check_saves_and_replay_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ac1.json"
    code = main(
        [
            "check",
            "3pc",
            "-n",
            "2",
            "--partition",
            "--quiet",
            "--rule",
            RULE,
            "--save-trace",
            str(target),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and f"dtcourse replay {target}" in out
    assert Trace.load(target).about["property"].startswith("AC1")
    assert main(["replay", str(target)]) == 0
    out = capsys.readouterr().out
    assert "MATCHES" in out and "VIOLATES AC1" in out and "sends" in out
    assert main(["replay", str(target), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matches"] is True and "AC1 agreement" in data["violated"]


def test_replay_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = two_pc_run()
    data = trace.to_json()
    events = data["events"]
    sent = next(e for e in events if e["kind"] == "send" and e["message"] == "Vote(yes)")
    sent["message"] = "Vote(maybe)"
    changed = _write(tmp_path, data)
    assert main(["replay", str(changed)]) == 1
    assert "diverges at step" in capsys.readouterr().out
    assert main(["replay", str(_write(tmp_path, "[]"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dtcourse: error:") and "not a saved dtcourse trace" in err


def test_replay_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = ac1_counterexample().save(tmp_path / "ac1.json")
    png = tmp_path / "ac1.png"
    assert main(["replay", str(saved), "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_simulate_saves_a_failing_chaos_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "chaos.json"
    argv = [
        "simulate",
        "3pc",
        "--runs",
        "40",
        "--partition",
        "C,P1|P2,P3@3",
        "--rule",
        RULE,
        "--save-trace",
        str(target),
    ]
    assert main(argv) == 1
    assert "replay it with" in capsys.readouterr().out
    assert main(["replay", str(target)]) == 0


def test_save_trace_is_refused_for_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "twophase", "--save-trace", "x.json"]) == 2
    assert "--save-trace" in capsys.readouterr().err


# -- the viewer and the checks ---------------------------------------------------------------------


def test_the_viewer_opens_a_saved_trace_with_verdicts(tmp_path: Path) -> None:
    from dtcourse.runtime.widgets import trace_viewer

    trace = ac1_counterexample()
    viewer = trace_viewer(trace.save(tmp_path / "ac1.json"))
    last = len(trace.events) - 1
    assert viewer.verdicts_at(last)["AC1 agreement"] is False
    assert viewer.verdicts_at(0)["AC1 agreement"] is True
    assert "AC1 agreement: VIOLATED" in viewer.verdicts.value
    viewer.slider.value = 0
    assert "AC1 agreement: holds" in viewer.verdicts.value


def test_the_viewer_replays_a_simulation_for_its_verdicts() -> None:
    from dtcourse.runtime.widgets import trace_viewer

    run = simulate(build("2pc", 2), seed=3, faults=[Fault(1.5, "crash", "C")])
    assert not any(step.verdicts for step in run.trace.steps)
    viewer = trace_viewer(run.trace)
    assert viewer.verdicts_at(len(run.trace.events) - 1)["AC1 agreement"] is True
    assert "after step" in viewer.verdicts.value


def test_a_failing_check_saves_its_counterexample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dtcourse.runtime import checks

    trace = ac1_counterexample()

    def agreement(obj: object) -> None:
        raise Counterexample("two nodes decided differently", trace)

    def plain(obj: object) -> None:
        raise AssertionError("wrong")

    exercise = checks.Exercise("p2.demo", (("agreement", agreement), ("plain", plain)))
    monkeypatch.setattr(checks, "_lookup", lambda exercise_id: exercise)
    monkeypatch.chdir(tmp_path)
    checks.check("p2.demo", None)
    out = capsys.readouterr().out
    saved = Path("counterexamples/p2.demo.agreement.json")
    assert saved.exists() and Trace.load(saved) == trace
    assert "counterexample saved to counterexamples/p2.demo.agreement.json" in out
    assert f"replay({str(saved)!r})" in out
    assert out.count("counterexample saved") == 1
    assert replay(saved).matches
