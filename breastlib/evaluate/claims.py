"""The four published claims as testable statements.

The claims and the study they come from are described in the book's conventions appendix
(book/conventions.md, "The published study").

Each check returns ``held``, ``not held`` or ``not testable`` with the numbers behind the
verdict. A claim about pretrained encoders is not testable on rows computed with random
weights, and no claim is testable on fewer pairs than its comparisons need to reach
significance after Holm correction (:func:`~breastlib.evaluate.statistics.min_pairs`: 6 for one
comparison, 7 for two, 8 for the four of claim 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breastlib.evaluate.statistics import (
    ALPHA,
    FOUNDATION,
    TRADITIONAL,
    holm,
    min_pairs,
    ok_rows,
    wilcoxon_p,
)

CLAIMS = {
    1: "SAM is the best of the five foundation encoders (whole-breast Dice).",
    2: "Foundation-model registration beats traditional methods on whole-breast alignment, "
       "most of all across modalities.",
    3: "Foundation-model registration is weak on fibroglandular tissue (FGT Dice below the "
       "best handcrafted or traditional method).",
    4: "Extra medical or breast pretraining (MedSAM, SSLSAM) does not improve on SAM.",
}


def _pooled(results: pd.DataFrame, a: str, b: str, metric: str) -> dict[str, float]:
    """Paired comparison of methods ``a`` and ``b`` over all (task, pair) both finished."""
    ok = ok_rows(results).copy()
    ok["cell"] = ok["task"].astype(str) + "/" + ok["pair_id"].astype(str)
    wide = ok.pivot_table(index="cell", columns="method", values=metric, aggfunc="first")
    if a not in wide or b not in wide:
        return {"n": 0, "mean_a": np.nan, "mean_b": np.nan, "p": np.nan}
    pairs = wide[[a, b]].apply(pd.to_numeric, errors="coerce").dropna()
    return {"n": len(pairs), "mean_a": float(pairs[a].mean()), "mean_b": float(pairs[b].mean()),
            "p": wilcoxon_p(pairs[a].to_numpy(), pairs[b].to_numpy())}


def _pretrained(results: pd.DataFrame, methods: tuple[str, ...]) -> list[str]:
    """Methods among ``methods`` lacking rows computed with pretrained weights."""
    lacking = []
    for method in methods:
        rows = results[(results["method"] == method) & (results["status"] == "ok")]
        if rows.empty or not (rows["weights"] == "pretrained").all():
            lacking.append(method)
    return lacking


def _verdict(claim: int, verdict: str, reason: str, **numbers: object) -> dict[str, object]:
    return {"claim": claim, "statement": CLAIMS[claim], "verdict": verdict,
            "reason": reason, "numbers": numbers}


def _untestable(claim: int, results: pd.DataFrame, needed: tuple[str, ...],
                pretrained: tuple[str, ...]) -> dict[str, object] | None:
    present = set(ok_rows(results)["method"])
    missing = [m for m in needed if m not in present]
    if missing:
        return _verdict(claim, "not testable", f"no results for {', '.join(missing)}")
    lacking = _pretrained(results, pretrained)
    if lacking:
        return _verdict(claim, "not testable",
                        f"{', '.join(lacking)} ran without pretrained weights: the claim is "
                        "about pretrained encoders")
    return None


def _too_few(claim: int, comparisons: dict[str, dict]) -> dict[str, object] | None:
    """``not testable`` when the fewest paired cases cannot reach significance."""
    n = min((c["n"] for c in comparisons.values()), default=0)
    need = min_pairs(max(1, len(comparisons)))
    if n < need:
        tests = f"{len(comparisons)} Holm-corrected two-sided Wilcoxon tests need" if len(
            comparisons) > 1 else "a two-sided Wilcoxon test needs"
        return _verdict(claim, "not testable",
                        f"only {n} paired cases; {tests} at least {need} to reach p < "
                        f"{ALPHA} (with 5 pairs the smallest p is 0.0625)",
                        min_pairs=need, **comparisons)
    return None


def check_claim_1(results: pd.DataFrame) -> dict[str, object]:
    blocked = _untestable(1, results, FOUNDATION, FOUNDATION)
    if blocked:
        return blocked
    others = [m for m in FOUNDATION if m != "sam"]
    comparisons = {m: _pooled(results, "sam", m, "dice_breast") for m in others}
    if (short := _too_few(1, comparisons)) is not None:
        return short
    adjusted = holm([c["p"] for c in comparisons.values()])
    better = all(c["mean_a"] > c["mean_b"] for c in comparisons.values())
    significant = bool(np.all(adjusted < ALPHA))
    verdict = "held" if better and significant else "not held"
    reason = ("SAM's Dice is higher than every other encoder's, significantly after Holm"
              if verdict == "held" else
              "SAM is not significantly better than every other encoder")
    return _verdict(1, verdict, reason, **comparisons, p_holm=adjusted.tolist())


def check_claim_2(results: pd.DataFrame) -> dict[str, object]:
    blocked = _untestable(2, results, ("sam", *TRADITIONAL), ("sam",))
    if blocked:
        return blocked
    ok = ok_rows(results)
    if "modality" not in set(ok.loc[ok["method"] == "sam", "task"]):
        return _verdict(2, "not testable", "no results of the cross-modality task "
                        "('modality'): the claim is about its margin")
    means = ok.groupby("method")["dice_breast"].mean()
    best_traditional = max(TRADITIONAL, key=lambda m: means.get(m, -np.inf))
    pooled = _pooled(results, "sam", best_traditional, "dice_breast")
    if (short := _too_few(2, {best_traditional: pooled})) is not None:
        return short
    by_task = ok.pivot_table(index="task", columns="method", values="dice_breast")
    margin = (by_task["sam"] - by_task[best_traditional]).dropna()
    largest = margin.idxmax() if len(margin) else None
    held = pooled["mean_a"] > pooled["mean_b"] and pooled["p"] < ALPHA and largest == "modality"
    return _verdict(2, "held" if held else "not held",
                    f"SAM vs {best_traditional}: largest margin in task '{largest}'",
                    pooled=pooled, margin_by_task=margin.round(4).to_dict())


def check_claim_3(results: pd.DataFrame) -> dict[str, object]:
    blocked = _untestable(3, results, ("sam",), ("sam",))
    if blocked:
        return blocked
    ok = ok_rows(results)
    means = ok.groupby("method")["dice_fgt"].mean()
    classical = [m for m in ("mind", *TRADITIONAL) if m in means.index]
    if not classical:
        return _verdict(3, "not testable", "no handcrafted or traditional method was run")
    best = max(classical, key=lambda m: means[m])
    pooled = _pooled(results, "sam", best, "dice_fgt")
    if (short := _too_few(3, {best: pooled})) is not None:
        return short
    held = pooled["mean_a"] < pooled["mean_b"] and pooled["p"] < ALPHA
    return _verdict(3, "held" if held else "not held",
                    f"FGT Dice of SAM vs the best classical method ({best})", pooled=pooled)


def check_claim_4(results: pd.DataFrame) -> dict[str, object]:
    needed = ("sam", "medsam", "sslsam")
    blocked = _untestable(4, results, needed, needed)
    if blocked:
        return blocked
    comparisons = {m: _pooled(results, m, "sam", "dice_breast") for m in ("medsam", "sslsam")}
    if (short := _too_few(4, comparisons)) is not None:
        return short
    adjusted = holm([c["p"] for c in comparisons.values()])
    improves = [m for (m, c), p in zip(comparisons.items(), adjusted, strict=True)
                if c["mean_a"] > c["mean_b"] and p < ALPHA]
    return _verdict(4, "not held" if improves else "held",
                    f"significantly better than SAM: {', '.join(improves) or 'none'}",
                    **comparisons, p_holm=adjusted.tolist())


def check_claims(results: pd.DataFrame) -> pd.DataFrame:
    """All four claims: one row each with verdict, reason and numbers."""
    checks = (check_claim_1, check_claim_2, check_claim_3, check_claim_4)
    return pd.DataFrame([check(results) for check in checks])
