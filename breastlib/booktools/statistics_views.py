"""The results chapter's statistics as tables to show: rounded, renamed, one call each.

Each function takes every task's study rows (:class:`~breastlib.booktools.chapters.
StudyTables` ``.rows``) and returns a :class:`pandas.DataFrame` ready to display; the
numbers come from :mod:`breastlib.evaluate.statistics`, :mod:`breastlib.evaluate.power`
and :mod:`breastlib.evaluate.claims`, whose docstrings define them.
"""

from __future__ import annotations

import pandas as pd

from breastlib.evaluate.claims import PRIMARY, check_claims, verdict_grid
from breastlib.evaluate.power import power_table
from breastlib.evaluate.statistics import (
    REFERENCE,
    lesion_effect,
    pooled_effect,
    seed_spread,
    subject_values,
    task_tests,
)


def power_view(rows: pd.DataFrame, *, effect: float = 0.5) -> pd.DataFrame:
    """Per task: subjects, comparisons, spread of the differences and what is detectable
    (mm of dense error, 80 % power), and the subjects ``effect`` mm would need."""
    table = power_table(task_tests(rows, PRIMARY), effect=effect).set_index("task")
    return table.rename(columns={
        "subjects": "subjects", "family": "comparisons",
        "sd_difference": "SD of differences (mm)", "detectable_d": "detectable (SD units)",
        "detectable": "detectable (mm)",
        "subjects_for_effect": f"subjects for {effect:g} mm"}).round(2)


def tests_view(rows: pd.DataFrame) -> pd.DataFrame:
    """Every method against MIND per task: means over subjects, the difference with its
    bootstrap interval, raw and Holm p, and the difference the test could detect."""
    tests = task_tests(rows, PRIMARY)
    if tests.empty:
        return tests
    tests["95 % CI (mm)"] = [f"{lo:+.2f} to {hi:+.2f}" for lo, hi in
                             zip(tests["ci_low"], tests["ci_high"], strict=True)]
    shown = tests.set_index(["task", "arm"])[
        ["n", "mean", "reference_mean", "difference", "95 % CI (mm)", "p", "p_holm",
         "significant", "detectable"]]
    return shown.rename(columns={
        "n": "subjects", "mean": "mean (mm)", "reference_mean": f"{REFERENCE} (mm)",
        "difference": f"minus {REFERENCE} (mm)", "p_holm": "p (Holm)",
        "detectable": "detectable (mm)"}).round(3)


def seeds_view(rows: pd.DataFrame) -> pd.DataFrame:
    """Each random-weight architecture per task: its mean over seeds and each seed's."""
    spread = seed_spread(rows, PRIMARY)
    if spread.empty:
        return spread
    return spread.set_index(["task", "arm"]).rename(columns={
        "mean": "mean (mm)", "seed_min": "best seed (mm)", "seed_max": "worst seed (mm)",
        "seed_sd": "SD over seeds (mm)", "per_seed": "per seed (mm)"}).round(3)


def lesion_view(rows: pd.DataFrame) -> pd.DataFrame:
    """The lesion task: each method's dense error on the lesion pair minus its matched
    control pair, over subjects, Holm-corrected across methods."""
    effect = lesion_effect(rows, PRIMARY)
    if effect.empty:
        return effect
    return effect.set_index("arm").rename(columns={
        "n": "subjects", "lesion": "with lesion (mm)", "control": "without (mm)",
        "difference": "difference (mm)", "p_holm": "p (Holm)"}).round(3)


def pooled_view(rows: pd.DataFrame) -> pd.DataFrame:
    """Each encoder arm against MIND over every task: the mixed model's estimate (subject
    as a random effect), its 95 % interval and p."""
    arms = subject_values(rows, PRIMARY).columns
    encoders = [a for a in arms if a.endswith(")")]
    records = [{"arm": a, **pooled_effect(rows, PRIMARY, a, REFERENCE)} for a in encoders]
    if not records:
        return pd.DataFrame()
    return pd.DataFrame(records).set_index("arm").rename(columns={
        "estimate": f"minus {REFERENCE} (mm)", "ci_low": "CI low", "ci_high": "CI high"}
    ).round(3)


def claims_view(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verdict of every claim in every task (a grid) and the reasons behind them."""
    claims = check_claims(rows)
    reasons = claims.set_index(["claim", "task"])[["verdict", "reason"]]
    return verdict_grid(claims), reasons


def cost_view(rows: pd.DataFrame) -> pd.DataFrame:
    """What the study cost on the machine that computed its rows: per method and weights,
    the rows, the mean and total seconds of a row (a fresh worker process: imports, the
    features, the registration and every metric) and its peak memory."""
    ok = rows[rows["status"] == "ok"].copy()
    if ok.empty or "seconds_total" not in ok:
        return pd.DataFrame()
    weights = ok["weights"].where(ok["weights"].astype(str).isin(["random", "pretrained"]))
    ok["arm"] = [m if not isinstance(w, str) else f"{m} ({w})"
                 for m, w in zip(ok["method"], weights, strict=True)]
    groups = ok.groupby("arm")
    table = pd.DataFrame({
        "rows": groups.size(),
        "seconds per row": groups["seconds_total"].mean(),
        "of which features (s)": groups["seconds_features"].mean(),
        "total (min)": groups["seconds_total"].sum() / 60,
        "peak memory (MiB)": groups["peak_rss_mib"].max(),
    }).sort_values("total (min)", ascending=False)
    table.loc["all"] = [table["rows"].sum(), ok["seconds_total"].mean(),
                        ok["seconds_features"].mean(), table["total (min)"].sum(),
                        table["peak memory (MiB)"].max()]
    return table.round(1)
