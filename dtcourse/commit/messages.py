"""The messages of two-phase commit, which the exercises' nodes exchange.

A student's 2PC participant and coordinator talk in these messages, and so do the checks'
partners; 3PC and Paxos Commit reuse the decision messages, so one ``Commit`` means the
same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Abort",
    "Commit",
    "DecisionRequest",
    "Prepare",
    "Vote",
    "VoteChoice",
    "decision_message",
]

#: A participant's voting behaviour: always ``"yes"``, always ``"no"``, or ``"any"`` (it may
#: also abort on its own before it votes).
VoteChoice = Literal["yes", "no", "any"]


@dataclass(frozen=True, slots=True)
class Prepare:
    """The vote request; it names every participant, so they can ask one another."""

    participants: frozenset[str]


@dataclass(frozen=True, slots=True)
class Vote:
    vote: str  # "yes" or "no"


@dataclass(frozen=True, slots=True)
class Commit:
    pass


@dataclass(frozen=True, slots=True)
class Abort:
    pass


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """An uncertain participant asks for the outcome."""


def decision_message(decision: str) -> Commit | Abort:
    """The message that announces ``decision`` (``"commit"`` or ``"abort"``)."""
    return Commit() if decision == "commit" else Abort()
