"""BiomedCLIP ViT-B/16 vision tower (``biomedclip``) and its MedCLIP-SAMv2 fine-tune (``medclip``).

BiomedCLIP's open_clip configuration (``hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-
vit_base_patch16_224``) wraps timm's ``vit_base_patch16_224`` as ``visual.trunk`` with
no pooling, followed by a linear projection head to the 512-d joint space. breastlib
takes the trunk's patch tokens after its final LayerNorm, without the class token (768
channels, 14 x 14 tokens at 224 px); the projection head is not used. The paper's released
code takes the Hugging Face ``last_hidden_state`` instead, which comes before that norm
(``final_norm=False`` in :func:`breastlib.encoders.get_encoder`, the ``paper`` profile).

The MedCLIP-SAMv2 fine-tune is published in a Hugging Face layout (``vision_model.*``),
converted on load by :func:`breastlib.encoders.weights.layouts.convert_hf_clip_vision`.
"""

from __future__ import annotations

import torch
from torch import nn

from breastlib.encoders._vit import build_timm
from breastlib.encoders.weights.layouts import convert_hf_clip_vision, is_hf_clip_vision

ARCH = "vit_base_patch16_224"

#: Checkpoint parts outside the vision trunk, dropped by name (text tower, projection
#: head, temperature).
UNUSED_PREFIXES = ("text.", "visual.head.", "logit_scale", "logit_bias")


def build_network(pre_norm: bool = False) -> nn.Module:
    """Build the ViT-B/16 vision trunk (224 px position grid) without weights.

    Parameters
    ----------
    pre_norm
        Put a LayerNorm (``norm_pre``, eps as the trunk's other norms) between the
        embeddings and the first block, for checkpoints that carry one (a standard
        Hugging Face ``CLIPVisionModel``'s ``pre_layrnorm``). BiomedCLIP and the
        MedCLIP-SAMv2 fine-tune have none. Built by replacing the identity rather than
        with timm's ``pre_norm=True``, which would also drop the patch-embedding bias
        that BiomedCLIP has.
    """
    net = build_timm(ARCH)
    if pre_norm:
        net.norm_pre = nn.LayerNorm(net.embed_dim, eps=net.norm.eps)
    return net


def needs_pre_norm(mapped: dict[str, torch.Tensor]) -> bool:
    """Whether mapped tensors (from :func:`map_state_dict`) include a pre-block norm."""
    return "norm_pre.weight" in mapped or "norm_pre.bias" in mapped


def map_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a BiomedCLIP checkpoint onto timm ``vit_base_patch16_224`` names.

    Accepted layouts, each explicit:

    * open_clip ``open_clip_pytorch_model.bin``: ``visual.trunk.*`` kept and stripped,
      :data:`UNUSED_PREFIXES` dropped;
    * the same saved by open_clip's training loop (every key prefixed ``module.``);
    * Hugging Face CLIP (any key under ``vision_model.``), the form in which
      MedCLIP-SAMv2 publishes its fine-tune (``pytorch_model.bin``): converted by
      :func:`~breastlib.encoders.weights.layouts.convert_hf_clip_vision`, which drops
      the text tower and projections and raises on any key it cannot place;
    * a bare timm trunk state dict (``patch_embed.*``, ``blocks.*``), passed through.

    Returns
    -------
    mapped : dict
        Tensors by timm name.
    unexpected : list of str
        Keys that fit none of the rules.
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if is_hf_clip_vision(state):
        mapped, _dropped = convert_hf_clip_vision(state)
        return mapped, []
    if not any(k.startswith("visual.") for k in state):
        return dict(state), []
    mapped = {}
    unexpected: list[str] = []
    for key, value in state.items():
        if key.startswith("visual.trunk."):
            mapped[key[len("visual.trunk."):]] = value
        elif not key.startswith(UNUSED_PREFIXES):
            unexpected.append(key)
    return mapped, unexpected
