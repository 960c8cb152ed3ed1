"""The ``dtcourse`` command line.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func``. Modules are found by
name, so adding a command never touches this file. Heavy imports happen inside the
handlers, so ``dtcourse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from dtcourse import __version__
from dtcourse.errors import DTCourseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtcourse", description="An interactive course on distributed transactions."
    )
    parser.add_argument("--version", action="version", version=f"dtcourse {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{info.name}").register(subparsers)
    return parser


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
