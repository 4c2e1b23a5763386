"""The numbers cache of the real-exam chapter: the method tables (numbers only, never an
image) in a JSON file under ``book/data/real-exam/``, keyed by everything they depend on, so
that a book build recomputes them only when that key changes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from breastlib._atomic import write_text_atomic
from breastlib.booktools.real_exam import tables as _tables
from breastlib.booktools.real_exam.known import CHEST_DEPTH_MM, KNOWN_REGIMES, KNOWN_SEED
from breastlib.booktools.real_exam.loading import (
    CROP_MARGIN_MM,
    DATASET,
    SERIES,
    RealExam,
    exam_build,
)
from breastlib.booktools.real_exam.measures import (
    EDGE_PERCENTILE,
    EDGE_SIGMA_VOXELS,
    ENHANCEMENT_MADS,
    JACOBIAN_LOW,
    SKIN_BAND_MM,
)
from breastlib.booktools.real_exam.registration import WEIGHTS, registration_settings
from breastlib.booktools.real_exam.tables import EXPERIMENTS, METHODS

#: Version of the measures and tables: bump it whenever one of them changes, so that the
#: numbers cache is recomputed.
MEASURES_VERSION = "2"
#: The numbers cache of the ``small`` build, relative to the book's folder (the chapters run
#: from ``book/``); see :func:`~breastlib.booktools.real_exam.loading.exam_build`.
CACHE_PATH = Path("data") / "real-exam" / "numbers.json"
#: Columns holding text (every other column of a method table is a number).
TEXT_COLUMNS = ("stage",)


def cache_key(methods: Sequence[str] = METHODS, *, spacing_mm: float | None = None,
              profile: str | None = None) -> dict:
    """Everything the method tables depend on, as a JSON-ready dict.

    The dataset's name, pinned commit and one SHA-256 over its pinned files' checksums
    (:mod:`breastlib.datasets`), the series used, the working grid, the registration
    settings and weights (``spacing_mm`` and ``profile``: default the build's), the
    experiments, the methods, breastlib's
    :data:`~breastlib.study.run.RESULTS_VERSION` (bumped when a method's results change),
    :data:`MEASURES_VERSION`, the measures' parameters and the phantom generator's version
    and deformation effects (the known deformations are the phantom's). It needs no data:
    the checksums come from the registry.
    """
    from breastlib.datasets import get_dataset
    from breastlib.phantom.cohort import PHANTOM_VERSION
    from breastlib.phantom.realism import Realism
    from breastlib.study.run import RESULTS_VERSION

    build = exam_build()
    spacing_mm = build.spacing_mm if spacing_mm is None else spacing_mm
    dataset = get_dataset(DATASET)
    pinned = "".join(f"{f.file} {f.sha256}\n" for f in sorted(dataset.files, key=lambda f: f.file))
    key = {
        "dataset": DATASET,
        "dataset_commit": dataset.commit,
        "files": len(dataset.files),
        "files_sha256": hashlib.sha256(pinned.encode()).hexdigest(),
        "series": {name: series for name, (series, _) in SERIES.items()},
        "work_spacing_mm": float(spacing_mm),
        "crop_margin_mm": CROP_MARGIN_MM,
        "registration": registration_settings(profile),
        "weights": WEIGHTS,
        "experiments": list(EXPERIMENTS),
        "methods": list(methods),
        "results_version": RESULTS_VERSION,
        "measures_version": MEASURES_VERSION,
        "measures": {"skin_band_mm": SKIN_BAND_MM, "edge_percentile": EDGE_PERCENTILE,
                     "edge_sigma_voxels": EDGE_SIGMA_VOXELS,
                     "enhancement_mads": ENHANCEMENT_MADS, "jacobian_low": JACOBIAN_LOW,
                     "known_regimes": KNOWN_REGIMES, "known_seed": KNOWN_SEED,
                     "chest_depth_mm": CHEST_DEPTH_MM,
                     "known_deformation": Realism.default().deformation_switches()},
        "phantom_version": PHANTOM_VERSION,
    }
    return json.loads(json.dumps(key))  # tuples as lists: compares equal to a loaded key


def key_id(key: dict) -> str:
    """A short digest of a cache key (12 hex digits of SHA-256 of its sorted JSON)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _number(value: object) -> object:
    """A table cell for JSON: text as it is, numbers to 6 significant digits, NaN as null."""
    if isinstance(value, str):
        return value
    value = float(value)
    return None if not math.isfinite(value) else float(f"{value:.6g}")


def table_to_json(table: pd.DataFrame) -> dict:
    """A method table as ``{"index", "columns", "data"}`` (rows of cells)."""
    return {"index": [str(i) for i in table.index], "columns": [str(c) for c in table.columns],
            "data": [[_number(v) for v in row] for row in table.itertuples(index=False)]}


def table_from_json(data: dict) -> pd.DataFrame:
    """The inverse of :func:`table_to_json` (null back to NaN, index named ``method``)."""
    columns = {}
    for j, name in enumerate(data["columns"]):
        values = [row[j] for row in data["data"]]
        columns[name] = (values if name in TEXT_COLUMNS
                         else np.array([np.nan if v is None else v for v in values], float))
    table = pd.DataFrame(columns, index=pd.Index(data["index"], name="method"))
    return table


def machine_description() -> str:
    """What the numbers were computed on: OS, architecture, cores, torch and its device."""
    from breastlib.device import resolve_device

    device = str(resolve_device(registration_settings()["device"]))
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} on {device}")


@dataclass
class ExamNumbers:
    """The method tables and where they come from.

    Attributes
    ----------
    tables
        Experiment name -> table (:func:`method_tables`).
    key
        The :func:`cache_key` they were computed for.
    computed
        ``{"date", "machine", "seconds"}``: when (UTC, ISO 8601), on what and in how long.
    from_cache
        Whether they were read from the cache file (else computed by this call).
    path
        The cache file.
    """

    tables: dict[str, pd.DataFrame]
    key: dict
    computed: dict
    from_cache: bool
    path: Path

    @property
    def key_id(self) -> str:
        """:func:`key_id` of :attr:`key`."""
        return key_id(self.key)

    def provenance(self) -> str:
        """One line: where the numbers come from, when and on what they were computed."""
        where = (f"read from the cache {self.path}" if self.from_cache
                 else f"computed now and written to the cache {self.path}")
        return (f"Numbers {where}: computed on {self.computed.get('date', '?')}, "
                f"{self.computed.get('machine', '?')}, in "
                f"{float(self.computed.get('seconds', float('nan'))) / 60:.0f} min; "
                f"key {self.key_id}.")


def read_numbers(path: str | os.PathLike, key: dict) -> ExamNumbers | None:
    """The cached tables in ``path`` when its key equals ``key``, else ``None`` (also for a
    missing or unreadable file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        tables = {name: table_from_json(table) for name, table in data["tables"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return ExamNumbers(tables, key, data.get("computed", {}), True, path)


def write_numbers(path: str | os.PathLike, tables: dict[str, pd.DataFrame], key: dict,
                  computed: dict) -> Path:
    """Write the tables, their key and provenance to ``path`` as JSON, atomically."""
    data = {"what": "breastlib real-exam chapter: method tables (numbers only, no image)",
            "key_id": key_id(key), "key": key, "computed": computed,
            "tables": {name: table_to_json(table) for name, table in tables.items()}}
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def exam_numbers(exam: RealExam | None, *, path: str | os.PathLike | None = None,
                 methods: Sequence[str] = METHODS, spacing_mm: float | None = None,
                 progress: Callable[[str], None] | None = None) -> ExamNumbers | None:
    """The method tables: from the cache when its key matches, else computed and cached.

    Parameters
    ----------
    exam
        The exam, loaded at ``spacing_mm``; needed only to compute (``None`` when the data
        is unavailable: the cached tables are still returned when their key matches).
    path
        The cache file (default the build's, relative to ``book/``: :data:`CACHE_PATH` in the
        ``small`` build).
    methods, spacing_mm
        Part of the key (:func:`cache_key`; ``spacing_mm`` default the build's); ``methods``
        are the tables' rows.
    progress
        Passed to :func:`method_tables`.

    Returns
    -------
    ExamNumbers or None
        ``None`` when the cache does not match and there is no exam to compute from.
    """
    path = exam_build().cache_path if path is None else Path(path)
    key = cache_key(methods, spacing_mm=spacing_mm)
    cached = read_numbers(path, key)
    if cached is not None or exam is None:
        return cached
    start = time.perf_counter()
    tables = _tables.method_tables(exam, methods, progress=progress)
    computed = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": machine_description(),
                "seconds": round(time.perf_counter() - start, 1)}
    write_numbers(path, tables, key, computed)
    return ExamNumbers(tables, key, computed, False, path)

