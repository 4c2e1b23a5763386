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

from breastlib.intensity import normalise_intensity
from breastlib.study.run import RESULTS_VERSION
from breastlib.volume import load_volume

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

METRICS = {
    "tre_mean_after_mm": "TRE after (mm)",
    "dice_breast": "Dice breast",
    "dice_fgt": "Dice FGT",
    "hd95_breast_mm": "HD95 breast (mm)",
    "jac_nonpos_pct": "folded voxels (%)",
    "sdlogj": "SD log J",
}
ENCODER_METHODS = ("sam", "medsam", "sslsam", "dinov2", "dinov2-s", "dinov2-b", "medclip",
                   "biomedclip")


def method_label(row: pd.Series) -> str:
    """``sam (random)`` for encoders, the plain name otherwise."""
    if row["method"] in ENCODER_METHODS:
        return f"{row['method']} ({row['weights'] or 'random'})"
    return str(row["method"])


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
    for group in (g for g in twins.values() if len(g) > 1):
        lines.append(f"With random weights {', '.join(group)} are one and the same network "
                     "(their pretrained weights are what tells them apart), so their features "
                     "were computed once and their rows are identical.")
    if len(failed):
        lines.append(f"Failed rows: {len(failed)} ({', '.join(sorted(set(failed['method'])))}).")
    # Wrapped to the width of a book page's output box.
    return "\n".join(textwrap.fill(line, width=88, subsequent_indent="  ") for line in lines)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per method (ok rows), with the landmark error before."""
    ok = ran_rows(table)
    columns = ["tre_mean_before_mm", *METRICS]
    means = ok.groupby("method")[columns].mean()
    means.insert(0, "pairs", ok.groupby("method").size())
    means = means.rename(columns={"tre_mean_before_mm": "TRE before (mm)", **METRICS})
    return means.sort_values("TRE after (mm)").round(2)


def distributions(
    table: pd.DataFrame,
    metrics: tuple[str, ...] = ("tre_mean_after_mm", "dice_breast", "dice_fgt"),
) -> matplotlib.figure.Figure:
    """Per-method distributions (box + points) of a few metrics, one panel each."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = ran_rows(table)
    order = ok.groupby("method")["tre_mean_after_mm"].mean().sort_values().index
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8),
                                constrained_layout=True)
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        sns.boxplot(data=ok, y="method", x=metric, order=order, ax=ax, color="#dde6f0",
                    fliersize=0)
        sns.stripplot(data=ok, y="method", x=metric, order=order, ax=ax, color="#1f4e79",
                      size=5)
        ax.set_xlabel(METRICS.get(metric, metric))
        ax.set_ylabel("")
    return figure


def task_means(ran: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per method and task, rounded to 2 decimals.

    Parameters
    ----------
    ran
        Rows that ran, with method labels (:func:`ran_rows`).
    """
    return (ran.groupby(["method", "task"])[list(METRICS)].mean().rename(columns=METRICS)
            .round(2))


def tre_by_task(ran: pd.DataFrame) -> matplotlib.figure.Figure:
    """Mean landmark error after registration per task and method (bars, best method
    first), over a grey bar per task for the error before registration.

    Parameters
    ----------
    ran
        Rows that ran, with method labels (:func:`ran_rows`); errors in mm.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    before = ran.groupby("task")["tre_mean_before_mm"].mean()
    order = ran.groupby("method")["tre_mean_after_mm"].mean().sort_values().index
    figure, ax = plt.subplots(figsize=(10, 4.2))
    ax.bar(range(len(before)), before.to_numpy(), width=0.9, color="#d9d9d9",
           label="before registration")
    sns.barplot(data=ran, x="task", y="tre_mean_after_mm", hue="method", hue_order=order,
                order=before.index, ax=ax, errorbar=None, palette="tab10")
    ax.set_ylabel("mean landmark error (mm)")
    ax.set_xlabel("")
    ax.legend(ncol=4, fontsize=8, frameon=False)
    return figure


def rank_heatmaps(
    ran: pd.DataFrame,
    metrics: tuple[str, ...] = ("tre_mean_after_mm", "dice_breast", "dice_fgt",
                                "jac_nonpos_pct"),
) -> matplotlib.figure.Figure:
    """Methods x tasks, one heatmap per metric: colour is the rank within a task (darker
    is better: higher Dice, lower everything else), the numbers are the means.

    Parameters
    ----------
    ran
        Rows that ran, with method labels (:func:`ran_rows`).
    metrics
        Columns of the study table, one panel each.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 4.2),
                                constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        grid = ran.pivot_table(index="method", columns="task", values=metric, aggfunc="mean")
        ranks = grid.rank(ascending=not metric.startswith("dice"))
        sns.heatmap(ranks, annot=grid.round(2), fmt="", cmap="Blues_r", cbar=False, ax=ax,
                    linewidths=0.5)
        ax.set_title(METRICS.get(metric, metric))
        ax.set_xlabel("")
        ax.set_ylabel("")
    return figure


def comparison_volumes(
    manifest: str | os.PathLike, results_dir: str | os.PathLike, table: pd.DataFrame
) -> dict[str, Any]:
    """Volumes for a method-comparison browser of the cohort's first pair.

    Returns
    -------
    dict
        ``volumes`` (name -> ``(X, Y, k)`` uint8 axial slices), ``spacing`` (mm, with the
        slice spacing of the preview stack), ``windows`` and ``colormaps`` for
        :func:`breastlib.viz.interactive.show_slice_browser`, and ``pair_id``.
    """
    manifest = Path(manifest)
    cohort = pd.read_csv(manifest)
    pair_id = str(cohort["pair_id"].iloc[0])
    fixed = load_volume(manifest.parent / cohort["fixed_image"].iloc[0])
    previews = Path(results_dir) / "previews"
    rows = table[(table["pair_id"] == pair_id) & (table["status"] == "ok")]
    loaded = {}
    for _, row in rows.iterrows():
        pattern = f"{pair_id}__{row['method']}__{row['profile']}__*__v{RESULTS_VERSION}.npz"
        matches = sorted(previews.glob(pattern))
        if matches:
            with np.load(matches[-1]) as data:
                loaded[method_label(row)] = {k: data[k] for k in data.files}
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
    return {"volumes": volumes, "spacing": spacing, "windows": windows,
            "colormaps": colormaps, "pair_id": pair_id}
