"""The checkpoint registry: every downloadable checkpoint, its source and its manifest.

A SHA-256 is recorded in :data:`CHECKPOINTS` only where public sources agree on it;
otherwise it is ``None`` (unverified) and ``breastlib weights verify --record`` pins the
hash of the file you downloaded (see :mod:`breastlib.encoders.weights.cache`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breastlib.errors import BreastlibError

#: Committed manifests: the parameter names and shapes of each checkpoint layout.
MANIFEST_DIR = Path(__file__).parents[1] / "manifests"


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
            "medclip_samv2_hf.json",
            "HealthX-Lab/MedCLIP-SAMv2 README ('Our fine-tuned model', Google Drive, "
            "published as pytorch_model.bin in the Hugging Face layout of "
            "chuhac/BiomedCLIP-vit-bert-hf; save it under this file name, it is converted "
            "on load)",
            None, "~784 MB",
        ),
    ]
}


def get_checkpoint(name: str) -> Checkpoint:
    """Look up a checkpoint by registry name (error lists the known names)."""
    if name not in CHECKPOINTS:
        raise WeightsError(
            f"unknown checkpoint '{name}': choose from {', '.join(sorted(CHECKPOINTS))}"
        )
    return CHECKPOINTS[name]


def load_manifest(filename: str) -> dict[str, Any]:
    """Read a committed manifest: ``{source, layout, parameters: {name: shape}}``."""
    return json.loads((MANIFEST_DIR / filename).read_text())
