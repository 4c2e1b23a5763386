"""Pretrained checkpoints: registry, cache, explicit download, checksums and strict loading.

- :mod:`~breastlib.encoders.weights.registry`: every known checkpoint, where it is
  published, its manifest of parameter names and shapes;
- :mod:`~breastlib.encoders.weights.cache`: the local cache (``$BREASTLIB_WEIGHTS``, else
  ``~/.cache/breastlib/weights``), SHA-256 checks and local pins, and :func:`download`,
  the only function that uses the network;
- :mod:`~breastlib.encoders.weights.loading`: reading a file safely
  (``weights_only=True``) and loading it strictly into a network;
- :mod:`~breastlib.encoders.weights.layouts`: converting layouts that need more than a
  renamed prefix (the Hugging Face CLIP vision tower of the MedCLIP-SAMv2 fine-tune).

The names used elsewhere are re-exported here (``from breastlib.encoders import weights``).
"""

from __future__ import annotations

from breastlib.encoders.weights.cache import (
    MIRROR_ENV,
    check_sha256,
    checkpoint_path,
    download,
    download_url,
    expected_sha256,
    file_sha256,
    locate,
    missing_message,
    read_pins,
    registry_rows,
    verify,
    weights_dir,
)
from breastlib.encoders.weights.layouts import convert_hf_clip_vision, is_hf_clip_vision
from breastlib.encoders.weights.loading import load_strict, read_state_dict
from breastlib.encoders.weights.registry import (
    CHECKPOINTS,
    MANIFEST_DIR,
    Checkpoint,
    WeightsError,
    get_checkpoint,
    load_manifest,
)

__all__ = [
    "CHECKPOINTS",
    "MANIFEST_DIR",
    "MIRROR_ENV",
    "Checkpoint",
    "WeightsError",
    "check_sha256",
    "checkpoint_path",
    "convert_hf_clip_vision",
    "download",
    "download_url",
    "expected_sha256",
    "file_sha256",
    "get_checkpoint",
    "is_hf_clip_vision",
    "load_manifest",
    "load_strict",
    "locate",
    "missing_message",
    "read_pins",
    "read_state_dict",
    "registry_rows",
    "verify",
    "weights_dir",
]
