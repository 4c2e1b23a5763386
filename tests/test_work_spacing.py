"""Registering fine-voxel scans on blocks of about the profile's ``work_spacing``, or on stage
cells of at least ``convex_cell_mm`` and ``adam_cell_mm``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_volumes import blob_volume, centred_affine

from breastlib.errors import BreastlibError
from breastlib.register import get_profile, register_pair
from breastlib.register.initial import block_average, block_factors
from breastlib.smoothing import upsample_blocks
from breastlib.volume import Volume


def test_blocks_back_to_the_fine_grid_keep_a_linear_field_exactly():
    """A field linear in fine voxels, taken at the block centres, comes back exactly
    between the first and last centres and as the nearest block's value beyond them."""
    shape, factors = (11, 9, 7), (2, 3, 1)
    slope = np.array([[0.2, -0.1, 0.05], [0.0, 0.3, -0.2], [0.1, 0.1, 0.4]])
    offset = np.array([1.0, -2.0, 0.5])

    def field_at(index):  # (..., 3) fine voxel positions -> (3, ...) fine voxels
        return np.moveaxis(index @ slope.T + offset, -1, 0)

    blocks = [n // f for n, f in zip(shape, factors, strict=True)]
    centres = np.stack(np.meshgrid(*[np.arange(b) * f + (f - 1) / 2 for b, f in zip(
        blocks, factors, strict=True)], indexing="ij"), axis=-1)
    coarse = field_at(centres) / np.array(factors)[:, None, None, None]  # coarse voxels
    fine = upsample_blocks(torch.tensor(coarse[None], dtype=torch.float64), factors, shape)
    assert fine.shape == (1, 3, *shape)

    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    first = np.array([(f - 1) / 2 for f in factors])
    last = np.array([(b - 1) * f + (f - 1) / 2 for b, f in zip(blocks, factors, strict=True)])
    expected = field_at(np.clip(index, first, last))
    np.testing.assert_allclose(fine[0].numpy(), expected, atol=1e-9)


def test_block_factors_follow_the_voxel_size():
    fine = blob_volume((160, 80, 40), centred_affine((160, 80, 40), spacing=(0.7, 1.0, 2.4)))
    assert block_factors(fine, 2.5) == (4, 2, 1)
    assert block_factors(fine, 0.5) == (1, 1, 1)
    # never below 32 voxels along an axis
    assert block_factors(fine, 30.0) == (5, 2, 1)


@pytest.fixture(scope="module")
def fine_pair():
    """A blob on 1.0 x 1.0 x 1.2 mm voxels and a copy shifted by a known amount (mm)."""
    shape = (88, 80, 64)
    affine = centred_affine(shape, spacing=(1.0, 1.0, 1.2), angle_deg=11.0, lps=True)
    shift = np.array([3.0, -4.0, 2.5])
    return (blob_volume(shape, affine, seed=5), blob_volume(shape, affine, shift_mm=shift, seed=5),
            shift)


def test_a_fine_scan_is_registered_on_blocks_and_answered_on_its_own_grid(
        fine_pair, centre_region):
    fixed, moving, shift = fine_pair
    assert get_profile("fast").work_spacing == 0.0  # an option, not the default
    result = register_pair(fixed, moving, init="none", work_spacing=2.5)  # `fast`
    # The registration ran on 2 x 2 x 2 blocks; every field is on the fixed grid.
    np.testing.assert_allclose(result.work_spacing_mm, [2.0, 2.0, 2.4])
    assert result.params["work_spacing"] == 2.5
    assert result.displacement.grid.same_as(fixed.grid)
    assert result.displacement.field.shape == (3, *fixed.shape)
    u = result.displacement.millimetres()
    region = centre_region(fixed.shape)
    error = np.linalg.norm(u[:, region] - shift[:, None], axis=0)
    assert error.mean() < 1.0, f"shift {shift} mm recovered with mean error {error.mean():.2f}"


def test_a_fine_scan_is_registered_on_cells_of_the_given_size(fine_pair, centre_region):
    fixed, moving, shift = fine_pair
    result = register_pair(fixed, moving, init="none", convex_cell_mm=8.0, adam_cell_mm=3.0)
    assert result.pooling_factors == {"convex": (8, 8, 6), "adam": (3, 3, 2)}
    assert result.params["convex_cell_mm"] == 8.0 and result.params["adam_cell_mm"] == 3.0
    assert result.displacement.grid.same_as(fixed.grid)
    u = result.displacement.millimetres()
    region = centre_region(fixed.shape)
    error = np.linalg.norm(u[:, region] - shift[:, None], axis=0)
    assert error.mean() < 1.0, f"shift {shift} mm recovered with mean error {error.mean():.2f}"


def test_a_fine_scan_is_registered_with_the_smoothing_width_asked(fine_pair, centre_region):
    fixed, moving, shift = fine_pair
    plain = register_pair(fixed, moving, init="none", adam_cell_mm=3.0, adam_smooth_mm=0.0,
                          iterations=0)
    assert plain.smoothing_passes == (3, 3, 3)
    result = register_pair(fixed, moving, init="none", convex_cell_mm=8.0, adam_cell_mm=3.0,
                           adam_smooth_mm=15.0)
    # Adam cells of 3 x 3 x 2.4 mm: ceil((15 / 3)^2 / 4) = 7, ceil((15 / 2.4)^2 / 4) = 10
    assert result.smoothing_passes == (7, 7, 10)
    assert result.params["adam_smooth_mm"] == 15.0
    u = result.displacement.millimetres()
    region = centre_region(fixed.shape)
    error = np.linalg.norm(u[:, region] - shift[:, None], axis=0)
    assert error.mean() < 1.0, f"shift {shift} mm recovered with mean error {error.mean():.2f}"


def test_work_spacing_zero_registers_the_images_own_voxels(fine_pair):
    fixed, moving, _ = fine_pair
    result = register_pair(fixed, moving, init="none", iterations=2)
    np.testing.assert_allclose(result.work_spacing_mm, fixed.spacing)


def test_coarse_scans_are_registered_as_they_are(blob_pair):
    """Voxels of 2.0-3.0 mm are already about 2.5 mm: the same field with or without."""
    fixed, moving, _ = blob_pair
    assert block_factors(fixed, 2.5) == (1, 1, 1)
    with_blocks = register_pair(fixed, moving, iterations=10, work_spacing=2.5)
    without = register_pair(fixed, moving, iterations=10)
    np.testing.assert_array_equal(with_blocks.displacement.field, without.displacement.field)


def test_block_average_of_the_working_grid_keeps_world_positions(fine_pair):
    fixed, _, _ = fine_pair
    blocks = block_average(fixed, 2.5)
    # Block (0, 0, 0) is centred on the mean of fine voxels 0 and 1 along each axis.
    centre = fixed.grid.index_to_world(np.array([[0.5, 0.5, 0.5]]))[0]
    np.testing.assert_allclose(blocks.grid.index_to_world(np.zeros((1, 3)))[0], centre,
                               atol=1e-9)


def test_blocks_match_simpleitk_bin_shrink(fine_pair):
    """SimpleITK's BinShrinkImageFilter averages the same whole blocks (trailing voxels
    dropped) onto the same grid: an independent check of the blocks' values and geometry."""
    import SimpleITK as sitk

    from breastlib.volume import sitk_to_array_affine, volume_to_sitk

    whole, _, _ = fine_pair
    # odd sizes: the last voxel along each axis fills no block
    fixed = Volume.from_array(whole.array[:87, :79, :63], whole.affine)
    factors = block_factors(fixed, 2.5)
    assert factors == (2, 2, 1)  # 63 voxels make no 32 blocks of 2
    blocks = block_average(fixed, 2.5)
    assert blocks.shape == (43, 39, 63)
    shrunk = sitk.BinShrink(volume_to_sitk(fixed), [int(f) for f in factors])
    array, affine = sitk_to_array_affine(shrunk)
    np.testing.assert_allclose(blocks.affine, affine, atol=1e-6)
    np.testing.assert_allclose(blocks.array, array, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "2.5", True])
def test_a_work_spacing_that_is_no_voxel_size_is_refused(value):
    with pytest.raises(BreastlibError, match="work_spacing"):
        get_profile("fast", work_spacing=value)


def test_fast_registers_a_fine_scan_with_its_fine_voxel_rules(fine_pair, centre_region):
    """`fast`'s defaults on 1 x 1 x 1.2 mm voxels: cells of at least 6 / 3 mm, smoothing
    at least 15 mm wide, the regulariser scaled to cells of 4.4 mm."""
    fixed, moving, shift = fine_pair
    result = register_pair(fixed, moving, init="none")
    assert result.pooling_factors == {"convex": (6, 6, 5), "adam": (3, 3, 2)}
    assert result.smoothing_passes == (7, 7, 10)
    cell = (3.0 * 3.0 * 2.4) ** (1 / 3)
    assert result.regularisation_weight == pytest.approx(2.0 * 4.4 / cell)
    unscaled = register_pair(fixed, moving, init="none", regularisation_cell_mm=0.0,
                             iterations=0)
    assert unscaled.regularisation_weight == 2.0
    u = result.displacement.millimetres()
    region = centre_region(fixed.shape)
    error = np.linalg.norm(u[:, region] - shift[:, None], axis=0)
    assert error.mean() < 1.0, f"shift {shift} mm recovered with mean error {error.mean():.2f}"
