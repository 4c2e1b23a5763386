"""Landmarks on tissue boundaries, where registrations fail first (RAS mm).

:meth:`Anatomy.landmarks <breastlib.phantom.anatomy.Anatomy.landmarks>` gives interior
points (duct branchings, vessel bifurcations, nipples, lesion centre, sternum).
:func:`surface_landmarks` adds points on three boundaries of the rendered label map:

- ``skin``: the outer surface of each breast mound (the zero level of
  :meth:`Breast.sdf <breastlib.phantom.breast.Breast.sdf>`), away from the nipple and the
  fold where the mound blends into the chest;
- ``chest_wall``: the anterior surface of the pectoralis behind each breast, where
  :meth:`Anatomy.torso_sdf <breastlib.phantom.anatomy.Anatomy.torso_sdf>` equals
  ``-subcut``;
- ``lesion_rim``: the boundary of the lesion's body, when the subject has one.

:func:`landmark_group` and :data:`LANDMARK_GROUPS` (defined in
:mod:`breastlib.landmark_groups`) group every landmark kind for reporting.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from breastlib.errors import BreastlibError
from breastlib.landmark_groups import LANDMARK_GROUPS, landmark_group
from breastlib.phantom.anatomy import Anatomy
from breastlib.phantom.breast import Breast
from breastlib.phantom.labels import LABELS

__all__ = [
    "LANDMARK_GROUPS", "chest_wall_points", "landmark_group", "lesion_rim_points",
    "skin_points", "surface_landmarks",
]

# Blend widths (mm) of the smooth unions in Anatomy._render_chunk: mound with torso, then
# with the nipples. Beyond them the rendered body surface is exactly the mound's zero level.
_TORSO_BLEND_MM = 14.0
_NIPPLE_BLEND_MM = 2.5
# Radius (mm) around the nipple inside which the skin thickens into the areola.
_AREOLA_MM = 22.0
_MARGIN_MM = 1.0
# Spicules are at most 1.4 mm wide, less on lesions under 5 mm (Anatomy._lesion); rim
# points are kept this much further (mm) from their axes.
_SPICULE_WIDTH_MM = 1.4
_SPICULE_MARGIN_MM = 0.5
# Fraction of the base radius under which chest-wall points are drawn.
_FOOTPRINT = 0.85
_OVERSAMPLE = 48
_MAX_ROUNDS = 8

_Sampler = Callable[[np.random.Generator, int], np.ndarray]
_Filter = Callable[[np.ndarray], np.ndarray]


def surface_landmarks(
    anatomy: Anatomy,
    rng: np.random.Generator,
    *,
    per_breast_skin: int = 12,
    per_breast_chest: int = 8,
    lesion_rim: int = 8,
) -> tuple[np.ndarray, list[str]]:
    """Landmarks on the skin, the pectoralis surface and the lesion rim.

    Parameters
    ----------
    anatomy
        The drawable subject (reference visit: lesion at full size).
    rng
        Source of randomness; the same generator state gives the same points.
    per_breast_skin
        Skin points on each breast's mound.
    per_breast_chest
        Points on the anterior pectoralis surface under each breast's footprint.
    lesion_rim
        Points on the lesion's boundary (none when the subject has no lesion).

    Returns
    -------
    points : numpy.ndarray
        ``(N, 3)`` float64 RAS mm; breast by breast (skin, then chest wall), then the rim.
    kinds : list of str
        ``N`` kinds: ``"skin"``, ``"chest_wall"`` or ``"lesion_rim"``.

    Raises
    ------
    BreastlibError
        When a surface has too few admissible points (a degenerate subject).
    """
    for name, n in (("per_breast_skin", per_breast_skin), ("per_breast_chest", per_breast_chest),
                    ("lesion_rim", lesion_rim)):
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    parts: list[np.ndarray] = []
    kinds: list[str] = []
    for index in range(len(anatomy.subject.breasts)):
        for kind, n, place in (("skin", per_breast_skin, skin_points),
                               ("chest_wall", per_breast_chest, chest_wall_points)):
            pts = place(anatomy, index, rng, n)
            parts.append(pts)
            kinds.extend([kind] * len(pts))
    if anatomy.subject.lesion is not None:
        pts = lesion_rim_points(anatomy, rng, lesion_rim)
        parts.append(pts)
        kinds.extend(["lesion_rim"] * len(pts))
    return np.concatenate(parts).reshape(-1, 3), kinds


def skin_points(anatomy: Anatomy, index: int, rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` mm points on the skin surface of breast ``index`` (0 right, 1 left).

    Points are placed exactly on the mound's zero level through its parametrisation
    (transverse radius ``rho(t)`` at axial fraction ``t``), kept only where that level is
    the rendered body surface (clear of the blend with the chest and of the nipple and
    areola), then thinned to ``n`` well-spread points.
    """
    br = anatomy.subject.breasts[index]

    def draw(gen: np.random.Generator, m: int) -> np.ndarray:
        t = gen.uniform(0.0, 1.0, m)
        phi = gen.uniform(0.0, 2.0 * np.pi, m)
        rho = br.rho(t)
        return br.to_world(t, rho * np.cos(phi), rho * np.sin(phi))

    return _spread(_sample(rng, draw, lambda p: _on_bare_mound(anatomy, index, p), n), n)


def chest_wall_points(anatomy: Anatomy, index: int, rng: np.random.Generator,
                      n: int) -> np.ndarray:
    """``(n, 3)`` mm points on the anterior pectoralis surface behind breast ``index``.

    Points of the breast's base disk are projected onto ``torso_sdf == -subcut`` by
    Newton steps along the SDF's numerical gradient, kept where they lie under the
    mound, then thinned to ``n`` well-spread points.
    """
    br = anatomy.subject.breasts[index]
    level = -anatomy.subcut

    def draw(gen: np.random.Generator, m: int) -> np.ndarray:
        rad = _FOOTPRINT * np.sqrt(gen.uniform(0.0, 1.0, m))
        phi = gen.uniform(0.0, 2.0 * np.pi, m)
        base = br.to_world(np.zeros(m), rad * np.cos(phi), rad * np.sin(phi))
        return _project_to_level(anatomy.torso_sdf, base, level)

    def keep(p: np.ndarray) -> np.ndarray:
        on_level = np.abs(anatomy.torso_sdf(p) - level) < 1e-3
        return on_level & (_mound(br, p) < -5.0)

    return _spread(_sample(rng, draw, keep, n), n)


def lesion_rim_points(anatomy: Anatomy, rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` mm points on the boundary of the lesion's body (none without a lesion).

    The lesion is star-shaped about its centre (an irregular radius that depends on the
    direction only, plus thin spicules), so each ray from the centre leaves the rendered
    lesion label once; the exit is found by bisection on the label. Rays near a spicule
    are dropped, so every point lies on the body's rim with lesion inside and other
    tissue outside along its ray.
    """
    lesion = anatomy.subject.lesion
    if lesion is None or n == 0:
        return np.zeros((0, 3))
    centre = np.asarray(lesion.centre, dtype=np.float64)
    reach = lesion.radius + float(lesion.spicules[:, 3].max(initial=0.0)) + 6.0

    def draw(gen: np.random.Generator, m: int) -> np.ndarray:
        u = gen.standard_normal((m, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        return centre + u * _lesion_exit(anatomy, centre, u, reach)[:, None]

    clearance = _SPICULE_WIDTH_MM * min(1.0, lesion.radius / 5.0) + _SPICULE_MARGIN_MM

    def keep(p: np.ndarray) -> np.ndarray:
        return _clear_of_spicules(p - centre, lesion.spicules, clearance)

    return _spread(_sample(rng, draw, keep, n), n)


# -- helpers ---------------------------------------------------------------------------
def _mound(br: Breast, points: np.ndarray) -> np.ndarray:
    return br.sdf(points)[0].astype(np.float64)


def _on_bare_mound(anatomy: Anatomy, index: int, p: np.ndarray) -> np.ndarray:
    """Where breast ``index``'s mound zero level is the rendered skin, ``(N,)`` bool."""
    ok = anatomy.torso_sdf(p) >= _TORSO_BLEND_MM + _MARGIN_MM
    for j, other in enumerate(anatomy.subject.breasts):
        mound, nipple = other.sdf(p)
        ok &= nipple >= _NIPPLE_BLEND_MM + _MARGIN_MM
        ok &= np.linalg.norm(p - other.nipple, axis=1) >= _AREOLA_MM + 3.0
        if j != index:
            ok &= mound >= 2.0
    return ok


def _lesion_exit(anatomy: Anatomy, centre: np.ndarray, u: np.ndarray, reach: float,
                 steps: int = 24) -> np.ndarray:
    """``(M,)`` distance (mm) at which each ray ``centre + d * u`` leaves the lesion label."""
    lo = np.zeros(len(u))
    hi = np.full(len(u), reach)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        inside = _is_lesion(anatomy, centre + u * mid[:, None])
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def _is_lesion(anatomy: Anatomy, points: np.ndarray) -> np.ndarray:
    labels, _ = anatomy.render(points)
    return labels == LABELS["lesion"]


def _clear_of_spicules(offsets: np.ndarray, spicules: np.ndarray,
                       clearance: float) -> np.ndarray:
    """Whether ``(N, 3)`` offsets (mm) from the lesion centre lie ``clearance`` mm or more
    from the axis of every spicule (``(K, 4)`` unit direction and length)."""
    d = np.linalg.norm(offsets, axis=1)
    ok = d > 0.5
    for row in spicules:
        cos = offsets @ row[:3] / np.maximum(d, 1e-9)
        perp = d * np.sqrt(np.maximum(1.0 - cos * cos, 0.0))
        ok &= (cos <= 0.0) | (perp >= clearance)
    return ok


def _gradient(f: Callable[[np.ndarray], np.ndarray], p: np.ndarray,
              h: float = 0.05) -> np.ndarray:
    """``(N, 3)`` central-difference gradient of a scalar field ``f`` at ``(N, 3)`` points."""
    grad = np.empty_like(p)
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = h
        grad[:, axis] = (f(p + step) - f(p - step)) / (2.0 * h)
    return grad


def _project_to_level(f: Callable[[np.ndarray], np.ndarray], p: np.ndarray, level: float,
                      steps: int = 8) -> np.ndarray:
    """Newton-project ``(N, 3)`` points onto ``f == level`` along ``f``'s gradient."""
    p = np.asarray(p, dtype=np.float64).copy()
    for _ in range(steps):
        g = _gradient(f, p)
        norm2 = np.maximum(np.sum(g * g, axis=1), 1e-12)
        p -= ((f(p) - level) / norm2)[:, None] * g
    return p


def _sample(rng: np.random.Generator, draw: _Sampler, keep: _Filter, n: int) -> np.ndarray:
    """At least ``n`` admissible candidates: batches from ``draw`` filtered by ``keep``."""
    if n == 0:
        return np.zeros((0, 3))
    found: list[np.ndarray] = []
    total = 0
    for _ in range(_MAX_ROUNDS):
        batch = draw(rng, _OVERSAMPLE * n)
        batch = batch[keep(batch)]
        found.append(batch)
        total += len(batch)
        if total >= n:
            return np.concatenate(found)
    raise BreastlibError(f"only {total} admissible surface points, need {n}")


def _spread(candidates: np.ndarray, n: int) -> np.ndarray:
    """``n`` of ``(M, 3)`` candidates chosen by farthest-point sampling (first one kept)."""
    if n == 0:
        return np.zeros((0, 3))
    chosen = [0]
    dist = np.linalg.norm(candidates - candidates[0], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(candidates - candidates[nxt], axis=1))
    return candidates[chosen].astype(np.float64)
