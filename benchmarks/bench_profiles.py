"""How close does the `fast` profile come to `corrected`? MIND + ConvexAdam on one small
phantom pair per task, every named profile (`paper`, `corrected`, `convexadam`, `fast`),
landmark error against the exact ground truth.

Run by hand (minutes on a 2-core CPU, because `paper` and `corrected` run 1000 Adam
iterations):
``.venv/bin/python benchmarks/bench_profiles.py``. Writes
``benchmarks/results/profiles.json``, which the book's method chapter shows.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from breastlib.evaluate.metrics import dice, jacobian_stats, tre_stats
from breastlib.phantom import make_pair
from breastlib.phantom.labels import LABELS
from breastlib.register import PROFILES, register_pair
from breastlib.tissues import breast_mask, fgt_mask

TASKS = ("longitudinal", "sequence", "modality", "lesion")


def main() -> None:
    rows = []
    for task in TASKS:
        pair = make_pair(task, size="small", seed=0)
        for profile in PROFILES:
            start = time.perf_counter()
            result = register_pair(pair.fixed, pair.moving, method="mind", profile=profile)
            seconds = time.perf_counter() - start
            disp = result.displacement
            warped = disp.warp_labels(pair.moving_labels).array
            fixed = pair.fixed_labels.array
            row = {
                "task": task,
                "profile": profile,
                "tre_before_mm": tre_stats(pair.fixed_landmarks, pair.moving_landmarks)["mean"],
                "tre_after_mm": tre_stats(disp.to_moving(pair.fixed_landmarks),
                                          pair.moving_landmarks)["mean"],
                "dice_breast": dice(breast_mask(fixed, LABELS), breast_mask(warped, LABELS)),
                "dice_fgt": dice(fgt_mask(fixed, LABELS), fgt_mask(warped, LABELS)),
                **jacobian_stats(disp.jacobian_determinant(), fixed > 0),
                "seconds": seconds,
            }
            rows.append(row)
            print(json.dumps(row))
    out = Path(__file__).with_name("results") / "profiles.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "command": "python benchmarks/bench_profiles.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
