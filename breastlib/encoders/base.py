"""The small protocol every 2-D slice encoder follows, and the facts that describe one.

An encoder turns a batch of grey slices with intensities in [0, 1] into a grid of patch
tokens. Everything that differs between encoders (architecture, preprocessing, input size,
output layer, published PCA size) lives in an :class:`EncoderSpec`; the code that runs
them is shared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

#: ImageNet channel statistics for inputs in [0, 1] (SAM's 0-255 pixel mean/std / 255).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: OpenAI CLIP statistics, used by BiomedCLIP's open_clip preprocessing.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that identifies one named encoder.

    Parameters
    ----------
    name
        Registry name (``"sam"``, ``"dinov2"``, ...), as used by the CLI and tables.
    family
        Implementation family: ``"sam"``, ``"dinov2"``, ``"biomedclip"`` or ``"mind"``.
    arch
        Architecture identifier inside the family (e.g. timm model name).
    patch_size
        Pixels per token side; input sizes must be multiples of it.
    channels
        Channels of the output tokens.
    published_input
        Input side in pixels of the released pipeline (see book/conventions.md,
        "Profiles").
    fast_input
        Reduced input side used by the ``fast`` profile.
    pca_dims
        PCA size of the released pipeline.
    mean, std
        Per-channel normalisation of the 3-channel input in [0, 1]; ``None`` feeds raw
        [0, 1] values (MedSAM).
    checkpoint
        Name of the pretrained checkpoint in :mod:`breastlib.encoders.weights`.
    random_twin
        Encoders whose random-weight builds are the same network share this key; their
        random features are computed once (SAM, MedSAM and SSLSAM are all ``"sam"``).
    """

    name: str
    family: str
    arch: str
    patch_size: int
    channels: int
    published_input: int
    fast_input: int
    pca_dims: int
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    checkpoint: str | None = None
    random_twin: str | None = None
    description: str = field(default="", compare=False)

    @property
    def twin(self) -> str:
        """Key shared by encoders whose random-weight networks are identical."""
        return self.random_twin or self.name

    def tokens(self, input_size: int) -> int:
        """Token grid side for a square input of ``input_size`` pixels."""
        return input_size // self.patch_size


@runtime_checkable
class SliceEncoder(Protocol):
    """A frozen 2-D encoder ready to run on one device.

    ``encode`` takes ``(B, 1, S, S)`` float32 slices in [0, 1] (``S = input_size``) and
    returns ``(B, C, S / p, S / p)`` float32 tokens (``p = spec.patch_size``).
    """

    spec: EncoderSpec
    input_size: int

    def encode(self, slices: torch.Tensor) -> torch.Tensor:  # pragma: no cover - protocol
        ...


def seed_for(name: str, seed: int) -> int:
    """Derive the torch seed of a random-weight build from ``(name, seed)``.

    Parameters
    ----------
    name
        Network key (an encoder's :attr:`EncoderSpec.twin`).
    seed
        User seed.

    Returns
    -------
    int
        A 63-bit integer that differs between names for the same ``seed``.
    """
    digest = hashlib.sha256(f"breastlib-encoder:{name}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def to_rgb(slices: torch.Tensor, spec: EncoderSpec, *, normalise: bool = True) -> torch.Tensor:
    """Repeat grey slices to 3 channels and apply the encoder's normalisation.

    Parameters
    ----------
    slices
        ``(B, 1, H, W)`` float tensor in [0, 1].
    spec
        Encoder whose ``mean``/``std`` apply (``None`` keeps raw values).
    normalise
        ``False`` keeps raw [0, 1] values whatever ``spec`` says.

    Returns
    -------
    torch.Tensor
        ``(B, 3, H, W)`` tensor on the same device and dtype.
    """
    rgb = slices.expand(-1, 3, -1, -1)
    if not normalise or spec.mean is None or spec.std is None:
        return rgb.contiguous()
    mean = torch.tensor(spec.mean, device=slices.device, dtype=slices.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=slices.device, dtype=slices.dtype).view(1, 3, 1, 1)
    return (rgb - mean) / std


def resize_pos_grid(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a 2-D absolute position embedding to a new token grid.

    Bicubic interpolation with ``align_corners=False`` and no antialiasing, the scheme of
    the DINOv2 reference code; it treats the embedding as a function sampled at token
    centres, so a smaller input sees the same positions at a coarser sampling.

    Parameters
    ----------
    grid
        ``(1, H, W, C)`` embedding (SAM layout).
    size
        Target ``(h, w)`` tokens.

    Returns
    -------
    torch.Tensor
        ``(1, h, w, C)``; ``grid`` itself when the size already matches.
    """
    if tuple(grid.shape[1:3]) == tuple(size):
        return grid
    chw = grid.permute(0, 3, 1, 2).float()
    out = torch.nn.functional.interpolate(
        chw, size=size, mode="bicubic", align_corners=False, antialias=False
    )
    return out.permute(0, 2, 3, 1).to(grid.dtype).contiguous()
