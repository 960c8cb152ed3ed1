"""The atomic-commit properties (Bernstein, Hadzilacos and Goodman, ch. 7) for actor systems.

They read only what nodes announce through ``out.vote`` and ``out.decide`` (see
``dtcourse.engine.actors`` for when a decision counts as made), so they judge any protocol whose
participants decide, whatever its states look like:

* AC1: all nodes that reach a decision reach the same one.
* AC2: a node cannot reverse its decision after it has reached one.
* AC3: the commit decision can only be reached if all participants voted yes.
* AC4: if there are no failures and all participants voted yes, the decision is commit.
  Checked on states: in a state where nothing has failed so far (no crash, no lost
  message, no partition, no timeout waiting on a node) and every participant voted yes,
  no node has decided abort.
* non-blocking: from every reachable state, each live participant that has not decided can
  still decide without any failed node recovering.

``sometimes`` properties make sure a check is not vacuous: some run commits, some aborts.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from dtcourse.engine.actors import ActorSystem, Recover, SystemState
from dtcourse.engine.model import Property

AC1 = "AC1 agreement"
AC2 = "AC2 no reversal"
AC3 = "AC3 commit needs all yes"
AC4 = "AC4 no failures and all yes means commit"
NON_BLOCKING = "non-blocking"
SOME_COMMIT = "some run commits"
SOME_ABORT = "some run aborts"


def decisions(system: ActorSystem, state: SystemState) -> dict[str, str]:
    """Each node's current decision (made, or still only in memory), by name."""
    return {
        name: rec.decision[0]
        for name, rec in zip(system.names, system.records(state), strict=True)
        if rec.decision is not None
    }


def _decided(system: ActorSystem, state: SystemState) -> frozenset[str]:
    return system.summary(state).decided


def _all_voted_yes(system: ActorSystem, state: SystemState) -> bool:
    return system.summary(state).all_voted_yes


def agreement(system: ActorSystem, state: SystemState) -> bool:
    return len(_decided(system, state)) <= 1


def no_reversal(system: ActorSystem, state: SystemState) -> bool:
    return not state.reversed


def commit_needs_all_yes(system: ActorSystem, state: SystemState) -> bool:
    return "commit" not in _decided(system, state) or _all_voted_yes(system, state)


def no_failure_all_yes_commits(system: ActorSystem, state: SystemState) -> bool:
    if state.failed or not _all_voted_yes(system, state):
        return True
    return "abort" not in _decided(system, state)


def undecided_live_participants(system: ActorSystem, state: SystemState) -> Iterable[Hashable]:
    return system.summary(state).undecided_live


def has_decided(system: ActorSystem, state: SystemState, participant: Hashable) -> bool:
    return system.record(state, participant).decision is not None  # type: ignore[arg-type]


def not_recovery(system: ActorSystem, action: Any) -> bool:
    return not isinstance(action, Recover)


def someone_commits(system: ActorSystem, state: SystemState) -> bool:
    return "commit" in _decided(system, state)


def someone_aborts(system: ActorSystem, state: SystemState) -> bool:
    return "abort" in _decided(system, state)


def safety_properties() -> tuple[Property, ...]:
    """AC1-AC4: invariants checked on every reachable state."""
    return (
        Property.always(AC1, agreement),
        Property.always(AC2, no_reversal),
        Property.always(AC3, commit_needs_all_yes),
        Property.always(AC4, no_failure_all_yes_commits),
    )


def non_blocking() -> Property:
    """Blocking as liveness: a live undecided participant that can never decide."""
    return Property.blocking(
        NON_BLOCKING, undecided_live_participants, has_decided, allowed=not_recovery
    )


def outcomes() -> tuple[Property, ...]:
    """Both outcomes must be reachable, or the check proves nothing."""
    return (
        Property.sometimes(SOME_COMMIT, someone_commits),
        Property.sometimes(SOME_ABORT, someone_aborts),
    )


def properties(*, blocking: bool = True) -> tuple[Property, ...]:
    """Every atomic-commit property; ``blocking=False`` leaves out the liveness check
    (needed with symmetry reduction, which cannot answer it)."""
    extra = (non_blocking(),) if blocking else ()
    return (*safety_properties(), *extra, *outcomes())
