"""Branching duct and vessel trees, and their rasterisation into tube-proximity fields.

Milk ducts start at the nipple and branch as they run back towards the chest wall,
fanning out inside the gland; breast vessels enter at the base (lateral thoracic and
internal mammary perforators) and run under the skin towards the nipple. Both are
polylines in breast coordinates (:class:`~breastlib.phantom.breast.Breast`), so they
follow each subject's shape. Branch points are returned as landmark candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from breastlib.phantom.breast import Breast


@dataclass(frozen=True)
class Tree:
    """Polylines with radii plus their branch points (RAS mm).

    Attributes
    ----------
    points
        ``(M, 3)`` samples along every branch, about 0.5 mm apart.
    radii
        ``(M,)`` tube radius (mm) at each sample.
    branch_points
        ``(B, 3)`` positions where a child branch leaves its parent.
    """

    points: np.ndarray
    radii: np.ndarray
    branch_points: np.ndarray


def _path(breast: Breast, t0: float, t1: float, rn0: float, rn1: float, phi0: float,
          phi1: float, rng: np.random.Generator, wiggle: float, step_mm: float = 0.5
          ) -> np.ndarray:
    n = max(int(abs(t1 - t0) * breast.depth / step_mm) + 2, 3)
    s = np.linspace(0.0, 1.0, n)
    t = t0 + (t1 - t0) * s
    # A smooth random wiggle (two sinusoids) keeps the branch from being a straight line.
    k1, k2 = rng.uniform(1.0, 3.0, 2)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    phi = phi0 + (phi1 - phi0) * s + wiggle * np.sin(k1 * np.pi * s + p1) * s
    rn = rn0 + (rn1 - rn0) * s ** 0.8 + 0.03 * wiggle * np.sin(k2 * np.pi * s + p2) * s
    rn = np.minimum(rn, 0.92 * breast.rho(t))
    return breast.to_world(t, rn * np.cos(phi), rn * np.sin(phi))


def duct_tree(breast: Breast, rng: np.random.Generator, n_ducts: int) -> Tree:
    """Lactiferous ducts from the nipple, branching up to three times towards the base."""
    pts, rad, branches = [], [], []

    def grow(t0: float, rn0: float, phi0: float, radius: float, level: int) -> None:
        t1 = max(t0 - rng.uniform(0.25, 0.45), 0.12)
        rn1 = np.clip(rn0 + rng.uniform(0.12, 0.35), 0.1, 0.85)
        phi1 = phi0 + rng.normal(0.0, 0.35)
        path = _path(breast, t0, t1, rn0, rn1, phi0, phi1, rng, wiggle=0.15)
        pts.append(path)
        rad.append(np.full(len(path), radius))
        if level >= 3:
            return
        for _ in range(int(rng.integers(1, 3))):
            frac = rng.uniform(0.35, 0.8)
            i = int(frac * (len(path) - 1))
            t_b = t0 + (t1 - t0) * frac
            rn_b = float(rn0 + (rn1 - rn0) * frac ** 0.8)
            branches.append(path[i])
            grow(t_b, rn_b, phi0 + (phi1 - phi0) * frac + rng.choice([-1, 1]) *
                 rng.uniform(0.2, 0.6), radius * 0.75, level + 1)

    for k in range(n_ducts):
        phi = 2 * np.pi * (k + rng.uniform(-0.3, 0.3)) / n_ducts
        # Start just behind the nipple, converge there.
        grow(1.0 - 10.0 / breast.depth, 0.02, phi, 1.1, 1)
    return Tree(np.concatenate(pts), np.concatenate(rad), np.array(branches).reshape(-1, 3))


def vessel_tree(breast: Breast, rng: np.random.Generator, n_vessels: int,
                depth_mm: tuple[float, float] = (5.0, 12.0)) -> Tree:
    """Subcutaneous vessels entering at the base and running towards the nipple."""
    pts, rad, branches = [], [], []

    def surface_path(t0: float, t1: float, phi0: float, phi1: float, radius: float,
                     under: float) -> np.ndarray:
        n = max(int(abs(t1 - t0) * breast.depth / 0.5) + 2, 3)
        s = np.linspace(0, 1, n)
        t = t0 + (t1 - t0) * s
        k, p = rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        phi = phi0 + (phi1 - phi0) * s + 0.12 * np.sin(k * np.pi * s + p)
        rn = np.maximum(breast.rho(t) - under / breast.radius, 0.15 * breast.rho(t))
        path = breast.to_world(t, rn * np.cos(phi), rn * np.sin(phi))
        pts.append(path)
        rad.append(np.full(n, radius))
        return path

    for _ in range(n_vessels):
        phi0 = rng.uniform(0, 2 * np.pi)
        under = rng.uniform(*depth_mm)
        t1 = rng.uniform(0.6, 0.9)
        main = surface_path(0.0, t1, phi0, phi0 + rng.normal(0, 0.4), 1.3, under)
        for _ in range(int(rng.integers(1, 4))):
            frac = rng.uniform(0.25, 0.75)
            i = int(frac * (len(main) - 1))
            branches.append(main[i])
            tb = t1 * frac
            surface_path(tb, min(tb + rng.uniform(0.2, 0.4), 0.95),
                         phi0 + rng.choice([-1, 1]) * rng.uniform(0.1, 0.25),
                         phi0 + rng.choice([-1, 1]) * rng.uniform(0.3, 0.8), 0.9,
                         under + rng.uniform(-2.0, 3.0))
    return Tree(np.concatenate(pts), np.concatenate(rad), np.array(branches).reshape(-1, 3))


@dataclass(frozen=True, eq=False)
class Raster:
    """Tube-proximity fields on a world-aligned box: ``values`` ``(C, X, Y, Z)``.

    Each channel is 1 on a tube's centre line and falls off as a Gaussian of its
    radius, so thresholding at 0.5 draws a tube of about the given radius.
    """

    lo: np.ndarray
    spacing: float
    values: torch.Tensor


def rasterise(trees: list[Tree], lo: np.ndarray, hi: np.ndarray, spacing: float) -> Raster:
    """Draw each tree into its own channel of a box ``[lo, hi]`` (mm) at ``spacing`` mm."""
    lo = np.asarray(lo, dtype=np.float64)
    shape = tuple(int(np.ceil((h - low) / spacing)) + 1 for low, h in zip(lo, hi, strict=True))
    out = np.zeros((len(trees), *shape), dtype=np.float32)
    for c, tree in enumerate(trees):
        # Two radius classes, blurred separately so thin branches stay thin.
        for r_lo, r_hi in ((0.0, 0.95), (0.95, 10.0)):
            sel = (tree.radii >= r_lo) & (tree.radii < r_hi)
            if not sel.any():
                continue
            idx = np.rint((tree.points[sel] - lo) / spacing).astype(np.int64)
            ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
            idx = idx[ok]
            grid = np.zeros(shape, dtype=np.float32)
            np.maximum.at(grid, tuple(idx.T), 1.0)
            sigma = float(np.mean(tree.radii[sel])) / spacing
            blurred = gaussian_filter(grid, sigma=max(sigma, 0.6), truncate=3.0)
            # A line of unit voxels blurred by a Gaussian peaks at 1 / (sqrt(2 pi) sigma).
            peak = 1.0 / (np.sqrt(2 * np.pi) * max(sigma, 0.6))
            out[c] = np.maximum(out[c], np.minimum(blurred / max(peak, 1e-6), 1.5))
    return Raster(lo=lo, spacing=float(spacing), values=torch.from_numpy(out))
