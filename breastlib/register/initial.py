"""Initial (pre-deformable) alignment: none, centres of mass, or affine.

Each returns a 4x4 world matrix ``M`` mapping fixed RAS millimetres to moving RAS
millimetres, so that ``moving(M p)`` is the moving image seen from fixed point ``p``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from breastlib._regions import largest_region
from breastlib.errors import BreastlibError
from breastlib.grid import LPS_FLIP
from breastlib.intensity import normalise_intensity
from breastlib.volume import Volume, volume_to_sitk

INIT_METHODS = ("none", "com", "affine")
#: The affine fit runs on copies of the images with voxels of about this size (mm) or
#: larger (:func:`block_average`): fine voxels add cost, not accuracy, to a 12-parameter
#: fit (a full-size phantom pair of 0.76 mm voxels took 77 s at full resolution).
AFFINE_MIN_SPACING_MM = 2.0
#: ... keeping at least this many voxels along every axis.
AFFINE_MIN_VOXELS = 32
#: Half-width (mm) of the box that opens :func:`foreground_mask`'s region: ghost strands
#: narrower than about twice this are cut from the body. On a full-size clinical phantom
#: (0.76 mm voxels) 2 mm left most of the ghosts anterior to the prone breasts in the mask
#: and 4 mm removed them.
GHOST_OPENING_MM = 4.0
#: The opening runs only along axes where it spans at least this many voxels. On 2-4 mm
#: voxels (the book's small phantom, the real exam's 3 mm grid) it is off: a box of one
#: voxel's half-width there cuts skin and nipples as coarsely as ghosts. Ghosts that the
#: mask keeps on such grids are a known limit (see the guard's notes).
GHOST_OPENING_MIN_VOXELS = 2


def foreground_mask(volume: Volume, *, threshold: float = 0.05,
                    ghost_opening_mm: float = GHOST_OPENING_MM) -> np.ndarray:
    """The body: largest connected region above ``threshold`` of the robust range, filled.

    Binary, so the centre does not move with contrast (fat bright on T1, dark with fat
    suppression, Hounsfield units on CT), bias fields or tissue changes between visits,
    all of which pull an intensity-weighted centre by centimetres.

    On voxels fine enough to resolve it (:func:`ghost_opening_radii`), the region is
    first opened by a box of ``ghost_opening_mm`` half-width, its largest part kept and
    grown back by the same box inside the thresholded region: MR ghosts (copies of the
    breasts along the phase-encode direction, in the air) are a lace of strands a few
    millimetres wide that touches the body, and a threshold alone takes them as body.

    Parameters
    ----------
    volume
        The image, any intensity range.
    threshold
        Fraction of the robust intensity range above which a voxel may be body.
    ghost_opening_mm
        Half-width (mm) of the opening's box (0: no opening; default
        :data:`GHOST_OPENING_MM`).

    Returns
    -------
    numpy.ndarray
        ``volume.shape`` bool.
    """
    smoothed = ndi.gaussian_filter(normalise_intensity(volume.array), 1.0)
    mask = smoothed > threshold
    del smoothed
    radii = ghost_opening_radii(volume.spacing, ghost_opening_mm)
    if any(radii):
        # Box filters are separable: minimum then maximum is the opening. The whole mask
        # of a full-size image took 3.6 s so, 9.6 s with an ellipsoid of the same radii.
        size = tuple(2 * r + 1 for r in radii)
        core = ndi.maximum_filter(ndi.minimum_filter(mask.view(np.uint8), size), size)
        core = largest_region(core.view(bool))
        mask &= ndi.maximum_filter(core.view(np.uint8), size).view(bool)
    return ndi.binary_fill_holes(largest_region(mask))


def ghost_opening_radii(spacing: np.ndarray | tuple[float, ...],
                        opening_mm: float = GHOST_OPENING_MM) -> tuple[int, int, int]:
    """Half-widths (voxels) of :func:`foreground_mask`'s opening along each axis:
    ``floor(opening_mm / spacing)``, or 0 (no opening along the axis) where that is under
    :data:`GHOST_OPENING_MIN_VOXELS`."""
    if not (math.isfinite(opening_mm) and opening_mm >= 0):
        raise ValueError(f"ghost_opening_mm must be a length in mm >= 0, got {opening_mm!r}")
    radii = (math.floor(opening_mm / float(s) + 1e-9) for s in spacing)
    return tuple(r if r >= GHOST_OPENING_MIN_VOXELS else 0
                 for r in radii)  # type: ignore[return-value]


def centre_of_mass_mm(volume: Volume) -> np.ndarray:
    """Centre of the body mask (:func:`foreground_mask`), RAS mm, ``(3,)``."""
    mask = foreground_mask(volume)
    if not mask.any():
        raise BreastlibError("cannot compute a centre of mass: the image has no foreground")
    index = np.argwhere(mask).mean(axis=0)
    return volume.grid.index_to_world(index[None])[0]


def translation(offset_mm: np.ndarray) -> np.ndarray:
    """4x4 world translation by ``offset_mm``."""
    matrix = np.eye(4)
    matrix[:3, 3] = offset_mm
    return matrix


def block_factors(volume: Volume, min_spacing_mm: float) -> tuple[int, int, int]:
    """Voxels per block along each axis for voxels of about ``min_spacing_mm`` or larger:
    ``round(min_spacing_mm / spacing)``, at least 1 and at most what leaves
    :data:`AFFINE_MIN_VOXELS` voxels (an axis already that short or coarse keeps 1)."""
    # Never below AFFINE_MIN_VOXELS along an axis, which the affine fit's pyramid shrinks 4x.
    return tuple(max(1, min(round(min_spacing_mm / float(s)), n // AFFINE_MIN_VOXELS))
                 for s, n in zip(volume.spacing, volume.shape, strict=True))


def block_average(volume: Volume, min_spacing_mm: float = AFFINE_MIN_SPACING_MM) -> Volume:
    """``volume`` with whole blocks of voxels averaged, so that each axis's voxels are
    about ``min_spacing_mm`` or larger (:func:`block_factors`). Trailing voxels
    that fill no block are dropped; the grid covers the same world positions. Returns
    ``volume`` itself where every factor is 1."""
    factors = block_factors(volume, min_spacing_mm)
    if factors == (1, 1, 1):
        return volume
    kept = [n // f * f for n, f in zip(volume.shape, factors, strict=True)]
    if min(kept) == 0:
        return volume
    array = volume.array[: kept[0], : kept[1], : kept[2]].astype(np.float32)
    blocks = array.reshape(kept[0] // factors[0], factors[0], kept[1] // factors[1],
                           factors[1], kept[2] // factors[2], factors[2])
    # Block i covers voxels i f ... i f + f - 1: its centre is at i f + (f - 1) / 2.
    scale = np.diag([*map(float, factors), 1.0])
    scale[:3, 3] = (np.asarray(factors, float) - 1.0) / 2.0
    return Volume.from_array(blocks.mean(axis=(1, 3, 5)), volume.affine @ scale)


def affine_matrix(fixed: Volume, moving: Volume, *, seed: int = 0, cache: bool = True
                  ) -> np.ndarray:
    """Affine fixed -> moving world matrix by SimpleITK (Mattes MI, 3 resolutions).

    Initialised by the centres of mass; returns RAS 4x4. Metric sampling is seeded by
    ``seed`` (>= 0), so the result is the same run to run. With ``cache`` the matrix is
    read from and written to the on-disk cache (:mod:`breastlib.register.affine_cache`),
    so the methods that register one pair fit it once.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not cache:
        return _fit_affine(fixed, moving, seed=seed)
    from breastlib.register.affine_cache import affine_cache_path, read_affine, write_affine

    path = affine_cache_path(fixed, moving, seed=seed, block_mm=AFFINE_MIN_SPACING_MM)
    matrix = read_affine(path)
    if matrix is None:
        matrix = _fit_affine(fixed, moving, seed=seed)
        write_affine(path, matrix)
    return matrix


def _fit_affine(fixed: Volume, moving: Volume, *, seed: int) -> np.ndarray:
    """:func:`affine_matrix` without the cache."""
    import SimpleITK as sitk

    fixed, moving = block_average(fixed), block_average(moving)

    fixed_image = sitk.Cast(volume_to_sitk(fixed.with_array(normalise_intensity(fixed.array))),
                            sitk.sitkFloat32)
    moving_image = sitk.Cast(
        volume_to_sitk(moving.with_array(normalise_intensity(moving.array))), sitk.sitkFloat32
    )
    start = translation(centre_of_mass_mm(moving) - centre_of_mass_mm(fixed))
    start_lps = LPS_FLIP @ start @ LPS_FLIP
    transform = sitk.AffineTransform(3)
    transform.SetTranslation(tuple(float(t) for t in start_lps[:3, 3]))
    method = sitk.ImageRegistrationMethod()
    # One thread: ITK's multi-threaded metric sums in a varying order, so results would
    # differ in the last digits from run to run. The sampled metric is cheap anyway.
    method.SetNumberOfThreads(1)
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    # SimpleITK reads a sampling seed of 0 as sitkWallClock (a new seed every run).
    method.SetMetricSamplingPercentage(0.1, int(seed) + 1)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=200, relaxationFactor=0.7
    )
    # Parameter scales as "from physical shift" would estimate them (a unit change of a
    # matrix entry moves points by up to the field's radius), computed here because
    # SimpleITK's estimator samples points with an unseeded generator.
    lo, hi = fixed.grid.world_bounds()
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    method.SetOptimizerScales([radius**2] * 9 + [1.0] * 3)
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetInitialTransform(transform, inPlace=True)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # the pyramid filters too
    try:
        method.Execute(fixed_image, moving_image)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return sitk_affine_to_ras(transform)


def sitk_affine_to_ras(transform) -> np.ndarray:
    """Convert a SimpleITK affine-like transform (LPS, fixed -> moving) to a RAS 4x4."""
    matrix = np.array(transform.GetMatrix()).reshape(3, 3)
    centre = np.array(transform.GetCenter())
    shift = np.array(transform.GetTranslation())
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = shift + centre - matrix @ centre
    return LPS_FLIP @ lps @ LPS_FLIP


def initial_matrix(fixed: Volume, moving: Volume, method: str = "com") -> np.ndarray:
    """The fixed -> moving world matrix for ``--init none|com|affine``."""
    if method == "none":
        return np.eye(4)
    if method == "com":
        return translation(centre_of_mass_mm(moving) - centre_of_mass_mm(fixed))
    if method == "affine":
        return affine_matrix(fixed, moving)
    raise BreastlibError(f"unknown --init '{method}': choose from {', '.join(INIT_METHODS)}")
