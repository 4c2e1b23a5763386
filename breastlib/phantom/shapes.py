"""Small implicit-geometry helpers: signed distances, smooth unions and ramps (all in mm).

Negative signed distance = inside. The approximations are exact on the surface and
close to a true distance within a few millimetres of it, which is where skin and fat
layers are drawn.
"""

from __future__ import annotations

import numpy as np


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Cubic ramp from 0 at ``edge0`` to 1 at ``edge1`` (either order), float32."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two signed distances (a smooth union), blend ``k`` mm."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def ellipse_sdf(x: np.ndarray, y: np.ndarray, a: np.ndarray | float,
                b: np.ndarray | float) -> np.ndarray:
    """Approximate signed distance (mm) to an axis-aligned ellipse of half-axes ``a, b``."""
    k0 = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    k1 = np.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def ellipsoid_sdf(p: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Approximate signed distance (mm) of ``(N, 3)`` local points to an ellipsoid."""
    k0 = np.linalg.norm(p / radii, axis=1)
    k1 = np.linalg.norm(p / (radii * radii), axis=1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def rotation_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation about the x, then y, then z axis (radians), ``(3, 3)``."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx
