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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand, or with subcommand ``only`` alone.

    Each subcommand's module imports what its options need (the phantom's tasks, the
    encoders' names); building only the one being run keeps, for example, pandas and the
    phantom out of a ``breastlib register`` process.
    """
    parser = argparse.ArgumentParser(
        prog="breastlib",
        description="Zero-shot breast MRI registration with vision foundation models.",
    )
    from breastlib import __version__

    parser.add_argument("--version", action="version", version=f"breastlib {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in _SUBCOMMANDS else _SUBCOMMANDS:
        importlib.import_module(f"breastlib.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``breastlib`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
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
