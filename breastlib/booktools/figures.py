"""Tables and figures of the book's task and results chapters, drawn from a study table.

Everything here reads what :func:`breastlib.study.run.run_study` wrote (``results.csv`` rows
and ``previews/``) plus the cohort images; nothing is recomputed.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from breastlib.displacement import FOLDING_LIMIT_PCT
from breastlib.intensity import normalise_intensity
from breastlib.landmark_groups import GROUP_TRE_COLUMNS, LANDMARK_GROUPS
from breastlib.study.run import RESULTS_VERSION
from breastlib.volume import load_volume

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

METRICS = {
    "field_error_mean_mm": "dense error (mm)",
    "field_error_p95_mm": "dense error p95 (mm)",
    "field_error_lesion_mm": "dense error near lesion (mm)",
    "tre_mean_after_mm": "TRE after (mm)",
    "dice_breast": "Dice breast",
    "dice_fgt": "Dice FGT",
    "hd95_breast_mm": "HD95 breast (mm)",
    "jac_nonpos_pct": "folded voxels (%)",
    "sdlogj": "SD log J",
}
#: The primary metric where the true field is known, else the landmark error.
PRIMARY_METRICS = ("field_error_mean_mm", "tre_mean_after_mm")
ENCODER_METHODS = ("sam", "medsam", "sslsam", "dinov2", "dinov2-s", "dinov2-b", "medclip",
                   "biomedclip")
#: The paper's five encoders (the book's study runs these).
STUDY_ENCODERS = ("sam", "medsam", "sslsam", "dinov2", "medclip")
#: How a flagged row is marked in tables and figures (see breastlib.evaluate.verdict).
FLAG_MARKS = {"folded": "F", "worse_than_identity": "W"}
FLAG_COLOURS = {"ok": "#1f4e79", "folded": "#c0392b", "worse_than_identity": "#e67e22"}


def primary_metric(table: pd.DataFrame) -> str:
    """The column a table is ranked by: ``field_error_mean_mm`` (the dense error against
    the true field) when any row has it, else ``tre_mean_after_mm``."""
    for metric in PRIMARY_METRICS:
        if metric in table and pd.to_numeric(table[metric], errors="coerce").notna().any():
            return metric
    return PRIMARY_METRICS[-1]


def ranked_by(table: pd.DataFrame) -> str:
    """One line naming the metric a table or figure is ranked by, and the flag marks."""
    metric = primary_metric(table)
    what = ("the dense error against the true field inside the breast" if
            metric == "field_error_mean_mm" else "the mean landmark error (TRE)")
    return (f"Ranked by {what} (lower is better). Flags: F = folded (non-positive Jacobian "
            f"over more than {FOLDING_LIMIT_PCT:g} % of the body), W = worse than no "
            "registration on the primary metric, breast Dice or breast HD95.")


def verdict_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Rows per flag of :data:`FLAG_MARKS` (``folded``, ``worse_than_identity``), zeros
    included; rows without a ``verdict`` column count as unflagged."""
    verdicts = rows["verdict"] if "verdict" in rows else pd.Series([], dtype=object)
    return {flag: int((verdicts == flag).sum()) for flag in FLAG_MARKS}


def flag_counts(rows: pd.DataFrame) -> str:
    """``"1 F, 2 W of 4"`` for a group of rows (``""`` when none was flagged)."""
    parts = [f"{n} {FLAG_MARKS[flag]}" for flag, n in verdict_counts(rows).items() if n]
    return f"{', '.join(parts)} of {len(rows)}" if parts else ""


def method_label(row: pd.Series) -> str:
    """``sam (random)`` for encoders, the plain name otherwise."""
    if row["method"] in ENCODER_METHODS:
        return f"{row['method']} ({row['weights'] or 'random'})"
    return str(row["method"])


def preview_file(previews: Path, row: pd.Series) -> Path | None:
    """The preview saved for a study row (``None`` when there is none: only the first
    pair has previews, and of a random-weight encoder only its first seed)."""
    seed = pd.to_numeric(pd.Series([row.get("seed", 0)]), errors="coerce").fillna(0).iloc[0]
    if int(seed) != 0:
        return None
    weights = row.get("weights")
    weights = weights if isinstance(weights, str) and weights not in ("", "nan", "None") \
        else "*"
    pattern = (f"{row['pair_id']}__{row['method']}__{row['profile']}__{weights}__*"
               f"__v{RESULTS_VERSION}.npz")
    matches = sorted(Path(previews).glob(pattern))
    return matches[-1] if matches else None


def ran_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that ran (``status == "ok"``), their ``method`` replaced by its
    :func:`method_label` (``sam (random)``); a copy, in the table's order."""
    ok = table[table["status"] == "ok"].copy()
    ok["method"] = [method_label(row) for _, row in ok.iterrows()]
    return ok


def provenance(table: pd.DataFrame, *, size: str | None = None) -> str:
    """One paragraph saying what ran on what: data, pairs, profile, weights per encoder
    (``size``: the phantom size, ``small`` or ``full``; default the current book build)."""
    ok = table[table["status"] == "ok"]
    encoders = ok[ok["method"].isin(ENCODER_METHODS)]
    weights = (encoders.groupby("method")["weights"].agg(lambda s: ", ".join(sorted(set(s))))
               .to_dict())
    random = sorted(m for m, w in weights.items() if "random" in w)
    pretrained = sorted(m for m, w in weights.items() if "pretrained" in w)
    failed = table[table["status"] == "failed"]
    from breastlib.booktools.data import current_build

    size = {"small": "small size (about 2.7 x 2.7 x 2.5 mm)",
            "full": "full size (about 0.76 x 0.76 x 1.5 mm)"}[size or current_build().size]
    lines = [
        f"Data: {ok['pair_id'].nunique()} synthetic phantom pair(s) of task "
        f"'{', '.join(sorted(set(table['task'])))}', {size}.",
        f"Profile: {', '.join(sorted(set(table['profile'])))}.",
        f"Encoders with pretrained weights: {', '.join(pretrained) or 'none'}.",
        f"Encoders with RANDOM weights (architecture only, no pretraining): "
        f"{', '.join(random) or 'none'}.",
    ]
    from breastlib.encoders import ENCODERS

    twins: dict[str, list[str]] = {}
    for method in random:
        twins.setdefault(ENCODERS[method].twin, []).append(method)
    for twin, present in twins.items():
        group = [m for m in STUDY_ENCODERS if ENCODERS[m].twin == twin]
        if len(group) < 2:
            continue
        lines.append(f"With random weights {', '.join(group)} are one and the same network "
                     "(their pretrained weights are what tells them apart): it ran once per "
                     f"pair and seed, shown as {', '.join(present)}.")
    if len(failed):
        lines.append(f"Failed rows: {len(failed)} ({', '.join(sorted(set(failed['method'])))}).")
    # Wrapped to the width of a book page's output box (76 characters of its monospace
    # font), so that the page's own wrapping of long lines never breaks them again.
    return "\n".join(textwrap.fill(line, width=76, subsequent_indent="  ") for line in lines)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per method (ok rows, every seed of a random-weight encoder),
    ranked by the primary metric (:func:`primary_metric`), with its pairs and rows (pairs
    times seeds), the landmark error before, the number of flagged rows
    (``flagged``, :data:`FLAG_MARKS`) and of rows where the stage guard kept an earlier
    stage than Adam (``guard``)."""
    ok = ran_rows(table)
    columns = ["tre_mean_before_mm", *(m for m in METRICS if m in ok)]
    means = ok.groupby("method")[columns].mean()
    means = means.dropna(axis=1, how="all")
    means.insert(0, "pairs", ok.groupby("method")["pair_id"].nunique())
    means.insert(1, "rows", ok.groupby("method").size())  # pairs x seeds
    means["flagged"] = ok.groupby("method").apply(flag_counts, include_groups=False)
    if "stage_kept" in ok:
        fell_back = ok["stage_kept"].fillna("").isin(("identity", "initial", "convex"))
        means["guard"] = fell_back.groupby(ok["method"]).sum().astype(int)
    means = means.sort_values(primary_metric(ok))
    means = means.rename(columns={"tre_mean_before_mm": "TRE before (mm)", **METRICS})
    return means.round(2)


#: Landmark-group TRE columns of a study row and their labels (see
#: :mod:`breastlib.landmark_groups`).
GROUP_TRE = {column: group.replace("_", " ")
             for column, group in zip(GROUP_TRE_COLUMNS, LANDMARK_GROUPS, strict=True)}


def landmark_group_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean landmark error (mm) per method over all landmarks and per landmark group
    (interior, skin, chest wall, lesion), methods in the order of the primary metric; a
    group without landmarks in these pairs has no column. Empty when the rows carry no
    group columns (results of phantom version 1)."""
    ok = ran_rows(table)
    groups = [c for c in GROUP_TRE if c in ok and ok[c].notna().any()]
    if not groups or "tre_mean_after_mm" not in ok:
        return pd.DataFrame()
    order = ok.groupby("method")[primary_metric(ok)].mean().sort_values().index
    means = ok.groupby("method")[["tre_mean_after_mm", *groups]].mean().loc[order]
    return means.rename(columns={"tre_mean_after_mm": "all landmarks",
                                 **GROUP_TRE}).round(2)


#: :func:`distributions` draws an error (mm) on a log axis when its largest value exceeds
#: its smallest positive one by more than this factor.
LOG_SPREAD = 20.0


def distributions(
    table: pd.DataFrame, metrics: tuple[str, ...] | None = None,
) -> matplotlib.figure.Figure:
    """Per-method distributions (box + one point per pair) of a few metrics, one panel
    each, methods ranked by the primary metric; points coloured by verdict.

    Parameters
    ----------
    table
        A study table.
    metrics
        Columns to show; default the primary metric, TRE and breast Dice.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    ok = ran_rows(table)
    primary = primary_metric(ok)
    if metrics is None:
        metrics = tuple(dict.fromkeys((primary, "tre_mean_after_mm", "dice_breast")))
    order = ok.groupby("method")[primary].mean().sort_values().index
    ok["verdict"] = ok["verdict"].fillna("ok") if "verdict" in ok else "ok"
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.2),
                                constrained_layout=True)
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        sns.boxplot(data=ok, y="method", x=metric, order=order, ax=ax, color="#dde6f0",
                    fliersize=0)
        sns.stripplot(data=ok, y="method", x=metric, order=order, ax=ax, hue="verdict",
                      palette=FLAG_COLOURS, hue_order=list(FLAG_COLOURS), size=5,
                      legend=False)
        values = pd.to_numeric(ok[metric], errors="coerce")
        positive = values[values > 0]
        spread = positive.max() / positive.min() if len(positive) else 1.0
        if metric.endswith("_mm") and spread > LOG_SPREAD:
            # Errors spanning more than a decade: on a linear axis the runaway rows would
            # squeeze every working method into a few pixels.
            ax.set_xscale("log")
        ax.set_xlabel(METRICS.get(metric, metric)
                      + (", log scale" if ax.get_xscale() == "log" else ""))
        ax.set_ylabel("")
    handles = [Line2D([], [], marker="o", linestyle="", color=colour, label=verdict)
               for verdict, colour in FLAG_COLOURS.items()]
    figure.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False,
                  title="verdict of each pair")
    return figure


def task_means(ran: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per method and task, rounded to 2 decimals, with the flagged
    pairs (``flagged``: :func:`flag_counts`).

    Parameters
    ----------
    ran
        Rows that ran, with method labels (:func:`ran_rows`).
    """
    groups = ran.groupby(["method", "task"])
    means = groups[[m for m in METRICS if m in ran]].mean().rename(columns=METRICS).round(2)
    means["flagged"] = groups.apply(flag_counts, include_groups=False)
    return means


#: :func:`error_by_task` cuts its axis at this multiple of the largest error before
#: registration; a bar above it is drawn to the edge with its value written on it.
CLIP_OVER_BEFORE = 1.6


def error_by_task(ran: pd.DataFrame, metric: str | None = None) -> matplotlib.figure.Figure:
    """Mean error after registration per task and method (bars, best method first), over
    a grey bar per task for the error before registration; bars of a method with a flagged
    row in that task are hatched and labelled with the flag.

    Parameters
    ----------
    ran
        Rows that ran, with method labels (:func:`ran_rows`); errors in mm.
    metric
        ``field_error_mean_mm`` or ``tre_mean_after_mm``; default :func:`primary_metric`.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    metric = metric or primary_metric(ran)
    if metric == "field_error_mean_mm":
        before = ran[ran["method"] == "identity"].groupby("task")[metric].mean()
        label = "mean dense error in the breast (mm)"
    else:
        before = ran.groupby("task")["tre_mean_before_mm"].mean()
        label = "mean landmark error (mm)"
    order = ran.groupby("method")[metric].mean().sort_values().index
    figure, ax = plt.subplots(figsize=(10, 4.6))
    ax.bar(range(len(before)), before.to_numpy(), width=0.9, color="#d9d9d9",
           label="before registration")
    sns.barplot(data=ran, x="task", y=metric, hue="method", hue_order=order,
                order=before.index, ax=ax, errorbar=None, palette="tab10")
    verdicts = ran.assign(verdict=ran.get("verdict", pd.Series("ok", index=ran.index))
                          .fillna("ok"))
    # Bars far above every task's error before registration would flatten the rest:
    # the axis stops at CLIP_OVER_BEFORE times the largest, and a cut bar carries its value.
    top = CLIP_OVER_BEFORE * float(before.max()) if len(before) else None
    any_cut = False
    for container, method in zip(ax.containers[1:], order, strict=False):
        for bar in container:
            # seaborn leaves out the bar of a task the method has no row in: the bar's
            # position, not its place in the container, says which task it is.
            task = before.index[round(bar.get_x() + bar.get_width() / 2)]
            flags = verdicts[(verdicts["method"] == method) & (verdicts["task"] == task)]
            marks = "".join(sorted({FLAG_MARKS[v] for v in flags["verdict"]
                                    if v in FLAG_MARKS}))
            height = bar.get_height()
            cut = top is not None and np.isfinite(height) and height > top
            any_cut |= cut
            if marks:
                bar.set_hatch("///")
                bar.set_edgecolor("black")
            if marks or cut:
                text = f"{marks}\n{height:.0f}" if cut else marks
                ax.annotate(text, (bar.get_x() + bar.get_width() / 2,
                                   top if cut else height),
                            ha="center", va="top" if cut else "bottom", fontsize=7,
                            color="white" if cut else "black",
                            fontweight="bold" if cut else "normal")
    if any_cut:
        ax.set_ylim(0, top)
    ax.set_ylabel(label)
    ax.set_xlabel("")
    # Below the axes, where it covers no bar.
    ax.legend(ncol=5, fontsize=8, frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.08))
    return figure


def rank_heatmaps(
    ran: pd.DataFrame, metrics: tuple[str, ...] | None = None,
) -> matplotlib.figure.Figure:
    """Methods x tasks, one heatmap per metric: colour is the rank within a task (darker
    is better: higher Dice, lower everything else), the numbers are the means, followed
    by the flags (:data:`FLAG_MARKS`) of the method's rows in that task. Methods are
    ordered by the primary metric.

    Parameters
    ----------
    ran
        Rows that ran, with method labels (:func:`ran_rows`).
    metrics
        Columns of the study table, one panel each; default the primary metric, TRE,
        breast Dice and folding.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric (``figure.axes``, in ``metrics`` order), two panels a row,
        sized to the number of methods and tasks so that a book page shows the numbers
        (9 pt, two decimals) at their printed size; method names label the first panel of
        each row, task names are tilted so that they never run together.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    primary = primary_metric(ran)
    if metrics is None:
        metrics = tuple(dict.fromkeys((primary, "tre_mean_after_mm", "dice_breast",
                                       "jac_nonpos_pct")))
    order = ran.groupby("method")[primary].mean().sort_values().index
    verdicts = ran["verdict"].fillna("ok") if "verdict" in ran else pd.Series("ok", ran.index)
    flags = (ran.assign(flag=verdicts.map(FLAG_MARKS).fillna(""))
             .groupby(["method", "task"])["flag"]
             .agg(lambda s: "".join(sorted(set("".join(s))))).unstack())
    tasks = sorted(set(ran["task"]))
    columns = min(2, len(metrics))
    rows = -(-len(metrics) // columns)
    # Sized to the content: about 0.9 inch per task column and 0.32 inch per method row,
    # so that the figure is shown near its own size on a page (about 10 inches wide).
    panel_width = 0.9 * len(tasks) + 0.4
    panel_height = 0.32 * len(order) + 1.3
    labels_width = 0.075 * max(len(str(m)) for m in order) + 0.3
    figure, axes = plt.subplots(
        rows, columns, squeeze=False, constrained_layout=True,
        figsize=(labels_width + columns * panel_width, rows * panel_height))
    for number, metric in enumerate(metrics):
        ax = axes.flat[number]
        grid = ran.pivot_table(index="method", columns="task", values=metric,
                               aggfunc="mean").reindex(index=order, columns=tasks)
        ranks = grid.rank(ascending=not metric.startswith("dice"))
        text = (grid.map(lambda v: "" if pd.isna(v) else f"{v:.2f}") + " "
                + flags.reindex_like(grid).fillna(""))
        sns.heatmap(ranks, annot=text.map(str.strip), fmt="", cmap="Blues_r", cbar=False,
                    ax=ax, linewidths=0.5, annot_kws=dict(fontsize=9))
        ax.set_title(METRICS.get(metric, metric), fontsize=11)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelsize=9, rotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        if number % columns:  # the method names once per row of panels
            ax.set_yticklabels([])
            ax.tick_params(axis="y", length=0)
        else:
            ax.tick_params(axis="y", labelsize=9, rotation=0)
    for ax in axes.flat[len(metrics):]:
        figure.delaxes(ax)
    figure.suptitle("colour: rank within each task (darker is better); numbers: means; "
                    "F folded, W worse than no registration", fontsize=9)
    return figure


def comparison_volumes(
    manifest: str | os.PathLike, results_dir: str | os.PathLike, table: pd.DataFrame
) -> dict[str, Any]:
    """Volumes for a method-comparison browser of the cohort's first pair.

    A method whose row on that pair was flagged carries its mark (:data:`FLAG_MARKS`) in
    its names, e.g. ``sam (random) [W]: warped moving``.

    Returns
    -------
    dict
        ``volumes`` (name -> ``(X, Y, k)`` uint8 axial slices: the ``k`` slices of the
        preview stack), ``spacing`` (mm, with the slice spacing of the preview stack),
        ``windows``, ``colormaps``, ``units`` (colour-bar titles of the difference images,
        in the 0-255 scale of the normalised images), ``slice_numbers`` (``(k,)`` 0-based
        index of each stored slice in the pair's volume) and ``n_slices_total`` (axial
        slices of that volume): keywords for
        :func:`breastlib.viz.interactive.show_slice_browser`; and ``pair_id``.
    """
    manifest = Path(manifest)
    cohort = pd.read_csv(manifest)
    pair_id = str(cohort["pair_id"].iloc[0])
    fixed = load_volume(manifest.parent / cohort["fixed_image"].iloc[0])
    previews = Path(results_dir) / "previews"
    rows = table[(table["pair_id"] == pair_id) & (table["status"] == "ok")]
    loaded = {}
    for _, row in rows.iterrows():
        if (found := preview_file(previews, row)) is not None:
            matches = [found]
            mark = FLAG_MARKS.get(str(row.get("verdict", "")), "")
            label = method_label(row) + (f" [{mark}]" if mark else "")
            with np.load(matches[-1]) as data:
                loaded[label] = {k: data[k] for k in data.files}
    if not loaded:
        raise FileNotFoundError(f"no previews under {previews} for {pair_id}")
    first = next(iter(loaded.values()))
    slices = first["slices"]
    fixed_u8 = (normalise_intensity(fixed.array)[:, :, slices] * 255).round().astype(np.uint8)
    spacing = np.array(first["spacing"], dtype=float)
    if len(slices) > 1:
        spacing[2] = spacing[2] * float(np.mean(np.diff(slices)))
    volumes: dict[str, np.ndarray] = {"fixed": fixed_u8}
    if "identity" in loaded:
        volumes["moving (before registration)"] = loaded["identity"]["warped"]
    for name, data in loaded.items():
        if name != "identity":
            volumes[f"{name}: warped moving"] = data["warped"]
    for name, data in loaded.items():
        diff = np.abs(fixed_u8.astype(np.int16) - data["warped"].astype(np.int16))
        label = "before" if name == "identity" else name
        volumes[f"|fixed - warped|: {label}"] = diff.astype(np.uint8)
    windows = {name: (0.0, 255.0) for name in volumes}
    windows |= {n: (0.0, 128.0) for n in volumes if n.startswith("|")}
    colormaps = {n: "magma" for n in volumes if n.startswith("|")}
    # Both images are normalised to 0-255 (0.5th-99.5th percentile of each) before the
    # difference is taken, so the difference is in that scale too.
    units = {n: "|fixed - warped|: intensity, 0-255 scale of the normalised images"
             for n in colormaps}
    return {"volumes": volumes, "spacing": spacing, "windows": windows,
            "colormaps": colormaps, "units": units,
            "slice_numbers": np.asarray(slices, dtype=int),
            "n_slices_total": int(fixed.shape[2]), "pair_id": pair_id}
