"""Adam's smoothing, forward and gradient: the axis matrices against box_smooth and pools.

Every Adam iteration smooths the field and needs the gradient through the filter. Adam
now applies the filter as one small matrix per axis and its adjoint as the transposes
(``axis_matrices_s``: forward plus adjoint, no autograd); the earlier implementations are
timed with autograd's backward: ``box_smooth`` (running sums, or shifted sums for narrow
kernels), three 1-D average pools per pass, and one 3-D pool per pass.

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

from breastlib.smoothing import apply_axis_matrices, box_matrices, box_smooth


def naive(field: torch.Tensor, kernel: int, passes: int) -> torch.Tensor:
    """One 3-D ``kernel^3`` average pool per pass."""
    for _ in range(passes):
        field = F.avg_pool3d(F.pad(field, [kernel // 2] * 6, mode="replicate"), kernel, stride=1)
    return field


def separable_pool(field: torch.Tensor, kernel: int, passes: int) -> torch.Tensor:
    """Three 1-D average pools per pass (breastlib's implementation before running sums)."""
    half = kernel // 2
    for _ in range(passes):
        for axis in range(3):
            pad = [0] * 6
            pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = half
            size = [1, 1, 1]
            size[axis] = kernel
            field = F.avg_pool3d(F.pad(field, pad, mode="replicate"), kernel_size=size, stride=1)
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
            def ours(field=field, kernel=kernel, passes=passes):
                box_smooth(field, kernel=kernel, passes=passes).sum().backward()

            def pools(field=field, kernel=kernel, passes=passes):
                separable_pool(field, kernel, passes).sum().backward()

            def reference(field=field, kernel=kernel, passes=passes):
                naive(field, kernel, passes).sum().backward()

            matrices = box_matrices(shape, kernel=kernel, passes=passes)
            gradient = torch.ones_like(field)

            def axis_matrices(field=field, matrices=matrices, gradient=gradient):
                with torch.no_grad():
                    apply_axis_matrices(field, matrices)
                    apply_axis_matrices(gradient, matrices, transpose=True)

            t_ours, t_pools, t_naive = timed(ours), timed(pools), timed(reference)
            t_matrices = timed(axis_matrices)
            results.append({"shape": shape, "kernel": kernel, "passes": passes,
                            "axis_matrices_s": t_matrices,
                            "speedup_matrices_vs_box_smooth": t_ours / t_matrices,
                            "box_smooth_s": t_ours, "separable_pool_s": t_pools,
                            "naive_3d_pool_s": t_naive,
                            "speedup_vs_separable_pool": t_pools / t_ours,
                            "speedup_vs_naive": t_naive / t_ours})
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
