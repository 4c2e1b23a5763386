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

Realism switches of :func:`draw_deformation` (all off: the original phantom, bit for bit;
see :class:`~breastlib.phantom.realism.Realism`): ``multiscale`` adds 11 and 5.5 mm
scales to the 22 mm velocity noise, ``sliding`` a tangential slide of the tissue in front
of the pectoralis (a shear layer a few millimetres thick, nothing moves behind it) and
``shape_change`` a per-breast medio-lateral compression with the matching A-P stretch.
All are terms of the one stationary velocity, so the inverse stays exact.
"""

from __future__ import annotations

from collections.abc import Callable
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
#: Thickness (mm) of the layer in front of the pectoralis over which ``sliding`` rises.
SLIDING_LAYER_MM = 8.0
# Lattice spacing (mm) when a realism switch needs finer detail than the 5 mm default.
_FINE_SPACING = 3.5
# (lattice cell mm, amplitude relative to the 22 mm component) of the ``multiscale`` part.
_FINE_SCALES = ((11.0, 0.5), (5.5, 0.25))


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
    spacing: float | None = None,
    multiscale: bool = False,
    sliding: bool = False,
    shape_change: bool = False,
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
        Seeded generator (every random choice comes from it). The realism switches draw
        one extra number from it, after all other draws, and only when one is on.
    fixed, moving
        The two image grids (the lattice covers both with a 50 mm margin).
    breast_points
        ``(N, 3)`` mm points of the fixed breast mask, where magnitudes are measured
        (95th percentile of ``|u|``); split by the sign of ``x`` they also locate the two
        breasts for ``sliding`` and ``shape_change``.
    spacing
        Lattice spacing (mm); ``None``: 5 mm, or 3.5 mm when ``multiscale`` or ``sliding``
        is on (to resolve the fine scales and the sliding layer).
    multiscale
        Add finer band-limited velocity components (lattice cells of 11 and 5.5 mm,
        amplitudes falling with scale) to the 22 mm one, weighted like it.
    sliding
        Add a tangential slide along the chest wall (2-6 mm per breast, mostly S-I and
        lateral) that rises from zero at the pectoralis surface to its full value
        :data:`SLIDING_LAYER_MM` in front of it: a steep shear layer, no motion behind.
    shape_change
        Add a per-breast medio-lateral compression or release (3-10 %) with the matching
        anterior-posterior stretch (volume kept), centred on each breast.

    Notes
    -----
    With every switch off the result is exactly the original phantom's. ``sliding`` and
    ``shape_change`` are drawn in millimetres and are not rescaled by the calibration
    (together they take at most 60 % of the target; larger draws are shrunk and the
    applied values are in ``info``); the smooth (and multiscale) part is calibrated so
    that the total still meets the regime's target. The switches do nothing in the
    ``static`` regime.
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, not {regime!r}")
    realistic = multiscale or sliding or shape_change
    realistic = realistic and regime != "static"
    if spacing is None:
        spacing = _FINE_SPACING if realistic and (multiscale or sliding) else 5.0
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
    taper = _edge_taper(pts, lo, shape, spacing)
    weight *= taper
    hi = lo + (np.array(shape) - 1) * spacing
    noise = NoiseLattice.random(rng, lo, hi, 22.0, 3)
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
    if not realistic:
        base = base * weight[:, None]
        v_unit = torch.from_numpy(np.ascontiguousarray(base.T.reshape(3, *shape), np.float32))
        return _calibrated(v_unit, lo, spacing, mat, regime, info, target, breast_points)

    v_unit, fixed_v, drawn = _realistic_velocity(
        anatomy, regime, rng, base, weight, taper, (lo, spacing, shape, pts), breast_points,
        (multiscale, sliding, shape_change), info)
    if fixed_v is not None:
        # The drawn components keep their millimetres unless they alone would use up most
        # of the target: then they shrink so that the smooth part still has a share.
        shrink = _fixed_shrink(fixed_v, lo, spacing, mat, regime, target, breast_points)
        fixed_v = fixed_v * shrink
        info.update({key: [float(val * shrink) for val in values]
                     for key, values in drawn.items()})
        if shape_change:
            info["shape_change_fraction"] = [
                float(-np.expm1(-rate)) for rate in info["shape_change_rate"]]
    return _calibrated_realistic(v_unit, fixed_v, lo, spacing, mat, regime, info, target,
                                 breast_points)


def _realistic_velocity(
    anatomy: Chest,
    regime: str,
    rng: np.random.Generator,
    base: np.ndarray,
    weight: np.ndarray,
    taper: np.ndarray,
    lattice: tuple[np.ndarray, float, tuple[int, int, int], np.ndarray],
    breast_points: np.ndarray,
    switches: tuple[bool, bool, bool],
    info: dict,
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, list[float]]]:
    """The velocity of a deformation with realism switches on.

    Parameters
    ----------
    base
        ``(N, 3)`` unit-less velocity of the regime at the lattice nodes (unweighted).
    weight, taper
        ``(N,)`` chest-wall weight (with the edge taper) and the edge taper alone.
    lattice
        ``lo`` (mm), ``spacing`` (mm), ``shape`` and the ``(N, 3)`` node positions (mm).
    switches
        ``multiscale``, ``sliding``, ``shape_change``.

    Returns
    -------
    v_unit : torch.Tensor
        ``(3, X, Y, Z)`` part scaled by the calibration (the weighted base, plus the finer
        scales with ``multiscale``).
    fixed_v : torch.Tensor or None
        ``(3, X, Y, Z)`` mm drawn in millimetres (``sliding``, ``shape_change``).
    drawn : dict
        The drawn sizes per breast: ``sliding_mm`` and ``shape_change_rate``.
    """
    multiscale, sliding, shape_change = switches
    lo, spacing, shape, pts = lattice
    hi = lo + (np.array(shape) - 1) * spacing
    # One draw from rng, after the original ones; each switch has its own stream from it,
    # so that switching one does not change another's field.
    seed = int(rng.integers(0, 2 ** 63 - 1))
    streams = [np.random.default_rng([seed, k]) for k in range(3)]
    info["spacing_mm"] = float(spacing)
    if multiscale:
        gain = 1.0 if regime == "visit" else 3.0  # the 22 mm noise's gain in the regime
        base = base + gain * _fine_noise(streams[0], lo, hi, pts)
        info["multiscale_cells_mm"] = [cell for cell, _ in _FINE_SCALES]
    v_unit = _to_lattice(base * weight[:, None], shape)
    regions = _breast_regions(anatomy, breast_points)
    fixed = np.zeros_like(base)
    drawn: dict[str, list[float]] = {}
    if sliding:
        slide, drawn["sliding_mm"] = _sliding_velocity(anatomy, pts, regions, streams[1])
        fixed += slide * taper[:, None]
    if shape_change:
        squeeze, drawn["shape_change_rate"] = _shape_velocity(anatomy, pts, regions,
                                                              streams[2])
        fixed += squeeze * weight[:, None]
    return v_unit, (_to_lattice(fixed, shape) if drawn else None), drawn


def _calibrated(v_unit: torch.Tensor, lo: np.ndarray, spacing: float, mat: np.ndarray,
                regime: str, info: dict, target: float, breast_points: np.ndarray
                ) -> Deformation:
    """The original calibration: secant steps on ``scale``, each through scaling and
    squaring of ``scale * v_unit`` (``(3, X, Y, Z)`` mm per unit scale)."""
    zero = torch.zeros_like(v_unit)

    def build(scale: float) -> Deformation:
        fwd = integrate(v_unit * scale, spacing)
        return Deformation(lo, spacing, fwd, zero, mat, regime, info)

    measure = _soft_p95 if regime == "visit" else _p95
    zero_value = 0.0 if regime == "visit" else _p95(
        Deformation(lo, spacing, zero, zero, mat, regime, info), breast_points)
    scale = _secant(lambda s: measure(build(s), breast_points), target, zero_value)
    v = v_unit * scale
    deform = Deformation(lo, spacing, integrate(v, spacing), integrate(-v, spacing), mat,
                         regime, info)
    info.update(deformation_p95_mm=_soft_p95(deform, breast_points),
                magnitude_mm=_p95(deform, breast_points), velocity_scale=scale)
    return deform


def _calibrated_realistic(v_unit: torch.Tensor, fixed_v: torch.Tensor | None,
                          lo: np.ndarray, spacing: float, mat: np.ndarray, regime: str,
                          info: dict, target: float, breast_points: np.ndarray
                          ) -> Deformation:
    """Calibrate ``v = scale * v_unit + fixed_v`` (``(3, X, Y, Z)`` mm): secant steps on
    ``scale`` measured by flowing the breast points through ``v`` (cheap), then one
    check, and if needed one correction, through scaling and squaring."""
    sample = np.asarray(breast_points, np.float64)[:: max(1, len(breast_points) // 8000)]

    def flowed(scale: float) -> float:
        moved = _flow(_combine(v_unit, fixed_v, scale), lo, spacing, sample)
        return _percentile_motion(moved, sample, mat, regime)

    aim = target
    for _ in range(2):
        scale = _secant(flowed, aim, flowed(0.0))
        v = _combine(v_unit, fixed_v, scale)
        forward = integrate(v, spacing)
        trial = Deformation(lo, spacing, forward, torch.zeros_like(v), mat, regime, info)
        measured = _soft_p95(trial, breast_points) if regime == "visit" else _p95(
            trial, breast_points)
        if abs(measured - target) < 0.02 * target:
            break
        # Scaling and squaring and the point flow differ a little: aim off by that much.
        aim += target - measured
    deform = Deformation(lo, spacing, forward, integrate(-v, spacing), mat, regime, info)
    info.update(deformation_p95_mm=_soft_p95(deform, breast_points),
                magnitude_mm=_p95(deform, breast_points), velocity_scale=scale)
    return deform


def _secant(measure: Callable[[float], float], target: float, zero_value: float) -> float:
    """Velocity scale whose ``measure(scale)`` meets ``target`` (within 2 %), by secant
    steps from ``(0, zero_value)`` and ``(1, measure(1))``."""
    scale, value = 1.0, measure(1.0)
    prev_scale, prev_value = 0.0, zero_value
    for _ in range(4):
        if abs(value - target) < 0.02 * target:
            break
        slope = (value - prev_value) / (scale - prev_scale)
        new = scale + (target - value) / max(slope, 1e-6)
        prev_scale, prev_value = scale, value
        scale = float(np.clip(new, 0.05 * scale, 20.0 * scale))
        value = measure(scale)
    return scale


def _combine(v_unit: torch.Tensor, fixed_v: torch.Tensor | None, scale: float
             ) -> torch.Tensor:
    """``scale * v_unit + fixed_v``, both ``(3, X, Y, Z)`` mm."""
    v = v_unit * scale
    return v if fixed_v is None else v + fixed_v


def _to_lattice(values: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """``(N, 3)`` node values in lattice order -> ``(3, X, Y, Z)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(values.T.reshape(3, *shape), np.float32))


def _flow(velocity: torch.Tensor, lo: np.ndarray, spacing: float, points: np.ndarray,
          steps: int = 8) -> np.ndarray:
    """``exp(v)`` at ``(N, 3)`` mm points by fourth-order Runge-Kutta (mm, ``(N, 3)``)."""
    x = np.asarray(points, dtype=np.float64)
    h = 1.0 / steps

    def v(p: np.ndarray) -> np.ndarray:
        return sample_grid(velocity, lo, spacing, p).T.astype(np.float64)

    for _ in range(steps):
        k1 = v(x)
        k2 = v(x + 0.5 * h * k1)
        k3 = v(x + 0.5 * h * k2)
        k4 = v(x + h * k3)
        x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def _percentile_motion(soft: np.ndarray, points: np.ndarray, mat: np.ndarray,
                       regime: str) -> float:
    """95th percentile (mm) of the soft motion (``visit``) or of the total one."""
    moved = soft if regime == "visit" else soft @ mat[:3, :3].T + mat[:3, 3]
    return float(np.percentile(np.linalg.norm(moved - points, axis=1), 95))


def _fixed_shrink(fixed_v: torch.Tensor, lo: np.ndarray, spacing: float, mat: np.ndarray,
                  regime: str, target: float, points: np.ndarray) -> float:
    """Factor (<= 1) that keeps the drawn components' own motion under 60 % of target."""
    points = np.asarray(points, np.float64)[:: max(1, len(points) // 8000)]
    alone = _percentile_motion(_flow(fixed_v, lo, spacing, points), points, mat, regime)
    rigid_only = _percentile_motion(np.asarray(points, np.float64), points, mat, regime)
    room = max(0.6 * target - rigid_only, 0.0) if regime != "visit" else 0.6 * target
    own = alone - (rigid_only if regime != "visit" else 0.0)
    return float(min(1.0, room / own)) if own > 1e-6 else 1.0


def _fine_noise(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray,
                pts: np.ndarray) -> np.ndarray:
    """Finer velocity scales at ``(N, 3)`` lattice points: ``(N, 3)``, unit-less like the
    22 mm component (each scale unit variance times its amplitude)."""
    total = np.zeros((pts.shape[0], 3), dtype=np.float32)
    for cell, amplitude in _FINE_SCALES:
        lattice = NoiseLattice.random(rng, lo, hi, cell, 3)
        total += amplitude * lattice.sample(pts).T
    return total


@dataclass(frozen=True)
class _Region:
    """A breast's box from its mask points: ``centre`` ``(3,)`` and ``half`` ``(3,)`` mm
    (95th percentile of the distance to the centre per axis)."""

    centre: np.ndarray
    half: np.ndarray

    def window(self, pts: np.ndarray, inner: float, outer: float) -> np.ndarray:
        """1 within ``inner`` mm of the box in ``x`` and ``z``, 0 beyond ``outer``:
        ``(N,)``."""
        w = np.ones(pts.shape[0], dtype=np.float32)
        for axis in (0, 2):
            dist = np.abs(pts[:, axis] - self.centre[axis])
            w *= smoothstep(self.half[axis] + outer, self.half[axis] + inner, dist)
        return w


def _breast_regions(anatomy: Chest, breast_points: np.ndarray) -> list[_Region]:
    """One :class:`_Region` per breast (``x > 0`` first, then ``x < 0``; a side without
    points has none), from the mask points in front of the chest surface."""
    pts = np.asarray(breast_points, dtype=np.float64)
    mound = pts[anatomy.torso_sdf(pts) > 5.0]
    regions = []
    for sign in (1.0, -1.0):
        own = mound[mound[:, 0] * sign > 0]
        if len(own) < 10:
            own = pts[pts[:, 0] * sign > 0]
        if len(own) == 0:
            continue
        centre = own.mean(axis=0)
        half = np.percentile(np.abs(own - centre), 95, axis=0)
        regions.append(_Region(centre, half))
    return regions


def _chest_frame(anatomy: Chest, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit tangents of the chest surface at ``(N, 3)`` points: the horizontal one (about
    ``+x`` at the midline) and the one closest to ``+z`` (S-I), each ``(N, 3)``."""
    grad = np.empty((pts.shape[0], 3), dtype=np.float64)
    for axis in range(3):
        step = np.zeros(3, dtype=pts.dtype)
        step[axis] = 0.5
        grad[:, axis] = anatomy.torso_sdf(pts + step) - anatomy.torso_sdf(pts - step)
    normal = grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)
    lateral = np.stack([normal[:, 1], -normal[:, 0], np.zeros(len(pts))], axis=1)
    lateral /= np.maximum(np.linalg.norm(lateral, axis=1, keepdims=True), 1e-9)
    si = np.array([0.0, 0.0, 1.0]) - normal[:, 2:3] * normal
    si /= np.maximum(np.linalg.norm(si, axis=1, keepdims=True), 1e-9)
    return lateral, si


def _front_of(region: _Region, pts: np.ndarray, subcut: float) -> np.ndarray:
    """``(N,)`` window of the pectoralis under a breast: 0 near the midline (nothing slides
    over the sternum, and the two breasts' slides stay apart) and from 60 mm behind the
    breast's back (the sides and back of the torso), 1 elsewhere."""
    medial = smoothstep(0.0, 30.0, np.sign(region.centre[0]) * pts[:, 0])
    back = region.centre[1] - region.half[1] - subcut
    return medial * smoothstep(back - 60.0, back - 20.0, pts[:, 1])


def _sliding_velocity(anatomy: Chest, pts: np.ndarray, regions: list[_Region],
                      rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Tangential slide along the chest wall at ``(N, 3)`` lattice points.

    Returns the velocity ``(N, 3)`` mm and the drawn slide (mm) per breast. Each breast's
    slide has a random direction in the tangent plane (lateral and S-I) and a size of
    2-6 mm; it is zero behind the pectoralis surface (``torso_sdf = -subcut``), full from
    :data:`SLIDING_LAYER_MM` in front of it, and fades out 10-60 mm beyond the breast, over
    the sternum and round the sides of the torso (:func:`_front_of`).
    """
    subcut = anatomy.subcut
    layer = smoothstep(0.0, SLIDING_LAYER_MM, anatomy.torso_sdf(pts) + subcut)
    lateral, si = _chest_frame(anatomy, pts)
    velocity = np.zeros((pts.shape[0], 3), dtype=np.float64)
    sizes = []
    for region in regions:
        size = rng.uniform(2.0, 6.0)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        window = region.window(pts, 10.0, 60.0) * _front_of(region, pts, subcut) * layer
        direction = np.cos(angle) * lateral + np.sin(angle) * si
        velocity += (size * window)[:, None] * direction
        sizes.append(float(size))
    return velocity.astype(np.float32), sizes


def _shape_velocity(anatomy: Chest, pts: np.ndarray, regions: list[_Region],
                    rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Per-breast medio-lateral compression with the matching A-P stretch at ``(N, 3)``
    lattice points.

    Returns the velocity ``(N, 3)`` mm (before the chest-wall weight) and each breast's
    rate ``r``: its flow scales the breast's width by ``exp(-r)`` about its centre and
    its depth in front of the pectoralis by ``exp(r)`` (volume kept). ``r`` is drawn so
    that the width changes by 3-10 %, compression or release.
    """
    depth = np.maximum(anatomy.torso_sdf(pts) + anatomy.subcut, 0.0)
    velocity = np.zeros((pts.shape[0], 3), dtype=np.float64)
    rates = []
    for region in regions:
        fraction = rng.uniform(0.03, 0.10) * rng.choice([-1.0, 1.0])
        rate = -np.log1p(-fraction)
        window = region.window(pts, 0.0, 30.0)
        velocity[:, 0] -= rate * window * (pts[:, 0] - region.centre[0])
        velocity[:, 1] += rate * window * depth
        rates.append(float(rate))
    return velocity.astype(np.float32), rates


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _p95(deform: Deformation, points: np.ndarray) -> float:
    moved = deform.to_moving(points)
    return float(np.percentile(np.linalg.norm(moved - points, axis=1), 95))


def _soft_p95(deform: Deformation, points: np.ndarray) -> float:
    moved = deform.soft_to_moving(points.astype(np.float32))
    return float(np.percentile(np.linalg.norm(moved - points, axis=1), 95))


__all__ = ["REGIMES", "SLIDING_LAYER_MM", "Deformation", "draw_deformation", "integrate",
           "rotation_matrix"]
