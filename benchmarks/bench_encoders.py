"""Encoder speed and memory on this machine (run by hand; not part of the test suite).

    OMP_NUM_THREADS=2 python benchmarks/bench_encoders.py --out benchmarks/results/encoders
    python benchmarks/bench_encoders.py --quick          # reduced run (fast sizes only)
    OMP_NUM_THREADS=2 python benchmarks/bench_encoders.py --sweep 1,2,4,8 \
        --out benchmarks/results/batch_sweep              # slices/s per batch size

For every architecture (SAM ViT-B stands for sam/medsam/sslsam, the BiomedCLIP trunk
for biomedclip/medclip; timings do not depend on the weights, so random weights are
used) and input size, each measurement runs in a fresh subprocess and reports:

* slices per second, batched (one forward pass over ``n`` slices) and one slice at a
  time (``n`` passes), with the speed-up;
* the process's peak resident memory while encoding.

Peak memory for a 512 x 512 x 160 volume pair is **extrapolated**, not measured (a full
run at the published sizes takes hours on a CPU): network + one batch of activations
(measured at the largest size run, scaled linearly with tokens, which holds with the
fused, memory-efficient attention used here) + the float32 token buffers of the encoded
slices of both volumes (every 6th slice and the last: 28 slices) + both input volumes.
Where a published size is too slow to run, slices/s is extrapolated from the largest
measured size with the transformer FLOP model ``depth * (24 N D^2 + 4 N^2 D)`` and the
row says ``"extrapolated": true``.

``--sweep`` instead times the same slices at each listed batch size (fast input sizes,
or ``--only``'s, best of two runs each), to see whether and where a larger batch pays on a
machine.

``--device`` (default ``auto``: the fastest device present) picks where the encoders run;
on a GPU the timings wait for the device to finish and each row adds its peak device
memory, so a GPU user runs the same commands and gets the same tables.

Writes ``<out>.json`` and ``<out>.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ARCH = {  # name: (depth, width, patch, channels, published size, sizes to measure)
    "sam": (12, 768, 16, 256, 1024, [256, 512, 1024]),
    "dinov2-s": (12, 384, 14, 384, 1792, [224, 448]),
    "dinov2-b": (12, 768, 14, 768, 1792, [224, 448]),
    "dinov2": (24, 1024, 14, 1024, 1792, [224, 448]),
    "biomedclip": (12, 768, 16, 768, 224, [224]),
}
QUICK = {"sam": [256], "dinov2-s": [224], "dinov2-b": [224], "dinov2": [224],
         "biomedclip": [224]}
VOLUME = (512, 512, 160)
STEP = 6


def _random_encoder(name: str, size: int, device: str):
    """The encoder at ``size`` px with seeded random weights (timings ignore the weights)."""
    import torch

    from breastlib.device import resolve_device
    from breastlib.encoders import get_encoder

    torch.manual_seed(0)
    return get_encoder(name, input_size=size, device=resolve_device(device))


def _timed(enc, x, batch: int) -> float:
    """Seconds to encode ``x`` in batches of ``batch``, waiting for the device to finish."""
    import torch

    t0 = time.perf_counter()
    for start in range(0, len(x), batch):
        enc.encode(x[start : start + batch])
    if x.device.type == "cuda":  # kernels run asynchronously: time their end, not their launch
        torch.cuda.synchronize(x.device)
    return time.perf_counter() - t0


def _measure(name: str, size: int, n: int, device: str) -> dict:
    """Runs inside the subprocess: time batched and single encoding, report peak memory."""
    import torch

    enc = _random_encoder(name, size, device)
    on = next(enc.parameters()).device
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    x = torch.rand(n, 1, size, size, device=on)
    _timed(enc, x[:1], 1)  # warm-up
    batched = _timed(enc, x, n)
    single = _timed(enc, x, 1)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params = sum(p.numel() for p in enc.parameters()) * 4
    out = {"batched_s": batched, "single_s": single, "rss_model": rss_model,
           "rss_peak": rss_peak, "param_bytes": params, "device": str(on)}
    if on.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated(on) / 2**20
        out["gpu"] = torch.cuda.get_device_name(on)
    return out


def _sweep(name: str, size: int, n: int, batches: list[int], device: str) -> dict:
    """Runs inside the subprocess: slices/s of ``n`` slices at each batch size."""
    import torch

    enc = _random_encoder(name, size, device)
    x = torch.rand(n, 1, size, size, device=next(enc.parameters()).device)
    _timed(enc, x[:1], 1)  # warm-up
    out = {}
    for batch in batches:
        # best of two: the machine's other load only slows a run down
        out[str(batch)] = n / min(_timed(enc, x, batch) for _ in range(2))
    return out


def run_sweep(args: argparse.Namespace) -> list[dict]:
    batches = [int(b) for b in args.sweep.split(",")]
    n = max(args.slices, max(batches))
    rows = []
    for name, sizes in _sizes(args, QUICK).items():
        for size in sizes:
            cmd = [sys.executable, __file__, "--sweep-child", name, str(size), str(n),
                   args.sweep, args.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env={**os.environ, "HF_HUB_OFFLINE": "1"})
            speeds = json.loads(out.stdout.strip().splitlines()[-1])
            single = speeds["1"] if "1" in speeds else None
            for batch, per_s in speeds.items():
                rows.append({"encoder": name, "input_size": size, "device": args.device,
                             "tokens": (size // ARCH[name][2]) ** 2, "slices": n,
                             "batch": int(batch), "slices_per_s": per_s,
                             "vs_batch_1": per_s / single if single else None})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _flops(depth: int, width: int, tokens: int) -> float:
    return depth * (24 * tokens * width**2 + 4 * tokens**2 * width)


def _sizes(args: argparse.Namespace, default: dict[str, list[int]]) -> dict[str, list[int]]:
    """Input sizes per encoder: ``--only``'s list where given, else ``default``."""
    if not args.only:
        return default
    sizes: dict[str, list[int]] = {}
    for item in args.only.split(","):
        name, size = item.split(":")
        sizes.setdefault(name, []).append(int(size))
    return sizes


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    sizes = _sizes(args, QUICK if args.quick else {k: v[-1] for k, v in ARCH.items()})
    for name, (depth, width, patch, channels, published, _) in ARCH.items():
        if name not in sizes:
            continue
        measured = []
        for size in sizes[name]:
            n = args.slices if (size // patch) ** 2 <= 1024 else 1
            cmd = [sys.executable, __file__, "--child", name, str(size), str(n), args.device]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env={**os.environ, "HF_HUB_OFFLINE": "1"})
            res = json.loads(out.stdout.strip().splitlines()[-1])
            tokens = (size // patch) ** 2
            row = {
                "encoder": name, "input_size": size, "tokens": tokens, "slices": n,
                "slices_per_s_batched": n / res["batched_s"],
                "slices_per_s_single": n / res["single_s"],
                "batch_speedup": res["single_s"] / res["batched_s"],
                "peak_rss_gb": res["rss_peak"] / 1e9,
                "activation_gb_per_slice": max(0.0, res["rss_peak"] - res["rss_model"]) / n / 1e9,
                "param_gb": res["param_bytes"] / 1e9,
                "extrapolated": False, "wall_s": time.perf_counter() - t0,
                "device": res["device"], "gpu": res.get("gpu"),
                "peak_gpu_gb": res.get("peak_gpu_mib", 0) / 1024 or None,
            }
            rows.append(row)
            measured.append(row)
            print(json.dumps(row), flush=True)
        ref = measured[-1]
        pub_tokens = (published // patch) ** 2
        if ref["input_size"] != published:
            scale = _flops(depth, width, ref["tokens"]) / _flops(depth, width, pub_tokens)
            rows.append({
                "encoder": name, "input_size": published, "tokens": pub_tokens, "slices": 0,
                "slices_per_s_batched": ref["slices_per_s_single"] * scale,
                "slices_per_s_single": ref["slices_per_s_single"] * scale,
                "batch_speedup": None, "extrapolated": True,
            })
            print(json.dumps(rows[-1]), flush=True)
        encoded = len(range(0, VOLUME[2], STEP)) + (0 if (VOLUME[2] - 1) % STEP == 0 else 1)
        tokens_gb = 2 * encoded * channels * pub_tokens * 4 / 1e9
        act_gb = ref["activation_gb_per_slice"] * pub_tokens / ref["tokens"]
        volumes_gb = 2 * math.prod(VOLUME) * 4 / 1e9
        rows.append({
            "encoder": name, "input_size": published, "memory_512x512x160_gb":
            ref["param_gb"] + act_gb + tokens_gb + volumes_gb, "token_buffers_gb": tokens_gb,
            "activation_gb": act_gb, "extrapolated": True, "encoded_slices": encoded,
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        name, size, n, device = sys.argv[2:]
        print(json.dumps(_measure(name, int(size), int(n), device)))
        return
    if len(sys.argv) == 7 and sys.argv[1] == "--sweep-child":
        name, size, n, batches, device = sys.argv[2:]
        print(json.dumps(_sweep(name, int(size), int(n), [int(b) for b in batches.split(",")],
                                device)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/encoders")
    parser.add_argument("--quick", action="store_true", help="fast input sizes only")
    parser.add_argument("--slices", type=int, default=8, help="slices per measurement")
    parser.add_argument("--only", help="e.g. 'sam:1024,dinov2:448' (replaces the size list)")
    parser.add_argument("--sweep", help="batch sizes to compare, e.g. '1,2,4,8'")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, mps or auto (the fastest this machine has)")
    args = parser.parse_args()
    rows = run_sweep(args) if args.sweep else run(args)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "threads": os.environ.get("OMP_NUM_THREADS", "default"), "quick": args.quick,
            "date": time.strftime("%Y-%m-%d"), "device": args.device}
    if args.sweep:
        meta["sweep"] = args.sweep
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    keys = sorted({k for r in rows for k in r})
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
