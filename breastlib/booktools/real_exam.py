"""The real-exam chapter (book/real-exam.md): one clinical breast MRI exam, no ground truth.

The exam is the public dataset ``uta11`` (:mod:`breastlib.datasets`): a prone bilateral
1.5 T exam with a fat-suppressed DCE series (pre-contrast, post-contrast phases 1 and 5) and
a T2 TSE series on another grid. Nothing of it, nor any image made from it, is committed:
:func:`open_exam` fetches it into the data cache (or reads it from there) on each build.

The chapter works small, so that it runs on a 2-core CPU in minutes: every DCE series is
smoothed and resampled to :data:`WORK_SPACING_MM` voxels, then cropped to the breasts of
the pre-contrast image plus :data:`CROP_MARGIN_MM` (the chest wall, not the whole thorax);
the T2 series keeps its own field of view, resampled in-plane to about the same size.
Arrays are canonical RAS+ ``(X, Y, Z)`` (see :mod:`breastlib.grid`), displacements fixed ->
moving pull-back fields (:class:`~breastlib.displacement.Displacement`).
Without ground truth, the registrations are judged on the images alone (similarity inside
the image-derived breast mask, folding), and on the pre-contrast image warped by a known
smooth deformation (:func:`known_deformation`), by the book's primary metric, the dense
error ``|u - u_true|`` in the breast.

Every method of the study (:data:`METHODS`) runs on four experiments (DCE phases 1 and 5
onto the pre-contrast image, T2 onto it, and the known deformation); :func:`method_tables`
measures them, and :func:`exam_numbers` keeps the tables (numbers only, never an image)
in a JSON cache under ``book/data/real-exam/`` keyed by everything they depend on
(:func:`cache_key`), so that a book build recomputes them only when that key changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from scipy import ndimage as ndi

from breastlib._atomic import write_text_atomic
from breastlib.booktools.data import BOOK_METHODS
from breastlib.displacement import Displacement
from breastlib.encoders.mind import mind_ssc
from breastlib.evaluate.image_masks import body_mask, breast_mask_from_image
from breastlib.evaluate.metrics import field_error_stats, jacobian_stats
from breastlib.grid import Grid
from breastlib.intensity import normalise_intensity
from breastlib.register import RegistrationResult, register_method
from breastlib.register.baselines import BASELINES
from breastlib.register.guard import GUARD_MIND
from breastlib.viz.panels import draw_slice
from breastlib.viz.qc import checkerboard
from breastlib.volume import Volume, load_volume

#: The registry name of the exam.
DATASET = "uta11"
#: Short name -> (series folder, description).
SERIES = {
    "pre": ("s08_pre", "DCE pre-contrast, fat-suppressed 3-D GRE"),
    "post1": ("s09_post1", "DCE post-contrast phase 1"),
    "post5": ("s19_post5", "DCE post-contrast phase 5"),
    "t2": ("s03_t2_tse", "T2 TSE"),
}
#: Voxel size (mm) of the working grid of the DCE series.
WORK_SPACING_MM = 3.0
#: Margin (mm) kept around the breast mask when cropping: the chest wall and the skin.
CROP_MARGIN_MM = 30.0
#: Registration settings of the chapter: world coordinates are shared by the series of one
#: exam, so no initial alignment (a centre-of-mass shift between different fields of view
#: would only add an error).
REGISTRATION = {"profile": "fast", "init": "none", "device": "auto"}
#: Encoder weights of the foundation-model methods: no pretrained checkpoint is assumed,
#: so the encoders run with random weights (the study's ``--weights random``).
WEIGHTS = "random"


# -- data -----------------------------------------------------------------------------------
def unavailable_message(error: Exception | str) -> str:
    """The one line the chapter prints when the exam cannot be had: what and how to get it."""
    detail = " ".join(str(error).split())
    if len(detail) > 160:
        detail = detail[:157] + "..."
    return (f"The real exam '{DATASET}' is not available here ({detail}): run "
            f"'breastlib data fetch {DATASET}' (or set BREASTLIB_DATA_MIRROR to a local "
            "mirror) and run this chapter again; the rest of it is skipped.")


def fetch_exam(mirror: str | os.PathLike | None = None, *, retries: int = 3) -> Path:
    """Fetch (or verify in the cache) the exam and return its folder.

    Parameters
    ----------
    mirror
        A local mirror folder laid out as ``uta11/<series>/<file>``; default
        ``$BREASTLIB_DATA_MIRROR``, then the upstream repository.
    retries
        Further attempts per file after a network error (see
        :func:`breastlib.datasets.fetch`).

    Returns
    -------
    pathlib.Path
        The dataset's cache folder (one DICOM folder per series).

    Raises
    ------
    breastlib.datasets.DatasetError
        A file could be fetched from neither source.
    """
    from breastlib import datasets

    return datasets.fetch(DATASET, mirror=mirror, progress=False, retries=retries).path


def downsample(volume: Volume, spacing_mm: float | tuple[float, float, float]) -> Volume:
    """Smooth and resample a volume to a coarser grid over the same extent.

    Parameters
    ----------
    volume
        ``(X, Y, Z)`` canonical RAS+ volume.
    spacing_mm
        Target voxel size (mm), one value or one per axis; an axis whose voxels are
        already as coarse keeps its own.

    Returns
    -------
    Volume
        The volume on a grid over the same extent, coarser by about ``spacing / old
        spacing`` per axis (rounded to whole voxel counts), anti-aliased by a Gaussian of
        sigma ``0.4 * factor`` voxels.
    """
    old = np.asarray(volume.spacing, dtype=float)
    target = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
    factor = np.maximum(target / old, 1.0)
    shape = tuple(max(round(float(n / f)), 1) for n, f in zip(volume.shape, factor, strict=True))
    factor = np.asarray(volume.shape, float) / np.asarray(shape, float)
    scale = np.diag([*factor, 1.0])
    scale[:3, 3] = (factor - 1.0) / 2.0  # new voxel centres at the old blocks' centres
    affine = volume.affine @ scale
    sigma = np.where(factor > 1.0, 0.4 * factor, 0.0)
    smooth = ndi.gaussian_filter(np.asarray(volume.array, np.float32), sigma)
    return volume.with_array(smooth).resample_to(Grid.from_file_affine(shape, affine))


def crop_box(mask: np.ndarray, spacing: np.ndarray,
             margin_mm: float = CROP_MARGIN_MM) -> tuple[slice, slice, slice]:
    """The index box holding ``mask`` plus a margin, clipped at the array's edges.

    Parameters
    ----------
    mask
        ``(X, Y, Z)`` boolean mask (the breast).
    spacing
        ``(3,)`` voxel size in mm.
    margin_mm
        Margin around the mask's bounding box, in mm.

    Returns
    -------
    tuple of slice
        One slice per axis.
    """
    index = np.argwhere(mask)
    if index.size == 0:
        return (slice(None),) * 3
    pad = np.ceil(margin_mm / np.asarray(spacing, float)).astype(int)
    lo = np.maximum(index.min(axis=0) - pad, 0)
    hi = np.minimum(index.max(axis=0) + pad + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def crop(volume: Volume, box: tuple[slice, slice, slice]) -> Volume:
    """The sub-volume ``volume.array[box]`` on the matching sub-grid (same voxels)."""
    lo = np.array([b.indices(n)[0] for b, n in zip(box, volume.shape, strict=True)], float)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.grid.index_to_world(lo[None])[0]
    array = np.ascontiguousarray(volume.array[box])
    return Volume(array, Grid.from_file_affine(array.shape, affine))


@dataclass
class RealExam:
    """The exam as the chapter uses it.

    Attributes
    ----------
    folder
        The dataset's cache folder.
    native
        Short name -> the series as read, full resolution (for the geometry table).
    dce
        ``"pre"``, ``"post1"``, ``"post5"`` -> volume on the working grid (DCE intensities).
    t2
        The T2 series on its own (downsampled) grid.
    body, breast
        ``(X, Y, Z)`` boolean masks of the pre-contrast image on the working grid.
    t2_body, t2_breast
        The same masks from the T2 image, on its grid.
    seconds
        ``{"load": s}``: wall-clock seconds spent reading, resampling and masking.
    """

    folder: Path
    native: dict[str, Volume]
    dce: dict[str, Volume]
    t2: Volume
    body: np.ndarray
    breast: np.ndarray
    t2_body: np.ndarray
    t2_breast: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pre(self) -> Volume:
        """The pre-contrast volume on the working grid (every registration's fixed image)."""
        return self.dce["pre"]


def load_exam(folder: str | os.PathLike, *, spacing_mm: float = WORK_SPACING_MM) -> RealExam:
    """Read the four series, resample them to the working grids and derive the masks.

    Parameters
    ----------
    folder
        The dataset folder (one DICOM folder per series, see :data:`SERIES`).
    spacing_mm
        Voxel size (mm) of the DCE working grid; the T2 series is resampled in-plane to it
        and keeps its slice spacing.

    Returns
    -------
    RealExam
        The DCE series cropped to the pre-contrast breast mask plus :data:`CROP_MARGIN_MM`.

    Raises
    ------
    breastlib.errors.InputError
        A series is unreadable, or no slice shows both breasts (see
        :func:`~breastlib.evaluate.image_masks.breast_mask_from_image`).
    """
    start = time.perf_counter()
    folder = Path(folder)
    native = {name: load_volume(folder / series) for name, (series, _) in SERIES.items()}
    coarse = {name: downsample(native[name], spacing_mm) for name in SERIES}
    body = body_mask(coarse["pre"])
    breast = breast_mask_from_image(coarse["pre"], body)
    box = crop_box(breast, coarse["pre"].spacing)
    t2_body = body_mask(coarse["t2"])
    return RealExam(
        folder=folder, native=native,
        dce={name: crop(coarse[name], box) for name in ("pre", "post1", "post5")},
        t2=coarse["t2"], body=body[box], breast=breast[box], t2_body=t2_body,
        t2_breast=breast_mask_from_image(coarse["t2"], t2_body),
        seconds={"load": time.perf_counter() - start},
    )


def open_exam(mirror: str | os.PathLike | None = None, *, spacing_mm: float = WORK_SPACING_MM,
              retries: int = 3) -> RealExam | None:
    """Fetch and load the exam, or print :func:`unavailable_message` and return ``None``.

    Never raises for missing data (no network, no mirror, an incomplete cache): the
    chapter then skips its remaining cells.
    """
    from breastlib.datasets import DatasetError

    try:
        folder = fetch_exam(mirror, retries=retries)
    except (DatasetError, OSError) as exc:
        print(unavailable_message(exc))
        return None
    return load_exam(folder, spacing_mm=spacing_mm)


def geometry_table(exam: RealExam) -> pd.DataFrame:
    """One row per series: description, grid, voxel size and field of view, as acquired and
    as the chapter works on it."""
    rows = []
    for name, (series, description) in SERIES.items():
        full = exam.native[name]
        work = exam.t2 if name == "t2" else exam.dce[name]
        fmt = (lambda v, p=2: " x ".join(f"{x:.{p}f}" for x in v))  # noqa: E731
        rows.append({
            "series": series, "description": description,
            "grid": " x ".join(map(str, full.shape)),
            "voxel (mm)": fmt(full.spacing),
            "field of view (mm)": fmt(np.asarray(full.shape) * full.spacing, 0),
            "working grid": " x ".join(map(str, work.shape)),
            "working voxel (mm)": fmt(work.spacing),
        })
    return pd.DataFrame(rows).set_index("series")


# -- measures from the images alone ---------------------------------------------------------
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


def registration_options(method: str) -> dict[str, str]:
    """The keywords of :func:`~breastlib.register.register_method` for ``method``.

    The ConvexAdam methods (MIND and the encoders) take :data:`REGISTRATION` and
    :data:`WEIGHTS`; the classical baselines (:data:`~breastlib.register.baselines.
    BASELINES`) run with their own defaults and accept none of these.
    """
    return {} if method in BASELINES else {**REGISTRATION, "weights": WEIGHTS}


def run_method(fixed: Volume, moving: Volume, method: str) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` with ``method`` and the chapter's settings
    (:func:`registration_options`)."""
    return register_method(fixed, moving, method=method, **registration_options(method))


@dataclass
class Registration:
    """One registration of the chapter and what the images say about it.

    Attributes
    ----------
    fixed
        The fixed volume (working grid).
    moving_before
        The moving image resampled onto the fixed grid through world coordinates only.
    moving_after
        The moving image warped by the registration.
    displacement
        The estimated fixed -> moving field.
    table
        One row per stage (``before``, ``after``): the measures.
    seconds
        Wall-clock seconds of the registration.
    """

    fixed: Volume
    moving_before: Volume
    moving_after: Volume
    displacement: Displacement
    table: pd.DataFrame
    seconds: float


def register_and_measure(fixed: Volume, moving: Volume, breast: np.ndarray, body: np.ndarray,
                         *, method: str = "mind") -> Registration:
    """Register ``moving`` to ``fixed`` and measure before (world coordinates) and after.

    Returns
    -------
    Registration
        Its table has the columns ``NCC (breast)``, ``MIND-SSD (breast)``,
        ``folded (% body)`` and ``|u| p95 (mm, breast)``.
    """
    result = run_method(fixed, moving, method)
    identity = Displacement.identity(fixed.grid)
    rows = {}
    warped = {}
    for stage, disp in (("before", identity), ("after", result.displacement)):
        warped[stage] = disp.warp(moving, device="cpu")
        rows[stage] = {
            "NCC (breast)": ncc(fixed.array, warped[stage].array, breast),
            "MIND-SSD (breast)": mind_ssd(fixed.array, warped[stage].array, breast),
            "folded (% body)": folding_pct(disp, body),
            "|u| p95 (mm, breast)": float(np.percentile(disp.magnitude_mm()[breast], 95)),
        }
    table = pd.DataFrame(rows).T
    table.index.name = f"{method} ({REGISTRATION['profile']})"
    return Registration(fixed, warped["before"], warped["after"], result.displacement,
                        table, result.seconds["total"])


def show_motion_3d(exam: RealExam, motion: Registration, phase: str = "post5", *,
                   max_bytes: int = 2_000_000) -> None:
    """Show a motion correction in NiiVue (:func:`breastlib.viz.niivue.
    show_registration_niivue`): the pre-contrast image, the ``phase`` image before and after
    the registration, and its Jacobian determinant inside the breast mask.

    Parameters
    ----------
    exam
        The exam (:func:`open_exam`).
    motion
        :func:`motion_correction` of the same ``phase``.
    max_bytes
        Budget of the view in the page (bytes).
    """
    from breastlib.viz.niivue import show_registration_niivue

    show_registration_niivue(motion.fixed, exam.dce[phase],
                             {f"{motion.table.index.name}": motion.displacement},
                             mask=exam.breast, max_bytes=max_bytes,
                             title=f"Motion correction of {phase} in 3-D")


def motion_correction(exam: RealExam, phase: str = "post5") -> Registration:
    """Register a post-contrast phase (moving) to the pre-contrast image (fixed) with MIND."""
    return register_and_measure(exam.pre, exam.dce[phase], exam.breast, exam.body)


def t2_to_dce(exam: RealExam) -> Registration:
    """Register the T2 series (moving, its own grid) to the pre-contrast image with MIND."""
    return register_and_measure(exam.pre, exam.t2, exam.breast, exam.body)


# -- a known deformation of the real anatomy ------------------------------------------------
@dataclass
class KnownDeformation:
    """The pre-contrast image warped by a known field and registered back.

    Attributes
    ----------
    moving
        The pre-contrast image deformed: ``moving(x + u_true(x)) = pre(x)``.
    true
        ``u_true``, the fixed -> moving pull-back field on the working grid.
    estimated
        The registration's field.
    table
        Rows ``identity`` (no registration) and the method; columns the dense error
        ``mean``/``p95`` (mm) in the breast mask and folding (% body).
    """

    moving: Volume
    true: Displacement
    estimated: Displacement
    table: pd.DataFrame
    seconds: float


def smooth_deformation(grid: Grid, breast: np.ndarray, *, p95_mm: float = 6.0, seed: int = 0,
                       cell_mm: float = 20.0) -> tuple[Displacement, Displacement]:
    """A smooth random diffeomorphism and its exact inverse on ``grid``.

    A stationary velocity field of band-limited noise (:class:`~breastlib.phantom.noise.
    NoiseLattice`, correlation length about ``2 * cell_mm``, tapered to zero at the edges
    of a lattice 50 mm larger than the grid) is integrated by scaling and squaring
    (:func:`~breastlib.phantom.deformation.integrate`), with a velocity scale chosen so that
    the 95th percentile of ``|u|`` in ``breast`` is ``p95_mm``.

    Returns
    -------
    true : Displacement
        The fixed -> moving pull-back field ``u_true`` on ``grid``.
    inverse : Displacement
        Its inverse (moving -> fixed) on the same grid, to make the moving image:
        ``moving = inverse.warp(fixed)``.
    """
    from breastlib.phantom.deformation import (
        Deformation,
        _edge_taper,
        _lattice,
        integrate,
    )
    from breastlib.phantom.noise import NoiseLattice

    rng = np.random.default_rng(seed)
    spacing = 5.0
    lo, shape, points = _lattice([grid.world_bounds()], spacing)
    hi = lo + (np.asarray(shape) - 1) * spacing
    noise = NoiseLattice.random(rng, lo, hi, cell_mm, 3).sample(points).T
    unit = noise * _edge_taper(points, lo, shape, spacing)[:, None]
    unit = torch.from_numpy(np.ascontiguousarray(unit.T.reshape(3, *shape), np.float32))

    def build(scale: float, inverse: bool = False) -> Deformation:
        v = unit * scale
        back = integrate(-v, spacing) if inverse else torch.zeros_like(v)
        return Deformation(lo, spacing, integrate(v, spacing), back, np.eye(4), "visit",
                           {"velocity_scale": scale})

    def p95(scale: float) -> float:
        field = build(scale).displacement(grid).magnitude_mm()
        return float(np.percentile(field[breast], 95))

    scale = p95_mm / max(p95(1.0), 1e-6)
    scale *= p95_mm / max(p95(scale), 1e-6)  # nearly linear at a few mm: one correction
    deform = build(scale, inverse=True)
    return deform.displacement(grid), deform.inverse_displacement(grid)


def known_deformation(exam: RealExam, *, p95_mm: float = 6.0, seed: int = 0,
                      method: str = "mind") -> KnownDeformation:
    """Warp the pre-contrast image by :func:`smooth_deformation`, register it back.

    Returns
    -------
    KnownDeformation
        Its table holds the dense error ``|u - u_true|`` (mm) in the image-derived breast
        mask for no registration (``identity``: ``|u_true|``) and for ``method``.
    """
    fixed = exam.pre
    true, inverse = smooth_deformation(fixed.grid, exam.breast, p95_mm=p95_mm, seed=seed)
    moving = inverse.warp(fixed, device="cpu")
    result = run_method(fixed, moving, method)
    rows = {}
    for name, disp in (("identity", Displacement.identity(fixed.grid)),
                       (method, result.displacement)):
        error = field_error_stats(disp.millimetres(), true.millimetres(), exam.breast)
        rows[name] = {"dense error mean (mm)": error["mean"], "dense error p95 (mm)": error["p95"],
                      "folded (% body)": folding_pct(disp, exam.body)}
    table = pd.DataFrame(rows).T
    table.index.name = f"p95 |u_true| = {p95_mm:g} mm"
    return KnownDeformation(moving, true, result.displacement, table, result.seconds["total"])


# -- every method of the study, measured without ground truth -------------------------------
#: Every method of the study, in the book's order (baselines, MIND, the encoders).
METHODS: tuple[str, ...] = tuple(BOOK_METHODS)
#: The four experiments of the method tables: name -> what is registered onto what.
EXPERIMENTS = {
    "post1": "DCE phase 1 -> pre-contrast",
    "post5": "DCE phase 5 -> pre-contrast",
    "t2": "T2 -> DCE pre-contrast",
    "known": "pre-contrast warped by a known deformation -> pre-contrast",
}
#: Version of the measures and tables below: bump it whenever one of them changes, so that
#: the numbers cache is recomputed.
MEASURES_VERSION = "1"
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
#: Size (95th percentile of ``|u_true|`` in the breast, mm) and seed of the known deformation.
KNOWN_P95_MM = 6.0
KNOWN_SEED = 0
#: The numbers cache, relative to the book's folder (the chapters run from ``book/``).
CACHE_PATH = Path("data") / "real-exam" / "numbers.json"
#: Columns holding text (every other column of a method table is a number).
TEXT_COLUMNS = ("stage",)


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


def _provenance(result: RegistrationResult) -> dict[str, str | float]:
    return {"stage": result.stage or "-", "seconds": float(result.seconds.get("total", 0.0))}


def method_tables(exam: RealExam, methods: Sequence[str] = METHODS, *,
                  progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Run every method on the four :data:`EXPERIMENTS` and measure it.

    Parameters
    ----------
    exam
        The exam (working grids and masks).
    methods
        Method names (:func:`~breastlib.register.register_method`), run with
        :func:`registration_options`.
    progress
        Called with one line per registration done (e.g. ``print``).

    Returns
    -------
    dict
        Experiment name -> table, one row per method (index ``method``):

        - ``post1``, ``post5``: :func:`dce_measures` (the ``identity`` row is the exam
          before registration);
        - ``t2``: NCC, MIND-SSD, folding and ``|u|`` p95;
        - ``known``: the dense error ``|u - u_true|`` mean and p95 (mm, breast) and
          folding (% body);

        each with the columns ``stage`` (the stage the registration guard kept, ``-`` for
        the baselines) and ``seconds``.
    """
    fixed = exam.pre
    true, inverse = smooth_deformation(fixed.grid, exam.breast, p95_mm=KNOWN_P95_MM,
                                       seed=KNOWN_SEED)
    moving = {"post1": exam.dce["post1"], "post5": exam.dce["post5"], "t2": exam.t2,
              "known": inverse.warp(fixed, device="cpu")}
    regions = {phase: dce_regions(fixed, exam.dce[phase], exam.body, exam.breast)
               for phase in ("post1", "post5")}
    tables = {}
    for experiment in EXPERIMENTS:
        rows = {}
        for method in methods:
            result = run_method(fixed, moving[experiment], method)
            disp = result.displacement
            if experiment == "known":
                error = field_error_stats(disp.millimetres(), true.millimetres(), exam.breast)
                row = {"dense error mean (mm)": error["mean"],
                       "dense error p95 (mm)": error["p95"],
                       "folded (% body)": folding_pct(disp, exam.body)}
            else:
                warped = disp.warp(moving[experiment], device="cpu").array
                if experiment in regions:
                    row = dce_measures(fixed, warped, disp, regions[experiment], exam.body,
                                       exam.breast)
                else:
                    row = {"NCC (breast)": ncc(fixed.array, warped, exam.breast),
                           "MIND-SSD (breast)": mind_ssd(fixed.array, warped, exam.breast),
                           "folded (% body)": folding_pct(disp, exam.body),
                           "|u| p95 (mm, breast)": float(
                               np.percentile(disp.magnitude_mm()[exam.breast], 95))}
            rows[method] = {**row, **_provenance(result)}
            if progress is not None:
                progress(f"{experiment} {method}: {rows[method]['seconds']:.1f} s, "
                         f"stage {rows[method]['stage']}")
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "method"
        tables[experiment] = table
    return tables


# -- the numbers cache ----------------------------------------------------------------------
def cache_key(methods: Sequence[str] = METHODS, *,
              spacing_mm: float = WORK_SPACING_MM) -> dict:
    """Everything the method tables depend on, as a JSON-ready dict.

    The dataset's name, pinned commit and one SHA-256 over its pinned files' checksums
    (:mod:`breastlib.datasets`), the series used, the working grid, the registration
    settings and weights, the methods, breastlib's
    :data:`~breastlib.study.run.RESULTS_VERSION` (bumped when a method's results change),
    :data:`MEASURES_VERSION` and the measures' parameters. It needs no data: the checksums
    come from the registry.
    """
    from breastlib.datasets import get_dataset
    from breastlib.study.run import RESULTS_VERSION

    dataset = get_dataset(DATASET)
    pinned = "".join(f"{f.file} {f.sha256}\n" for f in sorted(dataset.files, key=lambda f: f.file))
    key = {
        "dataset": DATASET,
        "dataset_commit": dataset.commit,
        "files": len(dataset.files),
        "files_sha256": hashlib.sha256(pinned.encode()).hexdigest(),
        "series": {name: series for name, (series, _) in SERIES.items()},
        "work_spacing_mm": float(spacing_mm),
        "crop_margin_mm": CROP_MARGIN_MM,
        "registration": REGISTRATION,
        "weights": WEIGHTS,
        "methods": list(methods),
        "results_version": RESULTS_VERSION,
        "measures_version": MEASURES_VERSION,
        "measures": {"skin_band_mm": SKIN_BAND_MM, "edge_percentile": EDGE_PERCENTILE,
                     "edge_sigma_voxels": EDGE_SIGMA_VOXELS,
                     "enhancement_mads": ENHANCEMENT_MADS, "jacobian_low": JACOBIAN_LOW,
                     "known_p95_mm": KNOWN_P95_MM, "known_seed": KNOWN_SEED},
    }
    return json.loads(json.dumps(key))  # tuples as lists: compares equal to a loaded key


def key_id(key: dict) -> str:
    """A short digest of a cache key (12 hex digits of SHA-256 of its sorted JSON)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _number(value: object) -> object:
    """A table cell for JSON: text as it is, numbers to 6 significant digits, NaN as null."""
    if isinstance(value, str):
        return value
    value = float(value)
    return None if not math.isfinite(value) else float(f"{value:.6g}")


def table_to_json(table: pd.DataFrame) -> dict:
    """A method table as ``{"index", "columns", "data"}`` (rows of cells)."""
    return {"index": [str(i) for i in table.index], "columns": [str(c) for c in table.columns],
            "data": [[_number(v) for v in row] for row in table.itertuples(index=False)]}


def table_from_json(data: dict) -> pd.DataFrame:
    """The inverse of :func:`table_to_json` (null back to NaN, index named ``method``)."""
    columns = {}
    for j, name in enumerate(data["columns"]):
        values = [row[j] for row in data["data"]]
        columns[name] = (values if name in TEXT_COLUMNS
                         else np.array([np.nan if v is None else v for v in values], float))
    table = pd.DataFrame(columns, index=pd.Index(data["index"], name="method"))
    return table


def machine_description() -> str:
    """What the numbers were computed on: OS, architecture, cores, torch and its device."""
    from breastlib.device import resolve_device

    device = str(resolve_device(REGISTRATION["device"]))
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} on {device}")


@dataclass
class ExamNumbers:
    """The method tables and where they come from.

    Attributes
    ----------
    tables
        Experiment name -> table (:func:`method_tables`).
    key
        The :func:`cache_key` they were computed for.
    computed
        ``{"date", "machine", "seconds"}``: when (UTC, ISO 8601), on what and in how long.
    from_cache
        Whether they were read from the cache file (else computed by this call).
    path
        The cache file.
    """

    tables: dict[str, pd.DataFrame]
    key: dict
    computed: dict
    from_cache: bool
    path: Path

    @property
    def key_id(self) -> str:
        """:func:`key_id` of :attr:`key`."""
        return key_id(self.key)

    def provenance(self) -> str:
        """One line: where the numbers come from, when and on what they were computed."""
        where = (f"read from the cache {self.path}" if self.from_cache
                 else f"computed now and written to the cache {self.path}")
        return (f"Numbers {where}: computed on {self.computed.get('date', '?')}, "
                f"{self.computed.get('machine', '?')}, in "
                f"{float(self.computed.get('seconds', float('nan'))) / 60:.0f} min; "
                f"key {self.key_id}.")


def read_numbers(path: str | os.PathLike, key: dict) -> ExamNumbers | None:
    """The cached tables in ``path`` when its key equals ``key``, else ``None`` (also for a
    missing or unreadable file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        tables = {name: table_from_json(table) for name, table in data["tables"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return ExamNumbers(tables, key, data.get("computed", {}), True, path)


def write_numbers(path: str | os.PathLike, tables: dict[str, pd.DataFrame], key: dict,
                  computed: dict) -> Path:
    """Write the tables, their key and provenance to ``path`` as JSON, atomically."""
    data = {"what": "breastlib real-exam chapter: method tables (numbers only, no image)",
            "key_id": key_id(key), "key": key, "computed": computed,
            "tables": {name: table_to_json(table) for name, table in tables.items()}}
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def exam_numbers(exam: RealExam | None, *, path: str | os.PathLike = CACHE_PATH,
                 methods: Sequence[str] = METHODS, spacing_mm: float = WORK_SPACING_MM,
                 progress: Callable[[str], None] | None = None) -> ExamNumbers | None:
    """The method tables: from the cache when its key matches, else computed and cached.

    Parameters
    ----------
    exam
        The exam, loaded at ``spacing_mm``; needed only to compute (``None`` when the data
        is unavailable: the cached tables are still returned when their key matches).
    path
        The cache file (default :data:`CACHE_PATH`, relative to ``book/``).
    methods, spacing_mm
        Part of the key (:func:`cache_key`); ``methods`` are the tables' rows.
    progress
        Passed to :func:`method_tables`.

    Returns
    -------
    ExamNumbers or None
        ``None`` when the cache does not match and there is no exam to compute from.
    """
    key = cache_key(methods, spacing_mm=spacing_mm)
    cached = read_numbers(path, key)
    if cached is not None or exam is None:
        return cached
    start = time.perf_counter()
    tables = method_tables(exam, methods, progress=progress)
    computed = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": machine_description(),
                "seconds": round(time.perf_counter() - start, 1)}
    write_numbers(path, tables, key, computed)
    return ExamNumbers(tables, key, computed, False, Path(path))


def _names(methods: Sequence[str]) -> str:
    return ", ".join(methods) if len(methods) else "none"


def summary(table: pd.DataFrame, experiment: str, *, change: float = 0.05,
            folded_pct: float = 0.1, jacobian_pct: float = 10.0) -> str:
    """What a method table shows, in a few sentences computed from its numbers.

    Parameters
    ----------
    table
        A table of :func:`method_tables` (with an ``identity`` row: the starting point).
    experiment
        Its name in :data:`EXPERIMENTS` (``post1``, ``post5``, ``t2``, ``known``).
    change
        A relative change (e.g. 0.05 = 5 %) from ``identity`` that counts as a change.
    folded_pct
        Folding (% body) above which a method is named as folding.
    jacobian_pct
        Share (%) of the enhancing region whose volume changes by more than
        :data:`JACOBIAN_LOW` above which a method is named as reshaping it.

    Returns
    -------
    str
        Markdown text (one paragraph).
    """
    methods = [m for m in table.index if m != "identity"]
    base = table.loc["identity"] if "identity" in table.index else None
    kept = [m for m in methods if table.loc[m, "stage"] in ("identity", "initial")]
    folds = [m for m in methods if table.loc[m, "folded (% body)"] > folded_pct]
    text = []
    if experiment == "known":
        column = "dense error mean (mm)"
        groups: dict[str, list[str]] = {}
        for method, value in table[column].sort_values(kind="stable").items():
            groups.setdefault(f"{value:.2f}", []).append(method)
        text.append("From best to worst by the mean dense error: " + "; ".join(
            f"{', '.join(names)} ({value} mm)" for value, names in groups.items()) + ".")
        if base is not None:
            worse = [m for m in methods if table.loc[m, column] > base[column]]
            text.append(f"Worse than no registration: {_names(worse)}.")
    elif base is not None:
        def moved(column: str, sign: int) -> list[str]:
            return [m for m in methods
                    if sign * (table.loc[m, column] - base[column]) > change * abs(base[column])]

        if experiment in ("post1", "post5"):
            for column, where in (("skin |post-pre| (%)", "at the skin"),
                                  ("edge |post-pre| (%)", "along the edges")):
                text.append(f"The subtraction artefact {where} ({base[column]:.1f} % before "
                            f"registration) falls by more than {change * 100:g} % with "
                            f"{_names(moved(column, -1))} and rises with "
                            f"{_names(moved(column, +1))}.")
            share = (table[f"J < {JACOBIAN_LOW:g} (% enhancing)"]
                     + table[f"J > {1 / JACOBIAN_LOW:.2f} (% enhancing)"])
            column = "J mean (enhancing)"
            text.append(f"In the enhancing region the mean Jacobian runs from "
                        f"{table[column].min():.2f} to {table[column].max():.2f}; more than "
                        f"{jacobian_pct:g} % of it changes volume by over "
                        f"{(1 - JACOBIAN_LOW) * 100:.0f} % with "
                        f"{_names([m for m in methods if share[m] > jacobian_pct])}.")
        else:
            column = "MIND-SSD (breast)"
            text.append(f"The MIND-SSD falls by more than {change * 100:g} % with "
                        f"{_names(moved(column, -1))} and rises with "
                        f"{_names(moved(column, +1))}.")
    text.append(f"Folding above {folded_pct:g} % of the body: {_names(folds)}.")
    text.append(f"The registration guard kept the starting field (no correction) for: "
                f"{_names(kept)}.")
    return " ".join(text)


# -- figures --------------------------------------------------------------------------------
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
            spacing: np.ndarray, index: int, title: str, panel_size: float = 2.9) -> Figure:
    """Axial slices ``index`` of several ``(X, Y, Z)`` arrays, one titled panel each."""
    shape = rows[0][0][1].shape
    aspect = shape[0] * spacing[0] / (shape[1] * spacing[1])
    ncols = max(len(row) for row in rows)
    figure = Figure(figsize=(panel_size * aspect * ncols + 0.3, panel_size * len(rows) + 0.7),
                    layout="constrained")
    axes = figure.subplots(len(rows), ncols, squeeze=False)
    for r, row in enumerate(rows):
        for c, (name, array, window, colormap) in enumerate(row):
            draw_slice(axes[r, c], array, spacing, view="axial", index=index, window=window,
                       colormap=colormap, title=name)
        for c in range(len(row), ncols):
            axes[r, c].set_axis_off()
    figure.suptitle(f"{title}\nradiological view: patient's right on the left, anterior up",
                    fontsize=10)
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
                   exam.pre.spacing, breast_slice(exam.breast), "DCE motion correction")


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
    grey = _window(exam.pre.array, exam.body)
    true = known.true.magnitude_mm()
    error = np.linalg.norm(known.estimated.millimetres() - known.true.millimetres(), axis=0)
    scale = (0.0, float(np.percentile(true[exam.breast], 99)))
    inside = np.where(exam.breast, 1.0, np.nan)
    return _panels([[("pre-contrast (fixed)", exam.pre.array, grey, "gray"),
                     ("deformed (moving)", known.moving.array, grey, "gray"),
                     ("|u_true| in the breast (mm)", true * inside, scale, "magma"),
                     ("|u - u_true| after MIND (mm)", error * inside, scale, "magma")]],
                   exam.pre.spacing, breast_slice(exam.breast),
                   f"known deformation; colour scale 0-{scale[1]:.1f} mm")


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
                   exam.pre.spacing, index,
                   f"where the DCE measures look (axial slice {index + 1})")
