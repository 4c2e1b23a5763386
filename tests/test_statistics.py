"""Statistics and claim checks on synthetic results tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from breastlib.errors import InputError
from breastlib.evaluate.claims import check_claims
from breastlib.evaluate.statistics import (
    MIN_PAIRS,
    bootstrap_ci,
    holm,
    min_pairs,
    paired_tests,
    summarise,
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


def test_summary_and_paired_tests():
    # 16 comparisons per task are Holm-corrected together: 12 pairs let p reach 0.05.
    results = table(12, MEANS)
    summary = summarise(results, metrics=("dice_breast",))
    sam = summary[(summary["method"] == "sam") & (summary["task"] == "longitudinal")].iloc[0]
    assert sam["n"] == 12 and sam["ci_low"] < sam["mean"] < sam["ci_high"]
    tests = paired_tests(results, "dice_breast")
    vs_identity = tests[(tests["reference_is"] == "identity") & (tests["method"] == "sam")]
    assert (vs_identity["p_holm"] < 0.05).all() and (vs_identity["mean_difference"] > 0).all()
    assert set(tests.loc[tests["reference_is"] == "best", "reference"]) == {"sam"}


def test_claims_held_on_data_built_to_hold_them():
    verdicts = check_claims(table(8, MEANS, fgt=FGT)).set_index("claim")["verdict"]
    assert verdicts.to_dict() == {1: "held", 2: "held", 3: "held", 4: "held"}


def test_claims_not_held_when_data_contradicts_them():
    means = MEANS | {"medsam": 0.95}  # MedSAM beats SAM
    verdicts = check_claims(table(8, means, fgt={"sam": 0.7, "mind": 0.5})).set_index("claim")
    assert verdicts.loc[1, "verdict"] == "not held"
    assert verdicts.loc[3, "verdict"] == "not held"
    assert verdicts.loc[4, "verdict"] == "not held"


@pytest.mark.parametrize("n_pairs", [1, MIN_PAIRS // 2 - 1])
def test_too_few_pairs_is_not_testable(n_pairs):
    verdicts = check_claims(table(n_pairs, MEANS, fgt=FGT))
    assert set(verdicts["verdict"]) == {"not testable"}
    assert "0.0625" in verdicts.loc[0, "reason"]


def test_random_weights_are_not_testable():
    verdicts = check_claims(table(8, MEANS, weights="random", fgt=FGT))
    assert set(verdicts["verdict"]) == {"not testable"}
    assert "pretrained" in verdicts.loc[0, "reason"]


@pytest.mark.parametrize(("comparisons", "expected"), [(1, 6), (2, 7), (3, 7), (4, 8), (10, 9)])
def test_min_pairs_is_where_holm_corrected_wilcoxon_can_first_succeed(comparisons, expected):
    assert min_pairs(comparisons) == expected
    for n, reachable in ((expected - 1, False), (expected, True)):
        # The most extreme data possible: every difference of one sign, no ties.
        smallest = stats.wilcoxon(np.arange(1.0, n + 1), np.zeros(n)).pvalue
        assert bool(comparisons * smallest < 0.05) is reachable, (n, smallest)
    assert MIN_PAIRS == 6


def test_claim_families_need_more_pairs_than_single_comparisons():
    # 2 tasks x 4 pairs = 8 pooled cases: enough for claims 1-4 (built to hold) ...
    verdicts = check_claims(table(4, MEANS, fgt=FGT)).set_index("claim")
    assert set(verdicts["verdict"]) == {"held"}, verdicts["reason"].tolist()
    # ... 2 x 3 = 6: enough for one comparison (claims 2, 3), not for Holm over four
    # (claim 1) or two (claim 4), where even perfect data could not reach p < 0.05.
    verdicts = check_claims(table(3, MEANS, fgt=FGT)).set_index("claim")
    assert verdicts["verdict"].to_dict() == {1: "not testable", 2: "held", 3: "held",
                                             4: "not testable"}
    assert "4 Holm-corrected" in verdicts.loc[1, "reason"]
    assert verdicts.loc[1, "numbers"]["min_pairs"] == 8
    assert verdicts.loc[4, "numbers"]["min_pairs"] == 7


def test_claim_2_needs_the_cross_modality_task():
    verdicts = check_claims(table(8, MEANS, fgt=FGT, tasks=("longitudinal", "sequence")))
    claim_2 = verdicts.set_index("claim").loc[2]
    assert claim_2["verdict"] == "not testable" and "modality" in claim_2["reason"]


def test_duplicate_rows_are_refused_not_silently_paired():
    results = table(8, MEANS)
    doubled = pd.concat([results, results[results["method"] == "sam"]], ignore_index=True)
    with pytest.raises(InputError, match="relabel"):
        paired_tests(doubled, "dice_breast")
    with pytest.raises(InputError, match="relabel"):
        check_claims(doubled)
