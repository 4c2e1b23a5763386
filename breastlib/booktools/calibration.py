"""The cohort chapter's calibration of the phantom against the real exam: the same image
measures (:mod:`breastlib.phantom.calibration`) on the exam and on phantom images of the
same contrasts, processed alike, side by side, with what matches said in words.

The phantom's images are the moving image of a ``sequence`` pair with no motion
(``motion="static"``), drawn as fat-suppressed T1 (the exam's DCE pre-contrast contrast)
and as T2, with the clinical effects off and on, and downsampled to the exam's working
voxels exactly as the exam is (:func:`~breastlib.booktools.real_exam.loading.downsample`).
Masks come from each image alone (:mod:`breastlib.evaluate.image_masks`), for the phantom
too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from breastlib.booktools.real_exam.loading import RealExam, downsample
from breastlib.evaluate.image_masks import body_mask, breast_mask_from_image
from breastlib.phantom.calibration import (
    SKIN_MM,
    ImageWithMasks,
    breast_histogram,
    breast_interior,
    radial_power_spectrum,
    reference_intensity,
)
from breastlib.viz.panels import draw_slice
from breastlib.volume import Volume

#: The exam's T2 body mask fills the air folds beside the breasts' bases, putting
#: near-zero voxels into its breast mask; breast voxels below this fraction of the body's
#: 99th percentile are left out of the T2 measures (real and phantom alike).
T2_FLOOR = 0.15
#: Phantom contrast drawn for each real series, and the real image's name.
CONTRASTS = {"t1fs": "real DCE pre", "t2": "real T2"}
#: A phantom measure within this factor of the exam's counts as a match.
MATCH_FACTOR = 1.5


def _with_masks(volume: Volume, floor: float = 0.0) -> ImageWithMasks:
    body = body_mask(volume)
    breast = breast_mask_from_image(volume, body)
    if floor > 0:
        breast &= np.asarray(volume.array) > floor * reference_intensity(volume.array, body)
    return volume, body, breast


def calibration_images(exam: RealExam, *, seed: int = 0, size: str = "small"
                       ) -> dict[str, ImageWithMasks]:
    """The exam's DCE pre-contrast (uncropped) and T2 images and the phantom's t1fs and t2
    images with the clinical effects off and on, each with its image-derived masks.

    Returns
    -------
    dict
        Name -> ``(volume, body, breast)``: ``real DCE pre``, ``real T2``, ``phantom t1fs
        (off)``, ``phantom t1fs (clinical)``, ``phantom t2 (off)``, ``phantom t2
        (clinical)``.
    """
    from breastlib.phantom import make_pair
    from breastlib.phantom.realism import Realism

    spacing = float(np.min(exam.pre.spacing))
    pre = exam.pre_whole if exam.pre_whole is not None else exam.pre
    images = {"real DCE pre": _with_masks(pre), "real T2": _with_masks(exam.t2, T2_FLOOR)}
    for contrast in CONTRASTS:
        for preset in ("off", "clinical"):
            pair = make_pair("sequence", size, seed, moving_sequence=contrast, motion="static",
                             realism=Realism.preset(preset))
            floor = T2_FLOOR if contrast == "t2" else 0.0
            images[f"phantom {contrast} ({preset})"] = _with_masks(
                downsample(pair.moving, spacing), floor)
    return images


def figure_rows() -> list[list[str]]:
    """The rows of :func:`calibration_figure`: each real
    series beside the phantom's same contrast, off and clinical."""
    return [[real, f"phantom {contrast} (off)", f"phantom {contrast} (clinical)"]
            for contrast, real in CONTRASTS.items()]


def match_words(table: pd.DataFrame, factor: float = MATCH_FACTOR) -> str:
    """Which measures of the phantom (clinical effects on) lie within ``factor`` of the
    exam's, per contrast, as Markdown computed from ``table``
    (:func:`~breastlib.phantom.calibration.calibration_table`).

    A measure matches when the ratio of the two values lies in ``[1 / factor, factor]``
    (both non-zero, of one sign); shading ratios are compared by their excess over 1.
    Measures in image units (the reference intensity) are not compared.
    """
    lines = []
    for contrast, real in CONTRASTS.items():
        phantom = table[f"phantom {contrast} (clinical)"]
        matches, misses = [], []
        for measure, value in table[real].items():
            if "image units" in str(measure):
                continue
            a, b = float(value), float(phantom[measure])
            shift = 1.0 if "shading" in str(measure) else 0.0
            ok = (np.isfinite(a) and np.isfinite(b) and (a - shift) * (b - shift) > 0
                  and 1 / factor <= (b - shift) / (a - shift) <= factor)
            if ok:
                matches.append(str(measure))
            else:
                misses.append(f"{measure} ({b:.3g} against {a:.3g})")
        lines.append(f"- **{real} against the phantom's {contrast}** (clinical effects on): "
                     f"{len(matches)} of {len(matches) + len(misses)} measures within a "
                     f"factor {factor:g}. Outside it: {'; '.join(misses) or 'none'}.")
    return "\n".join(lines)


def show_calibration(exam: RealExam | None, images: Mapping[str, ImageWithMasks] | None = None
                     ) -> pd.DataFrame | None:
    """Display the calibration table, figure and the matches in words (nothing without
    the exam); returns the table."""
    if exam is None:
        return None
    from IPython.display import Markdown, display

    from breastlib.phantom.calibration import calibration_table

    images = images or calibration_images(exam)
    table = calibration_table(images)
    display(table.round(3), calibration_figure(images, figure_rows()),
            Markdown(match_words(table)))
    return table


def middle_breast_slice(breast: np.ndarray) -> int:
    """The axial slice (``z`` index) with the most breast voxels."""
    return int(np.argmax(np.asarray(breast, bool).sum(axis=(0, 1))))


def _draw_row(figure: Figure, axes: np.ndarray, images: Mapping[str, ImageWithMasks],
              names: Sequence[str]) -> None:
    """One row of :func:`calibration_figure`: the slices, the histograms, the spectra."""
    hist_ax, spec_ax = axes[-2], axes[-1]
    for c, name in enumerate(names):
        volume, body, breast = images[name]
        image = np.asarray(volume.array, float)
        reference = reference_intensity(image, body)
        shown = draw_slice(axes[c], image / reference, volume.spacing, view="axial",
                           index=middle_breast_slice(breast), window=(0.0, 1.0), title=name,
                           letters=True)
        interior = breast_interior(body, breast, volume.spacing)
        centres, density = breast_histogram(image, interior, reference)
        hist_ax.plot(centres, density, label=name)
        frequency, power = radial_power_spectrum(image / reference, interior, volume.spacing)
        spec_ax.loglog(frequency, power, marker=".", label=name)
    bar = figure.colorbar(shown, ax=axes[len(names) - 1], shrink=0.8, pad=0.02)
    bar.set_label("intensity / body p99", fontsize=8)
    hist_ax.set(xlabel="breast intensity / body p99", ylabel="density",
                title=f"breast histogram (deeper than {SKIN_MM:g} mm)")
    spec_ax.set(xlabel="spatial frequency (cycles/mm)",
                ylabel="power (intensity$^2$ mm$^2$)", title="breast power spectrum")
    for ax in (hist_ax, spec_ax):
        ax.legend(fontsize=7)


def calibration_figure(images: Mapping[str, ImageWithMasks],
                       rows: Sequence[Sequence[str]], panel_size: float = 2.8) -> Figure:
    """Matching contrasts side by side at one windowing, with their histograms and spectra.

    Each row shows the axial slice with most breast of each named image, divided by its
    body's 99th percentile and windowed 0-1, then the breast histograms and the radial
    power spectra (log-log) of those images overlaid.

    Parameters
    ----------
    images
        Name -> ``(volume, body, breast)`` as for
        :func:`~breastlib.phantom.calibration.calibration_table`.
    rows
        Names of ``images`` per row, e.g. ``[["real DCE pre", "phantom t1fs (off)"],
        ["real T2", "phantom t2 (off)"]]``.
    panel_size
        Height (inches) of a panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ncols = max(len(row) for row in rows) + 2
    figure = Figure(figsize=(panel_size * 1.25 * ncols, panel_size * len(rows) + 0.6),
                    layout="constrained")
    axes = figure.subplots(len(rows), ncols, squeeze=False)
    for r, names in enumerate(rows):
        _draw_row(figure, axes[r], images, names)
        for c in range(len(names), ncols - 2):
            axes[r, c].set_axis_off()
    figure.suptitle("Phantom against the real exam: intensity / body p99, window 0-1 "
                    "(radiological view: patient's right on the left, anterior up)",
                    fontsize=10)
    return figure
