"""What MIND's background floor changes: MIND + ConvexAdam (`fast`) on small phantom pairs
of each task, with and without the floor, scored by the one pair evaluation.

Run by hand (a few minutes per pair on a 2-core CPU)::

    .venv/bin/python benchmarks/bench_mind_floor.py [--seeds 0 1] [--tasks modality sequence]

Writes ``benchmarks/results/mind_floor.json``: one record per (task, seed, floor) with the
dense field error (the primary metric), TRE, breast Dice and HD95, folding, the verdict
and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cold_cache import empty_cache
from held_out import held_out_pairs, write_record

from breastlib.evaluate.pair import pair_metrics
from breastlib.profiles import get_profile
from breastlib.register import register_method

OUT = Path(__file__).parent / "results" / "mind_floor.json"
KEYS = ("field_error_mean_mm", "field_error_mean_before_mm", "field_error_p95_mm",
        "tre_mean_after_mm", "tre_mean_before_mm", "dice_breast", "dice_breast_before",
        "hd95_breast_mm", "jac_nonpos_pct", "verdict")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+",
                        default=["longitudinal", "sequence", "modality", "lesion"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[12])
    parser.add_argument("--floors", nargs="+", type=float,
                        default=[0.0, get_profile("fast").mind_floor])
    args = parser.parse_args(argv)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, seed, pair in held_out_pairs(args.tasks, args.seeds, Path(tmp)):
            for floor in args.floors:
                with empty_cache():
                    start = time.perf_counter()
                    result = register_method(pair.fixed, pair.moving, method="mind",
                                             profile="fast", device="cpu", mind_floor=floor)
                    seconds = time.perf_counter() - start
                metrics = pair_metrics(result.displacement, pair, detail=True)
                record = {"task": task, "seed": seed, "floor": floor,
                          "seconds": round(seconds, 1)}
                record |= {k: metrics.get(k) for k in KEYS}
                records.append(record)
                print(json.dumps(record), flush=True)
    write_record(OUT, "mind_floor", records, argv, profile="fast", size="small")

if __name__ == "__main__":
    main()
