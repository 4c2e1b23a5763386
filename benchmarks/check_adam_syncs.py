"""Count the host-device synchronisations of the Adam stage on a CUDA GPU.

A synchronisation inside Adam's loop (``.item()``, a Python ``if`` on a tensor, a copy to
the host) would make every iteration wait for the GPU, so its cost would grow with the
iteration count. This script registers one small longitudinal phantom pair with MIND per
profile asked for, under PyTorch's synchronisation debug mode switched on for the Adam
stage alone, and records how many synchronising operations it saw and where. A count that
stays the same between 80 and 1000 iterations means none is in the loop. (The debug mode
is a prototype in PyTorch and does not see every kind of synchronisation.)

Run by hand on a machine with a CUDA GPU::

    python benchmarks/check_adam_syncs.py [--profiles fast paper] [--out FILE]

Writes ``benchmarks/results/gpu_adam_syncs.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

OUT = Path(__file__).parent / "results" / "gpu_adam_syncs.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["fast", "paper"])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        sys.exit("check_adam_syncs.py needs a CUDA GPU: PyTorch sees none on this machine")
    import breastlib.register.pipeline as pipeline
    from breastlib.phantom import make_pair
    from breastlib.profiles import get_profile
    from breastlib.register import register_method

    original = pipeline.adam_step
    seen: list[warnings.WarningMessage] = []

    def counted(*call_args, **kwargs):
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                return original(*call_args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
            seen.extend(w for w in caught if "synchroniz" in str(w.message))

    pipeline.adam_step = counted  # the pipeline looks the name up in its module
    pair = make_pair("longitudinal", "small", seed=0)
    rows = []
    for profile in args.profiles:
        seen.clear()
        result = register_method(pair.fixed, pair.moving, method="mind", profile=profile,
                                 device="cuda")
        rows.append({"profile": profile, "iterations": get_profile(profile).iterations,
                     "syncs": len(seen),
                     "where": sorted({f"{Path(w.filename).name}:{w.lineno}" for w in seen}),
                     "adam_s": round(result.seconds["adam"], 3)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({
        "benchmark": "adam_syncs", "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
        "commands": ["python benchmarks/check_adam_syncs.py " + " ".join(argv or sys.argv[1:])],
        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
