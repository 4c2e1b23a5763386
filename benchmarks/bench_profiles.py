"""How close does the `fast` profile come to `corrected`? MIND + ConvexAdam on one small
phantom pair per task (the book's clinical phantom, seed 0), every named profile (`paper`,
`corrected`, `convexadam`, `fast`), scored by :func:`breastlib.evaluate.pair.pair_metrics`
against the exact ground truth: the dense error in the breast (the primary metric), the
landmark error, Dice, folding, the stage the guard kept and the seconds of the
registration.

Run by hand on a quiet machine (about 6 minutes on a 2-core CPU, most of it in `paper` and
`corrected`, which run 1000 Adam iterations)::

    .venv/bin/python benchmarks/bench_profiles.py [--tasks longitudinal ...] [--out FILE]

Writes ``benchmarks/results/profiles.json``, which the method chapter and the performance
appendix show.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from cold_cache import empty_cache
from held_out import held_out_pairs

from breastlib.evaluate.pair import pair_metrics
from breastlib.register import PROFILES, register_pair

TASKS = ("longitudinal", "sequence", "modality", "lesion")
OUT = Path(__file__).parent / "results" / "profiles.json"
KEYS = ("tre_mean_before_mm", "tre_mean_after_mm", "field_error_mean_mm", "dice_breast",
        "dice_fgt", "jac_nonpos_pct", "sdlogj")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, _, pair in held_out_pairs(args.tasks, [0], Path(tmp)):
            for profile in PROFILES:
                with empty_cache():
                    start = time.perf_counter()
                    result = register_pair(pair.fixed, pair.moving, method="mind",
                                           profile=profile)
                    seconds = time.perf_counter() - start
                metrics = pair_metrics(result.displacement, pair)
                rows.append({"task": task, "profile": profile,
                             **{k: round(float(metrics[k]), 4) for k in KEYS},
                             "stage": result.stage, "seconds": round(seconds, 2)})
                print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python benchmarks/bench_profiles.py", *(argv or [])]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(sys.argv[1:])
