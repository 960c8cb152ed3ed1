"""The ``dtcourse`` command line.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func``. Modules are found by
name, so adding a command never touches this file. Other distributions add commands
through the ``dtcourse.commands`` entry-point group (the instructor package adds
``build``, ``run`` and ``grade`` that way), so this package never imports them. Heavy
imports happen inside the handlers, so ``dtcourse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from types import ModuleType

from dtcourse import __version__
from dtcourse.errors import DTCourseError

COMMANDS_GROUP = "dtcourse.commands"
__all__ = ["COMMANDS_GROUP", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtcourse", description="An interactive course on distributed transactions."
    )
    parser.add_argument("--version", action="version", version=f"dtcourse {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(subparsers)
    return parser


def _command_modules() -> Iterator[ModuleType]:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{__name__}.{info.name}")
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        yield entry.load()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DTCourseError as error:
        print(f"dtcourse: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dtcourse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
