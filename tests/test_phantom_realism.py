"""Pairs with the clinical effects on (breastlib.phantom.realism): the ground truth still
holds, every effect shows, and with the effects off nothing changes."""

from __future__ import annotations

import numpy as np
import pytest

from breastlib.evaluate.metrics import dice
from breastlib.landmark_groups import landmark_group
from breastlib.phantom import LABELS, Acquisition, make_pair
from breastlib.phantom.cohort import pair_recipe
from breastlib.phantom.realism import Realism
from breastlib.tissues import breast_mask

FAST = Acquisition(supersample=1)
CLINICAL = Realism.clinical()


@pytest.fixture(scope="module")
def pairs():
    return {task: make_pair(task, "small", seed=5, acquisition=FAST, realism=CLINICAL)
            for task in ("longitudinal", "modality")}


def test_presets_and_recipe_names():
    assert Realism.off().is_off() and not CLINICAL.is_off()
    assert Realism.preset("clinical") == CLINICAL and Realism.preset("off") == Realism()
    with pytest.raises(ValueError, match="realism"):
        Realism.preset("extreme")
    # the clinical phantom is the default; the original one keeps a recipe of its own
    default = pair_recipe("longitudinal", "small", 3)
    assert Realism.default() == CLINICAL
    assert pair_recipe("longitudinal", "small", 3, realism=CLINICAL) == default
    assert pair_recipe("longitudinal", "small", 3, realism=Realism.off()) != default
    assert default.startswith("phantom-v2-")


@pytest.mark.parametrize("task", ["longitudinal", "modality"])
def test_clinical_pairs_keep_their_ground_truth(pairs, task):
    pair = pairs[task]
    assert pair.info["realism"] == CLINICAL.as_dict()
    assert not pair.info["same_grid"]  # two visits never share a grid
    fixed = pair.fixed_labels.array
    warped = pair.displacement.warp_labels(pair.moving_labels).array
    unwarped = pair.moving_labels.resample_to(pair.fixed_labels, mode="nearest").array
    d_gt = dice(breast_mask(fixed, LABELS), breast_mask(warped, LABELS))
    assert d_gt > 0.9 and d_gt > dice(breast_mask(fixed, LABELS),
                                      breast_mask(unwarped, LABELS)) + 0.02
    np.testing.assert_allclose(pair.displacement.to_moving(pair.fixed_landmarks),
                               pair.moving_landmarks, atol=1e-9)
    assert np.isfinite(pair.moving.array).all() and np.isfinite(pair.fixed.array).all()


@pytest.mark.parametrize("task", ["longitudinal", "modality"])
def test_clinical_pairs_have_landmarks_where_registrations_fail(pairs, task):
    groups = {landmark_group(kind) for kind in pairs[task].landmark_kinds}
    assert {"interior", "skin", "chest_wall"} <= groups


def test_the_mri_grids_are_drawn_per_image_and_the_ct_keeps_its_own(pairs):
    longitudinal, modality = pairs["longitudinal"], pairs["modality"]
    assert not longitudinal.fixed.grid.same_as(longitudinal.moving.grid)
    assert not np.allclose(longitudinal.fixed.spacing, longitudinal.moving.spacing)
    plain = make_pair("modality", "small", seed=5, acquisition=FAST, realism=Realism.off())
    assert modality.moving.grid.same_as(plain.moving.grid)  # the CT grid
    assert not modality.fixed.grid.same_as(plain.fixed.grid)


def test_effects_off_give_the_original_phantom():
    """``Realism.off()`` is phantom version 1: the same pair as before the clinical
    effects existed (fingerprints measured with version 1's code; tolerant to the last
    bits that differ between CPUs), one grid, the task's own regime."""
    off = make_pair("longitudinal", "small", seed=7, acquisition=FAST, realism=Realism.off())
    assert "realism" not in off.info and off.info["same_grid"]
    assert off.fixed.shape == off.moving.shape == (128, 128, 64)
    assert len(off.landmark_kinds) == 81
    assert off.moving.array.astype(np.float64).mean() == pytest.approx(281.52763, rel=1e-5)
    assert off.fixed.array.astype(np.float64).std() == pytest.approx(331.40255, rel=1e-5)
    assert np.abs(off.displacement.field).astype(np.float64).mean() == pytest.approx(
        1.0627872, rel=1e-5)
    modality = make_pair("modality", "small", seed=7, acquisition=FAST, realism=Realism.off())
    assert modality.info["regime"] == "position"
    assert make_pair("modality", "small", seed=7, acquisition=FAST).info["regime"] == "visit"


def test_fat_suppression_residue_brightens_fat_in_the_suppressed_series():
    """The lesion task's images are fat-suppressed: with a residue, fat is brighter."""
    plain = make_pair("lesion", "small", seed=2, acquisition=FAST, realism=Realism.off())
    residue = make_pair("lesion", "small", seed=2, acquisition=FAST,
                        realism=Realism(fat_sat_residue=0.5))
    fat = plain.fixed_labels.array == LABELS["fat"]
    assert np.median(residue.fixed.array[fat]) > 1.2 * np.median(plain.fixed.array[fat])
    np.testing.assert_array_equal(plain.fixed_labels.array, residue.fixed_labels.array)


def test_the_cohort_chapter_says_what_the_realism_benchmark_measured():
    """book/cohort.md describes benchmarks/results/phantom_realism.json in words; when the
    benchmark is rerun, these claims must be read again."""
    from pathlib import Path

    import pandas as pd

    from breastlib.booktools.chapters import realism_difficulty

    root = Path(__file__).resolve().parents[1]
    record = pd.read_json(root / "benchmarks" / "results" / "phantom_realism.json",
                          typ="series")
    table = realism_difficulty(pd.DataFrame(record["rows"]))
    tre = table["TRE (mm)"]
    # elastix's landmark error about doubles, MIND's about triples, identity moves little
    assert 1.8 < tre["longitudinal", "clinical", "elastix"] / tre[
        "longitudinal", "off", "elastix"] < 2.6
    assert 2.6 < tre["longitudinal", "clinical", "mind"] / tre[
        "longitudinal", "off", "mind"] < 3.6
    assert 0.9 < tre["longitudinal", "clinical", "identity"] / tre[
        "longitudinal", "off", "identity"] < 1.3
    elastix = table.loc[("longitudinal", "clinical", "elastix")]
    assert elastix["TRE chest wall"] > elastix["TRE skin"] > elastix["TRE interior"]
    assert table.loc[("longitudinal", "clinical", "mind"), "folded (%)"] > 0.1
    # modality: no registration about half as far off (the visit regime), elastix's error
    # grows, MIND's breast Dice 0.72 with 1.6 % folded
    assert 0.4 < tre["modality", "clinical", "identity"] / tre[
        "modality", "off", "identity"] < 0.6
    assert tre["modality", "clinical", "elastix"] > tre["modality", "off", "elastix"]
    mind = table.loc[("modality", "clinical", "mind")]
    text = " ".join((root / "book" / "cohort.md").read_text().split())
    assert (f"breast Dice falls to {mind['breast Dice']:.2f} with "
            f"{mind['folded (%)']:.1f} % of the body folded") in text
    # the difficulty target on the longitudinal task: best classical 2-5 mm,
    # no registration at least 8 mm
    assert 2.0 < tre["longitudinal", "clinical", "elastix"] < 5.0
    assert tre["longitudinal", "clinical", "identity"] >= 8.0
    assert "about doubles" in text and "about triples" in text


def test_the_pair_evaluation_splits_the_landmark_error_by_group(tmp_path, pairs):
    """A written clinical pair's landmark kinds reach pair_metrics, which then gives the
    error per group; without kinds it gives none."""
    from dataclasses import replace

    import pandas as pd

    from breastlib.displacement import Displacement
    from breastlib.evaluate.pair import load_cohort_pair, pair_metrics
    from breastlib.landmark_groups import LANDMARK_GROUPS
    from breastlib.phantom.cohort import write_pair

    pair = pairs["longitudinal"]
    row = write_pair(pair, tmp_path, "p0")
    pd.DataFrame([row]).to_csv(tmp_path / "manifest.csv", index=False)
    loaded = load_cohort_pair(tmp_path / "manifest.csv", "p0")
    assert loaded.landmark_kinds == tuple(pair.landmark_kinds)
    identity = Displacement.identity(loaded.fixed.grid)
    metrics = pair_metrics(identity, loaded)
    errors = np.linalg.norm(pair.fixed_landmarks - pair.moving_landmarks, axis=1)
    kinds = np.array(pair.landmark_kinds)
    assert metrics["tre_skin_mm"] == pytest.approx(errors[kinds == "skin"].mean(), rel=1e-6)
    assert metrics["tre_chest_wall_mm"] == pytest.approx(errors[kinds == "chest_wall"].mean(),
                                                         rel=1e-6)
    assert all(f"tre_{group}_mm" in metrics for group in LANDMARK_GROUPS)
    plain = pair_metrics(identity, replace(loaded, landmark_kinds=None))
    assert "tre_skin_mm" not in plain and plain["tre_mean_after_mm"] == metrics[
        "tre_mean_after_mm"]


def test_noise_scale_scales_the_mri_noise_and_not_the_ct():
    plain = make_pair("modality", "small", seed=4, acquisition=FAST, realism=Realism.off())
    quiet = make_pair("modality", "small", seed=4, acquisition=FAST,
                      realism=Realism(noise_scale=0.4))
    air = plain.fixed_labels.array == 0  # the same grid and labels: only the noise differs
    ratio = quiet.fixed.array[air].std() / plain.fixed.array[air].std()
    assert 0.3 < ratio < 0.5
    np.testing.assert_array_equal(quiet.moving.array, plain.moving.array)  # CT noise in HU
