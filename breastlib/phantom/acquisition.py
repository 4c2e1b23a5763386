"""Image grids and acquisition effects: partial volume, slice profile, bias field, noise.

Geometry: prone axial bilateral acquisitions. The MRI field of view is 340 (R-L) x
340 (A-P) x 160 (S-I) mm, stored in the voxel order DICOM-to-NIfTI converters commonly
produce without reorientation (i -> patient left, j -> posterior, k -> superior; an
"LPS" layout); the CT of the cross-modality task has its own, larger field of view on a
RAS-ordered grid. The canonical (RAS) reordering is done by :class:`~breastlib.grid.Grid`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from breastlib.grid import Grid
from breastlib.phantom.labels import N_LABELS
from breastlib.phantom.noise import NoiseLattice

SIZES = ("small", "full")

# Field of view (mm) of the MRI: x (R-L), y (A-P), z (S-I), centred on the body model.
MRI_FOV_LO = np.array([-170.0, -190.0, -80.0])
MRI_FOV_HI = np.array([170.0, 150.0, 80.0])


@dataclass(frozen=True)
class Acquisition:
    """Acquisition effects applied to one image (each with its own parameter).

    Parameters
    ----------
    supersample
        Sub-samples per voxel along each axis for partial volume (rendered finer, then
        averaged down).
    bias_amplitude
        Standard deviation of the log of the smooth multiplicative bias field.
    coil_gradient
        Extra log-gain from posterior to anterior (breast coils sit under the breasts).
    noise
        Rician noise sigma as a fraction of fat signal on T1 (MRI), or HU (CT).
    slice_thickness_mm
        Slice profile FWHM along z; ``None`` means equal to the slice spacing.
    """

    supersample: int = 2
    bias_amplitude: float = 0.12
    coil_gradient: float = 0.35
    noise: float = 0.02
    slice_thickness_mm: float | None = None


def _check_size(size: str) -> None:
    if size not in SIZES:
        from breastlib.errors import BreastlibError

        raise BreastlibError(f"size must be 'small' or 'full', not {size!r}")


def mri_grid(size: str) -> Grid:
    """The prone axial MRI grid: ``small`` 128x128x64 (2.66x2.66x2.5 mm) or ``full``
    448x448x106 (0.76x0.76x1.5 mm), in LPS voxel order."""
    _check_size(size)
    shape = (128, 128, 64) if size == "small" else (448, 448, 106)
    extent = MRI_FOV_HI - MRI_FOV_LO
    spacing = extent / np.array(shape)
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-spacing[0], -spacing[1], spacing[2]])
    # Voxel (0, 0, 0) is the right-anterior-inferior corner's voxel centre.
    affine[:3, 3] = [MRI_FOV_HI[0] - spacing[0] / 2, MRI_FOV_HI[1] - spacing[1] / 2,
                     MRI_FOV_LO[2] + spacing[2] / 2]
    return Grid.from_file_affine(shape, affine)


def ct_grid(size: str) -> Grid:
    """The CT grid of the cross-modality task: a larger field of view (400 x 370 x
    168 mm), RAS voxel order, ``small`` 3 mm isotropic or ``full`` 1 x 1 x 2 mm."""
    _check_size(size)
    spacing = np.array([3.0, 3.0, 3.0]) if size == "small" else np.array([1.0, 1.0, 2.0])
    lo = np.array([-200.0, -215.0, -84.0])
    extent = np.array([400.0, 370.0, 168.0])
    shape = tuple(round(e / s) for e, s in zip(extent, spacing, strict=True))
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = lo + spacing / 2
    return Grid.from_file_affine(shape, affine)


def grid_points(grid: Grid, z_slices: slice | None = None) -> np.ndarray:
    """Voxel centres of ``grid`` (canonical order) as ``(N, 3)`` RAS mm, float32."""
    zs = range(grid.shape[2])[z_slices or slice(None)]
    idx = np.stack(np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]),
                               np.asarray(list(zs)), indexing="ij"), axis=-1).reshape(-1, 3)
    return grid.index_to_world(idx).astype(np.float32)


def _fine_points(grid: Grid, z0: int, z1: int, f: int) -> np.ndarray:
    """World positions of the ``f**3`` sub-samples of slices ``z0:z1``, ``(N, 3)`` float32.

    Built axis by axis (``world = A[:, 0] i + A[:, 1] j + A[:, 2] k + t``) to avoid a
    float64 index array of every sub-sample.
    """
    offsets = (np.arange(f) + 0.5) / f - 0.5
    axes = [
        (np.arange(grid.shape[0])[:, None] + offsets).ravel(),
        (np.arange(grid.shape[1])[:, None] + offsets).ravel(),
        (np.arange(z0, z1)[:, None] + offsets).ravel(),
    ]
    a = grid.affine
    shape = tuple(len(ax) for ax in axes)
    out = np.empty((*shape, 3), dtype=np.float32)
    for c in range(3):
        out[..., c] = (
            (a[c, 0] * axes[0] + a[c, 3]).astype(np.float32)[:, None, None]
            + (a[c, 1] * axes[1]).astype(np.float32)[None, :, None]
            + (a[c, 2] * axes[2]).astype(np.float32)[None, None, :]
        )
    return out.reshape(-1, 3)


def _block_mean(values: np.ndarray, shape: tuple[int, int, int], f: int) -> np.ndarray:
    x, y, z = shape
    return values.reshape(x, f, y, f, z, f).mean(axis=(1, 3, 5), dtype=np.float32)


def _block_mode(labels: np.ndarray, shape: tuple[int, int, int], f: int) -> np.ndarray:
    """Most frequent label of each ``f**3`` block (ties: the lower label value)."""
    x, y, z = shape
    if f == 1:
        return labels.reshape(x, y, z)
    voxel = np.arange(x * y * z, dtype=np.int64).reshape(x, 1, y, 1, z, 1)
    voxel = np.broadcast_to(voxel, (x, f, y, f, z, f)).ravel()
    counts = np.bincount(voxel * N_LABELS + labels, minlength=x * y * z * N_LABELS)
    return counts.reshape(x, y, z, N_LABELS).argmax(axis=-1).astype(np.uint8)


def render_on_grid(
    grid: Grid,
    draw: Callable[[np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]],
    shade: Callable[[str, np.ndarray, dict[str, np.ndarray]], np.ndarray],
    contrasts: tuple[str, ...],
    *,
    supersample: int = 2,
    warp: Callable[[np.ndarray], np.ndarray] | None = None,
    image_fields: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
    slab_voxels: int = 600_000,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw a label map and noise-free images on ``grid`` with partial volume.

    Parameters
    ----------
    grid
        Output grid (canonical ``(X, Y, Z)``).
    draw
        ``points (N, 3) mm -> (labels (N,), aux)``, e.g. ``Anatomy.render``.
    shade
        ``(contrast, labels, aux) -> (N,) intensities``.
    contrasts
        Which contrasts to shade.
    supersample
        ``f``: each voxel is the mean of ``f**3`` sub-samples; the label is their mode.
    warp
        Maps image-space points to the tissue (reference) space before drawing: the
        moving image's ``y -> phi^-1(y)``.
    image_fields
        ``points (N, 3) mm -> {name: (N,)}``: fields of the acquisition rather than of the
        tissue (e.g. the fat-suppression quality), evaluated at the image-space points
        before ``warp`` and added to ``aux`` for ``shade``.

    Returns
    -------
    labels : numpy.ndarray
        ``(X, Y, Z)`` uint8.
    images : dict of numpy.ndarray
        ``{contrast: (X, Y, Z) float32}``.
    """
    f = int(supersample)
    nx, ny, nz = grid.shape
    labels = np.zeros(grid.shape, dtype=np.uint8)
    images = {c: np.zeros(grid.shape, dtype=np.float32) for c in contrasts}
    step = max(1, slab_voxels // (nx * ny))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        pts = _fine_points(grid, z0, z1, f)
        fields = image_fields(pts) if image_fields is not None else {}
        if warp is not None:
            pts = warp(pts).astype(np.float32)
        lab, aux = draw(pts)
        aux = {**aux, **fields} if fields else aux
        shape = (nx, ny, z1 - z0)
        labels[:, :, z0:z1] = _block_mode(lab, shape, f)
        for c in contrasts:
            images[c][:, :, z0:z1] = _block_mean(shade(c, lab, aux), shape, f)
    return labels, images


def slice_profile(image: np.ndarray, grid: Grid, thickness_mm: float | None) -> np.ndarray:
    """Blur along z so the slice profile has FWHM ``thickness_mm`` (no-op if <= spacing)."""
    dz = float(grid.spacing[2])
    if thickness_mm is None or thickness_mm <= dz:
        return image
    sigma = np.sqrt(thickness_mm ** 2 - dz ** 2) / 2.355 / dz
    return gaussian_filter1d(image, sigma, axis=2, mode="nearest")


def bias_field(grid: Grid, rng: np.random.Generator, amplitude: float,
               coil_gradient: float) -> np.ndarray:
    """Smooth multiplicative bias ``(X, Y, Z)`` float32 (mean about 1) in the image frame."""
    lo, hi = grid.world_bounds()
    lattice = NoiseLattice.random(rng, lo - 60.0, hi + 60.0, 45.0)
    pts = grid_points(grid)
    log_gain = amplitude * lattice.sample(pts)[0]
    span = max(float(hi[1] - lo[1]), 1.0)
    log_gain += coil_gradient * ((pts[:, 1] - lo[1]) / span - 0.5)
    return np.exp(log_gain).reshape(grid.shape).astype(np.float32)


def rician(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` (Rician)."""
    real = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    imag = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def acquire(image: np.ndarray, grid: Grid, contrast: str, acq: Acquisition,
            rng: np.random.Generator, *, bias: np.ndarray | None = None) -> np.ndarray:
    """Apply slice profile, bias field and noise to a noise-free image.

    ``bias`` reuses a session's bias field (series of one session share the coil).

    MRI: slice profile, smooth bias (log-normal plus coil gradient), Rician noise with
    ``sigma = acq.noise * 1000``. CT: slice profile and Gaussian noise of ``acq.noise`` HU
    (use e.g. 12 HU), no bias.
    """
    out = slice_profile(image, grid, acq.slice_thickness_mm)
    if contrast == "ct":
        noise = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(acq.noise)
        return (out + noise).astype(np.float32)
    if bias is None:
        bias = bias_field(grid, rng, acq.bias_amplitude, acq.coil_gradient)
    out = out * bias
    return rician(out, rng, acq.noise * 1000.0)
