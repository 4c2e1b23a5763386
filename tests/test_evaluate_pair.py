"""One cohort pair and its metrics (``breastlib.evaluate.pair``), on a pair whose answers
are known: the moving labels (:func:`synthetic_volumes.breast_blocks`) and landmarks are
the fixed ones moved 2 voxels (1 mm) in x."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic_volumes import BLOCK_NAMES, TINY_LABELS, TINY_SHIFTS, breast_blocks

from breastlib.displacement import Displacement
from breastlib.errors import InputError
from breastlib.evaluate.pair import CohortPair, load_cohort_pair, pair_metrics
from breastlib.volume import Volume

AFFINE = np.diag([0.5, 2.0, 3.0, 1.0])  # RAS axes: index x is world x, 0.5 mm apart
SHIFT_VOXELS = 2
SHIFT_MM = np.array([SHIFT_VOXELS * 0.5, 0.0, 0.0])


@pytest.fixture
def pair() -> CohortPair:
    fixed, moving = breast_blocks(0), breast_blocks(SHIFT_VOXELS)
    points = np.array([[2.0, 4.0, 9.0], [3.0, 12.0, 15.0], [4.5, 8.0, 21.0]])  # RAS mm
    return CohortPair(
        pair_id="p", task=None,
        fixed=Volume.from_array(fixed.astype(np.float32), AFFINE),
        moving=Volume.from_array(moving.astype(np.float32), AFFINE),
        fixed_labels=Volume.from_array(fixed, AFFINE, dtype=None),
        moving_labels=Volume.from_array(moving, AFFINE, dtype=None),
        fixed_points=points, moving_points=points + SHIFT_MM, label_names=BLOCK_NAMES,
    )


def test_identity_scores_the_misalignment(pair):
    metrics = pair_metrics(Displacement.identity(pair.fixed.grid), pair)
    # The shifted-cube cases of test_metrics.py: Dice 0.8 (breast) and 0.5 (FGT), HD95
    # 2 x 0.5 mm; every landmark 1 mm off; no lesion in either map; J = 1 in the body.
    expected = {"dice_breast": 0.8, "hd95_breast_mm": 1.0, "dice_fgt": 0.5,
                "hd95_fgt_mm": 1.0, "jac_nonpos_pct": 0.0, "sdlogj": 0.0,
                "tre_mean_before_mm": 1.0, "tre_mean_after_mm": 1.0,
                "tre_median_after_mm": 1.0, "tre_p90_after_mm": 1.0}
    assert math.isnan(metrics["dice_lesion"])
    assert {key: metrics[key] for key in expected} == pytest.approx(expected, rel=1e-6)


def test_the_true_field_scores_perfectly(pair):
    field = np.zeros((3, *pair.fixed.shape), np.float32)
    field[0] = SHIFT_VOXELS  # warped(x) = moving(x + 2 voxels) = fixed(x)
    truth = Displacement(field, pair.fixed.grid)
    metrics = pair_metrics(truth, pair, detail=True)
    assert metrics["dice_breast"] == 1.0 and metrics["hd95_breast_mm"] == 0.0
    assert metrics["dice_fgt"] == 1.0 and metrics["hd95_fgt_mm"] == 0.0
    assert metrics["tre_mean_after_mm"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["tre_p90_after_mm"] == pytest.approx(0.0, abs=1e-6)
    # detail: every named label after and before, and TRE before in full.
    assert metrics["dice_pectoralis"] == 1.0 and metrics["dice_pectoralis_before"] == 0.5
    assert metrics["dice_chest_wall"] == 1.0 and metrics["dice_chest_wall_before"] == 0.0
    assert metrics["dice_breast_before"] == pytest.approx(0.8)
    assert metrics["hd95_breast_mm_before"] == pytest.approx(1.0)
    assert metrics["tre_median_before_mm"] == pytest.approx(1.0)
    assert metrics["tre_p90_before_mm"] == pytest.approx(1.0)


def test_jacobian_is_summarised_inside_the_labelled_body(pair):
    # u_x = -2 (x - 18) voxels from x = 18 on: J <= 0 on the slices x = 18 and 19, beyond
    # the labelled tissue (x = 2..17): 10 % of the grid is folded, none of the body.
    field = np.zeros((3, *pair.fixed.shape), np.float32)
    field[0, 18:] = -2.0 * np.arange(2)[:, None, None]
    folding = Displacement(field, pair.fixed.grid)
    assert np.mean(folding.jacobian_determinant() <= 0) == pytest.approx(0.10)
    assert pair_metrics(folding, pair)["jac_nonpos_pct"] == 0.0
    jacobian = np.ones(pair.fixed.shape, np.float32)
    jacobian[2:4] = -1.0  # 2 of the 16 labelled slices x = 2..17
    metrics = pair_metrics(Displacement.identity(pair.fixed.grid), pair, jacobian=jacobian)
    assert metrics["jac_nonpos_pct"] == pytest.approx(100 * 2 / 16)


def test_load_cohort_pair(tiny_cohort):
    pair = load_cohort_pair(tiny_cohort, "tiny_001")
    assert (pair.pair_id, pair.task) == ("tiny_001", "longitudinal")
    assert pair.label_names == TINY_LABELS
    assert pair.fixed_labels.grid.same_as(pair.fixed.grid)
    np.testing.assert_allclose(pair.moving_points - pair.fixed_points,
                               np.broadcast_to(TINY_SHIFTS["tiny_001"], (12, 3)), atol=1e-9)
    with pytest.raises(InputError, match="'tiny_999' is not listed"):
        load_cohort_pair(tiny_cohort, "tiny_999")


def test_dense_error_near_the_lesion_covers_the_lesion_and_its_margin(pair):
    """A lesion voxel at x = 3 (fat at x = 2..11, 0.5 mm voxels; y and z 2 and 3 mm): a true
    field that differs from the estimate by 1 mm only beyond 3 mm of the lesion along x
    leaves the error near it at 0 within a 2 mm margin, while the breast mean is not 0."""
    from dataclasses import replace

    from breastlib.evaluate.pair import lesion_region

    labels = pair.fixed_labels.array.copy()
    labels[3, 5, 5] = BLOCK_NAMES["lesion"]
    truth = np.zeros((3, *pair.fixed.shape), np.float32)
    truth[0, 10:] = 2.0  # 1 mm (two 0.5 mm voxels) from x = 10 on: 3.5 mm from the lesion
    with_lesion = replace(pair, fixed_labels=Volume.from_array(labels, AFFINE, dtype=None),
                          true_displacement=Displacement(truth, pair.fixed.grid))
    near = lesion_region(with_lesion, margin_mm=2.0)
    assert near is not None and near[3, 5, 5] and not near[10, 5, 5]
    assert near[7, 5, 5] and not near[3, 5, 7]  # 2 mm along x, 6 mm along z
    metrics = pair_metrics(Displacement.identity(pair.fixed.grid), with_lesion)
    assert metrics["field_error_mean_mm"] > 0.1
    assert lesion_region(pair) is None  # no lesion: no region, no metric
    assert "field_error_lesion_mm" not in pair_metrics(
        Displacement.identity(pair.fixed.grid),
        replace(pair, true_displacement=Displacement(truth, pair.fixed.grid)))
    from breastlib.evaluate.metrics import field_error_stats

    truth_mm = Displacement(truth, pair.fixed.grid).millimetres()
    zero = np.zeros_like(truth_mm)
    assert field_error_stats(zero, truth_mm, near)["mean"] == 0.0  # 2 mm: all before x = 10
    default = lesion_region(with_lesion)  # 10 mm reaches past x = 10
    assert metrics["field_error_lesion_mm"] == pytest.approx(
        field_error_stats(zero, truth_mm, default)["mean"])
    assert 0.0 < metrics["field_error_lesion_mm"] < 1.0


def test_labels_are_compared_where_the_moving_image_has_data(pair):
    """A moving image that covers only part of the fixed one (its own, shorter grid):
    the true field still scores perfectly, since the tissue the moving image never
    showed is not counted as missed."""
    from dataclasses import replace

    keep = 10  # the moving grid stops at x = 9 voxels, through its breast (x = 4..13)
    cropped = Volume.from_array(pair.moving_labels.array[:keep], AFFINE, dtype=None)
    short = replace(pair, moving=Volume.from_array(pair.moving.array[:keep], AFFINE),
                    moving_labels=cropped)
    field = np.zeros((3, *pair.fixed.shape), np.float32)
    field[0] = SHIFT_VOXELS
    metrics = pair_metrics(Displacement(field, pair.fixed.grid), short)
    assert metrics["dice_breast"] == 1.0 and metrics["hd95_breast_mm"] == 0.0
    assert metrics["dice_fgt"] == 1.0
