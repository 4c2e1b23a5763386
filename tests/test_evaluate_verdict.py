"""The primary metric (dense field error) and the verdict on every registration."""

from __future__ import annotations

import numpy as np
import pytest

from breastlib.displacement import Displacement
from breastlib.errors import InputError
from breastlib.evaluate.metrics import field_error_stats
from breastlib.evaluate.pair import CohortPair, pair_metrics
from breastlib.evaluate.verdict import FOLDING_LIMIT_PCT, verdict, worse_than_identity
from breastlib.grid import Grid


def test_field_error_of_a_constant_offset_is_its_length():
    truth = np.zeros((3, 4, 5, 6))
    estimate = truth.copy()
    estimate[0] += 3.0
    estimate[2] += 4.0  # |(3, 0, 4)| = 5 mm everywhere
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3] = True
    assert field_error_stats(estimate, truth, mask) == {"mean": 5.0, "p95": 5.0}
    empty = field_error_stats(estimate, truth, np.zeros_like(mask))
    assert np.isnan(empty["mean"]) and np.isnan(empty["p95"])


def test_field_error_p95_of_known_values():
    truth = np.zeros((3, 100, 1, 1))
    estimate = truth.copy()
    estimate[1, :, 0, 0] = np.arange(100.0)  # errors 0..99 mm
    stats = field_error_stats(estimate, truth, np.ones((100, 1, 1), bool))
    assert stats["mean"] == pytest.approx(49.5)
    assert stats["p95"] == pytest.approx(94.05)  # linear interpolation between 94 and 95


@pytest.mark.parametrize(("row", "expected"), [
    ({"jac_nonpos_pct": 0.0, "field_error_mean_mm": 1.0, "field_error_mean_before_mm": 8.0},
     "ok"),
    ({"jac_nonpos_pct": FOLDING_LIMIT_PCT + 0.01, "field_error_mean_mm": 1.0,
      "field_error_mean_before_mm": 8.0}, "folded"),
    ({"jac_nonpos_pct": FOLDING_LIMIT_PCT, "field_error_mean_mm": 1.0,
      "field_error_mean_before_mm": 8.0}, "ok"),  # the limit itself is not folded
    ({"jac_nonpos_pct": 0.0, "field_error_mean_mm": 9.0, "field_error_mean_before_mm": 8.0},
     "worse_than_identity"),
    ({"jac_nonpos_pct": 0.0, "field_error_mean_mm": 1.0, "field_error_mean_before_mm": 8.0,
      "dice_breast": 0.45, "dice_breast_before": 0.82}, "worse_than_identity"),
    ({"jac_nonpos_pct": 0.0, "hd95_breast_mm": 100.0, "hd95_breast_mm_before": 12.0},
     "worse_than_identity"),
    # Without a true field the landmark error is the primary metric.
    ({"tre_mean_after_mm": 9.0, "tre_mean_before_mm": 8.0}, "worse_than_identity"),
    ({"tre_mean_after_mm": 8.05, "tre_mean_before_mm": 8.0}, "ok"),  # within the slack
    ({}, "ok"),
])
def test_verdict(row, expected):
    assert verdict(row) == expected


def test_worse_than_identity_names_the_metrics():
    row = {"field_error_mean_mm": 9.0, "field_error_mean_before_mm": 8.0,
           "tre_mean_after_mm": 20.0, "tre_mean_before_mm": 8.0,  # not primary: ignored
           "dice_breast": 0.5, "dice_breast_before": 0.8}
    assert worse_than_identity(row) == ["field_error_mean_mm", "dice_breast"]


def _pair_with_truth(blob_pair) -> tuple[CohortPair, Displacement]:
    fixed, moving, shift = blob_pair
    shift_mm = np.broadcast_to(shift.reshape(3, 1, 1, 1), (3, *fixed.shape)).copy()
    truth = Displacement.from_millimetres(shift_mm, fixed.grid)
    pair = CohortPair(pair_id="p", task=None, fixed=fixed, moving=moving, fixed_labels=None,
                      moving_labels=None, fixed_points=None, moving_points=None,
                      label_names={}, true_displacement=truth)
    return pair, truth


def test_pair_metrics_scores_fields_against_the_truth(blob_pair):
    pair, truth = _pair_with_truth(blob_pair)
    length = float(np.linalg.norm(blob_pair[2]))
    exact = pair_metrics(truth, pair, detail=True)
    assert exact["field_error_mean_mm"] == pytest.approx(0.0, abs=1e-4)
    assert exact["field_error_mean_before_mm"] == pytest.approx(length, rel=1e-5)
    assert exact["field_error_region"] == "body"  # no labels: over the body
    assert exact["verdict"] == "ok"
    identity = pair_metrics(Displacement.identity(pair.fixed.grid), pair)
    assert identity["field_error_mean_mm"] == pytest.approx(length, rel=1e-5)
    assert identity["verdict"] == "ok"  # never worse than itself
    backwards = Displacement(-truth.field, truth.grid)
    wrong = pair_metrics(backwards, pair)
    assert wrong["field_error_mean_mm"] == pytest.approx(2 * length, rel=1e-5)
    assert wrong["verdict"] == "worse_than_identity"


def test_truth_on_another_grid_is_refused_in_one_line(blob_pair):
    pair, truth = _pair_with_truth(blob_pair)
    coarse = truth.grid.file_affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    other = Grid.from_file_affine(truth.grid.shape, coarse)
    moved = CohortPair(**{**pair.__dict__, "true_displacement": Displacement(truth.field,
                                                                            other)})
    with pytest.raises(InputError) as error:
        pair_metrics(truth, moved)
    message = str(error.value)
    assert "\n" not in message and "another grid" in message
    spacing = np.round(truth.grid.spacing, 4).tolist()
    assert str(spacing) in message and str((2 * np.round(truth.grid.spacing, 4)).tolist()) \
        in message  # both grids are named


def test_register_and_study_give_the_same_numbers(tiny_cohort, tmp_path):
    """summary.json of ``breastlib register`` and the study's results row of the same pair
    come from one evaluation: every metric both report is equal."""
    import json

    import pandas as pd

    from breastlib.cli import main
    from breastlib.study.run import NUMERIC_COLUMNS, run_study

    table = run_study(tiny_cohort, ["affine"], out=tmp_path / "study", progress=False)
    row = table.set_index("pair_id").loc["tiny_000"]
    root = tiny_cohort.parent
    pair = root / "tiny_000"
    assert main([
        "register", str(pair / "fixed.nii.gz"), str(pair / "moving.nii.gz"),
        "--out", str(tmp_path / "reg"), "--method", "affine",
        "--fixed-labels", str(pair / "fixed_labels.nii.gz"),
        "--moving-labels", str(pair / "moving_labels.nii.gz"),
        "--label-names", str(root / "labels.json"),
        "--fixed-points", str(pair / "fixed_landmarks.csv"),
        "--moving-points", str(pair / "moving_landmarks.csv"),
        "--true-displacement", str(pair / "gt_displacement.nii.gz"),
    ]) == 0
    summary = json.loads((tmp_path / "reg" / "summary.json").read_text())
    assert summary["verdict"] == row["verdict"] == "ok"
    assert summary["primary_metric"] == "field_error_mean_mm"
    metrics = summary["metrics"]
    shared = [c for c in NUMERIC_COLUMNS if c in metrics and pd.notna(row[c])]
    assert {"field_error_mean_mm", "field_error_p95_mm", "dice_breast", "jac_nonpos_pct",
            "sdlogj", "tre_mean_after_mm"} <= set(shared)
    for column in shared:
        assert metrics[column] == pytest.approx(row[column], abs=1e-4), column
    assert metrics["field_error_mean_mm"] < 1.0 < metrics["field_error_mean_before_mm"]
