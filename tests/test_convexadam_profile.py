"""The ``convexadam`` profile against the ``convexadam`` package (0.2.0, convex_adam_pt).

The package sums Adam's squared feature difference over the twelve MIND-SSC channels (its
channel mean times 12) where breastlib averages it: ``adam_cost="sum"`` does the former,
and is what makes the package's regularisation weight of 1.25 mean the same here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_volumes import blob_volume, centred_affine

from breastlib.errors import BreastlibError
from breastlib.profiles import PROFILES, get_profile
from breastlib.register import register_pair
from breastlib.register.adam import adam_step


def _features(seed: int = 0, channels: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    fixed = torch.rand(1, channels, 16, 14, 12, generator=generator)
    moving = torch.roll(fixed, shifts=(1, -1, 1), dims=(2, 3, 4))
    return fixed, moving


def test_summed_cost_is_the_mean_cost_with_regularisation_divided_by_channels():
    """Adam's steps do not change when the whole loss is scaled, so summing over C
    channels with weight r runs as averaging with weight r / C."""
    fixed, moving = _features(channels=4)
    start = torch.zeros(1, 3, 16, 14, 12)
    common = dict(iterations=15, learning_rate=0.5, smooth_kernel=3, smooth_passes=1)
    summed = adam_step(fixed, moving, start, regularisation=1.0, cost="sum", **common)
    mean = adam_step(fixed, moving, start, regularisation=0.25, cost="mean", **common)
    # Equal up to Adam's epsilon (1e-8 against gradients of about 1e-5 here).
    assert (summed - mean).abs().max() < 0.02 and (summed - mean).abs().mean() < 1e-3
    # ...and not the same as averaging with the same weight (fields of about 0.8 voxels).
    same_weight = adam_step(fixed, moving, start, regularisation=1.0, cost="mean", **common)
    assert (summed - same_weight).abs().mean() > 0.05


def test_mean_cost_is_the_default_bit_for_bit():
    fixed, moving = _features(seed=1)
    start = torch.zeros(1, 3, 16, 14, 12)
    common = dict(iterations=5, learning_rate=0.5, smooth_kernel=3, smooth_passes=1)
    assert torch.equal(adam_step(fixed, moving, start, **common),
                       adam_step(fixed, moving, start, cost="mean", **common))


def test_unknown_cost_is_rejected():
    fixed, moving = _features()
    with pytest.raises(ValueError, match="cost must be"):
        adam_step(fixed, moving, torch.zeros(1, 3, 16, 14, 12), iterations=1, cost="median")
    with pytest.raises(BreastlibError, match="adam_cost='median'"):
        get_profile("fast", adam_cost="median")


def test_only_the_convexadam_profile_sums_the_cost():
    assert PROFILES["convexadam"].adam_cost == "sum"
    assert PROFILES["convexadam"].regularisation == 1.25  # the package's lambda_weight
    for name in ("paper", "corrected", "fast"):
        assert PROFILES[name].adam_cost == "mean", name
    assert get_profile("paper+grid").adam_cost == "mean"


def test_convexadam_profile_takes_the_package_defaults():
    """convex_adam_pt's defaults: MIND-SSC r=1 d=2, grid 6, half-width 4, 15
    inverse-consistency iterations, Adam on a 2x coarser grid, 80 iterations at lr 1,
    lambda 1.25, three 3^3 box passes per iteration, no initial alignment."""
    p = PROFILES["convexadam"]
    assert (p.mind_radius, p.mind_dilation, p.mind_floor, p.feature_scale) == (1, 2, 0.0, 1.0)
    assert (p.convex_grid, p.half_width, p.inverse_iterations) == (6, 4, 15)
    assert p.coupling == (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    assert (p.adam_grid, p.iterations, p.learning_rate) == (2, 80, 1.0)
    assert (p.smooth_kernel, p.smooth_passes) == (3, 3)
    assert p.init == "none" and not p.guard


def test_pipeline_passes_the_cost_switch_through():
    """register_pair honours adam_cost: with MIND's 12 channels, "sum" at weight r is
    "mean" at r / 12."""
    shape = (32, 28, 24)
    affine = centred_affine(shape, spacing=(2.0, 2.4, 3.0))
    fixed = blob_volume(shape, affine, seed=3)
    moving = blob_volume(shape, affine, shift_mm=np.array([3.0, -2.0, 2.0]), seed=3)
    common = dict(method="mind", profile="convexadam", device="cpu", iterations=8,
                  convex_grid=4, half_width=2)
    summed = register_pair(fixed, moving, **common).displacement.field
    mean = register_pair(fixed, moving, adam_cost="mean", regularisation=1.25 / 12,
                         **common).displacement.field
    plain = register_pair(fixed, moving, adam_cost="mean", **common).displacement.field
    # Equal up to Adam's epsilon, which matters where the gradient all but vanishes.
    close, apart = np.abs(summed - mean).mean(), np.abs(summed - plain).mean()
    assert close < 0.1 * apart, (close, apart)
