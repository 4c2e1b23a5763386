"""Small synthetic test volumes with known geometry (for tests and quick demos).

The realistic breast MRI cohort lives in :mod:`breastlib.phantom`; these are textured
blobs whose only job is to make geometry errors visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.special import expit

from breastlib.displacement import Displacement
from breastlib.volume import Volume, load_volume


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


#: The tiny cohort: grid shape, the rigid shift (RAS mm) of each pair and label names.
TINY_SHAPE = (32, 32, 24)
TINY_SHIFTS = {"tiny_000": np.array([4.0, -3.0, 5.0]), "tiny_001": np.array([-5.0, 2.0, 3.0])}
TINY_LABELS = {"background": 0, "fat": 1, "fgt": 2, "pectoralis": 8}


def _tiny_labels(world: np.ndarray) -> np.ndarray:
    """Tissue labels of the blob anatomy at ``(..., 3)`` RAS mm points."""
    radius = (world[..., 0] / 70) ** 2 + (world[..., 1] / 60) ** 2 + (world[..., 2] / 45) ** 2
    labels = np.where(radius < 1.0, TINY_LABELS["fat"], 0)
    fgt = np.linalg.norm(world - np.array([10.0, 5.0, 0.0]), axis=-1) < 18.0
    labels[fgt & (radius < 1.0)] = TINY_LABELS["fgt"]
    labels[(world[..., 1] < -25.0) & (radius < 1.0)] = TINY_LABELS["pectoralis"]
    return labels.astype(np.int16)


def write_tiny_cohort(
    root: Path, shifts: dict[str, np.ndarray] = TINY_SHIFTS, task: str = "longitudinal"
) -> Path:
    """A cohort in the phantom's manifest format: blob pairs whose moving image is the
    fixed one shifted by ``shifts[pair_id]`` (mm), with label maps, landmarks, the true
    field (the constant shift) and ``labels.json``, on an oblique LPS grid of
    :data:`TINY_SHAPE` voxels. Returns the ``manifest.csv``."""
    affine = centred_affine(TINY_SHAPE, centre_mm=(0.0, 0.0, 0.0), spacing=(3.0, 3.0, 4.0),
                            angle_deg=17.0, lps=True)
    index = np.stack(np.meshgrid(*[np.arange(n) for n in TINY_SHAPE], indexing="ij"), axis=-1)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    rows = []
    for number, (pair_id, shift) in enumerate(shifts.items()):
        folder = root / pair_id
        folder.mkdir(parents=True)
        blob_volume(TINY_SHAPE, affine, seed=number).save(folder / "fixed.nii.gz")
        blob_volume(TINY_SHAPE, affine, shift_mm=shift, seed=number).save(
            folder / "moving.nii.gz")
        Volume.from_array(_tiny_labels(world), affine).save(folder / "fixed_labels.nii.gz",
                                                            dtype=np.int16)
        Volume.from_array(_tiny_labels(world - shift), affine).save(
            folder / "moving_labels.nii.gz", dtype=np.int16)
        rng = np.random.default_rng(number)
        fixed_points = rng.uniform(-20.0, 20.0, size=(12, 3))
        for name, points in (("fixed", fixed_points), ("moving", fixed_points + shift)):
            table = pd.DataFrame(points, columns=["x", "y", "z"]).assign(kind="blob")
            table.to_csv(folder / f"{name}_landmarks.csv", index=False)
        fixed_grid = load_volume(folder / "fixed.nii.gz").grid
        truth_mm = np.broadcast_to(np.asarray(shift, float).reshape(3, 1, 1, 1),
                                   (3, *fixed_grid.shape))
        truth = Displacement.from_millimetres(truth_mm, fixed_grid)
        truth.save(folder / "gt_displacement.nii.gz")
        rows.append({"task": task, "pair_id": pair_id,
                     "gt_displacement": f"{pair_id}/gt_displacement.nii.gz"})
        for side in ("fixed", "moving"):
            rows[-1] |= {f"{side}_image": f"{pair_id}/{side}.nii.gz",
                         f"{side}_labels": f"{pair_id}/{side}_labels.nii.gz",
                         f"{side}_landmarks": f"{pair_id}/{side}_landmarks.csv"}
    (root / "labels.json").write_text(json.dumps(TINY_LABELS))
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


#: Label names of :func:`breast_blocks` (duct and lesion are named but never drawn).
BLOCK_NAMES = {"background": 0, "fat": 1, "fgt": 2, "duct": 3, "lesion": 7, "pectoralis": 8,
               "chest_wall": 10}


def breast_blocks(shift: int = 0) -> np.ndarray:
    """A ``(20, 12, 12)`` label map of boxes with hand-countable overlaps: a 10^3 breast
    (fat around a 4^3 FGT cube) at x = 2..11, a 4-voxel pectoralis slab and a 2-voxel
    chest wall behind it (x = 12..15 and 16..17), all moved ``shift`` voxels along x."""
    labels = np.zeros((20, 12, 12), np.int16)
    s = shift
    labels[2 + s:12 + s, 1:11, 1:11] = BLOCK_NAMES["fat"]
    labels[4 + s:8 + s, 4:8, 4:8] = BLOCK_NAMES["fgt"]
    labels[12 + s:16 + s, 1:11, 1:11] = BLOCK_NAMES["pectoralis"]
    labels[16 + s:18 + s, 1:11, 1:11] = BLOCK_NAMES["chest_wall"]
    return labels
