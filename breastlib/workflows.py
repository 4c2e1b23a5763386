"""Register image files and apply saved fields: ``breastlib register`` and ``apply`` as
library calls with keyword arguments.

Inputs are all loaded and validated before anything is computed; outputs are written to
a staging folder beside ``--out`` and moved into place only when complete, with
``summary.json`` last, so an interrupted or failed run leaves no partial output.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from breastlib._atomic import staged_output
from breastlib.device import peak_rss_mib
from breastlib.displacement import Displacement
from breastlib.errors import InputError
from breastlib.evaluate.pair import (
    CohortPair,
    check_truth_grid,
    landmark_kinds,
    pair_metrics,
)
from breastlib.points import point_array, read_points, write_points
from breastlib.tissues import load_label_names
from breastlib.volume import Volume, load_volume


def _load_labels_for(image: Volume, path: Path | None) -> Volume | None:
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


def register_files(
    fixed: str | os.PathLike,
    moving: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "mind",
    profile: str = "fast",
    init: str | None = None,
    device: str = "auto",
    weights: str = "random",
    input_size: int | None = None,
    slice_step: int | None = None,
    pca_dims: int | None = None,
    seed: int = 0,
    fixed_labels: str | os.PathLike | None = None,
    moving_labels: str | os.PathLike | None = None,
    label_names: str | os.PathLike | None = None,
    fixed_points: str | os.PathLike | None = None,
    moving_points: str | os.PathLike | None = None,
    true_displacement: str | os.PathLike | None = None,
    volume_index: int | None = None,
    nan: str = "error",
    overrides: dict[str, Any] | None = None,
    qc: bool = True,
) -> dict[str, Any]:
    """Register image files and write the five outputs of ``breastlib register``.

    Everything is loaded and checked before anything is computed; the outputs
    (``displacement.nii.gz``, ``warped.nii.gz``, ``warped_labels.nii.gz`` with labels,
    ``qc.png``, ``summary.json``) are staged and moved into ``out`` only when complete.

    Parameters
    ----------
    fixed, moving
        NIfTI files or DICOM series folders.
    out
        Output folder (created).
    method, profile, init, device, weights, input_size, slice_step, pca_dims, seed
        As for :func:`breastlib.register.register_method`.
    fixed_labels, moving_labels
        Label maps on their image's grid (both or neither).
    label_names
        ``labels.json`` (``{name: value}``); default ``label_<value>`` names.
    fixed_points, moving_points
        Corresponding landmark CSVs (``x,y,z`` RAS mm; both or neither).
    true_displacement
        The true fixed -> moving field (displacement NIfTI on the fixed grid, as a
        phantom's ``gt_displacement.nii.gz``): adds the dense field error, the primary
        metric, to the summary.
    volume_index, nan
        As for :func:`breastlib.volume.load_volume`.
    overrides
        Profile parameters to override (:class:`breastlib.profiles.ConvexAdamParams`
        fields, e.g. ``{"iterations": 300}``); not for the classical baselines.
    qc
        Draw ``qc.png`` (:func:`breastlib.viz.qc.qc_picture`, with Pillow: about 0.1 s
        on 2 CPU cores for a small pair). A batch that looks at the numbers first may
        leave it out.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    from breastlib import __version__
    from breastlib.register import register_method
    from breastlib.register.baselines import BASELINES

    fixed_path, moving_path, out = Path(fixed), Path(moving), Path(out)
    # 1. Load and validate everything first.
    fixed = load_volume(fixed_path, volume_index=volume_index, nan=nan)
    moving = load_volume(moving_path, volume_index=volume_index, nan=nan)
    if not fixed.grid.overlaps(moving.grid):
        raise InputError(
            f"fixed and moving images do not overlap in world space (check the moving "
            f"file's affine against {fixed_path})",
            moving_path,
        )
    fixed_label_map = _load_labels_for(fixed, fixed_labels)
    moving_label_map = _load_labels_for(moving, moving_labels)
    if (fixed_labels is None) != (moving_labels is None):
        raise InputError("give both --fixed-labels and --moving-labels, or neither")
    names = load_label_names(label_names) or _default_label_names(
        fixed_label_map, moving_label_map
    )
    fixed_xyz = moving_xyz = None
    if (fixed_points is None) != (moving_points is None):
        raise InputError("give both --fixed-points and --moving-points, or neither")
    if fixed_points is not None and moving_points is not None:
        fixed_table = read_points(fixed_points)
        moving_table = read_points(moving_points)
        if len(fixed_table) != len(moving_table):
            raise InputError(
                f"{len(fixed_table)} fixed points but {len(moving_table)} moving points "
                "(rows must correspond)",
                moving_points,
            )
        fixed_xyz, moving_xyz = point_array(fixed_table), point_array(moving_table)

    truth = None
    if true_displacement is not None:
        truth = Displacement.load(true_displacement)
        check_truth_grid(truth, fixed, true_displacement)

    # 2. Register.
    # Classical baselines bring their own initialisation and parameters.
    if overrides and method in BASELINES:
        raise InputError(f"profile parameters do not apply to the baseline '{method}'")
    options = {} if method in BASELINES else dict(
        init=init, input_size=input_size, slice_step=slice_step,
        pca_dims=pca_dims, progress=sys.stderr.isatty(), **(overrides or {}))
    result = register_method(fixed, moving, method=method, profile=profile,
                             device=device, weights=weights, seed=seed,
                             **options)
    displacement = result.displacement
    # 3. Score and write. The files go into a private folder and move into ``out`` only when
    # all are written (summary last). gzip releases the GIL, so the NIfTI files compress in
    # a second thread while this one warps, scores and draws the QC figure.
    with staged_output(out) as stage, ThreadPoolExecutor(max_workers=1) as writer:
        writes = [writer.submit(displacement.save, stage / "displacement.nii.gz")]
        warped = displacement.warp(moving, device=result.device)
        writes.append(writer.submit(warped.save, stage / "warped.nii.gz"))
        jacobian = displacement.jacobian_determinant()
        # The study's evaluation, with every label's Dice and the "before" values.
        warped_labels = None
        if fixed_label_map is not None and moving_label_map is not None:
            warped_labels = displacement.warp_labels(moving_label_map, device=result.device)
            writes.append(writer.submit(warped_labels.save, stage / "warped_labels.nii.gz",
                                        dtype=np.int32))
        scored = CohortPair(
            pair_id=moving_path.name, task=None, fixed=fixed, moving=moving,
            fixed_labels=fixed_label_map, moving_labels=moving_label_map,
            fixed_points=fixed_xyz, moving_points=moving_xyz, label_names=names,
            true_displacement=truth,
            landmark_kinds=None if fixed_points is None else landmark_kinds(fixed_table))
        metrics = pair_metrics(displacement, scored, jacobian=jacobian,
                               warped_labels=warped_labels, detail=True)
        verdict = metrics.pop("verdict")
        region = metrics.pop("field_error_region", None)
        notes = []
        if region == "body":
            notes.append("no breast label: the dense field error covers the whole body")
        if result.stage and result.stage != "adam":
            notes.append(f"the guard kept the '{result.stage}' stage: later stages folded "
                         "or did not match the images better (see stage_checks)")
        if qc:
            from breastlib.viz.qc import qc_picture, save_qc

            title = f"{result.method} / {result.profile}: {moving_path.name} -> " \
                    f"{fixed_path.name}"
            save_qc(stage / "qc.png", qc_picture(fixed.array, warped.array, jacobian,
                                                 fixed.spacing, title=title))
        for write in writes:
            write.result()  # raises what a write raised
        summary = {
            "breastlib_version": __version__,
            "fixed": str(fixed_path),
            "moving": str(moving_path),
            "method": result.method,
            "profile": result.profile,
            "params": result.params,
            "encoder": result.encoder,
            "device": result.device,
            "initial_matrix_ras": np.round(result.initial_matrix, 6).tolist(),
            "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "primary_metric": ("field_error_mean_mm" if truth is not None
                               else "tre_mean_after_mm"),
            "verdict": verdict,
            "stage_kept": result.stage,
            "stage_checks": result.stage_checks,
            # The voxel size ConvexAdam ran at (the profile's work_spacing); null for the
            # classical baselines.
            "work_spacing_mm": [round(v, 4) for v in result.work_spacing_mm] or None,
            # Working voxels per cell of the convex and Adam grids (the profile's grids,
            # or its cell sizes in mm); null for the classical baselines.
            "pooling_factors": {k: list(v) for k, v in result.pooling_factors.items()} or None,
            # Passes of Adam's field smoothing along each axis (smooth_passes, or more on
            # cells finer than the profile's adam_smooth_mm asks); null for the baselines.
            "smoothing_passes": list(result.smoothing_passes) or None,
            # Adam's diffusion weight (regularisation, or more on cells finer than the
            # profile's regularisation_cell_mm); null for the baselines.
            "regularisation_weight": result.regularisation_weight,
            "notes": notes,
            "metrics": {k: (None if np.isnan(v) else round(float(v), 5))
                        for k, v in metrics.items()},
            "python": platform.python_version(),
            "conventions": "displacement: fixed->moving pull-back, LPS mm, fixed file grid",
        }
        (stage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def apply_field(
    displacement: str | os.PathLike,
    fixed: str | os.PathLike,
    out: str | os.PathLike,
    *,
    image: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    points: str | os.PathLike | None = None,
    inverse: bool = False,
    device: str = "auto",
    volume_index: int | None = None,
    nan: str = "error",
) -> Path:
    """Apply a saved displacement to an image (linear), a label map (nearest) or landmarks.

    Parameters
    ----------
    displacement
        ``displacement.nii.gz`` written by :func:`register_files`.
    fixed
        The fixed image it was computed for (its grid is checked).
    out
        Output file.
    image, labels, points
        Exactly one: a moving-side image, label map, or landmark CSV.
    inverse
        Points only: map moving-image points to the fixed image.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if sum(x is not None for x in (image, labels, points)) != 1:
        raise InputError("give exactly one of an image, a label map or landmarks to apply")
    displacement_path, fixed_path, out = Path(displacement), Path(fixed), Path(out)
    field = Displacement.load(displacement_path)
    fixed = load_volume(fixed_path, volume_index=volume_index, nan=nan)
    if not field.grid.same_as(fixed.grid):
        raise InputError(
            f"displacement grid {field.grid.shape} does not match the fixed image "
            f"{fixed.shape} (was it computed for {fixed_path}?)",
            displacement_path,
        )
    if inverse and points is None:
        raise InputError("--inverse applies to --points only")
    if points is not None:
        table = read_points(points)
        xyz = point_array(table)
        if inverse:
            mapped, residual = field.to_fixed(xyz)
            return write_points(out, mapped, like=table, residual_mm=residual)
        return write_points(out, field.to_moving(xyz), like=table)
    if labels is not None:
        label_map = load_volume(labels, labels=True)
        return field.warp_labels(label_map, device=device).save(out, dtype=np.int32)
    moving_image = load_volume(image, volume_index=volume_index, nan=nan)
    return field.warp(moving_image, device=device).save(out)
