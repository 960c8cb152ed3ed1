"""The cost of one commit under each two-phase commit variant, counted from the rules.

The numbers are derived by hand from the protocol rules of Mohan, Lindsay and Obermarck
(1986, the R* paper), as the optimization reading derives them, so a simulator's counts
can be checked against them. Conventions (the reading's):

* a flat tree: one coordinator talks directly to ``n`` subordinates (participants);
* the coordinator is not a participant (it keeps no data of the transaction);
* only commit-protocol messages count (PREPARE, votes, decision, ACK), not the work or
  the client's request and reply;
* forced writes are counted at every site; lazy writes are listed apart;
* ``commit``: every participant updated data and votes YES; ``abort``: exactly one
  participant votes NO (it aborts alone and forgets: no record of it is counted) and the
  others vote YES;
* ``read-only`` is presumed abort with every participant read-only: each answers PREPARE
  with a READ vote, writes nothing and is left out of the second phase.

Under presumed commit the coordinator's abort record is counted as forced, as under
presumed nothing; the forced collecting record alone would already make recovery abort,
so an implementation may write it lazily (one forced write fewer per abort).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from dtcourse.errors import DTCourseError

if TYPE_CHECKING:
    import pandas

Variant = Literal["presumed nothing", "presumed abort", "presumed commit", "read-only"]
Outcome = Literal["commit", "abort"]
VARIANTS: tuple[str, ...] = ("presumed nothing", "presumed abort", "presumed commit", "read-only")
OUTCOMES: tuple[str, ...] = ("commit", "abort")


@dataclass(frozen=True)
class Cost:
    variant: str
    outcome: str
    participants: int
    read_only: int
    messages: int
    forced_writes: int
    lazy_writes: int


def cost(variant: str, participants: int, outcome: str = "commit", *, read_only: int = 0) -> Cost:
    """Messages and log writes of one transaction; ``read_only`` of the ``participants``
    (presumed abort only) answer READ and leave after the first phase."""
    n = participants
    if variant not in VARIANTS:
        raise DTCourseError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if outcome not in OUTCOMES:
        raise DTCourseError(f"unknown outcome {outcome!r}; choose commit or abort")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DTCourseError(f"participants must be a whole number of at least 1, not {n!r}")
    if variant == "read-only":
        if outcome != "commit":
            raise DTCourseError("a read-only transaction has nothing to abort: use outcome commit")
        return Cost(variant, outcome, n, n, messages=2 * n, forced_writes=0, lazy_writes=0)
    if read_only and (variant != "presumed abort" or outcome != "commit"):
        raise DTCourseError("read-only participants are counted for presumed abort commits only")
    if not 0 <= read_only < n:
        raise DTCourseError(
            f"read_only must be 0 to {n - 1} (at least one participant updated data); "
            "for an all-read-only transaction use the variant 'read-only'"
        )
    if outcome == "commit":
        updaters = n - read_only
        if variant == "presumed commit":
            # collecting (forced), PREPARE, YES, prepared (forced), commit (forced), COMMIT;
            # participants write commit lazily and send no ACK.
            return Cost(variant, outcome, n, 0, 3 * n, n + 2, n)
        # PREPARE, vote, COMMIT, ACK to each updater; a read-only one gets PREPARE and
        # answers READ; prepared and commit forced at updaters, commit at the coordinator,
        # end written lazily.
        return Cost(variant, outcome, n, read_only, 2 * read_only + 4 * updaters,
                    2 * updaters + 1, 1)  # fmt: skip
    yes_voters = n - 1
    if variant == "presumed abort":
        # no ACKs, nothing forced but the YES voters' prepared records; the coordinator's
        # and the participants' abort records are lazy.
        return Cost(variant, outcome, n, 0, 2 * n + yes_voters, yes_voters, 1 + yes_voters)
    forced = yes_voters + 1 + yes_voters  # prepared, coordinator abort, participants abort
    if variant == "presumed commit":
        forced += 1  # the collecting record
    return Cost(variant, outcome, n, 0, 2 * n + 2 * yes_voters, forced, 1)


def cost_rows(participants: Iterable[int] = range(1, 6)) -> tuple[Cost, ...]:
    """Every variant and outcome for each number of participants."""
    rows = []
    for variant in VARIANTS:
        for outcome in OUTCOMES:
            if variant == "read-only" and outcome == "abort":
                continue
            rows.extend(cost(variant, n, outcome) for n in participants)
    return tuple(rows)


def cost_table(participants: Iterable[int] = range(1, 6)) -> pandas.DataFrame:
    """``cost_rows`` as a DataFrame, one row per variant, outcome and size."""
    import pandas

    return pandas.DataFrame([asdict(row) for row in cost_rows(participants)])
