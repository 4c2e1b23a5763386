"""What each of breastlib's deliberate departures from the ``convexadam`` package costs or
gains: the ``convexadam`` profile with one package behaviour switched on at a time, and the
package itself (``convex_adam_pt`` at its defaults, in its own process), on small phantom
pairs of every task built as ``bench_convexadam_package.py`` builds them (seed 0 is that
benchmark's pair; a moving image on another grid is resampled onto the fixed grid, as
there), all scored by :func:`breastlib.evaluate.pair.pair_metrics`.

Accuracy only: every run is deterministic on a CPU, so this benchmark may share the machine
(its times are not recorded)::

    .venv/bin/pip install -c constraints.txt -e ".[peers]"
    .venv/bin/python benchmarks/bench_convexadam_ablation.py [--tasks ...] [--seeds 0 1 2 3 4]
        [--switches "the profile" ...]

Writes ``benchmarks/results/convexadam_ablation.json`` (or ``--out``): one row per task, seed
and switch (``"the package itself"`` is the package's field). The book's records: seeds 0-4
with every switch, and seeds 5-9 held out (``convexadam_ablation_heldout.json``, the profile,
the zero-padded Adam smoothing and the package, run after the first record was read).
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

import pandas as pd
import torch
from bench_convexadam_package import run_package, side_by_side_pair

from breastlib.evaluate.pair import pair_metrics
from breastlib.register import register_pair

OUT = Path(__file__).parent / "results" / "convexadam_ablation.json"
TASKS = ("longitudinal", "sequence", "modality", "lesion")
#: The released code's behaviours that the ``convexadam`` profile corrects (book/performance.md
#: lists each), switched back on one at a time, then together.
SWITCHES: dict[str, dict[str, object]] = {
    "the profile": {},
    "background kept (no body mask)": {"background": "keep"},
    "released grid (n/(n-1) warps, zeros outside)": {"grid": "released"},
    "zero-padded Adam smoothing": {"adam_padding": "zeros"},
    "released cost smoothing": {"cost_smooth": 2, "cost_padding": "zeros"},
    "released coupling": {"coupling_smooth": 1, "coupling_padding": "zeros",
                          "coupling_output": "smoothed", "tie_break": False},
    "released grid + zero-padded Adam smoothing": {"grid": "released",
                                                   "adam_padding": "zeros"},
    "every released behaviour": {"background": "keep", "grid": "released",
                                 "adam_padding": "zeros", "cost_smooth": 2,
                                 "cost_padding": "zeros", "coupling_smooth": 1,
                                 "coupling_padding": "zeros", "coupling_output": "smoothed",
                                 "tie_break": False},
}
#: The row of the package's own field (``convex_adam_pt`` at its defaults).
PACKAGE = "the package itself"
KEYS = {"field_error_mean_mm": "dense_mm", "field_error_p95_mm": "dense_p95_mm",
        "tre_mean_after_mm": "tre_mm", "jac_nonpos_pct": "folded_pct",
        "dice_breast": "dice_breast"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="cohort seeds, one pair per task and seed (0 is the side by "
                             "side's pair)")
    parser.add_argument("--switches", nargs="+", default=list(SWITCHES),
                        choices=list(SWITCHES), metavar="SWITCH",
                        help="which rows of SWITCHES to run (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for seed in args.seeds:
                folder = Path(tmp) / f"seed{seed}"
                pair, fixed_path, moving_path = side_by_side_pair(task, seed, folder)
                moving = pair.moving if pair.moving.grid.same_as(pair.fixed.grid) else (
                    pair.moving.resample_to(pair.fixed))
                fields = {name: (switch, register_pair(
                    pair.fixed, moving, method="mind", profile="convexadam", device="cpu",
                    **switch).displacement) for name, switch in SWITCHES.items()
                    if name in args.switches}
                fields[PACKAGE] = (None, run_package(fixed_path, moving_path, pair,
                                                     folder / f"{task}_package.npy", env)[2])
                for name, (switch, displacement) in fields.items():
                    metrics = pair_metrics(displacement, pair)
                    rows.append({"task": task, "seed": seed, "switch": name,
                                 "overrides": switch}
                                | {short: round(float(metrics[k]), 3)
                                   for k, short in KEYS.items()})
                    print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({
        "benchmark": "convexadam_ablation", "size": "small", "seeds": args.seeds,
        "machine": f"{platform.machine()}", "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_convexadam_ablation.py " + " ".join(argv or []),
        "rows": rows}, indent=1) + "\n")
    print(pd.DataFrame(rows).drop(columns="overrides").to_string())


if __name__ == "__main__":
    main(sys.argv[1:])
