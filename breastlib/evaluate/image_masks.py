"""Body and breast masks from the image alone, for prone bilateral breast MRI.

Real exams come without label maps, so the metrics that need a region (similarity inside
the breast, folding, subtraction artefacts) take it from the image itself:

- :func:`body_mask`: the patient in the field of view. Bright tissue (Otsu on log
  intensity) outlines the body; what it encloses (the dark thorax, cut open at the back by
  the field of view) is filled slice by slice.
- :func:`breast_mask_from_image`: the body anterior to the chest wall, placed per axial
  slice at the deepest point between the breasts (:func:`intermammary_cleft`).

Both rely on the body's outline against air, not on tissue contrast, so they behave the
same on fat-suppressed T1/DCE and T2 series of one exam.

Arrays are canonical RAS+ ``(X, Y, Z)`` (see :mod:`breastlib.grid`): ``y`` grows towards
anterior, so in a prone exam the breasts lie at high ``y`` and the back at ``y = 0``;
axial slices are ``array[:, :, k]``.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage as ndi

from breastlib._regions import largest_region
from breastlib.errors import InputError
from breastlib.volume import Volume

#: How far (mm) a breast must stand out of the anterior body outline, above the cleft
#: beside it, for an axial slice to show it.
MIN_BREAST_MM = 15.0
#: A slice's cleft more than this (mm) from the median over 30 mm of slices is an outlier.
MAX_CLEFT_JUMP_MM = 15.0
#: Columns where the body outline stands less than this (mm) above the cut are not breast:
#: it parts the breasts from each other and from lower bulges beside them.
MIN_BASE_MM = 10.0
#: Largest share of the body's left-right extent that its contact with the anterior image
#: edge may span: a prone exam has air in front of the breasts (at most their tips touch),
#: a flipped volume has the cut back there.
MAX_ANTERIOR_EDGE = 0.75
#: Gaussian smoothing (sigma, mm) before the body threshold: noise stays out of the body.
BODY_SMOOTHING_MM = 1.0
#: Closing radius (mm) that decides what the body encloses: gaps in a faint rim up to
#: twice this wide still close the thorax.
BRIDGE_MM = 15.0
#: Half-length (mm) of the superior-inferior closing that mends slices whose thorax leaked.
Z_BRIDGE_MM = 30.0


# -- input and small helpers -----------------------------------------------------------------
def _checked(volume: Volume) -> np.ndarray:
    """The volume's array as float, or :class:`InputError` when no mask can come from it."""
    array = np.asarray(volume.array)
    if array.ndim != 3:
        raise InputError(f"expected a 3-D volume, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{int((~np.isfinite(array)).sum())} NaN/Inf voxels: "
                         "a mask needs finite intensities (load with nan='zero')")
    array = array.astype(np.float32, copy=False)
    if float(array.max()) <= 0.0 or float(array.max()) == float(array.min()):
        raise InputError("the image is blank (all voxels equal or none positive): no body "
                         "to mask")
    return array


def _disk(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """An elliptical 2-D structuring element of ``radius_mm`` on pixels of ``spacing``."""
    half = np.maximum(np.floor(radius_mm / np.asarray(spacing, float)), 0).astype(int)
    ii, jj = np.ogrid[-half[0]:half[0] + 1, -half[1]:half[1] + 1]
    return (ii * spacing[0]) ** 2 + (jj * spacing[1]) ** 2 <= radius_mm ** 2


def otsu_thresholds(values: np.ndarray, classes: int = 2, *, bins: int = 128) -> list[float]:
    """Otsu's thresholds on ``log(1 + I)`` of the positive ``values``, in intensity units.

    On log intensity the dark body tissues (lungs, muscle, fat-suppressed fat) form their
    own class between the noise floor and the bright tissues, whereas on linear intensity
    a few bright tissues pull the thresholds up into them.

    Parameters
    ----------
    values
        Intensities, any shape; only the positive ones count.
    classes
        2 or 3: one threshold or two (ascending).
    bins
        Histogram bins over the log range.

    Returns
    -------
    list of float
        ``classes - 1`` ascending thresholds.
    """
    values = np.asarray(values)
    values = np.log1p(values[values > 0].astype(np.float64))
    if values.size == 0 or values.min() == values.max():
        raise InputError("the image has no contrast to threshold")
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.concatenate([[0.0], np.cumsum(counts)])
    moment = np.concatenate([[0.0], np.cumsum(counts * centres)])
    if classes == 2:
        cuts = (np.arange(1, bins),)
    elif classes == 3:
        cuts = np.triu_indices(bins, 1)
        cuts = (cuts[0][cuts[0] > 0], cuts[1][cuts[0] > 0])
    else:
        raise ValueError("classes must be 2 or 3")
    bounds = [np.zeros_like(cuts[0]), *cuts, np.full_like(cuts[0], bins)]
    score = np.zeros(len(cuts[0]))
    for lo, hi in itertools.pairwise(bounds):
        w = weight[hi] - weight[lo]
        m = moment[hi] - moment[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            score += np.where(w > 0, m * m / np.where(w > 0, w, 1), -np.inf)
    best = int(np.argmax(score))
    return [float(np.expm1(edges[c[best]])) for c in cuts]


def no_data_mask(array: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Regions of exact zeros: outside the reconstructed field of view, not air.

    Scanners blank the corners that distortion correction moved out of the field of view;
    air holds noise, whose scattered exact zeros an opening of 3 mm removes.
    """
    zero = array == 0
    disk = _disk(3.0, spacing[:2])
    out = np.zeros_like(zero)
    for k in range(array.shape[2]):
        if zero[:, :, k].any():
            out[:, :, k] = ndi.binary_opening(zero[:, :, k], disk)
    return out


def _close(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Morphological closing of a 2-D mask by a disk of ``radius_mm`` (via distance maps)."""
    if not mask.any():
        return mask
    grown = ndi.distance_transform_edt(~mask, sampling=spacing) <= radius_mm
    return ndi.distance_transform_edt(grown, sampling=spacing) > radius_mm


def _fill_closed_behind(plane: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """Holes of an axial slice's mask when the posterior image edge and ``walls`` count as
    closed (the returned holes exclude ``plane`` and ``walls``).

    The field of view cuts the back, so the thorax is open posteriorly; closing the
    posterior edge (``y = 0``) and the scanner's blanked corners makes it a hole.
    """
    closed = np.pad(plane | walls, ((0, 0), (1, 0)), constant_values=True)
    return ndi.binary_fill_holes(closed)[:, 1:] & ~plane & ~walls


def _posterior_run(plane: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """Per column of an axial slice, the unbroken run of ``tissue`` pixels directly
    posterior to the mask's most posterior pixel (the faint back, far from the coil)."""
    y = np.arange(plane.shape[1])
    has = plane.any(axis=1)
    first = np.where(has, np.argmax(plane, axis=1), 0)  # most posterior mask pixel
    gap = np.maximum.accumulate(np.where(~tissue, y[None, :], -1), axis=1)
    last_gap = gap[np.arange(plane.shape[0]), np.maximum(first - 1, 0)]
    return has[:, None] & (y[None, :] < first[:, None]) & (y[None, :] > last_gap[:, None])


# -- body --------------------------------------------------------------------------------------
def body_mask(volume: Volume, *, threshold: float | None = None) -> np.ndarray:
    """The patient's body in the field of view, from the image alone.

    1. Smooth by :data:`BODY_SMOOTHING_MM`; foreground = above ``threshold`` (Otsu on log
       intensity by default): skin, fat, glands, most muscle.
    2. Per axial slice, add the faint back below it (the unbroken run of voxels above the
       noise floor under each column's foreground; the noise floor is the lower of two
       Otsu thresholds on log intensity), close by 3 mm and fill what the outline
       encloses, the posterior image edge and the scanner's blanked corners
       (:func:`no_data_mask`) counting as closed and gaps up to 2 x :data:`BRIDGE_MM`
       bridged: the lungs and mediastinum.
    3. Open by one voxel in-plane and keep the largest 3-D connected component.
    4. Slices whose thorax still leaked take it from the slices within
       :data:`Z_BRIDGE_MM` above and below (where the voxel is above the noise floor).

    Parameters
    ----------
    volume
        An MR volume, ``(X, Y, Z)`` canonical RAS+, any positive intensity scale.
    threshold
        Intensity separating the body's outline from air; default the Otsu threshold on
        the log of the positive voxels (:func:`otsu_thresholds`).

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean mask on the volume's grid.

    Raises
    ------
    InputError
        NaN/Inf voxels, a blank image, or no foreground above the threshold.

    Notes
    -----
    Limits:

    - Signal outside the patient that touches the body (phase-encoding ghosts, arms or
      fold-over at the lateral image edges) is taken as body.
    - Air in a fold that the outline closes (a deep inframammary or axillary fold) is
      filled; tissue darker than the threshold at the body's surface, where the field of
      view cuts the body at the sides, stays out.
    - Where the field of view cuts the body, the mask ends at the image edge: its volume
      is the body in the image, not the patient's.
    """
    array = _checked(volume)
    spacing = volume.spacing
    smooth = ndi.gaussian_filter(array, sigma=BODY_SMOOTHING_MM / spacing)
    level = otsu_thresholds(array)[0] if threshold is None else float(threshold)
    foreground = smooth > level
    if not ndi.binary_erosion(foreground, np.ones((3, 3, 1), bool)).any():
        raise InputError(f"no body above the threshold {level:.4g}")
    walls = no_data_mask(array, spacing)
    tissue = (smooth > otsu_thresholds(smooth, 3)[0]) & ~walls
    body = np.zeros_like(foreground)
    for k in range(array.shape[2]):
        plane = foreground[:, :, k]
        plane = plane | _posterior_run(plane, tissue[:, :, k])
        if plane.any():
            # the 3 mm closing bridges the skin's gaps; the lenient 15 mm one only decides
            # what is enclosed (the dark thorax behind a faint posterior-lateral rim)
            enclosed = _fill_closed_behind(_close(plane, BRIDGE_MM, spacing[:2]), walls[..., k])
            body[:, :, k] = _close(plane, 3.0, spacing[:2]) | plane | enclosed
    # specks of noise and ghosting go; the body is the largest piece
    body = largest_region(ndi.binary_opening(body, np.ones((3, 3, 1), bool)))
    # Far from the breast coil the back can fall below the threshold, so a slice's thorax
    # may leak out; take it from the slices around where the voxel is not air.
    reach = max(round(float(Z_BRIDGE_MM / spacing[2])), 1)
    stacked = np.pad(body, ((0, 0), (0, 0), (reach, reach)), mode="edge")
    bridged = ndi.binary_closing(stacked, np.ones((1, 1, 2 * reach + 1), bool))
    body |= bridged[:, :, reach:-reach] & tissue
    for k in range(array.shape[2]):
        if body[:, :, k].any():
            body[:, :, k] |= _fill_closed_behind(body[:, :, k], walls[:, :, k])
    return body


# -- chest wall and breast ---------------------------------------------------------------------
def anterior_outline(body: np.ndarray) -> np.ndarray:
    """Per column, the most anterior body voxel: ``(X, Z)`` ``y`` indices, -1 where the column
    holds no body."""
    y = np.arange(body.shape[1])[None, :, None]
    return np.where(body.any(axis=1), np.max(np.where(body, y, -1), axis=1), -1)


def _anterior_edge_span(body: np.ndarray) -> float:
    """Left-right span of the body on the anterior image edge, as a share of its own."""
    xs = np.flatnonzero(body.any(axis=(1, 2)))
    edge = np.flatnonzero(body[:, -1, :].any(axis=1))
    if xs.size == 0 or edge.size == 0:
        return 0.0
    return float((edge.max() - edge.min() + 1) / (xs.max() - xs.min() + 1))


def intermammary_cleft(body: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The deepest point between the two breasts, per axial slice.

    In each slice the two most anterior peaks of the anterior body outline are the breasts
    and the lowest point of the outline between them is the cleft, if both peaks stand at
    least :data:`MIN_BREAST_MM` in front of it and it lies in the middle half of the body's
    width. A slice whose cleft lies more than
    :data:`MAX_CLEFT_JUMP_MM` from the median of the slices within 15 mm counts as not
    showing them; slices that do not take the cleft of the nearest slices that do (linear
    interpolation); the result is median-filtered over 10 mm along ``z``.

    Parameters
    ----------
    body
        ``(X, Y, Z)`` boolean body mask, canonical RAS+ (anterior = high ``y``).
    spacing
        ``(3,)`` voxel size in mm.

    Returns
    -------
    cleft : numpy.ndarray
        ``(Z,)`` float ``y`` index of the cleft in every slice.
    found : numpy.ndarray
        ``(Z,)`` bool, whether the slice showed both breasts (else interpolated).

    Raises
    ------
    InputError
        The body spans more than :data:`MAX_ANTERIOR_EDGE` of its width along the anterior
        image edge (not a prone exam in canonical orientation), or no slice shows two
        breasts.
    """
    from scipy.signal import find_peaks

    if _anterior_edge_span(body) > MAX_ANTERIOR_EDGE:
        raise InputError("the body fills the image's anterior edge: expected a prone exam "
                         "with air in front of the breasts, in canonical orientation "
                         "(anterior = +y)")
    outline = anterior_outline(body).astype(float)
    nz = body.shape[2]
    cleft = np.full(nz, np.nan)
    smooth_px = max(round(float(5.0 / spacing[0])) | 1, 3)
    for k in range(nz):
        top = outline[:, k]
        columns = np.flatnonzero(top >= 0)
        if columns.size == 0:
            continue
        top = ndi.median_filter(np.where(top < 0, 0.0, top), size=smooth_px, mode="nearest")
        peaks, _ = find_peaks(top, prominence=MIN_BREAST_MM / spacing[1])
        if len(peaks) < 2:
            continue
        left, right = sorted(peaks[np.argsort(top[peaks])[-2:]])
        deepest = left + int(np.argmin(top[left:right + 1]))
        middle, width = (columns[0] + columns[-1]) / 2, columns[-1] - columns[0] + 1
        if (min(top[left], top[right]) - top[deepest] >= MIN_BREAST_MM / spacing[1]
                and abs(deepest - middle) <= width / 4):  # a cleft lies mid-body
            cleft[k] = float(top[deepest])
    found = np.isfinite(cleft)
    if not found.any():
        raise InputError("no axial slice shows two breasts in the body outline: is this a "
                         "bilateral breast exam in canonical RAS orientation (anterior = +y)?")
    index = np.arange(nz)
    # a slice whose cleft jumps away from its neighbours' (a broken outline) is dropped
    wide = max(round(float(30.0 / spacing[2])) | 1, 1)
    trend = ndi.median_filter(np.interp(index, index[found], cleft[found]), size=wide,
                              mode="reflect")
    found &= np.abs(np.nan_to_num(cleft, nan=np.inf) - trend) <= MAX_CLEFT_JUMP_MM / spacing[1]
    cleft = np.interp(index, index[found], cleft[found])
    window = max(round(float(10.0 / spacing[2])) | 1, 1)
    return ndi.median_filter(cleft, size=window, mode="nearest"), found


def breast_mask_from_image(
    volume: Volume,
    body: np.ndarray | None = None,
    *,
    depth_mm: float = 0.0,
) -> np.ndarray:
    """Both breasts from the image alone: the body anterior to the chest wall.

    In each axial slice that shows both breasts, the chest wall is taken as the left-right
    line through the intermammary cleft (:func:`intermammary_cleft`), moved ``depth_mm``
    posteriorly; the breast is the body anterior to it, in the two runs of columns where
    the body outline stands at least :data:`MIN_BASE_MM` above the line and reaches
    furthest forward (the breasts; the skin over the sternum and lower bulges beside the
    breasts, such as the axilla, drop out). Pieces under 1 % of the largest are dropped.

    Parameters
    ----------
    volume
        A prone bilateral breast MR volume (any contrast: fat-suppressed T1/DCE, T2, ...),
        ``(X, Y, Z)`` canonical RAS+.
    body
        ``(X, Y, Z)`` boolean body mask on the same grid; default :func:`body_mask`.
    depth_mm
        How far posterior to the cleft the cut lies, in mm (0: through the cleft's skin).

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean mask on the volume's grid, inside ``body``.

    Raises
    ------
    InputError
        Bad intensities (see :func:`body_mask`), a body mask of another shape, a body on
        the anterior image edge or no slice that shows two breasts (see
        :func:`intermammary_cleft`).

    Notes
    -----
    A geometric rule on the body outline, not a segmentation. On the synthetic phantom
    (seeds 0-4; T1, fat-suppressed and T2) 98.9-99.8 % of the mask lies in the labelled
    breast and at most 0.7 % on the chest wall or thorax, but it holds only 32-50 % of the
    labelled breast in front of the thorax: the phantom's breasts sit on fat 45 mm thick
    over the sternum, all of it behind the cleft. Its limits:

    - The chest wall is a straight left-right line per slice at the depth of the cleft. In a
      prone exam the pectoralis lies a few millimetres behind that level, so the chest
      wall is excluded, but so are the retromammary fat and the breast's base where it
      lies deeper than the cleft (laterally, where the chest curves back, and everywhere
      when the tissue over the sternum is thick).
    - Slices where the two breasts do not both stand out of the outline by
      :data:`MIN_BREAST_MM` (the poles, very small breasts, breasts merged into one mound)
      hold no breast; an exam without any slice showing both is refused.
    - Lateral tissue joined to a breast above the line and standing out of the outline
      (the axillary tail, near the axilla some chest-wall and axillary tissue) is kept;
      tissue between the breasts closer than :data:`MIN_BASE_MM` to the line is lost.
    - It assumes a prone exam in canonical orientation (anterior = high ``y``) with the
      patient lying square in the coil; a rolled patient tilts the true chest wall
      against the line.
    - Its skin follows :func:`body_mask`, about half a voxel outside the true edge.
    """
    array = _checked(volume)
    if body is None:
        body = body_mask(volume)
    body = np.asarray(body, dtype=bool)
    if body.shape != array.shape:
        raise InputError(f"body mask shape {body.shape} does not match the volume's "
                         f"{array.shape}")
    spacing = volume.spacing
    cleft, found = intermammary_cleft(body, spacing)
    cut = cleft - depth_mm / spacing[1]
    y = np.arange(array.shape[1])
    outline = anterior_outline(body)
    breast = np.zeros_like(body)
    for k in np.flatnonzero(found):
        columns = _breast_columns(outline[:, k], cut[k] + MIN_BASE_MM / spacing[1])
        breast[columns, :, k] = body[columns, :, k] & (y[None, :] > cut[k])
    labels, count = ndi.label(breast)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        breast = np.isin(labels, np.flatnonzero(sizes >= 0.01 * sizes.max()))
    return breast


def _breast_columns(top: np.ndarray, level: float) -> np.ndarray:
    """The columns of the (at most two) runs of the outline above ``level`` that reach
    furthest anterior: the breasts, without lower lateral bulges (axilla, arms)."""
    runs, count = ndi.label(top > level)
    if count == 0:
        return np.zeros(top.shape, bool)
    heights = ndi.maximum(top, runs, index=np.arange(1, count + 1))
    keep = 1 + np.argsort(heights)[-2:]
    return np.isin(runs, keep)
