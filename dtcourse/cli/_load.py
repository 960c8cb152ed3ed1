"""Loading a student's function from a file: ``--rule`` and ``--recovery`` take ``FILE.py:NAME``.

The course ships no answer, so the commands that need one (3PC's termination rule, the
coordinator's recovery step) run the student's own function, saved in a file.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dtcourse.errors import DTCourseError, ModelError

RULE_HELP = (
    "3PC's termination rule: FILE.py:NAME, your function from exercise p2.threepc "
    "({name: state} -> 'commit' or 'abort'), or 'naive' for the deliberately wrong rule of "
    "the reading (commit only if somebody committed). Required for 3pc; no correct rule ships"
)


def load_function(spec: str, option: str, error: type[DTCourseError] = DTCourseError) -> Callable:
    """The function ``NAME`` defined in ``FILE.py``, given as ``FILE.py:NAME``."""
    location, sep, name = spec.rpartition(":")
    if not sep or not location or not name.isidentifier():
        raise error(f"{option} takes FILE.py:NAME, e.g. my_answers.py:terminate; got {spec!r}")
    path = Path(location)
    if not path.is_file():
        raise error(f"{option}: no file {path}; save your function in a .py file first")
    module_spec = importlib.util.spec_from_file_location(f"_dtcourse_user_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise error(f"{option}: cannot load {path} as Python; give a .py file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as raised:
        raise error(f"{option}: running {path} raised {type(raised).__name__}: {raised}") from None
    found: Any = getattr(module, name, None)
    if not callable(found):
        raise error(f"{option}: {path} defines no function {name!r}")
    return found


def add_rule_option(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--rule", metavar="FILE.py:NAME|naive", help=RULE_HELP)


def rule_of(args: argparse.Namespace, protocol: str) -> Callable | None:
    """The termination rule ``--rule`` names, None for 2PC; refused where it makes no sense."""
    if protocol != "3pc":
        if args.rule is not None:
            raise ModelError("--rule is 3PC's termination rule; 2PC has none")
        return None
    if args.rule is None:
        raise ModelError(
            "3pc needs its termination rule: --rule FILE.py:NAME with your function from "
            "exercise p2.threepc, or --rule naive for the deliberately wrong rule of the reading"
        )
    if args.rule == "naive":
        from dtcourse.commit.protocols.threepc import naive_rule

        return naive_rule
    return load_function(args.rule, "--rule", ModelError)


def rule_spec(args: argparse.Namespace) -> str | None:
    """``--rule`` as saved in a trace: a file made absolute, so a replay elsewhere finds it."""
    if args.rule in (None, "naive"):
        return args.rule
    location, _, name = args.rule.rpartition(":")
    return f"{Path(location).resolve()}:{name}"


def build_with_rule(protocol: str, participants: int, *, rule: str | None = None, **options: Any):
    """``dtcourse.commit.protocols.build`` with the rule given as ``--rule`` gives it.

    Saved traces name this function as their origin: a rule loaded from a student's file has
    no import path, but its ``FILE.py:NAME`` can be loaded again when the trace is replayed.
    """
    from dtcourse.commit.protocols import build

    extra: dict[str, Any] = {}
    if rule is not None:
        extra["rule"] = rule_of(argparse.Namespace(rule=rule), protocol)
    return build(protocol, participants, **options, **extra)
