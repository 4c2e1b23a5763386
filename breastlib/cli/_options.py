"""Options shared by several subcommands."""

from __future__ import annotations

import argparse


def add_volume_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--volume-index", type=int, default=None,
                        help="volume to take from 4-D input (e.g. a DCE phase)")
    parser.add_argument("--nan", choices=("error", "zero"), default="error",
                        help="NaN/Inf voxels: refuse (default) or replace by 0")


def profile_name(text: str) -> str:
    """An ``argparse`` type: a profile name :func:`breastlib.profiles.get_profile`
    accepts, or its own error (a renamed profile says what replaced it)."""
    from breastlib.errors import BreastlibError
    from breastlib.profiles import get_profile

    try:
        get_profile(text)
    except BreastlibError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_profile_option(parser: argparse.ArgumentParser) -> None:
    """``--profile`` (default ``fast``), checked by :func:`profile_name`."""
    from breastlib.profiles import profile_names

    parser.add_argument("--profile", default="fast", type=profile_name, metavar="PROFILE",
                        help="parameter profile: fast (default), corrected, paper (the "
                        "paper's released pipeline), convexadam, or paper+<correction> "
                        f"({', '.join(profile_names())})")
