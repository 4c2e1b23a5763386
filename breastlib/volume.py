"""Volumes: a float32 array on a :class:`~breastlib.grid.Grid`, with file IO.

NIfTI files are read with nibabel; DICOM series (a folder) and other ITK formats
(``.nrrd``, ``.mha``, ``.mhd``) with SimpleITK, whose LPS geometry is converted to RAS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from breastlib._nifti import save_nifti
from breastlib.errors import InputError
from breastlib.grid import LPS_FLIP, Grid

NanPolicy = Literal["error", "zero"]


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image in canonical RAS+ voxel order.

    Parameters
    ----------
    array
        ``(X, Y, Z)`` voxel values (float32 for images, integers for label maps).
    grid
        The voxel grid: canonical affine plus the file layout to write back to.
    """

    array: np.ndarray
    grid: Grid

    def __post_init__(self) -> None:
        if self.array.shape != self.grid.shape:
            raise InputError(
                f"array shape {self.array.shape} does not match grid shape {self.grid.shape}"
            )

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def from_array(
        cls, array: np.ndarray, affine: np.ndarray, *, dtype: np.dtype | None = np.float32
    ) -> Volume:
        """Wrap an array given in *file* order with its file affine (RAS, mm)."""
        array = np.asarray(array)
        _check_array(array, source=None)
        grid = Grid.from_file_affine(array.shape, affine)
        canonical = grid.from_file_order(array)
        if dtype is not None:
            canonical = canonical.astype(dtype, copy=False)
        return cls(np.ascontiguousarray(canonical), grid)

    def with_array(self, array: np.ndarray) -> Volume:
        """A new volume on the same grid holding ``array`` (canonical order)."""
        return Volume(np.ascontiguousarray(array), self.grid)

    # -- geometry -------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """Canonical voxel -> RAS mm affine, ``(4, 4)``."""
        return self.grid.affine

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along the canonical axes, ``(3,)``."""
        return self.grid.spacing

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.shape

    def resample_to(self, target: Grid | Volume, *, mode: str = "linear") -> Volume:
        """Resample onto another grid through world coordinates (outside -> 0).

        Parameters
        ----------
        target
            The grid (or a volume whose grid) to resample onto.
        mode
            ``"linear"`` for intensities, ``"nearest"`` for label maps.
        """
        from breastlib._sampling import sample_volume

        grid = target.grid if isinstance(target, Volume) else target
        index_map = np.linalg.inv(self.affine) @ grid.affine
        out = sample_volume(self.array, index_map, grid.shape, mode=mode)
        return Volume(out, grid)

    # -- IO -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, dtype: np.dtype | None = None) -> Path:
        """Write as NIfTI on the file's own grid and affine (atomically)."""
        path = Path(path)
        data = self.grid.to_file_order(self.array)
        if dtype is not None:
            data = data.astype(dtype)
        image = nib.Nifti1Image(np.ascontiguousarray(data), self.grid.file_affine)
        image.header.set_xyzt_units("mm", "sec")
        image.set_qform(self.grid.file_affine, code=1)
        image.set_sform(self.grid.file_affine, code=1)
        return save_nifti(image, path)


def load_volume(
    path: str | os.PathLike,
    *,
    volume_index: int | None = None,
    nan: NanPolicy = "error",
    labels: bool = False,
) -> Volume:
    """Load a 3-D image from NIfTI, a DICOM series folder or another ITK format.

    Parameters
    ----------
    path
        A ``.nii``/``.nii.gz`` file, a folder holding one DICOM series, or any file
        SimpleITK reads (``.nrrd``, ``.mha``, ...).
    volume_index
        For 4-D input (e.g. DCE phases), which volume along the 4th axis to take.
    nan
        ``"error"`` rejects NaN/Inf voxels; ``"zero"`` replaces them by 0.
    labels
        Keep integer label values (rounded, ``int32``) instead of float32 intensities.

    Raises
    ------
    InputError
        Missing, unreadable or corrupt file; 2-D input; zero-size axes; 4-D input
        without ``volume_index``; NaN/Inf voxels with ``nan="error"``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir() or not _is_nifti(path):
        data, affine = _read_with_sitk(path)
    else:
        data, affine = _read_nifti(path)
    data = _select_volume(data, volume_index, path)
    _check_array(data, source=path)
    finite = np.isfinite(data)
    if not finite.all():
        if nan == "zero":
            data = np.where(finite, data, 0)
        else:
            raise InputError(
                f"{int((~finite).sum())} NaN/Inf voxels (use --nan zero to replace them by 0)",
                path,
            )
    if labels:
        if not np.allclose(data, np.round(data)):
            raise InputError("label map holds non-integer values", path)
        return Volume.from_array(np.round(data).astype(np.int32), affine, dtype=None)
    return Volume.from_array(data, affine)


def _is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"cannot read NIfTI file ({type(exc).__name__}: {exc})", path) from exc
    return data, np.asarray(image.affine, dtype=np.float64)


def _read_with_sitk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            files = reader.GetGDCMSeriesFileNames(str(path))
            if not files:
                raise InputError("folder holds no DICOM series", path)
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read image ({str(exc).strip().splitlines()[-1]})", path) from exc
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("vector images are not volumes (is this a displacement field?)", path)
    return sitk_to_array_affine(image)


def sitk_to_array_affine(image) -> tuple[np.ndarray, np.ndarray]:
    """Convert a SimpleITK image to a file-order ``(I, J, K)`` array and a RAS affine."""
    import SimpleITK as sitk

    dim = image.GetDimension()
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    array = np.transpose(array, tuple(range(array.ndim))[::-1])  # (K,J,I) -> (I,J,K)
    if dim < 3:
        return array, np.eye(4)
    spacing = np.array(image.GetSpacing()[:3])
    direction = np.array(image.GetDirection()).reshape(dim, dim)[:3, :3]
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = image.GetOrigin()[:3]
    return array, LPS_FLIP @ lps


def volume_to_sitk(volume: Volume):
    """The volume as a SimpleITK image on its canonical grid (LPS geometry)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array.transpose(2, 1, 0)))
    lps = LPS_FLIP @ volume.affine
    spacing = volume.spacing
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
    image.SetDirection(tuple(float(d) for d in (lps[:3, :3] / spacing).ravel()))
    return image


def _select_volume(data: np.ndarray, volume_index: int | None, path: Path) -> np.ndarray:
    # Trailing singleton axes (e.g. (X, Y, Z, 1)) are harmless.
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        if volume_index is None:
            raise InputError(
                f"4-D image with {data.shape[3]} volumes: choose one with --volume-index",
                path,
            )
        if not -data.shape[3] <= volume_index < data.shape[3]:
            raise InputError(
                f"--volume-index {volume_index} out of range for {data.shape[3]} volumes", path
            )
        return data[..., volume_index]
    if volume_index not in (None, 0):
        raise InputError("--volume-index given but the image is not 4-D", path)
    return data


def _check_array(array: np.ndarray, *, source: Path | None) -> None:
    if array.ndim != 3:
        raise InputError(f"expected a 3-D image, got {array.ndim}-D shape {array.shape}", source)
    if 0 in array.shape:
        raise InputError(f"image has a zero-size axis, shape {array.shape}", source)
    if min(array.shape) < 2:
        raise InputError(f"expected a 3-D image, got a single slice of shape {array.shape}", source)
