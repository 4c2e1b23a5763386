"""The shape of one prone breast: a pendulous mound on the chest wall with a nipple.

A breast is described in its own frame: ``s`` (mm) along the axis from the base (inside
the chest's subcutaneous layer) towards the nipple, and normalised transverse
coordinates ``(a, b)`` scaled by the base radii. Its cross-section radius at
``t = s / depth`` is ``rho(t) = sqrt(1 - t**gamma)``: ``gamma = 2`` is a hemi-ellipsoid,
larger values give the fuller, pendulous shape of a prone breast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Breast:
    """One breast (RAS mm).

    Parameters
    ----------
    side
        ``+1`` for the patient's right (``+x`` in RAS), ``-1`` for the left.
    base
        ``(3,)`` centre of the base.
    axis, e1, e2
        ``(3,)`` orthonormal frame: towards the nipple, lateral, superior.
    depth
        Base-to-nipple distance (mm).
    r1, r2
        Base half-widths (mm) along ``e1`` and ``e2``.
    gamma
        Profile exponent (fullness).
    nipple_length, nipple_radius
        Nipple protrusion and radius (mm).
    """

    side: int
    base: np.ndarray
    axis: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    depth: float
    r1: float
    r2: float
    gamma: float
    nipple_length: float = 7.0
    nipple_radius: float = 5.0

    @property
    def nipple(self) -> np.ndarray:
        """``(3,)`` nipple tip position (mm)."""
        return self.base + self.axis * (self.depth + self.nipple_length)

    @property
    def radius(self) -> float:
        return 0.5 * (self.r1 + self.r2)

    def rho(self, t: np.ndarray) -> np.ndarray:
        """Normalised cross-section radius at ``t`` (1 at the base, 0 at the tip)."""
        tc = np.clip(t, 0.0, 1.0)
        return np.sqrt(np.maximum(1.0 - tc ** self.gamma, 0.0))

    def local(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t, a, b)`` of ``(N, 3)`` points: axial fraction and normalised transverse."""
        d = points - self.base.astype(np.float32)
        t = d @ self.axis.astype(np.float32) / self.depth
        a = d @ self.e1.astype(np.float32) / self.r1
        b = d @ self.e2.astype(np.float32) / self.r2
        return t, a, b

    def to_world(self, t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`local`: ``(N, 3)`` mm points from breast coordinates."""
        t, a, b = (np.asarray(v, dtype=np.float64) for v in (t, a, b))
        return (self.base + np.outer(t * self.depth, self.axis) + np.outer(a * self.r1, self.e1)
                + np.outer(b * self.r2, self.e2))

    def sdf(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Approximate signed distance (mm) of the mound and of the nipple, each ``(N,)``."""
        t, a, b = self.local(points)
        rn = np.sqrt(a * a + b * b)
        tc = np.clip(t, 1e-3, 0.999)
        rho = self.rho(t)
        drho = 0.5 * self.gamma * tc ** (self.gamma - 1.0) / np.maximum(rho, 0.05)
        drho = np.minimum(drho, 8.0)
        r = self.radius
        mound = (rn - rho) * r / np.sqrt(1.0 + (r * drho / self.depth) ** 2)
        mound = np.maximum(mound, (t - 1.0) * self.depth)
        s = t * self.depth
        transverse = np.sqrt((a * self.r1) ** 2 + (b * self.r2) ** 2)
        nipple = np.maximum.reduce([
            transverse - self.nipple_radius,
            s - (self.depth + self.nipple_length),
            (self.depth - 12.0) - s,
        ])
        return mound.astype(np.float32), nipple.astype(np.float32)
