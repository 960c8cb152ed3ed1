"""Simulated costs equal a table derived by hand from the protocol rules.

The expected numbers below follow from Mohan, Lindsay and Obermarck (1986) for the 2PC
variants and from Gray and Lamport (2006) for Paxos Commit, under the conventions stated
in ``dtcourse.commit.costs``. They are written out independently of the simulator, and the
classic variants are also checked against the closed forms the optimization reading
derives (4n messages and 2n + 1 forced writes for a presumed-nothing commit, and so on).
"""

from __future__ import annotations

import json

import pytest
from dtcourse_instructor.casedata import render_package_data
from dtcourse_instructor.reference import p3_presumed_abort as reference

from dtcourse.commit import costs
from dtcourse.commit.protocols.catalog import build
from dtcourse.errors import DTCourseError, ModelError

SIZES = (1, 2, 3, 5, 8)


def expected(variant: str, n: int, outcome: str) -> tuple[int, int, int, int]:
    """(messages, forced writes, lazy writes, message delays) of one transaction."""
    yes = n - 1  # in an abort, the last participant votes no
    match variant, outcome:
        case "presumed nothing", "commit":
            # PREPARE, YES, COMMIT, ACK per participant; prepared and commit forced at each,
            # commit forced at the coordinator; end lazy. Participants decide after 3 delays.
            return 4 * n, 2 * n + 1, 1, 3
        case "presumed nothing", "abort":
            # n PREPARE, n votes, ABORT and ACK to the yes voters; prepared and abort
            # forced at each yes voter, abort forced at the coordinator; end lazy.
            return 2 * n + 2 * yes, 2 * yes + 1, 1, 3 if yes else 2
        case "presumed abort", "commit":
            return 4 * n, 2 * n + 1, 1, 3
        case "presumed abort", "abort":
            # no ACKs; only the prepared records are forced; the yes voters write their
            # abort lazily and the coordinator writes none (recovery presumes it).
            return 2 * n + yes, yes, yes, 3 if yes else 2
        case "presumed commit", "commit":
            # collecting record first; no ACK; participants write commit lazily.
            return 3 * n, n + 2, n, 3
        case "presumed commit", "abort":
            return 2 * n + 2 * yes, 2 * yes + 2, 1, 3 if yes else 2
        case "read-only", "commit":
            # every participant answers READ and leaves: no second phase, no log record.
            return 2 * n, 0, 0, 2
        case "co-located", "commit":
            # n - 1 remote participants; the local one shares the coordinator's commit record.
            remote = n - 1
            return 4 * remote, 2 * remote + 1, 1, 3 if remote else 0
        case "co-located", "abort":
            remote_yes = n - 2
            return 2 * (n - 1) + remote_yes, remote_yes, remote_yes, 3 if remote_yes else 2
        case "one-phase", "commit":
            return 2, 1, 0, 2
        case "one-phase", "abort":
            return 2, 0, 0, 2
        case "paxos commit", "commit":
            # F = 1: PREPARE to n, Phase2a from each to 3 acceptors, one bundled Phase2b from
            # each of the 2 remote acceptors, COMMIT to n. Forced: n prepared, 3 acceptor
            # records; the leader writes nothing. Delays: PREPARE, 2a, 2b, COMMIT.
            return n + 3 * n + 2 + n, n + 3, n, 4
        case "paxos commit", "abort":
            return n + 3 * n + 2 + yes, yes + 3, yes, 4 if yes else 3
    raise AssertionError(f"no expected cost for {variant} {outcome}")


CASES = [
    (variant, outcome, n)
    for variant in costs.variants()
    for outcome in costs.outcomes(variant)
    for n in costs.sizes(variant, SIZES)
    if not (variant == "co-located" and outcome == "abort" and n < 2)
]


@pytest.mark.parametrize(("variant", "outcome", "n"), CASES)
def test_simulated_costs_equal_the_rules(variant, outcome, n):
    cost = costs.measure(variant, n, outcome)
    got = (cost.messages, cost.forced_writes, cost.lazy_writes, cost.delays)
    assert got == expected(variant, n, outcome)
    assert cost.decided == outcome


@pytest.mark.parametrize("n", range(1, 9))
def test_simulated_costs_match_the_readings_closed_forms(n):
    def counts(variant, outcome="commit", **options):
        cost = costs.measure(variant, n, outcome, **options)
        return cost.messages, cost.forced_writes, cost.lazy_writes

    assert counts("presumed nothing")[:2] == (4 * n, 2 * n + 1)
    assert counts("presumed nothing", "abort")[:2] == (4 * n - 2, 2 * n - 1)
    assert counts("presumed abort")[:2] == (4 * n, 2 * n + 1)
    assert counts("presumed abort", "abort")[:2] == (3 * n - 1, n - 1)
    assert counts("presumed commit") == (3 * n, n + 2, n)
    assert counts("read-only") == (2 * n, 0, 0)


def test_presumed_commit_trades_commit_savings_for_abort_costs():
    for n in range(2, 9):
        pa, pc = costs.measure("presumed abort", n), costs.measure("presumed commit", n)
        assert pa.messages - pc.messages == n
        assert pa.forced_writes - pc.forced_writes == n - 1
        pc_abort = costs.measure("presumed commit", n, "abort")
        assert pc_abort.forced_writes > costs.measure("presumed abort", n, "abort").forced_writes


def test_the_papers_headline_presumed_nothing_commit_is_4n_and_2n_plus_1():
    for n in (2, 4, 7):
        cost = costs.measure("presumed nothing", n)
        assert (cost.messages, cost.forced_writes) == (4 * n, 2 * n + 1)


@pytest.mark.parametrize(("n", "k"), [(2, 1), (4, 2), (5, 4)])
def test_some_read_only_participants_under_presumed_abort(n, k):
    cost = costs.measure("presumed abort", n, read_only=k)
    assert (cost.messages, cost.forced_writes) == (2 * k + 4 * (n - k), 2 * (n - k) + 1)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_paxos_commit_with_no_tolerated_failure_costs_what_2pc_costs(n):
    """F = 0: one acceptor on the coordinator's node. Gray and Lamport's 2PC without ACKs:
    3n messages, n + 1 forced writes, 3 delays; presumed commit, the 2PC without ACKs on
    commits, costs the same but for its collecting record."""
    paxos = costs.measure("paxos commit", n, f=0)
    assert (paxos.messages, paxos.forced_writes, paxos.delays) == (3 * n, n + 1, 3)
    pc = costs.measure("presumed commit", n)
    assert (paxos.messages, paxos.forced_writes + 1) == (pc.messages, pc.forced_writes)


def test_paxos_commit_pays_one_delay_more_than_2pc():
    two_pc = costs.measure("presumed abort", 3)
    paxos = costs.measure("paxos commit", 3)
    assert paxos.delays == two_pc.delays + 1


def test_the_table_has_every_variant_and_outcome_with_the_plot_columns():
    frame = costs.cost_table(range(1, 4))
    assert set(frame["variant"]) == set(costs.variants())
    assert {"messages", "forced_writes", "lazy_writes", "delays"} <= set(frame.columns)
    one_phase = frame[frame["variant"] == "one-phase"]
    assert list(one_phase["participants"]) == [1, 1]
    assert len(frame[(frame["variant"] == "read-only") & (frame["outcome"] == "abort")]) == 0


def test_writes_by_node_shows_where_the_forced_writes_land():
    frame = costs.writes_by_node("presumed commit", 2).set_index("node")
    assert frame.loc["C", "forced_writes"] == 2  # collecting and commit
    assert frame.loc["P1", "forced_writes"] == 1 and frame.loc["P1", "lazy_writes"] == 1
    assert frame["forced_writes"].sum() == costs.measure("presumed commit", 2).forced_writes


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: costs.measure("presumed maybe", 2), "unknown variant"),
        (lambda: costs.measure("presumed abort", 0), "at least 1"),
        (lambda: costs.measure("read-only", 2, "abort"), "nothing to abort"),
        (lambda: costs.measure("presumed abort", 2, "maybe"), "unknown outcome"),
        (lambda: costs.measure("presumed commit", 3, read_only=1), "presumed abort commits"),
        (lambda: costs.measure("presumed abort", 3, read_only=3), "read_only must be 0 to 2"),
        (lambda: costs.measure("one-phase", 3), "single participant"),
        (lambda: costs.measure("co-located", 1, "abort"), "remote participant"),
    ],
)
def test_bad_requests_say_what_to_do(call, match):
    with pytest.raises(DTCourseError, match=match):
        call()


# -- counting node classes of one's own --------------------------------------------------


def _variant_classes(presumption: str):
    """The catalogue's R* nodes behind the constructors ``run_nodes`` calls (for presumed
    abort, the instructor's reference, which the student package does not ship)."""
    from dtcourse.commit.protocols import variants

    if presumption == "abort":
        return reference.PresumedAbortCoordinator, reference.PresumedAbortParticipant

    def coordinator(name, participants):
        return variants.Coordinator(name, participants, presumption)

    def participant(name, coordinator, vote):
        return variants.Participant(name, coordinator, presumption, vote)

    return coordinator, participant


@pytest.mark.parametrize("presumption", ["nothing", "abort", "commit"])
@pytest.mark.parametrize("outcome", ["commit", "abort"])
@pytest.mark.parametrize("n", [1, 3])
def test_measure_nodes_counts_classes_as_measure_counts_the_variant(presumption, outcome, n):
    mine = costs.measure_nodes(*_variant_classes(presumption), n, outcome, label="mine")
    table = costs.measure(f"presumed {presumption}", n, outcome)
    assert mine.variant == "mine" and mine.decided == outcome
    assert (mine.messages, mine.forced_writes, mine.lazy_writes, mine.delays) == (
        table.messages,
        table.forced_writes,
        table.lazy_writes,
        table.delays,
    )


def test_run_nodes_builds_the_tables_names_and_votes():
    seen = []

    def participant(name, coordinator, vote):
        seen.append((name, coordinator, vote))
        return _variant_classes("abort")[1](name, coordinator, vote)

    result = costs.run_nodes(_variant_classes("abort")[0], participant, 3, "abort")
    assert seen == [("P1", "C", "yes"), ("P2", "C", "yes"), ("P3", "C", "no")]
    assert result.ok and set(result.decisions.values()) == {"abort"}


def test_measure_nodes_refuses_a_run_that_breaks_atomicity():
    from dtcourse.commit.protocols import variants

    class CommitsAnyway(variants.Coordinator):
        """Commits as soon as the first vote arrives, whatever it says."""

        def on_message(self, state, src, msg, out):
            if isinstance(msg, variants.Vote) and state.phase == "collecting":
                return self.decide(state, "commit", self.participants, out)
            return super().on_message(state, src, msg, out)

    def participant(name, coordinator, vote):
        return variants.Participant(name, coordinator, "nothing", vote)

    result = costs.run_nodes(CommitsAnyway, participant, 2, "abort")
    assert not result.ok
    with pytest.raises(DTCourseError, match="broke AC"):
        costs.measure_nodes(CommitsAnyway, participant, 2, "abort")


@pytest.mark.parametrize(
    ("n", "outcome", "match"), [(0, "commit", "at least 1"), (2, "x", "outcome")]
)
def test_measure_nodes_bad_requests_say_what_to_do(n, outcome, match):
    with pytest.raises(DTCourseError, match=match):
        costs.measure_nodes(*_variant_classes("abort"), n, outcome)


# -- the recorded variants ---------------------------------------------------------------


def test_the_recorded_costs_are_what_the_reference_counts_now():
    """The package shows presumed abort's costs from a file the build writes; it must hold
    what the reference's nodes cost today (run `dtcourse build` if this fails)."""
    written = render_package_data()
    relative = costs.RECORDED_COSTS.relative_to(costs.RECORDED_COSTS.parents[1])
    assert costs.RECORDED_COSTS.read_text(encoding="utf-8") == written[relative]


@pytest.mark.parametrize("variant", costs.recorded_variants())
def test_recorded_rows_equal_a_live_run_of_the_reference(variant):
    for n in (2, 7):
        outcome = "commit"
        votes = costs.votes_for(variant, n, outcome)
        live = costs.failure_free(reference.system(variant, n, votes, blocking=False))
        read_only = n if variant == "read-only" else 0
        assert costs.measure(variant, n, outcome) == costs.cost_of(
            live, variant, outcome, n, read_only
        )
        frame = costs.writes_by_node(variant, n)
        assert list(frame.itertuples(index=False, name=None)) == costs.node_writes(live)


def test_the_recorded_variants_cannot_be_run_and_say_why():
    with pytest.raises(DTCourseError, match="exercise p3.presumed_abort"):
        costs.run("presumed abort", 3)
    for variant in costs.recorded_variants():
        with pytest.raises(ModelError, match="exercise p3.presumed_abort"):
            build(variant, 2)
    with pytest.raises(DTCourseError, match="recorded for 1 to 50 participants, not for 51"):
        costs.measure("presumed abort", 51)
    with pytest.raises(DTCourseError, match="recorded for 1 to 16 participants, not for 20"):
        costs.writes_by_node("presumed abort", 20)


def test_the_load_curve_of_presumed_abort_runs_on_the_recorded_writes():
    frame = costs.load_curve("presumed abort", 3, [0.2, 0.9], transactions=50, seed=1)
    same = costs.load_curve("presumed nothing", 3, [0.2, 0.9], transactions=50, seed=1)
    # A commit costs the same under presumed nothing and presumed abort, writes included.
    assert list(frame["latency"]) == list(same["latency"])


def test_a_foreign_recorded_file_is_refused(tmp_path):
    foreign = tmp_path / "recorded_costs.json"
    foreign.write_text(json.dumps({"format": 1, "fields": ["x"]}), encoding="utf-8")
    with pytest.raises(DTCourseError, match="another dtcourse"):
        costs._recorded(foreign)
    with pytest.raises(DTCourseError, match="missing"):
        costs._recorded(tmp_path / "none.json")
