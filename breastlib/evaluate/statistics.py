"""Statistics on a study results table, at the level of subjects.

The unit is the subject (:func:`subject_id`): a pair, or in the lesion task the two pairs
(with and without a lesion) of one subject; rows of a random-weight encoder are averaged
over their seeds per pair. Tests are paired over subjects within a task: two-sided
Wilcoxon signed-rank tests, Holm-corrected within each task's pre-declared family
(:func:`task_tests`: every arm against MIND). Statements across tasks come from a mixed
model with the subject as a random effect (:func:`pooled_effect`), never from stacked
rows. With ``n`` subjects the smallest possible two-sided exact p-value is ``2 / 2**n``
(0.0625 for 5), so no verdict is given below
:data:`~breastlib.evaluate.power.MIN_PAIRS` subjects for one comparison, more for a Holm
family (:func:`~breastlib.evaluate.power.min_pairs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from breastlib.errors import InputError
from breastlib.evaluate.power import detectable_difference
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
    """Mean, median and bootstrap 95 % CI over subjects, per task, arm and metric.

    A subject's value is its pair's (the lesion task: its lesion pair's), averaged over
    seeds for a random-weight arm (:func:`subject_values`), so ``n`` counts subjects.
    """
    records = []
    for metric in metrics:
        values = subject_values(results, metric)
        for task, wide in values.groupby(level="task", sort=True):
            for arm in wide.columns:
                column = wide[arm].dropna()
                if column.empty:
                    continue
                low, high = bootstrap_ci(column.to_numpy())
                records.append({"task": task, "arm": arm, "metric": metric,
                                "n": int(column.size), "mean": column.mean(),
                                "median": column.median(), "ci_low": low, "ci_high": high})
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


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value (1.0 when all differences are 0)."""
    if len(x) == 0:
        return float("nan")
    if np.allclose(x, y):
        return 1.0
    return float(stats.wilcoxon(x, y, alternative="two-sided").pvalue)


# --- Subjects, arms and per-task tests (the study's unit of analysis is the subject) ---

#: The handcrafted reference every method is compared with, per task (the paper's MIND).
REFERENCE = "mind"
LESION_SUFFIXES = ("_lesion", "_control")


def subject_id(pair_id: str) -> str:
    """The subject a pair belongs to: the lesion task's ``lesion_003_lesion`` and
    ``lesion_003_control`` are one subject, ``lesion_003``; any other pair is its own."""
    for suffix in LESION_SUFFIXES:
        if pair_id.endswith(suffix):
            return pair_id[: -len(suffix)]
    return pair_id


def arm_label(method: str, weights: object) -> str:
    """What a row is an instance of: ``mind``, ``sam (pretrained)``, ``sam (random)``.

    Rows of one arm on one subject differ only by seed (random weights)."""
    if isinstance(weights, str) and weights not in ("", "nan", "None"):
        return f"{method} ({'random' if weights == 'random' else weights})"
    return str(method)


def with_subjects(results: pd.DataFrame) -> pd.DataFrame:
    """The ok rows with columns ``subject``, ``arm``, ``condition`` (``lesion`` or
    ``control`` in the lesion task, else ``""``) and ``seed`` (0 where missing); one row
    per task, pair, arm and seed is checked.

    Raises
    ------
    InputError
        Two rows for one (task, pair, arm, seed).
    """
    ok = results[results["status"] == "ok"].copy()
    ok["subject"] = [subject_id(str(p)) for p in ok["pair_id"]]
    weights = ok["weights"] if "weights" in ok else pd.Series(None, index=ok.index)
    ok["arm"] = [arm_label(m, w) for m, w in zip(ok["method"], weights, strict=True)]
    ok["condition"] = [next((s[1:] for s in LESION_SUFFIXES if str(p).endswith(s)), "")
                       for p in ok["pair_id"]]
    seed = ok["seed"] if "seed" in ok else pd.Series(0.0, index=ok.index)
    ok["seed"] = pd.to_numeric(seed, errors="coerce").fillna(0).astype(int)
    duplicated = ok.duplicated(["task", "pair_id", "arm", "seed"], keep=False)
    if duplicated.any():
        first = ok.loc[duplicated, ["task", "pair_id", "arm", "seed"]].iloc[0].tolist()
        raise InputError(f"{int(duplicated.sum())} rows share a (task, pair, arm, seed), "
                         f"e.g. {first}: filter the table first")
    return ok


def subject_values(results: pd.DataFrame, metric: str, *,
                   condition: str | None = "lesion") -> pd.DataFrame:
    """One value per task, subject and arm: the mean over seeds (random weights) of the
    subject's pair; in the lesion task the pair of ``condition`` (``"lesion"``, the task's
    own condition, or ``"control"``; ``None``: the mean of both).

    Returns
    -------
    pandas.DataFrame
        Index ``(task, subject)``, one column per arm.
    """
    ok = with_subjects(results)
    ok[metric] = pd.to_numeric(ok[metric], errors="coerce")
    if condition is not None:
        ok = ok[(ok["condition"] == "") | (ok["condition"] == condition)]
    return ok.pivot_table(index=["task", "subject"], columns="arm", values=metric,
                          aggfunc="mean")


def seed_spread(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """How much an arm with random weights depends on its seed, per task: the mean over
    subjects of each seed, and their minimum, maximum and standard deviation.

    Returns
    -------
    pandas.DataFrame
        One row per task and random-weight arm: ``seeds``, ``mean`` (over seeds of the
        per-seed means), ``seed_min``, ``seed_max``, ``seed_sd`` and ``per_seed`` (the
        means, in seed order).
    """
    ok = with_subjects(results)
    ok = ok[ok["arm"].str.endswith("(random)") & ((ok["condition"] == "") |
                                                 (ok["condition"] == "lesion"))]
    ok[metric] = pd.to_numeric(ok[metric], errors="coerce")
    records = []
    for (task, arm), group in ok.groupby(["task", "arm"], sort=True):
        per_seed = group.groupby("seed")[metric].mean()
        records.append({"task": task, "arm": arm, "seeds": len(per_seed),
                        "mean": float(per_seed.mean()), "seed_min": float(per_seed.min()),
                        "seed_max": float(per_seed.max()),
                        "seed_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1
                        else float("nan"),
                        "per_seed": [round(float(v), 4) for v in per_seed]})
    return pd.DataFrame(records)


def bootstrap_mean_ci(differences: np.ndarray, *, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of per-subject differences."""
    return bootstrap_ci(differences, seed=seed)


def task_tests(results: pd.DataFrame, metric: str, *, reference: str = REFERENCE,
               alpha: float = ALPHA, power: float = 0.8) -> pd.DataFrame:
    """Every arm against ``reference``, per task, over subjects: the pre-declared family.

    In each task every arm other than the reference is compared with it on the same
    subjects (two-sided Wilcoxon signed-rank test of the per-subject values of
    :func:`subject_values`; random-weight arms averaged over their seeds first), and the
    p-values of the task's family are Holm-corrected together. The lesion task compares
    its lesion pairs (:func:`lesion_effect` compares lesion with control).

    Returns
    -------
    pandas.DataFrame
        One row per task and arm: ``n`` subjects, ``family`` (its size), the means of arm
        and reference, ``difference`` (arm minus reference: for an error, negative is
        better), its bootstrap 95 % interval over subjects ``ci_low``, ``ci_high``, ``p``,
        ``p_holm``, ``significant`` and ``detectable`` (the smallest difference this
        family could detect with ``power``, from the spread of the differences:
        :func:`breastlib.evaluate.power.detectable_difference`).
    """
    values = subject_values(results, metric)
    records = []
    for task, wide in values.groupby(level="task", sort=True):
        if reference not in wide:
            continue
        arms = [a for a in wide.columns if a != reference and wide[a].notna().any()]
        family = []
        for arm in arms:
            both = wide[[arm, reference]].dropna()
            diff = (both[arm] - both[reference]).to_numpy()
            low, high = bootstrap_mean_ci(diff)
            family.append({
                "task": task, "arm": arm, "reference": reference, "n": len(diff),
                "mean": float(both[arm].mean()) if len(diff) else float("nan"),
                "reference_mean": float(both[reference].mean()) if len(diff)
                else float("nan"),
                "difference": float(diff.mean()) if len(diff) else float("nan"),
                "ci_low": low, "ci_high": high,
                "p": wilcoxon_p(both[arm].to_numpy(), both[reference].to_numpy()),
                "sd_difference": float(np.std(diff, ddof=1)) if len(diff) > 1
                else float("nan"),
            })
        adjusted = holm([row["p"] for row in family])
        for row, p_holm in zip(family, adjusted, strict=True):
            row |= {"family": len(family), "p_holm": float(p_holm),
                    "significant": bool(p_holm < alpha),
                    "detectable": detectable_difference(
                        row["n"], row["sd_difference"], comparisons=len(family),
                        alpha=alpha, power=power)}
            records.append(row)
    return pd.DataFrame(records)


def lesion_effect(results: pd.DataFrame, metric: str, *,
                  alpha: float = ALPHA) -> pd.DataFrame:
    """Does a lesion change how well each arm registers? Per arm, over the lesion task's
    subjects: the lesion pair's value minus the matched control pair's (same subject and
    motion), its bootstrap interval, Wilcoxon p and Holm across the arms (one family).

    Returns
    -------
    pandas.DataFrame
        One row per arm: ``n``, ``lesion``, ``control``, ``difference``, ``ci_low``,
        ``ci_high``, ``p``, ``p_holm``, ``significant``; empty without lesion-task rows.
    """
    lesion = subject_values(results, metric, condition="lesion")
    control = subject_values(results, metric, condition="control")
    if "lesion" not in lesion.index.get_level_values("task"):
        return pd.DataFrame()
    lesion, control = lesion.loc["lesion"], control.loc["lesion"]
    records = []
    for arm in lesion.columns:
        if arm not in control:
            continue
        both = pd.concat([lesion[arm], control[arm]], axis=1, keys=["l", "c"]).dropna()
        diff = (both["l"] - both["c"]).to_numpy()
        low, high = bootstrap_mean_ci(diff)
        records.append({"arm": arm, "n": len(diff), "lesion": float(both["l"].mean()),
                        "control": float(both["c"].mean()),
                        "difference": float(diff.mean()) if len(diff) else float("nan"),
                        "ci_low": low, "ci_high": high,
                        "p": wilcoxon_p(both["l"].to_numpy(), both["c"].to_numpy())})
    adjusted = holm([r["p"] for r in records])
    for row, p_holm in zip(records, adjusted, strict=True):
        row |= {"p_holm": float(p_holm), "significant": bool(p_holm < alpha)}
    return pd.DataFrame(records)


def pooled_effect(results: pd.DataFrame, metric: str, arm: str, reference: str) -> dict:
    """``arm`` against ``reference`` over every task, from a linear mixed model with the
    subject as a random effect (statsmodels ``MixedLM``): ``value ~ arm + task`` with a
    random intercept per subject; both pairs of a lesion-task subject enter as two
    observations of one subject, never as two subjects. Only subjects with rows of both
    arms enter; random-weight arms are averaged over seeds per pair first.

    Returns
    -------
    dict
        ``estimate`` (arm minus reference), ``ci_low``, ``ci_high`` (95 %), ``p``,
        ``subjects``, ``observations``; NaN estimates when either arm has no rows.
    """
    from breastlib.errors import require

    smf = require("statsmodels.formula.api", "study")
    ok = with_subjects(results)
    ok = ok[ok["arm"].isin([arm, reference])]
    ok[metric] = pd.to_numeric(ok[metric], errors="coerce")
    long = (ok.groupby(["task", "subject", "condition", "arm"])[metric].mean()
            .reset_index().dropna())
    long["unit"] = long["task"] + "/" + long["subject"]
    both = long.groupby("unit")["arm"].nunique() == 2  # subjects seen with both arms
    long = long[long["unit"].isin(both[both].index)]
    long["is_arm"] = (long["arm"] == arm).astype(float)
    empty = {"estimate": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
             "p": float("nan"), "subjects": int(long["unit"].nunique()),
             "observations": len(long)}
    if long["is_arm"].nunique() < 2:
        return empty
    formula = f"Q('{metric}') ~ is_arm" + (" + C(task)" if long["task"].nunique() > 1 else "")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny or exact data
        fit = smf.mixedlm(formula, long, groups=long["unit"]).fit(reml=True)
    low, high = fit.conf_int().loc["is_arm"]
    return {"estimate": float(fit.params["is_arm"]), "ci_low": float(low),
            "ci_high": float(high), "p": float(fit.pvalues["is_arm"]),
            "subjects": int(long["unit"].nunique()), "observations": len(long)}
