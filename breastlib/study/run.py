"""The study runner: every method on every pair of a cohort, one tidy results table.

Each (pair, method) runs in a fresh Python process (:mod:`breastlib.study.worker`), so a
crash or a memory blow-up stays in its row and ``peak_rss_mib`` is that row's own peak.
A finished row is a JSON file under ``DIR/rows/``, written atomically by the worker;
``DIR/results.csv`` and ``DIR/results.parquet`` are regenerated from the rows after every
row. A run that is killed and restarted skips the rows it finished and loses none.

Rows are keyed by pair, method, profile, weights and seed, so the rows folder doubles as
the cache of results: asking for pretrained weights after a random-weight run computes new
rows and keeps the old ones.

An encoder with random weights is an architecture, not a model: the study runs it once per
seed of ``seeds`` (a distribution over initialisations), and encoders that share one
network with random weights (SAM, MedSAM and SSLSAM are all SAM ViT-B; MedCLIP is the
BiomedCLIP ViT-B/16) are run once per pair and seed, under the first of them listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from breastlib._atomic import atomic_path, write_text_atomic
from breastlib.encoders import weights_setting
from breastlib.errors import BreastlibError
from breastlib.landmark_groups import GROUP_TRE_COLUMNS
from breastlib.manifest import read_manifest
from breastlib.register.baselines import BASELINES

RESULT_COLUMNS = [
    "task", "pair_id", "method", "encoder", "weights", "weights_sha256", "profile", "seed",
    "field_error_mean_mm", "field_error_p95_mm", "field_error_lesion_mm",
    "dice_breast", "dice_fgt", "dice_lesion", "hd95_breast_mm", "hd95_fgt_mm",
    "tre_mean_before_mm", "tre_mean_after_mm", "tre_median_after_mm", "tre_p90_after_mm",
    *GROUP_TRE_COLUMNS,
    "jac_nonpos_pct", "sdlogj", "seconds_features", "seconds_optimisation", "peak_rss_mib",
    "seconds_total",
    "device", "versions", "params", "verdict", "stage_kept",
    "guarded_field_error_mean_mm", "guarded_tre_mean_after_mm", "status", "error",
]
#: Columns holding numbers (float64, NaN when missing); the others hold text (``str``).
NUMERIC_COLUMNS = ("seed", *RESULT_COLUMNS[RESULT_COLUMNS.index("field_error_mean_mm"):
                                            RESULT_COLUMNS.index("seconds_total") + 1],
                   "guarded_field_error_mean_mm", "guarded_tre_mean_after_mm")
# Part of every row's key. Bump it with any change that alters results (a new initial
# alignment, new profile defaults), so cached rows of the old code are never reused.
# 4: slices reach the encoders radiologically (the patient's right on the image's left).
# 5: the stage guard judges at two scales with a 10 % margin; rows gain
#    field_error_lesion_mm.
# 6: phantom version 2 (the clinical effects on); rows gain the TRE of each landmark group
#    (breastlib.landmark_groups: interior, skin, chest wall, lesion).
# 7: affine initial alignment, background masked before the features, Adam matching only
#    where the moving image has data, the guard judging the interior at full resolution;
#    the dense error counted only where the true field lands inside the moving image.
# 8: a ConvexAdam row measures the Adam stage even where the stage guard kept an earlier
#    one (columns stage_kept and guarded_*: what the guard chose and delivered); the
#    faster engine (Adam's gradient by hand, chunked convex step, affine start on
#    2 mm copies and the guard on the Adam grid for fine images), rows gain ``seed``
#    (random-weight encoders run once per seed), a phantom pair is keyed by its recipe
#    alone.
RESULTS_VERSION = "8"


@dataclass(frozen=True)
class Job:
    """One (pair, method) cell of the study grid, with everything a worker needs."""

    manifest: str
    pair_id: str
    method: str
    weights: str
    profile: str
    device: str
    seed: int
    row_path: str
    preview: bool = False
    #: Profile parameter overrides as sorted JSON (``""``: none), e.g. a smaller scale.
    overrides: str = ""

    @property
    def key(self) -> str:
        return Path(self.row_path).stem


def row_filename(pair_id: str, method: str, profile: str, weights: str, data_key: str,
                 overrides: str = "", seed: int = 0) -> str:
    """File name of a finished row: everything that changes the result is in the name
    (profile overrides, when there are any, as ``profile@<hash>``; a seed other than 0 as
    ``<weights>-seed<n>``, so that the rows of seed 0 keep the names they always had)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in weights)
    if int(seed) != 0:
        safe = f"{safe}-seed{int(seed)}"
    if overrides:
        import hashlib

        profile = f"{profile}@{hashlib.sha256(overrides.encode()).hexdigest()[:8]}"
    return f"{pair_id}__{method}__{profile}__{safe}__{data_key}__v{RESULTS_VERSION}.json"


def overrides_key(overrides: dict[str, Any] | None) -> str:
    """Profile overrides as the sorted JSON text a :class:`Job` carries (``""``: none);
    unknown parameter names are rejected here, before any job runs."""
    if not overrides:
        return ""
    from breastlib.profiles import get_profile

    get_profile("fast", **overrides)
    return json.dumps(overrides, sort_keys=True)


def pair_fingerprint(root: Path, entry: pd.Series) -> str:
    """Short hash of what a pair's images are (not of file bytes or names).

    A phantom pair (manifest column ``recipe``, see
    :func:`breastlib.phantom.cohort.pair_recipe`) is named by its recipe alone, which
    fixes how it is generated (phantom version, task, size, seed, options): regenerated
    on another CPU its voxels differ in the last bits, and its results must still be
    found, and a cohort shipped as its manifest is planned without its images. Any other
    pair is named by its voxel values and affines.
    """
    import hashlib

    import nibabel as nib
    import numpy as np

    digest = hashlib.sha256()
    recipe = entry.get("recipe")
    if isinstance(recipe, str) and recipe:
        digest.update(f"recipe:{recipe}".encode())
        return digest.hexdigest()[:12]
    for column in ("fixed_image", "moving_image"):
        path = root / str(entry[column])
        try:
            image = nib.load(str(path))
            digest.update(np.ascontiguousarray(np.asarray(image.dataobj)).tobytes())
            digest.update(np.asarray(image.affine, dtype=np.float64).tobytes())
        except Exception:  # unreadable: the worker will record the error
            digest.update(str(path).encode())
    return digest.hexdigest()[:12]


def plan_jobs(
    manifest: str | os.PathLike,
    methods: Sequence[str],
    out: str | os.PathLike,
    *,
    weights: str = "random",
    profile: str = "fast",
    device: str = "auto",
    seed: int = 0,
    retry_failed: bool = False,
    previews: str = "none",
    overrides: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
) -> tuple[list[Job], list[Path]]:
    """Split the grid into jobs still to run and rows already finished.

    ``overrides`` (profile parameters, e.g. ``{"iterations": 80}``) go into every
    ConvexAdam job and into its row's name; the classical baselines ignore them.
    ``seeds`` (default ``[seed]``) are the seeds of every encoder that runs with random
    weights, one row each; every other method runs once, with ``seed``. See
    :func:`random_weight_jobs` for encoders that share a network.

    Returns
    -------
    todo : list of Job
        Cells without a row file (and failed ones when ``retry_failed``).
    done : list of Path
        Row files of every cell of the grid that is already recorded.
    """
    table = read_manifest(manifest)
    root = Path(manifest).resolve().parent
    rows_dir = Path(out) / "rows"
    todo: list[Job] = []
    done: list[Path] = []
    changed = overrides_key(overrides)
    cells = method_cells(methods, weights, seed=seed, seeds=seeds)
    first_seed = {method: cell_seed for method, _, cell_seed in reversed(cells)}
    for index, (_, entry) in enumerate(table.iterrows()):
        pair_id = str(entry["pair_id"])
        data_key = pair_fingerprint(root, entry)
        for method, resolved, cell_seed in cells:
            own = "" if method in BASELINES else changed  # baselines keep their own
            path = rows_dir / row_filename(pair_id, method, profile, resolved, data_key, own,
                                           cell_seed)
            if path.is_file():
                status = _read_row(path).get("status")
                if not (retry_failed and status == "failed"):
                    done.append(path)
                    continue
            # One preview per method: of the first seed of a random-weight encoder.
            preview = (previews == "all" or (previews == "first" and index == 0)) and (
                cell_seed == first_seed[method])
            todo.append(Job(str(root / Path(manifest).name), pair_id, method, resolved,
                            profile, device, cell_seed, str(path.resolve()), preview, own))
    return todo, done


def method_cells(methods: Sequence[str], weights: str, *, seed: int = 0,
                 seeds: Sequence[int] | None = None) -> list[tuple[str, str, int]]:
    """The ``(method, weights, seed)`` cells a study runs on every pair, in order.

    An encoder whose weights resolve to ``"random"`` runs once per seed of ``seeds``
    (default ``[seed]``), and only the first of the listed encoders sharing one random
    network (:attr:`~breastlib.encoders.base.EncoderSpec.twin`) runs: with random weights
    ``sam``, ``medsam`` and ``sslsam`` are the same SAM ViT-B, computed once under the
    name ``sam``. Every other method (baselines, MIND, pretrained encoders) runs once with
    ``seed``.

    >>> method_cells(["mind", "sam", "medsam", "dinov2"], "random", seeds=[0, 1])
    ... # doctest: +NORMALIZE_WHITESPACE
    [('mind', 'random', 0), ('sam', 'random', 0), ('sam', 'random', 1),
     ('dinov2', 'random', 0), ('dinov2', 'random', 1)]
    """
    from breastlib.encoders import ENCODERS

    random_seeds = [int(s) for s in (seeds if seeds is not None else [seed])]
    if not random_seeds or len(set(random_seeds)) != len(random_seeds):
        raise BreastlibError(f"seeds must be distinct and at least one, got {random_seeds}")
    cells: list[tuple[str, str, int]] = []
    networks: set[str] = set()
    for method in methods:
        resolved = weights_setting(method, weights)
        spec = ENCODERS.get(method)
        if spec is None or resolved != "random":
            cells.append((method, resolved, int(seed)))
            continue
        if spec.twin in networks:
            continue
        networks.add(spec.twin)
        cells += [(method, resolved, s) for s in random_seeds]
    return cells


def _read_row(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def run_job_in_subprocess(job: Job, *, threads: int | None = None,
                          timeout: float | None = None) -> dict[str, Any]:
    """Run one job in a fresh Python process; return its row (failed rows included).

    The worker writes the row file itself; if it dies without doing so (killed, out of
    memory, segfault), a ``failed`` row with the end of its stderr is written here.
    """
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   BREASTLIB_TORCH_THREADS=str(threads))
    # The job goes in on standard input: a file for it would outlive a killed study.
    try:
        result = subprocess.run(
            [sys.executable, "-m", "breastlib.study.worker", "-"],
            input=json.dumps(asdict(job)), capture_output=True, text=True, env=env,
            timeout=timeout, check=False,
        )
        error = result.stderr.strip()[-2000:]
        code = result.returncode
    except subprocess.TimeoutExpired:
        error, code = f"timed out after {timeout} s", -1
    row_path = Path(job.row_path)
    row = _read_row(row_path)
    if not row:
        from breastlib.study.worker import base_row

        row = base_row(job) | {"status": "failed",
                               "error": f"worker exited with code {code}: {error}"}
        write_text_atomic(row_path, json.dumps(row, indent=1))
    return row


def collect_results(paths: Iterable[Path]) -> pd.DataFrame:
    """One DataFrame (columns :data:`RESULT_COLUMNS`) from row files, sorted.

    The schema does not depend on which methods ran: :data:`NUMERIC_COLUMNS` are float64,
    the others ``str`` (missing values NaN in both), so tables of different runs concatenate
    and their parquet files agree.
    """
    rows = [_read_row(Path(p)) for p in paths]
    rows = [r for r in rows if r]
    table = pd.DataFrame(rows)
    for column in RESULT_COLUMNS:
        if column not in table.columns:
            table[column] = None
    table = table[RESULT_COLUMNS].copy()
    for column in RESULT_COLUMNS:
        if column in NUMERIC_COLUMNS:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
        else:
            table[column] = table[column].astype("str")
    if len(table):
        table = table.sort_values(["task", "pair_id", "method", "seed"], kind="stable")
    return table.reset_index(drop=True)


def write_results(table: pd.DataFrame, out: str | os.PathLike) -> None:
    """Write ``results.csv`` and ``results.parquet`` atomically."""
    out = Path(out)
    with atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "results.parquet") as tmp:
        table.to_parquet(tmp, index=False)


def run_study(
    cohort: str | os.PathLike,
    methods: Sequence[str],
    *,
    out: str | os.PathLike,
    weights: str = "random",
    profile: str = "fast",
    device: str = "auto",
    seed: int = 0,
    retry_failed: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int = 1,
    progress: bool = True,
    timeout: float | None = None,
    previews: str = "none",
    overrides: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Run every method on every pair of a cohort; return the results table.

    Parameters
    ----------
    cohort
        ``manifest.csv`` of a cohort (``breastlib phantom`` writes one).
    methods
        Method names: ``identity``, ``affine``, ``ants``, ``elastix``, ``mind`` or an
        encoder name (``sam``, ``dinov2``, ...).
    out
        Output folder: ``rows/``, ``results.csv``, ``results.parquet``.
    weights, profile, device, seed
        Passed to every method (weights only matter to encoders); ``weights="auto"``
        takes pretrained weights for each encoder whose checkpoint is in the cache.
    retry_failed
        Run again the rows recorded as ``failed``.
    executor
        ``"local"`` (a pool of ``workers`` subprocesses) or ``"dask"`` (a ``LocalCluster``
        of ``workers`` single-threaded workers, or the cluster at ``scheduler``). Workers
        of a remote cluster read the cohort at the paths this machine sees (a shared file
        system); each row comes back with its future and is written here as well.
    timeout
        Seconds after which one (pair, method) is recorded as failed.
    previews
        ``"none"``, ``"first"`` (first pair of the cohort) or ``"all"``: also save a small
        axial preview of the warped image and Jacobian under ``DIR/previews/``.
    overrides
        Profile parameters for every ConvexAdam method (e.g. ``{"iterations": 80}`` to
        run a profile at a smaller scale); they are part of each row's name, and its
        ``params`` column records the values used.
    seeds
        Seeds of the encoders that run with random weights (default ``[seed]``): one row
        per seed; see :func:`method_cells`.
    """
    methods = _check_methods(methods)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo, done = plan_jobs(cohort, methods, out, weights=weights, profile=profile,
                           device=device, seed=seed, retry_failed=retry_failed,
                           previews=previews, overrides=overrides, seeds=seeds)
    finished = list(done)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="study", unit="row")

    def record(job: Job, row: dict[str, Any]) -> None:
        path = Path(job.row_path)
        # Missing here: a Dask worker without this machine's file system; different: the
        # executor failed (the row file may hold an older attempt).
        if _read_row(path) != row:
            write_text_atomic(path, json.dumps(row, indent=1, default=str))
        finished.append(path)
        write_results(collect_results(finished), out)
        if bar is not None:
            bar.update(1)

    if executor == "local":
        threads = 1 if workers > 1 else None
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(run_job_in_subprocess, job, threads=threads,
                                   timeout=timeout): job for job in todo}
            for future in as_completed(futures):
                record(futures[future], _row_or_failure(futures[future], future))
    elif executor == "dask":
        _run_with_dask(todo, record, scheduler=scheduler, workers=workers, timeout=timeout)
    else:
        raise BreastlibError(f"unknown executor '{executor}': choose local or dask")
    if bar is not None:
        bar.close()
    table = collect_results(finished)
    current = out / "results.csv"
    if todo or not current.is_file() or not (out / "results.parquet").is_file() or len(
        pd.read_csv(current)
    ) != len(table):
        write_results(table, out)
    return table


def _row_or_failure(job: Job, future: Any) -> dict[str, Any]:
    """The row a finished future returned; a ``failed`` row when the executor itself
    raised (a Dask worker lost, a task cancelled), so one cell never stops the study."""
    try:
        return future.result()
    except Exception as exc:
        from breastlib.study.worker import base_row

        return base_row(job) | {"status": "failed",
                                "error": f"executor: {type(exc).__name__}: {exc}"[-2000:]}


def _run_with_dask(todo: list[Job], record: Callable[[Job, dict[str, Any]], None], *,
                   scheduler: str | None, workers: int,
                   timeout: float | None) -> None:
    from breastlib.errors import require

    distributed = require("distributed", "study")
    if scheduler:
        client = distributed.Client(scheduler)
        cluster = None
    else:
        cluster = distributed.LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                           processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        futures = {client.submit(run_job_in_subprocess, job, threads=1, timeout=timeout,
                                 key=f"breastlib-{job.key}", pure=False): job for job in todo}
        for future in distributed.as_completed(list(futures)):
            record(futures[future], _row_or_failure(futures[future], future))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _check_methods(methods: Sequence[str]) -> list[str]:
    methods = [m.strip() for m in methods if m.strip()]
    if not methods:
        raise BreastlibError("no methods given (--methods identity,mind,sam,...)")
    if len(set(methods)) != len(methods):
        raise BreastlibError("a method is listed twice in --methods")
    return methods
