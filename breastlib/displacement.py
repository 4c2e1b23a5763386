"""Dense displacement fields on the fixed image's grid.

Convention (see book/conventions.md, "The displacement convention" and "File formats"):
a pull-back field ``u`` from fixed to moving, ``warped(x) = moving(x + u(x))``, with ``u``
in voxels of the fixed (canonical) grid.
Millimetres are always derived through the affine, never assumed isotropic.

On disk, a displacement is a 5-D NIfTI ``(X, Y, Z, 1, 3)`` on the fixed *file's* grid,
intent code 1007 (vector), float64 components in LPS millimetres: exactly what
``SimpleITK.WriteImage`` writes for a ``sitkVectorFloat64`` image, so SimpleITK, ITK,
ANTs and 3D Slicer apply it as it is. The Learn2Reg interchange format is
``[3, X, Y, Z]`` float16 in voxels of the fixed file's array axes, in an ``.npz``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from breastlib._atomic import atomic_path
from breastlib._nifti import save_nifti
from breastlib._sampling import sample_field_at_points, sample_volume
from breastlib.errors import InputError
from breastlib.grid import LPS_FLIP, Grid
from breastlib.volume import Volume

# Voxels per slab of :meth:`Displacement.jacobian_determinant` (about 50 MB of float64
# derivatives at a time).
_JACOBIAN_SLAB_VOXELS = 500_000

NIFTI_INTENT_VECTOR = 1007
#: A field folds when more than this percentage of the body has a non-positive Jacobian
#: determinant (used by the verdict on results and by the registration guard).
FOLDING_LIMIT_PCT = 1.0


@dataclass(frozen=True, eq=False)
class Displacement:
    """A fixed -> moving pull-back displacement field.

    Parameters
    ----------
    field
        ``(3, X, Y, Z)`` float32, in voxels of the fixed canonical grid.
    grid
        The fixed image's grid.
    """

    field: np.ndarray
    grid: Grid

    def __post_init__(self) -> None:
        if self.field.shape != (3, *self.grid.shape):
            raise InputError(
                f"displacement shape {self.field.shape} does not match grid {self.grid.shape}"
            )
        if not np.isfinite(self.field).all():
            raise InputError("displacement field holds NaN/Inf values")

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def identity(cls, grid: Grid) -> Displacement:
        """The zero field on ``grid``."""
        return cls(np.zeros((3, *grid.shape), dtype=np.float32), grid)

    @classmethod
    def from_millimetres(cls, field_mm: np.ndarray, grid: Grid) -> Displacement:
        """Build from a ``(3, X, Y, Z)`` field of RAS millimetre vectors."""
        to_voxels = np.linalg.inv(grid.affine[:3, :3])
        field = np.einsum("ij,j...->i...", to_voxels, field_mm)
        return cls(field.astype(np.float32), grid)

    @classmethod
    def from_world_affine(cls, matrix: np.ndarray, grid: Grid) -> Displacement:
        """The field of an affine map ``p -> matrix @ p`` from fixed to moving world (RAS)."""
        index_map = np.linalg.inv(grid.affine) @ np.asarray(matrix) @ grid.affine
        return cls(_affine_step(index_map, grid.shape).astype(np.float32), grid)

    # -- geometry -------------------------------------------------------------------
    def millimetres(self) -> np.ndarray:
        """The field as RAS millimetre vectors, ``(3, X, Y, Z)`` float32."""
        return np.einsum("ij,j...->i...", self.grid.affine[:3, :3], self.field).astype(
            np.float32
        )

    def magnitude_mm(self) -> np.ndarray:
        """``|u|`` in millimetres, ``(X, Y, Z)``."""
        return np.linalg.norm(self.millimetres(), axis=0)

    def then_affine(self, matrix: np.ndarray) -> Displacement:
        """Compose with a world affine applied *after* the field.

        The result maps ``x -> A_f^-1 M A_f (x + u(x))``: use it to add an initial
        alignment ``M`` (fixed world -> moving world, RAS mm) to a field that was
        estimated against the moving image already resampled through ``M``.
        """
        index_map = np.linalg.inv(self.grid.affine) @ np.asarray(matrix) @ self.grid.affine
        # L (i + u) + t - i = L u + ((L - I) i + t): no grid of indices is built.
        mapped = np.einsum("ij,j...->i...", index_map[:3, :3], self.field.astype(np.float64))
        mapped += _affine_step(index_map, self.grid.shape)
        return Displacement(mapped.astype(np.float32), self.grid)

    def coverage(self, moving: Grid) -> np.ndarray:
        """Where the moving image has data for the warped image: fixed voxels ``x`` whose
        pull-back position ``x + u(x)`` lies inside ``moving``'s voxels (within half a
        voxel of its outermost centres, where nearest-neighbour sampling still finds one).

        Two acquisitions on their own grids rarely cover the same part of the body; outside
        this mask the warped image is padding, not tissue, so label overlap is compared
        inside it.

        Returns
        -------
        numpy.ndarray
            ``(X, Y, Z)`` bool on this field's (the fixed) grid.
        """
        index_map = np.linalg.inv(moving.affine) @ self.grid.affine
        upper = np.asarray(moving.shape, dtype=np.float64) - 0.5
        out = np.empty(self.grid.shape, dtype=bool)
        ys, zs = np.meshgrid(np.arange(self.grid.shape[1]), np.arange(self.grid.shape[2]),
                             indexing="ij")
        for x in range(self.grid.shape[0]):  # one sagittal slab at a time: bounded memory
            index = np.stack([np.full(ys.shape, x, dtype=np.float64), ys, zs])
            index = index + self.field[:, x].astype(np.float64)
            mapped = np.einsum("ij,j...->i...", index_map[:3, :3], index)
            mapped += index_map[:3, 3].reshape(3, 1, 1)
            out[x] = np.all((mapped >= -0.5) & (mapped <= upper.reshape(3, 1, 1)), axis=0)
        return out

    # -- applying the field ---------------------------------------------------------
    def warp(self, moving: Volume, *, mode: str = "linear", device: str = "auto") -> Volume:
        """Resample ``moving`` onto the fixed grid through the field.

        Parameters
        ----------
        moving
            Any grid; it is reached through world coordinates.
        mode
            ``"linear"`` for images, ``"nearest"`` for label maps.
        """
        index_map = np.linalg.inv(moving.affine) @ self.grid.affine
        out = sample_volume(
            moving.array, index_map, self.grid.shape, displacement=self.field,
            mode=mode, device=device,
        )
        return Volume(out, self.grid)

    def warp_labels(self, labels: Volume, *, device: str = "auto") -> Volume:
        """Warp an integer label map with nearest-neighbour interpolation."""
        return self.warp(labels, mode="nearest", device=device)

    def to_moving(self, points_fixed: np.ndarray) -> np.ndarray:
        """Map fixed-image points to the moving image: ``p -> p + u(p)``.

        Parameters
        ----------
        points_fixed
            ``(N, 3)`` RAS millimetres in the fixed image.

        Returns
        -------
        numpy.ndarray
            ``(N, 3)`` RAS millimetres in the moving image.
        """
        points = _as_points(points_fixed)
        index = self.grid.world_to_index(points)
        u = sample_field_at_points(self.field, index)
        return self.grid.index_to_world(index + u)

    def to_fixed(
        self, points_moving: np.ndarray, *, iterations: int = 50, tol_mm: float = 1e-4
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map moving-image points back to the fixed image by fixed-point iteration.

        Solves ``x + u(x) = y`` for each moving point ``y``.

        Returns
        -------
        points : numpy.ndarray
            ``(N, 3)`` RAS millimetres in the fixed image.
        residual_mm : numpy.ndarray
            ``(N,)`` distance ``|x + u(x) - y|`` in mm left after the last iteration.
        """
        target = self.grid.world_to_index(_as_points(points_moving))
        spacing = self.grid.spacing
        x = target.copy()
        for _ in range(iterations):
            x = target - sample_field_at_points(self.field, x)
            residual = x + sample_field_at_points(self.field, x) - target
            if np.max(np.linalg.norm(residual * spacing, axis=1), initial=0.0) < tol_mm:
                break
        residual = x + sample_field_at_points(self.field, x) - target
        residual_mm = np.linalg.norm(residual @ self.grid.affine[:3, :3].T, axis=1)
        return self.grid.index_to_world(x), residual_mm

    def jacobian_determinant(self) -> np.ndarray:
        """``det(I + du/dx)`` of the world-space map, ``(X, Y, Z)`` float32.

        With ``u`` in voxel units, the world Jacobian is ``A (I + du/di) A^-1``, whose
        determinant equals ``det(I + du/di)``: spacing and direction cancel exactly, so
        this honours the direction matrix by construction. Central differences inside,
        one-sided at the borders (as ``numpy.gradient``), in float64.

        Computed in slabs along the first axis, each with a one-voxel margin, so that a
        512 x 512 x 160 field needs tens of megabytes beside its result rather than the
        nine gigabytes of nine whole float64 derivatives and their products; every voxel
        gets the same arithmetic, so the result does not depend on the slabs.
        """
        shape = self.grid.shape
        out = np.empty(shape, dtype=np.float32)
        rows = max(1, _JACOBIAN_SLAB_VOXELS // (shape[1] * shape[2]))
        for x0 in range(0, shape[0], rows):
            x1 = min(shape[0], x0 + rows)
            lo, hi = max(x0 - 1, 0), min(x1 + 1, shape[0])
            inner = slice(x0 - lo, x1 - lo)
            # j[c][a] = delta_ca + du_c / di_a on the slab
            j = [[g[inner] for g in np.gradient(self.field[c, lo:hi].astype(np.float64))]
                 for c in range(3)]
            for c in range(3):
                j[c][c] += 1.0
            out[x0:x1] = (
                j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
                - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
                + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
            )
        return out

    # -- files ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the displacement NIfTI (5-D, intent 1007, LPS mm, float64).

        The format is described in book/conventions.md, "File formats".
        """
        path = Path(path)
        lps = np.einsum("ij,j...->i...", LPS_FLIP[:3, :3], self.millimetres().astype(np.float64))
        data = self.grid.to_file_order(np.moveaxis(lps, 0, -1))  # (I, J, K, 3)
        data = np.ascontiguousarray(data[:, :, :, None, :])
        image = nib.Nifti1Image(data, self.grid.file_affine)
        header = image.header
        header.set_intent(NIFTI_INTENT_VECTOR, (), name="")
        header.set_xyzt_units("mm", "sec")
        image.set_qform(self.grid.file_affine, code=1)
        image.set_sform(self.grid.file_affine, code=1)
        return save_nifti(image, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Displacement:
        """Read a displacement NIfTI written by breastlib, SimpleITK or ITK (LPS mm)."""
        path = Path(path)
        if not path.exists():
            raise InputError("file not found", path)
        try:
            image = nib.load(str(path))
            data = np.asarray(image.dataobj, dtype=np.float64)
        except Exception as exc:
            raise InputError(f"cannot read displacement NIfTI ({exc})", path) from exc
        if data.ndim == 4 and data.shape[-1] == 3:
            data = data[:, :, :, None, :]
        if data.ndim != 5 or data.shape[3] != 1 or data.shape[4] != 3:
            raise InputError(
                f"not a displacement field: expected shape (X, Y, Z, 1, 3), got {data.shape}",
                path,
            )
        intent = int(image.header["intent_code"])
        if intent not in (NIFTI_INTENT_VECTOR, 0):
            raise InputError(
                f"unsupported intent code {intent}: breastlib reads intent 1007 (vector, LPS "
                "millimetres) as written by SimpleITK/ITK",
                path,
            )
        grid = Grid.from_file_affine(data.shape[:3], image.affine)
        canonical = grid.from_file_order(data[:, :, :, 0, :])  # (X, Y, Z, 3) LPS mm
        ras = np.einsum("ij,...j->i...", LPS_FLIP[:3, :3], canonical)
        return cls.from_millimetres(ras, grid)

    def save_learn2reg(self, path: str | os.PathLike) -> Path:
        """Write Learn2Reg ``.npz``: ``[3, I, J, K]`` float16 voxels of the file's axes."""
        to_file = self.grid.canonical_to_file_vectors()
        vectors = np.einsum("ij,j...->i...", to_file, self.field.astype(np.float64))
        spatial = self.grid.to_file_order(np.moveaxis(vectors, 0, -1))
        array = np.moveaxis(spatial, -1, 0).astype(np.float16)
        with atomic_path(Path(path)) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, np.ascontiguousarray(array))
        return Path(path)

    @classmethod
    def load_learn2reg(cls, path: str | os.PathLike, fixed: Grid | Volume) -> Displacement:
        """Read a Learn2Reg ``.npz`` for the given fixed image (its file's axes)."""
        grid = fixed.grid if isinstance(fixed, Volume) else fixed
        path = Path(path)
        try:
            with np.load(path) as archive:
                array = archive[archive.files[0]].astype(np.float64)
        except Exception as exc:
            raise InputError(f"cannot read Learn2Reg displacement ({exc})", path) from exc
        if array.shape != (3, *grid.file_shape):
            raise InputError(
                f"Learn2Reg field shape {array.shape} does not match the fixed image "
                f"{(3, *grid.file_shape)}",
                path,
            )
        return cls.from_file_voxels(array, grid)

    @classmethod
    def from_file_voxels(cls, array: np.ndarray, fixed: Grid | Volume) -> Displacement:
        """A pull-back field given in voxels of the fixed *file's* array axes, the layout of
        Learn2Reg files and of the ``convexadam`` package's output.

        Parameters
        ----------
        array
            ``(3, I, J, K)``: component ``c`` is the displacement along the file's array
            axis ``c``, in voxels, sampled at the fixed file's voxels ``(I, J, K)``.
        fixed
            The fixed image (or its grid) whose file the axes refer to.
        """
        grid = fixed.grid if isinstance(fixed, Volume) else fixed
        array = np.asarray(array, dtype=np.float64)
        if array.shape != (3, *grid.file_shape):
            raise InputError(f"field shape {array.shape} does not match the fixed file's "
                             f"{(3, *grid.file_shape)} (components first, voxels of the file)")
        spatial = grid.from_file_order(np.moveaxis(array, 0, -1))
        to_canonical = np.linalg.inv(grid.canonical_to_file_vectors())
        field = np.einsum("ij,...j->i...", to_canonical, spatial)
        return cls(field.astype(np.float32), grid)


def _affine_step(index_map: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``(3, X, Y, Z)`` float64 ``(L - I) i + t`` at every voxel index ``i``, for the 4x4
    voxel map ``i -> L i + t``: each index axis broadcast, no grid of indices built."""
    step = np.asarray(index_map, dtype=np.float64)[:3, :3] - np.eye(3)
    axes = [np.arange(s, dtype=np.float64) for s in shape]
    out = np.empty((3, *shape))
    for c in range(3):
        out[c] = index_map[c, 3]
        out[c] += step[c, 0] * axes[0][:, None, None]
        out[c] += step[c, 1] * axes[1][None, :, None]
        out[c] += step[c, 2] * axes[2][None, None, :]
    return out


def _as_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"points must have shape (N, 3), got {points.shape}")
    if not np.isfinite(points).all():
        raise InputError("points hold NaN/Inf coordinates")
    return points
