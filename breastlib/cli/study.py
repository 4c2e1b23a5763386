"""``breastlib study``: run the study grid from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from breastlib.cli._options import add_profile_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``study`` subcommand."""
    p = subparsers.add_parser(
        "study", help="run every method on every pair of a cohort into one results table",
        description="Run METHODS on every pair of the cohort MANIFEST. Writes DIR/rows/ (one "
        "file per finished pair x method), DIR/results.csv and DIR/results.parquet. A run "
        "that is interrupted resumes where it stopped.",
    )
    p.add_argument("--cohort", type=Path, required=True, help="cohort manifest.csv")
    p.add_argument("--methods", required=True,
                   help="comma-separated: identity,affine,ants,elastix,mind,sam,dinov2,...")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--weights", default="random", help="pretrained, random or a path")
    add_profile_option(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed of every method (default 0)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds for encoders with random weights, one row "
                   "each (e.g. 0,1,2; default: --seed). Encoders sharing one random network "
                   "(sam, medsam, sslsam) run once, under the first one listed")
    p.add_argument("--retry-failed", action="store_true", help="rerun rows that failed")
    p.add_argument("--executor", default="local", choices=("local", "dask"))
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument("--workers", type=int, default=1, help="parallel workers")
    p.add_argument("--timeout", type=float, default=None, help="seconds per pair x method")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the study and print a one-line summary."""
    from breastlib.study.run import run_study

    table = run_study(
        args.cohort, args.methods.split(","), out=args.out, weights=args.weights,
        profile=args.profile, device=args.device, seed=args.seed,
        retry_failed=args.retry_failed, executor=args.executor, scheduler=args.scheduler,
        workers=args.workers, progress=sys.stderr.isatty(), timeout=args.timeout,
        seeds=_seeds(args.seeds),
    )
    failed = int((table["status"] == "failed").sum())
    print(f"{len(table)} rows ({failed} failed) in {args.out / 'results.csv'}")
    return 0


def _seeds(text: str | None) -> list[int] | None:
    """``"0,1,2"`` -> ``[0, 1, 2]``; a clear error for anything else."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        from breastlib.errors import BreastlibError

        raise BreastlibError(f"--seeds takes comma-separated integers, got {text!r}") from None
