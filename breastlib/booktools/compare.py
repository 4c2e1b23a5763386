"""What a task chapter's method-comparison grid shows, read from a study's previews.

:func:`comparison_grid_inputs` turns the cohort's first pair, the study table and the
``previews/`` the study wrote (:func:`breastlib.study.worker.save_preview`) into the
arguments of :func:`breastlib.viz.compare.show_comparison_grid`. Nothing is recomputed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from breastlib.booktools.figures import (
    FLAG_MARKS,
    METRICS,
    method_label,
    preview_file,
    primary_metric,
)
from breastlib.intensity import normalise_intensity
from breastlib.viz.compare import NOT_REGISTERED
from breastlib.volume import load_volume

#: The previews store the determinant clipped to [0, PREVIEW_JACOBIAN_MAX] as 0..255.
PREVIEW_JACOBIAN_MAX = 2.0


def preview_jacobian(stored: np.ndarray) -> np.ndarray:
    """A preview's uint8 Jacobian as determinant values: ``0..255 -> 0..2`` (float32; 0
    stands for every non-positive, folded, value and 2 for anything above)."""
    return np.asarray(stored, dtype=np.float32) / 255.0 * PREVIEW_JACOBIAN_MAX


def comparison_grid_inputs(
    manifest: str | os.PathLike, results_dir: str | os.PathLike, table: pd.DataFrame
) -> dict[str, Any]:
    """Arguments of :func:`~breastlib.viz.compare.show_comparison_grid` for the cohort's
    first pair: every method that ran on it, the fixed image first.

    Panels are labelled like the rest of the book (``sam (random)``), a flagged row carries
    its mark (``[W]``, ``[F]``: :data:`~breastlib.booktools.figures.FLAG_MARKS`), and the
    second line of each title is the pair's primary metric (the dense error against the
    true field where known, else the landmark error). The identity row comes first, as
    ``no registration (moving)`` (:data:`~breastlib.viz.compare.NOT_REGISTERED`); the
    others follow best first.

    Parameters
    ----------
    manifest
        The cohort's ``manifest.csv`` (the fixed image is read from it).
    results_dir
        The study folder holding ``previews/``.
    table
        The study table (``results.csv`` rows).

    Returns
    -------
    dict
        ``fixed`` (``(X, Y, K)`` uint8 axial slices of the fixed image, normalised as the
        previews are), ``warped`` (label -> ``(X, Y, K)`` uint8), ``jacobians`` (label ->
        ``(X, Y, K)`` float32 determinant in [0, 2]), ``spacing`` (``(3,)`` mm),
        ``slice_numbers`` (``(K,)`` 0-based slice indices in the volume), ``n_slices``
        (slices of the volume), ``notes`` (label -> ``"2.96 mm"``) and ``title``.

    Raises
    ------
    FileNotFoundError
        No preview of the first pair under ``results_dir/previews``.
    """
    manifest = Path(manifest)
    cohort = pd.read_csv(manifest)
    pair_id = str(cohort["pair_id"].iloc[0])
    previews = Path(results_dir) / "previews"
    rows = table[(table["pair_id"] == pair_id) & (table["status"] == "ok")]
    metric = primary_metric(rows) if len(rows) else primary_metric(table)
    unit = METRICS[metric].split(" (")[0]
    found = []
    for _, row in rows.iterrows():
        preview = preview_file(previews, row)
        if preview is None:
            continue
        mark = FLAG_MARKS.get(str(row.get("verdict", "")), "")
        label = NOT_REGISTERED if row["method"] == "identity" else method_label(row)
        label += f" [{mark}]" if mark else ""
        value = pd.to_numeric(pd.Series([row.get(metric)]), errors="coerce").iloc[0]
        note = f"{unit} {value:.2f} mm" if pd.notna(value) else ""
        rank = (row["method"] != "identity", value if pd.notna(value) else np.inf)
        with np.load(preview) as data:
            found.append((rank, label, note, {k: data[k] for k in data.files}))
    if not found:
        raise FileNotFoundError(f"no previews under {previews} for {pair_id}")
    found.sort(key=lambda item: item[0])
    first = found[0][3]
    slices = np.asarray(first["slices"], dtype=int)
    fixed = load_volume(manifest.parent / cohort["fixed_image"].iloc[0])
    fixed_u8 = (normalise_intensity(fixed.array)[:, :, slices] * 255).round().astype(np.uint8)
    task = str(cohort["task"].iloc[0]) if "task" in cohort else ""
    return {
        "fixed": fixed_u8,
        "warped": {label: data["warped"] for _, label, _, data in found},
        "jacobians": {label: preview_jacobian(data["jacobian"]) for _, label, _, data in found},
        "spacing": np.array(first["spacing"], dtype=float),
        "slice_numbers": slices,
        "n_slices": int(fixed.array.shape[2]),
        "notes": {label: note for _, label, note, _ in found},
        "title": f"{task}: pair {pair_id}" if task else f"pair {pair_id}",
    }
