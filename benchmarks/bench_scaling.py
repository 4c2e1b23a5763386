"""How time and memory grow with the number of voxels: MIND + ConvexAdam (profiles `fast`
and `convexadam`) on one small longitudinal phantom pair (the original phantom,
``Realism.off()``: both images on one grid) resampled to several voxel counts, each
registration in a fresh process, timed stage by stage.

Run by hand; it uses whatever device the machine has (``--device auto``: a GPU when there
is one), so a GPU user runs it as it is and gets the same table::

    .venv/bin/python benchmarks/bench_scaling.py [--scales 0.63 0.8 1 1.26 1.59] [--full]

``--full`` adds the ``full``-size phantom pair (448 x 448 x 106 voxels), the size the
performance target of the `fast` profile is set for (under 3 minutes and 6 GB on 2 cores).
Writes ``benchmarks/results/scaling.json`` (``--out`` to change): one row per (profile,
size) with the voxel count, the seconds of every stage (``init, features, convex, adam,
guard, total``), the process's peak resident memory (MiB) and, on a GPU, its peak
allocated device memory.
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

from cold_cache import empty_cache

OUT = Path(__file__).parent / "results" / "scaling.json"

# One registration in its own process: the peak memory is then this registration's.
RUN = """
import json, sys, torch
from breastlib.device import peak_rss_mib
from breastlib.register import register_method
from breastlib.volume import load_volume
fixed, moving = load_volume(sys.argv[1]), load_volume(sys.argv[2])
result = register_method(fixed, moving, method="mind", profile=sys.argv[3], device=sys.argv[4])
row = {"seconds": {k: round(v, 3) for k, v in result.seconds.items()},
       "device": str(result.device), "voxels": int(fixed.array.size),
       "shape": list(fixed.shape),
       "peak_rss_mib": round(peak_rss_mib(), 1)}  # this process's own peak (VmHWM)
if torch.cuda.is_available():
    row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    row["gpu"] = torch.cuda.get_device_name()
print(json.dumps(row))
"""


def resampled(volume, scale: float):
    """``volume`` on a grid over the same extent with ``scale`` times the voxels per axis."""
    import numpy as np

    from breastlib.grid import Grid

    shape = tuple(max(8, round(n * scale)) for n in volume.shape)
    factor = np.asarray(volume.shape, float) / np.asarray(shape, float)
    matrix = np.diag([*factor, 1.0])
    matrix[:3, 3] = (factor - 1.0) / 2.0
    return volume.resample_to(Grid.from_file_affine(shape, volume.affine @ matrix))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", type=float, default=[0.63, 0.8, 1.0, 1.26, 1.59])
    parser.add_argument("--profiles", nargs="+", default=["fast", "convexadam"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--full", action="store_true", help="add the full-size pair")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from breastlib.phantom import make_pair
    from breastlib.phantom.realism import Realism

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = []
        small = make_pair("longitudinal", "small", seed=0, realism=Realism.off())
        for scale in args.scales:
            fixed, moving = resampled(small.fixed, scale), resampled(small.moving, scale)
            inputs.append((f"small x{scale:g}", fixed, moving))
        if args.full:
            pair = make_pair("longitudinal", "full", seed=0, realism=Realism.off())
            inputs.append(("full", pair.fixed, pair.moving))
        for name, fixed, moving in inputs:
            paths = [Path(tmp) / f"{name}-{role}.nii.gz" for role in ("fixed", "moving")]
            fixed.save(paths[0])
            moving.save(paths[1])
            for profile in args.profiles:
                with empty_cache() as env:
                    start = time.perf_counter()
                    out = subprocess.run([sys.executable, "-c", RUN, str(paths[0]),
                                          str(paths[1]), profile, args.device],
                                         capture_output=True, text=True, check=True, env=env)
                    wall = time.perf_counter() - start
                row = {"size": name, "profile": profile, "wall_s": round(wall, 2),
                       **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps({
        "benchmark": "scaling", "method": "mind", "task": "longitudinal", "seed": 0,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_scaling.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
