"""What the environment may do to a protocol: the network, the failures, the timing.

These are the assumptions that decide a protocol's verdicts, so they are explicit values
passed to an actor system rather than buried in it. The same values drive the model
checker (which explores every behaviour they allow) and the simulator (which draws one).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from dtcourse.errors import ModelError

#: ``async``: a timer may fire at any moment while it is set.
#: ``perfect``: a perfect failure detector; a timer waiting on nodes fires only when one of
#: them has crashed or is cut off from the waiter by a partition (a timer waiting on no
#: node is a local event and may fire at any moment).
Timing = Literal["async", "perfect"]
TIMINGS: tuple[str, ...] = ("async", "perfect")


@dataclass(frozen=True)
class Network:
    """Network semantics.

    A reliable network delivers each message in flight at most once, in any order. ``loss``
    lets it drop any message in flight; ``duplicate`` lets it deliver a message while
    keeping a copy in flight, so it may arrive again. Independently of these, a message that
    reaches a crashed node, or crosses a partition, is lost: nobody is there to receive it.
    """

    loss: bool = False
    duplicate: bool = False

    def describe(self) -> str:
        kinds = [name for name, on in (("lossy", self.loss), ("duplicating", self.duplicate)) if on]
        return ", ".join(kinds) if kinds else "reliable"


@dataclass(frozen=True)
class Faults:
    """The failure budget: how many crashes, whether crashed nodes recover, partitions.

    ``crashes`` bounds the number of crash events over a run; with ``recover`` a crashed
    node may restart from its durable log (crash-recovery), otherwise it stays down
    (crash-stop). ``partitions`` bounds how many times the network may split in two; a
    split heals nondeterministically.
    """

    crashes: int = 0
    recover: bool = False
    partitions: int = 0

    def __post_init__(self) -> None:
        for name in ("crashes", "partitions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ModelError(f"Faults.{name} must be a non-negative integer, got {value!r}")

    def describe(self) -> str:
        parts = [f"{self.crashes} crash{'es' if self.crashes != 1 else ''}"]
        if self.crashes:
            parts.append("crash-recovery" if self.recover else "crash-stop")
        if self.partitions:
            parts.append(f"{self.partitions} partition{'s' if self.partitions != 1 else ''}")
        return ", ".join(parts)


def check_timing(timing: str) -> Timing:
    if timing not in TIMINGS:
        raise ModelError(f"unknown timing {timing!r}: use one of {', '.join(TIMINGS)}")
    return timing  # type: ignore[return-value]


def bipartitions(count: int) -> tuple[tuple[int, ...], ...]:
    """Every split of ``count`` nodes into two non-empty sides, as a side (0/1) per node.

    Node 0 is always on side 0, so each split appears once.
    """
    splits = []
    others = range(1, count)
    for size in range(0, count - 1):
        for chosen in combinations(others, size):
            side = tuple(0 if (i == 0 or i in chosen) else 1 for i in range(count))
            splits.append(side)
    return tuple(splits)


def cut_off(sides: tuple[int, ...] | None, a: int, b: int) -> bool:
    """Whether nodes ``a`` and ``b`` are on different sides of the current partition."""
    return sides is not None and sides[a] != sides[b]
