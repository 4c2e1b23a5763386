"""Checkpoint layouts that need more than renaming a prefix: Hugging Face CLIP vision towers.

MedCLIP-SAMv2 (``HealthX-Lab/MedCLIP-SAMv2``) fine-tunes BiomedCLIP in open_clip, then
publishes it as ``pytorch_model.bin`` in the Hugging Face layout of the
``chuhac/BiomedCLIP-vit-bert-hf`` port (their ``saliency_maps/model/convert.py``); the
study's code loads that file into the port and runs its ``vision_model``. breastlib runs
the same tower as timm's ``vit_base_patch16_224`` (open_clip's ``visual.trunk``), so
:func:`convert_hf_clip_vision` maps the Hugging Face names back:

==============================================================  ==============================
Hugging Face (``vision_model.`` + ...)                           timm
==============================================================  ==============================
``embeddings.class_embedding`` ``(C,)``                          ``cls_token`` ``(1, 1, C)``
``embeddings.position_embedding.weight`` ``(N, C)``              ``pos_embed`` ``(1, N, C)``
``embeddings.patch_embedding.{weight,bias}``                     ``patch_embed.proj.*``
``pre_layrnorm.*`` (standard CLIP only, see below)               ``norm_pre.*``
``encoder.layers.i.layer_norm1.*`` / ``layer_norm2.*``           ``blocks.i.norm1.*`` / ``norm2.*``
``encoder.layers.i.self_attn.{q,k,v}_proj.*`` ``(C, ...)`` each  ``blocks.i.attn.qkv.*``
                                                                 ``(3C, ...)``, rows q, k, v
``encoder.layers.i.self_attn.out_proj.*``                        ``blocks.i.attn.proj.*``
``encoder.layers.i.mlp.fc1.*`` / ``fc2.*``                       ``blocks.i.mlp.fc1.*`` / ``fc2.*``
``post_layernorm.*``                                             ``norm.*``
==============================================================  ==============================

timm's ``Attention`` splits its fused ``qkv`` output as ``reshape(B, N, 3, heads, d)``, so
rows ``[0, C)`` are the query, ``[C, 2C)`` the key and ``[2C, 3C)`` the value projection;
both implementations scale by ``d ** -0.5``.

Pre-layernorm. BiomedCLIP's timm trunk has no norm between the embeddings and the first
block (``norm_pre`` is an identity), and the port used for MedCLIP-SAMv2 removes the
``pre_layrnorm`` of Hugging Face's ``CLIPVisionModel`` for that reason ("No pre_norm in
open_clip Vision Tower"), so that file has no such key. A checkpoint saved from a
standard ``CLIPVisionModel`` does have one; it is kept as ``norm_pre`` and
:func:`breastlib.encoders.biomedclip.build_network` then builds the trunk with a
LayerNorm there (a LayerNorm with unit weight and zero bias is not an identity, so
dropping it would change every feature). Such a checkpoint also needs the patch
embedding bias that BiomedCLIP has and standard CLIP lacks; without it the strict load
reports the key missing.

Keys outside the vision tower (:data:`HF_UNUSED_PREFIXES`: text tower, projections,
temperature, and the open_clip text keys that MedCLIP-SAMv2's converter passes through
unchanged) are dropped and returned; the non-persistent ``position_ids`` buffer that
older ``transformers`` versions saved is dropped too. Any other key is an error naming it.
"""

from __future__ import annotations

import logging
import re

import torch

from breastlib.encoders.weights.registry import WeightsError

logger = logging.getLogger(__name__)

#: Prefix of every vision-tower key in a Hugging Face ``CLIPModel`` state dict.
HF_VISION_PREFIX = "vision_model."

#: Keys of a Hugging Face CLIP checkpoint that the vision trunk does not use.
HF_UNUSED_PREFIXES = (
    "text_model.", "text_projection.", "visual_projection.", "text.",
    "logit_scale", "logit_bias",
)

#: Vision-tower buffers that carry no weights (an ``arange`` of positions).
HF_UNUSED_VISION_KEYS = ("embeddings.position_ids",)

_P = r"(weight|bias)"
_RENAMES = [
    (re.compile(rf"embeddings\.patch_embedding\.{_P}"), r"patch_embed.proj.\1"),
    (re.compile(rf"pre_layrnorm\.{_P}"), r"norm_pre.\1"),
    (re.compile(rf"post_layernorm\.{_P}"), r"norm.\1"),
    (re.compile(rf"encoder\.layers\.(\d+)\.layer_norm1\.{_P}"), r"blocks.\1.norm1.\2"),
    (re.compile(rf"encoder\.layers\.(\d+)\.layer_norm2\.{_P}"), r"blocks.\1.norm2.\2"),
    (re.compile(rf"encoder\.layers\.(\d+)\.self_attn\.out_proj\.{_P}"), r"blocks.\1.attn.proj.\2"),
    (re.compile(rf"encoder\.layers\.(\d+)\.mlp\.(fc1|fc2)\.{_P}"), r"blocks.\1.mlp.\2.\3"),
]
_QKV = re.compile(rf"encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.{_P}")


def is_hf_clip_vision(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` is in the Hugging Face CLIP layout (``vision_model.*`` keys)."""
    return any(k.startswith(HF_VISION_PREFIX) for k in state)


def _listing(label: str, keys: list[str]) -> str:
    more = f" (+{len(keys) - 10} more)" if len(keys) > 10 else ""
    return f"{len(keys)} {label}: {', '.join(keys[:10])}{more}"


def convert_hf_clip_vision(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a Hugging Face CLIP vision tower onto timm ``VisionTransformer`` names.

    Parameters
    ----------
    state_dict
        A ``CLIPModel``-style state dict: the tower under ``vision_model.``, optionally
        with the text tower, projections and ``logit_scale`` (see the module docstring
        for the mapping).

    Returns
    -------
    mapped : dict
        Tensors by timm name; ``norm_pre.*`` only when the checkpoint has a
        ``pre_layrnorm``.
    dropped : list of str
        Keys not used by the vision trunk (sorted), also logged at INFO level.

    Raises
    ------
    WeightsError
        Naming every key that fits no rule, every layer whose ``q``/``k``/``v``
        projections are incomplete or of different shapes, and embeddings of an
        unexpected rank.
    """
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unknown: list[str] = []
    bad: list[str] = []
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if not key.startswith(HF_VISION_PREFIX):
            (dropped if key.startswith(HF_UNUSED_PREFIXES) else unknown).append(key)
            continue
        name = key[len(HF_VISION_PREFIX):]
        if name in HF_UNUSED_VISION_KEYS:
            dropped.append(key)
        elif name == "embeddings.class_embedding":
            if value.dim() != 1:
                bad.append(f"{key} {tuple(value.shape)} is not (C,)")
            mapped["cls_token"] = value.reshape(1, 1, -1)
        elif name == "embeddings.position_embedding.weight":
            if value.dim() != 2:
                bad.append(f"{key} {tuple(value.shape)} is not (N, C)")
            mapped["pos_embed"] = value.unsqueeze(0)
        elif match := _QKV.fullmatch(name):
            layer, part, kind = match.groups()
            qkv.setdefault((layer, kind), {})[part] = value
        else:
            for pattern, target in _RENAMES:
                if hit := pattern.fullmatch(name):
                    mapped[hit.expand(target)] = value
                    break
            else:
                unknown.append(key)
    for (layer, kind), parts in sorted(qkv.items(), key=lambda item: (int(item[0][0]), item[0][1])):
        where = f"{HF_VISION_PREFIX}encoder.layers.{layer}.self_attn"
        absent = [f"{where}.{p}_proj.{kind}" for p in "qkv" if p not in parts]
        if absent:
            bad.append("no " + ", ".join(absent) + " to fuse into qkv")
            continue
        shapes = {tuple(parts[p].shape) for p in "qkv"}
        if len(shapes) != 1:
            bad.append(f"{where}.{{q,k,v}}_proj.{kind} differ in shape {sorted(shapes)}")
            continue
        mapped[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts[p] for p in "qkv"], dim=0)
    if unknown or bad:
        parts = [_listing("unmapped", sorted(unknown))] if unknown else []
        parts += [_listing("malformed", bad)] if bad else []
        raise WeightsError(
            "Hugging Face CLIP vision checkpoint does not convert: " + "; ".join(parts)
        )
    dropped.sort()
    if dropped:
        logger.info("dropped %d keys outside the vision tower: %s", len(dropped),
                    ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""))
    return mapped, dropped
