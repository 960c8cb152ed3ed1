"""Visible checks of p2.twopc.coordinator: the student's coordinator against every legal set
of participants.

The partners are ``ParticipantEnvironment`` nodes, which do everything a 2PC participant
may do (vote yes or no or never, abort on their own before voting, repeat their vote, ask
for the decision again and again), so passing says the coordinator is right whatever
participants it meets. Participants crash only for good in the model checker and not at
all in the random runs, where the coordinator crashes and recovers. The coordinator runs
under a write-ahead audit (no ``Commit`` before a forced commit record), and every
exhaustive search must finish.

Each part takes an optional ``partner`` (a function from the ``Setup`` and a participant's
name and vote to the participant node) and ``Setup`` fields as settings, so the
instructor's hidden tests can run the same judgement with other partners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dtcourse.commit.environments import ParticipantEnvironment
from dtcourse.commit.messages import Commit
from dtcourse.engine.actors import ActorSystem, Node, SystemState
from dtcourse.engine.model import Property
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.harness import (
    COORDINATOR,
    NodeFactory,
    Setup,
    WriteAhead,
    coordinator_can_decide,
    exhaustive,
    names,
    random_runs,
    require_node_class,
    run_settings,
    setup_with,
    write_ahead,
)

__all__ = [
    "EXERCISE",
    "WRITE_AHEAD",
    "audited",
    "decision_on_disk",
    "failure_free",
    "lossy",
    "recovery",
    "timeouts",
    "with_participants",
]

Partner = Callable[[Setup, str, str], Node]

WRITE_AHEAD = "Commit is sent only after the commit record is forced"


def _names_commit(record: Any) -> bool:
    return "commit" in repr(record).lower()


def audited(node: Node) -> WriteAhead:
    """A coordinator under the write-ahead audit: ``Commit`` only after a forced record
    that names the commit."""
    return WriteAhead(node, lambda msg: isinstance(msg, Commit), _names_commit)


def decision_on_disk(coordinator: str = COORDINATOR) -> Property:
    """Once the coordinator acted on commit, a forced record names it."""

    def holds(system: ActorSystem, state: SystemState) -> bool:
        if system.record(state, coordinator).decision != ("commit", True):
            return True
        return any(_names_commit(record) for record in system.log(state, coordinator))

    return Property.always("the commit decision is forced before it is sent", holds)


def with_participants(cls: type, partner: Partner | None = None) -> NodeFactory:
    """Nodes for a setup: the student's coordinator under the write-ahead audit, then the
    participants (environments unless ``partner`` makes them)."""
    require_node_class(cls, "coordinator")

    def make(setup: Setup) -> list[Node]:
        parts = names(setup.participants)
        votes = zip(parts, setup.vote_list(), strict=True)
        if partner is None:
            others: list[Node] = [ParticipantEnvironment(p, COORDINATOR, v) for p, v in votes]  # type: ignore[arg-type]
        else:
            others = [partner(setup, p, v) for p, v in votes]
        return [audited(cls(COORDINATOR, parts)), *others]

    return make


def _partners(setup: Setup, partner: Partner | None) -> tuple[str, ...]:
    return names(setup.participants) if partner is None else ()


def _judge(
    cls: type, partner: Partner | None, setup: Setup, extra: list[Property], **options: Any
) -> None:
    exhaustive(
        with_participants(cls, partner),
        setup,
        [decision_on_disk(), write_ahead(WRITE_AHEAD), *extra],
        outcomes="no" not in setup.vote_list(),
        partners=_partners(setup, partner),
        **options,
    )


def failure_free(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """No failures: both outcomes happen, and nobody waits forever."""
    setup = setup_with(Setup(participants=2, votes="any"), settings)
    _judge(cls, partner, setup, [], blocking=True)


def timeouts(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """A participant crash: AC1-AC4 hold, and a live coordinator never waits forever."""
    setup = setup_with(Setup(participants=2, votes="any", crashes=1), settings)
    _judge(cls, partner, setup, [coordinator_can_decide()])


def _random(cls: type, partner: Partner | None, setup: Setup, settings: dict[str, Any]) -> None:
    random_runs(
        with_participants(cls, partner),
        setup,
        partners=_partners(setup, partner),
        **run_settings(settings),
    )


def recovery(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """The coordinator crashes and recovers: every run with one participant, then random
    runs of more (settings change the random runs): atomicity always, termination once
    repaired."""
    small = Setup(participants=1, votes="any", crashes=1, recover=True, loss=True, timing="async")
    _judge(cls, partner, small, [])
    setup = setup_with(
        Setup(participants=2, votes="any", crashes=1, recover=True, timing="async"), settings
    )
    _random(cls, partner, setup, settings)


def lossy(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """Lost messages and a crash with recovery: decisions still reach everyone."""
    setup = setup_with(
        Setup(participants=2, votes="yes", crashes=1, recover=True, loss=True, timing="async"),
        settings,
    )
    _random(cls, partner, setup, settings)


EXERCISE = Exercise(
    "p2.twopc.coordinator",
    (
        ("failure_free", failure_free),
        ("timeouts", timeouts),
        ("recovery", recovery),
        ("lossy", lossy),
    ),
)
