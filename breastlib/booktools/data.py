"""The book's data: synthetic cohorts and their study results, computed once and reused.

Chapters call :func:`book_results`; it writes the cohort if missing (deterministic, seed
0) and runs the study, which skips every row already recorded. ``BREASTLIB_BOOK_BUILD``
picks the build: ``small`` (default: CI-sized phantoms, ``fast`` profile) or ``full``
(real resolution, ``corrected`` profile: the paper's scale with breastlib's
corrections; for a GPU). The committed rows under
``book/data/`` are that cache: a fresh build recomputes nothing unless the data, method,
profile or weights changed (a reader who downloads pretrained weights gets new rows for
those encoders, with no code change).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# Subjects per task in the book's small build (the lesion task doubles them: each subject
# gives a pair with a lesion and a matched pair without). With ten, a family of up to 25
# Holm-corrected Wilcoxon tests can reach p < 0.05 at all; what ten subjects can detect is
# computed in the results chapter (breastlib.evaluate.power), from the rows themselves.
TASK_PAIRS = {"longitudinal": 10, "sequence": 10, "modality": 10, "lesion": 10}
#: Seeds of every encoder with random weights: each architecture is a distribution.
RANDOM_SEEDS = (0, 1, 2)
# The paper's five encoders and its baselines.
BOOK_METHODS = ("identity", "affine", "ants", "elastix", "mind", "sam", "medsam", "sslsam",
                "dinov2", "medclip")
#: Environment variable choosing the book's build: ``small`` (default) or ``full``.
BUILD_ENV = "BREASTLIB_BOOK_BUILD"


@dataclass(frozen=True)
class BookBuild:
    """What one build of the book runs: phantom size, ConvexAdam profile, pairs per task.

    ``small`` is what CI and the default build run (about 2.7 mm voxels, the ``fast``
    profile, 10 subjects per task, 3 seeds per random-weight architecture); ``full``
    reproduces the study at real resolution with the paper's settings (``corrected``
    profile) and the same subjects and seeds (hours of GPU time). Paths are relative to
    the ``book/`` folder the chapters run in.
    """

    name: str
    size: str
    profile: str
    pairs: dict[str, int]
    #: Seeds of every encoder with random weights (one row each); other methods use 0.
    seeds: tuple[int, ...] = (0,)

    def cohort_root(self, task: str) -> Path:
        """Where the generated cohort of ``task`` lives (regenerated, not committed)."""
        return Path("../_build/cohorts") / self.name / task

    def results_root(self, task: str) -> Path:
        """The study folder of ``task`` (rows, previews, results: the committed cache)."""
        return Path("data") / self.name / task


BUILDS = {
    "small": BookBuild("small", "small", "fast", TASK_PAIRS, RANDOM_SEEDS),
    "full": BookBuild("full", "full", "corrected", dict.fromkeys(TASK_PAIRS, 10),
                      RANDOM_SEEDS),
}


def current_build() -> BookBuild:
    """The build chosen by ``BREASTLIB_BOOK_BUILD`` (``small`` when unset).

    Raises
    ------
    ValueError
        For any other value.
    """
    name = os.environ.get(BUILD_ENV, "small")
    if name not in BUILDS:
        raise ValueError(f"{BUILD_ENV} must be one of {sorted(BUILDS)}, got {name!r}")
    return BUILDS[name]


def book_cohort(task: str, *, cohort_root: str | os.PathLike | None = None,
                build: BookBuild | None = None,
                shipped: str | os.PathLike | None = None) -> Path:
    """The manifest of the book's cohort of ``task``, generating it when missing (seed 0).

    The build's committed ``cohort.csv`` (a copy of the manifest beside the study rows,
    :meth:`BookBuild.results_root`) stands for the whole cohort: when it is current, the
    manifest is written from it and only the first subject's images are generated (the
    pairs the chapters show); any other pair is made from its recipe when something
    loads it (:func:`breastlib.phantom.cohort.restore_missing_pairs`). Without it, the
    whole cohort is generated and the copy written.

    Parameters
    ----------
    task
        ``longitudinal``, ``sequence``, ``modality`` or ``lesion``.
    cohort_root
        Folder for the generated cohort; default ``build.cohort_root(task)``.
    build
        The book build (size, pairs); default :func:`current_build`.
    shipped
        The committed copy of the manifest; default ``build.results_root(task) /
        "cohort.csv"``.
    """
    from breastlib._atomic import write_text_atomic
    from breastlib.phantom import make_cohort
    from breastlib.phantom.cohort import restore_missing_pairs

    build = build or current_build()
    cohort_root = Path(cohort_root) if cohort_root is not None else build.cohort_root(task)
    manifest = cohort_root / "manifest.csv"
    shipped = Path(shipped) if shipped is not None else build.results_root(task) / "cohort.csv"
    if not (manifest.is_file() and _is_current(manifest, task, build)):
        if shipped.is_file() and _is_current(shipped, task, build):
            cohort_root.mkdir(parents=True, exist_ok=True)
            write_text_atomic(manifest, shipped.read_text())
        else:
            make_cohort(task, build.pairs[task], size=build.size, seed=0, out_dir=cohort_root)
            shipped.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(shipped, manifest.read_text())
    restore_missing_pairs(manifest, first_subject(manifest))
    return manifest


def first_subject(manifest: Path) -> list[str]:
    """Pair ids of the cohort's first subject: its first pair (the lesion task: the first
    lesion pair and its matched control), the pairs the chapters show."""
    from breastlib.evaluate.statistics import subject_id

    ids = [str(p) for p in pd.read_csv(manifest, dtype={"pair_id": str})["pair_id"]]
    return [p for p in ids if subject_id(p) == subject_id(ids[0])]


def _is_current(manifest: Path, task: str, build: BookBuild) -> bool:
    """Whether a cohort on disk is the one this code generates (same pairs, same recipes):
    a cohort left by an older phantom version is regenerated, not reused."""
    from breastlib.phantom.cohort import cohort_recipes

    try:
        recipes = list(pd.read_csv(manifest, dtype=str)["recipe"])
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        return False
    return recipes == cohort_recipes(task, build.pairs[task], build.size, seed=0)


def book_results(
    task: str,
    *,
    cohort_root: str | os.PathLike | None = None,
    results_root: str | os.PathLike | None = None,
    build: BookBuild | None = None,
    methods: tuple[str, ...] = BOOK_METHODS,
    weights: str = "auto",
    progress: bool = False,
    workers: int = 1,
) -> tuple[Path, pd.DataFrame]:
    """Cohort manifest and results table of one task, computing only what is missing.

    Parameters
    ----------
    task
        ``longitudinal``, ``sequence``, ``modality`` or ``lesion``.
    cohort_root, results_root
        The cohort folder (images are regenerated, not committed) and the study output
        folder (``rows/``, ``previews/``, ``results.csv``: the cache); default the
        build's own folders.
    build
        The book build (size, profile, pairs); default :func:`current_build`.
    weights
        ``"auto"``: random weights for every encoder (one row per seed of the build), and
        pretrained ones too for each encoder whose checkpoint is in the weights cache;
        ``"random"``, ``"pretrained"`` or a checkpoint path: that setting only.
    workers
        Rows computed in parallel (single-threaded worker processes each).
    """
    from breastlib.encoders import ENCODERS, weights_setting
    from breastlib.phantom.cohort import restore_missing_pairs
    from breastlib.study.run import plan_jobs, run_study, write_results

    build = build or current_build()
    out = Path(results_root) if results_root is not None else build.results_root(task)
    manifest = book_cohort(task, cohort_root=cohort_root, build=build,
                           shipped=out / "cohort.csv")
    # Random weights for every encoder, always (the architectures, seed by seed); with
    # weights="auto", pretrained rows too for the encoders whose checkpoint is cached, so
    # the chapters show both side by side.
    runs = [(list(methods), "random" if weights == "auto" else weights)]
    if weights == "auto":
        cached = [m for m in methods if m in ENCODERS and weights_setting(m, "auto") ==
                  "pretrained"]
        if cached:
            runs.append((cached, "pretrained"))
    # Pairs with rows still to compute are made here, one at a time, before the workers
    # start (else parallel workers could each make the same pair).
    todo = [job for names, setting in runs for job in plan_jobs(
        manifest, names, out, weights=setting, profile=build.profile, seeds=build.seeds)[0]]
    restore_missing_pairs(manifest, sorted({job.pair_id for job in todo}))
    tables = [run_study(manifest, names, out=out, weights=setting, profile=build.profile,
                        previews="first", progress=progress, seeds=build.seeds,
                        workers=workers)
              for names, setting in runs]
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if len(tables) > 1:
        write_results(table, out)  # each run wrote only its own rows
    return manifest, table
