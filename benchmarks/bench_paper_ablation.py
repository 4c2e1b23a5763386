"""What each correction changes: the paper's released pipeline (``paper``), the same with
one breastlib correction switched on (``paper+<correction>``, one run per correction of
``breastlib/profiles/corrections.py``), and with all of them (``corrected``), on one small
phantom pair per task, for MIND and two encoders.

Runs through the study runner (:func:`breastlib.study.run.run_study`, one fresh process
per pair x method x profile), so a killed run resumes where it stopped: the rows live in
``--work`` (default ``_build/paper_ablation/``, not committed). Writes
``benchmarks/results/paper_ablation.json``: the scale it ran at, every row (dense field
error, the primary metric; TRE; breast and FGT Dice; folding; the stage kept) and each
correction's effect, its metric minus ``paper``'s on the same pair and method.

Scale. ``paper`` runs 1000 Adam iterations on each encoder's released input size (DINOv2
1792 px), hours per pair on a CPU. By default this script therefore runs every profile at
a stated smaller scale, ``--iterations 80 --encoder-size reduced`` (SAM 256 px, DINOv2 and
the CLIP towers 224 px), which the JSON records; ``--full`` runs the profiles as they are
(for a GPU). Encoders use random weights unless their checkpoints are cached
(``--weights auto``).

Run (about 14 profiles x 3 methods x 4 tasks; hours on a 2-core CPU)::

    .venv/bin/python benchmarks/bench_paper_ablation.py

A smoke run in a minute (one task, MIND, one correction, 2 iterations, elsewhere)::

    .venv/bin/python benchmarks/bench_paper_ablation.py --tasks longitudinal \\
        --methods mind --corrections grid --iterations 2 --work /tmp/ablation \\
        --out /tmp/ablation/paper_ablation.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from breastlib.phantom import make_cohort
from breastlib.profiles import correction_names
from breastlib.study.run import run_study

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "paper_ablation.json"
TASKS = ("longitudinal", "sequence", "modality", "lesion")
METRICS = ("field_error_mean_mm", "tre_mean_after_mm", "dice_breast", "dice_fgt",
           "jac_nonpos_pct")
KEPT = ("task", "pair_id", "method", "weights", "profile", "tre_mean_before_mm", *METRICS,
        "stage_kept", "seconds_optimisation", "status", "error")


def one_pair_cohort(task: str, work: Path) -> Path:
    """A cohort of the task's first small phantom pair (seed 0): its manifest path (the
    cohort is written once and reused by a resumed run)."""
    single = work / "cohorts" / task / "manifest_one.csv"
    if single.is_file():
        return single
    manifest = make_cohort(task, 1, size="small", seed=0, out_dir=single.parent)
    pd.read_csv(manifest).head(1).to_csv(single, index=False)
    return single


def effects(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Each profile's metrics minus ``paper``'s on the same task, pair and method."""
    ok = table[table["status"] == "ok"]
    base = ok[ok["profile"] == "paper"].set_index(["task", "pair_id", "method"])
    out = []
    for _, row in ok[ok["profile"] != "paper"].iterrows():
        key = (row["task"], row["pair_id"], row["method"])
        if key not in base.index:
            continue
        out.append({"task": key[0], "method": key[2], "profile": row["profile"],
                    **{f"delta_{m}": float(row[m] - base.loc[key, m]) for m in METRICS}})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=["mind", "sam", "dinov2"])
    parser.add_argument("--corrections", nargs="+", default=correction_names(),
                        choices=correction_names())
    parser.add_argument("--iterations", type=int, default=80,
                        help="Adam iterations of every profile (ignored with --full)")
    parser.add_argument("--encoder-size", default="reduced", choices=("reduced", "paper"),
                        help="encoder input sizes (ignored with --full)")
    parser.add_argument("--full", action="store_true",
                        help="run the profiles as they are: 1000 iterations, paper sizes")
    parser.add_argument("--weights", default="auto", help="random, pretrained or auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=1,
                        help="registrations at a time (one process each)")
    parser.add_argument("--work", type=Path, default=ROOT / "_build" / "paper_ablation")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    overrides = None if args.full else {"iterations": args.iterations,
                                        "encoder_size": args.encoder_size}
    profiles = ["paper", *(f"paper+{c}" for c in args.corrections), "corrected"]
    start = time.perf_counter()
    tables = []
    for task in args.tasks:
        manifest = one_pair_cohort(task, args.work)
        for profile in profiles:
            tables.append(run_study(manifest, args.methods, out=args.work / task / profile,
                                    weights=args.weights, profile=profile,
                                    device=args.device, overrides=overrides,
                                    workers=args.workers, progress=False))
    table = pd.concat(tables, ignore_index=True)
    record = {
        "command": "python benchmarks/bench_paper_ablation.py " + " ".join(argv or []),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.perf_counter() - start, 1),
        "scale": "as the profiles are" if overrides is None else
        f"every profile at {overrides} (smaller than the paper's scale)",
        "overrides": overrides,
        "pairs": "the first small phantom pair (seed 0) of each task",
        "primary_metric": "field_error_mean_mm",
        "rows": [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                 for row in table[list(KEPT)].to_dict("records")],
        "effects": effects(table),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"{len(table)} rows ({int((table['status'] == 'ok').sum())} ok) -> {args.out}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
