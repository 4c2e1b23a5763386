"""The real-exam chapter's figures: axial slices of the exam, MIND's registrations, the
known deformations, the phantom-versus-real ranking and the encoders' features.

Slices are shown in the radiological view (patient's right on the left, anterior up), with
the helpers of :mod:`breastlib.viz.panels`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from breastlib.booktools.real_exam.known import KnownDeformation
from breastlib.booktools.real_exam.loading import RealExam
from breastlib.booktools.real_exam.measures import DceRegions
from breastlib.booktools.real_exam.registration import Registration
from breastlib.displacement import Displacement
from breastlib.intensity import normalise_intensity
from breastlib.viz.panels import draw_slice
from breastlib.viz.qc import checkerboard


def breast_slice(breast: np.ndarray) -> int:
    """The axial slice (``z`` index) halfway through the breast mask's extent."""
    zs = np.flatnonzero(np.asarray(breast).any(axis=(0, 1)))
    return round(float(zs.min() + zs.max()) / 2) if zs.size else breast.shape[2] // 2


def _window(array: np.ndarray, mask: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    values = np.asarray(array)[mask] if np.any(mask) else np.asarray(array).ravel()
    if symmetric:
        high = float(np.percentile(np.abs(values), 99.5))
        return -high, high
    low, high = np.percentile(values, (1.0, 99.5))
    return float(low), float(high)


def _panels(rows: list[list[tuple[str, np.ndarray, tuple[float, float], str]]],
            spacing: np.ndarray, index: int, title: str, panel_size: float = 2.9,
            units: Mapping[str, str] | None = None) -> Figure:
    """Axial slices ``index`` of several ``(X, Y, Z)`` arrays, one titled panel each, with
    the orientation letters; a panel named in ``units`` (title -> unit) gets a colour bar
    labelled with it."""
    shape = rows[0][0][1].shape
    aspect = shape[0] * spacing[0] / (shape[1] * spacing[1])
    ncols = max(len(row) for row in rows)
    figure = Figure(figsize=(panel_size * aspect * ncols + 0.3, panel_size * len(rows) + 0.7),
                    layout="constrained")
    axes = figure.subplots(len(rows), ncols, squeeze=False)
    for r, row in enumerate(rows):
        for c, (name, array, window, colormap) in enumerate(row):
            shown = draw_slice(axes[r, c], array, spacing, view="axial", index=index,
                               window=window, colormap=colormap, title=name, letters=True)
            if units and name in units:
                bar = figure.colorbar(shown, ax=axes[r, c], shrink=0.8, pad=0.02)
                bar.set_label(units[name], fontsize=8)
                bar.ax.tick_params(labelsize=7)
        for c in range(len(row), ncols):
            axes[r, c].set_axis_off()
    figure.suptitle(f"{title}, axial slice {index + 1}\nradiological view: patient's right "
                    "on the left, anterior up", fontsize=10)
    return figure


def subtraction_figure(exam: RealExam, registration: Registration) -> Figure:
    """Pre, post and the subtraction ``post - pre`` before and after motion correction, on
    the axial slice with most breast (one window for both subtractions)."""
    pre = exam.pre.array
    before = registration.moving_before.array - pre
    after = registration.moving_after.array - pre
    grey = _window(pre, exam.body)
    sub = _window(before, exam.breast, symmetric=True)
    return _panels([[("pre-contrast (fixed)", pre, grey, "gray"),
                     ("post-contrast phase 5 (moving)", registration.moving_before.array, grey,
                      "gray"),
                     ("post - pre, before", before, sub, "gray"),
                     ("post - pre, after MIND", after, sub, "gray")]],
                   exam.pre.spacing, breast_slice(exam.breast), "DCE motion correction",
                   units=dict.fromkeys(("post - pre, before", "post - pre, after MIND"),
                                       "scanner units"))


def t2_figure(exam: RealExam, registration: Registration) -> Figure:
    """T2 on the DCE grid and checkerboards of the normalised pre-contrast and T2 images,
    before and after registration."""
    pre = normalise_intensity(exam.pre.array)
    before = normalise_intensity(registration.moving_before.array)
    after = normalise_intensity(registration.moving_after.array)
    tile = max(round(20.0 / float(exam.pre.spacing[0])), 2)
    unit = (0.0, 1.0)
    return _panels([[("pre-contrast (fixed)", pre, unit, "gray"),
                     ("T2 in world coordinates", before, unit, "gray"),
                     ("checkerboard, before", checkerboard(pre, before, tile=tile), unit, "gray"),
                     ("checkerboard, after MIND", checkerboard(pre, after, tile=tile), unit,
                      "gray")]],
                   exam.pre.spacing, breast_slice(exam.breast), "T2 -> DCE pre-contrast")


def known_deformation_figure(exam: RealExam, known: KnownDeformation) -> Figure:
    """The deformed image, the true displacement's size and the error after registration
    (one millimetre scale for ``|u_true|`` and ``|u - u_true|``)."""
    method = known.table.index[-1]
    grey = _window(exam.pre.array, exam.body)
    true = known.true.magnitude_mm()
    error = np.linalg.norm(known.estimated.millimetres() - known.true.millimetres(), axis=0)
    scale = (0.0, float(np.percentile(true[exam.breast], 99)))
    inside = np.where(exam.breast, 1.0, np.nan)
    names = ("|u_true| in the breast", f"|u - u_true| after {method}")
    return _panels([[("pre-contrast (fixed)", exam.pre.array, grey, "gray"),
                     ("deformed (moving)", known.moving.array, grey, "gray"),
                     (names[0], true * inside, scale, "magma"),
                     (names[1], error * inside, scale, "magma")]],
                   exam.pre.spacing, breast_slice(exam.breast),
                   f"the phantom's '{known.regime}' regime on the exam",
                   units=dict.fromkeys(names, "mm"))


def regions_figure(exam: RealExam, regions: DceRegions, phase: str = "post5") -> Figure:
    """Where the DCE measures look: the pre-contrast image, the subtraction before
    registration, and the skin band, edge band and enhancing region (label values 1, 2, 3)
    inside the breast mask, on the axial slice with most enhancing voxels."""
    counts = regions.enhancing.sum(axis=(0, 1))
    index = int(np.argmax(counts)) if counts.any() else breast_slice(exam.breast)
    pre = exam.pre.array
    subtraction = Displacement.identity(exam.pre.grid).warp(exam.dce[phase], device="cpu").array
    subtraction = subtraction - pre
    labels = np.zeros(pre.shape, np.float32)
    labels[regions.skin] = 1.0
    labels[regions.edges] = 2.0
    labels[regions.enhancing] = 3.0
    labels[~exam.breast] = np.nan
    return _panels([[("pre-contrast", pre, _window(pre, exam.body), "gray"),
                     (f"{phase.replace('post', 'phase ')} - pre, before",
                      subtraction, _window(subtraction, exam.breast, symmetric=True), "gray"),
                     ("1 skin, 2 edges, 3 enhancing", labels, (0.0, 3.0), "viridis")]],
                   exam.pre.spacing, index, "where the DCE measures look")


def ranking_figure(tables: Mapping[str, pd.DataFrame], panel_size: float = 3.6) -> Figure:
    """Each method's dense error on the real anatomy against the phantom's, one panel per
    regime.

    Parameters
    ----------
    tables
        Panel title -> :func:`~breastlib.booktools.real_exam.known.ranking_table`.

    Returns
    -------
    matplotlib.figure.Figure
        One scatter per table: a labelled point per method, the diagonal of equal errors,
        both axes in mm from 0.
    """
    figure = Figure(figsize=(panel_size * len(tables) + 0.4, panel_size + 0.4),
                    layout="constrained")
    axes = figure.subplots(1, len(tables), squeeze=False)[0]
    for ax, (title, table) in zip(axes, tables.items(), strict=True):
        x, y = table["phantom (mm)"], table["real anatomy (mm)"]
        top = 1.08 * float(max(x.max(), y.max(), 1.0))
        ax.plot([0, top], [0, top], color="0.75", linewidth=1, zorder=0)
        ax.scatter(x, y, s=22, color="tab:blue")
        label_y = -np.inf
        for method in y.sort_values().index:  # labels at least 4.5 % of the axis apart
            label_y = max(float(y[method]), label_y + 0.045 * top)
            ax.annotate(method, (x[method], y[method]), xytext=(x[method] + 0.02 * top,
                                                                label_y), fontsize=7,
                        va="center", arrowprops={"arrowstyle": "-", "color": "0.6",
                                                 "linewidth": 0.5})
        ax.set(xlim=(0, top), ylim=(0, top), aspect="equal", title=title,
               xlabel="phantom: mean dense error (mm)",
               ylabel="real anatomy: mean dense error (mm)")
        ax.title.set_fontsize(9)
    return figure


def feature_figure(rows: Mapping[str, Mapping[str, np.ndarray]],
                   panel_size: float = 2.4) -> Figure:
    """Rows of display-ready slices (:func:`breastlib.booktools.chapters.feature_images`),
    one row per image, one titled panel per method, the row's name on its left.

    Parameters
    ----------
    rows
        Row name -> (panel title -> ``(H, W)`` grey or ``(H, W, 3)`` RGB slice in the
        orientation of :func:`breastlib.viz.slices.orthogonal_slice`); every row has the
        same number of panels.
    """
    ncols = max(len(images) for images in rows.values())
    figure = Figure(figsize=(panel_size * ncols + 0.5, panel_size * len(rows) + 0.3),
                    layout="constrained")
    axes = figure.subplots(len(rows), ncols, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c, (title, image) in enumerate(images.items()):
            ax = axes[r, c]
            ax.imshow(image, origin="lower", cmap="gray" if image.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
        for c in range(len(images), ncols):
            axes[r, c].set_axis_off()
    return figure
