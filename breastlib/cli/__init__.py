"""The ``breastlib`` command line.

Every user error ends in one line ``breastlib: error: <file>: <what>`` and exit code 2,
with no traceback and no partial output.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from breastlib.errors import BreastlibError

EXIT_USAGE = 2

# One module per subcommand, each exposing add_parser(subparsers), which sets ``func``.
_SUBCOMMANDS = ("register", "apply", "phantom", "weights", "study", "data")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="breastlib",
        description="Zero-shot breast MRI registration with vision foundation models.",
    )
    from breastlib import __version__

    parser.add_argument("--version", action="version", version=f"breastlib {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(f"breastlib.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``breastlib`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BreastlibError as exc:
        print(f"breastlib: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("breastlib: interrupted; no partial output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
