"""Reference solution of p3.cheapest_commit: the presumption for a workload mix under a
budget on the coordinator's log.

A workload is a mix of transaction classes, each with its share of the transactions, its
number of participants and its abort rate, and a budget: how many forced writes per
transaction the coordinator's log can take (one log serves every transaction, so it is
the device that saturates first). For each presumption, the expected forced writes per
transaction, in total and at the coordinator, weigh the measured cost of a commit and of
an abort (``costs.measure`` and ``costs.writes_by_node``) by how often each happens. The
answer is the presumption with the fewest expected forced writes among those within the
budget (ties go to the earlier of ``PRESUMPTIONS``), or None when none fits.

``visible_cases()`` gives the student package the visible workloads and salted hashes of
their answers, so the visible check can say right or wrong without holding the numbers.
"""

from __future__ import annotations

from typing import Any

from dtcourse.commit import costs
from dtcourse.errors import DTCourseError
from dtcourse.runtime.checks.casedata import answer_digest

__all__ = [
    "PRESUMPTIONS",
    "SALT",
    "VISIBLE_WORKLOADS",
    "choose",
    "coordinator_writes",
    "expected",
    "visible_cases",
]

#: The candidates, in the order that breaks ties.
PRESUMPTIONS: tuple[str, ...] = ("presumed abort", "presumed commit", "presumed nothing")
SALT = "p3.cheapest_commit:2026"
#: Digits kept when a number is hashed: the student's float arithmetic may differ below.
DIGITS = 6

VISIBLE_WORKLOADS: tuple[dict[str, Any], ...] = (
    {
        "mix": [
            {"share": 0.9, "participants": 3, "abort_rate": 0.05},
            {"share": 0.1, "participants": 6, "abort_rate": 0.5},
        ],
        "coordinator_budget": 2.0,
    },
    {
        "mix": [
            {"share": 0.9, "participants": 3, "abort_rate": 0.05},
            {"share": 0.1, "participants": 6, "abort_rate": 0.5},
        ],
        "coordinator_budget": 1.5,
    },
)


def coordinator_writes(variant: str, participants: int, outcome: str) -> int:
    """Forced writes at the coordinator ``C`` in one transaction."""
    frame = costs.writes_by_node(variant, participants, outcome).set_index("node")
    return int(frame.loc["C", "forced_writes"]) if "C" in frame.index else 0


def expected(variant: str, workload: dict[str, Any]) -> dict[str, float]:
    """Expected forced writes per transaction of the mix, in total and at the coordinator."""
    total = at_coordinator = 0.0
    for kind in workload["mix"]:
        n, rate, share = kind["participants"], kind["abort_rate"], kind["share"]
        if not 0.0 <= rate <= 1.0:
            raise DTCourseError(f"an abort rate is between 0 and 1, got {rate!r}")
        for outcome, weight in (("commit", 1.0 - rate), ("abort", rate)):
            total += share * weight * costs.measure(variant, n, outcome).forced_writes
            at_coordinator += share * weight * coordinator_writes(variant, n, outcome)
    return {"forced_writes": total, "coordinator_writes": at_coordinator}


def choose(workload: dict[str, Any]) -> dict[str, Any]:
    """The answer the exercise asks for: the choice and every presumption's numbers."""
    table = {variant: expected(variant, workload) for variant in PRESUMPTIONS}
    budget = workload["coordinator_budget"]
    fits = [v for v in PRESUMPTIONS if table[v]["coordinator_writes"] <= budget + 1e-9]
    best = min(fits, key=lambda v: table[v]["forced_writes"], default=None)
    return {"variant": best, "costs": table}


def _number(value: float) -> float:
    return round(float(value), DIGITS) + 0.0  # + 0.0: -0.0 and 0.0 hash alike


def visible_cases() -> dict[str, Any]:
    """The visible workloads, with salted hashes of the choice and of each number."""
    cases = []
    for workload in VISIBLE_WORKLOADS:
        answer = choose(workload)
        cases.append(
            {
                "workload": workload,
                "variant": answer_digest(answer["variant"], SALT),
                "costs": {
                    variant: {
                        name: answer_digest(_number(value), SALT)
                        for name, value in numbers.items()
                    }
                    for variant, numbers in answer["costs"].items()
                },
            }
        )
    return {"salt": SALT, "digits": DIGITS, "presumptions": list(PRESUMPTIONS), "workloads": cases}
