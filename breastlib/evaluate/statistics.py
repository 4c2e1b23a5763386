"""Statistics on a study results table, and the paper's four claims checked on it.

All tests are paired over ``pair_id`` within a task: two-sided Wilcoxon signed-rank tests,
Holm-corrected within each family of comparisons. With ``n`` pairs the smallest possible
two-sided exact p-value is ``2 / 2**n`` (0.0625 for 5 pairs), so no verdict is given below
:data:`MIN_PAIRS` pairs for one comparison, more for a Holm family (:func:`min_pairs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from breastlib.errors import InputError
from breastlib.landmark_groups import GROUP_TRE_COLUMNS

ALPHA = 0.05
FOUNDATION = ("sam", "medsam", "sslsam", "dinov2", "medclip")
TRADITIONAL = ("ants", "elastix")
HIGHER_IS_BETTER = {"field_error_mean_mm": False, "field_error_p95_mm": False,
                    "field_error_lesion_mm": False,
                    "dice_breast": True, "dice_fgt": True, "dice_lesion": True,
                    "hd95_breast_mm": False, "hd95_fgt_mm": False,
                    "tre_mean_after_mm": False, "tre_median_after_mm": False,
                    "tre_p90_after_mm": False, **dict.fromkeys(GROUP_TRE_COLUMNS, False),
                    "jac_nonpos_pct": False, "sdlogj": False}


def min_pairs(comparisons: int = 1, *, alpha: float = ALPHA) -> int:
    """Fewest pairs with which ``comparisons`` Holm-corrected Wilcoxon tests can succeed.

    The smallest two-sided exact Wilcoxon signed-rank p-value with ``n`` pairs is
    ``2 / 2**n`` (all differences of one sign); Holm's first step compares the smallest
    p-value with ``alpha / comparisons``. So a verdict needs the smallest ``n`` with
    ``comparisons * 2 / 2**n < alpha``: 6 pairs for one test (p >= 0.031), 7 for two or
    three, 8 for four to six. Below it no data could give a significant result.

    Parameters
    ----------
    comparisons
        Size of the Holm family (>= 1).
    alpha
        Significance level, in (0, 1).

    Returns
    -------
    int
        The minimum number of paired cases.
    """
    if comparisons < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need comparisons >= 1 and 0 < alpha < 1, got {comparisons}, {alpha}")
    n = 1
    while comparisons * 2.0 / 2.0**n >= alpha:
        n += 1
    return n


MIN_PAIRS = min_pairs(1)  # 6: with 5 pairs the smallest two-sided p is 0.0625


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows with ``status == "ok"``, checked to hold one row per task, pair and method.

    Raises
    ------
    InputError
        When a (task, pair_id, method) appears twice, e.g. tables of random and
        pretrained weights concatenated: relabel ``method`` (``sam-random``) or filter
        first, since a paired test must not pick one of them silently.
    """
    ok = results[results["status"] == "ok"]
    duplicated = ok.duplicated(["task", "pair_id", "method"], keep=False)
    if duplicated.any():
        first = ok.loc[duplicated, ["task", "pair_id", "method"]].iloc[0].tolist()
        raise InputError(
            f"{int(duplicated.sum())} rows share a (task, pair_id, method), e.g. {first}: "
            "relabel the method (e.g. by weights) or filter the table first"
        )
    return ok


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (NaN when empty)."""
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(resamples, data.size), replace=True).mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def summarise(results: pd.DataFrame, metrics: Sequence[str] = ("dice_breast", "dice_fgt",
              "tre_mean_after_mm", "hd95_breast_mm", "jac_nonpos_pct")) -> pd.DataFrame:
    """Mean, median and bootstrap 95% CI per task, method and metric (ok rows only)."""
    ok = ok_rows(results)
    records = []
    for (task, method), group in ok.groupby(["task", "method"], sort=True):
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").dropna()
            low, high = bootstrap_ci(values.to_numpy())
            records.append({"task": task, "method": method, "metric": metric,
                            "n": int(values.size), "mean": values.mean(),
                            "median": values.median(), "ci_low": low, "ci_high": high})
    return pd.DataFrame(records)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN kept as NaN)."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    running = 0.0
    m = len(order)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def _paired(results: pd.DataFrame, task: str, metric: str, a: str, b: str) -> pd.DataFrame:
    ok = ok_rows(results)
    ok = ok[ok["task"] == task]
    wide = ok.pivot_table(index="pair_id", columns="method", values=metric, aggfunc="first")
    if a not in wide or b not in wide:
        return pd.DataFrame(columns=[a, b])
    return wide[[a, b]].apply(pd.to_numeric, errors="coerce").dropna()


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value (1.0 when all differences are 0)."""
    if len(x) == 0:
        return float("nan")
    if np.allclose(x, y):
        return 1.0
    return float(stats.wilcoxon(x, y, alternative="two-sided").pvalue)


def paired_tests(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each method against the task's best method and against ``identity``, Holm-corrected.

    Returns one row per task, method and reference with the mean difference (method minus
    reference), ``n`` pairs, the raw and the Holm-adjusted p-value.
    """
    higher = HIGHER_IS_BETTER.get(metric, True)
    records = []
    ok = ok_rows(results)
    for task, group in ok.groupby("task", sort=True):
        means = group.groupby("method")[metric].apply(lambda s: pd.to_numeric(s).mean())
        best = means.idxmax() if higher else means.idxmin()
        family = []
        for reference in (best, "identity"):
            for method in sorted(means.index):
                if method == reference or reference not in means.index:
                    continue
                pairs = _paired(results, task, metric, method, reference)
                family.append({
                    "task": task, "metric": metric, "method": method, "reference": reference,
                    "reference_is": "best" if reference == best else "identity",
                    "n": len(pairs),
                    "mean_difference": float((pairs[method] - pairs[reference]).mean())
                    if len(pairs) else float("nan"),
                    "p": wilcoxon_p(pairs[method].to_numpy(), pairs[reference].to_numpy()),
                })
        adjusted = holm([row["p"] for row in family])
        for row, p_holm in zip(family, adjusted, strict=True):
            records.append(row | {"p_holm": p_holm})
    return pd.DataFrame(records)
