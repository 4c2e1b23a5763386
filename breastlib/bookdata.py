"""The book's data: synthetic cohorts and their study results, computed once and reused.

Chapters call :func:`book_results`; it writes the cohort if missing (deterministic, seed
0) and runs the study, which skips every row already recorded. The committed rows under
``book/data/`` are that cache: a fresh build recomputes nothing unless the data, method,
profile or weights changed (a reader who downloads pretrained weights gets new rows for
those encoders, with no code change).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

# Pairs per task in the book's small build (the lesion task doubles them: N with a lesion
# and N matched without).
TASK_PAIRS = {"longitudinal": 2, "sequence": 2, "modality": 2, "lesion": 1}
BOOK_METHODS = ("identity", "affine", "ants", "elastix", "mind", "sam", "dinov2")


def book_results(
    task: str,
    *,
    cohort_root: str | os.PathLike,
    results_root: str | os.PathLike,
    size: str = "small",
    methods: tuple[str, ...] = BOOK_METHODS,
    weights: str = "auto",
    profile: str = "fast",
    progress: bool = False,
) -> tuple[Path, pd.DataFrame]:
    """Cohort manifest and results table of one task, computing only what is missing.

    Parameters
    ----------
    task
        ``longitudinal``, ``sequence``, ``modality`` or ``lesion``.
    cohort_root
        Folder for the generated cohort (images are regenerated, not committed).
    results_root
        Study output folder (``rows/``, ``previews/``, ``results.csv``): the cache.
    weights
        ``"auto"``: pretrained where the checkpoint is in the weights cache, else random.
    """
    from .phantom import make_cohort
    from .study import run_study

    cohort_root = Path(cohort_root)
    manifest = cohort_root / "manifest.csv"
    if not manifest.is_file():
        manifest = make_cohort(task, TASK_PAIRS[task], size=size, seed=0, out_dir=cohort_root)
    table = run_study(manifest, list(methods), out=results_root, weights=weights,
                      profile=profile, previews="first", progress=progress)
    return manifest, table
