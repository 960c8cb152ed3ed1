"""TLA+-style specifications written against ``dtcourse.engine.model``.

``build(name, rms)`` makes one: ``name`` is ``"tcommit"`` or ``"twophase"``; ``rms`` is
the number of resource managers (named ``r1``, ``r2``, ... as in the TLC configurations)
or their names.
"""

from __future__ import annotations

from collections.abc import Sequence

from dtcourse.commit.specs.tcommit import TCommit
from dtcourse.commit.specs.twophase import TwoPhase
from dtcourse.errors import ModelError

SPECS: dict[str, type[TCommit] | type[TwoPhase]] = {"tcommit": TCommit, "twophase": TwoPhase}

__all__ = ["SPECS", "TCommit", "TwoPhase", "build", "rm_names"]


def rm_names(rms: int | Sequence[str]) -> tuple[str, ...]:
    """Resource-manager names from a count or an explicit list, checked."""
    if isinstance(rms, bool):
        raise ModelError(f"number of resource managers must be an integer, got {rms!r}")
    if isinstance(rms, int):
        if rms < 1:
            raise ModelError(
                f"number of resource managers must be at least 1, got {rms}; pass e.g. 3"
            )
        return tuple(f"r{i}" for i in range(1, rms + 1))
    if isinstance(rms, str):
        raise ModelError(f"resource managers must be a count or a list of names, got {rms!r}")
    names = tuple(rms)
    if not names:
        raise ModelError("at least one resource manager is needed; pass e.g. 3 or ['r1', 'r2']")
    if not all(isinstance(name, str) and name for name in names):
        raise ModelError(f"resource manager names must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ModelError(f"resource manager names must be distinct, got {names!r}")
    return names


def build(name: str, rms: int | Sequence[str]) -> TCommit | TwoPhase:
    """The spec called ``name`` for the given resource managers."""
    try:
        spec = SPECS[name.lower()]
    except (KeyError, AttributeError):
        known = ", ".join(sorted(SPECS))
        raise ModelError(f"unknown specification {name!r}; choose one of: {known}") from None
    return spec(rm_names(rms))
