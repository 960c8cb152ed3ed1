"""``dtcourse costs``: the cost table for every variant and outcome, as text or JSON."""

from __future__ import annotations

import json

import pytest

from dtcourse.cli import main
from dtcourse.commit import costs


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_lists_every_variant_and_outcome(capsys):
    code, out, err = run(capsys, "costs", "--participants", "4")
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:2] == ["variant", "outcome"]
    pn_commit = next(
        line for line in out.splitlines() if line.startswith("presumed nothing  commit")
    )
    assert pn_commit.split()[-5:] == ["4", "16", "9", "1", "3"]  # 4n messages, 2n + 1 forced
    for variant in ("presumed abort", "presumed commit", "read-only", "co-located", "paxos commit"):
        assert variant in out
    assert "one-phase" not in out  # a single participant only
    assert "flat tree" in out
    assert "presumed abort, read-only, co-located: counted when the course was built" in out
    pa_abort = next(line for line in out.splitlines() if line.startswith("presumed abort    abort"))
    assert pa_abort.split()[-5:] == ["4", "11", "3", "3", "3"]  # 3n - 1, n - 1 forced and lazy


def test_json_matches_the_library(capsys):
    code, out, _ = run(capsys, "costs", "-n", "1", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {(r["variant"], r["outcome"]) for r in rows} >= {
        ("one-phase", "commit"),
        ("one-phase", "abort"),
    }
    pc = next(r for r in rows if (r["variant"], r["outcome"]) == ("presumed commit", "commit"))
    measured = costs.measure("presumed commit", 1)
    assert (pc["messages"], pc["forced_writes"], pc["delays"]) == (
        measured.messages,
        measured.forced_writes,
        measured.delays,
    )


@pytest.mark.parametrize("value", ["0", "x", "51", "-3"])
def test_bad_participant_counts_are_one_line_errors(capsys, value):
    code, out, err = run(capsys, "costs", "--participants", value)
    assert code == 2 and out == ""
    assert err.startswith("dtcourse: error: --participants takes a whole number from 1 to 50")
    assert "Traceback" not in err


def test_every_recorded_size_is_shown(capsys):
    code, out, _ = run(capsys, "costs", "-n", "50", "--json")
    rows = json.loads(out)
    pa = next(r for r in rows if (r["variant"], r["outcome"]) == ("presumed abort", "commit"))
    assert (code, pa["messages"], pa["forced_writes"]) == (0, 200, 101)
