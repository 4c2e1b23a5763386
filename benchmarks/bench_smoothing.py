"""box_smooth (separable from 5^3 up) vs a naive 3-D box pool, ConvexAdam's inner loop.

Run by hand: ``.venv/bin/python benchmarks/bench_smoothing.py``. Writes
``benchmarks/results/smoothing.json``; the numbers go into the book's performance appendix.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from breastlib.smoothing import box_smooth


def naive(field: torch.Tensor, kernel: int, passes: int) -> torch.Tensor:
    for _ in range(passes):
        field = F.avg_pool3d(F.pad(field, [kernel // 2] * 6, mode="replicate"), kernel, stride=1)
    return field


def timed(fn, repeats: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.manual_seed(0)
    results = []
    for shape in [(64, 64, 32), (128, 128, 80)]:  # half-res small phantom; half-res real scan
        field = torch.randn(1, 3, *shape, requires_grad=True)
        for kernel, passes in [(7, 5), (5, 3), (3, 3)]:
            def separable(field=field, kernel=kernel, passes=passes):
                box_smooth(field, kernel=kernel, passes=passes).sum().backward()

            def reference(field=field, kernel=kernel, passes=passes):
                naive(field, kernel, passes).sum().backward()

            t_sep, t_naive = timed(separable), timed(reference)
            results.append({"shape": shape, "kernel": kernel, "passes": passes,
                            "box_smooth_s": t_sep, "naive_3d_pool_s": t_naive,
                            "speedup": t_naive / t_sep})
            print(results[-1])
    out = Path(__file__).with_name("results") / "smoothing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "meta": {"command": "python benchmarks/bench_smoothing.py",
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                 "threads": torch.get_num_threads(), "torch": torch.__version__,
                 "date": time.strftime("%Y-%m-%d")},
        "rows": results,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
