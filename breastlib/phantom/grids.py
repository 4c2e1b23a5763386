"""Per-image MRI grids as clinical visits have them (the ``visit_grids`` switch).

Two visits on different days, or two series of one visit, are never acquired on the
same grid: the technologist sets the field of view around the patient, the protocol's
matrix and slice spacing vary a little between series and sites, and the patient lies a
little differently in the coil. :func:`draw_mri_grid` draws such a grid per image with
the voxel order and affine convention of :func:`~breastlib.phantom.acquisition.mri_grid`
(LPS voxel order: i -> patient left, j -> posterior, k -> superior).

Ranges (module constants below) follow typical bilateral axial breast DCE protocols
(3-D spoiled gradient echo, EUSOBI/ACR recommendations: in-plane <= 1 mm, slices
<= 2.5 mm, bilateral field of view of about 32-37 cm): ``full`` draws clinical voxel
sizes; ``small`` keeps the same fields of view with about 3.5x coarser voxels so that
an image stays near 128 x 128 x 64 for CI.
"""

from __future__ import annotations

import numpy as np

from breastlib.grid import Grid
from breastlib.phantom.acquisition import MRI_FOV_HI, MRI_FOV_LO, _check_size

#: In-plane field of view (mm), square, drawn uniformly per image.
FOV_INPLANE_MM = (320.0, 370.0)
#: Superior-inferior coverage (mm) of the slab, drawn uniformly per image.
FOV_SI_MM = (140.0, 180.0)
#: Largest offset (mm) of the field-of-view centre from the body model's box centre,
#: per axis (patient placement and the technologist's centring).
CENTRE_OFFSET_MM = 10.0
#: Largest in-plane tilt (degrees) about the S-I axis (patient rotation in the coil).
TILT_DEG = 2.0
#: Ranges of the in-plane voxel size and the slice spacing (mm) per phantom size.
VOXEL_MM: dict[str, dict[str, tuple[float, float]]] = {
    "small": {"inplane": (2.4, 3.0), "slice": (2.2, 3.5)},
    "full": {"inplane": (0.6, 0.9), "slice": (1.0, 2.0)},
}
#: Effective slice thickness (FWHM of the slice profile) over the slice spacing: a 3-D
#: slab's profile is widened by the apodisation of partial-Fourier slice encoding.
SLICE_THICKNESS_FACTOR = 1.2

#: Centre (RAS mm) of the box of :func:`~breastlib.phantom.acquisition.mri_grid`.
BODY_BOX_CENTRE = 0.5 * (MRI_FOV_LO + MRI_FOV_HI)


def _draw_shape_and_spacing(size: str, rng: np.random.Generator
                            ) -> tuple[tuple[int, int, int], np.ndarray]:
    """Voxel counts ``(nx, ny, nz)`` and exact spacing ``(3,)`` mm of a drawn protocol.

    The field of view is drawn first and the matrix rounded so that the voxel size is
    the field of view over the matrix, as on a scanner.
    """
    fov_xy = rng.uniform(*FOV_INPLANE_MM)
    fov_z = rng.uniform(*FOV_SI_MM)
    inplane = rng.uniform(*VOXEL_MM[size]["inplane"])
    dz = rng.uniform(*VOXEL_MM[size]["slice"])
    n_xy = max(1, round(fov_xy / inplane))
    nz = max(1, round(fov_z / dz))
    shape = (n_xy, n_xy, nz)
    spacing = np.array([fov_xy / n_xy, fov_xy / n_xy, fov_z / nz])
    return shape, spacing


def _rotation_z(angle_rad: float) -> np.ndarray:
    """``(3, 3)`` rotation about the S-I (z) axis."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def lps_affine(shape: tuple[int, int, int], spacing: np.ndarray, centre: np.ndarray,
               tilt_rad: float = 0.0) -> np.ndarray:
    """File affine ``(4, 4)`` of an LPS-ordered grid centred on ``centre``.

    Parameters
    ----------
    shape
        File voxel counts ``(ni, nj, nk)``.
    spacing
        ``(3,)`` voxel size in mm along i, j, k.
    centre
        ``(3,)`` RAS mm position of the grid's centre (the middle of the field of view).
    tilt_rad
        Rotation of the in-plane axes about the S-I axis, radians.

    Returns
    -------
    numpy.ndarray
        ``(4, 4)`` float64 mapping file indices to RAS mm; i runs towards patient left
        (-x), j towards posterior (-y), k towards superior (+z), as in ``mri_grid``.
    """
    affine = np.eye(4)
    affine[:3, :3] = _rotation_z(tilt_rad) @ np.diag([-spacing[0], -spacing[1], spacing[2]])
    middle = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    affine[:3, 3] = np.asarray(centre, dtype=np.float64) - affine[:3, :3] @ middle
    return affine


def draw_mri_grid(size: str, rng: np.random.Generator) -> Grid:
    """A prone axial MRI grid as one clinical acquisition would have it, drawn per image.

    Parameters
    ----------
    size
        ``"small"`` (in-plane 2.4-3.0 mm, slices 2.2-3.5 mm: about 107-154 x 107-154 x
        40-82 voxels) or ``"full"`` (in-plane 0.6-0.9 mm, slices 1.0-2.0 mm).
    rng
        Source of the draw; the same generator state gives the same grid.

    Returns
    -------
    Grid
        Canonical ``(X, Y, Z)`` grid in LPS file order; field of view
        :data:`FOV_INPLANE_MM` (square) by :data:`FOV_SI_MM`, centred within
        :data:`CENTRE_OFFSET_MM` of the body model's box centre, tilted by at most
        :data:`TILT_DEG` about S-I.
    """
    _check_size(size)
    shape, spacing = _draw_shape_and_spacing(size, rng)
    centre = BODY_BOX_CENTRE + rng.uniform(-CENTRE_OFFSET_MM, CENTRE_OFFSET_MM, 3)
    tilt = np.deg2rad(rng.uniform(-TILT_DEG, TILT_DEG))
    return Grid.from_file_affine(shape, lps_affine(shape, spacing, centre, tilt))


def slice_thickness_for(grid: Grid) -> float:
    """Slice profile FWHM (mm) of an acquisition on ``grid``.

    :data:`SLICE_THICKNESS_FACTOR` times the S-I spacing; pass it as
    ``Acquisition.slice_thickness_mm`` to blur along z accordingly.
    """
    return float(SLICE_THICKNESS_FACTOR * grid.spacing[2])
