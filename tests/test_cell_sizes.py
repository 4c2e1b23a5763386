"""Stage grids with a least cell size in mm (``convex_cell_mm``, ``adam_cell_mm``): the
pooling factors, per-axis pooling and units (a registration on fine voxels with them is in
test_work_spacing.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from breastlib import smoothing
from breastlib.errors import BreastlibError
from breastlib.phantom.grids import VOXEL_MM
from breastlib.register import get_profile
from breastlib.register.adam import adam_step, convex_start
from breastlib.register.convex import convex_step
from breastlib.smoothing import (
    as_factors,
    box_smooth,
    downsample,
    scale_components,
    upsample_field,
)


def test_pooling_factors_grow_to_the_cell_size_on_fine_voxels():
    params = get_profile("fast", convex_cell_mm=10.0, adam_cell_mm=5.0)
    assert params.convex_grid == 4 and params.adam_grid == 2
    factors = params.pooling_factors((0.7, 0.7, 1.1), (500, 500, 160))
    # floor(10 / 0.7) = 14, floor(10 / 1.1) = 9; floor(5 / 0.7) = 7, floor(5 / 1.1) = 4
    assert factors == {"convex": (14, 14, 9), "adam": (7, 7, 4)}
    # exact multiples count whole (10 / 2.5 = 4 in floating point, not 3.999...)
    assert params.pooling_factors((2.5, 0.1 * 25, 5.0), (64, 64, 64))["convex"] == (4, 4, 4)
    # never below the profile's grids, never fewer than MIN_CELLS (8) cells along an axis
    assert params.pooling_factors((4.0, 0.5, 0.5), (64, 64, 40)) == {
        "convex": (4, 8, 5), "adam": (2, 8, 5)}
    # 0: the profile's grids on every voxel size
    assert get_profile("fast", convex_cell_mm=0.0, adam_cell_mm=0.0).pooling_factors(
        (0.5, 0.5, 0.5), (500, 500, 500)) == {"convex": (4, 4, 4), "adam": (2, 2, 2)}
    # `fast` itself keeps cells of at least 6 and 3 mm: floor(6 / 0.5), floor(3 / 0.5)
    assert get_profile("fast").pooling_factors((0.5, 0.5, 0.5), (500, 500, 500)) == {
        "convex": (12, 12, 12), "adam": (6, 6, 6)}


@pytest.mark.parametrize("profile", ["fast", "corrected", "convexadam", "paper"])
def test_every_profile_keeps_its_grids_on_the_small_phantom_and_the_exam_build(profile):
    """The book's committed rows (small phantom voxels) and the real-exam numbers (3 mm
    working grid) were made with these factors: a cell size must not change them."""
    params = get_profile(profile)
    expected = {"convex": (params.convex_grid,) * 3, "adam": (params.adam_grid,) * 3}
    small = VOXEL_MM["small"]
    for inplane, thick in itertools.product(small["inplane"], small["slice"]):
        # a grid's voxels are its field of view over a whole number of voxels: a little
        # under the nominal size at most
        for shrink in (1.0, 0.98):
            spacing = (inplane * shrink, inplane * shrink, thick * shrink)
            assert params.pooling_factors(spacing, (128, 128, 48)) == expected
    assert params.pooling_factors((3.0, 3.0, 3.0), (90, 70, 60)) == expected


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "5"])
def test_a_cell_size_must_be_a_length(value):
    with pytest.raises(BreastlibError, match="cell size in mm"):
        get_profile("fast", adam_cell_mm=value)


def test_per_axis_pooling_averages_whole_padded_cells(monkeypatch):
    torch.manual_seed(0)
    tensor = torch.randn(1, 2, 13, 10, 7)
    factors = (3, 2, 4)
    padded = F.pad(tensor, [0, 1, 0, 0, 0, 2], mode="replicate")  # to 15 x 10 x 8
    expected = padded.reshape(1, 2, 5, 3, 5, 2, 2, 4).mean(dim=(3, 5, 7))
    torch.testing.assert_close(downsample(tensor, factors), expected)
    # in slabs of whole cells along X, the same to the bit
    monkeypatch.setattr(smoothing, "_DOWNSAMPLE_SLAB_ELEMENTS", 200)
    assert torch.equal(downsample(tensor, factors), F.avg_pool3d(
        padded, kernel_size=factors, stride=factors))
    # one factor given three times is the one factor, to the bit
    assert torch.equal(downsample(tensor, (2, 2, 2)), downsample(tensor, 2))
    assert downsample(tensor, factors, floor=True).shape == (1, 2, 4, 5, 1)
    with pytest.raises(ValueError, match="pooling factor"):
        as_factors((2, 0, 1))


def test_units_follow_each_axis():
    field = torch.ones(1, 3, 2, 2, 2)
    scaled = scale_components(field, (2, 3, 5))
    assert [float(scaled[0, k, 0, 0, 0]) for k in range(3)] == [2.0, 3.0, 5.0]
    torch.testing.assert_close(scale_components(scaled, (2, 3, 5), divide=True), field)
    fine = upsample_field(torch.ones(1, 3, 4, 5, 6), (3, 1, 2), (11, 5, 12))
    assert fine.shape == (1, 3, 11, 5, 12)
    assert [float(fine[0, k].min()) for k in range(3)] == [3.0, 1.0, 2.0]
    assert [float(fine[0, k].max()) for k in range(3)] == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("grid", ["consistent", "released"])
def test_a_constant_field_passes_anisotropic_adam_cells_unchanged(grid):
    """Fine voxels -> coarse voxels of each axis -> fine voxels: a constant displacement
    comes back as it went in (a factor applied to the wrong component would not)."""
    shape = (24, 18, 12)
    start = torch.tensor([1.5, -2.0, 0.75]).view(1, 3, 1, 1, 1).expand(1, 3, *shape)
    start = start.contiguous()
    kept = convex_start(start, grid_spacing=(4, 3, 2), smooth_kernel=3, smooth_passes=2,
                        grid=grid)
    torch.testing.assert_close(kept, start)


@pytest.mark.parametrize("factors", [(4, 3, 2), (3, 4, 2)])
def test_adam_on_anisotropic_cells_finds_a_shift_in_fine_voxels(factors):
    """Adam warps in coarse voxels of each axis: from zero it reaches a shift of about one
    cell along every axis, given in fine voxels."""
    torch.manual_seed(2)
    shape = (48, 36, 24)
    fixed = box_smooth(torch.randn(1, 4, *shape), kernel=5, passes=2)
    shift = torch.tensor([-4.0, 3.0, -2.0])  # moving(x + shift) = fixed(x)
    moving = torch.roll(fixed, shifts=(-4, 3, -2), dims=(2, 3, 4))
    field = adam_step(fixed / fixed.std(), moving / fixed.std(), torch.zeros(1, 3, *shape),
                      grid_spacing=factors, iterations=60, learning_rate=0.5,
                      regularisation=0.1, smooth_kernel=3, smooth_passes=1)
    centre = field[0, :, 12:36, 9:27, 6:18].reshape(3, -1).median(dim=1).values
    torch.testing.assert_close(centre, shift, atol=0.25, rtol=0)


def test_convex_step_on_anisotropic_cells_finds_a_shift_in_fine_voxels():
    torch.manual_seed(1)
    shape, factors = (48, 36, 24), (4, 3, 2)
    fixed = F.avg_pool3d(torch.randn(1, 3, *shape), 3, stride=1, padding=1)
    shift = (8, -6, 4)  # two cells along each axis
    moving = torch.roll(fixed, shifts=shift, dims=(2, 3, 4))
    field = convex_step(fixed, moving, grid_spacing=factors, half_width=3, coupling=(),
                        inverse_iterations=0)
    centre = field[0, :, 12:36, 9:27, 6:18].reshape(3, -1)
    np.testing.assert_allclose(centre.median(dim=1).values.numpy(), shift)
