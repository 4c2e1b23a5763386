"""Separable smoothing of displacement and feature tensors.

A ``k^3`` box filter is three 1-D averages; applying them one axis at a time costs
``3k`` instead of ``k^3`` reads per voxel, which matters on CPU where ConvexAdam smooths
the field several times per Adam iteration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_smooth(field: torch.Tensor, *, kernel: int, passes: int = 1) -> torch.Tensor:
    """Repeated separable box filter with replicate borders.

    Parameters
    ----------
    field
        ``(B, C, X, Y, Z)`` tensor.
    kernel
        Odd box width in voxels; 1 returns the input.
    passes
        How many times the box filter is applied.
    """
    if kernel % 2 != 1:
        raise ValueError(f"kernel must be odd, got {kernel}")
    if kernel == 1 or passes == 0:
        return field
    half = kernel // 2
    out = field
    if kernel <= 3:
        # Measured (benchmarks/bench_smoothing.py): for 3^3 one 3-D pool beats three
        # 1-D passes; from 5^3 up the separable form wins (4x at 7^3).
        for _ in range(passes):
            out = F.avg_pool3d(F.pad(out, [half] * 6, mode="replicate"), kernel, stride=1)
        return out
    for _ in range(passes):
        for axis in range(3):
            pad = [0, 0, 0, 0, 0, 0]
            pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = half
            size = [1, 1, 1]
            size[axis] = kernel
            out = F.avg_pool3d(F.pad(out, pad, mode="replicate"), kernel_size=size, stride=1)
    return out


def pad_to_multiple(tensor: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the spatial axes of ``(B, C, X, Y, Z)`` up to a multiple of ``multiple``."""
    pad = []
    for size in reversed(tensor.shape[2:]):
        pad += [0, (-size) % multiple]
    if not any(pad):
        return tensor
    return F.pad(tensor, pad, mode="replicate")


def downsample(tensor: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool ``(B, C, X, Y, Z)`` by ``factor`` after padding to a multiple of it."""
    if factor == 1:
        return tensor
    return F.avg_pool3d(pad_to_multiple(tensor, factor), kernel_size=factor, stride=factor)


def upsample_field(
    coarse: torch.Tensor, factor: int, shape: tuple[int, int, int]
) -> torch.Tensor:
    """Upsample a coarse displacement (coarse voxel units) to fine voxel units.

    Coarse voxel ``p`` is the mean of fine voxels ``p*f ... p*f+f-1``, i.e. centred at
    ``p*f + (f-1)/2``: exactly the sampling of ``interpolate(align_corners=False)``.

    Parameters
    ----------
    coarse
        ``(B, 3, x, y, z)`` displacement in coarse voxels.
    factor
        The pooling factor used to make the coarse grid.
    shape
        ``(X, Y, Z)`` of the fine grid (before padding).
    """
    if factor == 1:
        return coarse[:, :, : shape[0], : shape[1], : shape[2]]
    padded = tuple(s * factor for s in coarse.shape[2:])
    fine = F.interpolate(coarse, size=padded, mode="trilinear", align_corners=False) * factor
    return fine[:, :, : shape[0], : shape[1], : shape[2]]
