"""Tiny stand-in checkpoints built from the committed key manifests (tests only)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import torch


def checkpoint_from_manifest(
    manifest: dict[str, Any], make: Callable[[str, tuple[int, ...]], torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Build a state dict with every name and shape of a manifest.

    Parameters
    ----------
    manifest
        From :func:`breastlib.encoders.weights.load_manifest`.
    make
        ``make(name, shape) -> tensor``; default: a distinct constant per key, stored as a
        one-element tensor expanded to ``shape`` so the file stays tiny.

    Returns
    -------
    dict of str to torch.Tensor
        Parameter name -> tensor of the manifest's shape.
    """
    if make is None:
        def make(name: str, shape: tuple[int, ...]) -> torch.Tensor:
            value = (int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 1000) / 1000
            return torch.full((1,) * len(shape), value).expand(*shape)
    return {k: make(k, tuple(shape)) for k, shape in manifest["parameters"].items()}
