"""The textbook state machines of commit protocols, and where to put their states on a page.

These are the diagrams students compare their handlers against: a 2PC participant, a
2PC coordinator (presumed nothing) and a 3PC participant with the termination protocol's
timeout rules (Bernstein, Hadzilacos and Goodman, ch. 7). The layout is computed here,
without any drawing library: states go into layers by longest path from the initial
state, so every forward transition points right and the picture needs no graph tool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dtcourse.errors import DTCourseError


@dataclass(frozen=True)
class Transition:
    """An edge ``source -> target`` labelled ``event / action``."""

    source: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class StateMachine:
    """States (the first is initial unless ``initial`` says otherwise) and transitions."""

    name: str
    states: tuple[str, ...]
    transitions: tuple[Transition, ...]
    title: str = ""
    initial: str | None = None

    @property
    def start(self) -> str:
        return self.initial if self.initial is not None else self.states[0]

    @property
    def final_states(self) -> tuple[str, ...]:
        """States with no way out (self-loops aside): committed, aborted, ended."""
        leaving = {t.source for t in self.transitions if t.source != t.target}
        return tuple(state for state in self.states if state not in leaving)


def _machine(name: str, title: str, states: str, edges: Iterable[tuple[str, str, str]]):
    transitions = tuple(Transition(source, target, label) for source, target, label in edges)
    return StateMachine(name, tuple(states.split()), transitions, title)


_MACHINES: dict[str, StateMachine] = {
    "2pc-participant": _machine(
        "2pc-participant",
        "2PC participant",
        "working prepared committed aborted",
        [
            ("working", "prepared", "Prepare /\nforce prepared,\nvote yes"),
            ("working", "aborted", "Prepare / vote no,\nor timeout / abort"),
            ("prepared", "committed", "Commit /\nforce commit, ack"),
            ("prepared", "aborted", "Abort /\nforce abort, ack"),
            ("prepared", "prepared", "timeout / ask coordinator\n(blocked: in doubt)"),
        ],
    ),
    "2pc-coordinator": _machine(
        "2pc-coordinator",
        "2PC coordinator (presumed nothing)",
        "initial collecting committed aborted ended",
        [
            ("initial", "collecting", "begin /\nsend Prepare"),
            ("collecting", "collecting", "Vote(yes) / wait for the rest"),
            ("collecting", "committed", "all Vote(yes) /\nforce commit,\nsend Commit"),
            ("collecting", "aborted", "Vote(no) or timeout /\nforce abort,\nsend Abort"),
            ("committed", "ended", "all acks /\nlazy end"),
            ("aborted", "ended", "all acks /\nlazy end"),
        ],
    ),
    "3pc-participant": _machine(
        "3pc-participant",
        "3PC participant (with termination protocol)",
        "working prepared precommitted committed aborted",
        [
            ("working", "prepared", "Prepare /\nvote yes"),
            ("working", "aborted", "Prepare / vote no,\nor timeout / abort"),
            ("prepared", "precommitted", "PreCommit /\nack"),
            ("prepared", "aborted", "Abort, or\ntimeout: termination\naborts"),
            ("precommitted", "committed", "DoCommit,\nor timeout:\ntermination\ncommits"),
        ],
    ),
}


def protocol_names() -> tuple[str, ...]:
    return tuple(_MACHINES)


def protocol_state_machine(name: str) -> StateMachine:
    """The state machine of a protocol role: ``2pc-participant``, ``2pc-coordinator``,
    ``3pc-participant``."""
    try:
        return _MACHINES[name]
    except KeyError:
        known = ", ".join(_MACHINES)
        raise DTCourseError(f"no state machine called {name!r}; choose one of: {known}") from None


def check_machine(
    states: Sequence[str], transitions: Sequence[Transition], initial: str | None = None
) -> None:
    """Every transition must join two declared states, states must be distinct, and the
    initial state, if named, must be one of them."""
    if not states:
        raise DTCourseError("a state diagram needs at least one state")
    if initial is not None and initial not in states:
        raise DTCourseError(
            f"initial state {initial!r} is not one of the states {list(states)}; name one of "
            "them, or leave it out to start from the first"
        )
    seen: set[str] = set()
    for state in states:
        if state in seen:
            raise DTCourseError(f"state {state!r} is listed twice; list each state once")
        seen.add(state)
    for transition in transitions:
        for end in (transition.source, transition.target):
            if end not in seen:
                raise DTCourseError(
                    f"transition {transition.source!r} -> {transition.target!r} uses "
                    f"undeclared state {end!r}; add it to the states"
                )


def as_transitions(items: Iterable[object]) -> tuple[Transition, ...]:
    """Accept ``Transition`` values or ``(source, target[, label])`` tuples."""
    result: list[Transition] = []
    for item in items:
        if isinstance(item, Transition):
            result.append(item)
        elif isinstance(item, tuple | list) and len(item) in (2, 3):
            result.append(Transition(*(str(part) for part in item)))
        else:
            raise DTCourseError(
                f"cannot read transition {item!r}: give (source, target) or "
                "(source, target, label) tuples, or Transition values"
            )
    return tuple(result)


def layers(
    states: Sequence[str], transitions: Sequence[Transition], initial: str | None = None
) -> dict[str, int]:
    """Layer of each state: the longest path to it from the initial state.

    Back edges (found by depth-first search from the initial state) are ignored, so a
    machine with cycles still gets layers; states not reachable start new searches in the
    order they were listed.
    """
    check_machine(states, transitions, initial)
    successors: dict[str, list[str]] = {state: [] for state in states}
    for transition in transitions:
        if transition.source != transition.target:
            successors[transition.source].append(transition.target)
    order: list[str] = []  # reverse postorder = a topological order of the forward edges
    visited: set[str] = set()
    back: set[tuple[str, str]] = set()
    on_path: set[str] = set()

    def visit(state: str) -> None:
        visited.add(state)
        on_path.add(state)
        for nxt in successors[state]:
            if nxt in on_path:
                back.add((state, nxt))
            elif nxt not in visited:
                visit(nxt)
        on_path.discard(state)
        order.append(state)

    roots = [initial or states[0], *states]
    for root in roots:
        if root not in visited:
            visit(root)
    layer = dict.fromkeys(states, 0)
    for state in reversed(order):
        for nxt in successors[state]:
            if (state, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[state] + 1)
    return layer


def positions(
    states: Sequence[str],
    transitions: Sequence[Transition],
    initial: str | None = None,
    *,
    dx: float = 3.0,
    dy: float = 1.8,
) -> dict[str, tuple[float, float]]:
    """Centre of each state: layers left to right, states of a layer stacked and centred."""
    layer = layers(states, transitions, initial)
    columns: dict[int, list[str]] = {}
    for state in states:
        columns.setdefault(layer[state], []).append(state)
    placed: dict[str, tuple[float, float]] = {}
    for number, members in columns.items():
        middle = (len(members) - 1) / 2
        for slot, state in enumerate(members):
            placed[state] = (number * dx, (middle - slot) * dy)
    return placed
