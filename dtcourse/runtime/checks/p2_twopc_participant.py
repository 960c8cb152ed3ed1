"""Visible checks of p2.twopc.participant: the student's participant against every legal
coordinator.

The partner is ``CoordinatorEnvironment``, which does everything a 2PC coordinator may do
(repeat ``Prepare``, commit only after all yes votes, abort whenever it is allowed to,
answer or ignore ``DecisionRequest``), so passing says the participant is right whatever
coordinator it meets. The coordinator crashes only for good: that is what makes a perfect
failure detector fire the participant's timers. Every participant runs under a
write-ahead audit, a participant told to vote no is among those judged, and every
exhaustive search must finish.

Each part takes an optional ``partner`` (a function from the ``Setup`` to the coordinator
node) and ``Setup`` fields as settings, so the instructor's hidden tests can run the same
judgement with other partners and larger systems.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dtcourse.commit.environments import CoordinatorEnvironment
from dtcourse.commit.messages import Vote
from dtcourse.engine.actors import ActorSystem, Node, SystemState
from dtcourse.engine.model import Property
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.harness import (
    COORDINATOR,
    NodeFactory,
    Setup,
    WriteAhead,
    exhaustive,
    names,
    random_runs,
    require_node_class,
    run_settings,
    setup_with,
    unvoted_can_decide,
    voters,
    write_ahead,
)

__all__ = [
    "EXERCISE",
    "WRITE_AHEAD",
    "audited",
    "failure_free",
    "no_voter_says_no",
    "recovery",
    "timeouts",
    "with_coordinator",
    "yes_on_disk",
]

Partner = Callable[[Setup], Node]

WRITE_AHEAD = "Vote('yes') is sent only after the prepared record is forced"


def _is_yes(msg: Any) -> bool:
    return isinstance(msg, Vote) and msg.vote == "yes"


def audited(node: Node) -> WriteAhead:
    """A participant under the write-ahead audit: ``Vote("yes")`` only after a forced record."""
    return WriteAhead(node, _is_yes, lambda record: True)


def yes_on_disk() -> Property:
    """A participant's announced yes vote is never without a forced record."""

    def holds(system: ActorSystem, state: SystemState) -> bool:
        return all(
            system.vote(state, p) != "yes" or bool(system.log(state, p))
            for p in system.participants
        )

    return Property.always("the prepared record is forced before voting yes", holds)


def no_voter_says_no(no_voters: tuple[str, ...]) -> tuple[Property, ...]:
    """A participant built with ``vote="no"`` never votes yes, and does announce its no."""

    def never_yes(system: ActorSystem, state: SystemState) -> bool:
        return all(system.vote(state, p) != "yes" for p in no_voters)

    def said_no(system: ActorSystem, state: SystemState) -> bool:
        return all(system.vote(state, p) == "no" for p in no_voters)

    return (
        Property.always("a participant with vote='no' never votes yes", never_yes),
        Property.sometimes("a participant with vote='no' votes no (out.vote('no'))", said_no),
    )


def with_coordinator(cls: type, partner: Partner | None = None) -> NodeFactory:
    """Nodes for a setup: the coordinator (the environment unless ``partner`` makes one),
    then the student's participants, each under the write-ahead audit."""
    require_node_class(cls, "participant")

    def make(setup: Setup) -> list[Node]:
        parts = names(setup.participants)
        if partner is None:
            coordinator: Node = CoordinatorEnvironment(COORDINATOR, parts)
        else:
            coordinator = partner(setup)
        votes = zip(parts, setup.vote_list(), strict=True)
        return [coordinator, *(audited(cls(p, COORDINATOR, v)) for p, v in votes)]

    return make


def _judge(
    cls: type, partner: Partner | None, setup: Setup, extra: list[Property], **options: Any
) -> None:
    """Model-check ``setup``: both outcomes must happen unless someone always votes no."""
    no = voters(setup, "no")
    exhaustive(
        with_coordinator(cls, partner),
        setup,
        [yes_on_disk(), write_ahead(WRITE_AHEAD), *extra, *(no_voter_says_no(no) if no else ())],
        outcomes=not no,
        partners=(COORDINATOR,) if partner is None else (),
        **options,
    )


def failure_free(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """No failures: both outcomes happen, nobody waits forever; then with a no voter."""
    setup = setup_with(Setup(participants=2, votes="any"), settings)
    _judge(cls, partner, setup, [], blocking=True)
    if "votes" not in settings:
        mixed = setup_with(Setup(participants=2, votes=("yes", "no")), settings)
        _judge(cls, partner, mixed, [], blocking=True)


def timeouts(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """A crash: AC1-AC4 hold, and a participant that has not voted yes never waits forever."""
    setup = setup_with(Setup(participants=2, votes="any", crashes=1), settings)
    _judge(cls, partner, setup, [unvoted_can_decide()])


def recovery(cls: type, partner: Partner | None = None, **settings: Any) -> None:
    """Crash-recovery and lost messages: every run of one participant, then random runs of
    more (settings change the random runs): atomicity always, termination once repaired."""
    small = Setup(participants=1, votes="any", crashes=1, recover=True, loss=True, timing="async")
    _judge(cls, partner, small, [])
    setup = setup_with(
        Setup(participants=2, votes="any", crashes=1, recover=True, loss=True, timing="async"),
        settings,
    )
    random_runs(
        with_coordinator(cls, partner),
        setup,
        partners=(COORDINATOR,) if partner is None else (),
        **run_settings(settings),
    )


EXERCISE = Exercise(
    "p2.twopc.participant",
    (("failure_free", failure_free), ("timeouts", timeouts), ("recovery", recovery)),
)
