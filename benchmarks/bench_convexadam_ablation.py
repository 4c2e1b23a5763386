"""What each of breastlib's deliberate departures from the ``convexadam`` package costs or
gains: the ``convexadam`` profile with one package behaviour switched on at a time, on the
small phantom pair of every task that ``bench_convexadam_package.py`` uses (seed 0; a moving
image on another grid resampled onto the fixed grid, as there), scored by
:func:`breastlib.evaluate.pair.pair_metrics`.

Accuracy only: every run is deterministic on a CPU, so this benchmark may share the machine
(its times are not recorded)::

    .venv/bin/python benchmarks/bench_convexadam_ablation.py [--tasks ...]

Writes ``benchmarks/results/convexadam_ablation.json``: one row per task and switch.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from bench_convexadam_package import side_by_side_pair

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
KEYS = {"field_error_mean_mm": "dense_mm", "field_error_p95_mm": "dense_p95_mm",
        "tre_mean_after_mm": "tre_mm", "jac_nonpos_pct": "folded_pct",
        "dice_breast": "dice_breast"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            pair, _, _ = side_by_side_pair(task, 0, Path(tmp))
            moving = pair.moving if pair.moving.grid.same_as(pair.fixed.grid) else (
                pair.moving.resample_to(pair.fixed))
            for name, switch in SWITCHES.items():
                result = register_pair(pair.fixed, moving, method="mind",
                                       profile="convexadam", device="cpu", **switch)
                metrics = pair_metrics(result.displacement, pair)
                rows.append({"task": task, "switch": name, "overrides": switch}
                            | {short: round(float(metrics[k]), 3) for k, short in KEYS.items()})
                print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({
        "benchmark": "convexadam_ablation", "size": "small", "seed": 0,
        "machine": f"{platform.machine()}", "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_convexadam_ablation.py " + " ".join(argv or []),
        "rows": rows}, indent=1) + "\n")
    print(pd.DataFrame(rows).drop(columns="overrides").to_string())


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
