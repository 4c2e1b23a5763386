"""The book's answer in words, computed from the study rows so it cannot contradict them.

:func:`answer_in_words` is the introduction's answer: one paragraph per claim of the paper
and the study's control claim, with the verdict per task, the numbers behind it and what
it would take to answer what this build cannot. :func:`power_in_words` is the results
chapter's paragraph on what the cohort can detect. Both read the same functions as the
results chapter's tables (:mod:`breastlib.evaluate.claims`,
:mod:`breastlib.evaluate.statistics`, :mod:`breastlib.evaluate.power`).
"""

from __future__ import annotations

import pandas as pd

from breastlib.booktools.figures import verdict_counts
from breastlib.evaluate.claims import CLAIMS, PRIMARY, check_claims
from breastlib.evaluate.power import POWER, detectable_effect, power_table
from breastlib.evaluate.statistics import REFERENCE, seed_spread, subject_id, task_tests

#: The command that answers the claims this build cannot (pretrained weights, GPU).
PRETRAINED_COMMAND = "python -m breastlib.booktools pretrained-study"


def _cohort_words(rows: pd.DataFrame) -> str:
    ok = rows[rows["status"] == "ok"]
    subjects = ok.assign(subject=[subject_id(str(p)) for p in ok["pair_id"]]).groupby(
        "task")["subject"].nunique()
    seeds = pd.to_numeric(ok.get("seed", pd.Series(0, index=ok.index)), errors="coerce")
    random = ok["weights"].astype(str).eq("random")
    n_seeds = int(seeds[random].nunique()) if random.any() else 0
    count = (f"{int(subjects.min())}" if subjects.min() == subjects.max()
             else f"{int(subjects.min())}-{int(subjects.max())}")
    words = (f"{count} synthetic subjects per task ({len(subjects)} task"
             f"{'s' if len(subjects) != 1 else ''}; the lesion task "
             "gives each subject a pair with a lesion and a matched pair without)")
    if n_seeds:
        words += (f", every random-weight encoder architecture with {n_seeds} seed"
                  f"{'s' if n_seeds != 1 else ''}")
    return words


def _verdicts_by_task(claims: pd.DataFrame, claim: object) -> str:
    part = claims[(claims["claim"] == claim) & (claims["task"] != "all")]
    groups: dict[str, list[str]] = {}
    for row in part.itertuples():
        groups.setdefault(str(row.verdict), []).append(str(row.task))
    return "; ".join(f"{verdict} in {', '.join(tasks)}" for verdict, tasks in groups.items())


def _claim_paragraph(claims: pd.DataFrame, claim: object) -> str:
    part = claims[claims["claim"] == claim]
    statement = CLAIMS[claim]
    label = {"R": "Control", "P": "Pretraining"}.get(str(claim), f"Claim {claim}")
    statement = statement.split("(this study's): ", 1)[-1]
    head = f"**{label}**: {statement} — {_verdicts_by_task(claims, claim)}."
    verdicts = set(part["verdict"])
    if verdicts == {"not testable"}:
        reasons = sorted(set(part["reason"]))
        return f"{head} Why: {' / '.join(reasons)}."
    details = [f"{row.task}: {row.reason}" for row in part.itertuples()
               if row.verdict != "not testable"]
    return f"{head} " + "; ".join(details) + "."


def _task_lines(rows: pd.DataFrame) -> list[str]:
    """Per task: no registration, MIND, the best classical method, each random
    architecture (mean over seeds and its seed range), and the guard's rejections."""
    if PRIMARY not in rows or not pd.to_numeric(rows[PRIMARY], errors="coerce").notna().any():
        return []
    tests = task_tests(rows, PRIMARY)
    spread = seed_spread(rows, PRIMARY)
    ok = rows[rows["status"] == "ok"]
    lines = []
    for task, group in tests.groupby("task", sort=True):
        by_arm = group.set_index("arm")
        mind = float(group["reference_mean"].iloc[0])
        parts = [f"MIND {mind:.2f} mm"]
        if "identity" in by_arm.index:
            parts.insert(0, f"no registration {by_arm.loc['identity', 'mean']:.2f} mm")
        classical = by_arm.loc[[a for a in ("ants", "elastix", "affine") if a in by_arm.index]]
        if not classical.empty:
            best = classical["mean"].idxmin()
            parts.append(f"best classical {best} {classical.loc[best, 'mean']:.2f} mm")
        for row in spread[spread["task"] == task].itertuples():
            parts.append(f"{row.arm} {row.mean:.2f} mm (seeds {row.seed_min:.2f}-"
                         f"{row.seed_max:.2f})")
        encoders = ok[(ok["task"] == task) & ok["weights"].astype(str).isin(
            ["random", "pretrained"])]
        guarded = encoders["stage_kept"].astype(str).isin(["identity", "initial", "convex"])
        if len(encoders):
            counts = verdict_counts(encoders)
            folded, worse = counts["folded"], counts["worse_than_identity"]
            flags = (f" (their own fields folded on {folded} and ended worse than no "
                     f"registration on {worse})" if folded or worse else "")
            parts.append(f"the stage guard would have replaced {int(guarded.sum())} of "
                         f"{len(encoders)} encoder results by an earlier stage{flags}")
        lines.append(f"- **{task}**: " + ", ".join(parts) + ".")
    return lines


def answer_in_words(rows: pd.DataFrame) -> str:
    """The study's answer as Markdown: the data, each claim's verdict per task with its
    numbers, each task's errors, and the limits; computed from ``rows`` (every task's
    study rows of one build).
    """
    ok = rows[rows["status"] == "ok"] if "status" in rows else rows
    if ok.empty:
        return "No study rows are available in this build, so there is no answer yet."
    claims = check_claims(rows)
    pretrained = ok["weights"].astype(str).eq("pretrained").any()
    paragraphs = [f"This build ran {_cohort_words(rows)}. Every verdict below is computed "
                  "from those rows (per task, paired over subjects, Holm-corrected; the "
                  "results chapter has the tables)."]
    paragraphs += [_claim_paragraph(claims, claim) for claim in (1, 2, 3, 4, "R", "P")]
    lines = _task_lines(rows)
    if lines:
        paragraphs.append(f"Dense error inside the breast ({'mean over subjects'}), the "
                          "method's own result (for an encoder: its Adam stage):\n\n"
                          + "\n".join(lines))
    limits = ("**Limits.** The data are synthetic phantoms whose true deformation is "
              "known, not patients; the real-exam chapter shows what transfers to one "
              "clinical exam, where no true deformation exists. ")
    if not pretrained:
        limits += ("No pretrained checkpoint could be downloaded where this book was "
                   "built, so every encoder ran with random weights: the rows measure "
                   "architectures and the pipeline, and the paper's four claims, which are "
                   "about pretrained encoders, stay open here. To answer them: "
                   f"`{PRETRAINED_COMMAND}` downloads and verifies the checkpoints, runs "
                   "the same subjects with pretrained weights and rebuilds the book with "
                   "pretrained and random rows side by side (hours on a GPU; the "
                   "reproducibility appendix gives the cost per row).")
    paragraphs.append(limits)
    return "\n\n".join(paragraphs)


def power_in_words(rows: pd.DataFrame, *, effect: float = 0.5) -> str:
    """What the cohort can detect, per task, as Markdown (the results chapter's power
    paragraph): subjects, family size, the detectable standardised effect and the
    detectable difference in mm at the observed spread of per-subject differences."""
    if PRIMARY not in rows or not pd.to_numeric(rows[PRIMARY], errors="coerce").notna().any():
        return "No dense error in these rows, so no power calculation."
    tests = task_tests(rows, PRIMARY)
    table = power_table(tests, effect=effect)
    n = int(table["subjects"].min())
    family = int(table["family"].max())
    d = detectable_effect(n, comparisons=family)
    # Each comparison against its own detectable difference (its own spread).
    above = (tests["difference"].abs() > tests["detectable"]).groupby(tests["task"]).sum()
    lines = [f"- **{r.task}**: {r.subjects} subjects, {r.family} comparisons; the "
             f"per-subject differences spread by {r.sd_difference:.2f} mm (median SD), so "
             f"a difference of {r.detectable:.2f} mm is detected; {effect:g} mm would need "
             f"{r.subjects_for_effect} subjects. {int(above.get(r.task, 0))} of the "
             f"{r.family} observed differences from {REFERENCE.upper()} exceed what their "
             "own test could detect." for r in table.itertuples()]
    return (f"Each task's family compares every method with {REFERENCE.upper()} over the "
            f"same subjects. With {n} subjects and {family} Holm-corrected two-sided "
            f"Wilcoxon tests, a comparison has {POWER:.0%} power to detect a mean "
            f"difference of {d:.2f} standard deviations of its per-subject differences "
            "(paired t-test power at the Bonferroni level, the sample scaled by the "
            "Wilcoxon test's efficiency 3/π). In millimetres of dense error:\n\n"
            + "\n".join(lines))


__all__ = ["PRETRAINED_COMMAND", "answer_in_words", "power_in_words"]
