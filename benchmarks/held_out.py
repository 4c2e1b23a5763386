"""What the benchmarks on held-out phantom pairs share: the pairs and the record they write.

Held-out pairs are small phantom pairs drawn with seeds the book's study does not use
(it uses seed 0), so a benchmark measures a fix on pairs that played no part in
designing it.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import torch

from breastlib.evaluate.pair import CohortPair, load_cohort_pair
from breastlib.phantom import make_cohort


def held_out_pair_files(task: str, seed: int, root: Path, *,
                        size: str = "small") -> tuple[Path, str]:
    """``(manifest, pair_id)`` of one phantom pair of ``size`` written under ``root``
    (seed 0 gives the first pair of the book's own cohort); nothing is loaded."""
    manifest = Path(make_cohort(task, n_pairs=1, size=size, seed=seed,
                                out_dir=root / f"{task}-{seed}"))
    return manifest, str(pd.read_csv(manifest)["pair_id"].iloc[0])


def held_out_pairs(tasks: Sequence[str], seeds: Sequence[int], root: Path, *,
                   size: str = "small") -> Iterator[tuple[str, int, CohortPair]]:
    """``(task, seed, pair)``: one phantom pair of ``size`` per task and seed, written
    under ``root`` (:func:`held_out_pair_files`) and loaded."""
    for task in tasks:
        for seed in seeds:
            yield task, seed, load_cohort_pair(*held_out_pair_files(task, seed, root,
                                                                    size=size))


def write_record(path: Path, benchmark: str, rows: list[dict], argv: list[str] | None,
                 **meta: object) -> None:
    """Write ``rows`` with the benchmark's name, ``meta``, the machine, the torch threads,
    the date and the command that reproduces it."""
    script = f"benchmarks/bench_{benchmark}.py"
    path.write_text(json.dumps({
        "benchmark": benchmark, **meta,
        "machine": platform.machine(), "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "command": f"python {script} " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }, indent=1) + "\n")
