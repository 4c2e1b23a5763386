"""Image-only measures that compare the phantom with a real exam, and their table and figure.

Every measure takes an image and its image-derived masks (:func:`~breastlib.evaluate.
image_masks.body_mask`, :func:`~breastlib.evaluate.image_masks.breast_mask_from_image`),
never phantom labels, so it applies identically to a phantom image and to a real series:

- :func:`breast_interior`: the breast without its outer :data:`SKIN_MM` (skin, and air that
  the body mask takes into folds), where the tissue measures look;
- :func:`breast_percentiles`: breast intensities relative to the body's 99th percentile
  (:func:`reference_intensity`);
- :func:`two_class_split`: Otsu's split of the breast into a dark and a bright class (FGT is
  bright on fat-suppressed T1, fat is bright on T1 and T2): bright fraction, class medians;
- :func:`noise_sigma`: the noise sigma of the air around the body, from Rayleigh statistics,
  and :func:`difference_noise`: the voxel-to-voxel variation inside one tissue class;
- :func:`shading`: low-frequency variation of one tissue class across the breast (bias field,
  and on fat-suppressed images the spatially varying fat-suppression residue);
- :func:`breast_geometry`: volume, depth in front of the cleft line, width and height of each
  breast;
- :func:`radial_power_spectrum` and :func:`spectral_slope`: the breast's texture.

:func:`calibration_table` gathers them for several named images;
:func:`breastlib.booktools.calibration.calibration_figure` shows the images side by side at
one windowing with their histograms and spectra.

Arrays are canonical RAS+ ``(X, Y, Z)`` (anterior = high ``y``); axial slices are
``array[:, :, k]``; spacings are in mm. Compare images on grids of about the same voxel
size, processed alike (e.g. both through
:func:`~breastlib.booktools.real_exam.loading.downsample`): smoothing lowers the noise's
spread, the texture's high-frequency power and the contrast between small structures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from breastlib.volume import Volume

#: Breast voxels closer than this (mm) to the body's surface are skin and the partial-volume
#: rim of the body mask: the tissue measures leave them out (:func:`breast_interior`).
SKIN_MM = 6.0
#: Percentile of the body's intensities that every image is divided by (its bright tissue).
REFERENCE_PERCENTILE = 99.0
#: Median of a Rayleigh distribution of scale 1 (pure noise in a magnitude image):
#: ``sqrt(2 ln 2)``.
RAYLEIGH_MEDIAN = 1.1774100225154747
#: Median absolute deviation of a Rayleigh distribution of scale 1 (solved numerically from
#: its CDF ``1 - exp(-x^2 / 2)`` about :data:`RAYLEIGH_MEDIAN`).
RAYLEIGH_MAD = 0.4484530859199128
#: Air closer than this (mm) to the body is left out of the noise estimate: partial volume
#: and the blur of the skin edge.
AIR_MARGIN_MM = 10.0
#: Air closer than this (mm) to the image edge is left out: filter and resampling edges.
EDGE_MARGIN_MM = 6.0
#: Gaussian sigma (mm) of the smoothing that keeps only the shading (bias field) of a class.
SHADING_SIGMA_MM = 20.0
#: Where the share of the smoothing kernel's weight that falls on the class is below this
#: fraction of its median over the class, the smoothed value is not trusted (too few voxels
#: of the class nearby); relative, so that a sparse class keeps the same voxels as a dense one.
SHADING_MIN_SUPPORT = 0.5
#: Width (mm) of the cosine taper of the breast window of the power spectrum: the skin and
#: the mask's edge stay out of the texture.
TAPER_MM = 6.0
#: Axial slices with fewer breast pixels than this add nothing to the power spectrum.
MIN_SLICE_PIXELS = 50
#: Band (cycles/mm) over which the spectral slope is fitted.
SLOPE_BAND = (0.02, 0.15)
#: Default radial frequency bin edges (cycles/mm), common to every image.
FREQUENCY_EDGES = np.linspace(0.005, 0.185, 19)
#: Default histogram bin edges of breast intensity / reference.
HISTOGRAM_EDGES = np.linspace(0.0, 1.2, 61)

ImageWithMasks = tuple[Volume, np.ndarray, np.ndarray]


# -- regions ------------------------------------------------------------------------------------
def breast_interior(body: np.ndarray, breast: np.ndarray, spacing: Sequence[float],
                    skin_mm: float = SKIN_MM) -> np.ndarray:
    """The breast without its outer ``skin_mm``: the voxels at least that deep under the
    body's surface (skin, and the rim of air that a smooth body mask takes in).

    Parameters
    ----------
    body, breast
        ``(X, Y, Z)`` boolean masks.
    spacing
        ``(3,)`` voxel size (mm).
    skin_mm
        Depth (mm) under the surface below which the breast counts as interior.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean mask inside ``breast``.
    """
    depth = ndi.distance_transform_edt(np.asarray(body, bool), sampling=spacing)
    return np.asarray(breast, bool) & (depth > skin_mm)


# -- intensities -------------------------------------------------------------------------------
def reference_intensity(image: np.ndarray, body: np.ndarray) -> float:
    """The body's :data:`REFERENCE_PERCENTILE` th intensity percentile (image units).

    Parameters
    ----------
    image
        ``(X, Y, Z)`` intensities.
    body
        ``(X, Y, Z)`` boolean body mask.

    Returns
    -------
    float
        A robust "bright tissue" level that every image is divided by.
    """
    return float(np.percentile(np.asarray(image)[np.asarray(body, bool)], REFERENCE_PERCENTILE))


def breast_percentiles(image: np.ndarray, breast: np.ndarray, reference: float,
                       q: Sequence[float] = (5.0, 50.0, 95.0)) -> dict[str, float]:
    """Percentiles of the breast's intensities relative to ``reference``.

    Parameters
    ----------
    image
        ``(X, Y, Z)`` intensities.
    breast
        ``(X, Y, Z)`` boolean breast mask (not empty).
    reference
        Intensity the percentiles are divided by (e.g. :func:`reference_intensity`).
    q
        Percentiles, 0-100.

    Returns
    -------
    dict
        ``{"breast p5": ..., ...}``: dimensionless.
    """
    values = np.asarray(image)[np.asarray(breast, bool)]
    return {f"breast p{p:g}": float(v) / reference
            for p, v in zip(q, np.percentile(values, q), strict=True)}


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` on a linear intensity scale.

    Parameters
    ----------
    values
        Intensities, any shape (at least two distinct values).
    bins
        Histogram bins between the minimum and the maximum.

    Returns
    -------
    float
        The threshold maximising the between-class variance (same unit as ``values``).
    """
    counts, edges = np.histogram(np.ravel(values), bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)[:-1].astype(float)
    total = float(counts.sum())
    moment = np.cumsum(counts * centres)[:-1]
    mean_low = moment / np.maximum(weight, 1)
    mean_high = (moment[-1] + counts[-1] * centres[-1] - moment) / np.maximum(total - weight, 1)
    score = weight * (total - weight) * (mean_high - mean_low) ** 2
    # between well-separated classes the score is flat across the empty gap: take its middle
    best = np.flatnonzero(score >= score.max() * (1.0 - 1e-9))
    return float(edges[1 + int(best[len(best) // 2])])


@dataclass(frozen=True)
class TwoClass:
    """Otsu's two-class split of the breast.

    Attributes
    ----------
    threshold
        Intensity between the classes (image units).
    bright_fraction
        Share (0-1) of breast voxels in the bright class.
    dark_median, bright_median
        Class medians (image units).
    dark_p90
        90th percentile of the dark class (image units): its bright tail, e.g. fat that
        fat suppression missed.
    """

    threshold: float
    bright_fraction: float
    dark_median: float
    bright_median: float
    dark_p90: float

    @property
    def contrast(self) -> float:
        """Ratio of the bright to the dark class median (tissue contrast, >= 1)."""
        return self.bright_median / max(self.dark_median, 1e-12)


def two_class_split(image: np.ndarray, breast: np.ndarray) -> TwoClass:
    """Split the breast's intensities into a dark and a bright class (Otsu).

    Parameters
    ----------
    image
        ``(X, Y, Z)`` intensities.
    breast
        ``(X, Y, Z)`` boolean breast mask.

    Returns
    -------
    TwoClass
    """
    values = np.asarray(image, float)[np.asarray(breast, bool)]
    threshold = otsu_threshold(values)
    dark, bright = values[values < threshold], values[values >= threshold]
    return TwoClass(threshold=threshold, bright_fraction=bright.size / values.size,
                    dark_median=float(np.median(dark)), bright_median=float(np.median(bright)),
                    dark_p90=float(np.percentile(dark, 90)))


def breast_histogram(image: np.ndarray, breast: np.ndarray, reference: float,
                     edges: np.ndarray = HISTOGRAM_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """Density histogram of the breast's intensities relative to ``reference``.

    Returns
    -------
    centres : numpy.ndarray
        ``(B,)`` bin centres (intensity / reference).
    density : numpy.ndarray
        ``(B,)`` probability density (integrates to the share of values inside the edges).
    """
    values = np.asarray(image)[np.asarray(breast, bool)] / reference
    counts, _ = np.histogram(values, bins=edges)
    density = counts / (values.size * np.diff(edges))
    return (edges[:-1] + edges[1:]) / 2, density


# -- noise ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Noise:
    """Noise of the air around the body, as the sigma of the underlying complex Gaussian.

    Attributes
    ----------
    from_median
        ``median / sqrt(2 ln 2)``: robust to ghosts and unchanged by smoothing (a smoothed
        Rayleigh field keeps its mean, about its median).
    from_mad
        ``MAD / 0.4485``: the spread; below ``from_median`` where the image was smoothed
        or resampled (the ratio of the two is the noise's loss of spread).
    voxels
        Air voxels used.
    """

    from_median: float
    from_mad: float
    voxels: int


def air_mask(image: np.ndarray, body: np.ndarray, spacing: Sequence[float], *,
             margin_mm: float = AIR_MARGIN_MM, edge_mm: float = EDGE_MARGIN_MM) -> np.ndarray:
    """Air for the noise estimate: outside the body by ``margin_mm``, inside the image by
    ``edge_mm``, without exact zeros (blanked, not acquired).

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean mask.
    """
    spacing = np.asarray(spacing, float)
    far = ndi.distance_transform_edt(~np.asarray(body, bool), sampling=spacing) >= margin_mm
    inner = np.zeros(far.shape, bool)
    pad = np.ceil(edge_mm / spacing).astype(int)
    inner[tuple(slice(p, n - p) for p, n in zip(pad, far.shape, strict=True))] = True
    return far & inner & (np.asarray(image) != 0)


def noise_sigma(image: np.ndarray, air: np.ndarray) -> Noise:
    """Noise sigma of a magnitude image from its air (Rayleigh statistics).

    Parameters
    ----------
    image
        ``(X, Y, Z)`` magnitude intensities.
    air
        ``(X, Y, Z)`` boolean air mask (see :func:`air_mask`).

    Returns
    -------
    Noise
        In image units; NaN where there is no air.
    """
    values = np.asarray(image, float)[np.asarray(air, bool)]
    if values.size == 0:
        return Noise(float("nan"), float("nan"), 0)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return Noise(median / RAYLEIGH_MEDIAN, mad / RAYLEIGH_MAD, int(values.size))


def difference_noise(image: np.ndarray, region: np.ndarray) -> float:
    """Voxel-to-voxel noise inside a tissue region: the MAD-based sigma of the differences
    between left-right neighbours that both lie in ``region``, divided by ``sqrt(2)``.

    White noise of sigma ``s`` gives ``s``; texture and edges add to it, smoothing (a
    resampled image) takes from it, so it is the effective noise of the image as it is,
    an upper bound where the tissue has fine texture.

    Parameters
    ----------
    image
        ``(X, Y, Z)`` intensities.
    region
        ``(X, Y, Z)`` boolean mask (one tissue class).

    Returns
    -------
    float
        Sigma in image units; NaN with no neighbouring pair.
    """
    region = np.asarray(region, bool)
    pairs = region[1:] & region[:-1]
    if not pairs.any():
        return float("nan")
    image = np.asarray(image, float)
    difference = (image[1:] - image[:-1])[pairs]
    mad = np.median(np.abs(difference - np.median(difference)))
    return float(1.4826 * mad / np.sqrt(2.0))


# -- shading ----------------------------------------------------------------------------------
def smoothed_within(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float],
                    sigma_mm: float = SHADING_SIGMA_MM) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian average of ``image`` over ``mask`` only (normalised convolution).

    Returns
    -------
    smooth : numpy.ndarray
        ``(X, Y, Z)`` local mean of the masked voxels (0 where the kernel holds none).
    support : numpy.ndarray
        ``(X, Y, Z)`` share (0-1) of the kernel's weight on ``mask``.
    """
    sigma = sigma_mm / np.asarray(spacing, float)
    weight = np.asarray(mask, np.float64)
    support = ndi.gaussian_filter(weight, sigma, mode="constant")
    total = ndi.gaussian_filter(np.asarray(image, np.float64) * weight, sigma, mode="constant")
    return np.where(support > 0, total / np.maximum(support, 1e-12), 0.0), support


def shading(image: np.ndarray, region: np.ndarray, spacing: Sequence[float],
            sigma_mm: float = SHADING_SIGMA_MM) -> float:
    """Low-frequency variation of one tissue class: the ratio of the 90th to the 10th
    percentile of its smoothed intensity over its own voxels.

    Parameters
    ----------
    image
        ``(X, Y, Z)`` intensities.
    region
        ``(X, Y, Z)`` boolean mask of one tissue class in the breast (a homogeneous tissue
        shows the bias field).
    spacing
        ``(3,)`` voxel size (mm).
    sigma_mm
        Smoothing (Gaussian sigma, mm): only variations slower than this remain.

    Returns
    -------
    float
        ``p90 / p10`` over the voxels of ``region`` with enough of it nearby
        (:data:`SHADING_MIN_SUPPORT`); 1 = flat; NaN for an empty region.
    """
    region = np.asarray(region, bool)
    if not region.any():
        return float("nan")
    smooth, support = smoothed_within(image, region, spacing, sigma_mm)
    keep = region & (support >= SHADING_MIN_SUPPORT * np.median(support[region]))
    if not keep.any():
        return float("nan")
    low, high = np.percentile(smooth[keep], (10.0, 90.0))
    return float(high / low) if low > 0 else float("nan")


# -- size and shape ---------------------------------------------------------------------------
def split_breasts(breast: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The right and the left breast: the mask on either side of the body's mid-line.

    Returns
    -------
    right, left : numpy.ndarray
        ``(X, Y, Z)`` boolean masks (patient's right at low ``x`` in RAS+).
    """
    xs = np.flatnonzero(np.asarray(body, bool).any(axis=(1, 2)))
    middle = (xs.min() + xs.max()) / 2 if xs.size else breast.shape[0] / 2
    right = np.asarray(breast, bool).copy()
    right[int(np.ceil(middle)):] = False
    return right, np.asarray(breast, bool) & ~right


def breast_extent(breast: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Volume and extent of one breast.

    Parameters
    ----------
    breast
        ``(X, Y, Z)`` boolean mask of one breast (the mask starts at the cleft line, so
        its ``y`` extent is the depth in front of it).
    spacing
        ``(3,)`` voxel size (mm).

    Returns
    -------
    dict
        ``volume (ml)``, ``depth (mm)`` (largest anterior-posterior extent of an axial
        slice), ``width (mm)`` (largest left-right extent of an axial slice) and
        ``height (mm)`` (superior-inferior extent); NaN for an empty mask.
    """
    spacing = np.asarray(spacing, float)
    mask = np.asarray(breast, bool)
    if not mask.any():
        return dict.fromkeys(("volume (ml)", "depth (mm)", "width (mm)", "height (mm)"),
                             float("nan"))
    depth = width = 0
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        xs, ys = np.nonzero(mask[:, :, k])
        depth, width = max(depth, ys.max() - ys.min() + 1), max(width, xs.max() - xs.min() + 1)
    zs = np.flatnonzero(mask.any(axis=(0, 1)))
    return {"volume (ml)": float(mask.sum() * np.prod(spacing) / 1000.0),
            "depth (mm)": float(depth * spacing[1]), "width (mm)": float(width * spacing[0]),
            "height (mm)": float((zs.max() - zs.min() + 1) * spacing[2])}


def breast_geometry(breast: np.ndarray, body: np.ndarray,
                    spacing: Sequence[float]) -> dict[str, float]:
    """:func:`breast_extent` of each breast (:func:`split_breasts`), averaged over the two.

    Returns
    -------
    dict
        The keys of :func:`breast_extent`, each the mean of the right and the left breast.
    """
    sides = [breast_extent(side, spacing) for side in split_breasts(breast, body)]
    return {key: float(np.nanmean([side[key] for side in sides])) for key in sides[0]}


# -- texture ----------------------------------------------------------------------------------
def tapered_window(mask: np.ndarray, spacing: Sequence[float],
                   taper_mm: float = TAPER_MM) -> np.ndarray:
    """A 2-D window that rises from 0 at the mask's edge to 1 at ``taper_mm`` inside it
    (a half cosine of the distance to the edge).

    Parameters
    ----------
    mask
        ``(X, Y)`` boolean mask of one slice.
    spacing
        ``(2,)`` pixel size (mm).

    Returns
    -------
    numpy.ndarray
        ``(X, Y)`` float weights in ``[0, 1]``.
    """
    inside = ndi.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1]
    ramp = np.clip(inside / taper_mm, 0.0, 1.0)
    return np.where(mask, 0.5 - 0.5 * np.cos(np.pi * ramp), 0.0)


def slice_power(plane: np.ndarray, window: np.ndarray, spacing: Sequence[float],
                edges: np.ndarray) -> tuple[np.ndarray, float]:
    """Radially binned power spectrum of one windowed, mean-subtracted axial slice.

    Parameters
    ----------
    plane
        ``(X, Y)`` intensities.
    window
        ``(X, Y)`` weights (:func:`tapered_window`).
    spacing
        ``(2,)`` pixel size (mm).
    edges
        ``(B + 1,)`` radial frequency bin edges (cycles/mm).

    Returns
    -------
    power : numpy.ndarray
        ``(B,)`` mean power per bin, normalised by the window's energy (intensity^2 mm^2);
        NaN in empty bins.
    energy : float
        The window's energy ``sum(w^2)`` (the slice's weight in an average).
    """
    spacing = np.asarray(spacing, float)
    mean = float(np.sum(plane * window) / np.sum(window))
    # zero-padding to twice the size keeps the window's circular wrap-around out
    shape = tuple(2 * n for n in plane.shape)
    spectrum = np.abs(np.fft.fft2((plane - mean) * window, s=shape)) ** 2
    energy = float(np.sum(window ** 2))
    fx, fy = (np.fft.fftfreq(n, d) for n, d in zip(shape, spacing, strict=True))
    radius = np.hypot(fx[:, None], fy[None, :])
    index = np.digitize(radius.ravel(), edges) - 1
    valid = (index >= 0) & (index < len(edges) - 1)
    sums = np.bincount(index[valid], spectrum.ravel()[valid], minlength=len(edges) - 1)
    counts = np.bincount(index[valid], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = sums / counts * np.prod(spacing) / energy
    return np.where(counts > 0, power, np.nan), energy


def radial_power_spectrum(image: np.ndarray, breast: np.ndarray, spacing: Sequence[float],
                          edges: np.ndarray = FREQUENCY_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the breast's texture over its axial slices.

    Each axial slice with at least :data:`MIN_SLICE_PIXELS` breast pixels is windowed by
    :func:`tapered_window`, made mean-free and transformed (:func:`slice_power`); the
    slices' spectra are averaged with the window energies as weights.

    Parameters
    ----------
    image
        ``(X, Y, Z)`` intensities (divide by a reference first to compare images).
    breast
        ``(X, Y, Z)`` boolean breast mask.
    spacing
        ``(3,)`` voxel size (mm); only the in-plane two are used.
    edges
        ``(B + 1,)`` radial frequency bin edges (cycles/mm); bins above the image's Nyquist
        frequency come back NaN.

    Returns
    -------
    frequency : numpy.ndarray
        ``(B,)`` bin centres (cycles/mm).
    power : numpy.ndarray
        ``(B,)`` power spectral density (intensity^2 mm^2); all NaN without a usable slice.
    """
    spacing = np.asarray(spacing, float)[:2]
    edges = np.asarray(edges, float)
    nyquist = float(np.min(0.5 / spacing))
    total, weight = np.zeros(len(edges) - 1), 0.0
    mask = np.asarray(breast, bool)
    for k in np.flatnonzero(mask.sum(axis=(0, 1)) >= MIN_SLICE_PIXELS):
        window = tapered_window(mask[:, :, k], spacing)
        if not window.any():
            continue
        power, energy = slice_power(np.asarray(image[:, :, k], float), window, spacing, edges)
        total, weight = total + np.nan_to_num(power) * energy, weight + energy
    frequency = (edges[:-1] + edges[1:]) / 2
    if weight == 0:
        return frequency, np.full(frequency.shape, np.nan)
    power = total / weight
    return frequency, np.where(edges[1:] <= nyquist, power, np.nan)


def spectral_slope(frequency: np.ndarray, power: np.ndarray,
                   band: tuple[float, float] = SLOPE_BAND) -> float:
    """Slope of ``log power`` against ``log frequency`` over ``band`` (least squares).

    Returns
    -------
    float
        The exponent ``-beta`` of ``P ~ f^-beta``; NaN with fewer than 3 usable bins.
    """
    frequency, power = np.asarray(frequency, float), np.asarray(power, float)
    use = (frequency >= band[0]) & (frequency <= band[1]) & np.isfinite(power) & (power > 0)
    if use.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log10(frequency[use]), np.log10(power[use]), 1)[0])


# -- table and figure ---------------------------------------------------------------------------
def intensity_measures(image: np.ndarray, body: np.ndarray, breast: np.ndarray,
                       interior: np.ndarray) -> dict[str, float]:
    """Breast intensities and tissue classes relative to the body's 99th percentile.

    ``image``, ``body``, ``breast`` and ``interior`` (:func:`breast_interior`) are
    ``(X, Y, Z)``; the percentiles and classes come from ``interior``, the skin rim is
    ``breast`` without it. Returns measure name -> dimensionless value.
    """
    reference = reference_intensity(image, body)
    split = two_class_split(image, interior)
    rim = np.asarray(breast, bool) & ~interior
    rim_median = float(np.median(image[rim])) if rim.any() else float("nan")
    return {
        "reference: body p99 (image units)": reference,
        **breast_percentiles(image, interior, reference),
        "bright-class fraction": split.bright_fraction,
        "dark-class median / reference": split.dark_median / reference,
        "bright-class median / reference": split.bright_median / reference,
        "class contrast (bright / dark median)": split.contrast,
        "dark-class p90 / bright median": split.dark_p90 / split.bright_median,
        f"skin rim (outer {SKIN_MM:g} mm) median / reference": rim_median / reference,
    }


def noise_measures(image: np.ndarray, body: np.ndarray, interior: np.ndarray,
                   spacing: Sequence[float]) -> dict[str, float]:
    """The air's noise sigma (:func:`noise_sigma`) relative to the body's median and to its
    99th percentile, the ratio of its spread to its location estimate, and the
    voxel-to-voxel noise of the breast interior's dark class (:func:`difference_noise`)
    relative to the 99th percentile."""
    noise = noise_sigma(image, air_mask(image, body, spacing))
    inside = np.asarray(image)[np.asarray(body, bool)]
    reference = reference_intensity(image, body)
    dark = interior & (image < two_class_split(image, interior).threshold)
    return {
        "noise sigma / body median": noise.from_median / float(np.median(inside)),
        "noise sigma / reference": noise.from_median / reference,
        "noise spread / location (1 = white)": noise.from_mad / noise.from_median,
        "dark-class voxel-to-voxel sigma / reference": difference_noise(image, dark) / reference,
    }


def shading_measures(image: np.ndarray, interior: np.ndarray,
                     spacing: Sequence[float]) -> dict[str, float]:
    """:func:`shading` of the bright and of the dark class of the breast interior."""
    threshold = two_class_split(image, interior).threshold
    bright = interior & (image >= threshold)
    return {
        f"shading bright class (p90/p10, {SHADING_SIGMA_MM:g} mm)":
            shading(image, bright, spacing),
        f"shading dark class (p90/p10, {SHADING_SIGMA_MM:g} mm)":
            shading(image, interior & ~bright, spacing),
    }


def texture_measures(image: np.ndarray, interior: np.ndarray, spacing: Sequence[float],
                     reference: float) -> dict[str, float]:
    """Spectral slope and power at 0.05 cycles/mm of ``image / reference`` in the breast
    interior (:func:`radial_power_spectrum`)."""
    frequency, power = radial_power_spectrum(image / reference, interior, spacing)
    usable = np.isfinite(power)
    at = float(np.interp(0.05, frequency[usable], power[usable])) if usable.any() else np.nan
    return {f"spectral slope {SLOPE_BAND[0]:g}-{SLOPE_BAND[1]:g} cycles/mm":
            spectral_slope(frequency, power),
            "texture power at 0.05 cycles/mm (mm^2)": at}


def calibration_measures(volume: Volume, body: np.ndarray, breast: np.ndarray
                         ) -> dict[str, float]:
    """Every calibration measure of one image with its masks.

    Parameters
    ----------
    volume
        The image, ``(X, Y, Z)`` canonical RAS+.
    body, breast
        ``(X, Y, Z)`` boolean masks on its grid (from the image itself).

    Returns
    -------
    dict
        Measure name (with its unit) -> value: :func:`intensity_measures`,
        :func:`noise_measures`, :func:`shading_measures`, :func:`breast_geometry` and
        :func:`texture_measures`.
    """
    image = np.asarray(volume.array, float)
    body, breast = np.asarray(body, bool), np.asarray(breast, bool)
    interior = breast_interior(body, breast, volume.spacing)
    return {
        **intensity_measures(image, body, breast, interior),
        **noise_measures(image, body, interior, volume.spacing),
        **shading_measures(image, interior, volume.spacing),
        **{f"breast {k}": v for k, v in breast_geometry(breast, body, volume.spacing).items()},
        **texture_measures(image, interior, volume.spacing, reference_intensity(image, body)),
    }


def calibration_table(images: Mapping[str, ImageWithMasks]) -> pd.DataFrame:
    """The calibration measures of several named images, side by side.

    Parameters
    ----------
    images
        Name (e.g. ``"real DCE pre"``, ``"phantom t1fs (off)"``) -> ``(volume, body,
        breast)``, the masks ``(X, Y, Z)`` boolean on the volume's grid.

    Returns
    -------
    pandas.DataFrame
        One row per measure (:func:`calibration_measures`), one column per image.
    """
    return pd.DataFrame({name: calibration_measures(*item) for name, item in images.items()})
