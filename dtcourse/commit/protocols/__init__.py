"""The course's commit protocols as actor systems, each under explicit assumptions.

``build(name, participants, ...)`` makes the actor system for ``"2pc"`` or ``"3pc"`` with
the atomic-commit properties attached. Each protocol runs under its textbook timing unless
told otherwise: 2PC with asynchronous timeouts, 3PC with a perfect failure detector.
``"2pc"`` is the presumed-nothing protocol of R*, with acknowledgements (``twopc``); it is
not the answer to the 2PC exercises, which speak the messages of ``dtcourse.commit.messages``
and leave acknowledgements out.
3PC needs ``rule=``, its termination rule (exercise ``p2.threepc``; no correct one ships).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dtcourse.commit import properties
from dtcourse.engine.actors import ActorSystem
from dtcourse.engine.network import Faults, Network, Timing, check_timing
from dtcourse.errors import ModelError

PROTOCOLS = ("2pc", "3pc")
DEFAULT_TIMING: dict[str, Timing] = {"2pc": "async", "3pc": "perfect"}
COORDINATOR = "C"


@dataclass(frozen=True)
class Options:
    """Everything that decides a protocol's verdicts, in one value."""

    participants: int = 3
    votes: str | tuple[str, ...] = "any"
    crashes: int = 0
    recover: bool = False
    loss: bool = False
    duplicate: bool = False
    partitions: int = 0
    timing: Timing | None = None
    symmetry: bool = False
    cooperative: bool = False
    rule: Callable[[Mapping[str, str]], str] | None = None


def participant_names(count: int) -> tuple[str, ...]:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ModelError(f"the number of participants must be a positive integer, got {count!r}")
    return tuple(f"P{i}" for i in range(1, count + 1))


def votes_for(names: Sequence[str], votes: str | Sequence[str]) -> tuple[str, ...]:
    choices = (votes,) * len(names) if isinstance(votes, str) else tuple(votes)
    if len(choices) != len(names):
        raise ModelError(f"give one vote per participant: {len(names)} needed, got {choices}")
    for choice in choices:
        if choice not in ("yes", "no", "any"):
            raise ModelError(f"a vote is 'yes', 'no' or 'any', got {choice!r}")
    return choices


def build(name: str, participants: int = 3, **options: object) -> ActorSystem:
    """The actor system for protocol ``name`` with the given ``Options`` fields."""
    key = name.lower() if isinstance(name, str) else name
    if key not in PROTOCOLS:
        raise ModelError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    try:
        opts = Options(participants=participants, **options)  # type: ignore[arg-type]
    except TypeError as error:
        raise ModelError(f"bad protocol option: {error}") from None
    names = participant_names(opts.participants)
    votes = votes_for(names, opts.votes)
    timing = check_timing(opts.timing or DEFAULT_TIMING[key])
    if key == "2pc":
        from dtcourse.commit.protocols import twopc

        if opts.rule is not None:
            raise ModelError("rule= is 3PC's termination rule; 2PC has none")
        nodes = twopc.nodes(COORDINATOR, names, votes, cooperative=opts.cooperative)  # type: ignore[arg-type]
    else:
        from dtcourse.commit.protocols import threepc

        if opts.cooperative:
            raise ModelError("cooperative termination is a 2PC option; 3PC has its own")
        nodes = threepc.nodes(COORDINATOR, names, votes, opts.rule)  # type: ignore[arg-type]
    groups: list[tuple[str, ...]] = []
    if opts.symmetry:
        if key == "3pc":
            raise ModelError(
                "3PC has no interchangeable participants (its termination protocol elects "
                "the lowest-numbered one); run it without symmetry"
            )
        for choice in dict.fromkeys(votes):
            groups.append(tuple(p for p, v in zip(names, votes, strict=True) if v == choice))
    return ActorSystem(
        nodes,
        network=Network(loss=opts.loss, duplicate=opts.duplicate),
        faults=Faults(crashes=opts.crashes, recover=opts.recover, partitions=opts.partitions),
        timing=timing,
        participants=names,
        properties=properties.properties(blocking=not opts.symmetry),
        symmetry=groups,
        name=f"{key} cooperative" if opts.cooperative else key,
    )
