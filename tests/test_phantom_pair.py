"""Pairs of the four study tasks: ground truth agrees with images, labels and landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from breastlib.evaluate.metrics import dice
from breastlib.phantom import LABELS, TASKS, Acquisition, make_pair
from breastlib.phantom.realism import Realism
from breastlib.tissues import breast_mask

FAST = Acquisition(supersample=1)
# The geometry tests hold for the original phantom (one grid per MRI pair) and for the
# default clinical one (a grid per visit and sequence, every task in the visit regime).
PRESETS = ("off", "clinical")


@pytest.fixture(scope="module", params=PRESETS)
def pairs(request):
    realism = Realism.preset(request.param)
    return {task: make_pair(task, "small", seed=5, acquisition=FAST, realism=realism)
            for task in TASKS}


@pytest.mark.parametrize("task", list(TASKS))
def test_pair_shapes_sequences_and_grids(pairs, task):
    pair = pairs[task]
    clinical = "realism" in pair.info
    fixed_seq, moving_seq, regime = TASKS[task]
    assert pair.info["fixed_sequence"] == fixed_seq
    assert pair.info["moving_sequence"] == moving_seq
    assert pair.info["regime"] == ("visit" if clinical else regime)
    assert pair.fixed.array.dtype == np.float32
    assert pair.fixed_labels.grid.same_as(pair.fixed.grid)
    assert pair.moving_labels.grid.same_as(pair.moving.grid)
    assert pair.displacement.grid.same_as(pair.fixed.grid)
    assert pair.inverse.grid.same_as(pair.moving.grid)
    assert pair.info["same_grid"] == pair.fixed.grid.same_as(pair.moving.grid)
    if clinical:  # two acquisitions never share a grid
        assert not pair.info["same_grid"]
    else:
        assert pair.info["same_grid"] == (task != "modality")
    assert np.isfinite(pair.moving.array).all()


@pytest.mark.parametrize("task", list(TASKS))
def test_ground_truth_brings_the_moving_tissue_onto_the_fixed_tissue(pairs, task):
    """Warping the moving labels with the true field reproduces the fixed labels;
    a wrong (e.g. inverted) field would not."""
    pair = pairs[task]
    # Compared where the moving image saw the tissue: with a grid per acquisition its
    # coverage differs, and fixed tissue mapped outside it has nothing to show.
    seen = _covered(pair)
    fixed = np.where(seen, pair.fixed_labels.array, 0)
    warped = np.where(seen, pair.displacement.warp_labels(pair.moving_labels).array, 0)
    unwarped = np.where(
        seen, pair.moving_labels.resample_to(pair.fixed_labels, mode="nearest").array, 0)
    d_gt = dice(breast_mask(fixed, LABELS), breast_mask(warped, LABELS))
    d_none = dice(breast_mask(fixed, LABELS), breast_mask(unwarped, LABELS))
    assert d_gt > 0.93
    assert d_gt > d_none + 0.02
    body_gt = dice(fixed > 0, warped > 0)
    assert body_gt > 0.97
    lung = LABELS["lung"]
    assert dice(fixed == lung, warped == lung) > 0.9


@pytest.mark.parametrize("task", list(TASKS))
def test_landmarks_follow_the_field(pairs, task):
    pair = pairs[task]
    n = len(pair.landmark_kinds)
    assert n >= 40
    assert pair.fixed_landmarks.shape == pair.moving_landmarks.shape == (n, 3)
    assert {"fgt_branch", "nipple", "vessel_bifurcation"} <= set(pair.landmark_kinds)
    np.testing.assert_allclose(pair.displacement.to_moving(pair.fixed_landmarks),
                               pair.moving_landmarks, atol=1e-9)
    back = pair.inverse.to_moving(pair.moving_landmarks)
    err = np.linalg.norm(back - pair.fixed_landmarks, axis=1)
    assert err.max() < 0.25 * pair.fixed.spacing.min()
    # Landmarks sit in tissue, and the same tissue in both images (ducts can involute,
    # so compare body membership, and breast membership for breast landmarks).
    # Skin landmarks lie on the body's surface: the nearest voxel may be air, but tissue
    # is within one voxel.
    skin = np.array(["skin" in kind for kind in pair.landmark_kinds])
    fl = _labels_at(pair.fixed_labels, pair.fixed_landmarks)
    ml = _labels_at(pair.moving_labels, pair.moving_landmarks)
    assert np.all(fl[~skin] > 0)
    assert np.mean(ml[~skin] > 0) >= 0.95
    near = _labels_near(pair.fixed_labels, pair.fixed_landmarks[skin])
    assert np.all(near > 0)


def _covered(pair):
    """Fixed voxels whose true position in the moving image lies inside its grid."""
    shape = pair.fixed.shape
    points = pair.fixed.grid.index_to_world(np.indices(shape).reshape(3, -1).T.astype(float))
    index = pair.moving.grid.world_to_index(pair.displacement.to_moving(points))
    inside = np.all((index >= 0) & (index <= np.array(pair.moving.shape) - 1), axis=1)
    return inside.reshape(shape)


def _labels_at(labels, points):
    idx = np.rint(labels.grid.world_to_index(points)).astype(int)
    return labels.array[idx[:, 0], idx[:, 1], idx[:, 2]]


def _labels_near(labels, points):
    """The largest label within one voxel (26-neighbourhood) of each point."""
    idx = np.rint(labels.grid.world_to_index(points)).astype(int)
    offsets = np.indices((3, 3, 3)).reshape(3, -1).T - 1
    near = np.clip(idx[:, None, :] + offsets[None], 0, np.array(labels.shape) - 1)
    return labels.array[near[..., 0], near[..., 1], near[..., 2]].max(axis=1)


def test_longitudinal_visit_changes_tissue(pairs):
    pair = pairs["longitudinal"]
    assert pair.info["fgt_scale"] < 1.0
    # Volumes in mm^3: the two visits may have different voxels.
    fixed_fgt = (pair.fixed_labels.array == LABELS["fgt"]).sum() * np.prod(pair.fixed.spacing)
    moving_fgt = ((pair.moving_labels.array == LABELS["fgt"]).sum()
                  * np.prod(pair.moving.spacing))
    assert moving_fgt < fixed_fgt  # involution


def test_lesion_pairs_with_and_without_lesion():
    with_lesion = make_pair("lesion", "small", seed=8, has_lesion=True, acquisition=FAST)
    without = make_pair("lesion", "small", seed=8, has_lesion=False, acquisition=FAST)
    lesion = LABELS["lesion"]
    assert (with_lesion.fixed_labels.array == lesion).sum() > 0
    assert (without.fixed_labels.array == lesion).sum() == 0
    assert "lesion_centre" in with_lesion.landmark_kinds
    # Matched: same subject otherwise, so the breasts coincide.
    a = breast_mask(with_lesion.fixed_labels.array, LABELS)
    b = breast_mask(without.fixed_labels.array, LABELS)
    assert dice(a, b) > 0.99
    # The lesion enhances on the fat-suppressed post-contrast image.
    img = with_lesion.fixed.array
    fgt = with_lesion.fixed_labels.array == LABELS["fgt"]
    assert np.median(img[with_lesion.fixed_labels.array == lesion]) > np.median(img[fgt])


def test_static_motion_is_sub_millimetre():
    pair = make_pair("sequence", "small", seed=2, motion="static", acquisition=FAST)
    assert pair.info["magnitude_mm"] < 1.0
    d = np.linalg.norm(pair.moving_landmarks - pair.fixed_landmarks, axis=1)
    assert d.max() < 1.0


def test_determinism_per_seed():
    a = make_pair("longitudinal", "small", seed=3, acquisition=FAST)
    b = make_pair("longitudinal", "small", seed=3, acquisition=FAST)
    c = make_pair("longitudinal", "small", seed=4, acquisition=FAST)
    for name in ("fixed", "moving", "fixed_labels", "moving_labels"):
        np.testing.assert_array_equal(getattr(a, name).array, getattr(b, name).array)
    np.testing.assert_array_equal(a.displacement.field, b.displacement.field)
    np.testing.assert_array_equal(a.fixed_landmarks, b.fixed_landmarks)
    assert not np.array_equal(a.fixed.array, c.fixed.array)


def test_unknown_task_is_a_user_error():
    from breastlib.errors import BreastlibError

    with pytest.raises(BreastlibError, match="unknown task"):
        make_pair("prone-supine")
