"""Sampling in slabs against one grid_sample call: what using every CPU core buys.

PyTorch's CPU kernels for 3-D ``grid_sample`` and its gradient parallelise over the batch
only, so a registration that samples one volume at a time runs its warps on one core.
:func:`breastlib._sampling.grid_sample_slabs` and :func:`~breastlib._sampling.grid_gradient_slabs`
cut the output grid into one slab per thread and sample them as a batch, with the same
numbers to the bit. This script registers one small clinical phantom pair (longitudinal,
seed 0) with MIND under each profile given, alternating with and without slabs in one
process, and records every stage's seconds and the dense error (which must not change).

Run by hand on a quiet machine (about two minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_grid_sample_slabs.py [--profiles convexadam fast]
        [--repeats 2] [--size small] [--out FILE]

Writes ``benchmarks/results/grid_sample_slabs.json``, which the performance appendix shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from cold_cache import empty_cache
from held_out import held_out_pairs

import breastlib._sampling as sampling
from breastlib.evaluate.pair import pair_metrics
from breastlib.register import register_pair

OUT = Path(__file__).parent / "results" / "grid_sample_slabs.json"


def run(pair, profile: str, slabs: bool) -> dict:
    """One registration, with one slab per thread or (``slabs=False``) one slab."""
    original = sampling.cpu_slabs
    if not slabs:  # the helpers look it up at each call: one slab, one grid_sample call
        sampling.cpu_slabs = lambda tensor: 1
    try:
        with empty_cache():
            start = time.perf_counter()
            result = register_pair(pair.fixed, pair.moving, method="mind", profile=profile,
                                   device="cpu")
            wall = time.perf_counter() - start
    finally:
        sampling.cpu_slabs = original
    metrics = pair_metrics(result.displacement, pair)
    return {"profile": profile, "slabs": torch.get_num_threads() if slabs else 1,
            **{f"{k}_s": round(v, 3) for k, v in result.seconds.items()},
            "wall_s": round(wall, 3), "stage": result.stage,
            "field_error_mean_mm": round(float(metrics["field_error_mean_mm"]), 6),
            "field_sha1": hashlib.sha1(result.displacement.field.tobytes()).hexdigest()[:16]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["convexadam", "fast"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", default="small", choices=["small", "full"])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        _, _, pair = next(held_out_pairs(["longitudinal"], [0], Path(tmp), size=args.size))
        run(pair, args.profiles[0], True)  # warm-up: first-call allocations, lazy imports
        for profile in args.profiles:
            for repeat in range(args.repeats):
                for slabs in (False, True):
                    rows.append({"repeat": repeat, **run(pair, profile, slabs)})
                    print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    same = table.groupby("profile")["field_sha1"].nunique().eq(1).all()
    best = table.groupby(["profile", "slabs"]).min(numeric_only=True)
    args.out.write_text(json.dumps({
        "benchmark": "grid_sample_slabs", "size": args.size, "task": "longitudinal",
        "seed": 0, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python benchmarks/bench_grid_sample_slabs.py", *(argv or [])]),
        "same_field": bool(same),
        "rows": rows,
    }, indent=1) + "\n")
    print(best[["adam_s", "total_s", "wall_s"]].round(2).to_string())
    print("same field with and without slabs:", bool(same))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(sys.argv[1:])
