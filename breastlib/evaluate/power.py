"""How many subjects a comparison needs, and what a study of a given size can detect.

The study's tests are two-sided Wilcoxon signed-rank tests of per-subject differences,
Holm-corrected within a task's family of ``m`` comparisons. Power is computed for the
paired t-test (statsmodels ``TTestPower``) at the Bonferroni level ``alpha / m`` (Holm's
first and strictest step, so the figures are conservative), with the sample size scaled
by the Wilcoxon test's asymptotic relative efficiency against the t-test for normal
differences, ``3 / pi`` (about 0.955). The effect is in the metric's own units: a
standardised effect ``d`` times the standard deviation of the per-subject differences.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def min_pairs(comparisons: int = 1, *, alpha: float = 0.05) -> int:
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


#: Asymptotic relative efficiency of the Wilcoxon signed-rank test to the t-test under
#: normal differences: n subjects tested by Wilcoxon are worth about 0.955 n by t-test.
WILCOXON_ARE = 3.0 / math.pi
POWER = 0.8


def _power_solver():
    from breastlib.errors import require

    return require("statsmodels.stats.power", "study").TTestPower()


def detectable_effect(n: int, *, comparisons: int = 1, alpha: float = 0.05,
                      power: float = POWER) -> float:
    """The smallest standardised paired effect ``d = mean / sd`` (of the per-subject
    differences) that ``n`` subjects detect with ``power`` in a family of ``comparisons``
    (NaN below 3 subjects)."""
    if n < 3:
        return float("nan")
    solver = _power_solver()
    return float(solver.solve_power(effect_size=None, nobs=n * WILCOXON_ARE,
                                    alpha=alpha / max(1, comparisons), power=power,
                                    alternative="two-sided"))


def detectable_difference(n: int, sd_difference: float, *, comparisons: int = 1,
                          alpha: float = 0.05, power: float = POWER) -> float:
    """:func:`detectable_effect` in the metric's units (times ``sd_difference``)."""
    if not np.isfinite(sd_difference):
        return float("nan")
    return detectable_effect(n, comparisons=comparisons, alpha=alpha,
                             power=power) * float(sd_difference)


def subjects_needed(difference: float, sd_difference: float, *, comparisons: int = 1,
                    alpha: float = 0.05, power: float = POWER) -> int:
    """Subjects needed to detect a mean paired ``difference`` (metric units) when the
    per-subject differences spread by ``sd_difference``; at least the
    :func:`min_pairs` of the family, below which no
    Wilcoxon test of ``comparisons`` Holm-corrected ones can be significant."""
    if difference == 0 or not np.isfinite(sd_difference) or sd_difference <= 0:
        return min_pairs(comparisons, alpha=alpha)
    solver = _power_solver()
    n = min_pairs(comparisons, alpha=alpha)
    while n < 100_000 and solver.power(
            effect_size=abs(difference) / sd_difference, nobs=n * WILCOXON_ARE,
            alpha=alpha / max(1, comparisons), alternative="two-sided") < power:
        n += 1
    return n


def power_table(tests: pd.DataFrame, *, effect: float = 0.5, alpha: float = 0.05,
                power: float = POWER) -> pd.DataFrame:
    """Per task, what the study can detect: from the rows of
    :func:`breastlib.evaluate.statistics.task_tests`.

    Returns
    -------
    pandas.DataFrame
        One row per task: ``subjects``, ``family`` (comparisons Holm-corrected together),
        ``sd_difference`` (median over the family of the per-subject differences'
        standard deviation, metric units), ``detectable_d`` (standardised),
        ``detectable`` (metric units, at that median spread) and ``subjects_for_effect``
        (subjects needed to detect ``effect`` metric units at that spread).
    """
    records = []
    for task, group in tests.groupby("task", sort=True):
        n = int(group["n"].min())
        family = int(group["family"].iloc[0])
        sd = float(group["sd_difference"].median())
        d = detectable_effect(n, comparisons=family, alpha=alpha, power=power)
        records.append({"task": task, "subjects": n, "family": family,
                        "sd_difference": sd, "detectable_d": d,
                        "detectable": d * sd if np.isfinite(sd) else float("nan"),
                        "subjects_for_effect": subjects_needed(
                            effect, sd, comparisons=family, alpha=alpha, power=power)})
    return pd.DataFrame(records)
