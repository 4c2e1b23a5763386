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
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from scipy import ndimage as ndi

from breastlib.displacement import Displacement
from breastlib.encoders.mind import mind_ssc
from breastlib.evaluate.image_masks import body_mask, breast_mask_from_image
from breastlib.evaluate.metrics import field_error_stats, jacobian_stats
from breastlib.grid import Grid
from breastlib.intensity import normalise_intensity
from breastlib.register import register_method
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
    result = register_method(fixed, moving, method=method, **REGISTRATION)
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
    result = register_method(fixed, moving, method=method, **REGISTRATION)
    rows = {}
    for name, disp in (("identity", Displacement.identity(fixed.grid)),
                       (method, result.displacement)):
        error = field_error_stats(disp.millimetres(), true.millimetres(), exam.breast)
        rows[name] = {"dense error mean (mm)": error["mean"], "dense error p95 (mm)": error["p95"],
                      "folded (% body)": folding_pct(disp, exam.body)}
    table = pd.DataFrame(rows).T
    table.index.name = f"p95 |u_true| = {p95_mm:g} mm"
    return KnownDeformation(moving, true, result.displacement, table, result.seconds["total"])


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
