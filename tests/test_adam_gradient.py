"""Adam's hand-written gradient against autograd through the same loss.

The Adam step computes the gradient of (smoothing -> warp -> weighted SSD + diffusion) by
hand; here the same loss is written with differentiable torch operations (the running-sum
box filter, ``grid_sample``, :func:`diffusion_penalty`) and autograd's gradient must agree.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from breastlib._sampling import normalise_index
from breastlib.register.adam import _add_diffusion_gradient, _data_gradient, diffusion_penalty
from breastlib.smoothing import apply_axis_matrices, box_matrices, box_smooth, warp_scale

SHAPE = (11, 9, 7)


@pytest.mark.parametrize("padding", ["replicate", "zeros"])
@pytest.mark.parametrize("kernel,passes", [(3, 1), (3, 3), (7, 3), (5, 2)])
def test_axis_matrices_are_the_box_filter_and_their_transposes_its_adjoint(
        padding, kernel, passes):
    generator = torch.Generator().manual_seed(kernel * passes)
    field = torch.randn(1, 3, *SHAPE, generator=generator, dtype=torch.float64)
    other = torch.randn(1, 3, *SHAPE, generator=generator, dtype=torch.float64)
    matrices = box_matrices(SHAPE, kernel=kernel, passes=passes, padding=padding,
                            dtype=torch.float64)
    smoothed = apply_axis_matrices(field, matrices)
    torch.testing.assert_close(smoothed, box_smooth(field, kernel=kernel, passes=passes,
                                                    padding=padding))
    # <S x, y> == <x, S^T y>
    adjoint = apply_axis_matrices(other, matrices, transpose=True)
    torch.testing.assert_close((smoothed * other).sum(), (field * adjoint).sum())
    if padding == "replicate":  # a constant field stays constant
        constant = torch.full((1, 1, *SHAPE), 2.5, dtype=torch.float64)
        torch.testing.assert_close(apply_axis_matrices(constant, matrices), constant)


def _autograd_gradient(parameter, fixed, moving, share, scale, outside, kernel, passes,
                       padding, regularisation):
    parameter = parameter.clone().requires_grad_()
    field = box_smooth(parameter, kernel=kernel, passes=passes, padding=padding)
    axes = [torch.arange(s, dtype=parameter.dtype) for s in SHAPE]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    step = field[0].permute(1, 2, 3, 0)
    if scale is not None:
        step = step * scale
    warped = F.grid_sample(moving, normalise_index(identity + step, SHAPE)[None],
                           mode="bilinear", padding_mode=outside, align_corners=True)
    loss = (share * (warped - fixed) ** 2).sum() + regularisation * diffusion_penalty(field)
    loss.backward()
    return parameter.grad


@pytest.mark.parametrize("released", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("padding", ["replicate", "zeros"])
def test_hand_written_gradient_equals_autograd(released, weighted, padding):
    generator = torch.Generator().manual_seed(int(released) + 2 * int(weighted))
    channels = 5
    fixed = torch.rand(1, channels, *SHAPE, generator=generator, dtype=torch.float64)
    moving = torch.rand(1, channels, *SHAPE, generator=generator, dtype=torch.float64)
    # displacements of up to 3 voxels: some samples fall outside the grid
    parameter = 3 * torch.randn(1, 3, *SHAPE, generator=generator, dtype=torch.float64)
    share = 1.0 / (fixed[0, 0].numel())
    if weighted:
        share = share * torch.rand(1, 1, *SHAPE, generator=generator, dtype=torch.float64)
    scale = warp_scale(SHAPE, dtype=torch.float64) if released else None
    outside = "zeros" if released else "border"
    kernel, passes, regularisation = 3, 2, 1.7

    expected = _autograd_gradient(parameter, fixed, moving, share, scale, outside, kernel,
                                  passes, padding, regularisation)

    matrices = box_matrices(SHAPE, kernel=kernel, passes=passes, padding=padding,
                            dtype=torch.float64)
    field = apply_axis_matrices(parameter, matrices)
    axes = [torch.arange(s, dtype=torch.float64) for s in SHAPE]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    gradient = _data_gradient(field, fixed, moving, identity, share, scale, outside)
    _add_diffusion_gradient(gradient, field, regularisation)
    ours = apply_axis_matrices(gradient, matrices, transpose=True)

    assert expected.abs().max() > 1e-4  # a gradient worth comparing
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-12)
