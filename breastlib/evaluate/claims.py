"""The four published claims as testable statements, checked per task over subjects.

The claims and the study they come from are described in the book's conventions appendix
(book/conventions.md, "The published study"). The paper states them per task (claim 2's
"most of all across modalities" compares tasks), so each claim gets one verdict per task,
and claim 2 a pooled one besides, from a mixed model with the subject as a random effect
(:func:`~breastlib.evaluate.statistics.pooled_effect`), never from stacked rows.

Every comparison is paired over the subjects of one task (the lesion task: its lesion
pairs), on per-subject values (:func:`~breastlib.evaluate.statistics.subject_values`),
two-sided Wilcoxon, Holm-corrected within the claim's family in that task. A verdict is
``held``, ``not held`` or ``not testable`` with the reason and the numbers behind it. A
claim about pretrained encoders is not testable on rows computed with random weights, and
no claim is testable on fewer subjects than its family needs to reach significance
(:func:`~breastlib.evaluate.power.min_pairs`: 6 for one comparison, 7 for two, 8 for
the four of claim 1).

Claim ``R`` is this study's control, not the paper's: if frozen encoders with random weights
drove registration as well as MIND, a benchmark of pretrained features against MIND could not
tell what pretraining adds. It is testable on any build. Claim ``P`` compares each pretrained
encoder with the distribution of its own architecture over random seeds: what the weights,
not the network, contribute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breastlib.encoders import ENCODERS
from breastlib.evaluate.power import min_pairs
from breastlib.evaluate.statistics import (
    ALPHA,
    FOUNDATION,
    REFERENCE,
    TRADITIONAL,
    holm,
    pooled_effect,
    seed_spread,
    subject_values,
    task_tests,
    wilcoxon_p,
)

CLAIMS = {
    1: "SAM is the best of the five foundation encoders (whole-breast Dice).",
    2: "Foundation-model registration beats traditional methods on whole-breast alignment, "
       "most of all across modalities.",
    3: "Foundation-model registration is weak on fibroglandular tissue (FGT Dice below the "
       "best handcrafted or traditional method).",
    4: "Extra medical or breast pretraining (MedSAM, SSLSAM) does not improve on SAM.",
    "R": "Control (this study's): with random weights no encoder architecture registers as "
         "well as MIND (dense error inside the breast).",
    "P": "Pretraining (this study's): every pretrained encoder registers better than its own "
         "architecture with random weights, on every seed (dense error inside the breast).",
}
PRIMARY = "field_error_mean_mm"


def pretrained(method: str) -> str:
    """The arm of ``method`` with pretrained weights (``sam (pretrained)``)."""
    return f"{method} (pretrained)"


def _verdict(claim: int | str, task: str, verdict: str, reason: str,
             **numbers: object) -> dict[str, object]:
    return {"claim": claim, "task": task, "statement": CLAIMS[claim], "verdict": verdict,
            "reason": reason, "numbers": numbers}


def _compare(values: pd.DataFrame, task: str, a: str, b: str) -> dict[str, float]:
    """Arms ``a`` and ``b`` on the subjects of ``task`` that have both."""
    wide = values.loc[task] if task in values.index.get_level_values("task") else None
    if wide is None or a not in wide or b not in wide:
        return {"n": 0, "mean_a": np.nan, "mean_b": np.nan, "p": np.nan}
    both = wide[[a, b]].dropna()
    return {"n": len(both), "mean_a": float(both[a].mean()), "mean_b": float(both[b].mean()),
            "p": wilcoxon_p(both[a].to_numpy(), both[b].to_numpy())}


def _missing_pretrained(values: pd.DataFrame, task: str,
                        methods: tuple[str, ...]) -> list[str]:
    present = values.loc[task].dropna(axis=1, how="all").columns if task in (
        values.index.get_level_values("task")) else []
    return [m for m in methods if pretrained(m) not in present]


def _blocked(claim: int, task: str, values: pd.DataFrame, methods: tuple[str, ...],
             results: pd.DataFrame) -> dict[str, object] | None:
    lacking = _missing_pretrained(values, task, methods)
    if not lacking:
        return None
    ran = set(results.loc[(results["status"] == "ok") & (results["task"] == task), "method"])
    # With random weights medsam and sslsam are sam's network, run once under one name.
    ran |= {m for m in FOUNDATION for r in ran if r in ENCODERS and m in ENCODERS
            and ENCODERS[m].twin == ENCODERS[r].twin}
    random_only = [m for m in lacking if m in ran]
    missing = [m for m in lacking if m not in ran]
    reasons = []
    if random_only:
        reasons.append(f"{', '.join(random_only)} ran without pretrained weights: the claim "
                       "is about pretrained encoders")
    if missing:
        reasons.append(f"no results for {', '.join(missing)}")
    return _verdict(claim, task, "not testable", "; ".join(reasons))


def _too_few(claim: int | str, task: str,
             comparisons: dict[str, dict]) -> dict[str, object] | None:
    """``not testable`` when the fewest paired subjects cannot reach significance."""
    n = min((c["n"] for c in comparisons.values()), default=0)
    need = min_pairs(max(1, len(comparisons)))
    if n < need:
        tests = f"{len(comparisons)} Holm-corrected two-sided Wilcoxon tests need" if len(
            comparisons) > 1 else "a two-sided Wilcoxon test needs"
        return _verdict(claim, task, "not testable",
                        f"only {n} subjects; {tests} at least {need} to reach p < "
                        f"{ALPHA} (with 5 subjects the smallest p is 0.0625)",
                        min_pairs=need, **comparisons)
    return None


def check_claim_1(results: pd.DataFrame, task: str, dice: pd.DataFrame) -> dict[str, object]:
    if (blocked := _blocked(1, task, dice, FOUNDATION, results)) is not None:
        return blocked
    comparisons = {m: _compare(dice, task, pretrained("sam"), pretrained(m))
                   for m in FOUNDATION if m != "sam"}
    if (short := _too_few(1, task, comparisons)) is not None:
        return short
    adjusted = holm([c["p"] for c in comparisons.values()])
    better = all(c["mean_a"] > c["mean_b"] for c in comparisons.values())
    held = better and bool(np.all(adjusted < ALPHA))
    return _verdict(1, task, "held" if held else "not held",
                    "SAM's Dice is higher than every other encoder's, significantly after "
                    "Holm" if held else "SAM is not significantly better than every other "
                    "encoder", **comparisons, p_holm=adjusted.tolist())


def _best(values: pd.DataFrame, task: str, arms: tuple[str, ...], *, higher: bool) -> str | None:
    wide = values.loc[task]
    means = {a: wide[a].mean() for a in arms if a in wide and wide[a].notna().any()}
    if not means:
        return None
    return (max if higher else min)(means, key=means.get)


def check_claim_2(results: pd.DataFrame, task: str, dice: pd.DataFrame) -> dict[str, object]:
    if (blocked := _blocked(2, task, dice, ("sam",), results)) is not None:
        return blocked
    best = _best(dice, task, TRADITIONAL, higher=True)
    if best is None:
        return _verdict(2, task, "not testable", "no traditional method (ANTs, elastix) ran")
    comparison = _compare(dice, task, pretrained("sam"), best)
    if (short := _too_few(2, task, {best: comparison})) is not None:
        return short
    held = comparison["mean_a"] > comparison["mean_b"] and comparison["p"] < ALPHA
    return _verdict(2, task, "held" if held else "not held",
                    f"SAM vs the better traditional method here ({best}): Dice "
                    f"{comparison['mean_a']:.3f} vs {comparison['mean_b']:.3f}, "
                    f"p = {comparison['p']:.3g}", **{best: comparison})


def check_claim_2_pooled(results: pd.DataFrame, dice: pd.DataFrame,
                         per_task: list[dict[str, object]]) -> dict[str, object]:
    """Over every task: SAM against the better traditional method (mixed model, subject
    as random effect), and whether SAM's margin is largest across modalities."""
    tested = [v for v in per_task if v["verdict"] != "not testable"]
    if not tested or "modality" not in {v["task"] for v in tested}:
        reason = ("no task could be tested" if not tested else
                  "the cross-modality task ('modality') could not be tested: the claim is "
                  "about its margin")
        return _verdict(2, "all", "not testable", reason)
    ok = results[results["status"] == "ok"]
    means = {m: pd.to_numeric(ok.loc[ok["method"] == m, "dice_breast"]).mean()
             for m in TRADITIONAL}
    best = max(means, key=lambda m: -np.inf if np.isnan(means[m]) else means[m])
    pooled = pooled_effect(results, "dice_breast", pretrained("sam"), best)
    margins = {}
    for verdict in tested:
        numbers = next(iter(v for k, v in verdict["numbers"].items() if isinstance(v, dict)))
        margins[str(verdict["task"])] = round(numbers["mean_a"] - numbers["mean_b"], 4)
    largest = max(margins, key=margins.get)
    held = pooled["estimate"] > 0 and pooled["p"] < ALPHA and largest == "modality"
    return _verdict(2, "all", "held" if held else "not held",
                    f"mixed model, SAM minus {best}: {pooled['estimate']:+.3f} Dice "
                    f"(95 % CI {pooled['ci_low']:+.3f} to {pooled['ci_high']:+.3f}, p = "
                    f"{pooled['p']:.3g}); largest margin in task '{largest}'",
                    pooled=pooled, margin_by_task=margins)


def check_claim_3(results: pd.DataFrame, task: str, fgt: pd.DataFrame) -> dict[str, object]:
    if (blocked := _blocked(3, task, fgt, ("sam",), results)) is not None:
        return blocked
    best = _best(fgt, task, (REFERENCE, *TRADITIONAL), higher=True)
    if best is None:
        return _verdict(3, task, "not testable", "no handcrafted or traditional method ran")
    comparison = _compare(fgt, task, pretrained("sam"), best)
    if (short := _too_few(3, task, {best: comparison})) is not None:
        return short
    held = comparison["mean_a"] < comparison["mean_b"] and comparison["p"] < ALPHA
    return _verdict(3, task, "held" if held else "not held",
                    f"FGT Dice of SAM vs the best classical method ({best}): "
                    f"{comparison['mean_a']:.3f} vs {comparison['mean_b']:.3f}",
                    **{best: comparison})


def check_claim_4(results: pd.DataFrame, task: str, dice: pd.DataFrame) -> dict[str, object]:
    needed = ("sam", "medsam", "sslsam")
    if (blocked := _blocked(4, task, dice, needed, results)) is not None:
        return blocked
    comparisons = {m: _compare(dice, task, pretrained(m), pretrained("sam"))
                   for m in ("medsam", "sslsam")}
    if (short := _too_few(4, task, comparisons)) is not None:
        return short
    adjusted = holm([c["p"] for c in comparisons.values()])
    improves = [m for (m, c), p in zip(comparisons.items(), adjusted, strict=True)
                if c["mean_a"] > c["mean_b"] and p < ALPHA]
    return _verdict(4, task, "not held" if improves else "held",
                    f"significantly better than SAM: {', '.join(improves) or 'none'}",
                    **comparisons, p_holm=adjusted.tolist())


def check_control(results: pd.DataFrame, task: str, tests: pd.DataFrame) -> dict[str, object]:
    """Claim R in one task: every random-weight arm's dense error above MIND's."""
    rows = tests[(tests["task"] == task) & tests["arm"].str.endswith("(random)")]
    if rows.empty:
        return _verdict("R", task, "not testable",
                        "no encoder ran with random weights, or MIND did not run")
    comparisons = {r.arm: {"n": int(r.n), "mean_a": r.mean, "mean_b": r.reference_mean,
                           "p": r.p} for r in rows.itertuples()}
    family = int(rows["family"].iloc[0])
    need = min_pairs(family)
    n = int(rows["n"].min())
    if n < need:
        return _verdict("R", task, "not testable",
                        f"only {n} subjects; the task's family of {family} Holm-corrected "
                        f"Wilcoxon tests needs at least {need}", min_pairs=need, **comparisons)
    worse = rows[(rows["difference"] > 0) & rows["significant"]]
    held = len(worse) == len(rows)
    not_worse = sorted(set(rows["arm"]) - set(worse["arm"]))
    return _verdict("R", task, "held" if held else "not held",
                    f"every random architecture's dense error is above MIND's "
                    f"({rows['mean'].min():.2f}-{rows['mean'].max():.2f} mm vs "
                    f"{rows['reference_mean'].iloc[0]:.2f} mm), Holm p <= "
                    f"{rows['p_holm'].max():.3g}" if held else
                    f"not significantly worse than MIND: {', '.join(not_worse)}",
                    **comparisons, p_holm=rows["p_holm"].tolist())


def check_pretraining(results: pd.DataFrame, task: str,
                      errors: pd.DataFrame) -> dict[str, object]:
    """Claim P in one task: each pretrained encoder against its random-weight architecture
    (the arm that ran its network, seeds averaged per subject), Holm over the encoders; it
    holds only if each is significantly better and its mean beats every seed's mean."""
    if task not in errors.index.get_level_values("task"):
        return _verdict("P", task, "not testable", "no dense error in these rows")
    wide = errors.loc[task].dropna(axis=1, how="all")
    random_arms = {ENCODERS[a.split(" ")[0]].twin: a for a in wide.columns
                   if a.endswith("(random)") and a.split(" ")[0] in ENCODERS}
    pairs = {a: random_arms[ENCODERS[a.split(" ")[0]].twin] for a in wide.columns
             if a.endswith("(pretrained)") and a.split(" ")[0] in ENCODERS
             and ENCODERS[a.split(" ")[0]].twin in random_arms}
    if not pairs:
        return _verdict("P", task, "not testable",
                        "no encoder ran both pretrained and with random weights")
    comparisons = {a: _compare(errors, task, a, r) for a, r in pairs.items()}
    if (short := _too_few("P", task, comparisons)) is not None:
        return short
    spread = seed_spread(results[results["task"] == task], PRIMARY).set_index("arm")
    adjusted = holm([c["p"] for c in comparisons.values()])
    failing = [a for (a, c), p_holm in zip(comparisons.items(), adjusted, strict=True)
               if not (c["mean_a"] < c["mean_b"] and p_holm < ALPHA
                       and c["mean_a"] < spread.loc[pairs[a], "seed_min"])]
    return _verdict("P", task, "not held" if failing else "held",
                    f"not better than their random architecture on every seed: "
                    f"{', '.join(failing)}" if failing else
                    "every pretrained encoder beats its random architecture, on every seed",
                    **comparisons, p_holm=adjusted.tolist())


def check_claims(results: pd.DataFrame) -> pd.DataFrame:
    """Every claim in every task of ``results`` (claim 2 also pooled, task ``all``).

    Returns
    -------
    pandas.DataFrame
        Columns ``claim, task, statement, verdict, reason, numbers``; claims 1-4, then
        this study's ``R`` and ``P``, tasks in alphabetical order within a claim.
    """
    dice = subject_values(results, "dice_breast")
    fgt = subject_values(results, "dice_fgt")
    tasks = sorted(dice.index.get_level_values("task").unique())
    tests = task_tests(results, PRIMARY) if PRIMARY in results else pd.DataFrame(
        columns=["task", "arm"])
    rows: list[dict[str, object]] = []
    rows += [check_claim_1(results, t, dice) for t in tasks]
    claim_2 = [check_claim_2(results, t, dice) for t in tasks]
    rows += [*claim_2, check_claim_2_pooled(results, dice, claim_2)]
    rows += [check_claim_3(results, t, fgt) for t in tasks]
    rows += [check_claim_4(results, t, dice) for t in tasks]
    rows += [check_control(results, t, tests) for t in tasks]
    errors = subject_values(results, PRIMARY) if PRIMARY in results else pd.DataFrame(
        index=pd.MultiIndex.from_tuples([], names=["task", "subject"]))
    rows += [check_pretraining(results, t, errors) for t in tasks]
    return pd.DataFrame(rows)


def verdict_grid(claims: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as a claim x task table (for the results chapter)."""
    grid = claims.pivot_table(index="claim", columns="task", values="verdict",
                              aggfunc="first", sort=False)
    return grid.fillna("")
