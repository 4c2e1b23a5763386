"""Where the image-derived masks lie: body and breast outlines over a volume's slices.

The figure of :func:`breastlib.evaluate.image_masks.body_mask` and
:func:`~breastlib.evaluate.image_masks.breast_mask_from_image` on a real exam: axial
slices through the breasts and a sagittal slice through each breast, in radiological
display convention (the patient's right on the viewer's left, anterior at the top of
axial views and on the left of sagittal views; see :mod:`breastlib.viz.slices`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from breastlib.errors import InputError
from breastlib.viz.panels import draw_slice
from breastlib.viz.slices import NORMAL_AXIS, orthogonal_slice
from breastlib.volume import Volume

#: Outline colours of the masks.
COLOURS = {"body": "#f5d90a", "breast": "#ff3b30"}
#: Fractions of the breast's superior-inferior extent where the default axial slices lie.
AXIAL_FRACTIONS = (0.25, 0.5, 0.75)


def default_slices(breast: np.ndarray) -> tuple[list[int], list[int]]:
    """Axial slices through the breasts and one sagittal slice through each breast.

    Parameters
    ----------
    breast
        ``(X, Y, Z)`` boolean breast mask, canonical RAS+.

    Returns
    -------
    axial : list of int
        ``z`` indices at :data:`AXIAL_FRACTIONS` of the breast's extent (of the volume's
        when the mask is empty).
    sagittal : list of int
        ``x`` indices of the centroids of the patient's right (high ``x``) and left halves
        of the mask (a third and two thirds across when empty).
    """
    nx, _, nz = breast.shape
    zs = np.flatnonzero(breast.any(axis=(0, 1)))
    low, high = (zs.min(), zs.max()) if zs.size else (0, nz - 1)
    axial = [round(float(low + f * (high - low))) for f in AXIAL_FRACTIONS]
    xs = np.flatnonzero(breast.any(axis=(1, 2)))
    if xs.size == 0:
        return axial, [2 * nx // 3, nx // 3]
    counts = breast.sum(axis=(1, 2)).astype(float)
    middle = (xs.min() + xs.max()) / 2
    sagittal = []
    for side in (np.arange(nx) > middle, np.arange(nx) <= middle):  # right, then left
        weights = counts * side
        centre = (weights * np.arange(nx)).sum() / weights.sum() if weights.sum() else middle
        sagittal.append(round(float(centre)))
    return axial, sagittal


def _outline(ax, mask: np.ndarray, spacing: np.ndarray, view: str, index: int,
             colour: str) -> None:
    image, extent = orthogonal_slice(mask.astype(np.float32), spacing, view, index)
    if image.any() and not image.all():
        ax.contour(image, levels=[0.5], origin="lower", extent=extent, colors=colour,
                   linewidths=1.2)


def mask_figure(
    volume: Volume,
    body: np.ndarray,
    breast: np.ndarray,
    *,
    axial: Sequence[int] | None = None,
    sagittal: Sequence[int] | None = None,
    title: str | None = None,
    panel_size: float = 3.2,
) -> Figure:
    """A volume's slices with the outlines of its body and breast masks.

    Parameters
    ----------
    volume
        The image, ``(X, Y, Z)`` canonical RAS+ (shown with one grey window for all
        panels: the 1st and 99.5th percentile inside the body).
    body, breast
        ``(X, Y, Z)`` boolean masks on the volume's grid.
    axial, sagittal
        Slice indices (``z`` and ``x``); default :func:`default_slices`.
    title
        Figure title, or none; a line on the display convention is added below it.
    panel_size
        Height of a panel in inches (widths follow the slices' millimetre aspect).

    Returns
    -------
    matplotlib.figure.Figure
        One row: the axial panels, then the sagittal ones, with a legend.

    Raises
    ------
    InputError
        A mask not on the volume's grid.
    """
    array = np.asarray(volume.array)
    for name, mask in (("body", body), ("breast", breast)):
        if np.shape(mask) != array.shape:
            raise InputError(f"the {name} mask's shape {np.shape(mask)} is not the volume's "
                             f"{array.shape}")
    body = np.asarray(body, dtype=bool)
    breast = np.asarray(breast, dtype=bool)
    spacing = np.asarray(volume.spacing, dtype=float)
    default_axial, default_sagittal = default_slices(breast)
    axial = list(default_axial if axial is None else axial)
    sagittal = list(default_sagittal if sagittal is None else sagittal)
    panels = [("axial", k) for k in axial] + [("sagittal", x) for x in sagittal]
    window = tuple(float(v) for v in np.percentile(array[body] if body.any() else array,
                                                   (1.0, 99.5)))
    widths = []  # each panel's width / height in mm, so panels keep their true shape
    for view, _ in panels:
        across, up = (a for a in range(3) if a != NORMAL_AXIS[view])
        widths.append(array.shape[across] * spacing[across] / (array.shape[up] * spacing[up]))
    # A bare Figure (no pyplot): nothing is left open in pyplot's figure manager.
    figure = Figure(figsize=(panel_size * sum(widths) + 0.4, panel_size + 0.9),
                    layout="constrained")
    axes = figure.subplots(1, len(panels), width_ratios=widths, squeeze=False)[0]
    sides = ["patient's right", "patient's left"]
    for i, (ax, (view, index)) in enumerate(zip(axes, panels, strict=True)):
        label = f"axial {index}" if view == "axial" else f"sagittal {index}"
        if view == "sagittal" and sagittal == default_sagittal and i - len(axial) < 2:
            label += f" ({sides[i - len(axial)]})"
        draw_slice(ax, array, spacing, view=view, index=index, window=window, title=label,
                   letters=True)
        _outline(ax, body, spacing, view, index, COLOURS["body"])
        _outline(ax, breast, spacing, view, index, COLOURS["breast"])
    handles = [Line2D([], [], color=colour, label=name) for name, colour in COLOURS.items()]
    figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    convention = ("radiological view: patient's right on the left; axial anterior up, "
                  "sagittal anterior left")
    figure.suptitle(f"{title}\n{convention}" if title else convention, fontsize=10)
    return figure
