"""What each of ``fast``'s fixes against gross failures costs and buys: MIND and a
random-weight encoder with ConvexAdam on one held-out small phantom pair per task, with
the whole ``fast`` profile and with one fix taken back at a time, scored by the one pair
evaluation.

The fixes (all read the two images only, never the truth):

- ``background``: each image's intensities outside its own body mask zeroed before the
  features, and Adam's data term restricted to where the moving image has data;
- ``affine start``: the initial alignment by mutual information (taken back: the centres
  of the body masks, the previous default, or no alignment at all);
- ``guard``: the stage guard (:mod:`breastlib.register.guard`).

Run by hand (about 10 to 30 seconds per registration on a 2-core CPU)::

    .venv/bin/python benchmarks/bench_fixes.py [--seeds 12] [--methods mind dinov2]

Writes ``benchmarks/results/fixes.json``: one record per (task, seed, method, variant)
with the dense field error (the primary metric), TRE, breast Dice, folding, the verdict,
the stage kept and the seconds taken (each run with an empty feature cache). Run it on
an otherwise idle machine: the seconds are part of the record.
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
from breastlib.register import register_method

OUT = Path(__file__).parent / "results" / "fixes.json"
KEYS = ("field_error_mean_mm", "field_error_mean_before_mm", "field_error_p95_mm",
        "tre_mean_after_mm", "tre_mean_before_mm", "dice_breast", "dice_breast_before",
        "jac_nonpos_pct", "verdict")
#: Each variant: ``fast`` with these overrides (``{}``: the profile as it ships).
VARIANTS: dict[str, dict] = {
    "fast": {},
    "no background fix": {"background": "keep", "data_region": "all"},
    "centres start": {"init": "com"},
    "no initial alignment": {"init": "none"},
    "no guard": {"guard": False},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+",
                        default=["longitudinal", "sequence", "modality", "lesion"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[12])
    parser.add_argument("--methods", nargs="+", default=["mind", "dinov2"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, seed, pair in held_out_pairs(args.tasks, args.seeds, Path(tmp)):
            for method in args.methods:
                for variant in args.variants:
                    # An empty cache for every run: the variants that feed the encoder the
                    # same images would otherwise time a cache hit.
                    with empty_cache():
                        start = time.perf_counter()
                        result = register_method(pair.fixed, pair.moving, method=method,
                                                 profile="fast", device="cpu",
                                                 weights="random", **VARIANTS[variant])
                        seconds = time.perf_counter() - start
                    metrics = pair_metrics(result.displacement, pair, detail=True)
                    record = {"task": task, "seed": seed, "method": method,
                              "variant": variant, "stage_kept": result.stage,
                              "seconds": round(seconds, 1)}
                    record |= {k: metrics.get(k) for k in KEYS}
                    records.append(record)
                    print(json.dumps(record), flush=True)
    write_record(OUT, "fixes", records, argv, profile="fast", size="small",
                 weights="random",
                 variants={name: VARIANTS[name] for name in args.variants})

if __name__ == "__main__":
    main()
