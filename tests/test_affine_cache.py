"""The affine start's on-disk cache: a hit is the fitted matrix to the bit, the key
follows everything the fit depends on, and a bad entry is refitted, never trusted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_volumes import blob_volume, centred_affine

from breastlib.register.affine_cache import affine_cache_path
from breastlib.register.initial import AFFINE_MIN_SPACING_MM, affine_matrix

SHAPE = (36, 32, 24)


@pytest.fixture()
def pair(tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTLIB_CACHE", str(tmp_path / "cache"))
    affine = centred_affine(SHAPE, spacing=(2.0, 2.2, 2.5), angle_deg=10.0)
    fixed = blob_volume(SHAPE, affine, seed=2)
    moving = blob_volume(SHAPE, affine, shift_mm=np.array([3.0, -2.0, 1.5]), seed=2)
    return fixed, moving


def _entry(fixed, moving, seed=0):
    return affine_cache_path(fixed, moving, seed=seed, block_mm=AFFINE_MIN_SPACING_MM)


def test_second_fit_reads_the_first_to_the_bit(pair):
    fixed, moving = pair
    fitted = affine_matrix(fixed, moving, cache=False)
    assert not _entry(fixed, moving).exists()  # cache=False writes nothing
    first = affine_matrix(fixed, moving)
    np.testing.assert_array_equal(first, fitted)
    assert _entry(fixed, moving).is_file()
    np.testing.assert_array_equal(affine_matrix(fixed, moving), fitted)
    # the entry is what is read: a doctored one comes back as it is
    doctored = np.eye(4)
    doctored[:3, 3] = [1.0, 2.0, 3.0]
    _entry(fixed, moving).write_text(json.dumps({"matrix_ras": doctored.tolist()}))
    np.testing.assert_array_equal(affine_matrix(fixed, moving), doctored)


def test_the_key_follows_the_images_grids_and_seed(pair):
    fixed, moving = pair
    entry = _entry(fixed, moving)
    moved_origin = moving.affine.copy()
    moved_origin[:3, 3] += [0.0, 0.0, 1.0]  # the same voxels one millimetre higher
    shifted = type(moving).from_array(moving.array, moved_origin)
    keys = {entry, _entry(fixed, moving, seed=1), _entry(moving, fixed),
            _entry(fixed, moving.with_array(moving.array * 1.01)), _entry(fixed, shifted)}
    assert len(keys) == 5
    assert _entry(fixed, moving.with_array(moving.array.copy())) == entry  # content, not id


@pytest.mark.parametrize("content", ["{not json", '{"matrix_ras": [[1, 2], [3, 4]]}',
                                     '{"matrix_ras": [[NaN, 0, 0, 0], [0, 1, 0, 0], '
                                     '[0, 0, 1, 0], [0, 0, 0, 1]]}', '{"other": 1}'])
def test_a_bad_entry_is_refitted_and_replaced(pair, content):
    fixed, moving = pair
    fitted = affine_matrix(fixed, moving, cache=False)
    entry = _entry(fixed, moving)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(content)
    np.testing.assert_array_equal(affine_matrix(fixed, moving), fitted)
    assert json.loads(entry.read_text())["matrix_ras"] == fitted.tolist()


def test_an_unwritable_cache_warns_and_still_returns_the_fit(pair, tmp_path, monkeypatch):
    fixed, moving = pair
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BREASTLIB_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="affine cache entry not written"):
        matrix = affine_matrix(fixed, moving)
    np.testing.assert_array_equal(matrix, affine_matrix(fixed, moving, cache=False))
