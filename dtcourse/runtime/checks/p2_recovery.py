"""Visible checks of p2.recovery: the coordinator's recovery step, on cases and under crashes.

No recovery step ships with the student package, so the two parts judge without one:

* ``rules``: small logs and in-doubt lists (written by ``dtcourse build`` from the
  instructor's cases), each branch's right decision stored as a salted digest; the shape
  of the answer (one ``Resolve`` per in-doubt branch, nothing else) is checked directly;
* ``torture``: the crash torture run with the student's step. It kills a real process at
  every point of the protocol and judges the bank by what the databases say (total balance,
  atomicity, acknowledged transfers, nothing left in doubt), so it needs no answer either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dtcourse.db import InDoubt, LogEntry, Resolve
from dtcourse.errors import DTCourseError
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.casedata import load_cases, matches_digest

__all__ = [
    "EXERCISE",
    "VISIBLE_CASES",
    "VISIBLE_SEED",
    "branch_salt",
    "resolutions",
    "rules",
    "torture",
]

#: The random cases of the visible ``rules`` part: this seed, this many (the hidden more).
VISIBLE_SEED = 0
VISIBLE_CASES = 6


def branch_salt(case: int, participant: str, gtrid: str) -> str:
    """The salt of one branch's digest, so equal decisions give different digests."""
    return f"p2.recovery/rules/{case}/{participant}/{gtrid}"


def resolutions(
    step: Callable, log: Sequence[LogEntry], in_doubt: Sequence[InDoubt]
) -> dict[tuple[str, str], bool]:
    """What ``step`` decides for each branch, once the shape of its answer is checked:
    ``Resolve`` objects, one per in-doubt branch, and none for anything else."""
    shown = f"log={list(log)}, in_doubt={list(in_doubt)}"
    try:
        got = list(step(list(log), list(in_doubt)))
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"your step raised {type(error).__name__}: {error} on {shown}"
        ) from None
    for action in got:
        assert isinstance(action, Resolve), f"return Resolve objects, not {action!r}"
    have = {(a.participant, a.gtrid): a.commit for a in got}
    assert len(have) == len(got), f"{shown}: resolve each branch once, got {got}"
    given = {(d.participant, d.gtrid) for d in in_doubt}
    missing = sorted(given - set(have))
    assert not missing, f"{shown}: branch {missing[0][1]} at {missing[0][0]} is left in doubt"
    extra = set(have) - given
    assert not extra, f"{shown}: resolve only the in-doubt branches given, not {extra}"
    return have


def rules(step: Any) -> None:
    """Presumed abort on the visible cases: every branch decided right, nothing else touched."""
    assert callable(step), "pass your recovery step itself: a function step(log, in_doubt)"
    for number, case in enumerate(load_cases("p2.recovery")["rules"]):
        log = [
            LogEntry(e["gtrid"], tuple(e["participants"]), e["decision"]) for e in case["log"]
        ]
        in_doubt = [InDoubt(b["participant"], b["gtrid"]) for b in case["in_doubt"]]
        have = resolutions(step, log, in_doubt)
        shown = f"log={log}, in_doubt={in_doubt}"
        for branch in case["in_doubt"]:
            participant, gtrid = branch["participant"], branch["gtrid"]
            commit = bool(have[(participant, gtrid)])
            salt = branch_salt(number, participant, gtrid)
            assert matches_digest(commit, branch["digest"], salt), (
                f"{shown}: you {'commit' if commit else 'abort'} {gtrid} at {participant}, "
                f"which is wrong. Does the log hold a commit record for {gtrid}, and what "
                "does presumed abort conclude from that?"
            )


def torture(
    step: Any, *, seed: int = 1, transfers: int = 8, participants: int = 2, batch: int = 2
) -> None:
    """Kill a real process running transfers, recover with ``step``, check the bank."""
    from dtcourse.db.bank import torture as run_torture

    assert callable(step), "pass your recovery step itself: a function step(log, in_doubt)"

    def guarded(log, in_doubt):
        try:
            return list(step(log, in_doubt))
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(f"your step raised {type(error).__name__}: {error}") from None

    try:
        report = run_torture(
            guarded, transfers=transfers, seed=seed, participants=participants, batch=batch
        )
    except DTCourseError as error:
        raise AssertionError(f"the crash torture stopped: {error}") from None
    assert report.ok, f"the crash torture (seed {seed}, {participants} databases) failed:\n{report}"


EXERCISE = Exercise("p2.recovery", (("rules", rules), ("torture", torture)))
