"""Evaluation metrics (``breastlib.evaluate.metrics``) against answers known in closed form.

Every expected number below is worked out by hand from the metric's definition (Dice,
95th-percentile symmetric surface distance in mm, landmark distances, Jacobian
statistics), so a change to any definition fails here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic_volumes import BLOCK_NAMES, breast_blocks

from breastlib.displacement import Displacement
from breastlib.evaluate.metrics import dice, hd95_mm, jacobian_stats, label_metrics, tre_stats
from breastlib.grid import Grid

# Voxel size for the surface-distance cases: the shift runs along the finest axis, and
# k * 0.5 mm < 2.0 mm, so a shifted face is always nearer than any side of the other mask.
SPACING = np.array([0.5, 2.0, 3.0])


def cube(shape, start, size, axis=0, shift=0):
    """A boolean ``size**3`` cube at ``start`` (per axis), moved ``shift`` voxels along ``axis``."""
    mask = np.zeros(shape, bool)
    lo = np.array(start)
    lo[axis] += shift
    mask[tuple(slice(a, a + size) for a in lo)] = True
    return mask


# -- Dice -------------------------------------------------------------------------------
def test_dice_of_cubes_shifted_by_two_voxels():
    # 10^3 cubes, 2 voxels apart along x: they share 8 x 10 x 10 voxels.
    a = cube((20, 14, 14), (2, 2, 2), 10)
    b = cube((20, 14, 14), (2, 2, 2), 10, shift=2)
    assert dice(a, b) == pytest.approx(2 * 800 / (1000 + 1000)) == 0.8
    assert dice(b, a) == pytest.approx(0.8)


def test_dice_of_unequal_sizes_identical_disjoint_and_empty_masks():
    a = np.zeros((6, 6, 6), bool)
    a[:2] = True  # 72 voxels
    b = np.zeros((6, 6, 6), bool)
    b[1:3, :3] = True  # 36 voxels, 18 of them in a
    assert dice(a, b) == pytest.approx(2 * 18 / (72 + 36))
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0
    assert dice(a, np.zeros_like(a)) == 0.0  # one empty mask: no overlap, not undefined
    assert math.isnan(dice(np.zeros_like(a), np.zeros_like(a)))
    assert dice(a.astype(np.uint8) * 7, b.astype(np.int16)) == pytest.approx(1 / 3)  # nonzero


# -- HD95 -------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
def test_hd95_of_shifted_cubes_is_the_shift_in_mm(k):
    """10^3 cubes ``k`` voxels apart along x (0.5 mm), 2.0 x 3.0 mm across.

    Surface of A (488 voxels) to the surface of B: the 36 rim voxels of each slice
    x = k..9 lie on B's sides (0 mm); the rims of the slices x < k are (k - x) * 0.5 mm
    from B's first face; the whole face x = 0 (100 voxels) and the 64 inner voxels of
    the face x = 9 are k * 0.5 mm from B's faces x = k and x = 9 + k (B's sides are at
    least 2 mm away). 164 of 488 distances, a third, equal the largest one, k * 0.5 mm,
    so the 95th percentile is exactly that; B to A is the mirror image.
    """
    a = cube((18, 14, 14), (2, 2, 2), 10)
    b = cube((18, 14, 14), (2, 2, 2), 10, shift=k)
    assert hd95_mm(a, b, SPACING) == pytest.approx(k * 0.5, rel=1e-12)
    assert hd95_mm(b, a, SPACING) == pytest.approx(k * 0.5, rel=1e-12)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_hd95_uses_the_spacing_of_the_shifted_axis(axis):
    """The same case along each axis in turn, the finest spacing on the shifted axis."""
    spacing = np.roll(SPACING, axis)
    a = cube((18, 18, 18), (3, 3, 3), 10, axis=axis)
    b = cube((18, 18, 18), (3, 3, 3), 10, axis=axis, shift=2)
    assert hd95_mm(a, b, spacing) == pytest.approx(1.0, rel=1e-12)  # 2 x 0.5 mm
    assert hd95_mm(a, b, np.ones(3)) == pytest.approx(2.0, rel=1e-12)  # 2 x 1 mm


@pytest.mark.parametrize(("strays", "expected_voxels"), [(0, 3), (1, 3), (4, 3), (8, 13)])
def test_hd95_is_the_95th_percentile_not_the_maximum(strays, expected_voxels):
    """Two parallel one-voxel sheets of 100 voxels, 3 voxels apart (0.7 mm each), plus
    ``strays`` voxels of B 13 voxels from A. Of B's 100 + n surface distances the 95th
    percentile sits at rank 0.95 (99 + n): below the strays up to n = 4 (rank 97.85),
    among them for n = 8 (rank 101.65 of 100..107); A to B is 3 voxels throughout."""
    a = np.zeros((24, 14, 14), bool)
    a[4, 2:12, 2:12] = True
    b = np.zeros_like(a)
    b[7, 2:12, 2:12] = True
    b[17, 7, 2:2 + strays] = True
    spacing = np.array([0.7, 1.9, 2.6])
    assert hd95_mm(a, b, spacing) == pytest.approx(expected_voxels * 0.7, rel=1e-12)
    assert hd95_mm(b, a, spacing) == pytest.approx(expected_voxels * 0.7, rel=1e-12)


def test_hd95_zero_for_identical_and_nan_for_an_empty_mask():
    a = cube((14, 14, 14), (2, 2, 2), 6)
    empty = np.zeros_like(a)
    assert hd95_mm(a, a, SPACING) == 0.0
    assert math.isnan(hd95_mm(a, empty, SPACING))
    assert math.isnan(hd95_mm(empty, a, SPACING))
    assert math.isnan(hd95_mm(empty, empty, SPACING))


# -- TRE --------------------------------------------------------------------------------
def test_tre_of_a_known_shift():
    rng = np.random.default_rng(0)
    fixed = rng.uniform(-50.0, 50.0, size=(9, 3))
    moving = fixed + np.array([4.0, -3.0, 12.0])  # |d| = 13 mm at every landmark
    stats = tre_stats(fixed, moving)
    assert stats == pytest.approx({"mean": 13.0, "median": 13.0, "p90": 13.0}, rel=1e-12)


def test_tre_mean_median_and_p90_of_known_distances():
    fixed = np.array([[10.0, 0.0, -5.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0],
                      [-4.0, 8.0, 1.0], [7.0, 7.0, 7.0]])
    # Distances 1, 3, 5, 7 and 10 mm.
    offsets = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 2.0], [3.0, 4.0, 0.0],
                        [2.0, -3.0, 6.0], [0.0, 8.0, -6.0]])
    stats = tre_stats(fixed, fixed + offsets)
    # Mean 26 / 5; median the 3rd of 5; p90 at rank 0.9 * (5 - 1) = 3.6 of 0..4,
    # between 7 and 10 mm: 7 + 0.6 * 3.
    assert stats["mean"] == pytest.approx(5.2, rel=1e-12)
    assert stats["median"] == pytest.approx(5.0, rel=1e-12)
    assert stats["p90"] == pytest.approx(8.8, rel=1e-12)
    assert tre_stats(fixed + offsets, fixed) == pytest.approx(stats, rel=1e-12)  # symmetric


def test_tre_rejects_mismatched_or_empty_point_sets():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        tre_stats(np.zeros((4, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        tre_stats(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="no landmarks"):
        tre_stats(np.zeros((0, 3)), np.zeros((0, 3)))


# -- Jacobian statistics ----------------------------------------------------------------
def test_identity_and_uniform_scaling_have_zero_sdlogj(grid_case):
    _, shape, affine = grid_case
    grid = Grid.from_file_affine(shape, affine)
    identity = Displacement.identity(grid).jacobian_determinant()
    assert jacobian_stats(identity) == {"jac_nonpos_pct": 0.0, "sdlogj": 0.0}
    scaling = np.eye(4)
    scaling[:3, :3] *= 1.1
    scaled = Displacement.from_world_affine(scaling, grid).jacobian_determinant()
    stats = jacobian_stats(scaled)
    assert stats["jac_nonpos_pct"] == 0.0 and stats["sdlogj"] == pytest.approx(0.0, abs=1e-5)


def test_sdlogj_is_the_population_sd_of_log_j():
    # log J is 0 on half the voxels and 2 on the other half: SD 1 (not sqrt(n / (n - 1))).
    determinant = np.ones((4, 5, 6))
    determinant[:2] = math.exp(2.0)
    assert jacobian_stats(determinant)["sdlogj"] == pytest.approx(1.0, rel=1e-12)
    # log J in {0, 0, 0, log 4} inside the mask: mean log(4) / 4, SD sqrt(3) / 4 * log 4.
    mask = np.zeros(determinant.shape, bool)
    determinant[:] = 1.0
    determinant[0, 0, :4] = [1.0, 1.0, 1.0, 4.0]
    mask[0, 0, :4] = True
    assert jacobian_stats(determinant, mask)["sdlogj"] == pytest.approx(
        math.sqrt(3) / 4 * math.log(4.0), rel=1e-12)


def test_non_positive_jacobians_are_counted_and_clipped_at_1e_minus_9():
    determinant = np.array([1.0, 1.0, 0.0, -3.0]).reshape(1, 2, 2)
    stats = jacobian_stats(determinant)
    assert stats["jac_nonpos_pct"] == 50.0  # J = 0 counts as folded
    # log J in {0, 0, log 1e-9, log 1e-9}: SD half the gap.
    assert stats["sdlogj"] == pytest.approx(9 * math.log(10) / 2, rel=1e-12)


def test_jacobian_stats_of_an_empty_mask_are_nan():
    stats = jacobian_stats(np.ones((3, 3, 3)), np.zeros((3, 3, 3), bool))
    assert math.isnan(stats["jac_nonpos_pct"]) and math.isnan(stats["sdlogj"])


def test_folding_field_gives_the_expected_non_positive_fraction():
    """``u_x = -2 (x - x0)`` beyond the plane ``x = x0`` (half-way between voxels 9 and
    10), zero before it: ``J = 1 - 2 = -1`` in the fold and 1 before it. Central
    differences straddling the kink see half of the slope change: 1 - 0.5 at voxel 9
    (``(u(10) - u(8)) / 2 = -0.5 voxel``) and 1 - 1.5 at voxel 10."""
    shape = (20, 8, 6)
    spacing = (0.7, 1.5, 2.5)
    grid = Grid.from_file_affine(shape, np.diag([*spacing, 1.0]))
    x_mm = np.arange(shape[0]) * spacing[0]
    x0 = 9.5 * spacing[0]
    field = np.zeros((3, *shape))
    field[0] = np.where(x_mm > x0, -2.0 * (x_mm - x0), 0.0)[:, None, None]
    determinant = Displacement.from_millimetres(field, grid).jacobian_determinant()
    expected = np.array([1.0] * 9 + [0.5, -0.5] + [-1.0] * 9)
    np.testing.assert_allclose(determinant, np.broadcast_to(expected[:, None, None], shape),
                               atol=1e-6)
    # The whole volume: x = 10..19 of 0..19 folded.
    assert jacobian_stats(determinant)["jac_nonpos_pct"] == pytest.approx(50.0)
    # A box over x = 6..15 (y, z partly): x = 10..15 folded, 6 slices of 10.
    box = np.zeros(shape, bool)
    box[6:16, 2:6, 1:4] = True
    assert jacobian_stats(determinant, box)["jac_nonpos_pct"] == pytest.approx(60.0)
    # Only the unfolded side, x = 6..9: J = 1, 1, 1, 0.5, so log J = 0, 0, 0, -log 2.
    box[10:] = False
    assert jacobian_stats(determinant, box) == pytest.approx(
        {"jac_nonpos_pct": 0.0, "sdlogj": math.sqrt(3) / 4 * math.log(2.0)}, rel=1e-5)


# -- label_metrics ----------------------------------------------------------------------
def test_label_metrics_of_a_shifted_breast():
    fixed, warped = breast_blocks(0), breast_blocks(2)
    metrics = label_metrics(fixed, warped, BLOCK_NAMES, SPACING)
    # Background: 2880 - 1600 voxels in each map; outside both foregrounds (x = 2..19):
    # 2880 - 1800. Fat: 936 in each; the cubes share x = 4..11 (800 voxels) less the
    # FGT of either map there (x = 4..9, 4 x 4 across: 96). FGT: 4^3 cubes sharing
    # 2 x 4 x 4. Pectoralis: 4-voxel slabs sharing 2. Chest wall: 2-voxel slabs, none.
    # Breast (fat + FGT, not pectoralis or chest wall): 10^3 cubes sharing 8 x 10 x 10.
    # HD95: 2 x 0.5 mm for both cubes (the case of test_hd95_of_shifted_cubes; for the
    # 4^3 FGT cube 16 of 56 surface distances are 1 mm, the rest 0 or 0.5 mm).
    # Duct and lesion are in neither map: no keys.
    assert metrics == pytest.approx({
        "dice_background": 2 * 1080 / (1280 + 1280),
        "dice_fat": 2 * 704 / (936 + 936),
        "dice_fgt": 0.5,
        "dice_pectoralis": 0.5,
        "dice_chest_wall": 0.0,
        "dice_breast": 0.8,
        "hd95_breast_mm": 1.0,
        "hd95_fgt_mm": 1.0,
    }, rel=1e-12)


def test_label_metrics_of_identical_maps_and_of_maps_without_breast_tissue():
    labels = breast_blocks()
    same = label_metrics(labels, labels, BLOCK_NAMES, SPACING)
    assert {k: v for k, v in same.items() if k.startswith("dice")} == dict.fromkeys(
        ["dice_background", "dice_fat", "dice_fgt", "dice_pectoralis", "dice_chest_wall",
         "dice_breast"], 1.0)
    assert same["hd95_breast_mm"] == 0.0 and same["hd95_fgt_mm"] == 0.0
    # Names outside the breast vocabulary: Dice per label only, no breast or FGT keys.
    blob = (labels > 0).astype(np.int16)
    moved = np.roll(blob, 2, axis=0)
    # Foregrounds of 1600 voxels, 16 long in x, 2 apart: they share 14 x 10 x 10.
    assert label_metrics(blob, moved, {"blob": 1}, SPACING) == pytest.approx(
        {"dice_blob": 2 * 1400 / 3200}, rel=1e-12)
