"""The instance-optimisation (Adam) step of ConvexAdam.

The displacement lives on a grid ``grid_spacing`` times coarser than the image; each
iteration smooths it with a repeated box filter, warps the moving features and
minimises mean SSD plus a diffusion regulariser.

The gradient is written out rather than left to autograd: the smoothing is linear and
separable (one small matrix per axis, :func:`breastlib.smoothing.box_matrices`, whose
transpose is its adjoint), the regulariser's gradient is a difference of differences, and
the data term's is ``grid_sample``'s gradient with respect to its grid. An iteration then
builds no graph and runs no cumulative-sum backward; on a small phantom pair at the
``convexadam`` package's defaults this took Adam from 9.0 s to 5.9 s on 2 CPU cores, with
the same gradient to float32 rounding (tests/test_adam_gradient.py).

``padding`` and ``grid`` default to breastlib's behaviour; ``"zeros"`` and ``"released"``
reproduce utils/convexAdam_3D.py, convex_adam_3d_param of the paper's released code (see
:mod:`breastlib.profiles.corrections`). ``cost="sum"`` sums the SSD over the feature
channels as the ``convexadam`` package does, which sets the weight of ``regularisation``
against the data term (see :func:`adam_step`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from breastlib._sampling import grid_gradient_slabs, grid_sample_slabs
from breastlib.smoothing import (
    Factor,
    Passes,
    apply_axis_matrices,
    as_factors,
    box_matrices,
    box_smooth,
    downsample,
    resize_field,
    scale_components,
    upsample_field,
    warp_scale,
)


def diffusion_penalty(field: torch.Tensor) -> torch.Tensor:
    """Mean squared forward differences of a ``(1, 3, x, y, z)`` field along each axis."""
    dx = field[:, :, 1:] - field[:, :, :-1]
    dy = field[:, :, :, 1:] - field[:, :, :, :-1]
    dz = field[:, :, :, :, 1:] - field[:, :, :, :, :-1]
    return (dx**2).mean() + (dy**2).mean() + (dz**2).mean()


def _coarse_start(initial: torch.Tensor, grid_spacing: Factor, grid: str) -> torch.Tensor:
    """A fine ``(1, 3, X, Y, Z)`` voxel field as a coarse field in coarse voxels: averaged
    over whole cells, or (``grid="released"``) resized to ``n // g`` cells."""
    if grid == "released":
        shape = tuple(s // g for s, g in zip(initial.shape[2:], as_factors(grid_spacing),
                                             strict=True))
        return scale_components(resize_field(initial, shape), grid_spacing, divide=True)
    return scale_components(downsample(initial, grid_spacing), grid_spacing, divide=True)


def _smoothed_fine(coarse: torch.Tensor, grid_spacing: Factor, shape: tuple[int, ...],
                   kernel: int, passes: Passes, padding: str, grid: str) -> torch.Tensor:
    """Smooth a coarse field as every iteration does and bring it back to fine voxels."""
    smoothed = box_smooth(coarse, kernel=kernel, passes=passes, padding=padding)
    if grid == "released":
        return resize_field(scale_components(smoothed, grid_spacing), shape)
    return upsample_field(smoothed, grid_spacing, shape)


def _data_gradient(
    field: torch.Tensor, fixed: torch.Tensor, moving: torch.Tensor, identity: torch.Tensor,
    share: torch.Tensor | float, scale: torch.Tensor | None, outside: str,
    per_voxel: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient of the data term with respect to a ``(1, 3, x, y, z)`` coarse field.

    The data term is ``sum(share * (moving(identity + field) - fixed) ** 2)`` (``share``
    holds the normalisation and the voxel weights). Its gradient is that of the bilinear
    sample with respect to the sampling grid, weighted by ``2 * share * difference``, which
    is what autograd would compute through ``grid_sample``; computed directly, one Adam
    iteration builds no graph and keeps one copy of the warped features. ``per_voxel``
    (``(3,)``, :func:`_per_voxel`) may be passed in, so that a loop on a GPU copies
    nothing from the host.
    """
    shape = tuple(field.shape[2:])
    step = field[0].permute(1, 2, 3, 0)
    if scale is not None:
        step = step * scale
    if per_voxel is None:
        per_voxel = _per_voxel(shape, field)
    # voxel (x, y, z) -> grid_sample's (z, y, x) in [-1, 1] (align_corners=True)
    grid = ((identity + step) * per_voxel - 1.0).flip(-1)[None]
    # In slabs: on a CPU, one grid_sample over one volume runs on one core.
    warped = grid_sample_slabs(moving, grid, padding=outside)
    weighted = warped.sub_(fixed).mul_(share).mul_(2.0)
    grid_gradient = grid_gradient_slabs(weighted, moving, grid, padding=outside)
    # The grid holds (z, y, x) in [-1, 1]: back to voxels along (x, y, z).
    gradient = grid_gradient[0].flip(-1) * per_voxel
    if scale is not None:
        gradient = gradient * scale
    return gradient.permute(3, 0, 1, 2)[None].contiguous()


def _per_voxel(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """``(3,)`` normalised grid units per voxel, ``2 / (n - 1)``, along (x, y, z)."""
    return torch.tensor([2.0 / max(s - 1, 1) for s in shape], dtype=like.dtype,
                        device=like.device)


def _add_diffusion_gradient(gradient: torch.Tensor, field: torch.Tensor,
                            weight: float) -> None:
    """Add ``weight`` times the gradient of :func:`diffusion_penalty` at ``field`` to
    ``gradient`` (both ``(1, 3, x, y, z)``), in place."""
    for dim in (2, 3, 4):
        length = field.shape[dim]
        if length < 2:
            continue
        difference = field.narrow(dim, 1, length - 1) - field.narrow(dim, 0, length - 1)
        difference.mul_(2.0 * weight / difference.numel())
        gradient.narrow(dim, 1, length - 1).add_(difference)
        gradient.narrow(dim, 0, length - 1).sub_(difference)


def convex_start(
    initial: torch.Tensor, *, grid_spacing: Factor = 2, smooth_kernel: int = 7,
    smooth_passes: Passes = 5, padding: str = "replicate", grid: str = "consistent",
) -> torch.Tensor:
    """The field Adam starts from, at full resolution: ``adam_step`` with no iterations.

    Parameters
    ----------
    initial
        ``(1, 3, X, Y, Z)`` convex-step displacement in fixed voxels.
    grid_spacing, smooth_kernel, smooth_passes, padding, grid
        As for :func:`adam_step`.
    """
    with torch.no_grad():
        return _smoothed_fine(_coarse_start(initial, grid_spacing, grid), grid_spacing,
                              tuple(initial.shape[2:]), smooth_kernel, smooth_passes,
                          padding, grid)


class _Adam:
    """Adam (Kingma and Ba, 2015) on one tensor, with ``torch.optim.Adam``'s defaults
    (betas 0.9 and 0.999, eps 1e-8, no weight decay) and its single-tensor arithmetic,
    so that the steps are the same to the last bit on a CPU.

    Written out because constructing ``torch.optim.Adam`` imports ``torch._dynamo`` (and
    sympy with it): about a second of every ``breastlib register`` process.
    """

    def __init__(self, parameter: torch.Tensor, lr: float, betas: tuple[float, float] = (
            0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameter, self.lr, self.betas, self.eps = parameter, lr, betas, eps
        self.exp_avg = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        self.steps = 0

    @torch.no_grad()
    def step(self, gradient: torch.Tensor | None = None) -> None:
        """One update from ``gradient`` (default ``parameter.grad``)."""
        grad = self.parameter.grad if gradient is None else gradient
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2)
        bias_correction1 = 1 - beta1 ** self.steps
        bias_correction2 = 1 - beta2 ** self.steps
        step_size = self.lr / bias_correction1
        denom = (self.exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(self.eps)
        self.parameter.addcdiv_(self.exp_avg, denom, value=-step_size)


@torch.no_grad()
def adam_step(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    initial: torch.Tensor,
    *,
    grid_spacing: Factor = 2,
    iterations: int = 1000,
    learning_rate: float = 3.0,
    regularisation: float = 2.0,
    smooth_kernel: int = 7,
    smooth_passes: Passes = 5,
    padding: str = "replicate",
    grid: str = "consistent",
    cost: str = "mean",
    weight: torch.Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    pooled: bool = False,
) -> torch.Tensor:
    """Refine a displacement by Adam on the SSD of feature volumes.

    Parameters
    ----------
    fixed, moving
        ``(1, C, X, Y, Z)`` features on the same voxel grid.
    initial
        ``(1, 3, X, Y, Z)`` starting displacement in fixed voxels (the convex result).
    grid_spacing
        The field and features are optimised at 1/``grid_spacing`` resolution (one
        factor for all axes, or ``(fx, fy, fz)``: the field is then in coarse voxels of
        each axis).
    iterations, learning_rate
        Adam iterations and step size (coarse voxels per step, early on).
    regularisation
        Weight of :func:`diffusion_penalty` (coarse voxel units).
    smooth_kernel, smooth_passes
        Box filter applied to the field every iteration (``smooth_passes``: one count for
        every axis, or ``(px, py, pz)``).
    padding
        Border of that filter: ``"replicate"`` or ``"zeros"`` (the released code's
        ``avg_pool3d(..., padding=k // 2)``, which pulls the field towards zero near the
        border).
    grid
        ``"consistent"``: features and field on whole cells of the padded image, the warp
        in voxel units with border values outside. ``"released"``: as
        convex_adam_3d_param does it: ``n // g`` cells (trailing voxels dropped), the start
        resized from the fine field, every warp moving ``n / (n - 1)`` times the field
        (:func:`breastlib.smoothing.warp_scale`) with zeros outside, and the result
        resized back to the image size.
    cost
        The data term: ``"mean"``, the squared feature difference averaged over channels
        and voxels; ``"sum"``, summed over channels and averaged over voxels, as the
        ``convexadam`` package computes it (convex_adam_MIND.py, convex_adam_pt: the
        channel mean times 12, its number of MIND-SSC channels). With C channels,
        ``"sum"`` with ``regularisation`` r runs as ``"mean"`` with r / C (Adam's steps do
        not change when the whole loss is scaled).
    weight
        ``(1, 1, X, Y, Z)`` weight of each voxel in the data term, in [0, 1] (``None``:
        every voxel counts the same). A zero weight leaves a voxel's displacement to the
        regulariser and the smoothing: used where the moving image has no data.
    progress
        Called with the number of iterations done (for progress bars).
    pooled
        ``fixed`` and ``moving`` are already pooled onto Adam's grid (as
        :func:`breastlib.smoothing.downsample` with ``grid_spacing`` pools them,
        ``floor=True`` for ``grid="released"``); ``initial`` and ``weight`` stay on the
        image grid, whose shape they give.

    Returns
    -------
    torch.Tensor
        ``(1, 3, X, Y, Z)`` displacement in fixed voxels.
    """
    if grid not in ("consistent", "released"):
        raise ValueError(f"grid must be 'consistent' or 'released', got {grid!r}")
    if cost not in ("mean", "sum"):
        raise ValueError(f"cost must be 'mean' or 'sum', got {cost!r}")
    released = grid == "released"
    shape = tuple(initial.shape[2:])
    with torch.no_grad():
        if pooled:
            coarse_fixed, coarse_moving = fixed, moving
        else:
            coarse_fixed = downsample(fixed, grid_spacing, floor=released)
            coarse_moving = downsample(moving, grid_spacing, floor=released)
        start = _coarse_start(initial, grid_spacing, grid)
        coarse_weight = None
        if weight is not None:
            coarse_weight = downsample(weight.to(fixed.dtype), grid_spacing, floor=released)
            coarse_weight = coarse_weight / coarse_weight.mean().clamp_min(1e-12)
    coarse_shape = tuple(coarse_fixed.shape[2:])
    axes = [torch.arange(s, device=fixed.device, dtype=fixed.dtype) for s in coarse_shape]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    scale = warp_scale(coarse_shape, device=fixed.device, dtype=fixed.dtype) if released else None
    outside = "zeros" if released else "border"
    smoothing = box_matrices(coarse_shape, kernel=smooth_kernel, passes=smooth_passes,
                             padding=padding, device=fixed.device, dtype=fixed.dtype)
    # d(mean) / d(squared difference): one voxel's share of the data term.
    voxels = coarse_fixed[0, 0].numel()
    share = 1.0 / (voxels if cost == "sum" else voxels * coarse_fixed.shape[1])
    if coarse_weight is not None:
        share = coarse_weight * share

    per_voxel = _per_voxel(coarse_shape, fixed)  # made once: no host copy in the loop
    parameter = start.clone()
    optimiser = _Adam(parameter, learning_rate)
    for iteration in range(iterations):
        field = apply_axis_matrices(parameter, smoothing)
        gradient = _data_gradient(field, coarse_fixed, coarse_moving, identity, share,
                                  scale, outside, per_voxel)
        _add_diffusion_gradient(gradient, field, regularisation)
        optimiser.step(apply_axis_matrices(gradient, smoothing, transpose=True))
        if progress is not None:
            progress(iteration + 1)
    return _smoothed_fine(parameter, grid_spacing, shape, smooth_kernel, smooth_passes,
                          padding, grid)
