"""Sentences the chapters compute from the study's rows.

A chapter that states a number or a ranking in fixed prose contradicts its own table the
day the data are regenerated. The paragraphs here are written from the rows instead, so a
rebuild rewrites them with the tables beside them.
"""

from __future__ import annotations

import pandas as pd

from breastlib.booktools.figures import verdict_counts
from breastlib.evaluate.verdict import worse_than_identity

#: The band the phantom's motion was calibrated for: the best classical method's mean
#: landmark error (mm) on a task inside ``(low, high)``, no registration's at least ``floor``.
CLASSICAL_TRE_BAND_MM = (2.0, 5.0)
IDENTITY_TRE_FLOOR_MM = 8.0
#: Landmark groups whose errors differ by less than this (mm) count as "about alike".
ALIKE_MM = 0.25

_METHOD_NAMES = {"ants": "ANTs", "elastix": "elastix", "mind": "MIND"}
_GROUPS = ("interior", "skin", "chest wall", "lesion")


def _name(method: str) -> str:
    return _METHOD_NAMES.get(method, method)


def _span(values: pd.Series, digits: int = 1, unit: str = " mm") -> str:
    low, high = values.min(), values.max()
    if f"{low:.{digits}f}" == f"{high:.{digits}f}":
        return f"{low:.{digits}f}{unit}"
    return f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def _count(n: int, total: int, noun: str) -> str:
    if n == total:
        return f"all {total} {noun}s" if total != 1 else f"the one {noun}"
    return f"{n} of {total} {noun}s"


def _where_it_misses(row: pd.Series) -> str:
    groups = {g: row[f"its TRE {g}"] for g in _GROUPS
              if f"its TRE {g}" in row and pd.notna(row[f"its TRE {g}"])}
    if len(groups) < 2:
        return "no landmark groups to compare"
    ordered = sorted(groups, key=groups.get)
    if groups[ordered[-1]] - groups[ordered[0]] < ALIKE_MM:
        return f"about alike everywhere ({_span(pd.Series(groups))})"
    return (f"most at the {ordered[-1]} ({groups[ordered[-1]]:.1f} mm) and least "
            f"{'inside the breast' if ordered[0] == 'interior' else 'at the ' + ordered[0]} "
            f"({groups[ordered[0]]:.1f} mm)")


def task_difficulty_words(table: pd.DataFrame) -> str:
    """A paragraph (Markdown) on how hard each task is, from
    :func:`breastlib.booktools.chapters.task_difficulty`'s table: the spans over tasks of
    no registration's and the best classical method's mean landmark error, whether each
    task is inside the calibrated band, and where that method misses most and least on
    each task. Empty for an empty table."""
    if table.empty:
        return ""
    tasks = len(table)
    identity = table["identity TRE (mm)"]
    classical = table["its TRE (mm)"]
    low, high = CLASSICAL_TRE_BAND_MM
    inside = (identity >= IDENTITY_TRE_FLOOR_MM) & classical.between(low, high)
    band = (f"the band the phantom was calibrated for (the best classical method between "
            f"{low:g} and {high:g} mm, no registration at least {IDENTITY_TRE_FLOOR_MM:g} mm)")
    if inside.all():
        verdict = f"inside {band} on {_count(tasks, tasks, 'task')}"
    else:
        outside = ", ".join(table.index[~inside])
        verdict = (f"inside {band} on {_count(int(inside.sum()), tasks, 'task')}; "
                   f"outside it on {outside}")
    misses = "; ".join(
        f"on the {task} pairs {_name(row['best classical'])}"
        f" misses {_where_it_misses(row)}" for task, row in table.iterrows())
    text = (f"Over the {tasks} task{'s' if tasks != 1 else ''}, no registration leaves the "
            f"landmarks {_span(identity)} from their partners on average and the better "
            f"classical method brings them to {_span(classical)} (dense error "
            f"{_span(table['its dense (mm)'])}): {verdict}. Where the landmarks stay apart: "
            f"{misses}.")
    if {"sequence", "modality"} <= set(table.index):
        # The two tasks share their motion regime: the difference is the change of modality.
        sequence, modality = table.loc["sequence"], table.loc["modality"]
        # The difference of the numbers as printed, so the sentence adds up.
        change = round(modality["its dense (mm)"], 1) - round(sequence["its dense (mm)"], 1)
        text += (f" The modality pairs move as the sequence pairs do, so the change from MRI "
                 f"to CT is what differs: the better classical method ends "
                 f"{modality['its dense (mm)']:.1f} mm from the true deformation on the "
                 f"modality pairs ({_name(modality['best classical'])}) against "
                 f"{sequence['its dense (mm)']:.1f} mm on the sequence pairs "
                 f"({_name(sequence['best classical'])}), "
                 f"{abs(change):.1f} mm {'more' if change > 0 else 'less'}.")
    return text


#: How :func:`_flagged_words` names the metrics of :func:`worse_than_identity`.
_METRIC_NAMES = {"field_error_mean_mm": "dense error", "tre_mean_after_mm": "landmark error",
                 "dice_breast": "breast Dice", "hd95_breast_mm": "breast HD95"}

#: Identity's row of a pair gives a registration's ``*_before`` values (its own row keeps
#: only the landmark error before registration).
_BEFORE = {"field_error_mean_mm": "field_error_mean_before_mm",
           "dice_breast": "dice_breast_before", "hd95_breast_mm": "hd95_breast_mm_before"}


def delivered_error(rows: pd.DataFrame, metric: str = "field_error_mean_mm") -> float:
    """Mean ``metric`` of what breastlib delivers with the stage guard (``guarded_<metric>``;
    the row's own value where that is missing, as in rows written before it existed)."""
    guarded = pd.to_numeric(rows.get(f"guarded_{metric}", rows[metric]), errors="coerce")
    return float(guarded.fillna(rows[metric]).mean())


def _flagged_words(own: pd.DataFrame, identity: pd.DataFrame) -> str:
    """How many of ``own``'s rows (indexed by pair) are flagged, and on which metrics a
    row worse than no registration is worse (against ``identity``'s row of its pair)."""
    folded = verdict_counts(own)["folded"]
    worse = own[own["verdict"] == "worse_than_identity"]
    if not folded and worse.empty:
        return f"none of its {len(own)} rows is flagged"
    parts = []
    if folded:
        parts.append(f"{folded} folded beyond the limit")
    if not worse.empty:
        metrics: dict[str, int] = {}
        for pair_id, row in worse.iterrows():
            before = identity.loc[pair_id] if pair_id in identity.index else pd.Series()
            joined = row.to_dict() | {before_key: before.get(key)
                                      for key, before_key in _BEFORE.items()}
            for metric in worse_than_identity(joined):
                metrics[metric] = metrics.get(metric, 0) + 1
        which = ", ".join(f"{_METRIC_NAMES.get(m, m)} on {n}" for m, n in metrics.items())
        parts.append(f"{len(worse)} worse than no registration ({which})" if which
                     else f"{len(worse)} worse than no registration")
    return f"{' and '.join(parts)} of its {len(own)} rows"


def method_on_pairs_words(rows: pd.DataFrame, method: str) -> str:
    """One sentence on ``method``'s rows of one task against no registration's on the same
    pairs: its flags (:mod:`breastlib.evaluate.verdict`), the largest share of the body it
    folds, breast Dice and mean dense error (spans over pairs). Empty when it has no row.

    Parameters
    ----------
    rows
        One task's study rows (``status``, ``method``, ``pair_id``, ``verdict``,
        ``jac_nonpos_pct``, ``dice_breast``, ``field_error_mean_mm``).
    method
        The method to describe, e.g. ``"mind"``.
    """
    ok = rows[rows["status"] == "ok"]
    own = ok[ok["method"] == method].set_index("pair_id")
    identity = ok[ok["method"] == "identity"].set_index("pair_id")
    if own.empty:
        return ""
    same = identity.loc[identity.index.intersection(own.index)]
    name = _name(method)
    pairs = own.index.nunique()
    noun = "pair" if pairs == 1 else f"{pairs} pairs"
    where = (f"On {'this' if pairs == 1 else 'these'} {noun}" if pairs == len(own)
             else f"Over its {len(own)} rows on {'this' if pairs == 1 else 'these'} {noun} "
                  f"(seeds and weights together)")
    text = (f"{where} {name} folds at most "
            f"{own['jac_nonpos_pct'].max():.2f} % of the body, {_flagged_words(own, identity)}")
    if not same.empty:
        text += (f"; it brings breast Dice to {_span(own['dice_breast'], 2, '')} (no "
                 f"registration: {_span(same['dice_breast'], 2, '')}) and ends "
                 f"{_span(own['field_error_mean_mm'])} from the true deformation on average "
                 f"(no registration: {_span(same['field_error_mean_mm'])})")
    return text + "."


_STAGE_NAMES = {"adam": "Adam's field", "convex": "the convex step", "initial":
                "the initial alignment", "identity": "no registration"}


def _stages(rows: pd.DataFrame) -> str:
    counts = rows["stage_kept"].astype(str).value_counts()
    return ", ".join(f"{_STAGE_NAMES.get(stage, stage)} on {n}"
                     for stage, n in counts.items() if stage in _STAGE_NAMES)


def guard_words(rows: pd.DataFrame) -> str:
    """A paragraph (Markdown) on what the stage guard did in the study's rows: which stage
    it kept for MIND and for the random-weight encoders (``stage_kept``), how many of
    their own fields (the Adam stage, which the rows measure) fold or end worse than no
    registration (``verdict``), and the mean dense error of what breastlib delivers with
    the guard (``guarded_field_error_mean_mm``) against their own. Empty without rows
    that ran ConvexAdam."""
    ok = rows[(rows["status"] == "ok")
              & rows.get("stage_kept", pd.Series("", index=rows.index)).astype(str).isin(
                  list(_STAGE_NAMES))]
    if ok.empty:
        return ""
    random = ok["weights"].astype(str).eq("random")
    groups = {"MIND": ok[ok["method"] == "mind"], "the random-weight encoders": ok[random],
              "the pretrained encoders": ok[~random & (ok["method"] != "mind")]}
    parts = []
    for label, part in groups.items():
        if part.empty:
            continue
        counts = verdict_counts(part)
        folded, worse = counts["folded"], counts["worse_than_identity"]
        own, delivered = part["field_error_mean_mm"].mean(), delivered_error(part)
        parts.append(
            f"for {label} ({len(part)} rows) it kept {_stages(part)}; their own fields fold "
            f"beyond the limit on {folded} and end worse than no registration on {worse}, "
            f"and average {own:.1f} mm from the true deformation, where what breastlib "
            f"delivers with the guard averages {delivered:.1f} mm")
    return (f"The stage guard in this build's {len(ok)} rows that ran ConvexAdam: "
            + "; ".join(parts) + ". The rows measure each method's own field; the guard's "
            "choice and what it delivers are columns beside it (`stage_kept`, "
            "`guarded_field_error_mean_mm`).")
