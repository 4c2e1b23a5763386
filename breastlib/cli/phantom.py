"""The ``breastlib phantom`` subcommand: write a synthetic cohort for one study task."""

from __future__ import annotations

import argparse
import time

from breastlib.phantom.cohort import make_cohort
from breastlib.phantom.pair import TASKS
from breastlib.phantom.realism import Realism


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``phantom`` on the ``breastlib`` command's subparsers (sets ``func=run``)."""
    parser = subparsers.add_parser(
        "phantom",
        help="write a synthetic breast MRI cohort with exact ground truth",
        description=(
            "Generate pairs of synthetic prone breast MRI (and CT) with ground-truth "
            "displacement fields, label maps and corresponding landmarks, plus a "
            "manifest.csv that `breastlib register` and the study runner consume."
        ),
    )
    parser.add_argument("--task", required=True, choices=list(TASKS),
                        help="study task: which sequences and which motion regime")
    parser.add_argument("--pairs", type=int, default=1,
                        help="number of pairs (lesion: N with and N without a lesion)")
    parser.add_argument("--size", default="small", choices=["small", "full"],
                        help="small: ~2.7x2.7x2.5 mm for CI; full: ~0.76x0.76x1.5 mm")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (deterministic)")
    parser.add_argument("--out", default="phantom_cohort", help="output folder")
    parser.add_argument("--realism", default="clinical", choices=["off", "clinical"],
                        help="clinical effects: clinical (default: per-visit grids, "
                             "multi-scale deformation with sliding and shape change, "
                             "imperfect fat suppression, ghosting, motion, noise set from a "
                             "real exam, skin and chest-wall landmarks, every task in the "
                             "visit regime) or off (the original phantom, version 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the cohort; print the manifest path. Returns the exit status (0)."""
    start = time.perf_counter()
    manifest = make_cohort(args.task, args.pairs, size=args.size, seed=args.seed,
                           out_dir=args.out, realism=Realism.preset(args.realism))
    print(f"wrote {manifest} ({time.perf_counter() - start:.1f} s)")
    return 0
