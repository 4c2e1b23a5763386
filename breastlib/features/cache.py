"""The on-disk feature cache: content-addressed keys, location, atomic read and write.

An entry is keyed by image content, encoder, weights identity and every parameter, so a
changed input never hits a stale entry; it lives in ``$BREASTLIB_CACHE``, else
``~/.cache/breastlib/features``. A corrupt entry is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from breastlib._atomic import atomic_path
from breastlib.features.settings import FeatureSettings
from breastlib.volume import Volume

#: Part of every key: bump it when the features of the same inputs change (v2: slices
#: shown radiologically, the patient's right on the image's left).
CACHE_VERSION = "features-v2"
#: ``info`` entries kept with the tensors (``seconds_*`` renamed ``original_seconds_*``).
_KEPT_INFO = ("seconds_features", "seconds_encoding", "token_grid", "channels",
              "encoded_slices")


def default_cache_dir() -> Path:
    """``$BREASTLIB_CACHE``, else ``~/.cache/breastlib/features``."""
    env = os.environ.get("BREASTLIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "breastlib" / "features"


def array_digest(volume: Volume) -> str:
    """SHA-256 hex of a volume's shape, spacing (float64, mm) and float32 voxels."""
    h = hashlib.sha256()
    array = np.ascontiguousarray(volume.array, dtype=np.float32)
    h.update(str(array.shape).encode())
    h.update(np.asarray(volume.spacing, dtype=np.float64).tobytes())
    h.update(array.tobytes())
    return h.hexdigest()


def cache_path(
    cache_dir: str | os.PathLike | None,
    network: str,
    weights_identity: str,
    settings: FeatureSettings,
    *,
    uncentred: bool,
    pca_method: str,
    seed: int,
    fixed: Volume,
    moving: Volume,
    mask: np.ndarray | None,
) -> Path:
    """The cache file of one feature pair: ``<cache_dir>/<network>-<key>.pt``.

    Parameters
    ----------
    cache_dir
        Cache folder; ``None`` for :func:`default_cache_dir`.
    network
        Name of the network actually run (the random twin for random weights).
    weights_identity
        :attr:`breastlib.encoders.WeightsChoice.identity`.
    settings
        Input size, slice step, PCA dimensions and the profile's feature switches.
    uncentred, pca_method, seed
        The PCA's options (the seed counts only for the randomised ones: ``"lowrank"``
        and the released PCA).
    fixed, moving
        The two volumes, hashed by content.
    mask
        Optional ``(X, Y, Z)`` boolean PCA mask, hashed by content.

    Returns
    -------
    Path
        Whether or not the file exists; the key is the first 32 hex digits of the
        SHA-256 of every field above (with :data:`CACHE_VERSION`).
    """
    key_fields = {
        "version": CACHE_VERSION, "network": network, "weights": weights_identity,
        **asdict(settings), "uncentred": bool(uncentred), "pca_method": pca_method,
        "seed": int(seed) if pca_method == "lowrank" or settings.pca == "released" else None,
        "fixed": array_digest(fixed), "moving": array_digest(moving),
        "mask": None if mask is None else hashlib.sha256(
            np.packbits(np.asarray(mask, bool)).tobytes()).hexdigest(),
    }
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:32]
    return Path(cache_dir or default_cache_dir()) / f"{network}-{key}.pt"


def read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]] | None:
    """``(fixed, moving, info)`` of a cache entry (CPU ``(C, X, Y, Z)`` float32 tensors),
    or ``None`` when the file is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return data["fixed"], data["moving"], json.loads(data["info"])
    except Exception:  # a corrupt cache entry is recomputed, never trusted
        return None


def write_cache(path: Path, fixed: torch.Tensor, moving: torch.Tensor, info: dict) -> bool:
    """Write both ``(C, X, Y, Z)`` feature tensors and the shape/timing part of ``info``
    atomically (a reader never sees half an entry).

    The cache only saves time: when the entry cannot be written (a full disk, a read-only
    folder), a warning says so and the features are used all the same.

    Returns
    -------
    bool
        Whether the entry was written.
    """
    keep = {k: v for k, v in info.items() if k in _KEPT_INFO}
    keep = {f"original_{k}" if k.startswith("seconds") else k: v for k, v in keep.items()}
    try:
        with atomic_path(path) as tmp:
            torch.save({"fixed": fixed.cpu(), "moving": moving.cpu(),
                        "info": json.dumps(keep)}, tmp)
    except (OSError, RuntimeError) as exc:  # torch.save reports a short write as RuntimeError
        import warnings

        warnings.warn(f"feature cache entry not written ({path}): {exc}", stacklevel=2)
        return False
    return True
