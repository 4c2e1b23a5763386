"""The QC picture written by ``breastlib register``: readable without Python."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from breastlib._atomic import atomic_path
from breastlib.intensity import normalise_intensity
from breastlib.viz.slices import NORMAL_AXIS, VIEWS, orthogonal_slice


def checkerboard(a: np.ndarray, b: np.ndarray, *, tile: int = 8) -> np.ndarray:
    """Interleave two same-shape volumes in ``tile``-voxel 3-D blocks."""
    block_index = np.indices(a.shape) // tile
    return np.where(block_index.sum(axis=0) % 2 == 0, a, b)


def qc_figure(
    fixed: np.ndarray,
    warped: np.ndarray,
    jacobian: np.ndarray,
    spacing: np.ndarray,
    *,
    title: str = "",
    centre: tuple[int, int, int] | None = None,
) -> Figure:
    """Fixed, warped, checkerboard, difference and Jacobian in three orthogonal views.

    Parameters
    ----------
    fixed, warped
        ``(X, Y, Z)`` raw intensities on the fixed grid (normalised here for display).
    jacobian
        ``(X, Y, Z)`` Jacobian determinant of the field.
    spacing
        ``(3,)`` voxel size in mm.
    centre
        Voxel through which the three planes pass (grid centre by default).
    """
    f = normalise_intensity(fixed)
    w = normalise_intensity(warped)
    panels = [
        ("fixed", f, dict(cmap="gray", vmin=0, vmax=1)),
        ("warped moving", w, dict(cmap="gray", vmin=0, vmax=1)),
        ("checkerboard", checkerboard(f, w), dict(cmap="gray", vmin=0, vmax=1)),
        ("fixed - warped", f - w, dict(cmap="RdBu_r", vmin=-0.5, vmax=0.5)),
        ("Jacobian det.", jacobian, dict(cmap="PiYG", vmin=0.0, vmax=2.0)),
    ]
    centre = centre or tuple(s // 2 for s in fixed.shape)
    # A bare Figure (no pyplot): no global backend is switched and nothing is left open
    # in pyplot's figure manager when a notebook imports this module.
    figure = Figure(figsize=(3.2 * len(panels), 9.6), layout="constrained")
    axes = figure.subplots(3, len(panels))
    for row, view in enumerate(VIEWS):
        slice_index = centre[NORMAL_AXIS[view]]
        for col, (name, volume, style) in enumerate(panels):
            image, extent = orthogonal_slice(volume, spacing, view, slice_index)
            ax = axes[row, col]
            shown = ax.imshow(image, origin="lower", extent=extent, interpolation="nearest",
                              **style)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(f"{view} ({slice_index})")
            if row == 2 and name in ("fixed - warped", "Jacobian det."):
                figure.colorbar(shown, ax=axes[:, col], shrink=0.5, location="bottom")
    suffix = "radiological view: patient's right on the left; axial anterior up"
    figure.suptitle(f"{title}\n{suffix}" if title else suffix)
    return figure


def save_qc(path: str | os.PathLike, figure: Figure) -> Path:
    """Save a figure as PNG atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    return Path(path)
