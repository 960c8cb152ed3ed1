"""What a student sees for an exercise not written yet: which function, and what to do."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dtcourse.engine.actors import ActorSystem, Node
from dtcourse.errors import DTCourseError, ModelError
from dtcourse.runtime.checks import Exercise, check


@dataclass(frozen=True)
class Idle:
    phase: str = "idle"


def not_written_yet(*args: object) -> None:
    raise NotImplementedError()


class Participant2PC(Node):
    def on_start(self, out):
        raise NotImplementedError()


class Coordinator2PC(Node):
    def on_start(self, out):
        out.send("P", "hello")
        return Idle()


class Listener(Node):
    def on_start(self, out):
        return Idle()

    def on_message(self, state, src, msg, out):
        return not_written_yet(msg)


def test_an_unwritten_handler_is_named_with_its_class():
    with pytest.raises(ModelError) as caught:
        ActorSystem([Participant2PC("P1")]).init_states()
    message = str(caught.value)
    assert message.startswith(
        "node 'P1': Participant2PC.on_start is not written yet (it raises NotImplementedError)"
    )
    assert "replace `raise NotImplementedError()` with your code" in message
    assert "on_start on start" not in message and "NotImplementedError: " not in message


def test_a_handler_calling_an_unwritten_function_names_both():
    system = ActorSystem([Coordinator2PC("C"), Listener("P")])
    state = system.init_states()[0]
    (deliver,) = system.actions(state)
    with pytest.raises(ModelError, match=(
        r"Listener.on_message calls not_written_yet, which is not written yet "
        r"\(it raises NotImplementedError\)"
    )):
        system.next_state(state, deliver)


def test_check_names_the_unwritten_function(monkeypatch, capsys):
    def call(obj):
        obj(1)

    monkeypatch.setattr(
        "dtcourse.runtime.checks._lookup", lambda _id: Exercise("x.stub", (("call", call),))
    )
    check("x.stub", not_written_yet)
    out = capsys.readouterr().out
    assert (
        "call: not_written_yet is not written yet (it raises NotImplementedError): replace "
        "`raise NotImplementedError()` with your code"
    ) in out


def test_check_shows_a_course_error_as_its_own_message(monkeypatch, capsys):
    def part(obj):
        raise DTCourseError("the model has no initial state: return at least one")

    monkeypatch.setattr(
        "dtcourse.runtime.checks._lookup", lambda _id: Exercise("x.model", (("init", part),))
    )
    check("x.model", object())
    out = capsys.readouterr().out
    assert "init: the model has no initial state: return at least one" in out
    assert "your code raised" not in out
