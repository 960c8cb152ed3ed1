"""What one transaction costs under each commit variant, counted from a simulated run.

Each number is counted, not computed: the variant's nodes (``dtcourse.commit.protocols``) run
once in the simulator without faults, with every message taking exactly one time unit,
and the simulator's metrics are read off.

Presumed abort, and the read-only and co-located variants built on it, are counted the
same way, but when the course is built: their nodes are the exercise p3.presumed_abort,
so the student package ships their counts (``recorded_costs.json``, written by ``dtcourse
build`` from the instructor's reference) instead of the nodes. ``measure``, the tables
and the load curve read those counts as if they had just been measured; only ``run``,
which would need the nodes, refuses them. Conventions (those of the optimization reading,
after Mohan, Lindsay and Obermarck 1986 and Gray and Lamport 2006):

* a flat tree: one coordinator talks directly to ``n`` participants (subordinates);
* the coordinator is not a participant, except in ``co-located``, where it is the first
  of the ``n`` (so ``n - 1`` are remote);
* only commit-protocol messages count, not the transaction's work or the client's
  request and reply; a message to oneself is not a message;
* forced writes are counted at every node; lazy writes apart;
* ``delays``: message delays until the last node decides (the outcome is known
  everywhere); acknowledgements that follow the decision are off this path;
* outcomes: ``commit`` (every participant votes yes), ``abort`` (exactly one
  participant, the last, votes no; it aborts alone and writes nothing), ``read-only``
  (presumed abort with every participant read-only: the ``read-only`` variant);
* ``paxos commit`` tolerates F = 1 failure: 2F + 1 = 3 acceptors, the first on the
  leader's node.

The tests hold these counts against a table derived by hand from the protocol rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, astuple, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtcourse.commit import properties
from dtcourse.errors import DTCourseError
from dtcourse.packaged import load_packaged

if TYPE_CHECKING:
    import pandas

    from dtcourse.engine.actors import ActorSystem, Node
    from dtcourse.engine.sim import SimResult

__all__ = [
    "OUTCOMES",
    "RECORDED_COSTS",
    "RECORDED_FORMAT",
    "Cost",
    "cost_of",
    "cost_rows",
    "cost_table",
    "failure_free",
    "load_curve",
    "measure",
    "measure_nodes",
    "node_writes",
    "outcomes",
    "recorded_costs_json",
    "recorded_variants",
    "run",
    "run_nodes",
    "sizes",
    "totals",
    "variants",
    "votes_for",
    "writes_by_node",
]

OUTCOMES: tuple[str, ...] = ("commit", "abort")
RECORDED_COSTS = Path(__file__).with_name("recorded_costs.json")
RECORDED_FORMAT = 1


@dataclass(frozen=True)
class Cost:
    variant: str
    outcome: str
    participants: int
    read_only: int
    messages: int
    forced_writes: int
    lazy_writes: int
    delays: int
    decided: str


def variants() -> tuple[str, ...]:
    from dtcourse.commit.protocols.catalog import VARIANTS

    return VARIANTS


def recorded_variants() -> tuple[str, ...]:
    """The variants whose costs were recorded at build time: their nodes are an exercise."""
    from dtcourse.commit.protocols.catalog import RECORDED

    return RECORDED


def outcomes(variant: str) -> tuple[str, ...]:
    """The outcomes a variant has: a read-only transaction has nothing to abort."""
    return ("commit",) if variant == "read-only" else OUTCOMES


def sizes(variant: str, participants: Iterable[int]) -> list[int]:
    """The sizes a variant applies to: one-phase commit only has one participant."""
    return [n for n in participants if variant != "one-phase" or n == 1]


def votes_for(variant: str, participants: int, outcome: str, read_only: int = 0) -> list[str]:
    if outcome not in OUTCOMES:
        raise DTCourseError(f"unknown outcome {outcome!r}; choose commit or abort")
    if variant == "read-only":
        if outcome != "commit":
            raise DTCourseError("a read-only transaction has nothing to abort: use outcome commit")
        return ["read"] * participants
    if read_only:
        if variant != "presumed abort" or outcome != "commit":
            raise DTCourseError(
                "read-only participants are counted for presumed abort commits only"
            )
        if not 0 <= read_only < participants:
            raise DTCourseError(
                f"read_only must be 0 to {participants - 1} (at least one participant "
                "updated data); for an all-read-only transaction use the variant 'read-only'"
            )
    votes = ["yes"] * (participants - read_only) + ["read"] * read_only
    if outcome == "abort":
        if variant == "co-located" and participants < 2:
            raise DTCourseError(
                "a co-located abort needs a remote participant to vote no: use 2 or more "
                "participants"
            )
        votes[-1] = "no"
    return votes


def _check(variant: str, participants: object) -> None:
    from dtcourse.commit.protocols.catalog import check_variant

    try:
        check_variant(variant)
    except DTCourseError as error:
        raise DTCourseError(str(error)) from None
    _check_participants(participants)


def run(
    variant: str, participants: int, outcome: str = "commit", *, read_only: int = 0, f: int = 1
) -> SimResult:
    """The failure-free simulated run that ``measure`` counts (for sequence diagrams).

    Not for the recorded variants: the package has no presumed-abort nodes to run."""
    from dtcourse.commit.protocols.catalog import build, check_runnable

    _check(variant, participants)
    try:
        check_runnable(variant)
    except DTCourseError as error:
        raise DTCourseError(str(error)) from None
    votes = votes_for(variant, participants, outcome, read_only)
    result = failure_free(build(variant, participants, votes, f=f, blocking=False))
    if not result.ok:  # pragma: no cover - a broken variant, not bad input
        raise DTCourseError(f"{variant}: the failure-free run broke {result.violations}")
    return result


def failure_free(system: ActorSystem) -> SimResult:
    """The run every count is read from: no faults, every message one time unit, timers
    long enough never to fire before the protocol is done."""
    from dtcourse.engine.sim import Latency, simulate

    return simulate(system, latency=Latency("constant", 1.0, 1.0), timeout=10.0, horizon=40.0)


def totals(result: SimResult) -> tuple[int, int, int, int]:
    """(messages, forced writes, lazy writes, message delays to the last decision)."""
    metrics = result.metrics
    return (
        sum(metrics.messages.values()),
        sum(metrics.forced_writes.values()),
        sum(metrics.lazy_writes.values()),
        metrics.critical_path_hops or 0,
    )


def measure(
    variant: str, participants: int, outcome: str = "commit", *, read_only: int = 0, f: int = 1
) -> Cost:
    """Messages, forced and lazy writes and message delays of one failure-free run (for
    the recorded variants, the run made when the course was built)."""
    if variant in recorded_variants():
        _check(variant, participants)
        votes_for(variant, participants, outcome, read_only)  # the same advice on bad input
        return _recorded_cost(variant, participants, outcome, read_only)
    result = run(variant, participants, outcome, read_only=read_only, f=f)
    read_only = participants if variant == "read-only" else read_only
    return cost_of(result, variant, outcome, participants, read_only)


def cost_of(
    run: SimResult, variant: str, outcome: str, participants: int, read_only: int = 0
) -> Cost:
    """The ``Cost`` row of a failure-free run (``failure_free``), under the given labels."""
    messages, forced, lazy, delays = totals(run)
    return Cost(
        variant=variant,
        outcome=outcome,
        participants=participants,
        read_only=read_only,
        messages=messages,
        forced_writes=forced,
        lazy_writes=lazy,
        delays=delays,
        decided="/".join(sorted(set(run.decisions.values()))),
    )


def run_nodes(
    coordinator: Callable[[str, tuple[str, ...]], Node],
    participant: Callable[[str, str, str], Node],
    participants: int,
    outcome: str = "commit",
) -> SimResult:
    """The failure-free run of any coordinator and participant classes, so a protocol
    written outside the catalogue is counted exactly as the table's variants are.

    The nodes are built as the catalogue's are: ``coordinator("C", ("P1", ..., "Pn"))``
    and ``participant("Pi", "C", vote)``, every vote yes, or for an abort the last one no.
    The result is returned as it is, broken properties included: judging it is the caller's
    business. Errors raised by the classes' own code propagate.
    """
    from dtcourse.engine.actors import ActorSystem

    _check_participants(participants)
    votes = votes_for("presumed nothing", participants, outcome)
    names = tuple(f"P{i}" for i in range(1, participants + 1))
    nodes = [
        coordinator("C", names),
        *(participant(name, "C", vote) for name, vote in zip(names, votes, strict=True)),
    ]
    system = ActorSystem(
        nodes, timing="perfect", participants=names, properties=properties.safety_properties()
    )
    return failure_free(system)


def measure_nodes(
    coordinator: Callable[[str, tuple[str, ...]], Node],
    participant: Callable[[str, str, str], Node],
    participants: int,
    outcome: str = "commit",
    *,
    label: str = "yours",
) -> Cost:
    """``measure`` for node classes of one's own (see ``run_nodes``); ``label`` names them
    in the ``variant`` column. A run that breaks atomicity is refused, not counted."""
    result = run_nodes(coordinator, participant, participants, outcome)
    if not result.ok:
        raise DTCourseError(
            f"{label}: the failure-free {outcome} run broke {', '.join(result.violations)}; "
            "fix the nodes before counting their costs"
        )
    return cost_of(result, label, outcome, participants)


def _check_participants(participants: object) -> None:
    if isinstance(participants, bool) or not isinstance(participants, int) or participants < 1:
        raise DTCourseError(
            f"participants must be a whole number of at least 1, not {participants!r}"
        )


# -- the recorded variants ---------------------------------------------------------------


def _key(variant: str, outcome: str, participants: int, read_only: int = 0) -> str:
    return f"{variant}|{outcome}|{participants}|{read_only}"


def node_writes(result: SimResult) -> list[tuple[str, int, int]]:
    """(node, forced writes, lazy writes) at each node of a run, in lifeline order."""
    metrics = result.metrics
    names = result.trace.nodes or sorted({*metrics.forced_writes, *metrics.lazy_writes})
    return [
        (name, metrics.forced_writes.get(name, 0), metrics.lazy_writes.get(name, 0))
        for name in names
    ]


def recorded_costs_json(
    rows: Sequence[Cost], writes: dict[tuple[str, str, int], list[tuple[str, int, int]]]
) -> dict[str, Any]:
    """The document ``dtcourse build`` writes into ``recorded_costs.json``: the ``Cost`` rows
    of the recorded variants and, for the smaller sizes, the writes at each node."""
    return {
        "format": RECORDED_FORMAT,
        "fields": [f.name for f in fields(Cost)],
        "costs": [list(astuple(row)) for row in rows],
        "writes": {
            _key(variant, outcome, n): [list(row) for row in per_node]
            for (variant, outcome, n), per_node in writes.items()
        },
    }


@functools.cache
def _recorded(path: Path = RECORDED_COSTS) -> tuple[dict[str, Cost], dict[str, tuple]]:
    document = load_packaged(path, "the recorded costs of presumed abort", RECORDED_FORMAT)
    if document.get("fields") != [f.name for f in fields(Cost)]:
        raise DTCourseError(f"{path} was written for another dtcourse; reinstall dtcourse")
    costs = {}
    for values in document["costs"]:
        row = Cost(*values)
        costs[_key(row.variant, row.outcome, row.participants, row.read_only)] = row
    writes = {key: tuple(tuple(row) for row in rows) for key, rows in document["writes"].items()}
    return costs, writes


def _recorded_range(variant: str, table: Iterable[str]) -> str:
    sizes_seen = sorted({int(key.split("|")[2]) for key in table if key.startswith(variant)})
    return f"{sizes_seen[0]} to {sizes_seen[-1]}" if sizes_seen else "no sizes"


def _recorded_cost(variant: str, participants: int, outcome: str, read_only: int) -> Cost:
    costs, _ = _recorded()
    if variant == "read-only":
        read_only = participants
    found = costs.get(_key(variant, outcome, participants, read_only))
    if found is None:
        raise DTCourseError(
            f"{variant} was recorded for {_recorded_range(variant, costs)} participants"
            + (" and fewer read-only participants" if read_only else "")
            + f", not for {participants}"
            + (f" with {read_only} read-only" if read_only else "")
            + ": its nodes are the exercise p3.presumed_abort; measure_nodes counts yours"
        )
    return found


def _recorded_writes(variant: str, participants: int, outcome: str) -> tuple:
    _, writes = _recorded()
    found = writes.get(_key(variant, outcome, participants))
    if found is None:
        raise DTCourseError(
            f"the writes at each node of {variant} were recorded for "
            f"{_recorded_range(variant, writes)} participants, not for {participants}"
        )
    return found


def cost_rows(
    participants: Iterable[int] = range(1, 6), variant_names: Iterable[str] | None = None
) -> list[Cost]:
    """Every variant and outcome for each number of participants it applies to."""
    sizes_wanted = list(participants)
    rows = []
    for variant in variant_names or variants():
        for outcome in outcomes(variant):
            for n in sizes(variant, sizes_wanted):
                if variant == "co-located" and outcome == "abort" and n < 2:
                    continue
                rows.append(measure(variant, n, outcome))
    return rows


def cost_table(
    participants: Iterable[int] = range(1, 6), variant_names: Iterable[str] | None = None
) -> pandas.DataFrame:
    """``cost_rows`` as a DataFrame: one row per variant, outcome and size."""
    import pandas

    return pandas.DataFrame([asdict(row) for row in cost_rows(participants, variant_names)])


def writes_by_node(variant: str, participants: int, outcome: str = "commit") -> pandas.DataFrame:
    """Forced and lazy writes at each node of one run: where the cost lands."""
    import pandas

    if variant in recorded_variants():
        _check(variant, participants)
        votes_for(variant, participants, outcome)
        per_node = _recorded_writes(variant, participants, outcome)
    else:
        per_node = tuple(node_writes(run(variant, participants, outcome)))
    rows: list[dict[str, Any]] = [
        {"node": name, "forced_writes": forced, "lazy_writes": lazy}
        for name, forced, lazy in per_node
    ]
    return pandas.DataFrame(rows)


def load_curve(
    variant: str,
    participants: int,
    rates: Iterable[float],
    *,
    delay: float = 1.0,
    write: float = 0.5,
    transactions: int = 400,
    seed: int = 0,
) -> pandas.DataFrame:
    """Throughput and mean commit latency of committing transactions under Poisson load.

    A seeded simulation of a simple machine: every node's log is one device that takes
    ``write`` per forced write, one transaction at a time; the participants' logs (the
    busiest of them) serve each transaction first, then the coordinator's side (its log,
    or for Paxos Commit the busiest acceptor). A transaction's latency is its message
    delays times ``delay`` plus its time at the logs, queueing included. Forced writes
    are what saturates first, which is why the optimizations count them.
    """
    import random

    import pandas

    frame = writes_by_node(variant, participants, "commit").set_index("node")["forced_writes"]
    cost = measure(variant, participants, "commit")
    parts = [p for p in frame.index if p.startswith("P")]
    others = [p for p in frame.index if not p.startswith("P")]
    first = max((frame[p] for p in parts), default=0) * write
    second = max((frame[p] for p in others), default=0) * write
    rows = []
    for rate in rates:
        if not rate > 0:
            raise DTCourseError(f"arrival rates must be positive, got {rate!r}")
        rng = random.Random(seed)
        now = done1 = done2 = 0.0
        latencies = []
        start = None
        for _ in range(transactions):
            now += rng.expovariate(rate)
            start = now if start is None else start
            done1 = max(now, done1) + first
            done2 = max(done1, done2) + second
            latencies.append(done2 - now + cost.delays * delay)
        rows.append(
            {
                "variant": variant,
                "offered_load": rate,
                "throughput": transactions / (done2 - (start or 0.0)),
                "latency": sum(latencies) / len(latencies),
            }
        )
    return pandas.DataFrame(rows)
