"""Realism switches of the phantom's deformation: ``multiscale``, ``sliding``, ``shape_change``.

With every switch off the deformation must be the original one (pinned by fingerprints of
its fields); each switch must change the field the way it claims, and the
calibration, the exact inverse and the absence of folding must survive all of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from breastlib.phantom import LABELS, Anatomy, draw_subject, mri_grid
from breastlib.phantom.deformation import (
    SLIDING_LAYER_MM,
    Deformation,
    FlatChest,
    _breast_regions,
    _edge_taper,
    _lattice,
    _shape_velocity,
    _sliding_velocity,
    _to_lattice,
    draw_deformation,
    integrate,
)
from breastlib.phantom.noise import sample_grid
from breastlib.tissues import breast_mask
from breastlib.volume import Volume

SUBCUT = 12.0  # mm: the flat chest's pectoralis at y = -12
ALL_ON = {"multiscale": True, "sliding": True, "shape_change": True}

# Fingerprints of forward, inverse and rigid of the original phantom (computed before the
# switches existed, when their SHA-256 matched bit for bit): sums, sums of squares and a
# strided sum of each field, and the rigid matrix's sum. Compared to 1e-6 relative, not by
# hash, since float32 arithmetic differs in its last bits between CPUs.
FLAT_PINS = {
    ("position", 0): (-530042.356664, 18849159.559247, -16834.827359, 587624.914421,
                      19616762.601715, 1.30167),
    ("position", 1): (-798554.888572, 29604875.339933, -25599.42208, 883211.76312,
                      32095414.238824, 3.238652),
    ("static", 0): (0.0, 0.0, 0.0, 0.0, 0.0, 4.275449),
    ("static", 1): (0.0, 0.0, 0.0, 0.0, 0.0, 4.217157),
    ("visit", 0): (-22412.763134, 1996619.859248, -699.444465, 20791.156618, 2012632.0527,
                   -0.958026),
    ("visit", 1): (54880.35449, 2131933.481501, 1746.276536, -51328.398784, 2211418.277258,
                   4.315868),
}
# Subject 0 on the small MRI grid, breast points on every 4th voxel, seed 0.
ANATOMY_PINS = {
    "position": (-1593676.857723, 64034901.898792, -53901.861259, 1719897.235129,
                 65683255.978216, 9.616658),
    "visit": (-101539.087381, 3616505.168757, -3480.31271, 100228.509844, 3628137.059134,
              14.557355),
}


def _fingerprint(deform: Deformation) -> np.ndarray:
    forward = deform.forward.numpy().astype(np.float64)
    inverse = deform.inverse.numpy().astype(np.float64)
    return np.array([forward.sum(), (forward * forward).sum(),
                     forward[:, ::3, ::5, ::2].sum(), inverse.sum(), (inverse * inverse).sum(),
                     np.asarray(deform.rigid, np.float64).sum()])


def _matches(deform: Deformation, pin: tuple[float, ...]) -> bool:
    return bool(np.allclose(_fingerprint(deform), pin, rtol=1e-6, atol=1e-4))


@pytest.fixture(scope="module")
def flat():
    """A 4 mm grid from 60 mm behind the chest plane to 96 mm in front, two box breasts
    (x in [-80, -24] and [20, 76] mm, y in [12, 76] mm, z in [-22, 22] mm)."""
    shape = (50, 40, 24)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-100.0, -60.0, -46.0)
    grid = Volume.from_array(np.zeros(shape, np.float32), affine).grid
    breast = np.zeros(shape, bool)
    breast[5:20, 18:35, 6:18] = True
    breast[30:45, 18:35, 6:18] = True
    points = grid.index_to_world(np.argwhere(breast).astype(float))
    return grid, points


@pytest.fixture(scope="module")
def subject():
    anatomy = Anatomy(draw_subject(0), raster_mm=1.0)
    grid = mri_grid("small")
    idx = np.stack(np.meshgrid(*[np.arange(0, s, 4) for s in grid.shape], indexing="ij"),
                   -1).reshape(-1, 3)
    points = grid.index_to_world(idx.astype(float))
    labels, _ = anatomy.render(points)
    return anatomy, grid, points[breast_mask(labels, LABELS)]


def _draw(setting, regime: str, seed: int, **switches) -> Deformation:
    grid, points = setting
    return draw_deformation(FlatChest(SUBCUT), regime, np.random.default_rng(seed), grid,
                            grid, points, **switches)


# -- all off: the original phantom -----------------------------------------------------
@pytest.mark.parametrize(("regime", "seed"), sorted(FLAT_PINS))
def test_switches_off_reproduce_the_original_bit_for_bit(flat, regime, seed):
    # The defaults are off; seed 1 also spells them out.
    switches = {} if seed == 0 else {"multiscale": False, "sliding": False,
                                     "shape_change": False}
    assert _matches(_draw(flat, regime, seed, **switches), FLAT_PINS[regime, seed])


@pytest.mark.parametrize("regime", sorted(ANATOMY_PINS))
def test_switches_off_reproduce_the_original_on_a_subject(subject, regime):
    anatomy, grid, points = subject
    deform = draw_deformation(anatomy, regime, np.random.default_rng(0), grid, grid, points)
    assert _matches(deform, ANATOMY_PINS[regime])


def test_switches_do_nothing_in_the_static_regime(flat):
    assert _matches(_draw(flat, "static", 0, **ALL_ON), FLAT_PINS["static", 0])


def test_switches_draw_after_the_original_draws(flat):
    off, on = _draw(flat, "visit", 0), _draw(flat, "visit", 0, **ALL_ON)
    np.testing.assert_array_equal(off.rigid, on.rigid)
    assert on.info["deformation_target_mm"] == off.info["deformation_target_mm"]


# -- helpers: measurements of a field --------------------------------------------------
def _soft(deform: Deformation, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float32)
    return deform.soft_to_moving(points) - points


def _highpass_share(deform: Deformation, points: np.ndarray, step: float = 2.0) -> float:
    """RMS of the soft displacement below ~20 mm wavelength over its RMS, in the box of
    ``points`` (the high-pass is ``u`` minus a Gaussian blur of sigma 2.65 mm, whose
    response is halved in power at 20 mm)."""
    axes = [np.arange(a, b, step) for a, b in zip(points.min(0), points.max(0), strict=True)]
    box = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    u = _soft(deform, box).T.reshape(3, *[len(a) for a in axes])
    high = np.stack([c - gaussian_filter(c, 2.65 / step) for c in u])
    return float(np.sqrt((high ** 2).mean() / (u ** 2).mean()))


def _wall_profiles(deform: Deformation, points: np.ndarray, depths: np.ndarray
                   ) -> np.ndarray:
    """Soft displacement ``(P, D, 3)`` on the flat chest at the ``(x, z)`` of ``points``
    (``P``) and the depths ``D`` (mm in front of the pectoralis, ``y = -SUBCUT``)."""
    xz = np.unique(np.round(points[:, [0, 2]], 3), axis=0)
    grid = np.repeat(xz[:, None, :], len(depths), axis=1)
    pts = np.stack([grid[..., 0], np.broadcast_to(depths - SUBCUT, grid.shape[:2]),
                    grid[..., 1]], -1)
    return _soft(deform, pts.reshape(-1, 3)).reshape(*pts.shape)


def _median_wall_shear(deform: Deformation, points: np.ndarray) -> float:
    """Median over the breasts' ``(x, z)`` of the largest tangential shear
    ``|d u_t / d n|`` within 10 mm of the pectoralis."""
    depths = np.arange(-10.0, 10.0, 0.5)
    u = _wall_profiles(deform, points, depths)[..., [0, 2]]
    shear = np.linalg.norm(np.diff(u, axis=1), axis=-1).max(axis=1) / 0.5
    return float(np.median(shear))


# -- multiscale ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_multiscale_puts_more_motion_at_short_scales(flat, seed):
    _, points = flat
    on = _draw(flat, "visit", seed, multiscale=True)
    off = _draw(flat, "visit", seed, spacing=on.spacing)
    assert on.spacing < 5.0  # a finer lattice for the finer scales
    share_off, share_on = _highpass_share(off, points), _highpass_share(on, points)
    assert share_on > 1.5 * share_off
    assert on.info["multiscale_cells_mm"] == [11.0, 5.5]


# -- sliding ---------------------------------------------------------------------------
def _flat_lattice(flat, spacing: float = 4.0):
    grid, points = flat
    lo, shape, pts = _lattice([grid.world_bounds()] * 2, spacing)
    return lo, shape, pts, points


def test_sliding_velocity_is_a_tangential_step_at_the_pectoralis(flat):
    _, _, pts, points = _flat_lattice(flat)
    chest = FlatChest(SUBCUT)
    regions = _breast_regions(chest, points)
    v, sizes = _sliding_velocity(chest, pts, regions, np.random.default_rng(3))
    assert len(sizes) == 2 and all(2.0 <= s <= 6.0 for s in sizes)
    assert np.abs(v[:, 1]).max() == 0.0  # tangential to the plane y = 0
    behind = pts[:, 1] <= -SUBCUT
    assert np.abs(v[behind]).max() == 0.0
    # Full slide from SLIDING_LAYER_MM in front of the muscle, inside each breast's box.
    for region, size in zip(regions, sizes, strict=True):
        inside = ((np.abs(pts[:, [0, 2]] - region.centre[[0, 2]]) < region.half[[0, 2]])
                  .all(axis=1) & (pts[:, 1] >= SLIDING_LAYER_MM - SUBCUT)
                  & (np.abs(pts[:, 0]) >= 30.0))
        np.testing.assert_allclose(np.linalg.norm(v[inside], axis=1), size, rtol=1e-5)


def test_sliding_integrates_to_a_displacement_jump_across_the_layer(flat):
    lo, shape, pts, points = _flat_lattice(flat)
    chest = FlatChest(SUBCUT)
    regions = _breast_regions(chest, points)
    v, sizes = _sliding_velocity(chest, pts, regions, np.random.default_rng(3))
    v *= _edge_taper(pts, lo, shape, 4.0)[:, None]
    fwd = integrate(_to_lattice(v, shape), 4.0)
    centre = regions[0].centre
    column = np.stack([np.full(40, centre[0]), np.linspace(-30.0, 30.0, 40),
                       np.full(40, centre[2])], 1)
    u = sample_grid(fwd, lo, 4.0, column).T
    depth = column[:, 1] + SUBCUT
    assert np.abs(u[depth < -4.0]).max() < 1e-4  # nothing moves one cell behind the muscle
    full = np.linalg.norm(u[depth > SLIDING_LAYER_MM + 4.0], axis=1)
    np.testing.assert_allclose(full, sizes[0], rtol=1e-3)  # the whole slide in front


# Seeds whose smooth part is small next to the slide: with a large smooth part its own
# 25 mm ramp at the chest wall is already as steep as a 2-6 mm slide over 8 mm.
@pytest.mark.parametrize("seed", [2, 3])
def test_sliding_makes_a_steep_shear_at_the_chest_wall(flat, seed):
    _, points = flat
    on = _draw(flat, "visit", seed, sliding=True)
    off = _draw(flat, "visit", seed, spacing=on.spacing)
    across = np.array([-on.spacing, SLIDING_LAYER_MM + on.spacing])
    jumps, shears = [], []
    for deform in (off, on):
        u = _wall_profiles(deform, points, across)[..., [0, 2]]
        jumps.append(np.median(np.linalg.norm(u[:, 1] - u[:, 0], axis=1)))
        shears.append(_median_wall_shear(deform, points))
        # Nothing moves tangentially one lattice cell behind the muscle.
        assert np.linalg.norm(u[:, 0], axis=1).max() < 0.1
    assert jumps[1] > jumps[0] + 0.5 * min(on.info["sliding_mm"])
    assert shears[1] > 2.0 * shears[0]


# -- shape change ----------------------------------------------------------------------
def test_shape_change_scales_width_and_depth_by_the_drawn_rate(flat):
    lo, shape, pts, points = _flat_lattice(flat, 5.0)
    chest = FlatChest(SUBCUT)
    regions = _breast_regions(chest, points)
    v, rates = _shape_velocity(chest, pts, regions, np.random.default_rng(5))
    fractions = -np.expm1(-np.array(rates))
    assert np.all((np.abs(fractions) >= 0.03) & (np.abs(fractions) <= 0.10))
    weight = np.ones(len(pts), np.float32)  # full strength in front of the muscle
    weight[pts[:, 1] < -SUBCUT] = 0.0
    fwd = integrate(_to_lattice(v * weight[:, None], shape), 5.0)
    for region, fraction in zip(regions, fractions, strict=True):
        c, half = region.centre, region.half
        # Two points half a width apart across the breast, and two along A-P.
        across = np.array([[c[0] - half[0] / 2, 40.0, c[2]], [c[0] + half[0] / 2, 40.0, c[2]]])
        along = np.array([[c[0], 20.0, c[2]], [c[0], 60.0, c[2]]])
        moved_x = across + sample_grid(fwd, lo, 5.0, across).T
        moved_y = along + sample_grid(fwd, lo, 5.0, along).T
        width = (moved_x[1, 0] - moved_x[0, 0]) / (across[1, 0] - across[0, 0])
        depth = (moved_y[1, 1] - moved_y[0, 1]) / (along[1, 1] - along[0, 1])
        assert width == pytest.approx(1.0 - fraction, abs=0.005)
        assert depth == pytest.approx(1.0 / (1.0 - fraction), abs=0.005)
        assert width * depth == pytest.approx(1.0, abs=0.005)  # volume kept


def test_shape_change_changes_the_breast_shape_in_a_draw(flat):
    _, points = flat
    on = _draw(flat, "visit", 2, shape_change=True)
    fractions = np.array(on.info["shape_change_fraction"])
    assert len(fractions) == 2 and np.all(np.abs(fractions) <= 0.10)
    assert np.all(np.abs(fractions) > 0.0)
    # The field's breast-wide medio-lateral strain moves with the drawn fraction: compare
    # with the same draw without it (the smooth part is identical up to its scale).
    off = _draw(flat, "visit", 2, spacing=5.0)
    for sign, fraction in zip((1.0, -1.0), fractions, strict=True):
        own = points[points[:, 0] * sign > 0]
        strain = []
        for deform in (off, on):
            u = _soft(deform, own)[:, 0]
            strain.append(np.polyfit(own[:, 0], u, 1)[0])  # mean d u_x / d x
        ratio = on.info["velocity_scale"] / off.info["velocity_scale"]
        assert strain[1] - ratio * strain[0] == pytest.approx(-fraction, abs=0.02)


# -- calibration, inverse, folding -----------------------------------------------------
@pytest.mark.parametrize(("regime", "seed"), [("visit", 0), ("visit", 1), ("position", 0)])
def test_calibration_still_meets_the_target(flat, regime, seed):
    info = _draw(flat, regime, seed, **ALL_ON).info
    if regime == "visit":
        assert info["deformation_p95_mm"] == pytest.approx(info["deformation_target_mm"],
                                                           rel=0.05)
    else:
        assert info["magnitude_mm"] == pytest.approx(info["total_target_mm"], rel=0.05)


def _assert_exact_and_unfolded(deform: Deformation, grid, points: np.ndarray) -> None:
    round_trip = deform.to_fixed(deform.to_moving(points))
    assert np.abs(round_trip - points).max() < 0.5
    assert deform.displacement(grid).jacobian_determinant().min() > 0.0
    assert deform.inverse_displacement(grid).jacobian_determinant().min() > 0.0


@pytest.mark.parametrize(("regime", "seed"), [("visit", 0), ("visit", 1), ("position", 1)])
def test_inverse_is_exact_and_nothing_folds(flat, regime, seed):
    grid, points = flat
    _assert_exact_and_unfolded(_draw(flat, regime, seed, **ALL_ON), grid, points)


def test_inverse_is_exact_and_nothing_folds_on_a_subject(subject):
    anatomy, grid, points = subject
    deform = draw_deformation(anatomy, "visit", np.random.default_rng(0), grid, grid, points,
                              **ALL_ON)
    info = deform.info
    assert info["deformation_p95_mm"] == pytest.approx(info["deformation_target_mm"], rel=0.05)
    _assert_exact_and_unfolded(deform, grid, points)
