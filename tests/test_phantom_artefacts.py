"""Per-image grids and MRI artefacts of the phantom (grids.py, artefacts.py, contrast.py).

Every check is on small synthetic arrays or grids (no rendering), so the module runs in
seconds.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from breastlib.phantom.acquisition import MRI_FOV_HI, MRI_FOV_LO, grid_points, mri_grid
from breastlib.phantom.artefacts import (
    AXILLA_CENTRES_MM,
    draw_fat_sat_field,
    fat_sat_quality_map,
    ghosting,
    motion_artefact,
)
from breastlib.phantom.contrast import (
    FAT_SAT_RESIDUAL,
    fat_sat_quality_for_residual,
    synthesize,
)
from breastlib.phantom.grids import (
    BODY_BOX_CENTRE,
    CENTRE_OFFSET_MM,
    FOV_INPLANE_MM,
    FOV_SI_MM,
    TILT_DEG,
    VOXEL_MM,
    draw_mri_grid,
    slice_thickness_for,
)
from breastlib.phantom.labels import LABELS, N_LABELS

SEEDS = range(12)


def _fov(grid) -> np.ndarray:
    return np.asarray(grid.shape) * grid.spacing


def _tilt_deg(grid) -> float:
    d = grid.direction
    return float(np.degrees(np.arctan2(abs(d[1, 0]), abs(d[0, 0]))))


def _centre(grid) -> np.ndarray:
    return grid.index_to_world((np.asarray(grid.shape)[None] - 1.0) / 2.0)[0]


# -- grids ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", ["small", "full"])
def test_drawn_grid_ranges(size):
    lo_v, hi_v = VOXEL_MM[size]["inplane"]
    lo_s, hi_s = VOXEL_MM[size]["slice"]
    for seed in SEEDS:
        g = draw_mri_grid(size, np.random.default_rng(seed))
        fov = _fov(g)
        assert FOV_INPLANE_MM[0] - 1e-6 <= fov[0] <= FOV_INPLANE_MM[1] + 1e-6
        assert fov[0] == pytest.approx(fov[1])
        assert FOV_SI_MM[0] - 1e-6 <= fov[2] <= FOV_SI_MM[1] + 1e-6
        # The matrix is rounded, so the exact voxel size is within 2 % of the drawn one.
        assert 0.98 * lo_v <= g.spacing[0] <= 1.02 * hi_v
        assert 0.98 * lo_s <= g.spacing[2] <= 1.02 * hi_s
        assert np.all(np.abs(_centre(g) - BODY_BOX_CENTRE) <= CENTRE_OFFSET_MM + 1e-6)
        assert _tilt_deg(g) <= TILT_DEG + 1e-6
        assert nib.aff2axcodes(g.file_affine) == ("L", "P", "S")
        assert g.file_affine[2, 2] > 0 and g.file_affine[0, 0] < 0 and g.file_affine[1, 1] < 0


def test_small_grid_shape_near_ci_size():
    shapes = np.array([draw_mri_grid("small", np.random.default_rng(s)).shape for s in SEEDS])
    assert np.all((shapes[:, :2] >= 100) & (shapes[:, :2] <= 160))
    assert np.all((shapes[:, 2] >= 38) & (shapes[:, 2] <= 85))
    assert abs(np.median(shapes[:, 0]) - 128) < 20 and abs(np.median(shapes[:, 2]) - 64) < 15


def test_drawn_grids_cover_body_box():
    box = MRI_FOV_HI - MRI_FOV_LO
    for seed in SEEDS:
        g = draw_mri_grid("small", np.random.default_rng(seed))
        assert g.overlaps(mri_grid("small"))
        lo, hi = g.world_bounds()
        inter = np.clip(np.minimum(hi, MRI_FOV_HI) - np.maximum(lo, MRI_FOV_LO), 0, None)
        assert np.prod(inter) / np.prod(box) > 0.75


def test_draws_differ_and_seed_reproduces():
    a = draw_mri_grid("small", np.random.default_rng(1))
    b = draw_mri_grid("small", np.random.default_rng(2))
    c = draw_mri_grid("small", np.random.default_rng(1))
    assert not a.same_as(b)
    assert a.same_as(c) and np.array_equal(a.file_affine, c.file_affine)
    rng = np.random.default_rng(3)
    assert not draw_mri_grid("small", rng).same_as(draw_mri_grid("small", rng))


def test_tilt_is_used_and_slice_thickness():
    tilts = [_tilt_deg(draw_mri_grid("small", np.random.default_rng(s))) for s in SEEDS]
    assert max(tilts) > 0.3
    g = draw_mri_grid("small", np.random.default_rng(0))
    assert g.spacing[2] < slice_thickness_for(g) < 1.5 * g.spacing[2]


# -- ghosting ------------------------------------------------------------------------
def _blob(shape=(32, 64, 8)) -> np.ndarray:
    img = np.zeros(shape, dtype=np.float32)
    img[10:20, 8:20, 2:6] = 1000.0
    return img


def test_ghost_at_half_fov_scales_with_amplitude():
    img = _blob()
    half = img.shape[1] // 2
    ghost_region = (slice(10, 20), slice(8 + half, 20 + half), slice(2, 6))
    levels = []
    for amp in (0.02, 0.04):
        out = ghosting(img, amp, np.random.default_rng(0), copies=1)
        assert out.dtype == np.float32 and np.all(np.isfinite(out)) and out.min() >= 0
        levels.append(float(out[ghost_region].mean()))
        # The body itself is untouched where no ghost overlaps it.
        np.testing.assert_allclose(out[10:20, 8:20, 2:6], 1000.0, rtol=1e-6)
        # Nothing outside the body and its ghost.
        rest = out.copy()
        rest[ghost_region] = 0
        rest[10:20, 8:20, 2:6] = 0
        assert rest.max() < 1e-3
    assert levels[0] == pytest.approx(20.0, rel=1e-4)
    assert levels[1] / levels[0] == pytest.approx(2.0, rel=1e-4)


def test_ghosts_only_along_phase_axis_and_higher_orders():
    img = _blob()
    out = ghosting(img, 0.05, np.random.default_rng(1))  # copies=2: N/4, N/2, 3N/4
    outside_x = np.delete(out, np.s_[10:20], axis=0)
    outside_z = np.delete(out, np.s_[2:6], axis=2)
    assert outside_x.max() < 1e-3 and outside_z.max() < 1e-3
    profile = out[15, :, 4]
    for shift, level in ((16, 25.0), (32, 50.0), (48, 25.0)):
        assert profile[(12 + shift) % 64] == pytest.approx(level, rel=1e-3)
    ghost_x = ghosting(img, 0.05, np.random.default_rng(1), axis=0, copies=1)
    assert ghost_x[15 + 16, 12, 4] == pytest.approx(50.0, rel=1e-4)


# -- motion --------------------------------------------------------------------------
def test_motion_blurs_along_phase_axis_only():
    img = _blob()
    out = motion_artefact(img, 0.6, np.random.default_rng(0), spacing=(2.5, 2.5, 2.5))
    assert out.dtype == np.float32 and np.all(np.isfinite(out)) and out.min() >= 0
    outside_y = np.delete(out, np.s_[8:20], axis=1)
    outside_x = np.delete(out, np.s_[10:20], axis=0)
    outside_z = np.delete(out, np.s_[2:6], axis=2)
    assert outside_y.max() > 20.0  # ringing/blur spread along A-P
    assert outside_x.max() < 1e-2 and outside_z.max() < 1e-2
    # The body's edge along A-P is softened: the step is no longer sharp.
    edge = np.abs(np.diff(out[15, :, 4]))
    sharp = np.abs(np.diff(img[15, :, 4]))
    assert edge.max() < 0.95 * sharp.max()


def test_motion_grows_with_strength():
    img = _blob()
    errors = [float(np.abs(motion_artefact(img, s, np.random.default_rng(4),
                                           spacing=(2.5, 2.5, 2.5)) - img).sum())
              for s in (0.1, 0.4, 1.0)]
    assert errors[0] < errors[1] < errors[2]
    assert errors[0] > 0


# -- fat suppression -----------------------------------------------------------------
@pytest.fixture(scope="module")
def fs_map():
    grid = mri_grid("small")
    return grid, fat_sat_quality_map(grid, np.random.default_rng(7), 0.4)


def test_fat_sat_map_range_and_worst_value(fs_map):
    grid, q = fs_map
    assert q.shape == grid.shape and q.dtype == np.float32 and np.all(np.isfinite(q))
    assert q.min() > 0 and q.max() <= 1.0
    assert FAT_SAT_RESIDUAL / q.min() == pytest.approx(0.4, rel=1e-3)
    assert q.max() > 0.95  # near-perfect at the isocentre


def test_fat_sat_map_smooth(fs_map):
    _, q = fs_map
    for axis in range(3):
        assert np.abs(np.diff(q, axis=axis)).max() < 0.06
    # Low-pass: almost all the variation is at wavelengths above 8 voxels.
    spec = np.abs(np.fft.fftn(q - q.mean())) ** 2
    freq = np.sqrt(sum(f ** 2 for f in np.meshgrid(*[np.fft.fftfreq(n) for n in q.shape],
                                                     indexing="ij")))
    assert spec[freq > 1 / 8].sum() < 0.01 * spec.sum()


def test_fat_sat_worst_off_centre_and_at_axillae(fs_map):
    grid, q = fs_map
    pts = grid_points(grid).reshape(*grid.shape, 3)
    r = np.linalg.norm((pts - BODY_BOX_CENTRE) / ((MRI_FOV_HI - MRI_FOV_LO) / 2), axis=-1)
    assert q[r < 0.3].mean() > q[r > 0.8].mean() + 0.1
    for c in AXILLA_CENTRES_MM:
        near = np.linalg.norm(pts - c, axis=-1) < 25.0
        # Same distance from the isocentre, inferior instead of superior: no axilla.
        mirrored = np.linalg.norm(pts - c * np.array([1.0, 1.0, -1.0]), axis=-1) < 25.0
        assert q[near].mean() < q[mirrored].mean()


def test_fat_sat_field_agrees_with_map(fs_map):
    grid, q = fs_map
    field = draw_fat_sat_field(grid, np.random.default_rng(7), 0.4)
    np.testing.assert_array_equal(field.quality(grid_points(grid)).reshape(grid.shape), q)


def test_quality_for_residual():
    assert fat_sat_quality_for_residual(FAT_SAT_RESIDUAL) == 1.0
    assert fat_sat_quality_for_residual(0.0) == 1.0
    assert fat_sat_quality_for_residual(0.3) == pytest.approx(0.2)
    arr = fat_sat_quality_for_residual(np.array([0.0, 0.06, 0.12, 0.6]))
    np.testing.assert_allclose(arr, [1.0, 1.0, 0.5, 0.1], rtol=1e-6)


def _points(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_LABELS, n).astype(np.uint8)
    labels[: n // 4] = LABELS["fat"]
    aux = {k: rng.random(n, dtype=np.float32) for k in ("rim", "marrow", "blood", "ligament")}
    aux["ligament"][rng.random(n) < 0.7] = 0
    aux["tex"] = rng.standard_normal(n, dtype=np.float32)
    aux["depth"] = rng.random(n, dtype=np.float32) * 30
    return labels, aux


@pytest.mark.parametrize("contrast", ["t1", "t1fs", "post", "t2", "ct"])
@pytest.mark.parametrize("quality", [1.0, 0.37, 0.15])
def test_synthesize_array_quality_equals_scalar(contrast, quality):
    labels, aux = _points()
    scalar = synthesize(contrast, labels, aux, bpe=0.8, fat_sat_quality=quality)
    array = synthesize(contrast, labels, aux, bpe=0.8,
                       fat_sat_quality=np.full(len(labels), quality, dtype=np.float32))
    assert array.dtype == scalar.dtype == np.float32
    np.testing.assert_array_equal(array, scalar)


def test_synthesize_per_point_quality_brightens_fat_where_poor():
    labels, aux = _points()
    quality = np.where(np.arange(len(labels)) % 2 == 0, 1.0, 0.2).astype(np.float32)
    out = synthesize("t1fs", labels, aux, fat_sat_quality=quality)
    good = synthesize("t1fs", labels, aux, fat_sat_quality=1.0)
    poor = synthesize("t1fs", labels, aux, fat_sat_quality=0.2)
    even = np.arange(len(labels)) % 2 == 0
    np.testing.assert_array_equal(out[even], good[even])
    np.testing.assert_array_equal(out[~even], poor[~even])
    fat = labels == LABELS["fat"]
    assert out[fat & ~even].mean() > 2.0 * out[fat & even].mean()


# -- identity at zero strength -------------------------------------------------------
def test_identity_at_zero_strength():
    img = _blob() + np.random.default_rng(0).random((32, 64, 8), dtype=np.float32)
    keep = img.copy()
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    for out in (ghosting(img, 0.0, rng), motion_artefact(img, 0.0, rng)):
        assert out.dtype == img.dtype
        np.testing.assert_array_equal(out, keep)
    assert rng.bit_generator.state == state  # no draw consumed
    grid = mri_grid("small")
    np.testing.assert_array_equal(fat_sat_quality_map(grid, rng, 0.0),
                                  np.ones(grid.shape, dtype=np.float32))
    labels, aux = _points()
    q = fat_sat_quality_map(grid, rng, 0.0).ravel()[: len(labels)]
    np.testing.assert_array_equal(synthesize("t1fs", labels, aux, fat_sat_quality=q),
                                  synthesize("t1fs", labels, aux))
