"""The search for the run that led to a failing handler can be bounded or switched off."""

from __future__ import annotations

import pytest

from dtcourse.engine.actors import ActorSystem, Node
from dtcourse.errors import ModelError


class Ping(Node):
    def on_start(self, out):
        out.send("B", "ping")
        return 0


class Breaks(Node):
    def on_start(self, out):
        return 0

    def on_message(self, state, src, msg, out):
        raise ValueError("bad handler")


def _failure(**options) -> ModelError:
    system = ActorSystem([Ping("A"), Breaks("B")], **options)
    state = system.init_states()[0]
    action = system.actions(state)[0]
    with pytest.raises(ModelError, match="node 'B', on_message on message") as caught:
        system.next_state(state, action)
    return caught.value


def test_by_default_the_error_carries_the_run_that_led_there() -> None:
    error = _failure()
    assert error.path is not None and len(error.path) == 0
    assert "after this run" in str(error)


def test_no_search_when_switched_off() -> None:
    error = _failure(trace_search_seconds=0)
    assert error.path is None
    assert "not searched for" in str(error) and "raised ValueError: bad handler" in str(error)


@pytest.mark.parametrize("bad", [-1, "2", True])
def test_the_bound_must_be_a_non_negative_number(bad: object) -> None:
    with pytest.raises(ModelError, match="trace_search_seconds"):
        ActorSystem([Ping("A"), Breaks("B")], trace_search_seconds=bad)  # type: ignore[arg-type]
