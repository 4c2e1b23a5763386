"""The exam and the chapter's working grids: fetching, reading, resampling and cropping.

Arrays are canonical RAS+ ``(X, Y, Z)`` (see :mod:`breastlib.grid`). Which grid the chapter
works on depends on the book's build (``BREASTLIB_BOOK_BUILD``, :func:`exam_build`): the
``small`` build smooths and resamples every series to :data:`WORK_SPACING_MM` voxels so that
it runs on a 2-core CPU in minutes; the ``full`` build keeps every series' own voxels.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from breastlib.evaluate.image_masks import body_mask, breast_mask_from_image
from breastlib.grid import Grid
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
#: Voxel size (mm) of the working grid of the DCE series in the ``small`` build.
WORK_SPACING_MM = 3.0
#: Margin (mm) kept around the breast mask when cropping: the chest wall and the skin.
CROP_MARGIN_MM = 30.0


@dataclass(frozen=True)
class ExamBuild:
    """How the chapter runs in one build of the book.

    Attributes
    ----------
    name
        The book build (:data:`breastlib.booktools.data.BUILDS`): ``small`` or ``full``.
    spacing_mm
        Voxel size (mm) of the DCE working grid; 0 keeps each series' own voxels.
    profile
        ConvexAdam profile of MIND and the encoders (the build's own).
    cache_path
        The numbers cache, relative to ``book/`` (one file per build, so that a ``full``
        build never overwrites the committed ``small`` numbers).
    """

    name: str
    spacing_mm: float
    profile: str
    cache_path: Path


def exam_build() -> ExamBuild:
    """The chapter's settings for the book build chosen by ``BREASTLIB_BOOK_BUILD``.

    Raises
    ------
    ValueError
        For an unknown build (see :func:`breastlib.booktools.data.current_build`).
    """
    from breastlib.booktools.data import current_build

    build = current_build()
    folder = Path("data") / "real-exam"
    if build.name == "small":
        return ExamBuild("small", WORK_SPACING_MM, build.profile, folder / "numbers.json")
    return ExamBuild(build.name, 0.0, build.profile, folder / f"numbers-{build.name}.json")


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
        already as coarse keeps its own (0 keeps every axis: the volume is returned as it
        is).

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
    if np.all(factor == 1.0):
        return volume
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
    pre_whole: Volume | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pre(self) -> Volume:
        """The pre-contrast volume on the working grid (every registration's fixed image)."""
        return self.dce["pre"]




def load_exam(folder: str | os.PathLike, *, spacing_mm: float | None = None) -> RealExam:
    """Read the four series, resample them to the working grids and derive the masks.

    Parameters
    ----------
    folder
        The dataset folder (one DICOM folder per series, see :data:`SERIES`).
    spacing_mm
        Voxel size (mm) of the DCE working grid (0: every series' own voxels); the T2
        series is resampled to it where its voxels are finer. Default: the build's
        (:func:`exam_build`).

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
    spacing_mm = exam_build().spacing_mm if spacing_mm is None else spacing_mm
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
        t2_breast=breast_mask_from_image(coarse["t2"], t2_body), pre_whole=coarse["pre"],
        seconds={"load": time.perf_counter() - start},
    )


def open_exam(mirror: str | os.PathLike | None = None, *, spacing_mm: float | None = None,
              retries: int = 3) -> RealExam | None:
    """Fetch and load the exam, or print :func:`unavailable_message` and return ``None``.

    Never raises for missing data (no network, no mirror, an incomplete cache): the
    chapter then skips its remaining cells. ``spacing_mm``: see :func:`load_exam`.
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

