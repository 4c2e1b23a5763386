"""What the stage guard changes: MIND and random-weight encoders with ConvexAdam (`fast`) on
small phantom pairs of each task, with the guard off and on, scored by the one pair
evaluation.

Run by hand (about half a minute per registration on a 2-core CPU)::

    .venv/bin/python benchmarks/bench_guard.py [--seeds 12] [--methods mind dinov2 sam]

Writes ``benchmarks/results/guard.json``: one record per (task, seed, method, guard) with
the dense field error (the primary metric), TRE, breast Dice, folding, the verdict, the
stage kept and the seconds taken (total and the guard's own share).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from breastlib.evaluate.pair import load_cohort_pair, pair_metrics
from breastlib.phantom import make_cohort
from breastlib.register import register_method

OUT = Path(__file__).parent / "results" / "guard.json"
KEYS = ("field_error_mean_mm", "field_error_mean_before_mm", "field_error_p95_mm",
        "tre_mean_after_mm", "tre_mean_before_mm", "dice_breast", "dice_breast_before",
        "jac_nonpos_pct", "verdict")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+",
                        default=["longitudinal", "sequence", "modality", "lesion"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[12])
    parser.add_argument("--methods", nargs="+", default=["mind", "dinov2", "sam"])
    args = parser.parse_args(argv)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for seed in args.seeds:
                manifest = make_cohort(task, n_pairs=1, size="small", seed=seed,
                                       out_dir=Path(tmp) / f"{task}-{seed}")
                pair_id = str(pd.read_csv(manifest)["pair_id"].iloc[0])
                pair = load_cohort_pair(manifest, pair_id)
                for method in args.methods:
                    for guard in (False, True):
                        start = time.perf_counter()
                        result = register_method(pair.fixed, pair.moving, method=method,
                                                 profile="fast", device="cpu",
                                                 weights="random", guard=guard)
                        seconds = time.perf_counter() - start
                        metrics = pair_metrics(result.displacement, pair, detail=True)
                        record = {"task": task, "seed": seed, "method": method,
                                  "guard": guard, "stage_kept": result.stage,
                                  "seconds": round(seconds, 1),
                                  "seconds_guard": round(result.seconds["guard"], 2)}
                        record |= {k: metrics.get(k) for k in KEYS}
                        records.append(record)
                        print(json.dumps(record), flush=True)
    OUT.write_text(json.dumps({
        "benchmark": "guard", "profile": "fast", "size": "small", "weights": "random",
        "machine": platform.machine(), "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_guard.py " + " ".join(argv or sys.argv[1:]),
        "rows": records,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
