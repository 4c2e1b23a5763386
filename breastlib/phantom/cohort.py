"""Write a cohort of synthetic pairs to disk: NIfTI volumes, landmarks, ground truth.

Layout under ``out_dir``::

    manifest.csv     one row per pair, paths relative to the manifest
    labels.json      {tissue name: label value}
    <pair_id>/fixed.nii.gz, moving.nii.gz, fixed_labels.nii.gz, moving_labels.nii.gz,
              fixed_landmarks.csv, moving_landmarks.csv (x,y,z,kind; RAS mm),
              gt_displacement.nii.gz (fixed -> moving, the displacement NIfTI of
              book/conventions.md, "File formats"),
              gt_inverse_displacement.nii.gz (moving -> fixed, on the moving grid),
              info.json (regime, magnitudes, density, seeds)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from breastlib._atomic import write_text_atomic
from breastlib.errors import BreastlibError
from breastlib.manifest import COLUMNS as MANIFEST_COLUMNS
from breastlib.phantom.acquisition import SIZES, Acquisition
from breastlib.phantom.labels import LABELS
from breastlib.phantom.pair import TASKS, Pair, make_pair
from breastlib.phantom.realism import Realism

#: Version of the generator's output. Bump it with every change that alters a generated
#: pair (anatomy, contrast, acquisition, deformation, landmarks): study results of phantom
#: pairs are keyed by their recipe (this version and the generation parameters), since
#: the voxel values themselves differ in their last bits between CPUs (numpy's and
#: torch's vectorised transcendental functions and BLAS kernels vary with the processor).
#: 2: the clinical effects (:meth:`~breastlib.phantom.realism.Realism.clinical`) are on
#: unless a pair asks for ``Realism.off()`` (version 1's phantom, bit for bit).
PHANTOM_VERSION = 2

def write_landmarks(path: str | os.PathLike, points: np.ndarray, kinds: list[str]) -> Path:
    """Write ``(N, 3)`` RAS mm points with their kinds as CSV ``x,y,z,kind`` (atomic)."""
    frame = pd.DataFrame(np.asarray(points, dtype=np.float64), columns=["x", "y", "z"])
    frame["kind"] = kinds
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.6f")
    return write_text_atomic(path, buffer.getvalue())


def pair_recipe(task: str, size: str, seed: int, *, has_lesion: bool | None = None,
                acquisition: Acquisition | None = None, realism: Realism | None = None) -> str:
    """A short hash naming how a pair was generated: version, task, size, seed, options.

    Two machines given the same recipe generate the same pair up to floating-point
    rounding, so the recipe, not the voxel bytes, identifies a phantom pair's results.
    """
    ingredients = {
        "phantom": PHANTOM_VERSION, "task": task, "size": size, "seed": int(seed),
        "has_lesion": has_lesion,
        "acquisition": None if acquisition is None else asdict(acquisition),
    }
    realism = Realism.default() if realism is None else realism
    if not realism.is_off():
        ingredients["realism"] = realism.as_dict()
    text = json.dumps(ingredients, sort_keys=True)
    # Never all digits: a CSV reader must keep it a string.
    return f"phantom-v{PHANTOM_VERSION}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def write_pair(pair: Pair, out_dir: str | os.PathLike, pair_id: str, *,
               recipe: str | None = None) -> dict:
    """Write one pair's files under ``out_dir/pair_id`` and return its manifest row
    (``recipe`` from :func:`pair_recipe`, when the pair was made by :func:`make_cohort`)."""
    out_dir = Path(out_dir)
    folder = out_dir / pair_id
    files = {
        "fixed_image": "fixed.nii.gz", "moving_image": "moving.nii.gz",
        "fixed_labels": "fixed_labels.nii.gz", "moving_labels": "moving_labels.nii.gz",
        "fixed_landmarks": "fixed_landmarks.csv", "moving_landmarks": "moving_landmarks.csv",
        "gt_displacement": "gt_displacement.nii.gz",
        "gt_inverse_displacement": "gt_inverse_displacement.nii.gz",
    }
    pair.fixed.save(folder / files["fixed_image"])
    pair.moving.save(folder / files["moving_image"])
    pair.fixed_labels.save(folder / files["fixed_labels"], dtype=np.uint8)
    pair.moving_labels.save(folder / files["moving_labels"], dtype=np.uint8)
    write_landmarks(folder / files["fixed_landmarks"], pair.fixed_landmarks, pair.landmark_kinds)
    write_landmarks(folder / files["moving_landmarks"], pair.moving_landmarks,
                    pair.landmark_kinds)
    pair.displacement.save(folder / files["gt_displacement"])
    pair.inverse.save(folder / files["gt_inverse_displacement"])
    write_text_atomic(folder / "info.json", json.dumps(pair.info, indent=2, sort_keys=True))
    info = pair.info
    row = {"task": pair.task, "pair_id": pair_id}
    row.update({k: f"{pair_id}/{v}" for k, v in files.items()})
    row.update(
        fixed_sequence=info["fixed_sequence"], moving_sequence=info["moving_sequence"],
        has_lesion=info["has_lesion"], same_grid=info["same_grid"], regime=info["regime"],
        magnitude_mm=round(info["magnitude_mm"], 3), n_landmarks=len(pair.landmark_kinds),
        density=info["density"], size=info["size"], seed=info["seed"], recipe=recipe,
    )
    return row


def cohort_pairs(task: str, n_pairs: int, seed: int = 0
                 ) -> list[tuple[str, int, bool | None]]:
    """The pairs :func:`make_cohort` writes, in order: ``(pair_id, pair_seed, has_lesion)``.

    Pair ``i`` uses seed ``seed * 100003 + i``; the lesion task writes each subject twice,
    ``<task>_<i>_lesion`` and ``<task>_<i>_control`` (``has_lesion`` True and False), the
    other tasks once with ``has_lesion`` None (drawn by the pair)."""
    pairs: list[tuple[str, int, bool | None]] = []
    for i in range(int(n_pairs)):
        pair_seed = int(seed) * 100_003 + i
        if task == "lesion":
            pairs += [(f"{task}_{i:03d}_lesion", pair_seed, True),
                      (f"{task}_{i:03d}_control", pair_seed, False)]
        else:
            pairs.append((f"{task}_{i:03d}", pair_seed, None))
    return pairs


def cohort_recipes(task: str, n_pairs: int, size: str = "small", seed: int = 0, *,
                   acquisition: Acquisition | None = None, realism: Realism | None = None
                   ) -> list[str]:
    """The ``recipe`` column :func:`make_cohort` writes for these arguments, in order:
    compare it with a manifest on disk to know whether that cohort is this code's."""
    return [pair_recipe(task, size, pair_seed, has_lesion=has_lesion,
                        acquisition=acquisition, realism=realism)
            for _, pair_seed, has_lesion in cohort_pairs(task, n_pairs, seed)]


def make_cohort(
    task: str,
    n_pairs: int,
    size: str = "small",
    seed: int = 0,
    out_dir: str | os.PathLike = "phantom_cohort",
    *,
    acquisition: Acquisition | None = None,
    realism: Realism | None = None,
) -> Path:
    """Generate ``n_pairs`` pairs of a study task and write them with a manifest.

    Parameters
    ----------
    task
        ``"longitudinal"``, ``"sequence"``, ``"modality"`` or ``"lesion"``. For
        ``"lesion"``, ``n_pairs`` pairs with a lesion and ``n_pairs`` matched pairs (same
        subject and motion) without one are written (column ``has_lesion``).
    n_pairs
        Number of pairs (``>= 1``).
    size
        ``"small"`` (CI) or ``"full"`` (close to real acquisitions).
    seed
        Cohort seed; pair ``i`` uses seed ``seed * 100003 + i`` (bit-exact repeatable).
    out_dir
        Folder to write into (created).
    acquisition
        Acquisition effects passed to :func:`~breastlib.phantom.pair.make_pair`.
    realism
        Clinical effects (:class:`~breastlib.phantom.realism.Realism`) passed to
        :func:`~breastlib.phantom.pair.make_pair` and named in every pair's recipe;
        default :meth:`~breastlib.phantom.realism.Realism.clinical`.

    Returns
    -------
    pathlib.Path
        The ``manifest.csv`` path (written last, atomically).
    """
    if task not in TASKS:
        raise BreastlibError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if size not in SIZES:
        raise BreastlibError(f"size must be 'small' or 'full', not {size!r}")
    if int(n_pairs) < 1:
        raise BreastlibError(f"--pairs must be at least 1, got {n_pairs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "labels.json", json.dumps(LABELS, indent=2) + "\n")
    rows = []
    for pair_id, pair_seed, has_lesion in cohort_pairs(task, n_pairs, seed):
        pair = make_pair(task, size, pair_seed, has_lesion=has_lesion,
                         acquisition=acquisition, realism=realism)
        recipe = pair_recipe(task, size, pair_seed, has_lesion=has_lesion,
                             acquisition=acquisition, realism=realism)
        rows.append(write_pair(pair, out_dir, pair_id, recipe=recipe))
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return write_text_atomic(out_dir / "manifest.csv", buffer.getvalue())


def restore_missing_pairs(manifest: str | os.PathLike,
                          pair_ids: list[str] | None = None) -> list[str]:
    """Regenerate the files of phantom pairs that a cohort's manifest lists but that are
    missing on disk, from their recipes; return the pair ids written.

    A phantom pair is named by its recipe (:func:`pair_recipe`), so a manifest alone
    (``task``, ``size``, ``seed``, ``has_lesion``, ``recipe``) is enough to rebuild it:
    a cohort can be shipped or cached as its manifest and its images made when a pair is
    first needed. Only pairs with the default acquisition and clinical effects can be
    rebuilt that way (their recipe is checked).

    Parameters
    ----------
    manifest
        The cohort's ``manifest.csv``.
    pair_ids
        Pairs to check (default: all listed).

    Raises
    ------
    BreastlibError
        A listed pair is missing and its recipe is not one this function can rebuild.
    """
    manifest = Path(manifest)
    root = manifest.parent
    table = pd.read_csv(manifest, dtype={"pair_id": str, "recipe": str})
    if pair_ids is not None:
        table = table[table["pair_id"].isin([str(p) for p in pair_ids])]
    file_columns = ("fixed_image", "moving_image", "fixed_labels", "moving_labels",
                    "fixed_landmarks", "moving_landmarks", "gt_displacement",
                    "gt_inverse_displacement")
    written = []
    for _, entry in table.iterrows():
        if all((root / str(entry[c])).is_file() for c in file_columns if c in entry):
            continue
        task, size, seed = str(entry["task"]), str(entry["size"]), int(entry["seed"])
        has_lesion = bool(str(entry["has_lesion"]) == "True") if task == "lesion" else None
        recipe = pair_recipe(task, size, seed, has_lesion=has_lesion)
        if recipe != str(entry.get("recipe")):
            raise BreastlibError(
                f"the files of pair '{entry['pair_id']}' are missing under {root} and its "
                f"recipe {entry.get('recipe')!r} is not a default phantom pair's: generate "
                "the cohort again with the options it was made with")
        if not (root / "labels.json").is_file():
            write_text_atomic(root / "labels.json", json.dumps(LABELS, indent=2) + "\n")
        write_pair(make_pair(task, size, seed, has_lesion=has_lesion), root,
                   str(entry["pair_id"]), recipe=recipe)
        written.append(str(entry["pair_id"]))
    return written
