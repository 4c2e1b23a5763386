"""Small synthetic test volumes with known geometry (for tests and quick demos).

The realistic breast MRI cohort lives in :mod:`breastlib.phantom`; these are textured
blobs whose only job is to make geometry errors visible.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from breastlib.volume import Volume


def oblique_affine(
    spacing: tuple[float, float, float] = (2.0, 2.0, 3.0),
    *,
    angle_deg: float = 0.0,
    lps: bool = False,
    permute: tuple[int, int, int] = (0, 1, 2),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """A file affine with given spacing, in-plane rotation, storage order and origin.

    Parameters
    ----------
    spacing
        Voxel size of the file's axes in mm.
    angle_deg
        Rotation about the superior axis (oblique direction cosines).
    lps
        Store the first two axes flipped (as DICOM-derived files often are).
    permute
        Which world axis each file axis runs along, e.g. ``(1, 2, 0)`` for a sagittal
        stack.
    origin
        World position of voxel (0, 0, 0), RAS mm.
    """
    theta = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0.0],
                         [np.sin(theta), np.cos(theta), 0.0],
                         [0.0, 0.0, 1.0]])
    axes = np.eye(3)[:, list(permute)]
    if lps:
        axes = np.diag([-1.0, -1.0, 1.0]) @ axes
    affine = np.eye(4)
    affine[:3, :3] = rotation @ axes @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def textured_blob(world_points: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Evaluate a smooth textured ellipsoid (in world mm) at ``(..., 3)`` RAS points.

    Defined analytically in world space, so the same anatomy can be sampled on any grid.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-40, 40, size=(24, 3)) * np.array([1.0, 1.0, 0.6])
    widths = rng.uniform(6, 14, size=24)
    amplitudes = rng.uniform(0.5, 1.5, size=24) * rng.choice([-1, 1], size=24)
    p = np.asarray(world_points, dtype=np.float64)
    radius = (p[..., 0] / 70) ** 2 + (p[..., 1] / 60) ** 2 + (p[..., 2] / 45) ** 2
    body = expit((1.0 - radius) * 12.0)
    texture = np.zeros(p.shape[:-1])
    for c, w, a in zip(centres, widths, amplitudes, strict=True):
        texture += a * np.exp(-((p - c) ** 2).sum(-1) / (2 * w**2))
    return (body * (2.0 + texture)).astype(np.float32)


def blob_volume(
    shape: tuple[int, int, int], affine: np.ndarray, *, shift_mm: np.ndarray | None = None,
    seed: int = 0, noise: float = 0.0,
) -> Volume:
    """Sample :func:`textured_blob` on a grid; ``shift_mm`` moves the anatomy by +shift.

    A moving image made with ``shift_mm = s`` relates to a fixed one by the pull-back
    field ``u = s`` (fixed point ``p`` shows the same tissue as moving point ``p + s``).
    """
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    if shift_mm is not None:
        world = world - np.asarray(shift_mm)
    data = textured_blob(world, seed=seed)
    if noise:
        rng = np.random.default_rng(seed + 1)
        data = data + noise * ndi.gaussian_filter(rng.standard_normal(shape), 0.7)
    return Volume.from_array(data.astype(np.float32), affine)


def centred_affine(
    shape: tuple[int, int, int], centre_mm: tuple[float, float, float] = (12.0, -30.0, 7.0),
    **kwargs: object,
) -> np.ndarray:
    """Like :func:`oblique_affine`, with the origin chosen so the grid centre is ``centre_mm``."""
    affine = oblique_affine(**kwargs)  # type: ignore[arg-type]
    affine[:3, 3] = np.asarray(centre_mm) - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return affine
