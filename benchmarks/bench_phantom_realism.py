"""How hard the phantom is with and without its clinical effects: no registration, the best
classical method (elastix) and MIND (ConvexAdam, `fast`) on the same small pairs, with
``Realism.off()`` and ``Realism.clinical()``, scored by the one pair evaluation, and the
landmark error split by where the landmarks lie (interior, skin, chest wall, lesion).

Run by hand (a few minutes per task on a 2-core CPU)::

    .venv/bin/python benchmarks/bench_phantom_realism.py [--tasks longitudinal] [--pairs 3]

Writes ``benchmarks/results/phantom_realism.json``: one record per (task, pair, realism,
method) with the dense error (mean, p95), TRE (mean over all landmarks and per group, with
the counts), breast Dice, folding and seconds; and a summary per (task, realism, method).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from breastlib.evaluate.pair import load_cohort_pair, pair_metrics
from breastlib.landmark_groups import LANDMARK_GROUPS, tre_by_group
from breastlib.phantom import make_cohort
from breastlib.phantom.realism import Realism
from breastlib.register import register_method

OUT = Path(__file__).parent / "results" / "phantom_realism.json"
KEYS = ("field_error_mean_mm", "field_error_p95_mm", "tre_mean_after_mm", "dice_breast",
        "jac_nonpos_pct")


def landmark_kinds(manifest: Path, pair_id: str) -> list[str]:
    """The kinds of a written pair's landmarks (the ``kind`` column of its CSV)."""
    return pd.read_csv(manifest.parent / pair_id / "fixed_landmarks.csv")["kind"].tolist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["longitudinal"])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["identity", "elastix", "mind"])
    args = parser.parse_args(argv)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for preset in ("off", "clinical"):
                start = time.perf_counter()
                manifest = make_cohort(task, args.pairs, size="small", seed=0,
                                       out_dir=Path(tmp) / f"{task}-{preset}",
                                       realism=Realism.preset(preset))
                generation = (time.perf_counter() - start) / args.pairs
                for pair_id in pd.read_csv(manifest)["pair_id"]:
                    pair = load_cohort_pair(manifest, pair_id)
                    kinds = landmark_kinds(manifest, pair_id)
                    for method in args.methods:
                        start = time.perf_counter()
                        result = register_method(pair.fixed, pair.moving, method=method,
                                                 profile="fast", device="cpu")
                        seconds = time.perf_counter() - start
                        metrics = pair_metrics(result.displacement, pair)
                        errors = np.linalg.norm(
                            result.displacement.to_moving(pair.fixed_points)
                            - pair.moving_points, axis=1)
                        groups = tre_by_group(errors, kinds)
                        record = {"task": task, "pair_id": pair_id, "realism": preset,
                                  "method": method, "seconds": round(seconds, 1),
                                  "generation_s_per_pair": round(generation, 1)}
                        record |= {k: metrics.get(k) for k in KEYS}
                        record |= {f"tre_{g}_mm": groups[g] for g in LANDMARK_GROUPS}
                        record |= {f"n_{g}": groups[f"{g}_count"] for g in LANDMARK_GROUPS}
                        records.append(record)
                        print(json.dumps(record), flush=True)
    frame = pd.DataFrame(records)
    numbers = [c for c in frame.columns if c.endswith("_mm") or c in ("dice_breast",
                                                                      "jac_nonpos_pct")]
    summary = (frame.groupby(["task", "realism", "method"])[numbers].mean().round(3)
               .reset_index().to_dict(orient="records"))
    OUT.write_text(json.dumps({
        "benchmark": "phantom_realism", "profile": "fast", "size": "small",
        "realism_clinical": Realism.clinical().as_dict(),
        "machine": platform.machine(), "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_phantom_realism.py " + " ".join(
            argv or sys.argv[1:]),
        "summary": summary, "rows": records,
    }, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
