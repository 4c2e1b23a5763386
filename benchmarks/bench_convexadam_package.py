"""Side by side with the ``convexadam`` package: breastlib's ``convexadam`` profile (MIND +
ConvexAdam at the package's defaults) against ``convex_adam_pt`` of convexadam 0.2.0, on one
small phantom pair of each task (a moving image on another grid is first resampled onto the
fixed grid, since the package needs one grid; both tools get the same files), both run as
whole processes (imports, reading the files, registering, writing the result), one after
the other with the same thread count. breastlib runs twice: as ``breastlib register`` runs
by default, and with ``--no-qc`` (no QC picture), the nearer to the package's script.

Both fields are scored by breastlib's one pair evaluation
(:func:`breastlib.evaluate.pair.pair_metrics`): the dense error in the breast (the primary
metric), the landmark error, breast Dice and folding. The package returns a pull-back field
in voxels of the fixed file's array axes, the Learn2Reg layout, read by
:meth:`breastlib.displacement.Displacement.from_file_voxels`.

The package is a peer for this benchmark only (not a dependency of breastlib)::

    .venv/bin/pip install -c constraints.txt -e ".[peers]"
    .venv/bin/python benchmarks/bench_convexadam_package.py [--threads 2] [--repeats 3]
        [--tasks ...]

Writes ``benchmarks/results/convexadam_package.json``: one row per task, tool and repeat
(the tools alternate), and the ratios breastlib / package of wall time (with and without
the QC picture) and registration time, each tool's fastest repeat against the other's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from breastlib.displacement import Displacement
from breastlib.evaluate.pair import load_cohort_pair, pair_metrics
from breastlib.phantom import make_cohort

OUT = Path(__file__).parent / "results" / "convexadam_package.json"
TASKS = ("longitudinal", "sequence", "modality", "lesion")
PACKAGE = "convexadam 0.2.0"
BREASTLIB = "breastlib convexadam"
BREASTLIB_NO_QC = "breastlib convexadam --no-qc"
# breastlib as it runs by default (field, warped image, QC picture, summary), and without
# the QC picture, the nearest to the package's script, which writes one raw array.
BREASTLIB_RUNS = {BREASTLIB: (), BREASTLIB_NO_QC: ("--no-qc",)}
KEYS = ("field_error_mean_mm", "field_error_p95_mm", "tre_mean_before_mm", "tre_mean_after_mm",
        "dice_breast", "jac_nonpos_pct")

# Run in its own process: the package's defaults, on the files as nibabel reads them.
PACKAGE_RUN = """
import json, sys, time
import nibabel as nib, numpy as np, torch
from convexAdam.convex_adam_MIND import convex_adam_pt
fixed = nib.load(sys.argv[1]).get_fdata()
moving = nib.load(sys.argv[2]).get_fdata()
start = time.perf_counter()
field = convex_adam_pt(fixed, moving, device=torch.device("cpu"))
seconds = time.perf_counter() - start
np.save(sys.argv[3], np.moveaxis(field.astype(np.float32), -1, 0))
print(json.dumps({"registration_s": seconds}))
"""


def side_by_side_pair(task: str, seed: int, folder: Path) -> tuple[Any, str, str]:
    """The task's small phantom pair of ``seed`` written under ``folder``: the pair and
    the paths both tools read. The package needs both images on one grid, so a moving
    image on another grid is resampled onto the fixed grid through world coordinates
    (both tools then get that file)."""
    manifest = Path(make_cohort(task, 1, size="small", seed=seed, out_dir=folder / task))
    entry = pd.read_csv(manifest).iloc[0]
    pair = load_cohort_pair(manifest, str(entry["pair_id"]))
    fixed = str(manifest.parent / entry["fixed_image"])
    moving = str(manifest.parent / entry["moving_image"])
    if not pair.moving.grid.same_as(pair.fixed.grid):
        moving = str(pair.moving.resample_to(pair.fixed).save(
            folder / f"{task}_moving_on_fixed.nii.gz"))
    return pair, fixed, moving


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock seconds of a whole process and its standard output; raises on failure."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def run_package(fixed: str, moving: str, pair: Any, field_path: Path,
                env: dict[str, str]) -> tuple[float, float, Displacement]:
    """``convex_adam_pt`` at its defaults on the two files, in its own process: the process's
    wall seconds, the registration's seconds and the field, read onto the fixed grid of
    ``pair`` (its array is saved at ``field_path``)."""
    wall, out = timed([sys.executable, "-c", PACKAGE_RUN, fixed, moving, str(field_path)],
                      env)
    registration = json.loads(out.splitlines()[-1])["registration_s"]
    return wall, registration, Displacement.from_file_voxels(np.load(field_path), pair.fixed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads of both")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (one pair per task)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each tool per pair; the ratios use the fastest")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    threads = str(args.threads)
    # torch takes its intra-op thread count from OMP_NUM_THREADS in both processes.
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            pair, fixed, moving = side_by_side_pair(task, args.seed, Path(tmp))

            for repeat in range(args.repeats):  # alternating, so drift hits both alike
                wall, seconds, package = run_package(
                    fixed, moving, pair, Path(tmp) / f"{task}_package.npy", env)
                rows.append({"task": task, "tool": PACKAGE, "repeat": repeat,
                             "wall_s": wall,
                             "moving": "resampled onto the fixed grid" if "_on_fixed" in moving
                             else "as it is",
                             "registration_s": seconds} | _scores(package, pair))

                for tool, flags in BREASTLIB_RUNS.items():
                    run_dir = Path(tmp) / f"{task}_breastlib_{repeat}_{len(flags)}"
                    wall, _ = timed([sys.executable, "-m", "breastlib", "register", fixed,
                                     moving, "--out", str(run_dir), "--method", "mind",
                                     "--profile", "convexadam", "--device", "cpu", *flags],
                                    env)
                    summary = json.loads((run_dir / "summary.json").read_text())
                    ours = Displacement.load(run_dir / "displacement.nii.gz")
                    rows.append({"task": task, "tool": tool, "repeat": repeat,
                                 "wall_s": wall, "moving": rows[-1]["moving"],
                                 "registration_s": summary["seconds"]["total"]}
                                | _scores(ours, pair))
                print(json.dumps(rows[-1 - len(BREASTLIB_RUNS):]), flush=True)
    table = pd.DataFrame(rows)
    # The fastest of the repeats of each tool: the machine's noise only ever adds time.
    wide = table.groupby(["task", "tool"])[["wall_s", "registration_s"]].min().unstack("tool")
    package = wide.xs(PACKAGE, axis=1, level="tool")
    ours = wide.xs(BREASTLIB, axis=1, level="tool")
    ratios = pd.DataFrame({
        "wall_ratio": ours["wall_s"] / package["wall_s"],
        "wall_ratio_no_qc": (wide.xs(BREASTLIB_NO_QC, axis=1, level="tool")["wall_s"]
                             / package["wall_s"]),
        "registration_ratio": ours["registration_s"] / package["registration_s"],
    }).reset_index()
    args.out.write_text(json.dumps({
        "benchmark": "convexadam_package", "size": "small", "seed": args.seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": args.threads,
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python benchmarks/bench_convexadam_package.py", *(argv or [])]),
        "repeats": args.repeats,
        "rows": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                 for r in rows],
        "ratios": ratios.round(3).to_dict("records"),
    }, indent=1) + "\n")
    print(table.round(2).to_string())
    print(ratios.round(2).to_string())


def _scores(displacement: Displacement, pair) -> dict[str, float]:
    metrics = pair_metrics(displacement, pair)
    return {k: float(metrics[k]) for k in KEYS if k in metrics}


if __name__ == "__main__":
    main(sys.argv[1:])
