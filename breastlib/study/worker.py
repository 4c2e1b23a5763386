"""One cell of the study grid, run as ``python -m breastlib.study.worker JOB.json``, or with
``-`` to read the job's JSON from standard input (as the study runner does, so that a killed
study leaves no job file behind).

Runs in a fresh process so its peak memory is its own; writes its row atomically, with
``status="failed"`` and the error when anything goes wrong.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from breastlib.register.baselines import BASELINES


def base_row(job: Any) -> dict[str, Any]:
    """The identifying columns of a row (everything known before running)."""
    data = asdict(job) if not isinstance(job, dict) else job
    import pandas as pd

    manifest = pd.read_csv(data["manifest"])
    task = manifest.loc[manifest["pair_id"].astype(str) == data["pair_id"], "task"]
    return {
        "task": str(task.iloc[0]) if len(task) else None,
        "pair_id": data["pair_id"],
        "method": data["method"],
        "encoder": "mind-ssc" if data["method"] == "mind" else None,
        "weights": data["weights"] if data["method"] not in ("mind", *BASELINES)
        else None,
        "weights_sha256": None,
        "profile": data["profile"],
        "seed": int(data.get("seed", 0)),
    }


def _versions() -> str:
    from importlib import metadata

    names = ("breastlib", "torch", "numpy", "SimpleITK", "antspyx", "itk-elastix", "timm",
             "segment-anything", "open_clip_torch")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return json.dumps(found, sort_keys=True)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """Register one pair with one method and compute every metric of the row."""
    from breastlib.device import peak_rss_mib
    from breastlib.evaluate.pair import load_cohort_pair, pair_metrics
    from breastlib.register import register_method

    pair = load_cohort_pair(job["manifest"], job["pair_id"])
    overrides = json.loads(job["overrides"]) if job.get("overrides") else {}
    if job["method"] not in BASELINES:
        overrides["keep_adam"] = True
    result = register_method(pair.fixed, pair.moving, method=job["method"],
                             profile=job["profile"], device=job["device"],
                             weights=job["weights"], seed=job["seed"], **overrides)
    # The row measures the method's own result (for ConvexAdam methods the Adam stage,
    # even where the stage guard kept an earlier one: the study judges the features, not
    # the guard); the guard's choice and what it delivers have columns of their own.
    disp = result.own_displacement
    row: dict[str, Any] = {
        "seconds_features": result.seconds.get("features"),
        "seconds_optimisation": result.seconds.get("optimisation"),
        "device": result.device,
        "params": json.dumps(result.params, sort_keys=True, default=str),
        "stage_kept": result.stage,
    }
    if result.encoder:
        row |= {"encoder": result.encoder.get("name", job["method"]),
                "weights": result.encoder.get("weights"),
                "weights_sha256": result.encoder.get("weights_sha256")}
    jacobian = disp.jacobian_determinant()
    row |= pair_metrics(disp, pair, jacobian=jacobian)
    delivered = row
    if result.adam_displacement is not None:
        delivered = pair_metrics(result.displacement, pair)
    row |= {f"guarded_{column}": delivered.get(column) for column in GUARDED_COLUMNS}
    if job.get("preview"):
        save_preview(preview_path(job["row_path"]), disp.warp(pair.moving).array,
                     jacobian, pair.fixed.spacing)
    row["peak_rss_mib"] = peak_rss_mib()
    return {k: _nan_to_none(v) for k, v in row.items()}


#: Metrics also recorded for what the guarded pipeline delivers (``guarded_<name>``).
GUARDED_COLUMNS = ("field_error_mean_mm", "tre_mean_after_mm")
PREVIEW_SLICES = 24


def preview_path(row_path: str | Path) -> Path:
    """``rows/KEY.json`` -> ``previews/KEY.npz``."""
    row_path = Path(row_path)
    return row_path.parent.parent / "previews" / f"{row_path.stem}.npz"


def save_preview(path: Path, warped: np.ndarray, jacobian: np.ndarray,
                 spacing: np.ndarray) -> None:
    """Save evenly spaced axial slices of the warped image and Jacobian as 8-bit arrays.

    The warped image is normalised to [0, 255]; the Jacobian maps [0, 2] to [0, 255].
    """
    from breastlib._atomic import atomic_path
    from breastlib.intensity import normalise_intensity

    slices = np.unique(np.linspace(0, warped.shape[2] - 1, PREVIEW_SLICES).round().astype(int))
    image = (normalise_intensity(warped)[:, :, slices] * 255).round().astype(np.uint8)
    jac = (np.clip(jacobian[:, :, slices], 0, 2) / 2 * 255).round().astype(np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, warped=image, jacobian=jac, slices=slices,
                            spacing=np.asarray(spacing, dtype=np.float64))


def main(argv: list[str] | None = None) -> int:
    """Run the job described by the JSON file given as the only argument (``-``: the JSON
    on standard input)."""
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(sys.stdin.read() if argv[0] == "-" else Path(argv[0]).read_text())
    threads = os.environ.get("BREASTLIB_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    from breastlib._atomic import write_text_atomic

    row = base_row(job) | {"versions": _versions()}
    start = time.perf_counter()
    try:
        row |= evaluate(job)
        row |= {"status": "ok", "error": None}
    except Exception as exc:  # recorded in the row; the study goes on
        from breastlib.errors import BreastlibError

        detail = str(exc) if isinstance(exc, BreastlibError) else traceback.format_exc(limit=3)
        row |= {"status": "failed", "error": f"{type(exc).__name__}: {detail}"[-2000:]}
    row["seconds_total"] = time.perf_counter() - start
    write_text_atomic(job["row_path"], json.dumps(row, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
