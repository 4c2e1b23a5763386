"""BiomedCLIP ViT-B/16 vision tower (``biomedclip``) and its MedCLIP-SAMv2 fine-tune (``medclip``).

BiomedCLIP's open_clip configuration (``hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-
vit_base_patch16_224``) wraps timm's ``vit_base_patch16_224`` as ``visual.trunk`` with
no pooling, followed by a linear projection head to the 512-d joint space. The
published pipeline uses the last hidden state without the class token (768 channels,
14 x 14 tokens at 224 px); the projection head is not used.
"""

from __future__ import annotations

import torch
from torch import nn

from breastlib.encoders._vit import build_timm

ARCH = "vit_base_patch16_224"

#: Checkpoint parts outside the vision trunk, dropped by name (text tower, projection
#: head, temperature).
UNUSED_PREFIXES = ("text.", "visual.head.", "logit_scale", "logit_bias")


def build_network() -> nn.Module:
    """Build the ViT-B/16 vision trunk (224 px position grid) without weights."""
    return build_timm(ARCH)


def map_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map an open_clip BiomedCLIP checkpoint onto timm ``vit_base_patch16_224`` names.

    Accepted layouts, each explicit:

    * open_clip ``open_clip_pytorch_model.bin``: ``visual.trunk.*`` kept and stripped,
      :data:`UNUSED_PREFIXES` dropped;
    * the same saved by open_clip's training loop (every key prefixed ``module.``), the
      form a fine-tune such as MedCLIP-SAMv2 is expected to take (not verifiable here:
      see the book's note on uncertain layouts);
    * a bare timm trunk state dict (``patch_embed.*``, ``blocks.*``), passed through.

    Returns
    -------
    mapped : dict
        Tensors by timm name.
    unexpected : list of str
        Keys that fit none of the rules (e.g. Hugging Face ``vision_model.*`` layouts,
        which need a conversion this loader does not guess).
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if not any(k.startswith("visual.") for k in state):
        return dict(state), []
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        if key.startswith("visual.trunk."):
            mapped[key[len("visual.trunk."):]] = value
        elif not key.startswith(UNUSED_PREFIXES):
            unexpected.append(key)
    return mapped, unexpected
