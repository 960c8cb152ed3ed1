"""``dtcourse check`` and ``dtcourse simulate``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dtcourse_instructor.reference import p2_threepc

from dtcourse.cli import main

# The instructor's rule, loaded the way a student's own file would be.
RULE = f"{p2_threepc.__file__}:terminate"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_check_spec_json_keys_and_success(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "twophase", "--participants", "3")
    assert code == 0
    for key in ("distinct", "generated", "depth", "seconds", "complete", "violations", "blocking"):
        assert key in data
    assert data["distinct"] == 288 and data["complete"] is True
    assert data["violations"] == [] and data["blocking"] is None


def test_check_3pc_partition_reports_the_violation_with_its_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data = run_json(capsys, "check", "3pc", "-n", "2", "--partition", "--rule", RULE)
    assert code == 1
    ac1 = next(v for v in data["violations"] if v["property"].startswith("AC1"))
    assert ac1["trace"][0]["action"] is None and len(ac1["trace"]) > 5
    kinds = {e["kind"] for e in ac1["events"]}
    assert {"partition", "decide"} <= kinds
    decisions = {e["detail"] for e in ac1["events"] if e["kind"] == "decide"}
    assert decisions == {"commit", "abort"}


def test_check_stops_at_the_first_violation_unless_all(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, first = run_json(capsys, "check", "3pc", "-n", "2", "--partition", "--rule", RULE)
    assert code == 1 and first["stopped_by"] == "violation" and first["complete"] is False
    assert [v["kind"] for v in first["violations"]] == ["always"]
    code, every = run_json(
        capsys, "check", "3pc", "-n", "2", "--partition", "--all", "--rule", RULE
    )
    assert code == 1 and every["complete"] is True and every["stopped_by"] is None
    assert {v["kind"] for v in every["violations"]} == {"always", "blocking"}
    assert every["distinct"] > first["distinct"]


def test_check_text_says_how_to_search_on(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "3pc", "-n", "2", "--partition", "--rule", RULE])
    captured = capsys.readouterr()
    assert code == 1 and "--all keeps searching" in captured.out
    assert "states/s" in captured.err and "GB" in captured.err


def test_check_3pc_with_a_crash_and_a_partition_answers_early(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data = run_json(
        capsys, "check", "3pc", "-n", "3", "--crashes", "1", "--partition", "--seed", "1",
        "--rule", RULE,
    )
    assert code == 1 and data["random_runs"] > 0
    [ac1] = data["violations"]
    assert ac1["property"].startswith("AC1") and ac1["shortest"] is False
    assert data["distinct"] < 300_000


def test_check_memory_bound_names_max_states(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "twophase", "-n", "5", "--max-memory", "0.001", "--quiet"])
    out = capsys.readouterr().out
    assert code == 3 and "memory limit" in out and "--max-states" in out
    assert "OK" not in out


def test_check_simulate_finds_the_3pc_partition_bug_and_saves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "random.json"
    argv = ["check", "3pc", "-n", "3", "--crashes", "1", "--partition", "--simulate", "500",
            "--rule", RULE]
    code = main([*argv, "--depth", "40", "--seed", "1", "--save-trace", str(target)])
    out = capsys.readouterr().out
    assert code == 1 and "VIOLATED always 'AC1 agreement'" in out and "shortened" in out
    assert "sequence of events" in out and "dtcourse replay" in out
    assert main(["replay", str(target)]) == 0


def test_check_simulate_says_a_clean_result_is_no_proof(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data = run_json(capsys, "check", "2pc", "-n", "2", "--simulate", "50", "--seed", "4")
    assert code == 3 and data["proof"] is False and data["ok"] is True
    assert data["runs"] == 50 and "non-blocking" in data["unchecked"]
    assert main(["check", "2pc", "-n", "2", "--simulate", "50", "--seed", "4"]) == 3
    assert "NOT a proof" in capsys.readouterr().out


def test_check_2pc_finds_blocking_witness(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "2pc", "-n", "2", "--crashes", "1", "--cooperative")
    assert code == 1
    assert data["blocking"] is not None
    assert data["blocking_events"][-1]["kind"] == "crash"
    assert not [v for v in data["violations"] if v["kind"] == "always"]


def test_check_3pc_under_its_textbook_assumption_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "3pc", "-n", "2", "--crashes", "1", "--quiet", "--rule", RULE])
    out = capsys.readouterr().out
    assert code == 0
    assert "perfect timing" in out and "OK: every property holds" in out


def test_check_async_flag_changes_the_3pc_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "3pc", "-n", "2", "--async", "--quiet", "--rule", RULE])
    out = capsys.readouterr().out
    assert code == 1 and "AC1" in out and "sequence of events" in out


def test_check_incomplete_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "2pc", "-n", "3", "--max-states", "50")
    assert code == 3
    assert data["complete"] is False and "50" in data["reason"]


def test_check_symmetry_runs_without_blocking_property(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", "2pc", "-n", "3", "--symmetry", "--votes", "yes")
    assert data["symmetry"] is True
    assert not [v for v in data["violations"] if v["kind"] == "always"]
    assert code == 0 and data["complete"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "tcommit", "--loss"], "only for the protocols"),
        (["check", "2pc", "--participants", "0"], "at least 1"),
        (["check", "2pc", "--recover"], "crash budget"),
        (["check", "2pc", "--max-states", "0"], "positive"),
        (["check", "2pc", "--max-memory", "0"], "--max-memory"),
        (["check", "2pc", "--all", "--shortest"], "--shortest"),
        (["check", "2pc", "--simulate", "0"], "--simulate"),
        (["check", "2pc", "--simulate", "5", "--depth", "0"], "--depth"),
        (["check", "2pc", "--simulate", "5", "--symmetry"], "not for --simulate"),
        (["simulate", "2pc", "--crash", "P1"], "NODE@TIME"),
        (["simulate", "2pc", "--crash", "X@1"], "unknown node 'X'"),
        (["simulate", "2pc", "--loss", "2"], "probability"),
        (["simulate", "2pc", "--latency", "normal:1"], "--latency"),
        (["simulate", "2pc", "--runs", "0"], "--runs"),
        (["check", "3pc"], "--rule FILE.py:NAME"),
        (["simulate", "3pc"], "termination rule"),
        (["check", "2pc", "--rule", "naive"], "2PC has none"),
        (["check", "tcommit", "--rule", "naive"], "only for the protocols"),
        (["check", "3pc", "--rule", "terminate"], "FILE.py:NAME"),
        (["check", "3pc", "--rule", "no_such_file.py:terminate"], "no file"),
        (["check", "3pc", "--rule", f"{p2_threepc.__file__}:nothing"], "no function 'nothing'"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("dtcourse: error:")


def test_check_help_mentions_exit_status_3(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "3 the search stopped" in capsys.readouterr().out


def test_simulate_json_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "simulate", "2pc", "--participants", "3", "--seed", "4")
    assert code == 0
    metrics = data["metrics"]
    # Presumed nothing with acknowledgements: 4 messages per participant, and the
    # coordinator forces only its commit record.
    assert metrics["messages"] == {"Ack": 3, "Commit": 3, "Prepare": 3, "Vote": 3}
    assert metrics["critical_path_hops"] == 3
    assert set(metrics["decision_times"]) == {"C", "P1", "P2", "P3"}
    assert metrics["forced_writes"]["C"] == 1


def test_simulate_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "3pc", "--seed", "8", "--loss", "0.3", "--crash", "C@2", "--trace",
            "--rule", RULE]
    main(argv)
    first = capsys.readouterr().out
    main(argv)
    assert capsys.readouterr().out == first and "C CRASHES" in first


def test_simulate_chaos_with_partition_fails_3pc(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(
        capsys, "simulate", "3pc", "--runs", "40", "--partition", "C,P1|P2,P3@3", "--rule", RULE
    )
    assert code == 1
    assert data["runs"] == 40 and data["failing_seeds"]


def test_check_3pc_with_the_naive_rule_breaks_agreement_after_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", "3pc", "-n", "2", "--crashes", "1", "--quiet", "--rule", "naive"])
    out = capsys.readouterr().out
    assert code == 1 and "AC1" in out and "C CRASHES" in out


def test_simulate_chaos_keeps_2pc_atomic(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "2pc",
            "--runs",
            "100",
            "--loss",
            "0.2",
            "--crash-probability",
            "0.3",
            "--recover-after",
            "5",
        ]
    )
    assert code == 0 and "atomicity held in every run" in capsys.readouterr().out


def test_simulate_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "run.png"
    code = main(
        [
            "simulate",
            "2pc",
            "--seed",
            "1",
            "--crash",
            "C@1.5",
            "--horizon",
            "15",
            "--loss",
            "0.3",
            "--plot",
            str(target),
        ]
    )
    assert code == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sequence diagram written" in capsys.readouterr().out
