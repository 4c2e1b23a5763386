"""The QC picture's colour tables (breastlib.viz.colormaps) against matplotlib's maps of
the same names, entry by entry, and their look-up against matplotlib's Normalize."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from breastlib.viz.colormaps import LUT_SIZE, apply_colour_table, colour_table
from breastlib.viz.qc import checkerboard


@pytest.mark.parametrize("name", ["gray", "RdBu", "RdBu_r", "PiYG", "PiYG_r"])
def test_tables_match_matplotlib(name):
    ours = colour_table(name).astype(int)
    theirs = np.round(matplotlib.colormaps[name](np.arange(LUT_SIZE))[:, :3] * 255)
    assert ours.shape == (LUT_SIZE, 3)
    assert np.abs(ours - theirs).max() <= 1


@pytest.mark.parametrize("name", ["RdBu_r", "PiYG"])
def test_look_up_matches_matplotlib(name):
    values = np.concatenate([np.linspace(-1.0, 3.0, 997), [0.0, 0.5, 1.0, 2.0, np.nan]])
    vmin, vmax = -0.5, 2.0
    ours = apply_colour_table(values, colour_table(name), vmin, vmax).astype(int)
    rgba = matplotlib.colormaps[name](
        matplotlib.colors.Normalize(vmin, vmax, clip=True)(np.nan_to_num(values, nan=vmin)))
    assert np.abs(ours - np.round(rgba[:, :3] * 255)).max() <= 1


def test_unknown_map_is_named():
    with pytest.raises(ValueError, match="unknown colour map 'viridis'"):
        colour_table("viridis")


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_checkerboard_of_a_slab_continues_the_volumes(axis):
    rng = np.random.default_rng(0)
    a, b = rng.random((19, 23, 17)), rng.random((19, 23, 17))
    whole = checkerboard(a, b)
    parity = (np.indices(a.shape) // 8).sum(axis=0) % 2
    np.testing.assert_array_equal(whole, np.where(parity == 0, a, b))
    for index in (0, 7, 8, 16):
        origin = tuple(index if k == axis else 0 for k in range(3))
        slab = checkerboard(np.take(a, [index], axis=axis), np.take(b, [index], axis=axis),
                            origin=origin)
        np.testing.assert_array_equal(slab, np.take(whole, [index], axis=axis))
