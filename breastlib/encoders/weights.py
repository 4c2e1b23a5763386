"""Pretrained checkpoints: registry, cache, explicit download, checksums and strict loading.

Nothing here touches the network unless :func:`download` is called (by
``breastlib weights download NAME`` or ``download=True``). Every checkpoint is read with
``torch.load(..., weights_only=True)``, mapped onto the architecture by an explicit
per-family function, and loaded strictly: missing, unexpected or mis-shaped parameters
raise :class:`WeightsError` naming them.

The cache directory is ``$BREASTLIB_WEIGHTS``, else ``~/.cache/breastlib/weights``.
A SHA-256 is recorded in :data:`CHECKPOINTS` only where public sources agree on it;
otherwise it is ``None`` (unverified) and ``breastlib weights verify --record`` pins the
hash of the file you downloaded in ``pins.json`` beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from breastlib._atomic import atomic_path, write_text_atomic
from breastlib.errors import BreastlibError

MANIFEST_DIR = Path(__file__).parent / "manifests"


class WeightsError(BreastlibError):
    """A checkpoint is missing, unverifiable, corrupt or does not fit its architecture."""


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint.

    Parameters
    ----------
    name
        Registry key (``breastlib weights download NAME``).
    filename
        File name inside the weights cache.
    family
        Loader family: ``"sam"``, ``"dinov2"`` or ``"biomedclip"``.
    manifest
        Manifest file (under ``manifests/``) listing parameter names and shapes.
    source
        Where the file is published (page, release or hub id).
    url
        Direct download URL, or ``None`` when the file must be fetched by hand.
    size
        Approximate size, for humans.
    sha256
        Published SHA-256, or ``None`` where no public source states one.
    """

    name: str
    filename: str
    family: str
    manifest: str
    source: str
    url: str | None
    size: str
    sha256: str | None = None


_DINO = "https://dl.fbaipublicfiles.com/dinov2"
_HF_BIOMEDCLIP = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"

CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in [
        Checkpoint(
            "sam_vit_b", "sam_vit_b_01ec64.pth", "sam", "sam_vit_b.json",
            "facebookresearch/segment-anything README (model checkpoints)",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
            "~375 MB",
        ),
        Checkpoint(
            "medsam_vit_b", "medsam_vit_b.pth", "sam", "sam_vit_b.json",
            "bowang-lab/MedSAM README (Google Drive folder 'MedSAM model checkpoint'; "
            "the Hugging Face 'wanglab/medsam-vit-base' is a transformers layout, not this "
            "file)",
            None, "~375 MB",
        ),
        Checkpoint(
            "sslsam_vit_b", "sslsam_vit_b.pth", "sam", "sam_vit_b.json",
            "mazurowski-lab/finetune-SAM release (Google Drive; save the ViT-B SSL "
            "checkpoint under this file name)",
            None, "~375 MB",
        ),
        Checkpoint(
            "dinov2_vits14_reg4", "dinov2_vits14_reg4_pretrain.pth", "dinov2",
            "dinov2_vits14_reg4.json", "facebookresearch/dinov2 hubconf (torch.hub)",
            f"{_DINO}/dinov2_vits14/dinov2_vits14_reg4_pretrain.pth", "~85 MB",
        ),
        Checkpoint(
            "dinov2_vitb14_reg4", "dinov2_vitb14_reg4_pretrain.pth", "dinov2",
            "dinov2_vitb14_reg4.json", "facebookresearch/dinov2 hubconf (torch.hub)",
            f"{_DINO}/dinov2_vitb14/dinov2_vitb14_reg4_pretrain.pth", "~330 MB",
        ),
        Checkpoint(
            "dinov2_vitl14_reg4", "dinov2_vitl14_reg4_pretrain.pth", "dinov2",
            "dinov2_vitl14_reg4.json", "facebookresearch/dinov2 hubconf (torch.hub)",
            f"{_DINO}/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth", "~1.2 GB",
        ),
        Checkpoint(
            "biomedclip", "biomedclip_open_clip_pytorch_model.bin", "biomedclip",
            "biomedclip_vit_b16.json", f"Hugging Face hub {_HF_BIOMEDCLIP}",
            f"https://huggingface.co/{_HF_BIOMEDCLIP}/resolve/main/open_clip_pytorch_model.bin",
            "~784 MB",
        ),
        Checkpoint(
            "medclip_samv2", "medclip_samv2_biomedclip.bin", "biomedclip",
            "biomedclip_vit_b16.json",
            "HealthX-Lab/MedCLIP-SAMv2 README (fine-tuned BiomedCLIP, Google Drive; layout "
            "assumed to be open_clip's, unverified)",
            None, "~784 MB",
        ),
    ]
}


# -- cache and checksums ------------------------------------------------------------------
def weights_dir() -> Path:
    """The weights cache: ``$BREASTLIB_WEIGHTS`` else ``~/.cache/breastlib/weights``."""
    env = os.environ.get("BREASTLIB_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "breastlib" / "weights"


def get_checkpoint(name: str) -> Checkpoint:
    """Look up a checkpoint by registry name (error lists the known names)."""
    if name not in CHECKPOINTS:
        raise WeightsError(
            f"unknown checkpoint '{name}': choose from {', '.join(sorted(CHECKPOINTS))}"
        )
    return CHECKPOINTS[name]


def checkpoint_path(name: str) -> Path:
    """Where ``name`` lives in the cache (whether or not it is there)."""
    return weights_dir() / get_checkpoint(name).filename


def _pins_path() -> Path:
    return weights_dir() / "pins.json"


def read_pins() -> dict[str, str]:
    """SHA-256 values pinned locally by ``verify --record``, by checkpoint name."""
    path = _pins_path()
    if not path.exists():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}


def expected_sha256(name: str) -> tuple[str | None, str]:
    """The hash a checkpoint must have and where it comes from.

    Returns
    -------
    sha256 : str or None
        The published hash, else a local pin, else ``None``.
    origin : str
        ``"published"``, ``"pinned"`` or ``"unverified"``.
    """
    published = get_checkpoint(name).sha256
    if published:
        return published, "published"
    pinned = read_pins().get(name)
    return (pinned, "pinned") if pinned else (None, "unverified")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered in a ``.sha256`` sidecar keyed by size and mtime."""
    path = Path(path)
    stat = path.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.exists():
        parts = sidecar.read_text().split()
        if len(parts) == 2 and parts[1] == stamp:
            return parts[0]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        write_text_atomic(sidecar, f"{value} {stamp}\n")
    except OSError:  # read-only location: hash again next time
        pass
    return value


def missing_message(name: str) -> str:
    """One message saying which file is missing, where it goes and how to get it."""
    ckpt = get_checkpoint(name)
    target = checkpoint_path(name)
    how = (
        f"run 'breastlib weights download {name}'"
        if ckpt.url
        else f"download it by hand from {ckpt.source}"
    )
    return (
        f"pretrained weights '{name}' not found: expected {target} "
        f"({ckpt.size}); {how}, or set BREASTLIB_WEIGHTS to the folder holding "
        f"{ckpt.filename}, or pass weights=PATH; use weights='random' to run without them"
    )


def locate(name: str) -> Path:
    """Path of a cached checkpoint, verified against its expected hash when one is known.

    Raises
    ------
    WeightsError
        The file is missing (message says where to put it and what to run) or its hash
        differs from the published or pinned one.
    """
    path = checkpoint_path(name)
    if not path.is_file():
        raise WeightsError(missing_message(name))
    check_sha256(name, path)
    return path


def check_sha256(name: str, path: Path) -> str:
    """Hash ``path``; raise when it differs from ``name``'s published or pinned hash."""
    actual = file_sha256(path)
    expected, origin = expected_sha256(name)
    if expected and actual != expected:
        raise WeightsError(
            f"{path}: SHA-256 {actual} does not match the {origin} hash {expected} of "
            f"'{name}'; the file is corrupt or a different checkpoint: delete it and run "
            f"'breastlib weights download {name}'"
        )
    return actual


def download(name: str, *, force: bool = False, timeout: float = 60.0) -> Path:
    """Fetch a checkpoint into the cache (the only function that uses the network).

    Parameters
    ----------
    name
        Registry name.
    force
        Download again even when the file is present.
    timeout
        Socket timeout in seconds.

    Returns
    -------
    Path
        The verified file in the cache.
    """
    import urllib.error
    import urllib.request

    ckpt = get_checkpoint(name)
    target = checkpoint_path(name)
    if target.is_file() and not force:
        check_sha256(name, target)
        return target
    if ckpt.url is None:
        raise WeightsError(
            f"'{name}' has no direct download: get {ckpt.filename} from {ckpt.source} and "
            f"put it at {target}, then run 'breastlib weights verify --record'"
        )
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(ckpt.url, timeout=timeout) as response:
            with atomic_path(target) as tmp, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 22), b""):
                    digest.update(chunk)
                    out.write(chunk)
                expected, origin = expected_sha256(name)
                if expected and digest.hexdigest() != expected:
                    raise WeightsError(
                        f"downloaded '{name}' has SHA-256 {digest.hexdigest()}, not the "
                        f"{origin} {expected}; nothing was saved"
                    )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsError(
            f"could not download '{name}' from {ckpt.url} ({exc}); offline? put "
            f"{ckpt.filename} at {target} by hand"
        ) from exc
    return target


def verify(name: str, *, record: bool = False) -> dict[str, Any]:
    """Check a cached checkpoint's hash; with ``record``, pin unverified ones locally.

    Returns
    -------
    dict
        ``{name, path, present, sha256, expected, origin, ok}``.
    """
    path = checkpoint_path(name)
    expected, origin = expected_sha256(name)
    row: dict[str, Any] = {
        "name": name, "path": str(path), "present": path.is_file(), "sha256": None,
        "expected": expected, "origin": origin, "ok": None,
    }
    if not row["present"]:
        return row
    actual = file_sha256(path)
    row["sha256"] = actual
    row["ok"] = None if expected is None else actual == expected
    if record and expected is None:
        pins = read_pins()
        pins[name] = actual
        write_text_atomic(_pins_path(), json.dumps(pins, indent=2, sort_keys=True) + "\n")
        row.update(expected=actual, origin="pinned", ok=True)
    return row


def registry_rows() -> list[dict[str, Any]]:
    """The registry as plain rows (for ``breastlib weights list``)."""
    rows = []
    for name, ckpt in CHECKPOINTS.items():
        row = asdict(ckpt)
        row["path"] = str(checkpoint_path(name))
        row["present"] = checkpoint_path(name).is_file()
        rows.append(row)
    return rows


# -- reading and strict loading ------------------------------------------------------------
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


# -- manifests ------------------------------------------------------------------------------
def load_manifest(filename: str) -> dict[str, Any]:
    """Read a committed manifest: ``{source, layout, parameters: {name: shape}}``."""
    return json.loads((MANIFEST_DIR / filename).read_text())


def checkpoint_from_manifest(
    manifest: dict[str, Any], make: Callable[[str, tuple[int, ...]], torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Build a state dict with every name and shape of a manifest (for tests and demos).

    Parameters
    ----------
    manifest
        From :func:`load_manifest`.
    make
        ``make(name, shape) -> tensor``; default: a distinct constant per key, stored as a
        one-element tensor expanded to ``shape`` so the file stays tiny.
    """
    if make is None:
        def make(name: str, shape: tuple[int, ...]) -> torch.Tensor:
            value = (int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 1000) / 1000
            return torch.full((1,) * len(shape), value).expand(*shape)
    return {k: make(k, tuple(shape)) for k, shape in manifest["parameters"].items()}
