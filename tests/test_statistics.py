"""Statistics and claim checks on synthetic results tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from breastlib.errors import InputError
from breastlib.evaluate.claims import check_claims
from breastlib.evaluate.power import MIN_PAIRS, min_pairs
from breastlib.evaluate.statistics import (
    bootstrap_ci,
    holm,
    lesion_effect,
    pooled_effect,
    seed_spread,
    subject_values,
    summarise,
    task_tests,
)


def table(n_pairs: int, means: dict[str, float], *, weights: str = "pretrained",
          tasks=("longitudinal", "modality"), fgt: dict[str, float] | None = None,
          seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for task in tasks:
        for pair in range(n_pairs):
            noise = rng.normal(0, 0.01)
            for method, mean in means.items():
                bonus = 0.05 if (task == "modality" and method == "sam") else 0.0
                rows.append({
                    "task": task, "pair_id": f"{task}_{pair:03d}", "method": method,
                    "weights": weights if method in ("sam", "medsam", "sslsam", "dinov2",
                                                     "medclip") else None,
                    "dice_breast": mean + bonus + noise + rng.normal(0, 0.002),
                    "dice_fgt": (fgt or {}).get(method, 0.5) + rng.normal(0, 0.002),
                    "tre_mean_after_mm": 5 - 4 * mean, "hd95_breast_mm": 3.0,
                    "jac_nonpos_pct": 0.0, "status": "ok",
                })
    return pd.DataFrame(rows)


MEANS = {"identity": 0.80, "ants": 0.86, "elastix": 0.85, "mind": 0.87, "sam": 0.90,
         "medsam": 0.88, "sslsam": 0.89, "dinov2": 0.87, "medclip": 0.84}
FGT = {"sam": 0.40, "mind": 0.60, "ants": 0.55, "elastix": 0.5}


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    values = np.random.default_rng(1).normal(10, 2, 40)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values)
    assert np.isnan(bootstrap_ci([])[0])


def test_holm_matches_hand_computation():
    adjusted = holm([0.01, 0.04, 0.03, float("nan")])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])


def test_summary_counts_subjects_with_intervals():
    results = table(12, MEANS)
    summary = summarise(results, metrics=("dice_breast",))
    sam = summary[(summary["arm"] == "sam (pretrained)") &
                  (summary["task"] == "longitudinal")].iloc[0]
    assert sam["n"] == 12 and sam["ci_low"] < sam["mean"] < sam["ci_high"]
    lesion = summarise(lesion_table(), metrics=("field_error_mean_mm",))
    assert set(lesion["n"]) == {10}  # subjects, not pairs or seeds


def verdicts_of(claims: pd.DataFrame, task: str = "modality") -> dict:
    """``{claim: verdict}`` in one task."""
    return claims[claims["task"] == task].set_index("claim")["verdict"].to_dict()


def test_claims_held_on_data_built_to_hold_them():
    claims = check_claims(table(8, MEANS, fgt=FGT))
    for task in ("longitudinal", "modality"):
        assert verdicts_of(claims, task) == {1: "held", 2: "held", 3: "held", 4: "held",
                                             "R": "not testable", "P": "not testable"}
    pooled = claims[(claims["claim"] == 2) & (claims["task"] == "all")].iloc[0]
    assert pooled["verdict"] == "held" and "largest margin in task 'modality'" in pooled["reason"]
    assert pooled["numbers"]["pooled"]["subjects"] == 16


def test_claims_not_held_when_data_contradicts_them():
    means = MEANS | {"medsam": 0.95}  # MedSAM beats SAM
    claims = check_claims(table(8, means, fgt={"sam": 0.7, "mind": 0.5}))
    verdicts = verdicts_of(claims, "longitudinal")
    assert verdicts[1] == verdicts[3] == verdicts[4] == "not held"


@pytest.mark.parametrize("n_pairs", [1, MIN_PAIRS // 2 - 1])
def test_too_few_subjects_is_not_testable(n_pairs):
    claims = check_claims(table(n_pairs, MEANS, fgt=FGT))
    assert set(claims["verdict"]) == {"not testable"}
    assert "0.0625" in claims.loc[0, "reason"]


def test_random_weights_are_not_testable_but_the_control_is():
    results = table(10, MEANS, weights="random", fgt=FGT)  # 10: a family of 8 needs 9
    results["field_error_mean_mm"] = 10 - 8 * results["dice_breast"]  # MIND beats random SAM
    results.loc[results["method"] == "sam", "field_error_mean_mm"] += 1.0
    claims = check_claims(results)
    paper = claims[claims["claim"] != "R"]
    assert set(paper["verdict"]) == {"not testable"}
    assert "without pretrained weights" in claims.loc[0, "reason"]
    control = claims[claims["claim"] == "R"].set_index("task")
    # dinov2 (0.87) equals MIND (0.87) up to noise: not significantly worse, so not held
    assert set(control["verdict"]) == {"not held"}
    assert "dinov2 (random)" in control.loc["modality", "reason"]
    better = results.copy()
    better.loc[better["method"].isin(["dinov2", "medclip", "medsam", "sslsam"]),
               "field_error_mean_mm"] += 1.0
    control = check_claims(better).set_index(["claim", "task"]).loc["R"]
    assert set(control["verdict"]) == {"held"}, control["reason"].tolist()


@pytest.mark.parametrize(("comparisons", "expected"), [(1, 6), (2, 7), (3, 7), (4, 8), (10, 9)])
def test_min_pairs_is_where_holm_corrected_wilcoxon_can_first_succeed(comparisons, expected):
    assert min_pairs(comparisons) == expected
    for n, reachable in ((expected - 1, False), (expected, True)):
        # The most extreme data possible: every difference of one sign, no ties.
        smallest = stats.wilcoxon(np.arange(1.0, n + 1), np.zeros(n)).pvalue
        assert bool(comparisons * smallest < 0.05) is reachable, (n, smallest)
    assert MIN_PAIRS == 6


def test_claim_families_need_more_subjects_than_single_comparisons():
    # 8 subjects per task: enough for claims 1-4 (built to hold) ...
    assert verdicts_of(check_claims(table(8, MEANS, fgt=FGT)))[1] == "held"
    # ... 6: enough for one comparison (claims 2, 3), not for Holm over four (claim 1) or
    # two (claim 4), where even perfect data could not reach p < 0.05.
    claims = check_claims(table(6, MEANS, fgt=FGT))
    verdicts = verdicts_of(claims)
    assert [verdicts[k] for k in (1, 2, 3, 4)] == ["not testable", "held", "held",
                                                   "not testable"]
    by_claim = claims[claims["task"] == "modality"].set_index("claim")
    assert "4 Holm-corrected" in by_claim.loc[1, "reason"]
    assert by_claim.loc[1, "numbers"]["min_pairs"] == 8
    assert by_claim.loc[4, "numbers"]["min_pairs"] == 7


def test_claim_2_pooled_needs_the_cross_modality_task():
    claims = check_claims(table(8, MEANS, fgt=FGT, tasks=("longitudinal", "sequence")))
    pooled = claims[(claims["claim"] == 2) & (claims["task"] == "all")].iloc[0]
    assert pooled["verdict"] == "not testable" and "modality" in pooled["reason"]
    assert verdicts_of(claims, "sequence")[2] == "held"  # per task it is testable


def test_duplicate_rows_are_refused_not_silently_paired():
    results = table(8, MEANS)
    doubled = pd.concat([results, results[results["method"] == "sam"]], ignore_index=True)
    with pytest.raises(InputError, match="share a"):
        check_claims(doubled)


def lesion_table(subjects: int = 10, *, seeds: int = 3, lesion_penalty: float = 0.8,
                 seed: int = 0) -> pd.DataFrame:
    """The lesion task: each subject a lesion pair and a control pair; MIND and identity
    once, a random SAM architecture per seed; the lesion costs MIND ``lesion_penalty`` mm."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(subjects):
        subject = rng.normal(0, 1.0)  # shared by the subject's two pairs
        for condition in ("lesion", "control"):
            pair = f"lesion_{k:03d}_{condition}"
            extra = lesion_penalty if condition == "lesion" else 0.0
            common = dict(task="lesion", pair_id=pair, status="ok", dice_breast=0.9,
                          dice_fgt=0.5)
            rows.append(common | dict(method="identity", weights=None, seed=0,
                                      field_error_mean_mm=9 + subject))
            rows.append(common | dict(method="mind", weights=None, seed=0,
                                      field_error_mean_mm=2 + subject + extra
                                      + rng.normal(0, 0.05)))
            for s in range(seeds):
                rows.append(common | dict(method="sam", weights="random", seed=s,
                                          field_error_mean_mm=11 + subject + 0.3 * s))
    return pd.DataFrame(rows)


def test_subjects_not_pairs_are_the_unit_and_seeds_are_averaged():
    results = lesion_table()
    values = subject_values(results, "field_error_mean_mm")
    assert values.shape == (10, 3)  # 10 subjects, not 20 pairs; 3 arms, not 5 rows
    assert values.index.get_level_values("subject")[0] == "lesion_000"
    lesion_pairs = results[(results["method"] == "sam") &
                           results["pair_id"].str.endswith("_lesion")]
    np.testing.assert_allclose(values["sam (random)"].mean(),
                               lesion_pairs["field_error_mean_mm"].mean())
    tests = task_tests(results, "field_error_mean_mm")
    assert set(tests["arm"]) == {"identity", "sam (random)"} and set(tests["family"]) == {2}
    sam = tests.set_index("arm").loc["sam (random)"]
    assert sam["n"] == 10 and sam["significant"] and sam["difference"] > 8
    assert sam["ci_low"] < sam["difference"] < sam["ci_high"]
    assert 0 < sam["detectable"] < 1  # differences spread by ~0.05 mm


def test_lesion_effect_compares_each_subjects_two_pairs():
    effect = lesion_effect(lesion_table(lesion_penalty=0.8), "field_error_mean_mm")
    mind = effect.set_index("arm").loc["mind"]
    assert mind["n"] == 10 and abs(mind["difference"] - 0.8) < 0.1 and mind["significant"]
    none = lesion_effect(lesion_table(lesion_penalty=0.0), "field_error_mean_mm")
    assert not none.set_index("arm").loc["mind", "significant"]


def test_seed_spread_shows_each_seed():
    spread = seed_spread(lesion_table(), "field_error_mean_mm").set_index("arm")
    row = spread.loc["sam (random)"]
    assert row["seeds"] == 3 and row["seed_max"] - row["seed_min"] == pytest.approx(0.6)


def test_pooled_effect_counts_subjects_and_recovers_a_known_difference():
    results = pd.concat([lesion_table(), table(8, MEANS, tasks=("modality",))
                         .assign(field_error_mean_mm=lambda t: 10 - 8 * t["dice_breast"])],
                        ignore_index=True)
    pooled = pooled_effect(results, "field_error_mean_mm", "sam (random)", "mind")
    # lesion task: random SAM +9 mm (+0.3 s averaged over seeds, minus the lesion's +0.4
    # on MIND's mean of both pairs) ; only the lesion task has both arms
    assert pooled["subjects"] == 10 and pooled["observations"] == 40
    assert pooled["ci_low"] < 9.3 - 0.4 < pooled["ci_high"] and pooled["p"] < 1e-6


def test_detectable_effect_and_subjects_needed_agree_with_a_simulated_wilcoxon():
    from breastlib.evaluate.power import detectable_effect, subjects_needed

    assert detectable_effect(20) < detectable_effect(10) < detectable_effect(5)
    assert detectable_effect(10, comparisons=8) > detectable_effect(10)
    n = subjects_needed(1.0, 1.0, comparisons=4)
    rng = np.random.default_rng(0)
    hits = [stats.wilcoxon(rng.normal(1.0, 1.0, n)).pvalue < 0.05 / 4 for _ in range(400)]
    assert 0.72 <= np.mean(hits) <= 0.95, (n, np.mean(hits))
    assert subjects_needed(100.0, 1.0) == MIN_PAIRS  # never below what Wilcoxon can reach


def test_a_random_twin_counts_for_the_encoders_it_stands_for():
    """With random weights medsam and sslsam are sam's network, run once as 'sam': the
    claims say they ran without pretrained weights, not that they are missing."""
    results = table(10, {m: v for m, v in MEANS.items() if m not in ("medsam", "sslsam")},
                    weights="random", fgt=FGT)
    claims = check_claims(results)
    reason = claims[(claims["claim"] == 4)].iloc[0]["reason"]
    assert "sam, medsam, sslsam ran without pretrained weights" in reason
    assert "no results" not in reason


def test_pretraining_is_judged_against_every_seed_of_its_architecture():
    """Claim P: pretrained SAM against the random SAM network (which also stands for
    medsam and sslsam), seeds averaged per subject and each seed's mean as a bar."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(10):
        base = rng.normal(0, 0.3)
        cells = [("mind", None, 0, 2.0), ("identity", None, 0, 9.0)]
        cells += [("sam", "random", s, 6.0 + s) for s in range(3)]  # seed means 6, 7, 8
        cells += [("sam", "pretrained", 0, 3.0), ("medsam", "pretrained", 0, 6.5)]
        for method, weights, s, error in cells:
            rows.append({"task": "sequence", "pair_id": f"sequence_{k:03d}", "method": method,
                         "weights": weights, "seed": s, "status": "ok",
                         "field_error_mean_mm": error + base + rng.normal(0, 0.05),
                         "dice_breast": 0.9, "dice_fgt": 0.5})
    claims = check_claims(pd.DataFrame(rows)).set_index(["claim", "task"])
    verdict = claims.loc[("P", "sequence")]
    # medsam (6.5 mm) beats the seeds' average (7 mm) but not the best seed (6 mm)
    assert verdict["verdict"] == "not held" and "medsam (pretrained)" in verdict["reason"]
    assert "sam (pretrained)," not in verdict["reason"]
    only_sam = pd.DataFrame([r for r in rows if r["method"] != "medsam"])
    assert check_claims(only_sam).set_index(["claim", "task"]).loc[
        ("P", "sequence"), "verdict"] == "held"
    random_only = pd.DataFrame([r for r in rows if r["weights"] != "pretrained"])
    assert check_claims(random_only).set_index(["claim", "task"]).loc[
        ("P", "sequence"), "verdict"] == "not testable"
