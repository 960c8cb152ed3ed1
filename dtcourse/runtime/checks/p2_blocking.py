"""Visible checks of p2.blocking: the blocking run the student found, and what they read in it.

Nothing here knows the answer: each part replays the student's own run on the system of
the exercise, ``build("2pc", 2, votes="yes", crashes=1, timing="perfect")`` (the course's
demonstration 2PC, not an exercise's answer), and compares what the student wrote with
what that run shows. Settings change the system the run must replay on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dtcourse.engine.actors import ActorSystem, Crash, Deliver, SystemState
from dtcourse.engine.trace import message_label
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.harness import COORDINATOR, replay

__all__ = [
    "BLOCKING_SETUP",
    "EXERCISE",
    "PHASES",
    "blocking_failed_node",
    "blocking_found",
    "blocking_participants",
    "blocking_votes",
]

BLOCKING_SETUP = {"participants": 2, "votes": "yes", "crashes": 1, "timing": "perfect"}
PHASES = ("working", "prepared", "committed", "aborted")
_PHASE_NAMES = {"commit": "committed", "abort": "aborted"}


def _answer(answer: Any, key: str) -> Any:
    assert isinstance(answer, Mapping), "blocking_answer must be a dict (see the template)"
    assert key in answer, f"blocking_answer has no {key!r}; keep every key of the template"
    return answer[key]


def _blocking_path(answer: Any):
    result = _answer(answer, "result")
    path = getattr(result, "blocking", None)
    assert path is not None, (
        "answer['result'] must be the CheckResult of the check that found blocking; this "
        "one has no blocking trace (did you run build('2pc', ...) with a crash?)"
    )
    return path


def _phase(local: Any) -> str:
    phase = getattr(local, "phase", None)
    return _PHASE_NAMES.get(str(phase), str(phase))


def _replay(path: Any, settings: Mapping[str, Any]) -> tuple[ActorSystem, SystemState]:
    """Run the path's actions on a fresh system: its states are that system's own."""
    from dtcourse.commit.protocols import build

    system = build("2pc", **{**BLOCKING_SETUP, **settings})
    return system, replay(system, path, "the blocking run")


def blocking_found(answer: Any, **settings: Any) -> None:
    """The result holds a blocking run that replays on the system of the exercise."""
    path = _blocking_path(answer)
    assert any(isinstance(a, Crash) for a in path.actions), (
        "the blocking run has no crash: use a fault budget with crashes=1"
    )
    system, last = _replay(path, settings)
    waiting = [
        p for p in system.participants if system.is_up(last, p) and system.decision(last, p) is None
    ]
    assert waiting, "in the last state of your run every live participant has decided"


def blocking_failed_node(answer: Any, **settings: Any) -> None:
    path = _blocking_path(answer)
    crashed = [a.node for a in path.actions if isinstance(a, Crash)]
    failed = _answer(answer, "failed")
    assert failed in crashed, (
        f"answer['failed'] is {failed!r}, but in your blocking run the node that crashed is "
        f"{crashed[0] if crashed else 'none'}: read the trace again"
    )


def blocking_votes(answer: Any, **settings: Any) -> None:
    """How many votes reached the coordinator before it crashed."""
    path = _blocking_path(answer)
    received = 0
    for action in path.actions:
        if isinstance(action, Crash) and action.node == COORDINATOR:
            break
        if isinstance(action, Deliver) and action.dst == COORDINATOR:
            received += message_label(action.msg).startswith("Vote")
    got = _answer(answer, "votes_received")
    assert got == received, (
        f"answer['votes_received'] is {got!r}; count the Vote messages delivered to "
        "C before it crashed (a vote sent is not a vote received)"
    )


def blocking_participants(answer: Any, **settings: Any) -> None:
    """Each participant's phase when blocked, and what the coordinator's log decided."""
    system, last = _replay(_blocking_path(answer), settings)
    got = _answer(answer, "participants")
    assert isinstance(got, Mapping), "answer['participants'] must map P1, P2 to a phase"
    for p in system.participants:
        local = system.local(last, p)
        want = "down" if local is None else _phase(local)
        assert got.get(p) == want, (
            f"answer['participants'][{p!r}] is {got.get(p)!r}; in the blocked state it is one "
            f"of {', '.join(PHASES)}: look at the last state of your run"
        )
    logged = [r for r in system.log(last, COORDINATOR) if r in ("commit", "abort")]
    decision = _answer(answer, "coordinator_decision")
    on_disk = logged[0] if logged else None
    assert decision == on_disk, (
        f"answer['coordinator_decision'] is {decision!r}; what does C's durable log hold? "
        "(None when it logged no decision)"
    )


EXERCISE = Exercise(
    "p2.blocking",
    (
        ("found", blocking_found),
        ("failed", blocking_failed_node),
        ("votes", blocking_votes),
        ("participants", blocking_participants),
    ),
)
