"""The QC picture written by ``breastlib register``: readable without Python.

Slices follow the display convention of :mod:`breastlib.viz.slices` (the patient's right
on the viewer's left, anterior at the top of axial views and on the viewer's left of
sagittal views, superior at the top of coronal and sagittal views), every panel carries
outlined orientation letters, and the difference and Jacobian columns a colour bar with
units.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from breastlib._atomic import atomic_path
from breastlib.intensity import normalise_intensity
from breastlib.viz._plotly import draw_letters, wrap_label
from breastlib.viz.slices import NORMAL_AXIS, VIEWS, orthogonal_slice

#: Colour-bar labels of the difference and Jacobian columns.
DIFFERENCE_UNITS = "fixed - warped (normalised intensity: each image 0-1)"
JACOBIAN_UNITS = "Jacobian determinant (unitless; 1 = volume kept)"


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
    title
        First line of the figure's title.
    centre
        Voxel through which the three planes pass (grid centre by default).

    Returns
    -------
    matplotlib.figure.Figure
        Three rows (axial, coronal, sagittal) by five columns; the difference (``-0.5`` to
        ``0.5`` of the normalised intensities) and the Jacobian (0 to 2, centred at 1)
        each with a colour bar.
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
    units = {"fixed - warped": DIFFERENCE_UNITS, "Jacobian det.": JACOBIAN_UNITS}
    centre = centre or tuple(s // 2 for s in fixed.shape)
    # A bare Figure (no pyplot): no global backend is switched and nothing is left open
    # in pyplot's figure manager when a notebook imports this module.
    figure = Figure(figsize=(3.2 * len(panels), 10.4), layout="constrained")
    # The colour bars fill a thin fourth row, so the panels of every column stay aligned.
    grid = figure.subplots(4, len(panels), height_ratios=[1.0, 1.0, 1.0, 0.05])
    axes = grid[:3]
    for row, view in enumerate(VIEWS):
        slice_index = centre[NORMAL_AXIS[view]]
        for col, (name, volume, style) in enumerate(panels):
            image, extent = orthogonal_slice(volume, spacing, view, slice_index)
            ax = axes[row, col]
            shown = ax.imshow(image, origin="lower", extent=extent, interpolation="nearest",
                              **style)
            ax.set_xticks([])
            ax.set_yticks([])
            draw_letters(ax, view)
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(f"{view} ({slice_index + 1} of {fixed.shape[NORMAL_AXIS[view]]})")
            if row == 2 and name in units:
                bar = figure.colorbar(shown, cax=grid[3, col], orientation="horizontal")
                bar.ax.set_label("<colorbar>")  # as matplotlib names its own colour bars
                bar.set_label(wrap_label(units[name], 36), fontsize=9)
            elif row == 2:
                figure.delaxes(grid[3, col])
    suffix = ("radiological view: patient's right on the viewer's left; anterior up (axial), "
              "on the left (sagittal)")
    figure.suptitle(f"{title}\n{suffix}" if title else suffix)
    return figure


def save_qc(path: str | os.PathLike, figure: Figure) -> Path:
    """Save a figure as PNG atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    return Path(path)
