"""Seconds of every stage, and peak memory, for every profile and every encoder.

One small (and, with ``--sizes small full``, one full-size) longitudinal phantom pair is
registered with each method and profile asked for, each registration alone in a fresh
process with an empty feature cache, and the stages that
:class:`breastlib.register.pipeline.RegistrationResult` times are recorded: ``init`` (the
initial alignment), ``features`` (background masks and features: MIND-SSC, or an
encoder's slices, PCA and resampling), ``convex``, ``adam`` (with the overlap mask), and
``guard``; ``wall_s`` is the whole process (imports, reading the files, writing nothing).
Encoders run with random weights (the checkpoints cannot be downloaded where this project
is measured); with weights, pass ``--weights pretrained`` and the time of the network is
the same, only the numbers differ.

Run by hand; it uses whatever device the machine has (``--device auto``), so a GPU user
runs it as it is and gets the same table with the device's peak memory added::

    .venv/bin/python benchmarks/bench_stages.py [--sizes small full] \\
        [--profiles fast convexadam corrected paper] [--methods mind dinov2 sam ...] \\
        [--param work_spacing=2.5]

Writes ``benchmarks/results/stages.json`` (``--out`` to change) and prints one row per
(size, profile, method).
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

from breastlib.cli.register import parse_param

OUT = Path(__file__).parent / "results" / "stages.json"
STAGES = ("init", "features", "convex", "adam", "guard", "total")

# One registration in its own process, so that the peak memory is this registration's.
RUN = """
import json, sys, time
start = time.perf_counter()
import torch
from breastlib.device import peak_rss_mib
from breastlib.register import register_method
from breastlib.volume import load_volume
fixed, moving = load_volume(sys.argv[1]), load_volume(sys.argv[2])
result = register_method(fixed, moving, method=sys.argv[3], profile=sys.argv[4],
                         device=sys.argv[5], weights=sys.argv[6], **json.loads(sys.argv[7]))
row = {"seconds": {k: round(v, 3) for k, v in result.seconds.items()},
       "process_s": round(time.perf_counter() - start, 3), "device": str(result.device),
       "stage": result.stage, "voxels": int(fixed.array.size), "shape": list(fixed.shape),
       "work_spacing_mm": [round(s, 3) for s in result.work_spacing_mm],
       "peak_rss_mib": round(peak_rss_mib(), 1)}  # this process's own peak (VmHWM)
if torch.cuda.is_available():
    row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    row["gpu"] = torch.cuda.get_device_name()
print(json.dumps(row))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small"], choices=["small", "full"])
    parser.add_argument("--profiles", nargs="+", default=["fast", "convexadam"])
    parser.add_argument("--methods", nargs="+",
                        default=["mind", "dinov2", "sam", "medclip", "biomedclip"])
    parser.add_argument("--weights", default="random")
    parser.add_argument("--param", action="append", default=[], type=parse_param,
                        metavar="NAME=VALUE",
                        help="override a profile parameter of every run, e.g. work_spacing=2.5")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds after which one registration is given up (recorded)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out and add these")
    args = parser.parse_args(argv)
    from breastlib.phantom import make_pair

    overrides = dict(args.param)

    rows, commands = [], []
    if args.append and args.out.is_file():
        earlier = json.loads(args.out.read_text())
        rows, commands = earlier["rows"], earlier["commands"]
    commands.append("python benchmarks/bench_stages.py " + " ".join(argv or sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            pair = make_pair("longitudinal", size, seed=0)
            paths = [Path(tmp) / f"{size}-{role}.nii.gz" for role in ("fixed", "moving")]
            pair.fixed.save(paths[0])
            pair.moving.save(paths[1])
            for profile in args.profiles:
                for method in args.methods:
                    command = [sys.executable, "-c", RUN, str(paths[0]), str(paths[1]),
                               method, profile, args.device, args.weights,
                               json.dumps(overrides)]
                    row = {"size": size, "profile": profile, "method": method,
                           "weights": args.weights, "overrides": overrides}
                    with empty_cache() as env:  # an empty cache: no hit is timed
                        start = time.perf_counter()
                        try:
                            done = subprocess.run(command, capture_output=True, text=True,
                                                  env=env, timeout=args.timeout, check=True)
                            row |= json.loads(done.stdout.strip().splitlines()[-1])
                        except subprocess.TimeoutExpired:
                            row["error"] = f"gave up after {args.timeout:.0f} s"
                        except subprocess.CalledProcessError as exc:
                            row["error"] = exc.stderr.strip().splitlines()[-1][:300]
                        row["wall_s"] = round(time.perf_counter() - start, 2)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps({
        "benchmark": "stages", "task": "longitudinal", "seed": 0,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "commands": commands,
        "rows": rows,
    }, indent=1) + "\n")
    print(stage_table(rows).to_string())


def stage_table(rows: list[dict]):
    """One line per (size, profile, method): seconds per stage, wall time, peak MiB."""
    import pandas as pd

    table = pd.DataFrame([
        {"size": r["size"], "profile": r["profile"], "method": r["method"],
         **{s: r.get("seconds", {}).get(s) for s in STAGES}, "wall_s": r["wall_s"],
         "peak_rss_mib": r.get("peak_rss_mib"), "error": r.get("error", "")}
        for r in rows])
    return table.set_index(["size", "profile", "method"]).round(2)


if __name__ == "__main__":
    main(sys.argv[1:])
