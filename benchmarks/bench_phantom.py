"""Time the synthetic cohort generator: one pair per task, small and full size.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_phantom.py [--sizes small full] [--write]
        [--realism clinical|off]

Targets: a ``small`` pair in under 30 s (with the clinical effects, the default) and a
``full`` pair in under 90 s on a 2-core machine. With ``--write`` the pair is also written
to disk (NIfTI, gzip), as ``breastlib phantom`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from breastlib.phantom import TASKS, make_pair
from breastlib.phantom.cohort import PHANTOM_VERSION, write_pair
from breastlib.phantom.realism import Realism


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["small", "full"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--write", action="store_true", help="also write the pair to disk")
    parser.add_argument("--realism", default="clinical", choices=["clinical", "off"])
    args = parser.parse_args()
    realism = Realism.preset(args.realism)
    print(f"{'size':6s} {'task':13s} {'generate_s':>10s} {'write_s':>8s} {'peak_rss_gib':>12s}")
    rows = []
    for size in args.sizes:
        for task in args.tasks:
            start = time.perf_counter()
            pair = make_pair(task, size, seed=0, realism=realism)
            generated = time.perf_counter() - start
            written = float("nan")
            if args.write:
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    write_pair(pair, tmp, "pair")
                    written = time.perf_counter() - start
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
            print(f"{size:6s} {task:13s} {generated:10.1f} {written:8.1f} {rss:12.1f}",
                  flush=True)
            rows.append({"size": size, "task": task, "generate_s": generated,
                         "write_s": None if written != written else written,
                         "peak_rss_gib": rss})
    out = Path(__file__).with_name("results") / "phantom.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "command": "python benchmarks/bench_phantom.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "date": time.strftime("%Y-%m-%d"),
        "phantom_version": PHANTOM_VERSION, "realism": args.realism,
        "rows": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
