"""What the book's chapters call: a chapter holds its narrative and a few of these calls.

- every task chapter: :func:`task_chapter` (its figures, tables and explorer, from the
  task's name);
- the introduction and the results chapter: :func:`study_results` (every task's rows,
  and the rows that ran with method labels), :func:`build_note`, :func:`show_full_build`;
- the cohort chapter: :func:`contrast_figure`, :func:`fat_fgt_ratios`,
  :func:`ground_truth_figure`;
- the method chapter: :func:`before_after_volumes`, :func:`encoders_fit`,
  :func:`feature_images`, :func:`stage_table`, :func:`profile_comparison`;
- the performance appendix: :func:`benchmark`, :func:`benchmark_runs`,
  :func:`throughput_figure`, :func:`batching_verdict`, :func:`batch_sweep_figure`,
  :func:`best_batch_sizes`;
- the tests: :func:`code_cell_lines`, the measure each chapter's code is held to.

Paths are relative to the ``book/`` folder the chapters run in. Nothing here recomputes a
study row: the results come from :func:`breastlib.booktools.data.book_results`, which
reuses the committed rows under ``book/data/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from breastlib.booktools.data import (
    BOOK_METHODS,
    BUILDS,
    BookBuild,
    book_cohort,
    book_results,
    current_build,
)
from breastlib.booktools.figures import (
    ENCODER_METHODS,
    GROUP_TRE,
    METRICS,
    comparison_volumes,
    distributions,
    landmark_group_table,
    primary_metric,
    provenance,
    ran_rows,
    ranked_by,
    summary_table,
    task_means,
    verdict_counts,
)
from breastlib.booktools.study_words import delivered_error, method_on_pairs_words
from breastlib.intensity import normalise_intensity
from breastlib.viz.panels import Window, draw_slice, view_grid

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

    from breastlib.phantom.anatomy import Anatomy
    from breastlib.phantom.pair import Pair
    from breastlib.register.pipeline import RegistrationResult
    from breastlib.volume import Volume

#: Most lines of code a chapter's cells may hold together (the method chapter aside).
CODE_LINE_LIMIT = 40
#: First line of the generated Colab set-up cell (:mod:`breastlib.booktools.notebooks`).
SETUP_MARKER = "# Colab set-up (breastlib.booktools)"
#: The benchmark records the performance appendix reads.
BENCHMARK_RESULTS = Path("../benchmarks/results")

_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_CELL_OPTION = re.compile(r"^:[\w-]+:")


def _display(figure: matplotlib.figure.Figure) -> None:
    """Show a figure as an output of the running cell, then close it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(figure)
    plt.close(figure)


# --- the measure: code per chapter ------------------------------------------------------


def code_cell_lines(text: str) -> int:
    """Lines of code in a MyST notebook chapter's code cells.

    Counts the non-blank lines of every ``{code-cell}`` block, comments included, except
    the generated Colab set-up cell and each cell's options (``:option:`` lines or a
    ``---`` YAML block).

    Parameters
    ----------
    text
        The chapter's markdown (``book/NAME.md``).
    """
    total = 0
    for cell in _CODE_CELL.finditer(text):
        lines = cell.group(1).splitlines()
        stripped = [line.strip() for line in lines]
        if stripped[:1] == ["---"] and "---" in stripped[1:]:
            lines = lines[stripped.index("---", 1) + 1:]  # a YAML block of cell options
        while lines and _CELL_OPTION.match(lines[0]):
            lines.pop(0)
        if lines and lines[0].startswith(SETUP_MARKER):
            continue
        total += sum(1 for line in lines if line.strip())
    return total


# --- every task's results: the introduction and the results chapter -----------------


class StudyTables(NamedTuple):
    """Every task's study rows of one build, concatenated in task order."""

    #: Every row as the study wrote it (``failed`` rows too, plain method names): what
    #: :func:`~breastlib.booktools.figures.provenance` and the statistics read.
    rows: pd.DataFrame
    #: The rows that ran, with method labels (``sam (random)``): what tables and
    #: figures show (:func:`~breastlib.booktools.figures.ran_rows`).
    ran: pd.DataFrame


def study_results(build: BookBuild | None = None, *, compute: bool = True) -> StudyTables:
    """Concatenate every task's results, keep the rows that ran, add method labels.

    Parameters
    ----------
    build
        The book build; default :func:`~breastlib.booktools.data.current_build`.
    compute
        ``True``: :func:`~breastlib.booktools.data.book_results` per task (reuses the
        recorded rows, computes only what is missing). ``False``: read the build's
        committed ``results.csv`` files only, skipping tasks that have none (the tables
        are empty when no task has one).
    """
    from breastlib.study.run import RESULT_COLUMNS

    build = build or current_build()
    tables = []
    for task in build.pairs:
        if compute:
            tables.append(book_results(task, build=build)[1])
        elif (path := build.results_root(task) / "results.csv").is_file():
            tables.append(pd.read_csv(path))
    rows = (pd.concat(tables, ignore_index=True) if tables
            else pd.DataFrame(columns=RESULT_COLUMNS))
    return StudyTables(rows, ran_rows(rows))


def build_note(study: StudyTables, build: BookBuild | None = None) -> str:
    """Two lines: the build (phantom size, profile, devices) and its pretrained encoders.

    Parameters
    ----------
    study
        From :func:`study_results`.
    build
        The book build; default :func:`~breastlib.booktools.data.current_build`.
    """
    build = build or current_build()
    ran = study.ran
    encoders = ran[ran["method"].str.split(" ").str[0].isin(ENCODER_METHODS)]
    pretrained = sorted(set(encoders.loc[encoders["weights"] == "pretrained", "method"]))
    devices = ", ".join(sorted(set(study.rows["device"].dropna())))
    return (f"build '{build.name}': {build.size} phantoms, '{build.profile}' profile, "
            f"computed on {devices}.\npretrained encoders: "
            + (", ".join(pretrained) if pretrained else
               "none (no checkpoint was in the weights cache; every encoder ran with random "
               "weights)"))


def show_full_build(build: BookBuild | None = None) -> pd.DataFrame | None:
    """Say whether a full-resolution study is committed; if so, print its provenance and
    return its means per method and task (:func:`~breastlib.booktools.figures.task_means`).

    Parameters
    ----------
    build
        The build this page is; default :func:`~breastlib.booktools.data.current_build`.
    """
    if (build or current_build()).name == "full":
        print("This page is the full build: the tables above are the full-resolution ones.")
        return None
    full = study_results(BUILDS["full"], compute=False)
    if full.rows.empty:
        print("No full-resolution study is committed yet: it needs pretrained weights and a "
              "GPU (hours at the paper's settings); the tables above are the small build's.")
        return None
    print(provenance(full.rows, size="full"))
    return task_means(full.ran)


# --- a task chapter ------------------------------------------------------------------


def highlights(summary: pd.DataFrame) -> str:
    """Three lines on a task's summary table: the best method by the primary metric (the
    dense error where known, else TRE), the best FGT overlap, and the flagged methods.

    Parameters
    ----------
    summary
        From :func:`~breastlib.booktools.figures.summary_table`.
    """
    if METRICS["field_error_mean_mm"] in summary:
        primary = METRICS["field_error_mean_mm"]
        before = (f"{summary.loc['identity', primary]:.2f} mm with no registration"
                  if "identity" in summary.index else None)
        name = "dense error"
    else:
        primary = METRICS["tre_mean_after_mm"]
        before = None
        name = "landmark error"
    best = summary[primary].idxmin()
    if before is None and "TRE before (mm)" in summary:
        before = f"{summary.loc[best, 'TRE before (mm)']:.2f} mm before"
    best_fgt = summary["Dice FGT"].idxmax()
    flagged = summary.get("flagged", pd.Series("", index=summary.index)).fillna("")
    flagged = [f"{method} ({flags})" for method, flags in flagged.items() if flags]
    return (f"Lowest {name}: {best} ({summary.loc[best, primary]:.2f} mm"
            + (f", against {before}" if before else "") + ").\n"
            f"Best FGT overlap: {best_fgt} (Dice {summary.loc[best_fgt, 'Dice FGT']:.2f}).\n"
            f"Flagged (F folded, W worse than no registration): "
            f"{'; '.join(flagged) if flagged else 'none'}")


@dataclass(frozen=True)
class TaskChapter:
    """One task's results and the sections its chapter shows, in page order.

    Build it with :func:`task_chapter`; each method renders one section of the chapter.
    """

    task: str
    #: The cohort's ``manifest.csv``.
    manifest: Path
    #: The study folder (``rows/``, ``previews/``, ``results.csv``).
    results_dir: Path
    #: The task's study table.
    results: pd.DataFrame
    build: BookBuild

    def provenance(self) -> str:
        """What ran on what (:func:`~breastlib.booktools.figures.provenance`)."""
        return provenance(self.results, size=self.build.size)

    def show_browser(self) -> None:
        """Every method's warped image and difference on the cohort's first pair, in a
        slice browser with a static fallback (three slices a row); the slider counts the
        volume's own slices, the differences carry a colour bar."""
        from breastlib.viz.interactive import show_slice_browser

        view = comparison_volumes(self.manifest, self.results_dir, self.results)
        show_slice_browser(view["volumes"], view["spacing"], windows=view["windows"],
                           colormaps=view["colormaps"], units=view["units"],
                           slice_numbers=view["slice_numbers"],
                           n_slices_total=view["n_slices_total"], n_static=3,
                           image_format="jpeg", title=f"{self.task}: pair {view['pair_id']}")

    def show_comparison(self) -> None:
        """Every method at the same slice of the cohort's first pair, side by side: the
        fixed image first, one slider for every panel, buttons switching every panel
        between warped image, difference, checkerboard and Jacobian; a static grid
        beneath for readers without JavaScript."""
        from breastlib.booktools.compare import comparison_grid_inputs
        from breastlib.viz.compare import show_comparison_grid

        show_comparison_grid(**comparison_grid_inputs(self.manifest, self.results_dir,
                                                      self.results))

    def show_comparison_explorer(self) -> Any:
        """The live side-by-side grid (a short list of methods registered on the spot);
        in the static build a note. Returns the explorer, ``None`` when static."""
        from breastlib.viz.live_compare import show_comparison_explorer

        cohorts = {task: partial(book_cohort, task, build=self.build)
                   for task in self.build.pairs}
        return show_comparison_explorer(cohorts, task=self.task, profile=self.build.profile,
                                        methods=("identity", "affine", "mind", "sam",
                                                 "dinov2"))

    def show_explorer(self) -> Any:
        """The live explorer (every task of the build, this one first); in the static
        build a note. Returns the explorer, ``None`` when static."""
        from breastlib.viz.live import show_explorer

        cohorts = {task: partial(book_cohort, task, build=self.build)
                   for task in self.build.pairs}
        return show_explorer(cohorts, task=self.task, methods=BOOK_METHODS,
                             profile=self.build.profile)

    def summary(self) -> pd.DataFrame:
        """Means per method (:func:`~breastlib.booktools.figures.summary_table`)."""
        return summary_table(self.results)

    def ranked_by(self) -> str:
        """Which metric the tables rank by, and the flags
        (:func:`~breastlib.booktools.figures.ranked_by`)."""
        return ranked_by(self.results)

    def by_landmark_group(self) -> pd.DataFrame:
        """Mean TRE per method and landmark group
        (:func:`~breastlib.booktools.figures.landmark_group_table`)."""
        return landmark_group_table(self.results)

    def show_distributions(self) -> None:
        """Per-method distributions of the primary metric, TRE and Dice, coloured by verdict
        (:func:`~breastlib.booktools.figures.distributions`)."""
        _display(distributions(self.results))

    def highlights(self) -> str:
        """The best methods and those worse than none (:func:`highlights`)."""
        return highlights(self.summary())

    def random_encoders_in_words(self) -> str:
        """What the random-weight encoders did on this task (:func:`random_encoder_words`)."""
        return random_encoder_words(self.results)

    def method_in_words(self, method: str) -> str:
        """One sentence on ``method``'s rows of this task against no registration's
        (:func:`breastlib.booktools.study_words.method_on_pairs_words`)."""
        return method_on_pairs_words(self.results, method)

    def lesion_split(self) -> pd.DataFrame:
        """Per method, the lesion pairs beside their matched control pairs (same subject
        and motion, no lesion; the manifest's ``has_lesion``): mean dense error (or TRE
        where no true field is known) on each, their difference, breast Dice on each, and
        the lesion's own Dice (lesion pairs only), ranked by the error on lesion pairs.
        A positive difference means the lesion made the registration worse.
        """
        cohort = pd.read_csv(self.manifest)[["pair_id", "has_lesion"]]
        ok = ran_rows(self.results).merge(cohort, on="pair_id", how="left")
        metric = primary_metric(ok)
        label = "dense error" if metric == "field_error_mean_mm" else "TRE"
        ok["group"] = np.where(ok["has_lesion"].astype(bool), "lesion", "control")
        means = ok.pivot_table(index="method", columns="group",
                               values=[metric, "dice_breast"], aggfunc="mean")
        table = pd.DataFrame(index=means.index)
        for group in ("lesion", "control"):
            if (metric, group) in means:
                table[f"{label}, {group} pairs (mm)"] = means[(metric, group)]
        if len(table.columns) == 2:
            table[f"{label} difference (mm)"] = table.iloc[:, 0] - table.iloc[:, 1]
        for group in ("lesion", "control"):
            if ("dice_breast", group) in means:
                table[f"Dice breast, {group} pairs"] = means[("dice_breast", group)]
        lesion_rows = ok[ok["group"] == "lesion"]
        if "dice_lesion" in lesion_rows and lesion_rows["dice_lesion"].notna().any():
            table["Dice lesion"] = lesion_rows.groupby("method")["dice_lesion"].mean()
        if ("field_error_lesion_mm" in lesion_rows
                and lesion_rows["field_error_lesion_mm"].notna().any()):
            table["dense error near the lesion (mm)"] = (
                lesion_rows.groupby("method")["field_error_lesion_mm"].mean())
        return table.sort_values(table.columns[0]).round(2)


def random_encoder_words(results: pd.DataFrame) -> str:
    """One paragraph (Markdown) on the random-weight encoders of one task's rows: their own
    results (the Adam stage) per architecture over pairs and seeds, against the affine start,
    no registration and MIND, and how often the stage guard would have kept an earlier stage
    (with what that delivers). Empty when no encoder ran with random weights."""
    ok = results[results["status"] == "ok"]
    metric = "field_error_mean_mm"
    encoders = ok[ok["weights"].astype(str).eq("random")]
    if encoders.empty or metric not in ok:
        return ""
    means = ok[~ok["weights"].astype(str).eq("random")].groupby("method")[metric].mean()
    per_arch = encoders.groupby("method")[metric].mean().sort_values()
    seeds = pd.to_numeric(encoders.get("seed", pd.Series(0, index=encoders.index)),
                          errors="coerce").fillna(0)
    kept = encoders["stage_kept"].astype(str).isin(["identity", "initial", "convex"])
    delivered = delivered_error(encoders)
    archs = ", ".join(f"{m} {v:.1f} mm" for m, v in per_arch.items())
    reference = ", ".join(f"{v:.1f} mm {label}" for key, label in (
        ("affine", "after the affine start alone"), ("identity", "with no registration"),
        ("mind", "with MIND")) if (v := means.get(key)) is not None and pd.notna(v))
    n_seeds = seeds.nunique()
    labels = {"folded": "folded beyond the limit",
              "worse_than_identity": "ended worse than no registration"}
    flags = [f"{'all' if n == len(encoders) else n} {labels[key]}"
             for key, n in verdict_counts(encoders).items() if n]
    flagged = (f" Of those {len(encoders)} fields, {' and '.join(flags)}."
               if flags else "")
    return (f"In this build the encoders ran with random weights ({encoders['pair_id'].nunique()} "
            f"pairs, {n_seeds} seed{'s' if n_seeds != 1 else ''} each). Their own results, "
            f"the field Adam reached from their features, ended on average {archs} from the "
            f"true deformation, against {reference}.{flagged} The stage guard would have "
            f"kept an earlier stage on {int(kept.sum())} of their {len(encoders)} rows; "
            f"what breastlib delivers with the guard averages {delivered:.1f} mm.")


def task_chapter(task: str, *, build: BookBuild | None = None) -> TaskChapter:
    """The results of ``task`` (computing only missing rows) and its chapter's sections.

    Parameters
    ----------
    task
        ``longitudinal``, ``sequence``, ``modality`` or ``lesion``.
    build
        The book build; default :func:`~breastlib.booktools.data.current_build`.
    """
    build = build or current_build()
    manifest, results = book_results(task, build=build)
    return TaskChapter(task, Path(manifest), build.results_root(task), results, build)


# --- the cohort chapter ------------------------------------------------------------------

#: Column titles of :func:`contrast_figure`, by contrast.
CONTRAST_TITLES = {"t1": "T1 (no fat sat)", "t1fs": "T1 fat-sat pre",
                   "post": "early post-contrast", "sub": "subtraction", "t2": "T2-weighted",
                   "ct": "CT (HU)"}
#: Display window of CT images in HU (soft tissue and lung edges).
CT_WINDOW: Window = (-200.0, 250.0)


def subject_slices(labels: Volume, anatomy: Anatomy) -> dict[str, int]:
    """Slices through a phantom subject's features: the axial slice through the lesion
    centre, the coronal slice 10 mm anterior of the grid's origin plane (through the
    breasts), the sagittal slice through the patient's left nipple.

    Returns
    -------
    dict
        View -> slice index along its normal axis.
    """
    grid = labels.grid
    subject = anatomy.subject

    def index(point: np.ndarray, axis: int) -> int:
        return int(np.rint(grid.world_to_index(np.asarray(point, dtype=float)[None])[0, axis]))

    return {"axial": index(subject.lesion.centre, 2),
            "coronal": index([0.0, 10.0, 0.0], 1),
            "sagittal": index(subject.breasts[1].nipple, 0)}


def contrast_figure(images: Mapping[str, Volume], labels: Volume, anatomy: Anatomy
                    ) -> matplotlib.figure.Figure:
    """Every contrast of one subject and its label map, in three views
    (:func:`subject_slices`): MRI windowed to its 1st-99.5th percentile, CT to
    -200...250 HU, labels in ``tab20``.

    Parameters
    ----------
    images, labels, anatomy
        From :func:`breastlib.phantom.render_subject`.
    """
    volumes = {CONTRAST_TITLES.get(name, name): image.array for name, image in images.items()}
    windows = {CONTRAST_TITLES.get(name, name): CT_WINDOW if name == "ct" else
               tuple(float(v) for v in np.percentile(image.array, [1, 99.5]))
               for name, image in images.items()}
    volumes["labels"], windows["labels"] = labels.array, (0.0, 19.0)
    return view_grid(volumes, labels.spacing, index=subject_slices(labels, anatomy),
                     windows=windows, colormaps={"labels": "tab20"})


def fat_fgt_ratios(images: Mapping[str, Volume], labels: Volume,
                   contrasts: Iterable[str] = ("t1", "t2", "t1fs")) -> dict[str, float]:
    """Median fat signal over median FGT signal per contrast, in the breasts.

    Voxels count when they lie in the anterior half of the field of view and one voxel
    inside their tissue (eroded masks), so partial volume does not dilute the ratio.

    Returns
    -------
    dict
        Contrast -> ratio, rounded to 2 decimals.
    """
    from scipy.ndimage import binary_erosion

    from breastlib.phantom import LABELS

    front = np.zeros(labels.shape, dtype=bool)
    front[:, labels.shape[1] // 2:, :] = True
    fat = binary_erosion(labels.array == LABELS["fat"]) & front
    fgt = binary_erosion(labels.array == LABELS["fgt"]) & front
    return {name: round(float(np.median(images[name].array[fat])
                              / np.median(images[name].array[fgt])), 2)
            for name in contrasts}


def ground_truth_figure(tasks: Iterable[str] | None = None, *, size: str = "small",
                        seed: int = 1) -> matplotlib.figure.Figure:
    """One pair per task with its ground truth: fixed, moving, moving warped by the true
    field, and ``|u|`` in mm (axial centre slices; the moving image's slice is the one
    through the same world point). The first panel of a row names the task, its landmark
    count, the landmark error before registration and the 95th percentile of ``|u|``.

    Parameters
    ----------
    tasks
        Default every study task (:data:`breastlib.phantom.TASKS`).
    size, seed
        Passed to :func:`breastlib.phantom.make_pair`.
    """
    import matplotlib.pyplot as plt

    from breastlib.phantom import TASKS, make_pair

    tasks = list(TASKS if tasks is None else tasks)
    figure, axes = plt.subplots(len(tasks), 4, figsize=(11, 2.9 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        pair = make_pair(task, size, seed=seed)
        k = pair.fixed.shape[2] // 2
        km = int(np.rint(pair.moving.grid.world_to_index(
            pair.fixed.grid.index_to_world(np.array([[0, 0, k]])))[0, 2]))
        ct = CT_WINDOW if pair.info["moving_sequence"] == "ct" else None
        magnitude = pair.displacement.magnitude_mm()
        panels = [
            (pair.fixed.array, pair.fixed.spacing, k, None,
             f"fixed: {pair.info['fixed_sequence']}"),
            (pair.moving.array, pair.moving.spacing, km, ct,
             f"moving: {pair.info['moving_sequence']}"),
            (pair.displacement.warp(pair.moving).array, pair.fixed.spacing, k, ct,
             "moving warped by ground truth"),
        ]
        for col, (volume, spacing, index, window, title) in enumerate(panels):
            draw_slice(axes[row, col], volume, spacing, index=index, window=window,
                       title=title)
        shown = draw_slice(axes[row, 3], magnitude, pair.fixed.spacing, index=k,
                           colormap="magma", title="|u| (mm)",
                           window=(float(magnitude[:, :, k].min()),
                                   float(magnitude[:, :, k].max())))
        figure.colorbar(shown, ax=axes[row, 3], fraction=0.046)
        tre = np.linalg.norm(pair.moving_landmarks - pair.fixed_landmarks, axis=1).mean()
        axes[row, 0].text(0.016, 0.94, f"{task}\n{len(pair.landmark_kinds)} landmarks, "
                          f"TRE before {tre:.1f} mm\np95 |u| {pair.info['magnitude_mm']:.1f} mm",
                          color="yellow", fontsize=8, va="top", transform=axes[row, 0].transAxes)
    for ax in axes.flat:
        ax.set_axis_off()
    figure.tight_layout()
    return figure


# --- the method chapter -----------------------------------------------------------------


def before_after_volumes(fixed: Volume, moving: Volume, warped: Volume,
                         jacobian: np.ndarray) -> dict[str, dict[str, Any]]:
    """A registered pair as volumes to compare, with shared display windows.

    Parameters
    ----------
    fixed, moving, warped
        The pair and the moving image warped onto the fixed grid; a ``moving`` image on
        another grid is resampled onto the fixed one with no transform (through world
        coordinates, as "before registration" means everywhere in the book); intensities
        are normalised to ``[0, 1]`` here.
    jacobian
        ``(X, Y, Z)`` Jacobian determinant of the estimated deformation.

    Returns
    -------
    dict
        ``volumes`` (title -> ``(X, Y, Z)`` array: the three images, both absolute
        differences, the Jacobian), ``windows`` (one scale for the images, 0-0.5 for both
        differences, 0-2 for the Jacobian), ``colormaps`` and ``units`` (colour-bar labels):
        keywords for
        :func:`breastlib.viz.panels.view_grid` and
        :func:`breastlib.viz.interactive.show_slice_browser`.
    """
    if not moving.grid.same_as(fixed.grid):
        moving = moving.resample_to(fixed.grid)
    f, m, w = (normalise_intensity(v.array) for v in (fixed, moving, warped))
    volumes = {"fixed": f, "moving": m, "warped moving": w,
               "|fixed - moving| (before)": np.abs(f - m),
               "|fixed - warped| (after)": np.abs(f - w),
               "Jacobian determinant": np.asarray(jacobian)}
    windows = {name: (0.0, 1.0) for name in ("fixed", "moving", "warped moving")}
    windows |= {"|fixed - moving| (before)": (0.0, 0.5),
                "|fixed - warped| (after)": (0.0, 0.5), "Jacobian determinant": (0.0, 2.0)}
    colormaps = {"|fixed - moving| (before)": "magma", "|fixed - warped| (after)": "magma",
                 "Jacobian determinant": "PiYG"}
    difference = "normalised intensity (0-1)"
    units = {"|fixed - moving| (before)": difference, "|fixed - warped| (after)": difference,
             "Jacobian determinant": "unitless; 1 = volume kept, <= 0 folded"}
    return {"volumes": volumes, "windows": windows, "colormaps": colormaps, "units": units}


def encoders_fit(min_gib: float = 3.0) -> bool:
    """Whether this machine has the memory to run the foundation encoders here (up to
    about 2.5 GB on a small pair); when not (Binder gives 1-2 GB), print what runs instead.
    """
    from breastlib.device import memory_limit_gib

    if memory_limit_gib() >= min_gib:
        return True
    print(f"Only {memory_limit_gib():.1f} GiB of memory here (Binder?): the encoder cells "
          "run MIND only; open this chapter in Colab or locally to see the encoders.")
    return False


def feature_images(fixed: Volume, moving: Volume, encoders: Sequence[str] = (), *,
                   index: int | None = None) -> dict[str, np.ndarray]:
    """What each method's features look like on the fixed image's axial slice ``index``.

    The fixed image itself (grey), MIND-SSC (channels 0, 4 and 8 of 12) and each encoder's
    first three PCA components (weights: pretrained when in the cache, else random), as
    :func:`breastlib.viz.panels.as_rgb` colour slices for
    :func:`breastlib.viz.panels.image_row`.

    Parameters
    ----------
    fixed, moving
        The pair (``moving`` is resampled onto the fixed grid).
    encoders
        Encoder names (``sam``, ``dinov2``, ...).
    index
        Axial slice; default the centre.

    Returns
    -------
    dict
        Title (the encoder's label and input size) -> ``(H, W)`` or ``(H, W, 3)`` slice.
    """
    import torch

    from breastlib.encoders import weights_setting
    from breastlib.encoders.mind import mind_ssc
    from breastlib.features import feature_pair
    from breastlib.viz.panels import as_rgb
    from breastlib.viz.slices import orthogonal_slice

    fixed_norm = fixed.with_array(normalise_intensity(fixed.array))
    moving_norm = fixed.with_array(normalise_intensity(moving.resample_to(fixed).array))
    index = fixed.shape[2] // 2 if index is None else index
    spacing = fixed.spacing
    images = {"fixed": orthogonal_slice(fixed_norm.array, spacing, "axial", index)[0]}
    mind = mind_ssc(torch.from_numpy(fixed_norm.array)[None, None])[0, [0, 4, 8]].numpy()
    images["MIND-SSC (3 of 12 channels)"] = as_rgb(mind, spacing, index=index)
    for name in encoders:
        weights = weights_setting(name, "auto")  # pretrained if in the cache, else random
        features, _, info = feature_pair(name, fixed_norm, moving_norm, weights=weights)
        images[f"{info.get('label', name)}, {info['input_size']} px"] = as_rgb(
            features.cpu().numpy(), spacing, index=index)
    return images


def stage_table(runs: Mapping[str, RegistrationResult], pair: Pair, mask: np.ndarray
                ) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Dense error, landmark error, folding and time of each run after the convex step
    and at the end (after Adam, or the stage the guard kept instead, named in the row).

    Parameters
    ----------
    runs
        Label -> a result of :func:`breastlib.register.register_pair` with
        ``keep_convex=True``.
    pair
        The registered pair, with its landmarks (mm).
    mask
        ``(X, Y, Z)`` bool, where folding is counted (the body).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by (method, stage): ``dense error (mm)`` (mean over the fixed breast),
        ``TRE mean (mm)``, ``TRE p90 (mm)``, ``folded voxels (%)``,
        ``seconds (cumulative)``; rounded to 2 decimals.
    warped : dict
        ``(method, stage)`` -> the moving image warped by that stage's field, normalised
        to ``[0, 1]``, for :func:`breastlib.viz.panels.stage_grid`.
    """
    from breastlib.evaluate.metrics import field_error_stats, jacobian_stats, tre_stats
    from breastlib.phantom.labels import LABELS
    from breastlib.tissues import breast_mask

    breast = breast_mask(pair.fixed_labels.array, LABELS)
    truth = pair.displacement.millimetres()
    rows, warped = [], {}
    for label, run in runs.items():
        final = ("convex + Adam" if run.stage in ("", "adam") else
                 f"final (guard kept '{run.stage}')")
        stages = (("convex step", run.convex_displacement, run.seconds["convex"]),
                  (final, run.displacement, run.seconds["optimisation"]))
        for stage, field, seconds in stages:
            error = tre_stats(field.to_moving(pair.fixed_landmarks), pair.moving_landmarks)
            stats = jacobian_stats(field.jacobian_determinant(), mask)
            dense = field_error_stats(field.millimetres(), truth, breast)["mean"]
            rows.append({"method": label, "stage": stage, "dense error (mm)": dense,
                         "TRE mean (mm)": error["mean"],
                         "TRE p90 (mm)": error["p90"],
                         "folded voxels (%)": stats["jac_nonpos_pct"],
                         "seconds (cumulative)": seconds})
            warped[label, stage] = normalise_intensity(field.warp(pair.moving).array)
    return pd.DataFrame(rows).set_index(["method", "stage"]).round(2), warped


def profile_comparison(path: str | os.PathLike = BENCHMARK_RESULTS / "profiles.json"
                       ) -> pd.DataFrame:
    """The ``benchmarks/bench_profiles.py`` record as (task, profile) x metric: the
    landmark error with no registration, then per profile the dense error in the breast
    (the primary metric), the landmark error, folding (% of the body), the stage the guard
    kept and the seconds; tasks in the record's order, profiles as measured (``paper`` to
    ``fast``). Prints where and how it was measured."""
    record = json.loads(Path(path).read_text())
    table = pd.DataFrame(record["rows"])
    print(f"measured on {record['machine']} ({record['torch_threads']} torch threads), "
          f"{record['date']}, with: {record['command']}")
    columns = ["tre_mean_before_mm", "field_error_mean_mm", "tre_mean_after_mm",
               "jac_nonpos_pct", "stage", "seconds"]
    shown = table.set_index(["task", "profile"])[columns]
    return shown.map(lambda v: round(v, 2) if isinstance(v, float) else v)


def correction_table() -> pd.DataFrame:
    """Every difference between the paper's released code and breastlib's ``corrected``
    profile, one row per correction (:mod:`breastlib.profiles.corrections`): what the
    released code does, what breastlib does, why, and the switch that turns it on in
    ``paper+<correction>``."""
    from breastlib.profiles import correction_table as rows

    return pd.DataFrame(rows()).set_index("correction")


def not_reproduced_table() -> pd.DataFrame:
    """What ``paper`` still does differently from the released code, one row per step:
    what the released code does, what breastlib does, from
    :data:`breastlib.profiles.corrections.NOT_REPRODUCED`."""
    from breastlib.profiles.corrections import NOT_REPRODUCED

    return pd.DataFrame(NOT_REPRODUCED, columns=["step", "released code", "breastlib"]
                        ).set_index("step")


def paper_ablation(path: str | os.PathLike = BENCHMARK_RESULTS / "paper_ablation.json", *,
                   metric: str = "field_error_mean_mm") -> pd.DataFrame:
    """The ``benchmarks/bench_paper_ablation.py`` record as profile x (task, method): one
    metric (default the dense error in the breast, mm) for ``paper``, for ``paper`` with
    each correction switched on alone, and for ``corrected`` (all of them). The row ``no
    registration`` gives the pair's landmark error before registration when ``metric`` is
    ``tre_mean_after_mm``.
    Prints where, how and at what scale it was measured, and what was not run.

    Parameters
    ----------
    path
        The JSON file the benchmark wrote.
    metric
        A column of the record's rows, e.g. ``field_error_mean_mm``, ``tre_mean_after_mm``,
        ``dice_breast`` or ``jac_nonpos_pct``.
    """
    record = json.loads(Path(path).read_text())
    table = pd.DataFrame(record["rows"])
    table = table[table["status"] == "ok"]
    if metric not in table:
        raise KeyError(f"the ablation record has no column {metric!r}")
    print(f"measured on {record['machine']}, {record['date']}, {record['scale']}; "
          f"weights: {record.get('weights', 'see the rows')}; with: {record['command']}")
    if record.get("not_run"):
        print(f"not run: {record['not_run']}")
    shown = table.pivot_table(index="profile", columns=["task", "method"], values=metric,
                              aggfunc="mean")
    corrections = sorted(p for p in shown.index if p.startswith("paper+"))
    shown = shown.reindex(["paper", *corrections, "corrected"])
    before = {"tre_mean_after_mm": "tre_mean_before_mm"}.get(metric)
    if before and before in table:
        first = table.groupby(["task", "method"])[before].first()
        shown = pd.concat([first.to_frame("no registration").T, shown])
    return shown.round(2)


def mind_floor_comparison(path: str | os.PathLike = BENCHMARK_RESULTS / "mind_floor.json"
                          ) -> pd.DataFrame:
    """The ``benchmarks/bench_mind_floor.py`` record as task x floor: dense field error,
    landmark error, breast Dice, folding and verdict, with and without MIND's background
    floor. Prints where and how it was measured. (The floor costs one element-wise
    operation per image; the record's seconds were not taken on an idle machine, so they
    are not shown.)"""
    record = json.loads(Path(path).read_text())
    table = pd.DataFrame(record["rows"])
    print(f"measured on {record['machine']} ({record['torch_threads']} torch threads), "
          f"{record['date']}, with: {record['command']}")
    columns = ["field_error_mean_mm", "tre_mean_after_mm", "dice_breast", "jac_nonpos_pct",
               "verdict"]
    shown = table.set_index(["task", "floor"])[columns]
    shown.insert(0, "field_error_before_mm", table.set_index(["task", "floor"])[
        "field_error_mean_before_mm"])
    return shown.round(2)


def fix_comparison(path: str | os.PathLike = BENCHMARK_RESULTS / "fixes.json"
                   ) -> pd.DataFrame:
    """The ``benchmarks/bench_fixes.py`` record as (task, method) x variant: the dense field
    error (mm; with no registration first), marked ``F`` where the field folded and ``W``
    where it ended worse than no registration (:data:`~breastlib.booktools.figures.
    FLAG_MARKS`), then the seconds each variant took. Prints where and how it was
    measured."""
    from breastlib.booktools.figures import FLAG_MARKS

    record = json.loads(Path(path).read_text())
    table = pd.DataFrame(record["rows"])
    print(f"measured on {record['machine']} ({record['torch_threads']} torch threads), "
          f"{record['date']}, weights {record['weights']}, with: {record['command']}")
    variants = list(dict.fromkeys(table["variant"]))
    table["cell"] = [f"{dense:.1f}" + (f" {FLAG_MARKS[v]}" if v in FLAG_MARKS else "")
                     for dense, v in zip(table["field_error_mean_mm"], table["verdict"],
                                         strict=True)]
    keys = ["task", "method"]
    dense = table.pivot(index=keys, columns="variant", values="cell")[variants]
    dense.insert(0, "no registration",
                 table.groupby(keys, sort=False)["field_error_mean_before_mm"].first()
                 .map("{:.1f}".format))
    seconds = table.pivot(index=keys, columns="variant", values="seconds")[variants]
    order = list(dict.fromkeys(zip(table["task"], table["method"], strict=True)))
    return pd.concat({"dense error (mm)": dense, "seconds": seconds}, axis=1).loc[order]


def error_map(ax: Any, pair: Pair, estimate: Any, *, index: int | None = None,
              vmax: float = 20.0, title: str | None = None) -> Any:
    """One axial slice of the fixed image with the dense error ``|u - u_true|`` (mm) over
    the fixed breast and the landmarks within one slice of it, each coloured by its own
    landmark error on the same scale; radiological view (patient's right on the left).

    Parameters
    ----------
    ax
        Matplotlib axes.
    pair
        A phantom pair (fixed image, labels, landmarks and true field).
    estimate
        The registration's :class:`~breastlib.displacement.Displacement` on the fixed grid.
    index
        Axial slice; default the slice with the most breast voxels.
    vmax
        Top of the colour scale (mm).
    title
        Panel title; default the breast's mean dense error and the mean TRE.

    Returns
    -------
    matplotlib.image.AxesImage
        The error overlay, for a colour bar.
    """
    from breastlib.evaluate.pair import within_moving_view
    from breastlib.phantom.labels import LABELS
    from breastlib.tissues import breast_mask
    from breastlib.viz.slices import orthogonal_slice

    fixed = pair.fixed
    breast = breast_mask(pair.fixed_labels.array, LABELS)
    # Measured where the study measures it (evaluate.pair.field_error_region).
    measured = within_moving_view(breast, pair.displacement, pair.moving.grid)
    error = np.linalg.norm(estimate.millimetres() - pair.displacement.millimetres(), axis=0)
    if index is None:
        index = int(np.argmax(breast.sum(axis=(0, 1))))
    spacing = np.asarray(fixed.spacing, dtype=float)
    draw_slice(ax, normalise_intensity(fixed.array), spacing, view="axial", index=index,
               window=(0.0, 1.0))
    shown = np.where(measured, error, np.nan)
    image, extent = orthogonal_slice(shown, spacing, "axial", index)
    overlay = ax.imshow(image, origin="lower", extent=extent, cmap="magma", vmin=0.0,
                        vmax=vmax, alpha=0.85, interpolation="nearest")
    moved = estimate.to_moving(pair.fixed_landmarks)
    tre = np.linalg.norm(moved - pair.moving_landmarks, axis=1)
    voxels = fixed.grid.world_to_index(pair.fixed_landmarks)
    near = np.abs(voxels[:, 2] - index) <= 1.0
    width = fixed.shape[0] * spacing[0]
    ax.scatter(width - (voxels[near, 0] + 0.5) * spacing[0], (voxels[near, 1] + 0.5)
               * spacing[1], c=tre[near], cmap="magma", vmin=0.0, vmax=vmax, s=40,
               edgecolors="cyan", linewidths=1.2)
    ax.set_title(title or f"dense error {error[measured].mean():.1f} mm (breast), "
                 f"TRE {tre.mean():.1f} mm ({len(tre)} landmarks)", fontsize=9)
    return overlay


def error_maps(cases: dict[str, tuple[Pair, Any]], *, vmax: float = 20.0
               ) -> matplotlib.figure.Figure:
    """:func:`error_map` of several registrations side by side with one colour bar.

    Parameters
    ----------
    cases
        Panel heading -> ``(pair, estimate)``.
    vmax
        Top of the shared colour scale (mm).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6 * len(cases) + 0.8, 4.6), layout="constrained")
    axes = figure.subplots(1, len(cases), squeeze=False)[0]
    overlay = None
    for ax, (heading, (case_pair, estimate)) in zip(axes, cases.items(), strict=True):
        overlay = error_map(ax, case_pair, estimate, vmax=vmax)
        ax.set_title(f"{heading}\n{ax.get_title()}", fontsize=9)
    figure.colorbar(overlay, ax=list(axes), label="|u - u_true| (mm); dots: landmark error",
                    shrink=0.85)
    return figure


# --- the performance appendix -----------------------------------------------------------


def benchmark(name: str, *, results_dir: str | os.PathLike = BENCHMARK_RESULTS
              ) -> pd.DataFrame:
    """The rows of one benchmark record (``benchmarks/results/NAME``), after printing one
    line saying how, where and when it was measured (its metadata)."""
    record = json.loads((Path(results_dir) / name).read_text())
    meta = record.get("meta") or {k: v for k, v in record.items() if k != "rows"}
    print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in meta.items()
                                  if k != "rows" and not isinstance(v, list)))
    return pd.DataFrame(record["rows"])


def task_difficulty(rows: pd.DataFrame) -> pd.DataFrame:
    """How hard each task of the book's cohort is, from its study rows (``status == "ok"``):
    no registration against the best classical method (ANTs or elastix, lowest mean dense
    error over the task's pairs).

    Returns
    -------
    pandas.DataFrame
        One row per task: ``pairs``, identity's mean TRE and dense error (mm), the best
        classical method, its mean TRE and dense error, and its mean TRE per landmark group
        (interior, skin, chest wall, lesion; NaN where a task has no landmark of a group);
        not rounded.
    """
    ok = rows[rows["status"] == "ok"]
    out = []
    for task, part in ok.groupby("task", sort=False):
        means = part.groupby("method")[["tre_mean_after_mm", "field_error_mean_mm",
                                        *GROUP_TRE]].mean()
        classical = means.loc[[m for m in ("ants", "elastix") if m in means.index]]
        if "identity" not in means.index or classical.empty:
            continue
        best = classical["field_error_mean_mm"].idxmin()
        out.append({
            "task": task, "pairs": part["pair_id"].nunique(),
            "identity TRE (mm)": means.loc["identity", "tre_mean_after_mm"],
            "identity dense (mm)": means.loc["identity", "field_error_mean_mm"],
            "best classical": best,
            "its TRE (mm)": means.loc[best, "tre_mean_after_mm"],
            "its dense (mm)": means.loc[best, "field_error_mean_mm"],
            **{f"its TRE {group}": means.loc[best, column]
               for column, group in GROUP_TRE.items()},
        })
    return pd.DataFrame(out).set_index("task") if out else pd.DataFrame()


#: Method families of :func:`motion_error_figure`, in legend order.
MOTION_FAMILIES = {"identity": "no registration", "affine": "affine", "ants": "ANTs",
                   "elastix": "elastix", "mind": "MIND", "encoder": "encoders (random)"}


def motion_error_figure(rows: pd.DataFrame, build: BookBuild | None = None
                        ) -> matplotlib.figure.Figure:
    """The dense error of every pair against the size of its true motion (the 95th
    percentile of ``|u|`` in the breast, ``magnitude_mm`` of the cohort's manifest), one
    panel per task, one colour per method family (the encoders with random weights
    together). Reads the build's cohort manifests (:func:`book_cohort`, generated when
    missing).

    The shared axis stops at ``CLIP_OVER_BEFORE`` times the largest error with no
    registration (as in :func:`~breastlib.booktools.figures.error_by_task`), so that a
    runaway field does not flatten every other point: a point beyond it is drawn as a
    triangle on the top edge, and the panel says how many and the largest value.
    """
    from matplotlib.figure import Figure

    from breastlib.booktools.figures import CLIP_OVER_BEFORE

    build = build or current_build()
    ok = rows[rows["status"] == "ok"]
    tasks = [t for t in build.pairs if t in set(ok["task"])]
    figure = Figure(figsize=(3.3 * max(len(tasks), 1), 3.4), layout="constrained")
    axes = figure.subplots(1, max(len(tasks), 1), squeeze=False, sharey=True)[0]
    colours = dict(zip(MOTION_FAMILIES, ("#7f7f7f", "#bcbd22", "#2ca02c", "#1f77b4",
                                         "#d62728", "#9467bd"), strict=True))
    errors = pd.to_numeric(ok["field_error_mean_mm"], errors="coerce")
    before = errors[ok["method"] == "identity"]
    top = CLIP_OVER_BEFORE * float(before.max()) if before.notna().any() else np.inf
    top = top if errors.max() > top else np.inf
    for ax, task in zip(axes, tasks, strict=False):
        motion = pd.read_csv(book_cohort(task, build=build))[["pair_id", "magnitude_mm"]]
        part = ok[ok["task"] == task].merge(motion, on="pair_id")
        family = part["method"].where(part["method"].isin(MOTION_FAMILIES), "encoder")
        error = pd.to_numeric(part["field_error_mean_mm"], errors="coerce")
        for key, label in MOTION_FAMILIES.items():
            chosen, over = family == key, error > top
            ax.scatter(part.loc[chosen & ~over, "magnitude_mm"], error[chosen & ~over], s=18,
                       color=colours[key], label=label, alpha=0.8)
            ax.scatter(part.loc[chosen & over, "magnitude_mm"],
                       np.full(int((chosen & over).sum()), top), s=30, marker="^",
                       color=colours[key], alpha=0.8, clip_on=False)
        if (error > top).any():
            ax.text(0.98, 0.97, f"{int((error > top).sum())} points above, up to "
                    f"{error.max():.0f} mm", transform=ax.transAxes, ha="right", va="top",
                    fontsize=7)
        ax.set(title=task, xlabel="true motion, p95 in the breast (mm)")
    if np.isfinite(top):
        axes[0].set_ylim(0, top)
    axes[0].set_ylabel("dense error (mm)")
    handles, labels = axes[-1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=7,
                  frameon=False)
    return figure


def realism_difficulty(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean errors per task, phantom setting and method from the rows of
    ``benchmarks/bench_phantom_realism.py``: the dense error, TRE over all landmarks and per
    landmark group (interior, skin, chest wall), breast Dice and folding, rounded to 2
    decimals, with the number of pairs."""
    columns = {"field_error_mean_mm": "dense error (mm)", "tre_mean_after_mm": "TRE (mm)",
               "tre_interior_mm": "TRE interior", "tre_skin_mm": "TRE skin",
               "tre_chest_wall_mm": "TRE chest wall", "dice_breast": "breast Dice",
               "jac_nonpos_pct": "folded (%)"}
    grouped = rows.groupby(["task", "realism", "method"], sort=False)
    table = grouped[list(columns)].mean().rename(columns=columns).round(2)
    table.insert(0, "pairs", grouped.size())
    return table


#: Columns of an encoder speed table, in this order, where a record has them.
SPEED_COLUMNS = ("run", "encoder", "input_size", "tokens", "slices_per_s_batched",
                 "slices_per_s_single", "batch_speedup", "extrapolated", "peak_gpu_gb")


def encoder_speed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The speed rows of ``bench_encoders.py`` records (the memory estimates left out),
    with the columns of :data:`SPEED_COLUMNS` that they have; not rounded."""
    speed = rows.dropna(subset=["slices_per_s_single"])
    return speed[[c for c in SPEED_COLUMNS if c in speed.columns]]


def memory_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The extrapolated 512 x 512 x 160 memory rows of ``bench_encoders.py`` records (GB)."""
    memory = rows.dropna(subset=["memory_512x512x160_gb"])
    return memory[["run", "encoder", "input_size", "encoded_slices", "token_buffers_gb",
                   "activation_gb", "memory_512x512x160_gb"]]


def scaling_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``bench_scaling.py`` with every stage's seconds in a column of its own."""
    seconds = pd.json_normalize(list(rows["seconds"])).set_index(rows.index)
    return rows.drop(columns=["seconds", "device", "shape"], errors="ignore").join(seconds)


def package_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``convexadam_package.json``'s rows as task x (metric, tool): errors, overlap,
    folding and seconds of breastlib and the package side by side. With repeated runs
    (a ``repeat`` column) the seconds are each tool's fastest and the errors its first
    run's (a CPU run gives the same field every time)."""
    metrics = ["field_error_mean_mm", "tre_mean_after_mm", "dice_breast", "jac_nonpos_pct"]
    seconds = ["wall_s", "registration_s"]
    grouped = rows.groupby(["task", "tool"], sort=False)
    table = pd.concat([grouped[metrics].first(), grouped[seconds].min()], axis=1)
    return table.unstack("tool")[metrics + seconds]


def slab_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``grid_sample_slabs.json``'s rows as (profile, slabs) x stage: each stage's fastest
    seconds over the repeats, and whether every run of the profile gave the same field
    (bit for bit, by its hash)."""
    stages = [f"{name}_s" for name in STAGE_COLUMNS]
    table = rows.groupby(["profile", "slabs"], sort=False)[stages].min()
    table.columns = list(STAGE_COLUMNS)
    same = rows.groupby("profile")["field_sha1"].nunique().eq(1)
    table["same field"] = [bool(same[profile]) for profile, _ in table.index]
    return table


def work_spacing_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``work_spacing.json``'s rows as (task, grid registered on) x measure: the voxel size
    the registration ran at (``own`` voxels or blocks), each setting where the row's
    differs from `fast`'s default today (the stage cells, Adam's smoothing width, its
    regularisation and the reference cell that scales it, the body mask's ghost opening;
    "voxel-count settings" where none of those four fine-voxel rules was on, a row of
    `fast` as it is names none), and the pair's seed where it is a held-out pair rather
    than the book's; then the stage the guard kept, the dense error (mean and 95th
    percentile), the landmark error, breast Dice, folding, the registration's seconds and
    the process's peak memory (GB)."""
    from breastlib.profiles import get_profile
    from breastlib.register.initial import GHOST_OPENING_MM

    fast = get_profile("fast")
    rules = ("convex_cell_mm", "adam_cell_mm", "adam_smooth_mm", "regularisation_cell_mm",
             "ghost_opening_mm")

    def settings(row: pd.Series) -> list[str]:
        """What the row ran with where it differs from `fast` today."""
        if not any(row[name] for name in rules):
            parts = ["voxel-count settings"]  # `fast` before its fine-voxel rules
        else:
            parts = []
            cells = (row["convex_cell_mm"], row["adam_cell_mm"])
            if cells != (fast.convex_cell_mm, fast.adam_cell_mm):
                parts.append(f"cells >= {cells[0]:g} / {cells[1]:g} mm" if any(cells) else
                             f"cells of {fast.convex_grid} / {fast.adam_grid} voxels")
            if row["adam_smooth_mm"] != fast.adam_smooth_mm:
                parts.append(f"smoothing >= {row['adam_smooth_mm']:g} mm"
                             if row["adam_smooth_mm"] else f"smoothing {fast.smooth_passes} passes")
            if row["regularisation_cell_mm"] != fast.regularisation_cell_mm:
                parts.append(f"regulariser scaled to {row['regularisation_cell_mm']:g} mm cells"
                             if row["regularisation_cell_mm"] else "regulariser unscaled")
            if row["ghost_opening_mm"] != GHOST_OPENING_MM:
                parts.append(f"mask opened by {row['ghost_opening_mm']:g} mm"
                             if row["ghost_opening_mm"] else "mask unopened")
        if row["regularisation"] != fast.regularisation:
            parts.append(f"regularisation {row['regularisation']:g}")
        return parts

    def grid(row: pd.Series) -> str:
        size = " x ".join(f"{v:.2f}" for v in row["work_spacing_mm"])
        name = "; ".join([f"own voxels, {size} mm" if row["work_spacing"] == 0
                          else f"work_spacing={row['work_spacing']:g}: {size} mm",
                          *settings(row)])
        if row["seed"]:
            name += f" (held-out pair, seed {row['seed']})"
        return name

    table = pd.DataFrame({
        "task": rows["task"], "registered on": rows.apply(grid, axis=1),
        "stage kept": rows["stage"],
        "dense (mm)": rows["field_error_mean_mm"], "dense p95 (mm)": rows["field_error_p95_mm"],
        "TRE (mm)": rows["tre_mean_after_mm"], "Dice breast": rows["dice_breast"],
        "folded (%)": rows["jac_nonpos_pct"],
        "seconds": [seconds["total"] for seconds in rows["seconds"]],
        "peak (GB)": rows["peak_rss_gb"],
    })
    return table.set_index(["task", "registered on"])


def ghost_mask_figure(path: str | os.PathLike = BENCHMARK_RESULTS / "ghost_mask_slice.npz"
                      ) -> matplotlib.figure.Figure:
    """One axial slice of a full-size MR image with its body mask by threshold alone and
    with the ghost opening (``benchmarks/bench_ghost_mask.py`` keeps the slice).

    The grey window is narrow (up to a fifth of the 99.5th percentile), so that the faint
    ghosts in the air show; the tissue is saturated.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from breastlib.register.initial import GHOST_OPENING_MM
    from breastlib.viz.slices import orthogonal_slice

    data = np.load(path)
    spacing = np.array([*data["spacing_mm"], 1.0])
    image = data["image"][..., None].astype(np.float32)
    window = (0.0, 0.2 * float(np.percentile(image, 99.5)))
    figure = Figure(figsize=(11.0, 5.6), layout="constrained")  # nothing left in pyplot
    axes = figure.subplots(1, 2)
    masks = (("threshold alone", data["plain"], "#e8384f"),
             (f"opened by {GHOST_OPENING_MM:g} mm (fast's mask)", data["opened"], "#fdd835"))
    for ax, (title, mask, colour) in zip(axes, masks, strict=True):
        draw_slice(ax, image, spacing, view="axial", index=0, window=window, title=title,
                   letters=True)
        outline, extent = orthogonal_slice(mask[..., None].astype(np.float32), spacing,
                                           "axial", 0)
        ax.contour(outline, levels=[0.5], origin="lower", extent=extent, colors=colour,
                   linewidths=1.0)
    handles = [Line2D([], [], color=colour, label=f"body mask, {title}")
               for title, _, colour in masks]
    figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    figure.suptitle(f"full-size modality phantom pair, fixed T1 image, axial slice "
                    f"{int(data['slice_index'])}; narrow window to show the ghosts\n"
                    "radiological view: patient's right on the left, anterior up",
                    fontsize=10)
    return figure


def ghost_mask_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``ghost_mask.json``'s rows as (task, seed, image) x measure: the voxel size, the
    opening's half-width in voxels and the labelled body's volume, then for the mask by
    threshold alone and with the opening (a second column level) the volume outside the
    labelled body (ghosts, air; ml), the labelled body left out (ml) and the seconds."""
    columns = {
        ("voxels (mm)", ""): [" x ".join(f"{v:.2f}" for v in s) for s in rows["spacing_mm"]],
        ("opening (voxels)", ""): [" x ".join(map(str, r)) for r in rows["opening_voxels"]],
        ("body (ml)", ""): rows["body_ml"].to_numpy(),
    }
    for measure, key in (("outside body (ml)", "outside_body_ml"),
                         ("body left out (ml)", "body_left_out_ml"), ("seconds", "seconds")):
        for mask, name in (("plain", "threshold"), ("opened", "opened")):
            columns[(measure, name)] = [m[key] for m in rows[mask]]
    index = pd.MultiIndex.from_frame(rows[["task", "seed", "image"]])
    return pd.DataFrame(columns, index=index)


def benchmark_ratios(name: str, *, results_dir: str | os.PathLike = BENCHMARK_RESULTS
                     ) -> pd.DataFrame:
    """The ``ratios`` of a benchmark record (``benchmarks/results/NAME``), one row per task."""
    record = json.loads((Path(results_dir) / name).read_text())
    return pd.DataFrame(record["ratios"]).set_index("task")


def ablation_table(rows: pd.DataFrame, values: tuple[str, ...] = ("dense_mm", "tre_mm")
                   ) -> pd.DataFrame:
    """The ``convexadam`` ablation record (``convexadam_ablation.json``) as switch x
    (measure, task): each measure's mean over the record's pairs of a task (one per seed;
    a record without seeds holds one), switches in the record's order, the package's own
    field (``"the package itself"``) among them where the record holds it."""
    table = rows.pivot_table(index="switch", columns="task", values=list(values),
                             aggfunc="mean", sort=False)
    tasks = list(dict.fromkeys(rows["task"]))
    table = table.reindex(columns=pd.MultiIndex.from_product([list(values), tasks]))
    return table.loc[rows["switch"].unique()].round(2)


def ablation_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`ablation_table`'s means of the dense and landmark errors in one cell per
    switch and task, ``"dense / landmark"`` in mm to two decimals (no-break spaces):
    narrow enough for a book page where the two measures side by side are not."""
    table = ablation_table(rows)
    # no-break spaces: a cell never wraps between its two numbers
    words = table["dense_mm"].map("{:.2f}".format) + "\u00a0/\u00a0" + table["tre_mm"].map(
        "{:.2f}".format)
    words.columns.name = "dense / landmark error (mm)"
    return words


def ablation_wins(rows: pd.DataFrame, *, against: str = "the package itself",
                  value: str = "dense_mm") -> pd.DataFrame:
    """For every switch of the ``convexadam`` ablation record, on how many of each task's
    pairs its ``value`` is below ``against``'s on the same pair (lower is better for every
    measure it records but Dice), as switch x task counts "k of n"."""
    wide = rows.pivot_table(index=["task", "seed"], columns="switch", values=value,
                            sort=False)
    better = wide.lt(wide[against], axis=0).groupby(level="task", sort=False).sum()
    pairs = wide.groupby(level="task", sort=False).size()
    words = better.astype(int).astype(str).add(" of " + pairs.astype(str), axis=0)
    return words.T.loc[[s for s in rows["switch"].unique() if s != against]]


def benchmark_runs(pattern: str, *, results_dir: str | os.PathLike = BENCHMARK_RESULTS
                   ) -> pd.DataFrame:
    """Every record matching ``pattern`` (sorted by name) as one table, with a ``run``
    column naming its file (:func:`benchmark` prints each one's metadata)."""
    paths = sorted(Path(results_dir).glob(pattern))
    return pd.concat([benchmark(p.name, results_dir=results_dir).assign(run=p.stem)
                      for p in paths], ignore_index=True)


#: The stages a registration times, in pipeline order (RegistrationResult.seconds).
STAGE_COLUMNS = ("init", "features", "convex", "adam", "guard", "total")


def stage_seconds(rows: pd.DataFrame) -> pd.DataFrame:
    """Seconds of every stage per (size, profile, method), from the rows of
    ``benchmarks/bench_stages.py``: the stages, the whole process (``wall_s``), the peak
    resident memory in GB, the peak GPU memory in GB where a row ran on a GPU (the column
    is left out when none did) and, for a run that failed or was given up, why.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``size, profile, method`` in the record's order; not rounded.
    """
    table = pd.DataFrame([
        {"size": r["size"], "profile": r["profile"], "method": r["method"],
         **{s: (r["seconds"] or {}).get(s) if isinstance(r.get("seconds"), dict) else None
            for s in STAGE_COLUMNS},
         "wall_s": r["wall_s"],
         "peak_gb": r["peak_rss_mib"] / 1024 if pd.notna(r.get("peak_rss_mib")) else None,
         "peak_gpu_gb": (r["peak_gpu_mib"] / 1024 if pd.notna(r.get("peak_gpu_mib", None))
                         else None),
         "error": r.get("error") if isinstance(r.get("error"), str) else ""}
        for _, r in rows.iterrows()])
    if table["peak_gpu_gb"].isna().all():
        table = table.drop(columns="peak_gpu_gb")
    return table.set_index(["size", "profile", "method"])


def _measured_stages(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`stage_seconds` of the rows that ran without an error and that no later
    change of the profile made stale (a row's ``superseded`` says why), the last of
    repeats."""
    table = stage_seconds(rows)
    current = [not (isinstance(note, str) and note) for note in
               (rows["superseded"] if "superseded" in rows else [None] * len(rows))]
    keep = (table["error"] == "").to_numpy() & np.asarray(current, dtype=bool)
    table = table[keep]
    return table[~table.index.duplicated(keep="last")]


def gpu_speedup(cpu: pd.DataFrame, gpu: pd.DataFrame) -> pd.DataFrame:
    """CPU seconds over GPU seconds, stage by stage, for every (size, profile, method) that
    both ``bench_stages.py`` records measured without an error.

    Parameters
    ----------
    cpu, gpu
        The rows of the two records (:func:`benchmark`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``size, profile, method``; the columns of :data:`STAGE_COLUMNS` and
        ``wall_s`` (the whole process), each a ratio (> 1: the GPU was faster); not rounded.
    """
    columns = [*STAGE_COLUMNS, "wall_s"]
    on_cpu, on_gpu = _measured_stages(cpu), _measured_stages(gpu)
    shared = on_cpu.index.intersection(on_gpu.index)
    return on_cpu.loc[shared, columns].astype(float) / on_gpu.loc[shared, columns].astype(float)


def gpu_speedup_words(cpu: pd.DataFrame, gpu: pd.DataFrame) -> str:
    """The range of :func:`gpu_speedup` for the whole registration and for Adam, and the
    seconds of the registration that took the CPU longest, in a sentence."""
    speedup = gpu_speedup(cpu, gpu)
    on_cpu, on_gpu = _measured_stages(cpu), _measured_stages(gpu)
    longest = on_cpu.loc[speedup.index, "total"].astype(float).idxmax()
    size, profile, method = longest
    slow, quick = on_cpu.loc[longest], on_gpu.loc[longest]
    return (f"Over the {len(speedup)} registrations both machines ran, the GPU machine "
            f"registered {speedup['total'].min():.1f} to {speedup['total'].max():.1f} times "
            f"faster (stage `total`) and ran Adam {speedup['adam'].min():.0f} to "
            f"{speedup['adam'].max():.0f} times faster. The registration that took the CPU "
            f"longest, {method} with `{profile}` on the {size} pair, took {quick['total']:.1f} s "
            f"against {slow['total']:.0f} s ({quick['wall_s']:.0f} s against "
            f"{slow['wall_s']:.0f} s for the whole process).")


def gpu_stage_report(cpu: pd.DataFrame, gpu: pd.DataFrame) -> pd.DataFrame:
    """Show the GPU record's stage seconds (rounded to 0.01 s) and print
    :func:`gpu_speedup_words`; return :func:`gpu_speedup` rounded to 0.1."""
    from IPython.display import display

    display(stage_seconds(gpu).round(2))
    print(gpu_speedup_words(cpu, gpu))
    return gpu_speedup(cpu, gpu).round(1)


def sweep_verdict(sweep: pd.DataFrame, target: float = 1.5) -> str:
    """Per encoder, the best speed relative to one slice of a ``bench_encoders.py --sweep``
    record, and which reach ``target`` (compared as printed, to two decimals)."""
    best = best_batch_sizes(sweep)
    reached = best[best["vs_batch_1"] >= target]
    parts = "; ".join(f"{r.encoder} at {r.input_size} px {r.vs_batch_1:.2f}x (batch {r.batch})"
                      for r in best.itertuples())
    names = ", ".join(reached["encoder"]) or "none"
    return (f"best speed relative to one slice: {parts}. The {target}x target is reached by "
            f"{len(reached)} of {len(best)} encoders ({names}).")


def scaling_figure(rows: pd.DataFrame) -> matplotlib.figure.Figure:
    """Seconds per stage and peak memory against the number of voxels, per profile, from
    the rows of ``benchmarks/bench_scaling.py`` (log-log; one panel per profile and one for
    memory)."""
    from matplotlib.figure import Figure

    profiles = list(dict.fromkeys(rows["profile"]))
    figure = Figure(figsize=(4.0 * (len(profiles) + 1), 3.6), layout="constrained")
    axes = figure.subplots(1, len(profiles) + 1, squeeze=False)[0]
    # "init" is the initial alignment: most of `fast`'s time on the smaller pairs.
    stages = {"init": "init (affine start)", "features": "features", "convex": "convex",
              "adam": "adam", "guard": "guard", "total": "total"}
    for ax, profile in zip(axes, profiles, strict=False):
        part = rows[rows["profile"] == profile].sort_values("voxels")
        for stage, label in stages.items():
            seconds = part["seconds"].map(lambda s, k=stage: s.get(k, float("nan")))
            ax.loglog(part["voxels"], seconds, marker="o", label=label)
        ax.set(title=f"'{profile}' profile", xlabel="voxels of the fixed image",
               ylabel="seconds")
        ax.legend(fontsize=7)
    memory = axes[-1]
    for profile in profiles:
        part = rows[rows["profile"] == profile].sort_values("voxels")
        memory.loglog(part["voxels"], part["peak_rss_mib"] / 1024, marker="o", label=profile)
    memory.set(title="peak memory of the process", xlabel="voxels of the fixed image",
               ylabel="GiB (resident)")
    memory.legend(fontsize=7)
    return figure


def throughput_figure(measured: pd.DataFrame) -> matplotlib.figure.Figure:
    """Batched slices per second per encoder and input size (log scale), from
    ``bench_encoders.py`` rows that were measured, not extrapolated."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(data=measured, x="encoder", y="slices_per_s_batched", hue="input_size", ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel("slices per second (batched, log)")
    ax.set_title("Encoder throughput on a 2-core CPU (measured rows only)")
    return figure


def batching_verdict(measured: pd.DataFrame, target: float = 1.5) -> str:
    """Range of the measured batched / single speed-ups and whether every one reaches
    ``target``."""
    speedups = measured.dropna(subset=["batch_speedup"])
    best = speedups.loc[speedups["batch_speedup"].idxmax()]
    verdict = "met" if speedups["batch_speedup"].min() >= target else "NOT met"
    return (f"batched / single: {speedups['batch_speedup'].min():.2f}x to "
            f"{speedups['batch_speedup'].max():.2f}x over {len(speedups)} measurements "
            f"(best: {best['encoder']} at {int(best['input_size'])} px); {target}x target "
            f"{verdict}.")


def batch_sweep_figure(sweep: pd.DataFrame, target: float = 1.5,
                       title: str = "Batch size on a 2-core CPU (fast input sizes)",
                       ) -> matplotlib.figure.Figure:
    """Speed relative to one slice per forward pass, per encoder and batch size (the
    ``bench_encoders.py --sweep`` record), with the ``target`` line."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    figure, ax = plt.subplots(figsize=(8, 3.5))
    sns.lineplot(data=sweep, x="batch", y="vs_batch_1", hue="encoder", marker="o", ax=ax)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.text(1, target + 0.02, f"{target}x target", color="grey", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.5)
    ax.set_xscale("log", base=2)
    batches = sorted(int(b) for b in sweep["batch"].unique())
    ax.set_xticks(batches, labels=[str(b) for b in batches])
    ax.set_xlabel("slices per forward pass")
    ax.set_ylabel("speed relative to one slice")
    ax.set_title(title)
    return figure


def best_batch_sizes(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per encoder, the sweep row with the highest speed relative to one slice."""
    best = sweep.loc[sweep.groupby("encoder")["vs_batch_1"].idxmax()]
    return best[["encoder", "input_size", "batch", "slices_per_s", "vs_batch_1"]].round(2)
