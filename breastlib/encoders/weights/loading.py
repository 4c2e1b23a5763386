"""Reading a checkpoint file safely and loading it strictly into a network.

Every checkpoint is read with ``torch.load(..., weights_only=True)``, mapped onto the
architecture by an explicit per-family function (``map_state_dict`` of
:mod:`breastlib.encoders.sam`, :mod:`~breastlib.encoders.dinov2` and
:mod:`~breastlib.encoders.biomedclip`, the last using
:mod:`~breastlib.encoders.weights.layouts` for Hugging Face CLIP files), and loaded
strictly: missing, unexpected or mis-shaped parameters raise
:class:`~breastlib.encoders.weights.registry.WeightsError` naming them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from breastlib.encoders.weights.registry import WeightsError


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (``weights_only=True``) and return its tensors by name.

    The containers ``{"state_dict": ...}`` and ``{"model": ...}`` are unwrapped; any
    other non-tensor content is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    for container in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(container), dict):
            obj = obj[container]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a dict of tensors (a state dict)")
    return obj


def load_strict(
    network: nn.Module,
    mapped: dict[str, torch.Tensor],
    unexpected: list[str],
    *,
    source: str,
) -> nn.Module:
    """Load mapped tensors into ``network`` with nothing missing, extra or mis-shaped.

    ``network`` may live on the ``meta`` device: tensors are then assigned, not copied.

    Raises
    ------
    WeightsError
        Listing every missing, unexpected and mis-shaped key (at most 10 of each).
    """
    expected = network.state_dict()
    missing = sorted(set(expected) - set(mapped))
    extra = sorted(set(unexpected) | (set(mapped) - set(expected)))
    shapes = sorted(
        f"{k} {tuple(mapped[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in mapped and tuple(mapped[k].shape) != tuple(v.shape)
    )
    if missing or extra or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", extra), ("shape", shapes)):
            if keys:
                more = f" (+{len(keys) - 10} more)" if len(keys) > 10 else ""
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:10])}{more}")
        raise WeightsError(f"{source}: checkpoint does not fit the architecture; " + "; ".join(
            parts
        ))
    is_meta = any(p.is_meta for p in network.parameters())
    network.load_state_dict(mapped, strict=True, assign=is_meta)
    leftover = [n for n, t in [*network.named_parameters(), *network.named_buffers()] if t.is_meta]
    if leftover:  # pragma: no cover - architectures with non-persistent buffers
        raise WeightsError(f"{source}: tensors not set by the checkpoint: {leftover[:5]}")
    return network
