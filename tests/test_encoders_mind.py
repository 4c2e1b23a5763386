"""MIND-SSC (breastlib/encoders/mind.py): shape, invariance, and the background floor."""

from __future__ import annotations

import pytest
import torch

from breastlib.encoders.mind import mind_ssc


def _noisy_background_with_a_block(seed: int = 0) -> torch.Tensor:
    """A bright block (0.8) inside air holding noise of about 0.02 (as MR air does)."""
    generator = torch.Generator().manual_seed(seed)
    image = 0.02 * torch.rand((1, 1, 24, 24, 24), generator=generator)
    image[..., 8:16, 8:16, 8:16] = 0.8
    return image


def test_shape_range_and_intensity_shift_invariance():
    image = _noisy_background_with_a_block()
    features = mind_ssc(image)
    assert features.shape == (1, 12, 24, 24, 24)
    assert float(features.min()) >= 0.0 and float(features.max()) == pytest.approx(1.0)
    # Self-similarity does not see an intensity offset.
    torch.testing.assert_close(mind_ssc(image + 0.1), features, atol=5e-3, rtol=0)


def test_floor_makes_a_noisy_background_look_like_a_constant_one():
    noisy = _noisy_background_with_a_block()
    clean = noisy.clone()
    clean[clean < 0.5] = 0.0  # CT-like air: one constant value
    air = (slice(None), slice(None), slice(0, 4), slice(0, 4), slice(0, 4))
    # Without a floor, MR noise becomes a random descriptor in the air ...
    assert float(mind_ssc(noisy)[air].std()) > 0.1
    # ... and a constant background gives the flat descriptor (every channel 1).
    assert float(mind_ssc(clean)[air].min()) == pytest.approx(1.0)
    # With a floor above the noise, both backgrounds give the same flat descriptor, and
    # the block edges keep their structure.
    floored = mind_ssc(noisy, floor=0.05)
    torch.testing.assert_close(floored[air], mind_ssc(clean, floor=0.05)[air])
    assert float(floored[air].min()) == pytest.approx(1.0)
    edge = (slice(None), slice(None), slice(6, 10), slice(10, 14), slice(10, 14))
    assert float(floored[edge].std()) > 0.1


def test_floor_zero_is_the_plain_descriptor_and_bad_floors_are_refused():
    image = _noisy_background_with_a_block(1)
    torch.testing.assert_close(mind_ssc(image, floor=0.0), mind_ssc(image))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="floor"):
            mind_ssc(image, floor=bad)
