"""What the images alone say about a registration of the exam: similarity, the subtraction
artefact at the skin and along edges, folding and the Jacobian in the enhancing region.

All arrays are ``(X, Y, Z)`` on the fixed (pre-contrast) working grid; displacements are
fixed -> moving pull-back fields (:class:`~breastlib.displacement.Displacement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

from breastlib.displacement import Displacement
from breastlib.encoders.mind import mind_ssc
from breastlib.evaluate.metrics import jacobian_stats
from breastlib.intensity import normalise_intensity
from breastlib.register.guard import GUARD_MIND
from breastlib.volume import Volume

#: Depth (mm) of the skin band: body voxels at most this far inside the body's outline.
SKIN_BAND_MM = 6.0
#: Percentile of the pre-contrast gradient magnitude inside the breast above which a voxel
#: lies on a strong edge (the edge band).
EDGE_PERCENTILE = 90.0
#: Smoothing (voxels) of the gradient magnitude that finds the edges.
EDGE_SIGMA_VOXELS = 1.0
#: A voxel enhances when ``post - pre`` exceeds the median of the breast by this many robust
#: standard deviations (1.4826 x the median absolute deviation).
ENHANCEMENT_MADS = 6.0
#: Jacobian determinants below this (or above its inverse) count as a change of volume.
JACOBIAN_LOW = 0.9


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Normalised cross-correlation of two ``(X, Y, Z)`` arrays inside a boolean mask."""
    x = np.asarray(a, np.float64)[mask]
    y = np.asarray(b, np.float64)[mask]
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-12))


def mind_ssd(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared difference of the MIND-SSC descriptors of two ``(X, Y, Z)`` arrays
    inside a mask (the registration guard's descriptor settings); 0 is a perfect match and
    it does not depend on the two images' contrast."""
    features = [mind_ssc(torch.from_numpy(normalise_intensity(x).astype(np.float32))[None, None],
                         **GUARD_MIND)[0] for x in (a, b)]
    ssd = ((features[0] - features[1]) ** 2).mean(dim=0).numpy()
    return float(ssd[np.asarray(mask, bool)].mean())


def folding_pct(displacement: Displacement, mask: np.ndarray) -> float:
    """Percentage of ``mask`` where the field's Jacobian determinant is not positive."""
    return jacobian_stats(displacement.jacobian_determinant(), mask)["jac_nonpos_pct"]



def skin_band(body: np.ndarray, breast: np.ndarray, spacing: Sequence[float],
              width_mm: float = SKIN_BAND_MM) -> np.ndarray:
    """The breast voxels at most ``width_mm`` inside the body's outline (skin and subcutis).

    Parameters
    ----------
    body, breast
        ``(X, Y, Z)`` boolean masks (body against air; breast inside the body).
    spacing
        ``(3,)`` voxel size in mm.
    width_mm
        Depth of the band in mm, measured from voxel centre to the nearest voxel outside
        the body (a voxel on the outline is one voxel deep); the array's own edges do not
        count as outline.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean band.
    """
    body = np.asarray(body, bool)
    depth = ndi.distance_transform_edt(body, sampling=np.asarray(spacing, float))
    return np.asarray(breast, bool) & body & (depth <= width_mm + 1e-6)


def enhancing_region(pre: np.ndarray, post: np.ndarray, breast: np.ndarray, *,
                     mads: float = ENHANCEMENT_MADS,
                     exclude: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Where the contrast agent raised the signal, from the two images alone.

    The subtraction ``post - pre`` (before any registration) is thresholded inside the
    breast at its median plus ``mads`` robust standard deviations (``1.4826 * MAD``), a
    threshold that most of the non-enhancing breast (fat, noise) stays below.

    Parameters
    ----------
    pre, post
        ``(X, Y, Z)`` pre- and post-contrast intensities on one grid (scanner units).
    breast
        ``(X, Y, Z)`` boolean breast mask.
    mads
        Threshold in robust standard deviations above the median.
    exclude
        ``(X, Y, Z)`` boolean voxels never counted (the skin band, whose bright rim in
        the subtraction is mostly misregistration).

    Returns
    -------
    region : numpy.ndarray
        ``(X, Y, Z)`` boolean enhancing region.
    threshold : float
        The threshold on ``post - pre`` (scanner units).
    """
    breast = np.asarray(breast, bool)
    difference = np.asarray(post, np.float64) - np.asarray(pre, np.float64)
    values = difference[breast]
    if values.size == 0:
        return np.zeros(breast.shape, bool), float("nan")
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    threshold = median + mads * max(spread, 1e-12)
    region = breast & (difference > threshold)
    if exclude is not None:
        region &= ~np.asarray(exclude, bool)
    return region, threshold


def edge_band(pre: np.ndarray, inside: np.ndarray, *, percentile: float = EDGE_PERCENTILE,
              sigma_voxels: float = EDGE_SIGMA_VOXELS,
              exclude: np.ndarray | None = None) -> np.ndarray:
    """The voxels on strong edges of the pre-contrast image (fat against gland, vessels).

    Parameters
    ----------
    pre
        ``(X, Y, Z)`` pre-contrast intensities.
    inside
        ``(X, Y, Z)`` boolean region searched (the breast without the skin band).
    percentile
        The Gaussian gradient magnitude (sigma ``sigma_voxels``, in intensity per voxel)
        must reach this percentile of its values inside ``inside``.
    sigma_voxels
        Smoothing of the gradient, in voxels.
    exclude
        ``(X, Y, Z)`` boolean voxels never counted (the enhancing region, whose change is
        real and no misregistration).

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean band.
    """
    inside = np.asarray(inside, bool)
    if not inside.any():
        return inside.copy()
    gradient = ndi.gaussian_gradient_magnitude(np.asarray(pre, np.float32), sigma_voxels)
    band = inside & (gradient >= np.percentile(gradient[inside], percentile))
    if exclude is not None:
        band &= ~np.asarray(exclude, bool)
    return band


def subtraction_artefact(pre: np.ndarray, post: np.ndarray, band: np.ndarray,
                         scale: float) -> float:
    """Mean ``|post - pre|`` in ``band``, in percent of ``scale``.

    Parameters
    ----------
    pre, post
        ``(X, Y, Z)`` intensities on one grid (``post`` warped or not).
    band
        ``(X, Y, Z)`` boolean band (skin, edges).
    scale
        Intensity that counts as 100 % (the pre-contrast image's 99th percentile in the
        body, :attr:`DceRegions.scale`).

    Returns
    -------
    float
        The artefact in percent; NaN for an empty band.
    """
    band = np.asarray(band, bool)
    if not band.any():
        return float("nan")
    difference = np.abs(np.asarray(post, np.float64) - np.asarray(pre, np.float64))[band]
    return float(100.0 * difference.mean() / max(scale, 1e-12))


def jacobian_in_region(determinant: np.ndarray, region: np.ndarray,
                       low: float = JACOBIAN_LOW) -> dict[str, float]:
    """The Jacobian determinant of a field inside a region.

    Parameters
    ----------
    determinant
        ``(X, Y, Z)`` Jacobian determinant of a fixed -> moving pull-back field.
    region
        ``(X, Y, Z)`` boolean region of the fixed grid (the enhancing region).
    low
        Threshold of a local volume change.

    Returns
    -------
    dict
        ``mean`` (the volume of moving image drawn into the region over its own volume:
        above 1 the warped image compresses that tissue, below 1 it stretches it),
        ``below_pct`` (% of the region with ``J < low``) and ``above_pct`` (% with
        ``J > 1 / low``); NaN for an empty region.
    """
    values = np.asarray(determinant, np.float64)[np.asarray(region, bool)]
    if values.size == 0:
        return {"mean": float("nan"), "below_pct": float("nan"), "above_pct": float("nan")}
    return {"mean": float(values.mean()),
            "below_pct": float(100.0 * np.mean(values < low)),
            "above_pct": float(100.0 * np.mean(values > 1.0 / low))}


@dataclass
class DceRegions:
    """Where the DCE measures look, all on the pre-contrast working grid.

    Attributes
    ----------
    skin
        ``(X, Y, Z)`` boolean skin band (:func:`skin_band`).
    edges
        ``(X, Y, Z)`` boolean band of strong pre-contrast edges in the breast, without the
        skin band and the enhancing region (:func:`edge_band`).
    enhancing
        ``(X, Y, Z)`` boolean enhancing region without the skin band
        (:func:`enhancing_region`).
    threshold
        The enhancement threshold on ``post - pre`` (scanner units).
    scale
        99th percentile of the pre-contrast image in the body (scanner units): the 100 % of
        the artefact measures.
    """

    skin: np.ndarray
    edges: np.ndarray
    enhancing: np.ndarray
    threshold: float
    scale: float


def dce_regions(pre: Volume, post: Volume, body: np.ndarray, breast: np.ndarray) -> DceRegions:
    """The skin band, edge band and enhancing region of one post-contrast phase.

    Parameters
    ----------
    pre, post
        The pre-contrast image and the post-contrast phase (any grid overlapping it; read
        through world coordinates, before any registration).
    body, breast
        ``(X, Y, Z)`` boolean masks of ``pre``.
    """
    post_array = Displacement.identity(pre.grid).warp(post, device="cpu").array
    skin = skin_band(body, breast, pre.spacing)
    enhancing, threshold = enhancing_region(pre.array, post_array, breast, exclude=skin)
    edges = edge_band(pre.array, np.asarray(breast, bool) & ~skin, exclude=enhancing)
    scale = float(np.percentile(np.asarray(pre.array)[np.asarray(body, bool)], 99))
    return DceRegions(skin, edges, enhancing, threshold, scale)


def dce_measures(pre: Volume, warped: np.ndarray, displacement: Displacement,
                 regions: DceRegions, body: np.ndarray, breast: np.ndarray) -> dict[str, float]:
    """The no-ground-truth measures of one DCE registration.

    Parameters
    ----------
    pre
        The fixed pre-contrast image.
    warped
        ``(X, Y, Z)`` the post-contrast phase warped onto the fixed grid.
    displacement
        The registration's fixed -> moving field.
    regions
        :func:`dce_regions` of the phase.
    body, breast
        ``(X, Y, Z)`` boolean masks of ``pre``.

    Returns
    -------
    dict
        Column name -> value: NCC and MIND-SSD in the breast, the subtraction artefact in
        the skin and edge bands (% of :attr:`DceRegions.scale`), folding (% body), ``|u|``
        p95 (mm, breast) and the Jacobian in the enhancing region (mean, % below
        :data:`JACOBIAN_LOW`, % above its inverse).
    """
    jacobian = displacement.jacobian_determinant()
    inside = jacobian_in_region(jacobian, regions.enhancing)
    return {
        "NCC (breast)": ncc(pre.array, warped, breast),
        "MIND-SSD (breast)": mind_ssd(pre.array, warped, breast),
        "skin |post-pre| (%)": subtraction_artefact(pre.array, warped, regions.skin,
                                                    regions.scale),
        "edge |post-pre| (%)": subtraction_artefact(pre.array, warped, regions.edges,
                                                    regions.scale),
        "folded (% body)": jacobian_stats(jacobian, body)["jac_nonpos_pct"],
        "|u| p95 (mm, breast)": float(np.percentile(displacement.magnitude_mm()[breast], 95)),
        "J mean (enhancing)": inside["mean"],
        f"J < {JACOBIAN_LOW:g} (% enhancing)": inside["below_pct"],
        f"J > {1 / JACOBIAN_LOW:.2f} (% enhancing)": inside["above_pct"],
    }
