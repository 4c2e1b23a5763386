"""The body mask with and without its ghost opening, on full-size phantom pairs.

`foreground_mask` thresholds an image, keeps the largest region and fills its holes; on
voxels of 2 mm or finer it first opens the region by a box of
``GHOST_OPENING_MM`` half-width, so that MR ghosts of the breasts (a lace of strands in the
air, touching the body) are not taken for body. This script computes both masks of the
fixed and the moving image of one full-size phantom pair per task and seed, on their own
grids, and measures each against the image's label map (:func:`breastlib.evaluate.pair.
body_mask`): the volume the mask takes outside the labelled body (ghosts, air), the
labelled body it leaves out, and the seconds. It also keeps one axial slice of the
modality pair's fixed image with both masks (``ghost_mask_slice.npz``), which the
performance appendix shows.

Run by hand (a few minutes; the pairs take 2-3 minutes each to generate where ``--pairs``
holds none yet)::

    .venv/bin/python benchmarks/bench_ghost_mask.py --seeds 0 1 --pairs /tmp/full-pairs

Writes ``benchmarks/results/ghost_mask.json`` and ``ghost_mask_slice.npz``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_work_spacing import TASKS, pair_files
from held_out import write_record

from breastlib.evaluate.pair import body_mask, load_cohort_pair
from breastlib.register.initial import GHOST_OPENING_MM, foreground_mask, ghost_opening_radii

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "ghost_mask.json"
SLICE = RESULTS / "ghost_mask_slice.npz"


def _timed_mask(volume, opening_mm: float) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    mask = foreground_mask(volume, ghost_opening_mm=opening_mm)
    return mask, time.perf_counter() - start


def measure(volume, labels) -> tuple[dict, np.ndarray, np.ndarray]:
    """Both masks of one image against its labelled body: ml outside it, ml of it left
    out, seconds; returns the row and the two masks."""
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    body = body_mask(volume, labels)
    plain, plain_s = _timed_mask(volume, 0.0)
    opened, opened_s = _timed_mask(volume, GHOST_OPENING_MM)

    def volumes(mask: np.ndarray) -> dict[str, float]:
        return {"outside_body_ml": round(float((mask & ~body).sum()) * voxel_ml, 1),
                "body_left_out_ml": round(float((body & ~mask).sum()) * voxel_ml, 1)}

    row = {"spacing_mm": [round(float(s), 3) for s in volume.spacing],
           "opening_voxels": list(ghost_opening_radii(volume.spacing)),
           "body_ml": round(float(body.sum()) * voxel_ml, 1),
           "plain": volumes(plain) | {"seconds": round(plain_s, 2)},
           "opened": volumes(opened) | {"seconds": round(opened_s, 2)}}
    return row, plain, opened


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--pairs", type=Path,
                        help="generate the full-size pairs here, or reuse them")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for seed in args.seeds:
                pair = load_cohort_pair(*pair_files(task, args.pairs or Path(tmp), seed))
                for role, volume, labels in (("fixed", pair.fixed, pair.fixed_labels),
                                             ("moving", pair.moving, pair.moving_labels)):
                    row, plain, opened = measure(volume, labels)
                    rows.append({"task": task, "seed": seed, "image": role} | row)
                    print(rows[-1], flush=True)
                    if (task, seed, role) == ("modality", 0, "fixed"):
                        # the axial slice with the most ghost: the plain mask's excess
                        excess = (plain & ~opened).sum(axis=(0, 1))
                        k = int(np.argmax(excess))
                        np.savez_compressed(
                            args.out.parent / SLICE.name, image=volume.array[:, :, k],
                            plain=plain[:, :, k], opened=opened[:, :, k],
                            spacing_mm=np.asarray(volume.spacing[:2], float), slice_index=k)
    write_record(args.out, "ghost_mask", rows, argv, size="full",
                 opening_mm=GHOST_OPENING_MM)


if __name__ == "__main__":
    main(sys.argv[1:])
