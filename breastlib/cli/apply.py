"""``breastlib apply``: apply a saved displacement to an image, a label map or landmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from breastlib.cli._options import add_volume_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``apply`` subcommand."""
    p = subparsers.add_parser(
        "apply", help="apply a saved displacement to an image, a label map or landmarks",
        description="Apply DISPLACEMENT (written by `breastlib register`) to another series "
        "(linear), a label map (nearest) or landmarks (fixed -> moving; --inverse for "
        "moving -> fixed).",
    )
    p.add_argument("displacement", type=Path)
    p.add_argument("--fixed", type=Path, required=True, help="the fixed image of the field")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--image", type=Path, help="image on the moving side to warp")
    group.add_argument("--labels", type=Path, help="label map on the moving side to warp")
    group.add_argument("--points", type=Path, help="landmarks CSV to map")
    p.add_argument("--inverse", action="store_true",
                   help="points only: map moving-image points to the fixed image")
    p.add_argument("--out", type=Path, required=True, help="output file")
    p.add_argument("--device", default="auto")
    add_volume_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Hand the options to :func:`breastlib.workflows.apply_field`."""
    from breastlib.workflows import apply_field

    apply_field(
        args.displacement, args.fixed, args.out, image=args.image, labels=args.labels,
        points=args.points, inverse=args.inverse, device=args.device,
        volume_index=args.volume_index, nan=args.nan,
    )
    return 0
