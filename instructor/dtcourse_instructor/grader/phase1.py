"""Hidden-test parts of Phase 1: the transfer audit and the serializability of histories.

The transfer parts are the visible ones: their expectations come from the faults each
run injected, so the hidden tests only pass runs of their own (``runs=``). The
serializability parts judge with the visible checks' judges, but the expected results of
any history (``histories=``, else the reading's) come from the reference solution.
"""

from __future__ import annotations

from collections.abc import Iterable

from dtcourse.runtime.checks import Exercise, p1_transfer
from dtcourse.runtime.checks.p1_serializability import (
    Analyse,
    Case,
    judge_anomaly,
    judge_edges,
    judge_sites,
    judge_verdict,
)
from dtcourse_instructor.reference.p1_serializability import VISIBLE_HISTORIES, case

__all__ = [
    "EXERCISES",
    "serializability_anomaly",
    "serializability_edges",
    "serializability_sites",
    "serializability_verdict",
]


def _cases(histories: Iterable[str] | None) -> list[Case]:
    chosen = VISIBLE_HISTORIES if histories is None else tuple(histories)
    return [Case.from_json(case(history)) for history in chosen]


def serializability_sites(site_edges: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """Each site's own precedence graph (``site_edges``, or ``analyse`` with its sites)."""
    judge_sites(site_edges, _cases(histories))


def serializability_edges(analyse: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """The global precedence graph's edges, exactly."""
    judge_edges(analyse, _cases(histories))


def serializability_verdict(analyse: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """Serializable or not, and a valid equivalent serial order when it is."""
    judge_verdict(analyse, _cases(histories))


def serializability_anomaly(analyse: Analyse, *, histories: Iterable[str] | None = None) -> None:
    """The anomaly's name, by the rules in the notebook."""
    judge_anomaly(analyse, _cases(histories))


EXERCISES: tuple[Exercise, ...] = (
    p1_transfer.EXERCISE,
    Exercise(
        "p1.serializability",
        (
            ("sites", serializability_sites),
            ("edges", serializability_edges),
            ("verdict", serializability_verdict),
            ("anomaly", serializability_anomaly),
        ),
    ),
)
