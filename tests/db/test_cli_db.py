"""The bank, indoubt and resolve commands, end to end through ``dtcourse.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dtcourse_instructor.reference import p2_recovery

from dtcourse.cli import main
from dtcourse.db import Coordinator, DecisionLog, SqliteResourceManager
from dtcourse.db.bank import Transfer, create_bank, transfer_work

# The instructor's step, loaded the way a student's own file would be.
STEP = f"{p2_recovery.__file__}:recovery_step"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bank_prints_totals_and_throughput(capsys, bank_dir):
    code, out, err = run(capsys, "bank", "--workdir", str(bank_dir), "--transfers", "20",
                         "--participants", "2", "--accounts", "6")
    assert code == 0, err
    assert "total before     6000" in out and "total after      6000" in out
    assert "committed        20" in out and "transfers/second" in out
    assert "forced writes    5.00 per transfer" in out


def test_bank_with_crashes_as_json(capsys, bank_dir):
    code, out, err = run(capsys, "bank", "--workdir", str(bank_dir), "--transfers", "30",
                         "--crash-every", "5", "--seed", "4", "--json", "--recovery", STEP)
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["crashes"] > 0 and report["transfers"] >= 30
    assert report["total_before"] == report["total_after"] == 12000
    assert report["committed"] + report["aborted"] == report["transfers"]


def test_bank_with_crashes_recovers_with_the_given_step(capsys, bank_dir, tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from dtcourse.db import Resolve\n\n"
        "def abort_all(log, in_doubt):\n"
        "    return [Resolve(d.participant, d.gtrid, False) for d in in_doubt]\n"
    )
    code, out, err = run(capsys, "bank", "--workdir", str(bank_dir), "--transfers", "40",
                         "--crash-every", "4", "--recovery", f"{wrong}:abort_all")
    assert code == 1, err
    assert "VIOLATION" in out and "acknowledged as committed but is not" in out


def test_bank_help_says_where_the_recovery_step_comes_from(capsys):
    with pytest.raises(SystemExit):
        main(["bank", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--recovery FILE.py:NAME" in text and "exercise p2.recovery" in text
    assert "dtcourse resolve" in text


def test_bank_run_twice_in_one_folder_continues_and_says_so(capsys, bank_dir):
    argv = ["bank", "--backend", "sqlite", "--participants", "3", "--transfers", "40",
            "--crash-every", "10", "--seed", "7", "--workdir", str(bank_dir), "--recovery", STEP]
    code, out, err = run(capsys, *argv)
    assert code == 0, out + err
    assert out.startswith(f"New bank in {bank_dir}\n")
    first_ids = out.split("global transaction ids ")[1].split(")")[0]
    code, out, err = run(capsys, *argv)
    assert code == 0, out + err
    assert out.startswith(f"Continuing the bank in {bank_dir} (12 accounts, total 12000)")
    assert "VIOLATION" not in out
    assert out.split("global transaction ids ")[1].split(")")[0] != first_ids
    code, out, err = run(capsys, *argv, "--fresh")
    assert code == 0, out + err
    assert out.startswith(f"New bank in {bank_dir}, replacing the one there (--fresh)")


def leave_in_doubt(folder: Path, gtrid: str, decided: bool, source: int = 0) -> None:
    """A coordinator that dies after both prepares (or after its decision)."""
    rms = [SqliteResourceManager(folder / f"p{i}.db", f"p{i}") for i in (1, 2)]
    log = DecisionLog(folder / "coordinator.db")
    if not (folder / "ready").exists():
        create_bank(rms, accounts=4, log=log)
        (folder / "ready").touch()
    target = "after-decision" if decided else "after-prepare:2"

    def crash(point: str) -> None:
        if point == target:
            raise KeyboardInterrupt  # stands for the process dying here

    with pytest.raises(KeyboardInterrupt):
        transfer = Transfer(source, source + 1, 7)
        Coordinator(log, rms, crash=crash).run(gtrid, transfer_work(transfer, 2))
    for rm in rms:
        rm.close()
    log.close()


def test_indoubt_lists_branches_with_the_logged_decision(capsys, bank_dir):
    leave_in_doubt(bank_dir, "undecided", decided=False)
    leave_in_doubt(bank_dir, "decided", decided=True, source=2)
    code, out, _ = run(capsys, "indoubt", "--workdir", str(bank_dir), "--json")
    assert code == 0
    rows = {(r["gtrid"], r["participant"]): r["log"] for r in json.loads(out)}
    assert rows == {("undecided", "p1"): "abort", ("undecided", "p2"): "abort",
                    ("decided", "p1"): "commit", ("decided", "p2"): "commit"}
    code, out, _ = run(capsys, "indoubt", "--workdir", str(bank_dir))
    assert "undecided" in out and "GTRID" in out


def test_resolve_refuses_to_contradict_the_log_unless_forced(capsys, bank_dir):
    leave_in_doubt(bank_dir, "undecided", decided=False)
    code, out, err = run(capsys, "resolve", "undecided", "--commit", "--workdir", str(bank_dir))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "log says abort" in err and "--force" in err
    code, out, err = run(capsys, "resolve", "undecided", "--abort", "--workdir", str(bank_dir))
    assert code == 0 and "aborted undecided at p1, p2" in out
    assert "heuristic decision" in err
    code, out, _ = run(capsys, "indoubt", "--workdir", str(bank_dir))
    assert "no in-doubt transactions" in out


def test_resolve_force_overrides_a_commit_record(capsys, bank_dir):
    leave_in_doubt(bank_dir, "decided", decided=True)
    code, _, err = run(capsys, "resolve", "decided", "--abort", "--workdir", str(bank_dir))
    assert code == 2 and "log says commit" in err
    code, out, err = run(capsys, "resolve", "decided", "--abort", "--force",
                         "--workdir", str(bank_dir))
    assert code == 0 and "aborted decided" in out and "heuristic" in err
    rm = SqliteResourceManager(bank_dir / "p1.db")
    assert rm.in_doubt() == [] and rm.balances()[0] == 1000
    rm.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["resolve", "nobody", "--commit"], "not in doubt"),
        (["indoubt"], "no SQLite participants"),
        (["bank", "--participants", "0"], "--participants"),
        (["bank", "--accounts", "1"], "--accounts"),
        (["bank", "--crash-every", "-1"], "--crash-every"),
        (["bank", "--crash-every", "2"], "--recovery FILE.py:NAME"),
        (["bank", "--crash-every", "2", "--recovery", "step"], "FILE.py:NAME"),
        (["bank", "--crash-every", "2", "--recovery", "missing.py:step"], "no file"),
        (["bank", "--backend", "sqlite", "--dsn", "dbname=x"], "--dsn"),
        (["indoubt", "--backend", "postgres"], "--dsn"),
    ],
)
def test_errors_are_one_line_without_traceback(capsys, tmp_path, argv, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    if argv[0] == "resolve":
        leave_in_doubt(empty, "other", decided=False)
    code, _, err = run(capsys, *argv, "--workdir", str(empty))
    assert code == 2
    assert err.startswith("dtcourse: error:") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err


def test_bank_postgres_without_binaries_says_what_to_install(capsys, bank_dir, monkeypatch):
    monkeypatch.setattr("dtcourse.db.pgcluster.find_pg_bin", lambda: None)
    code, _, err = run(capsys, "bank", "--backend", "postgres", "--workdir", str(bank_dir))
    assert code == 2 and "postgresql" in err and "apt-get install" in err


def test_bank_postgres_starts_its_own_cluster(capsys, bank_dir, pg_cluster):
    code, out, err = run(capsys, "bank", "--backend", "postgres", "--workdir", str(bank_dir),
                         "--transfers", "20", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["committed"] == 20 and report["total_after"] == report["total_before"]


def test_bank_indoubt_resolve_against_postgres_dsns(capsys, bank_dir, pg_dsns):
    dsns = pg_dsns(2)
    dsn_args = [arg for dsn in dsns for arg in ("--dsn", dsn)]
    code, out, err = run(capsys, "bank", *dsn_args, "--workdir", str(bank_dir),
                         "--transfers", "10", "--json")
    assert code == 0, err
    assert json.loads(out)["participants"] == 2
    from dtcourse.db.postgres_rm import PostgresResourceManager

    rms = [PostgresResourceManager(dsn, f"p{i + 1}") for i, dsn in enumerate(dsns)]
    log = DecisionLog(bank_dir / "coordinator.db")

    def crash(point: str) -> None:
        if point == "after-prepare:2":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Coordinator(log, rms, crash=crash).run("pg-doubt", transfer_work(Transfer(0, 1, 3), 2))
    for rm in rms:
        rm.close()
    log.close()
    code, out, _ = run(capsys, "indoubt", *dsn_args, "--workdir", str(bank_dir), "--json")
    assert {(r["gtrid"], r["log"]) for r in json.loads(out)} == {("pg-doubt", "abort")}
    code, out, err = run(capsys, "resolve", "pg-doubt", "--abort", *dsn_args,
                         "--workdir", str(bank_dir))
    assert code == 0 and "aborted pg-doubt at p1, p2" in out and "heuristic" in err
