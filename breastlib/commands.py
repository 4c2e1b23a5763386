"""What ``breastlib register`` and ``breastlib apply`` do, separated from argument parsing.

Inputs are all loaded and validated before anything is computed; outputs are written to
a staging folder beside ``--out`` and moved into place only when complete, with
``summary.json`` last, so an interrupted or failed run leaves no partial output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .displacement import Displacement
from .errors import InputError
from .intensity import normalise_intensity
from .metrics import jacobian_stats, label_metrics, tre_stats
from .points import point_array, read_points, write_points
from .volume import Volume, load_volume


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@contextlib.contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """A private folder to write into; its files move into ``out_dir`` on success.

    ``summary.json`` is moved last, so its presence marks a complete result.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield stage
        out_dir.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in stage.iterdir())
        names.sort(key=lambda n: n == "summary.json")
        for name in names:
            os.replace(stage / name, out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _load_labels_for(image: Volume, path: Path | None, args: argparse.Namespace) -> Volume | None:
    if path is None:
        return None
    labels = load_volume(path, labels=True, volume_index=None)
    if not labels.grid.same_as(image.grid):
        raise InputError(
            f"label map grid {labels.shape} does not match its image grid {image.shape} "
            "(shape or affine differ)",
            path,
        )
    return labels


def _default_label_names(*label_maps: Volume | None) -> dict[str, int]:
    values: set[int] = set()
    for labels in label_maps:
        if labels is not None:
            values.update(int(v) for v in np.unique(labels.array))
    return {f"label_{v}": v for v in sorted(values) if v != 0}


def body_mask(fixed: Volume, fixed_labels: Volume | None) -> np.ndarray:
    """Where Jacobian statistics are taken: labelled tissue, else the image foreground."""
    if fixed_labels is not None and fixed_labels.array.any():
        return fixed_labels.array > 0
    return normalise_intensity(fixed.array) > 0.1


def run_register(args: argparse.Namespace) -> dict[str, Any]:
    """Register, write the five outputs, return the summary."""
    from . import __version__
    from .cli import load_label_names
    from .register import register_method
    from .register.baselines import BASELINES
    from .viz.qc import qc_figure, save_qc

    # 1. Load and validate everything first.
    fixed = load_volume(args.fixed, volume_index=args.volume_index, nan=args.nan)
    moving = load_volume(args.moving, volume_index=args.volume_index, nan=args.nan)
    if not fixed.grid.overlaps(moving.grid):
        raise InputError(
            f"fixed and moving images do not overlap in world space (check the moving "
            f"file's affine against {args.fixed})",
            args.moving,
        )
    fixed_labels = _load_labels_for(fixed, args.fixed_labels, args)
    moving_labels = _load_labels_for(moving, args.moving_labels, args)
    if (fixed_labels is None) != (moving_labels is None):
        raise InputError("give both --fixed-labels and --moving-labels, or neither")
    label_names = load_label_names(args.label_names) or _default_label_names(
        fixed_labels, moving_labels
    )
    fixed_points = moving_points = None
    if (args.fixed_points is None) != (args.moving_points is None):
        raise InputError("give both --fixed-points and --moving-points, or neither")
    if args.fixed_points is not None:
        fixed_table = read_points(args.fixed_points)
        moving_table = read_points(args.moving_points)
        if len(fixed_table) != len(moving_table):
            raise InputError(
                f"{len(fixed_table)} fixed points but {len(moving_table)} moving points "
                "(rows must correspond)",
                args.moving_points,
            )
        fixed_points, moving_points = point_array(fixed_table), point_array(moving_table)

    # 2. Register.
    # Classical baselines bring their own initialisation and parameters.
    options = {} if args.method in BASELINES else dict(
        init=args.init, input_size=args.input_size, slice_step=args.slice_step,
        pca_dims=args.pca_dims, progress=sys.stderr.isatty())
    result = register_method(fixed, moving, method=args.method, profile=args.profile,
                             device=args.device, weights=args.weights, seed=args.seed,
                             **options)
    displacement = result.displacement
    warped = displacement.warp(moving, device=result.device)
    jacobian = displacement.jacobian_determinant()

    # 3. Metrics.
    metrics: dict[str, Any] = jacobian_stats(jacobian, body_mask(fixed, fixed_labels))
    warped_labels = None
    if fixed_labels is not None and moving_labels is not None:
        warped_labels = displacement.warp_labels(moving_labels, device=result.device)
        before = moving_labels.resample_to(fixed.grid, mode="nearest")
        after_metrics = label_metrics(fixed_labels.array, warped_labels.array, label_names,
                                      fixed.spacing)
        before_metrics = label_metrics(fixed_labels.array, before.array, label_names,
                                       fixed.spacing)
        metrics |= after_metrics
        metrics |= {f"{k}_before": v for k, v in before_metrics.items()}
    if fixed_points is not None:
        before = tre_stats(fixed_points, moving_points)
        after = tre_stats(displacement.to_moving(fixed_points), moving_points)
        metrics |= {f"tre_{k}_before_mm": v for k, v in before.items()}
        metrics |= {f"tre_{k}_after_mm": v for k, v in after.items()}

    summary = {
        "breastlib_version": __version__,
        "fixed": str(args.fixed),
        "moving": str(args.moving),
        "method": result.method,
        "profile": result.profile,
        "params": result.params,
        "encoder": result.encoder,
        "device": result.device,
        "initial_matrix_ras": np.round(result.initial_matrix, 6).tolist(),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "metrics": {k: (None if np.isnan(v) else round(float(v), 5)) for k, v in metrics.items()},
        "python": platform.python_version(),
        "conventions": "displacement: fixed->moving pull-back, LPS mm, fixed file grid",
    }

    # 4. Write (staged, summary last).
    with staged_output(args.out) as stage:
        displacement.save(stage / "displacement.nii.gz")
        warped.save(stage / "warped.nii.gz")
        if warped_labels is not None:
            warped_labels.save(stage / "warped_labels.nii.gz", dtype=np.int32)
        title = f"{result.method} / {result.profile}: {Path(args.moving).name} -> " \
                f"{Path(args.fixed).name}"
        save_qc(stage / "qc.png", qc_figure(fixed.array, warped.array, jacobian,
                                            fixed.spacing, title=title))
        (stage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_apply(args: argparse.Namespace) -> Path:
    """Apply a saved displacement to an image, labels or points."""
    displacement = Displacement.load(args.displacement)
    fixed = load_volume(args.fixed, volume_index=args.volume_index, nan=args.nan)
    if not displacement.grid.same_as(fixed.grid):
        raise InputError(
            f"displacement grid {displacement.grid.shape} does not match the fixed image "
            f"{fixed.shape} (was it computed for {args.fixed}?)",
            args.displacement,
        )
    if args.inverse and args.points is None:
        raise InputError("--inverse applies to --points only")
    if args.points is not None:
        table = read_points(args.points)
        points = point_array(table)
        if args.inverse:
            mapped, residual = displacement.to_fixed(points)
            return write_points(args.out, mapped, like=table, residual_mm=residual)
        return write_points(args.out, displacement.to_moving(points), like=table)
    if args.labels is not None:
        labels = load_volume(args.labels, labels=True)
        return displacement.warp_labels(labels, device=args.device).save(args.out,
                                                                         dtype=np.int32)
    image = load_volume(args.image, volume_index=args.volume_index, nan=args.nan)
    return displacement.warp(image, device=args.device).save(args.out)
