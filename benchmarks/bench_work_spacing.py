"""`fast` on full-size pairs: own voxels, blocks of about 2.5 mm, or stage cells in mm.

The `fast` profile's settings are in voxels (the convex grid, its search half-width, MIND's
radius, Adam's grid and step size) and were tuned on the small phantom's voxels of
2.2-3.5 mm. On a full-size scan of 0.6-0.9 mm voxels the same numbers search a cube a
quarter as wide and take steps a quarter as long, on 40 times the voxels. The option
``work_spacing`` registers on block averages of both images instead and interpolates the
field back. This script registers one full-size phantom pair per task (the book's clinical
phantom, seed 0) with MIND and `fast` at each working spacing (0: the image's own voxels),
each in a fresh process, and scores the field on the full-size grid with
:func:`breastlib.evaluate.pair.pair_metrics` against the exact truth. ``--cells C A``
(repeatable) registers with the convex and Adam grids' cells at least ``C`` and ``A`` mm
(``convex_cell_mm``, ``adam_cell_mm``; ``0 0``: the profile's voxel counts), and
``--smooth MM`` (repeatable) with Adam's field smoothing at least ``MM`` mm wide
(``adam_smooth_mm``; 0: the profile's passes on every grid); without them, the profile's
own settings; ``--param NAME=VALUE`` sets another parameter for every row. Every row records
the cell sizes, the smoothing width, the regularisation (as set, its reference cell and the
weight it came to), the body mask's ghost opening, the pooling factors and the smoothing
passes it ran with. ``--own`` also scores the Adam stage's own field
where the guard kept an earlier stage (``adam_own``, with every stage's checks).

Run by hand on a quiet machine (about 40 minutes on a 2-core CPU, nearly all of it on the
images' own voxels)::

    .venv/bin/python benchmarks/bench_work_spacing.py [--tasks ...] [--spacings 2.5 0]
    .venv/bin/python benchmarks/bench_work_spacing.py --spacings 1.5 2.0 --append
    .venv/bin/python benchmarks/bench_work_spacing.py --spacings 0 --cells 8 4 --cells 6 3 \
        --smooth 0 --append --pairs /tmp/full-pairs
    .venv/bin/python benchmarks/bench_work_spacing.py --spacings 0 --cells 6 3 --smooth 15 \
        --param regularisation=4 --own --append --pairs /tmp/full-pairs
    .venv/bin/python benchmarks/bench_work_spacing.py --spacings 0 --own --append --seed 1 \
        --pairs /tmp/full-pairs

``--pairs DIR`` keeps the generated pairs there and reuses them on the next run (each
takes 2-3 minutes to generate).

Writes ``benchmarks/results/work_spacing.json``, which the performance appendix shows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from cold_cache import empty_cache
from held_out import held_out_pair_files, write_record

TASKS = ("longitudinal", "sequence", "modality", "lesion")
OUT = Path(__file__).parent / "results" / "work_spacing.json"
KEYS = ("tre_mean_before_mm", "tre_mean_after_mm", "field_error_mean_mm",
        "field_error_p95_mm", "dice_breast", "jac_nonpos_pct")


#: The settings a row records (the profile's where the command line left them).
SETTINGS = ("convex_cell_mm", "adam_cell_mm", "adam_smooth_mm", "regularisation",
            "regularisation_cell_mm")


def child(manifest: str, pair_id: str, overrides: dict[str, object], own: bool = False
          ) -> dict:
    """Register one pair with `fast` and ``overrides`` in this process and score it (run
    by :func:`main` in a fresh process, so the peak memory is this run's). With ``own``,
    the Adam stage's field is scored too where the guard kept an earlier stage
    (``keep_adam``: one more full-size field in memory)."""
    from breastlib.evaluate.pair import load_cohort_pair, pair_metrics
    from breastlib.register import register_pair
    from breastlib.register.initial import GHOST_OPENING_MM

    pair = load_cohort_pair(manifest, pair_id)
    result = register_pair(pair.fixed, pair.moving, method="mind", profile="fast",
                           device="cpu", keep_adam=own, **overrides)
    metrics = pair_metrics(result.displacement, pair)
    extra = {}
    if own:
        adam = metrics if result.adam_displacement is None else pair_metrics(
            result.adam_displacement, pair)
        extra = {"adam_own": {k: round(float(adam[k]), 3) for k in KEYS if k in adam},
                 "stage_checks": result.stage_checks}
    return {"work_spacing": result.params["work_spacing"]} | {
            name: result.params[name] for name in SETTINGS} | {
            "pooling_factors": {k: list(v) for k, v in result.pooling_factors.items()},
            "smoothing_passes": list(result.smoothing_passes),
            "regularisation_weight": round(result.regularisation_weight, 4),
            "ghost_opening_mm": GHOST_OPENING_MM,
            "shape": list(pair.fixed.shape),
            "spacing_mm": [round(float(s), 3) for s in pair.fixed.spacing],
            "work_spacing_mm": [round(s, 3) for s in result.work_spacing_mm],
            "stage": result.stage,
            "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
            } | {k: round(float(metrics[k]), 3) for k in KEYS if k in metrics} | extra


def pair_files(task: str, root: Path, seed: int = 0) -> tuple[Path, str]:
    """``(manifest, pair_id)`` of the task's full-size pair of ``seed`` under ``root``:
    read where a previous run left it, else generated there."""
    manifest = root / f"{task}-{seed}" / "manifest.csv"
    if manifest.is_file():
        return manifest, str(pd.read_csv(manifest)["pair_id"].iloc[0])
    return held_out_pair_files(task, seed, root, size="full")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--spacings", nargs="+", type=float, default=[2.5, 0.0],
                        help="working spacings (mm) to compare; 0 = the image's own voxels")
    parser.add_argument("--cells", nargs=2, type=float, action="append",
                        metavar=("CONVEX_MM", "ADAM_MM"),
                        help="least cell sizes (mm) of the convex and Adam grids "
                             "(repeatable; 0 0: voxel counts; default: the profile's)")
    parser.add_argument("--smooth", type=float, action="append", metavar="MM",
                        help="least width (mm) of Adam's field smoothing (repeatable; 0: "
                             "the profile's passes; default: the profile's)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another `fast` parameter for every row (repeatable), e.g. "
                             "regularisation=4")
    parser.add_argument("--own", action="store_true",
                        help="also score the Adam stage's own field where the guard kept an "
                             "earlier one (keeps one more full-size field in memory)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the phantom pairs' seed (0: the book's; others: held out)")
    parser.add_argument("--pairs", type=Path,
                        help="generate the full-size pairs here, or reuse them")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out and add these")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        manifest, pair_id, overrides, own = args.child
        print(json.dumps(child(manifest, pair_id, json.loads(overrides), own == "own")))
        return
    cells = [{"convex_cell_mm": c, "adam_cell_mm": a} for c, a in args.cells or []] or [{}]
    smooths = [{"adam_smooth_mm": mm} for mm in args.smooth or []] or [{}]
    fixed = {}
    for item in args.param:
        name, equals, value = item.partition("=")
        if not equals:
            parser.error(f"--param takes NAME=VALUE, got {item!r}")
        try:
            fixed[name] = json.loads(value)  # numbers as numbers (iterations=40 an int)
        except json.JSONDecodeError:
            fixed[name] = value  # text, e.g. grid=released

    rows, commands = [], []
    if args.append and args.out.is_file():
        earlier = json.loads(args.out.read_text())
        rows, commands = earlier["rows"], earlier.get("commands", [earlier["command"]])
    commands.append("python benchmarks/bench_work_spacing.py " + " ".join(
        argv if argv is not None else sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            manifest, pair_id = pair_files(task, args.pairs or Path(tmp), args.seed)
            for spacing, cell, smooth in itertools.product(args.spacings, cells, smooths):
                overrides = fixed | {"work_spacing": spacing} | cell | smooth
                with empty_cache() as env:
                    start = time.perf_counter()
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", str(manifest), pair_id,
                         json.dumps(overrides), "own" if args.own else "kept"],
                        capture_output=True, text=True, check=True, env=env)
                    wall = time.perf_counter() - start
                row = {"task": task, "seed": args.seed, "wall_s": round(wall, 1)}
                rows.append(row | json.loads(done.stdout.splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    # Task by task, coarsest blocks first, then the images' own voxels (coarsest cells
    # first, the voxel counts last; widest smoothing first).
    rows.sort(key=lambda row: (TASKS.index(row["task"]), row["seed"], row["work_spacing"] == 0,
                               -row["work_spacing"], row["convex_cell_mm"] == 0,
                               -row["convex_cell_mm"], -row["adam_cell_mm"],
                               -row["adam_smooth_mm"], row["regularisation"],
                               -row["regularisation_cell_mm"]))
    write_record(args.out, "work_spacing", rows, argv, size="full", method="mind",
                 profile="fast", commands=commands)


if __name__ == "__main__":
    main(sys.argv[1:])
