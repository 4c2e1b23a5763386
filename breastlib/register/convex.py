"""The coupled convex step of ConvexAdam (Siebert, Hansen & Heinrich, 2021).

Features are pooled onto a coarse grid; for every coarse voxel an SSD cost is computed
for each integer displacement in a search cube; the field is the per-voxel argmin,
progressively coupled to a smoothed copy of itself; forward and backward fields are then
made inverse-consistent. All in plain torch on any device.

Every switch defaults to breastlib's behaviour; the ``paper`` profile sets each to the
released code's (convex_adam_utils.py: correlate, coupled_convex, inverse_consistency;
utils/convexAdam_3D.py: convex_adam_3d_param), as :mod:`breastlib.profiles.corrections`
lists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from breastlib._sampling import pull_back
from breastlib.smoothing import (
    Factor,
    box_smooth,
    downsample,
    resize_field,
    scale_components,
    upsample_field,
    warp_scale,
)


def search_offsets(half_width: int, *, device: torch.device) -> torch.Tensor:
    """All integer offsets of the search cube, ``((2h+1)^3, 3)`` float32 in coarse voxels."""
    steps = torch.arange(-half_width, half_width + 1, device=device, dtype=torch.float32)
    return torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), dim=-1).reshape(-1, 3)


def ssd_cost_volume(
    fixed: torch.Tensor, moving: torch.Tensor, half_width: int, *, smooth: int = 1,
    padding: str = "replicate",
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
    padding
        ``"replicate"``: the moving features past the border and the smoothing's border
        are the nearest voxel's; ``"zeros"``: both are zero (convex_adam_utils.py,
        correlate).

    Returns
    -------
    torch.Tensor
        ``((2h+1)^3, x, y, z)`` costs, offsets ordered as :func:`search_offsets`.
    """
    h = half_width
    x, y, z = fixed.shape[2:]
    if padding == "replicate":
        padded = F.pad(moving, [h] * 6, mode="replicate")
    elif padding == "zeros":
        padded = F.pad(moving, [h] * 6)
    else:
        raise ValueError(f"padding must be 'replicate' or 'zeros', got {padding!r}")
    width = 2 * h + 1
    # Filled and smoothed in place, a few maps at a time: the volume of a full-size image
    # (729 offsets x 340 000 cells, 1 GB) is then the step's only large tensor.
    cost = fixed.new_empty((width**3, x, y, z))
    index = 0
    for dx in range(width):
        for dy in range(width):
            for dz in range(width):
                shifted = padded[:, :, dx : dx + x, dy : dy + y, dz : dz + z]
                cost[index] = ((fixed - shifted) ** 2).sum(dim=1)[0]
                index += 1
    if smooth:
        for start in range(0, len(cost), _MAPS_PER_CHUNK):
            chunk = cost[start : start + _MAPS_PER_CHUNK]
            chunk.copy_(box_smooth(chunk[None], kernel=3, passes=smooth, padding=padding)[0])
    return cost


#: Cost maps smoothed together, and cost-volume entries (offsets x voxels) per argmin
#: chunk: bounded temporaries whatever the image size.
_MAPS_PER_CHUNK = 32
_ENTRIES_PER_CHUNK = 1 << 22


def coupled_argmin(
    cost: torch.Tensor,
    offsets: torch.Tensor,
    coupling: tuple[float, ...],
    *,
    smooth: int = 2,
    padding: str = "replicate",
    output: str = "argmin",
    tie_break: bool = True,
) -> torch.Tensor:
    """Argmin of the cost, coupled round by round to a smoothed copy of the field.

    Parameters
    ----------
    cost
        ``(O, x, y, z)`` costs, offsets ordered as ``offsets``.
    offsets
        ``(O, 3)`` offsets of the search cube, coarse voxels.
    coupling
        Weight of each round's penalty ``|o - smoothed field|^2``.
    smooth, padding
        Passes and border (``"replicate"`` or ``"zeros"``) of the 3^3 box filter that
        makes each round's smoothed field.
    output
        ``"argmin"``: the last round's argmin; ``"smoothed"``: its smoothed copy, as the
        released code returns (convex_adam_utils.py, coupled_convex).
    tie_break
        Break equal costs towards zero displacement; ``False`` lets the first offset of
        ``offsets`` win ties (``torch.argmin``), as released.

    Returns
    -------
    torch.Tensor
        ``(1, 3, x, y, z)`` displacement in coarse voxels.
    """
    if output not in ("argmin", "smoothed"):
        raise ValueError(f"output must be 'argmin' or 'smoothed', got {output!r}")
    shape = cost.shape[1:]
    flat = cost.reshape(cost.shape[0], -1)
    squared = (offsets**2).sum(dim=1, keepdim=True)
    # Where the features carry no information (air, uniform tissue) every offset costs the
    # same; break such ties towards zero displacement instead of the first offset.
    tie = 1e-6 * squared if tie_break else torch.zeros_like(squared)
    chunk = max(1, _ENTRIES_PER_CHUNK // max(len(offsets), 1))

    def argmin(weight: float = 0.0, smoothed: torch.Tensor | None = None) -> torch.Tensor:
        """Per voxel, the offset of least ``cost + tie + weight |o - smoothed|^2``,
        ``chunk`` voxels at a time. ``|o - s|^2 = |o|^2 - 2 o.s + |s|^2``, and ``|s|^2``
        is the same for every offset of a voxel, so it is left out of the comparison."""
        column = tie + weight * squared
        best = torch.empty(flat.shape[1], dtype=torch.long, device=flat.device)
        for start in range(0, flat.shape[1], chunk):
            part = flat[:, start : start + chunk] + column
            if smoothed is not None:
                part.addmm_(offsets, smoothed[:, start : start + chunk], alpha=-2.0 * weight)
            best[start : start + chunk] = part.argmin(dim=0)
        return offsets[best].T.reshape(1, 3, *shape)

    field = argmin()
    for weight in coupling:
        smoothed = box_smooth(field, kernel=3, passes=smooth, padding=padding).reshape(3, -1)
        field = argmin(weight, smoothed)
    if output == "smoothed":
        field = box_smooth(field, kernel=3, passes=smooth, padding=padding)
    return field


def compose_sample(
    field: torch.Tensor, displacement: torch.Tensor, *, scale: torch.Tensor | None = None,
    padding: str = "border",
) -> torch.Tensor:
    """Sample ``field`` (``(1, 3, x, y, z)``) at ``x + displacement(x)``.

    ``scale`` (``(3,)``) multiplies the displacement before sampling (see
    :func:`breastlib.smoothing.warp_scale`); ``padding`` is ``grid_sample``'s
    (``"border"`` or ``"zeros"``).
    """
    return pull_back(field, displacement, scale=scale, padding=padding)


def make_inverse_consistent(
    forward: torch.Tensor, backward: torch.Tensor, iterations: int, *, grid: str = "consistent"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetrise a forward/backward pair so that each approximately inverts the other.

    ``grid="released"`` composes as the released code does (convex_adam_utils.py,
    inverse_consistency): displacements scaled by ``n / (n - 1)`` when sampled and zeros
    outside the grid.
    """
    scale, padding = None, "border"
    if grid == "released":
        scale = warp_scale(tuple(forward.shape[2:]), device=forward.device, dtype=forward.dtype)
        padding = "zeros"
    for _ in range(iterations):
        new_forward = 0.5 * (forward - compose_sample(backward, forward, scale=scale,
                                                      padding=padding))
        new_backward = 0.5 * (backward - compose_sample(forward, backward, scale=scale,
                                                        padding=padding))
        forward, backward = new_forward, new_backward
    return forward, backward


def convex_step(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    *,
    grid_spacing: Factor = 6,
    half_width: int = 4,
    coupling: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    inverse_iterations: int = 15,
    cost_smooth: int = 1,
    cost_padding: str = "replicate",
    coupling_smooth: int = 2,
    coupling_padding: str = "replicate",
    coupling_output: str = "argmin",
    tie_break: bool = True,
    grid: str = "consistent",
    fine_shape: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """Run the coupled convex optimisation on two feature volumes.

    Parameters
    ----------
    fixed, moving
        ``(1, C, X, Y, Z)`` features on the same voxel grid.
    grid_spacing
        Pooling factor of the coarse grid, in voxels: one for all axes, or
        ``(fx, fy, fz)`` (the field is then in coarse voxels of each axis).
    half_width
        Search half-width in coarse voxels (so ``half_width * grid_spacing`` voxels).
    coupling
        Weights of the coupling rounds.
    inverse_iterations
        Inverse-consistency iterations (0 disables the backward field).
    cost_smooth, cost_padding
        See :func:`ssd_cost_volume` (``smooth``, ``padding``).
    coupling_smooth, coupling_padding, coupling_output, tie_break
        See :func:`coupled_argmin` (``smooth``, ``padding``, ``output``, ``tie_break``).
    grid
        ``"consistent"``: the image padded to whole coarse cells, inverse consistency in
        voxel units with border values outside, the field upsampled cell-centred;
        ``"released"``: as utils/convexAdam_3D.py, convex_adam_3d_param does it (trailing
        voxels dropped by the pooling, :func:`make_inverse_consistent` with
        ``grid="released"``, the coarse field resized to the image size).
    fine_shape
        ``None``: ``fixed`` and ``moving`` are on the image grid. Otherwise they are
        already pooled onto the coarse grid (as :func:`breastlib.smoothing.downsample`
        with ``grid_spacing`` pools them, ``floor=True`` for ``grid="released"``), and
        this is the image grid's ``(X, Y, Z)``: full-resolution features need not be kept.

    Returns
    -------
    torch.Tensor
        ``(1, 3, X, Y, Z)`` fixed -> moving displacement in fixed voxels.
    """
    if grid not in ("consistent", "released"):
        raise ValueError(f"grid must be 'consistent' or 'released', got {grid!r}")
    released = grid == "released"
    if fine_shape is None:
        shape = tuple(fixed.shape[2:])
        coarse_fixed = downsample(fixed, grid_spacing, floor=released)
        coarse_moving = downsample(moving, grid_spacing, floor=released)
    else:
        shape, coarse_fixed, coarse_moving = tuple(fine_shape), fixed, moving
    offsets = search_offsets(half_width, device=fixed.device)
    argmin = {"smooth": coupling_smooth, "padding": coupling_padding,
              "output": coupling_output, "tie_break": tie_break}
    cost = ssd_cost_volume(coarse_fixed, coarse_moving, half_width, smooth=cost_smooth,
                           padding=cost_padding)
    forward = coupled_argmin(cost, offsets, coupling, **argmin)
    if inverse_iterations > 0:
        del cost
        cost_back = ssd_cost_volume(coarse_moving, coarse_fixed, half_width,
                                    smooth=cost_smooth, padding=cost_padding)
        backward = coupled_argmin(cost_back, offsets, coupling, **argmin)
        forward, _ = make_inverse_consistent(forward, backward, inverse_iterations, grid=grid)
    if released:
        return resize_field(scale_components(forward, grid_spacing), shape)
    return upsample_field(forward, grid_spacing, shape)
