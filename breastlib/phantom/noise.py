"""Band-limited random textures ("value noise") that can be sampled anywhere in mm.

A :class:`NoiseLattice` holds Gaussian-smoothed white noise on a regular lattice in
world millimetres and is sampled by trilinear interpolation at arbitrary points, so the
same texture is attached to tissue whether it is drawn on the fixed grid or at the
deformed positions of a moving image. Smoothing the lattice (sigma = one cell) before
interpolation removes the blocky look of plain value noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

_CHUNK = 2_000_000


@dataclass(frozen=True, eq=False)
class NoiseLattice:
    """Smooth unit-variance noise with ``C`` channels on a world-aligned lattice.

    Parameters
    ----------
    lo
        World position (RAS mm) of lattice node ``(0, 0, 0)``, shape ``(3,)``.
    cell
        Lattice spacing in mm (the texture's correlation length is about ``2 * cell``).
    values
        ``(C, X, Y, Z)`` float32 node values, zero mean and unit variance per channel.
    """

    lo: np.ndarray
    cell: float
    values: torch.Tensor

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        lo: np.ndarray,
        hi: np.ndarray,
        cell: float,
        channels: int = 1,
    ) -> NoiseLattice:
        """Draw a lattice covering the box ``[lo, hi]`` (mm) with spacing ``cell`` (mm)."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        shape = tuple(int(np.ceil((h - low) / cell)) + 2 for low, h in zip(lo, hi, strict=True))
        data = rng.standard_normal((channels, *shape), dtype=np.float32)
        for c in range(channels):
            data[c] = gaussian_filter(data[c], sigma=1.0, mode="wrap")
            data[c] -= data[c].mean()
            data[c] /= data[c].std() + 1e-12
        return cls(lo=lo, cell=float(cell), values=torch.from_numpy(data))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape[1:])

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Trilinear values at ``(N, 3)`` RAS mm points, returned as ``(C, N)`` float32.

        Points outside the lattice take the value of the nearest border node.
        """
        points = np.asarray(points, dtype=np.float32)
        n = points.shape[0]
        out = np.empty((self.values.shape[0], n), dtype=np.float32)
        scale = np.array([2.0 / ((s - 1) * self.cell) for s in self.shape], dtype=np.float32)
        lo = self.lo.astype(np.float32)
        source = self.values[None]
        for start in range(0, n, _CHUNK):
            chunk = points[start:start + _CHUNK]
            norm = (chunk - lo) * scale - 1.0
            grid = torch.from_numpy(np.ascontiguousarray(norm[:, ::-1])).view(1, -1, 1, 1, 3)
            values = F.grid_sample(
                source, grid, mode="bilinear", padding_mode="border", align_corners=True
            )
            out[:, start:start + chunk.shape[0]] = values.view(source.shape[1], -1).numpy()
        return out


def sample_grid(values: torch.Tensor, lo: np.ndarray, spacing: float, points: np.ndarray,
                *, mode: str = "bilinear") -> np.ndarray:
    """Sample a ``(C, X, Y, Z)`` world-aligned raster at ``(N, 3)`` mm points -> ``(C, N)``.

    Outside the raster the value is 0 (``padding_mode="zeros"``).
    """
    points = np.asarray(points, dtype=np.float32)
    shape = values.shape[1:]
    scale = np.array([2.0 / ((s - 1) * spacing) for s in shape], dtype=np.float32)
    lo32 = np.asarray(lo, dtype=np.float32)
    out = np.empty((values.shape[0], points.shape[0]), dtype=np.float32)
    for start in range(0, points.shape[0], _CHUNK):
        chunk = points[start:start + _CHUNK]
        norm = (chunk - lo32) * scale - 1.0
        grid = torch.from_numpy(np.ascontiguousarray(norm[:, ::-1])).view(1, -1, 1, 1, 3)
        sampled = F.grid_sample(
            values[None], grid, mode=mode, padding_mode="zeros", align_corners=True
        )
        out[:, start:start + chunk.shape[0]] = sampled.view(values.shape[0], -1).numpy()
    return out
