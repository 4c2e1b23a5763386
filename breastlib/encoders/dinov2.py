"""DINOv2 ViT/14 with four registers (small, base and the published large) through timm.

The paper's released pipeline runs Meta's ``dinov2_vitl14_reg4`` and takes
``x_norm_patchtokens``: the final-norm patch tokens without the class and register
tokens, which is what :class:`~breastlib.encoders._vit.TimmViTEncoder` returns.
"""

from __future__ import annotations

import torch
from torch import nn

from breastlib.encoders._vit import build_timm

ARCHS = {
    "dinov2-s": "vit_small_patch14_reg4_dinov2",
    "dinov2-b": "vit_base_patch14_reg4_dinov2",
    "dinov2": "vit_large_patch14_reg4_dinov2",
}

#: Meta-layout keys the feature extractor does not use (the iBOT mask token).
UNUSED_KEYS = ("mask_token",)


def build_network(arch: str) -> nn.Module:
    """Build a DINOv2-reg4 timm ViT (518 px position grid, LayerScale) without weights."""
    return build_timm(arch)


def map_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a DINOv2 checkpoint onto timm parameter names.

    Accepted layouts, each explicit:

    * Meta's release (``dinov2_vitl14_reg4_pretrain.pth``, model code
      ``facebookresearch/dinov2`` ``dinov2/models/vision_transformer.py``):
      ``register_tokens`` becomes ``reg_token``; the position embedding holds a class
      position in front (``1 + 37 * 37`` rows) which timm (no position on prefix tokens)
      folds into the class token: ``cls_token + pos_embed[:, :1]`` and
      ``pos_embed[:, 1:]``; ``mask_token`` is dropped (training only);
    * timm's own layout (``reg_token`` present), passed through unchanged.

    Returns
    -------
    mapped : dict
        Tensors by timm name.
    unexpected : list of str
        Keys that fit none of the rules (reported by the caller).
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if "reg_token" in state:
        return dict(state), []
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in UNUSED_KEYS:
            continue
        if key == "register_tokens":
            mapped["reg_token"] = value
        elif key in ("cls_token", "pos_embed"):
            continue
        else:
            mapped[key] = value
    if "pos_embed" in state and "cls_token" in state:
        pos = state["pos_embed"]
        mapped["cls_token"] = state["cls_token"] + pos[:, :1]
        mapped["pos_embed"] = pos[:, 1:]
    else:
        mapped.update({k: state[k] for k in ("cls_token", "pos_embed") if k in state})
    return mapped, []
