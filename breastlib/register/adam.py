"""The instance-optimisation (Adam) step of ConvexAdam.

The displacement lives on a grid ``grid_spacing`` times coarser than the image; each
iteration smooths it with a repeated box filter, warps the moving features and
minimises mean SSD plus a diffusion regulariser.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from breastlib._sampling import normalise_index
from breastlib.smoothing import box_smooth, downsample, upsample_field


def diffusion_penalty(field: torch.Tensor) -> torch.Tensor:
    """Mean squared forward differences of a ``(1, 3, x, y, z)`` field along each axis."""
    dx = field[:, :, 1:] - field[:, :, :-1]
    dy = field[:, :, :, 1:] - field[:, :, :, :-1]
    dz = field[:, :, :, :, 1:] - field[:, :, :, :, :-1]
    return (dx**2).mean() + (dy**2).mean() + (dz**2).mean()


def _coarse_start(initial: torch.Tensor, grid_spacing: int) -> torch.Tensor:
    """A fine ``(1, 3, X, Y, Z)`` voxel field as a coarse field in coarse voxels."""
    return downsample(initial, grid_spacing) / grid_spacing


def _smoothed_fine(coarse: torch.Tensor, grid_spacing: int, shape: tuple[int, ...],
                   kernel: int, passes: int) -> torch.Tensor:
    """Smooth a coarse field as every iteration does and bring it back to fine voxels."""
    return upsample_field(box_smooth(coarse, kernel=kernel, passes=passes), grid_spacing, shape)


def convex_start(
    initial: torch.Tensor, *, grid_spacing: int = 2, smooth_kernel: int = 7,
    smooth_passes: int = 5,
) -> torch.Tensor:
    """The field Adam starts from, at full resolution: ``adam_step`` with no iterations.

    Parameters
    ----------
    initial
        ``(1, 3, X, Y, Z)`` convex-step displacement in fixed voxels.
    grid_spacing, smooth_kernel, smooth_passes
        As for :func:`adam_step`.
    """
    with torch.no_grad():
        return _smoothed_fine(_coarse_start(initial, grid_spacing), grid_spacing,
                              tuple(initial.shape[2:]), smooth_kernel, smooth_passes)


def adam_step(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    initial: torch.Tensor,
    *,
    grid_spacing: int = 2,
    iterations: int = 1000,
    learning_rate: float = 3.0,
    regularisation: float = 2.0,
    smooth_kernel: int = 7,
    smooth_passes: int = 5,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Refine a displacement by Adam on the SSD of feature volumes.

    Parameters
    ----------
    fixed, moving
        ``(1, C, X, Y, Z)`` features on the same voxel grid.
    initial
        ``(1, 3, X, Y, Z)`` starting displacement in fixed voxels (the convex result).
    grid_spacing
        The field and features are optimised at 1/``grid_spacing`` resolution.
    iterations, learning_rate
        Adam iterations and step size (coarse voxels per step, early on).
    regularisation
        Weight of :func:`diffusion_penalty` (coarse voxel units).
    smooth_kernel, smooth_passes
        Box filter applied to the field every iteration.
    progress
        Called with the number of iterations done (for progress bars).

    Returns
    -------
    torch.Tensor
        ``(1, 3, X, Y, Z)`` displacement in fixed voxels.
    """
    shape = tuple(fixed.shape[2:])
    with torch.no_grad():
        coarse_fixed = downsample(fixed, grid_spacing)
        coarse_moving = downsample(moving, grid_spacing)
        start = _coarse_start(initial, grid_spacing)
    coarse_shape = tuple(coarse_fixed.shape[2:])
    axes = [torch.arange(s, device=fixed.device, dtype=fixed.dtype) for s in coarse_shape]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)

    parameter = torch.nn.Parameter(start.clone())
    optimiser = torch.optim.Adam([parameter], lr=learning_rate)
    for iteration in range(iterations):
        optimiser.zero_grad(set_to_none=True)
        field = box_smooth(parameter, kernel=smooth_kernel, passes=smooth_passes)
        grid = normalise_index(identity + field[0].permute(1, 2, 3, 0), coarse_shape)[None]
        warped = F.grid_sample(
            coarse_moving, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        loss = ((warped - coarse_fixed) ** 2).mean() + regularisation * diffusion_penalty(field)
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress(iteration + 1)
    with torch.no_grad():
        return _smoothed_fine(parameter, grid_spacing, shape, smooth_kernel, smooth_passes)
