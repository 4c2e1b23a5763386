"""Ground-truth deformations: stationary velocity fields integrated by scaling and squaring.

A smooth velocity field ``v`` (mm) on a world-aligned lattice is integrated to the
diffeomorphism ``phi = exp(v)`` and its exact inverse ``psi = exp(-v)`` (Arsigny et al.,
MICCAI 2006). The fixed -> moving map is ``y = A(phi(x))`` with a rigid ``A`` (patient
repositioning) applied after the soft-tissue deformation; its inverse is
``x = psi(A^-1 y)``. Both are sampled from the lattice at any point, so the pull-back
field on the fixed grid, its inverse on the moving grid and the moving image's sample
positions all come from one transform.

Regimes (see book/conventions.md, "Phantom physics"):

``visit``
    rigid (translation 2-8 mm, rotation up to 5 degrees) plus a smooth deformation whose
    95th percentile in the breast is 5-15 mm and which vanishes at the chest wall.
``position``
    prone -> supine-like: the breasts flatten towards the chest wall and spread
    laterally (anisotropic), 95th percentile of the total motion 15-30 mm.
``static``
    sequence-only: a sub-millimetre rigid shift, no deformation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from breastlib.displacement import Displacement
from breastlib.grid import Grid
from breastlib.phantom.noise import NoiseLattice, sample_grid
from breastlib.phantom.shapes import rotation_matrix, smoothstep

REGIMES = ("visit", "position", "static")
_SQUARINGS = 7


class Chest(Protocol):
    """What a deformation needs to know of a body: where its chest wall is.

    The frame is the phantom's: RAS mm with the chest surface's midline at ``x = 0``, the
    chest surface itself through ``y = 0`` there (anterior ``+y``), the breasts near
    ``x = +-95`` and the middle of the breasts at ``z = 0``. :class:`~breastlib.phantom.
    anatomy.Anatomy` is one; :class:`FlatChest` is the simplest other.
    """

    @property
    def subcut(self) -> float:
        """Depth (mm) of the pectoralis under the chest surface: the deformation vanishes
        there."""
        ...

    def torso_sdf(self, p: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of ``(N, 3)`` points to the chest surface, positive in
        front of it."""
        ...


@dataclass(frozen=True)
class FlatChest:
    """A chest surface that is the plane ``y = 0`` (anterior ``+y``), for a body known only
    from an image, with the pectoralis ``subcut`` mm behind it (see :class:`Chest`)."""

    subcut: float

    def torso_sdf(self, p: np.ndarray) -> np.ndarray:
        """``y``: the signed distance to the plane ``y = 0``, ``(N,)`` mm."""
        return np.asarray(p)[:, 1]


@dataclass(frozen=True, eq=False)
class Deformation:
    """A fixed -> moving world transform with its inverse (RAS mm).

    Attributes
    ----------
    lo, spacing
        Lattice origin ``(3,)`` and spacing (mm).
    forward, inverse
        ``(3, X, Y, Z)`` displacements (mm) of ``phi = exp(v)`` and ``psi = exp(-v)``.
    rigid
        ``(4, 4)`` world matrix ``A`` applied after ``phi``.
    regime
        ``"visit"``, ``"position"`` or ``"static"``.
    info
        Drawn parameters and measured magnitudes (mm, degrees).
    """

    lo: np.ndarray
    spacing: float
    forward: torch.Tensor
    inverse: torch.Tensor
    rigid: np.ndarray
    regime: str
    info: dict

    def soft_to_moving(self, points: np.ndarray) -> np.ndarray:
        """``phi(x)``: the soft-tissue deformation alone, ``(N, 3)`` mm."""
        return points + sample_grid(self.forward, self.lo, self.spacing, points).T

    def to_moving(self, points: np.ndarray) -> np.ndarray:
        """``y = A(phi(x))`` for ``(N, 3)`` fixed-space points (mm)."""
        soft = self.soft_to_moving(np.asarray(points, dtype=np.float32)).astype(np.float64)
        return soft @ self.rigid[:3, :3].T + self.rigid[:3, 3]

    def to_fixed(self, points: np.ndarray) -> np.ndarray:
        """``x = psi(A^-1 y)`` for ``(N, 3)`` moving-space points (mm)."""
        inv = np.linalg.inv(self.rigid)
        back = (np.asarray(points, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3])
        back = back.astype(np.float32)
        return (back + sample_grid(self.inverse, self.lo, self.spacing, back).T).astype(
            np.float64)

    def displacement(self, fixed: Grid) -> Displacement:
        """The pull-back field fixed -> moving on the fixed grid (breastlib convention)."""
        return _field(fixed, self.to_moving)

    def inverse_displacement(self, moving: Grid) -> Displacement:
        """The field moving -> fixed on the moving grid."""
        return _field(moving, self.to_fixed)


def _field(grid: Grid, mapping) -> Displacement:
    from breastlib.phantom.acquisition import grid_points

    field = np.empty((3, *grid.shape), dtype=np.float32)
    nz = grid.shape[2]
    step = max(1, 2_000_000 // (grid.shape[0] * grid.shape[1]))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        pts = grid_points(grid, slice(z0, z1)).astype(np.float64)
        u = (mapping(pts) - pts).T.reshape(3, grid.shape[0], grid.shape[1], z1 - z0)
        field[:, :, :, z0:z1] = u
    return Displacement.from_millimetres(field, grid)


def integrate(velocity: torch.Tensor, spacing: float, steps: int = _SQUARINGS) -> torch.Tensor:
    """Scaling and squaring: ``exp(v)`` as a displacement, both ``(3, X, Y, Z)`` mm.

    Parameters
    ----------
    velocity
        Stationary velocity (mm) on a lattice of ``spacing`` mm; should vanish at the
        lattice border (the border value is repeated outside).
    steps
        Number of squarings (``v`` is divided by ``2**steps`` first).
    """
    shape = velocity.shape[1:]
    disp = velocity.to(torch.float64) / (2.0 ** steps) / spacing  # lattice voxels
    axes = [torch.arange(s, dtype=torch.float64) for s in shape]
    ident = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    size = torch.tensor([s - 1 for s in shape], dtype=torch.float64)
    for _ in range(steps):
        pos = ident + disp.permute(1, 2, 3, 0)
        grid = (2.0 * pos / size - 1.0).flip(-1)[None]
        sampled = F.grid_sample(disp[None], grid, mode="bilinear", padding_mode="border",
                                align_corners=True)[0]
        disp = disp + sampled
    return (disp * spacing).to(torch.float32)


def _lattice(bounds: list[tuple[np.ndarray, np.ndarray]], spacing: float
             ) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    lo = np.min([b[0] for b in bounds], axis=0) - 50.0
    hi = np.max([b[1] for b in bounds], axis=0) + 50.0
    shape = tuple(int(np.ceil((h - low) / spacing)) + 1 for low, h in zip(lo, hi, strict=True))
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    pts = (lo + idx.reshape(-1, 3) * spacing).astype(np.float32)
    return lo, shape, pts


def _edge_taper(pts: np.ndarray, lo: np.ndarray, shape: tuple[int, int, int],
                spacing: float) -> np.ndarray:
    hi = lo + (np.array(shape) - 1) * spacing
    dist = np.minimum(pts - lo, hi - pts).min(axis=1)
    return smoothstep(5.0, 40.0, dist)


def draw_deformation(
    anatomy: Chest,
    regime: str,
    rng: np.random.Generator,
    fixed: Grid,
    moving: Grid,
    breast_points: np.ndarray,
    *,
    spacing: float = 5.0,
) -> Deformation:
    """Draw and calibrate a deformation of one regime for a subject.

    Parameters
    ----------
    anatomy
        The subject's :class:`Chest` (an :class:`~breastlib.phantom.anatomy.Anatomy` or a
        :class:`FlatChest`); the deformation vanishes at its chest wall.
    regime
        ``"visit"``, ``"position"`` or ``"static"``.
    rng
        Seeded generator (every random choice comes from it).
    fixed, moving
        The two image grids (the lattice covers both with a 50 mm margin).
    breast_points
        ``(N, 3)`` mm points of the fixed breast mask, where magnitudes are measured
        (95th percentile of ``|u|``).
    spacing
        Lattice spacing (mm).
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, not {regime!r}")
    subcut = anatomy.subcut
    lo, shape, pts = _lattice([fixed.world_bounds(), moving.world_bounds()], spacing)
    centre = np.array([0.0, -subcut - 20.0, 0.0])
    info: dict = {"regime": regime}

    def rigid(angle_deg: float, shift_mm: float) -> np.ndarray:
        axis = rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        rot = _axis_angle(axis, np.deg2rad(angle_deg))
        mat = np.eye(4)
        mat[:3, :3] = rot
        mat[:3, 3] = centre - rot @ centre + shift_mm * direction
        info.update(rotation_deg=float(angle_deg), translation_mm=float(shift_mm))
        return mat

    zero = torch.zeros((3, *shape), dtype=torch.float32)
    if regime == "static":
        mat = rigid(0.0, rng.uniform(0.1, 0.5))
        deform = Deformation(lo, spacing, zero, zero, mat, regime, info)
        info.update(deformation_p95_mm=0.0, magnitude_mm=_p95(deform, breast_points))
        return deform

    # Weight: 0 at and behind the pectoralis, 1 from 25 mm in front of the chest surface.
    weight = smoothstep(-subcut, 25.0 - subcut, anatomy.torso_sdf(pts))
    weight *= _edge_taper(pts, lo, shape, spacing)
    noise = NoiseLattice.random(rng, lo, lo + (np.array(shape) - 1) * spacing, 22.0, 3)
    smooth = noise.sample(pts).T  # (N, 3) unit variance
    side = np.tanh(pts[:, 0] / 30.0)[:, None]
    if regime == "visit":
        mat = rigid(rng.uniform(0.5, 5.0), rng.uniform(2.0, 8.0))
        shift_r, shift_l = rng.standard_normal(3), rng.standard_normal(3)
        bulk = 0.5 * (1 + side) * shift_r + 0.5 * (1 - side) * shift_l
        base = smooth + 0.8 * bulk
        target = rng.uniform(5.0, 15.0)
        info["deformation_target_mm"] = float(target)
    else:
        mat = rigid(rng.uniform(0.0, 3.0), rng.uniform(0.0, 5.0))
        # Prone -> supine-like: flatten along A-P towards the chest, spread laterally,
        # slide laterally and a little superiorly (anisotropic).
        front = np.maximum(pts[:, 1] + subcut, 0.0)
        base = np.zeros_like(smooth)
        base[:, 1] = -0.35 * front
        base[:, 0] = 0.12 * pts[:, 0] * smoothstep(60.0, 0.0, np.abs(np.abs(pts[:, 0]) - 95.0))
        base[:, 0] += side[:, 0] * rng.uniform(8.0, 16.0)
        base[:, 2] = rng.uniform(2.0, 8.0) + 0.08 * pts[:, 2]
        base += 3.0 * smooth
        target = rng.uniform(15.0, 30.0)
        info["total_target_mm"] = float(target)
    base = base * weight[:, None]
    v_unit = torch.from_numpy(np.ascontiguousarray(base.T.reshape(3, *shape), np.float32))

    def build(scale: float) -> Deformation:
        fwd = integrate(v_unit * scale, spacing)
        return Deformation(lo, spacing, fwd, zero, mat, regime, info)

    # Calibrate the velocity scale by secant steps on the measured 95th percentile.
    measure = _soft_p95 if regime == "visit" else _p95
    scale, value = 1.0, measure(build(1.0), breast_points)
    prev_scale, prev_value = 0.0, 0.0 if regime == "visit" else _p95(
        Deformation(lo, spacing, zero, zero, mat, regime, info), breast_points)
    for _ in range(4):
        if abs(value - target) < 0.02 * target:
            break
        slope = (value - prev_value) / (scale - prev_scale)
        new = scale + (target - value) / max(slope, 1e-6)
        prev_scale, prev_value = scale, value
        scale = float(np.clip(new, 0.05 * scale, 20.0 * scale))
        value = measure(build(scale), breast_points)
    v = v_unit * scale
    deform = Deformation(lo, spacing, integrate(v, spacing), integrate(-v, spacing), mat,
                         regime, info)
    info.update(deformation_p95_mm=_soft_p95(deform, breast_points),
                magnitude_mm=_p95(deform, breast_points), velocity_scale=scale)
    return deform


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _p95(deform: Deformation, points: np.ndarray) -> float:
    moved = deform.to_moving(points)
    return float(np.percentile(np.linalg.norm(moved - points, axis=1), 95))


def _soft_p95(deform: Deformation, points: np.ndarray) -> float:
    moved = deform.soft_to_moving(points.astype(np.float32))
    return float(np.percentile(np.linalg.norm(moved - points, axis=1), 95))


__all__ = ["REGIMES", "Deformation", "draw_deformation", "integrate", "rotation_matrix"]
