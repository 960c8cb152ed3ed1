"""Speed of the actor model: exhaustive checks of the course's protocols and chaos runs.

Target: the instructor's reference 2PC with 3 participants, 1 crash with recovery and
message loss, fully explored in under 30 s. The course's 2PC (presumed nothing with
acknowledgements, as the demonstrations run it) has several times more states; its
3-participant run is printed for the record. Prints states per second for each check and
runs per second for chaos.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from dtcourse_instructor.reference.p2_threepc import terminate
from dtcourse_instructor.reference.p2_twopc_coordinator import system as reference_2pc

from dtcourse.commit.protocols import build
from dtcourse.engine.actors import ActorSystem
from dtcourse.engine.checker import check
from dtcourse.engine.sim import Fault, chaos

# 3PC runs with the instructor's termination rule (TR1-TR4): the student package has none.
TR = {"rule": terminate}

CHECKS: list[tuple[str, Callable[[], ActorSystem], bool]] = [
    (
        "reference 2pc, 3 participants, 1 crash + recovery, loss (target < 30 s)",
        lambda: reference_2pc(3, crashes=1, recover=True, loss=True),
        False,
    ),
    (
        "2pc, 3 participants, 1 crash + recovery, loss",
        lambda: build("2pc", 3, crashes=1, recover=True, loss=True),
        False,
    ),
    (
        "2pc, 2 participants, 1 crash + recovery, loss, duplication",
        lambda: build("2pc", 2, crashes=1, recover=True, loss=True, duplicate=True),
        False,
    ),
    (
        "2pc cooperative, 2 participants, 1 crash",
        lambda: build("2pc", 2, crashes=1, cooperative=True),
        False,
    ),
    ("2pc, 4 participants, no faults, symmetry", lambda: build("2pc", 4, symmetry=True), True),
    (
        "3pc, 3 participants, 1 crash (perfect detector)",
        lambda: build("3pc", 3, crashes=1, **TR),
        False,
    ),
    (
        "3pc, 3 participants, 2 crashes (perfect detector)",
        lambda: build("3pc", 3, crashes=2, **TR),
        False,
    ),
    ("3pc, 2 participants, 1 partition", lambda: build("3pc", 2, partitions=1, **TR), False),
]


def main() -> int:
    print("exhaustive checks")
    for label, make, symmetry in CHECKS:
        result = check(make(), symmetry=symmetry, max_seconds=300)
        verdict = "complete" if result.complete else f"INCOMPLETE ({result.reason})"
        broken = sorted({v.property for v in result.violations})
        print(
            f"  {label}: {verdict}, {result.distinct:,} states, {result.generated:,} generated, "
            f"depth {result.depth}, {result.seconds:.2f} s, "
            f"{result.states_per_second:,.0f} states/s; violated: {broken or 'none'}"
        )
    print("seeded chaos (1,000 runs each)")
    for label, system, options in [
        ("2pc, 3 participants, 10% loss, 30% crash + recovery", build("2pc", 3), {}),
        ("3pc, 3 participants, 10% loss, 30% crash + recovery", build("3pc", 3, **TR), {}),
        (
            "3pc, 3 participants, partition at t=3",
            build("3pc", 3, votes="yes", **TR),
            {"faults": [Fault(3.0, "partition", groups=(("C", "P1"), ("P2", "P3")))]},
        ),
    ]:
        start = time.perf_counter()
        result = chaos(system, 1000, seed=1, **options)
        seconds = time.perf_counter() - start
        print(
            f"  {label}: {1000 / seconds:,.0f} runs/s ({seconds:.2f} s); outcomes "
            f"{result.outcomes}; atomicity {'held' if result.ok else 'VIOLATED'} "
            f"({len(result.failing_seeds)} failing runs)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
