"""Adam's settings in millimetres on fine cells: the field smoothing's least width
(``adam_smooth_mm``: the passes rule, per-axis passes in the filter and its matrices) and
the regulariser's reference cell (``regularisation_cell_mm``); registrations on fine voxels
with them are in test_work_spacing.py."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from breastlib.errors import BreastlibError
from breastlib.phantom.grids import VOXEL_MM
from breastlib.register import get_profile
from breastlib.smoothing import apply_axis_matrices, as_passes, box_matrices, box_smooth


def _impulse_std_cells(length: int, kernel: int, passes: int) -> float:
    """Standard deviation (cells) of one axis's filter, read from its matrix's middle row."""
    row = box_matrices((length,), kernel=kernel, passes=passes, device="cpu",
                       dtype=torch.float64)[0][length // 2]
    index = torch.arange(length, dtype=torch.float64)
    mean = float((row * index).sum())
    return math.sqrt(float((row * (index - mean) ** 2).sum()))


def _moving_average(tensor: torch.Tensor, dim: int, kernel: int, padding: str
                    ) -> torch.Tensor:
    """A centred moving average along one axis, by avg_pool1d (an independent oracle)."""
    moved = tensor.movedim(dim, -1)
    lines = moved.reshape(-1, 1, moved.shape[-1])
    half = kernel // 2
    if padding == "replicate":
        lines = F.avg_pool1d(F.pad(lines, (half, half), mode="replicate"), kernel, stride=1)
    else:
        lines = F.avg_pool1d(lines, kernel, stride=1, padding=half, count_include_pad=True)
    return lines.reshape(moved.shape).movedim(-1, dim)


def test_fine_cells_get_the_passes_that_reach_the_width():
    params = get_profile("fast", adam_smooth_mm=15.0)
    assert (params.smooth_kernel, params.smooth_passes) == (7, 3)
    # cells 2.8, 2.8, 2.2 mm; one pass of 7 has variance 4 cells^2:
    # ceil((15 / 2.8)^2 / 4) = ceil(7.17) = 8, ceil((15 / 2.2)^2 / 4) = ceil(11.6) = 12
    assert params.smoothing_passes((0.7, 0.7, 1.1), (4, 4, 2)) == (8, 8, 12)
    # coarse cells keep the profile's passes (never fewer)
    assert params.smoothing_passes((3.0, 3.0, 3.0), (2, 2, 2)) == (3, 3, 3)
    # a width reached exactly takes no extra pass: (8 / 1)^2 / 4 = 16
    assert get_profile("fast", adam_smooth_mm=8.0).smoothing_passes(
        (0.5, 0.5, 0.5), (2, 2, 2)) == (16, 16, 16)
    # 0: the profile's passes on every grid
    assert get_profile("fast", adam_smooth_mm=0.0).smoothing_passes(
        (0.5, 0.5, 0.5), (2, 2, 2)) == (3, 3, 3)


def test_the_passes_reach_the_width_in_millimetres():
    params = get_profile("fast", adam_smooth_mm=15.0)
    for spacing, factors in [((0.7, 0.7, 1.1), (4, 4, 2)), ((0.5, 0.9, 1.3), (3, 2, 2))]:
        passes = params.smoothing_passes(spacing, factors)
        for s, f, p in zip(spacing, factors, passes, strict=True):
            cell = s * f
            std_mm = cell * _impulse_std_cells(301, params.smooth_kernel, p)
            fewer_mm = cell * _impulse_std_cells(301, params.smooth_kernel, p - 1)
            assert fewer_mm < 15.0 <= std_mm + 1e-6, (spacing, factors, passes)


@pytest.mark.parametrize("profile", ["fast", "corrected", "convexadam", "paper"])
def test_every_profile_keeps_its_passes_on_the_small_phantom_and_the_exam_build(profile):
    """The book's committed rows (small phantom voxels) and the real-exam numbers (3 mm
    working grid) were made with ``smooth_passes`` on every axis: the width must not
    change them."""
    params = get_profile(profile)
    expected = (params.smooth_passes,) * 3
    small = VOXEL_MM["small"]
    for inplane, thick in itertools.product(small["inplane"], small["slice"]):
        spacing = (inplane, inplane, thick)
        factors = params.pooling_factors(spacing, (128, 128, 48))["adam"]
        assert params.smoothing_passes(spacing, factors) == expected
    spacing = (3.0, 3.0, 3.0)
    factors = params.pooling_factors(spacing, (90, 70, 60))["adam"]
    assert params.smoothing_passes(spacing, factors) == expected


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "5"])
def test_a_smoothing_width_must_be_a_length(value):
    with pytest.raises(BreastlibError, match="smoothing width in mm"):
        get_profile("fast", adam_smooth_mm=value)


@pytest.mark.parametrize("passes", [-1, (1, 2), (1, -1, 2)])
def test_passes_are_counts(passes):
    with pytest.raises(ValueError, match="passes"):
        as_passes(passes)


@pytest.mark.parametrize("padding", ["replicate", "zeros"])
def test_per_axis_passes_filter_each_axis_that_often(padding):
    field = torch.randn(1, 3, 11, 9, 13, generator=torch.Generator().manual_seed(0))
    # the same count on every axis is the plain filter, to the bit
    assert torch.equal(box_smooth(field, kernel=5, passes=(2, 2, 2), padding=padding),
                       box_smooth(field, kernel=5, passes=2, padding=padding))
    # (2, 0, 3): two passes along x, none along y, three along z; the axes commute
    expected = field
    for dim, count in ((2, 2), (4, 3)):
        for _ in range(count):
            expected = _moving_average(expected, dim, 5, padding)
    got = box_smooth(field, kernel=5, passes=(2, 0, 3), padding=padding)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # the matrices Adam uses apply the same filter
    matrices = box_matrices(field.shape[2:], kernel=5, passes=(2, 0, 3), padding=padding)
    torch.testing.assert_close(apply_axis_matrices(field, matrices), got, rtol=1e-5,
                               atol=1e-6)
    assert torch.equal(matrices[1], torch.eye(9))


def test_finer_adam_cells_get_a_stronger_regulariser():
    params = get_profile("fast", regularisation_cell_mm=4.4)
    assert params.regularisation == 2.0
    # cells 2.28 x 2.28 x 2.22 mm (a full-size scan on 3 mm cells): geometric mean 2.26
    cell = (2.28 * 2.28 * 2.22) ** (1 / 3)
    assert params.regularisation_weight((0.76, 0.76, 1.11), (3, 3, 2)) == pytest.approx(
        2.0 * 4.4 / cell)
    # cells at least that large keep the weight, exactly
    assert params.regularisation_weight((2.2, 2.2, 2.2), (2, 2, 2)) == 2.0
    assert params.regularisation_weight((3.0, 3.0, 3.0), (2, 2, 2)) == 2.0
    # 0: the profile's weight on every grid
    assert get_profile("fast", regularisation_cell_mm=0.0).regularisation_weight(
        (0.5, 0.5, 0.5), (2, 2, 2)) == 2.0


@pytest.mark.parametrize("profile", ["fast", "corrected", "convexadam", "paper"])
def test_every_profile_keeps_its_regulariser_on_the_small_phantom_and_the_exam_build(
        profile):
    params = get_profile(profile)
    small = VOXEL_MM["small"]
    for inplane, thick in itertools.product(small["inplane"], small["slice"]):
        # a grid's voxels are its field of view over a whole number of voxels: a little
        # under the nominal size at most
        spacing = (inplane * 0.98, inplane * 0.98, thick * 0.98)
        factors = params.pooling_factors(spacing, (128, 128, 48))["adam"]
        assert params.regularisation_weight(spacing, factors) == params.regularisation
    factors = params.pooling_factors((3.0, 3.0, 3.0), (90, 70, 60))["adam"]
    assert params.regularisation_weight((3.0, 3.0, 3.0), factors) == params.regularisation


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "5"])
def test_a_regularisation_cell_must_be_a_length(value):
    with pytest.raises(BreastlibError, match=r"regularisation_cell_mm.*cell size in mm"):
        get_profile("fast", regularisation_cell_mm=value)
