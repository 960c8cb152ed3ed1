"""Reference for p2.recovery: the presumed-abort recovery step, and the cases it is judged on.

``cases(seed, count)`` makes the logs and in-doubt lists of the ``rules`` part: four fixed
ones (nothing in doubt, a committed branch, branches with no record, a record with nothing
in doubt), then ``count`` random ones from ``seed``. The visible check gets the cases of
its own setting with each branch's decision as a salted digest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from dtcourse.db import InDoubt, LogEntry, Resolve
from dtcourse.runtime.checks.casedata import answer_digest
from dtcourse.runtime.checks.p2_recovery import VISIBLE_CASES, VISIBLE_SEED, branch_salt

__all__ = ["Case", "cases", "recovery_step", "visible_cases"]

Case = tuple[tuple[LogEntry, ...], tuple[InDoubt, ...]]


def recovery_step(log: Sequence[LogEntry], in_doubt: Sequence[InDoubt]) -> list[Resolve]:
    """Presumed abort: commit an in-doubt branch iff the log holds its commit record."""
    committed = {entry.gtrid for entry in log if entry.decision == "commit"}
    return [Resolve(d.participant, d.gtrid, d.gtrid in committed) for d in in_doubt]


def cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    made: list[Case] = [
        ((), ()),
        ((LogEntry("g1", ("p0", "p1")),), (InDoubt("p1", "g1"),)),
        ((), (InDoubt("p0", "g2"), InDoubt("p1", "g2"))),
        ((LogEntry("g3", ("p0", "p1")),), ()),
    ]
    for _ in range(count):
        gtrids = [f"t{rng.randrange(1000)}" for _ in range(rng.randint(1, 5))]
        log = tuple(LogEntry(g, ("p0", "p1", "p2")) for g in gtrids if rng.random() < 0.5)
        doubt = tuple(
            InDoubt(p, g)
            for g in dict.fromkeys(gtrids)
            for p in ("p0", "p1", "p2")
            if rng.random() < 0.5
        )
        made.append((log, doubt))
    return made


def visible_cases() -> dict[str, Any]:
    """The cases of the visible ``rules`` part, each branch's decision salted-hashed."""
    rows = []
    for number, (log, doubt) in enumerate(cases(VISIBLE_SEED, VISIBLE_CASES)):
        decided = {(a.participant, a.gtrid): a.commit for a in recovery_step(log, doubt)}
        rows.append(
            {
                "log": [asdict(entry) for entry in log],
                "in_doubt": [
                    {
                        **asdict(branch),
                        "digest": answer_digest(
                            decided[(branch.participant, branch.gtrid)],
                            branch_salt(number, branch.participant, branch.gtrid),
                        ),
                    }
                    for branch in doubt
                ],
            }
        )
    return {"rules": rows}
