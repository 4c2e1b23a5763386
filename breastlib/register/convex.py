"""The coupled convex step of ConvexAdam (Siebert, Hansen & Heinrich, 2021).

Features are pooled onto a coarse grid; for every coarse voxel an SSD cost is computed
for each integer displacement in a search cube; the field is the per-voxel argmin,
progressively coupled to a smoothed copy of itself; forward and backward fields are then
made inverse-consistent. All in plain torch on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from breastlib._sampling import normalise_index
from breastlib.smoothing import box_smooth, downsample, upsample_field


def search_offsets(half_width: int, *, device: torch.device) -> torch.Tensor:
    """All integer offsets of the search cube, ``((2h+1)^3, 3)`` float32 in coarse voxels."""
    steps = torch.arange(-half_width, half_width + 1, device=device, dtype=torch.float32)
    return torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), dim=-1).reshape(-1, 3)


def ssd_cost_volume(
    fixed: torch.Tensor, moving: torch.Tensor, half_width: int, *, smooth: int = 1
) -> torch.Tensor:
    """Sum-of-squared-differences cost for every offset of the search cube.

    Parameters
    ----------
    fixed, moving
        ``(1, C, x, y, z)`` coarse feature grids.
    half_width
        Search half-width in coarse voxels.
    smooth
        Passes of a 3^3 box filter over each cost map (aggregates evidence spatially).

    Returns
    -------
    torch.Tensor
        ``((2h+1)^3, x, y, z)`` costs, offsets ordered as :func:`search_offsets`.
    """
    h = half_width
    x, y, z = fixed.shape[2:]
    padded = F.pad(moving, [h] * 6, mode="replicate")
    costs = []
    width = 2 * h + 1
    for dx in range(width):
        for dy in range(width):
            for dz in range(width):
                shifted = padded[:, :, dx : dx + x, dy : dy + y, dz : dz + z]
                costs.append(((fixed - shifted) ** 2).sum(dim=1))
    cost = torch.cat(costs, dim=0)
    if smooth:
        cost = box_smooth(cost[None], kernel=3, passes=smooth)[0]
    return cost


def coupled_argmin(
    cost: torch.Tensor, offsets: torch.Tensor, coupling: tuple[float, ...]
) -> torch.Tensor:
    """Argmin of the cost, coupled round by round to a smoothed copy of the field.

    Returns
    -------
    torch.Tensor
        ``(1, 3, x, y, z)`` displacement in coarse voxels.
    """
    shape = cost.shape[1:]
    # Where the features carry no information (air, uniform tissue) every offset costs
    # the same; break such ties towards zero displacement instead of the first offset.
    tie_break = 1e-6 * (offsets**2).sum(dim=1, keepdim=True)
    flat = cost.reshape(cost.shape[0], -1) + tie_break
    field = offsets[flat.argmin(dim=0)].T.reshape(1, 3, *shape)
    for weight in coupling:
        smoothed = box_smooth(box_smooth(field, kernel=3), kernel=3).reshape(3, -1)
        # |o - s|^2 expanded, so no (offsets, 3, voxels) tensor is ever built.
        penalty = (
            (offsets**2).sum(dim=1, keepdim=True)
            - 2.0 * offsets @ smoothed
            + (smoothed**2).sum(dim=0, keepdim=True)
        )
        field = offsets[(flat + weight * penalty).argmin(dim=0)].T.reshape(1, 3, *shape)
    return field


def compose_sample(field: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Sample ``field`` (``(1, 3, x, y, z)``) at ``x + displacement(x)`` (border padding)."""
    shape = tuple(field.shape[2:])
    axes = [torch.arange(s, device=field.device, dtype=field.dtype) for s in shape]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    grid = normalise_index(identity + displacement[0].permute(1, 2, 3, 0), shape)[None]
    return F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)


def make_inverse_consistent(
    forward: torch.Tensor, backward: torch.Tensor, iterations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetrise a forward/backward pair so that each approximately inverts the other."""
    for _ in range(iterations):
        new_forward = 0.5 * (forward - compose_sample(backward, forward))
        new_backward = 0.5 * (backward - compose_sample(forward, backward))
        forward, backward = new_forward, new_backward
    return forward, backward


def convex_step(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    *,
    grid_spacing: int = 6,
    half_width: int = 4,
    coupling: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    inverse_iterations: int = 15,
    cost_smooth: int = 1,
) -> torch.Tensor:
    """Run the coupled convex optimisation on two feature volumes.

    Parameters
    ----------
    fixed, moving
        ``(1, C, X, Y, Z)`` features on the same voxel grid.
    grid_spacing
        Pooling factor of the coarse grid, in voxels.
    half_width
        Search half-width in coarse voxels (so ``half_width * grid_spacing`` voxels).
    coupling
        Weights of the coupling rounds.
    inverse_iterations
        Inverse-consistency iterations (0 disables the backward field).

    Returns
    -------
    torch.Tensor
        ``(1, 3, X, Y, Z)`` fixed -> moving displacement in fixed voxels.
    """
    shape = tuple(fixed.shape[2:])
    coarse_fixed = downsample(fixed, grid_spacing)
    coarse_moving = downsample(moving, grid_spacing)
    offsets = search_offsets(half_width, device=fixed.device)
    cost = ssd_cost_volume(coarse_fixed, coarse_moving, half_width, smooth=cost_smooth)
    forward = coupled_argmin(cost, offsets, coupling)
    if inverse_iterations > 0:
        del cost
        cost_back = ssd_cost_volume(coarse_moving, coarse_fixed, half_width, smooth=cost_smooth)
        backward = coupled_argmin(cost_back, offsets, coupling)
        forward, _ = make_inverse_consistent(forward, backward, inverse_iterations)
    return upsample_field(forward, grid_spacing, shape)
