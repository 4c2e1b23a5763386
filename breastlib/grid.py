"""Voxel grids: the geometry shared by volumes, label maps and displacement fields.

Conventions (see book/conventions.md, "Coordinates and orientation"): arrays are held
internally as ``(X, Y, Z)`` in the closest canonical RAS+ orientation, so the last axis
runs inferior -> superior and axial slices are ``array[..., k]``. A :class:`Grid`
remembers the file's own affine so that every file breastlib writes uses the original
voxel order and affine; the canonical reordering is an internal detail that is undone on
save.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

_RAS = nib.orientations.axcodes2ornt(("R", "A", "S"))
# LPS <-> RAS flip of world coordinates (ITK, ANTs and DICOM work in LPS).
LPS_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Grid:
    """A 3-D voxel grid in canonical RAS+ order plus the file layout it came from.

    Parameters
    ----------
    shape
        ``(X, Y, Z)`` voxel counts in canonical order.
    affine
        4x4 matrix mapping canonical voxel indices to RAS world millimetres.
    file_affine
        4x4 affine of the file's own voxel order (what is written back on save).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    file_affine: np.ndarray

    @classmethod
    def from_file_affine(cls, file_shape: tuple[int, ...], file_affine: np.ndarray) -> Grid:
        """Build the canonical grid for an array stored with ``file_affine``."""
        file_affine = np.asarray(file_affine, dtype=np.float64)
        ornt = nib.orientations.io_orientation(file_affine)
        canonical_affine = file_affine @ nib.orientations.inv_ornt_aff(ornt, file_shape[:3])
        shape = tuple(int(file_shape[int(ax)]) for ax in np.argsort(ornt[:, 0]))
        return cls(shape=shape, affine=canonical_affine, file_affine=file_affine)

    # -- geometry -------------------------------------------------------------------
    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along the canonical axes, in mm, shape ``(3,)``."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        """Unit direction cosines (columns) in RAS, shape ``(3, 3)``."""
        return self.affine[:3, :3] / self.spacing

    @property
    def file_ornt(self) -> np.ndarray:
        return nib.orientations.io_orientation(self.file_affine)

    @property
    def file_shape(self) -> tuple[int, int, int]:
        ornt = self.file_ornt
        return tuple(self.shape[int(ornt[i, 0])] for i in range(3))

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` canonical voxel indices to ``(N, 3)`` RAS millimetres."""
        index = np.asarray(index, dtype=np.float64)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` RAS millimetres to ``(N, 3)`` canonical voxel indices."""
        points = np.asarray(points, dtype=np.float64)
        inverse = np.linalg.inv(self.affine)
        return points @ inverse[:3, :3].T + inverse[:3, 3]

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned RAS bounding box ``(lo, hi)`` of the voxel centres, in mm."""
        corners = np.array(
            [[i, j, k] for i in (0, self.shape[0] - 1) for j in (0, self.shape[1] - 1)
             for k in (0, self.shape[2] - 1)],
            dtype=np.float64,
        )
        world = self.index_to_world(corners)
        return world.min(axis=0), world.max(axis=0)

    def same_as(self, other: Grid, *, atol: float = 1e-4) -> bool:
        """True when both grids have the same shape and (canonical) affine."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=atol)
        )

    def overlaps(self, other: Grid) -> bool:
        """True when the world bounding boxes of the two grids intersect."""
        lo_a, hi_a = self.world_bounds()
        lo_b, hi_b = other.world_bounds()
        return bool(np.all(lo_a <= hi_b) and np.all(lo_b <= hi_a))

    # -- file order <-> canonical order ---------------------------------------------
    def from_file_order(self, array: np.ndarray) -> np.ndarray:
        """Reorder an array stored in file order ``(I, J, K, ...)`` to canonical order."""
        return nib.orientations.apply_orientation(array, self.file_ornt)

    def to_file_order(self, array: np.ndarray) -> np.ndarray:
        """Reorder a canonical ``(X, Y, Z, ...)`` array back to the file's voxel order."""
        back = nib.orientations.ornt_transform(_RAS, self.file_ornt)
        return nib.orientations.apply_orientation(array, back)

    def canonical_to_file_vectors(self) -> np.ndarray:
        """Matrix taking vectors in canonical voxel units to file voxel units, ``(3, 3)``."""
        return np.linalg.inv(self.file_affine[:3, :3]) @ self.affine[:3, :3]
