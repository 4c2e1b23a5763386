"""The on-disk cache of affine starts: one small JSON file per (fixed, moving, seed).

SimpleITK's affine fit (:func:`breastlib.register.initial.affine_matrix`) runs on one
thread so that it gives the same matrix every run; on a small phantom pair it takes 3-5 s,
half of a ``fast`` MIND registration, and every method registering the same pair (a
study's encoders, seeds and the ``affine`` baseline) would fit the same matrix again. The
entry is keyed by both images' voxels, spacing and world affine, the seed, the block size
the fit sees and SimpleITK's version, and lives beside the feature cache
(:func:`breastlib.features.cache.default_cache_dir`). The matrix is stored with every
digit (``repr`` floats), so a hit returns the computed matrix to the bit. A missing,
corrupt or non-finite entry is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from breastlib._atomic import write_text_atomic
from breastlib.features.cache import array_digest, default_cache_dir
from breastlib.volume import Volume

#: Part of every key: bump it when the fit of the same inputs changes.
AFFINE_CACHE_VERSION = "affine-v1"


def affine_cache_path(fixed: Volume, moving: Volume, *, seed: int, block_mm: float,
                      cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/affine-<key>.json`` of one fit.

    Parameters
    ----------
    fixed, moving
        The images as given to the fit (before its block averaging).
    seed
        The metric sampling seed.
    block_mm
        The voxel size the fit averages blocks to
        (:data:`breastlib.register.initial.AFFINE_MIN_SPACING_MM`).
    cache_dir
        Cache folder; ``None`` for :func:`breastlib.features.cache.default_cache_dir`.
    """
    import SimpleITK as sitk

    digest = hashlib.sha256()
    digest.update(f"{AFFINE_CACHE_VERSION}|{sitk.Version.VersionString()}|{seed}|"
                  f"{float(block_mm)!r}".encode())
    for volume in (fixed, moving):
        digest.update(array_digest(volume).encode())
        digest.update(np.asarray(volume.affine, dtype=np.float64).tobytes())
    return Path(cache_dir or default_cache_dir()) / f"affine-{digest.hexdigest()[:24]}.json"


def read_affine(path: Path) -> np.ndarray | None:
    """The cached ``(4, 4)`` RAS matrix, or ``None`` when missing, unreadable or not a
    finite affine matrix."""
    if not path.is_file():
        return None
    try:
        matrix = np.array(json.loads(path.read_text())["matrix_ras"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all() or \
            not np.array_equal(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        return None
    return matrix


def write_affine(path: Path, matrix: np.ndarray) -> bool:
    """Write a fitted matrix atomically; a warning, not an error, when it cannot be
    written (the cache only saves time). Returns whether it was written."""
    text = json.dumps({"matrix_ras": np.asarray(matrix, dtype=np.float64).tolist()})
    try:
        write_text_atomic(path, text + "\n")
    except OSError as exc:
        warnings.warn(f"affine cache entry not written ({path}): {exc}", stacklevel=2)
        return False
    return True
