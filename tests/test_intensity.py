"""normalise_intensity, computed in place on one new array, gives the values of the plain
formula np.clip((x - low) / (high - low), 0, 1) as float32, for MR and CT ranges and any
input dtype, and never writes into its input."""

from __future__ import annotations

import numpy as np
import pytest

from breastlib.intensity import CT_WINDOW, normalise_intensity


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("kind", ["mr", "ct"])
def test_in_place_normalisation_is_the_plain_formula(dtype, kind):
    rng = np.random.default_rng(7)
    if kind == "mr":
        array = (rng.gamma(2.0, 300.0, size=(17, 13, 11))).astype(dtype)
    else:
        array = rng.normal(-300.0, 500.0, size=(17, 13, 11)).astype(dtype)
        array.flat[:800] = -1000
    before = array.copy()
    data = np.asarray(array, dtype=np.float32)
    low, high = (CT_WINDOW if kind == "ct" else
                 (float(v) for v in np.percentile(data, (0.5, 99.5))))
    expected = np.clip((data - low) / (high - low), 0.0, 1.0).astype(np.float32)
    result = normalise_intensity(array)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(array, before)
