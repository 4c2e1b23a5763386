"""Options shared by several subcommands."""

from __future__ import annotations

import argparse


def add_volume_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--volume-index", type=int, default=None,
                        help="volume to take from 4-D input (e.g. a DCE phase)")
    parser.add_argument("--nan", choices=("error", "zero"), default="error",
                        help="NaN/Inf voxels: refuse (default) or replace by 0")
