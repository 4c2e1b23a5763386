"""The stage guard: a registration is never silently worse than where it started."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_volumes import blob_volume, centred_affine

from breastlib.displacement import FOLDING_LIMIT_PCT
from breastlib.intensity import normalise_intensity
from breastlib.register.guard import GUARD_MARGIN, StageCheck, check_stages, choose_stage
from breastlib.register.pipeline import register_pair


def _checks(*values: tuple[str, float, float]) -> list[StageCheck]:
    return [StageCheck(stage, cost, folding) for stage, cost, folding in values]


def test_choose_stage_keeps_the_most_refined_clear_improvement():
    checks = _checks(("identity", 1.0, 0), ("initial", 0.9, 0), ("convex", 0.6, 0),
                     ("adam", 0.4, 0.5))
    assert choose_stage(checks) == "adam"


def test_choose_stage_drops_a_folding_stage_however_good_its_cost():
    checks = _checks(("identity", 1.0, 0), ("initial", 0.9, 0), ("convex", 0.6, 0),
                     ("adam", 0.1, FOLDING_LIMIT_PCT + 0.1))
    assert choose_stage(checks) == "convex"


def test_choose_stage_needs_more_than_the_margin():
    just_short = 1.0 - GUARD_MARGIN * 0.9
    checks = _checks(("identity", 1.0, 0), ("initial", 1.2, 0), ("convex", just_short, 0),
                     ("adam", 1.5, 0))
    assert choose_stage(checks) == "identity"
    # Compared with the stage kept so far, not the one just before.
    checks = _checks(("identity", 1.0, 0), ("initial", 1.2, 0), ("convex", 1.1, 0),
                     ("adam", 0.5, 0))
    assert choose_stage(checks) == "adam"


def test_choose_stage_needs_the_improvement_at_both_scales():
    """A field that lowers the fine-scale cost a lot but the coarse one by less than the
    margin (edges aligned, tissue between them moved wrongly) is not kept."""
    coarse_short = 1.0 - GUARD_MARGIN * 0.5
    checks = [StageCheck("identity", 1.0, 0, 1.0), StageCheck("initial", 1.1, 0, 1.1),
              StageCheck("convex", 0.75, 0, coarse_short), StageCheck("adam", 0.7, 0, 1.0)]
    assert choose_stage(checks) == "identity"
    checks[2] = StageCheck("convex", 0.75, 0, 0.75)
    assert choose_stage(checks) == "convex"


@pytest.fixture(scope="module")
def shifted_blobs():
    shape = (48, 44, 32)
    affine = centred_affine(shape, spacing=(2.0, 2.4, 3.0), angle_deg=17.0, lps=True)
    shift = np.array([4.0, -3.0, 5.0])
    fixed = blob_volume(shape, affine, seed=3)
    moving = blob_volume(shape, affine, shift_mm=shift, seed=3)
    return fixed, moving, shift


def test_check_stages_scores_the_true_shift_below_no_registration_and_sees_folding(
        shifted_blobs):
    fixed, moving, shift = shifted_blobs
    fixed_norm = torch.as_tensor(normalise_intensity(fixed.array))
    moving_norm = torch.as_tensor(normalise_intensity(moving.array))
    voxels = np.linalg.solve(fixed.affine[:3, :3], shift)  # the pull-back field, in voxels
    true_field = torch.as_tensor(voxels, dtype=torch.float32).view(1, 3, 1, 1, 1)
    true_field = true_field.expand(1, 3, *fixed.shape).contiguous()
    # u_x = -2 x: det(I + du/di) = -1 everywhere, a field folded through itself.
    index_x = torch.arange(fixed.shape[0], dtype=torch.float32).view(-1, 1, 1)
    folded = torch.zeros(1, 3, *fixed.shape)
    folded[0, 0] = -2.0 * index_x.expand(fixed.shape)
    foreground = normalise_intensity(fixed.array) > 0.1
    checks = check_stages(fixed_norm, moving_norm, None,
                          {"convex": folded, "adam": true_field}, foreground)
    by_stage = {c.stage: c for c in checks}
    assert [c.stage for c in checks] == ["initial", "convex", "adam"]
    assert by_stage["adam"].cost < 0.5 * by_stage["initial"].cost
    assert by_stage["adam"].folding_pct == 0.0
    assert by_stage["convex"].folding_pct > 99.0
    assert choose_stage(checks) == "adam"


def test_a_registration_with_nothing_to_match_falls_back_instead_of_folding():
    """Two unrelated anatomies and an optimiser free to drift (no smoothing, no
    regulariser): unguarded, Adam folds half the volume; guarded, the result is an earlier
    stage that does not fold, and the result says which."""
    shape = (48, 44, 32)
    affine = centred_affine(shape, spacing=(2.0, 2.4, 3.0), angle_deg=17.0, lps=True)
    fixed = blob_volume(shape, affine, seed=3, noise=0.3)
    moving = blob_volume(shape, affine, shift_mm=np.array([4.0, -3.0, 5.0]), seed=4,
                         noise=0.3)
    loose = {"learning_rate": 5.0, "regularisation": 0.0, "smooth_kernel": 1,
             "smooth_passes": 1}
    unguarded = register_pair(fixed, moving, method="mind", guard=False, **loose)
    guarded = register_pair(fixed, moving, method="mind", guard=True, **loose)
    assert unguarded.stage == "adam" and unguarded.stage_checks == []
    assert (unguarded.displacement.jacobian_determinant() <= 0).mean() * 100 > 10.0
    assert guarded.stage in ("identity", "initial", "convex")
    assert (guarded.displacement.jacobian_determinant() <= 0).mean() * 100 <= FOLDING_LIMIT_PCT
    assert [c["stage"] for c in guarded.stage_checks] == ["identity", "initial", "convex",
                                                          "adam"]
    assert guarded.seconds["guard"] > 0.0
    if guarded.stage == "identity":
        assert np.all(guarded.displacement.field == 0.0)
    # A study keeps the Adam stage all the same (keep_adam): the method's own result,
    # the very field the unguarded run returns, beside what the guard delivers.
    kept = register_pair(fixed, moving, method="mind", guard=True, keep_adam=True, **loose)
    assert kept.stage == guarded.stage and kept.adam_displacement is not None
    np.testing.assert_array_equal(kept.own_displacement.field, unguarded.displacement.field)
    np.testing.assert_array_equal(kept.displacement.field, guarded.displacement.field)
    assert guarded.adam_displacement is None  # only when asked for


def test_the_guard_keeps_a_registration_that_works(shifted_blobs):
    fixed, moving, _ = shifted_blobs
    result = register_pair(fixed, moving, method="mind", profile="fast", init="none")
    assert result.params["guard"] is True
    assert result.stage == "adam"
    assert [c["stage"] for c in result.stage_checks] == ["initial", "convex", "adam"]
    kept = register_pair(fixed, moving, method="mind", profile="fast", init="none",
                         keep_adam=True)
    assert kept.adam_displacement is None  # the guard kept Adam: nothing more to return
    np.testing.assert_array_equal(kept.own_displacement.field, result.displacement.field)
