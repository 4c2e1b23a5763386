"""A timm ``VisionTransformer`` run at any input size with an explicit position embedding.

DINOv2 and BiomedCLIP are both timm ViTs. Rather than timm's dynamic-size path (which
resamples with antialiasing on every call), :class:`TimmViTEncoder` resizes the patch
position embedding once, with the DINOv2 reference scheme, and returns the patch tokens
without the class and register tokens: after the final norm by default, before it with
``final_norm=False`` (the released code's BiomedCLIP tokens, a Hugging Face
``last_hidden_state``).
"""

from __future__ import annotations

import torch
from torch import nn

from breastlib.encoders.base import EncoderSpec, resize_pos_grid, to_rgb
from breastlib.errors import require


def build_timm(arch: str, **kwargs: object) -> nn.Module:
    """Build a timm ViT without a head and without touching the network.

    Parameters
    ----------
    arch
        timm model name, e.g. ``"vit_large_patch14_reg4_dinov2"``.
    **kwargs
        Extra timm constructor arguments.
    """
    timm = require("timm", "encoders")
    net = timm.create_model(arch, pretrained=False, num_classes=0, global_pool="", **kwargs)
    return net.eval()


def patch_pos_grid(net: nn.Module) -> torch.Tensor:
    """The patch part of a timm ViT's position embedding as a ``(1, H, W, C)`` grid."""
    pos = net.pos_embed.detach()
    if not getattr(net, "no_embed_class", False):
        pos = pos[:, net.num_prefix_tokens:]
    side = round(pos.shape[1] ** 0.5)
    if side * side != pos.shape[1]:
        raise ValueError(f"position embedding of {pos.shape[1]} tokens is not a square grid")
    return pos.reshape(1, side, side, pos.shape[-1])


class TimmViTEncoder(nn.Module):
    """Patch tokens of a timm ViT at a chosen input size.

    Parameters
    ----------
    spec
        Encoder facts (patch size, preprocessing).
    network
        A timm ``VisionTransformer`` (shared, never modified).
    input_size
        Input side in pixels, a multiple of ``spec.patch_size``.
    normalise
        Apply the spec's input mean/std (``False``: raw [0, 1] on three channels).
    final_norm
        Return tokens after the network's final LayerNorm (``False``: before it).
    """

    def __init__(self, spec: EncoderSpec, network: nn.Module, input_size: int, *,
                 normalise: bool = True, final_norm: bool = True) -> None:
        super().__init__()
        patch = spec.patch_size
        if input_size % patch or input_size < patch:
            raise ValueError(
                f"{spec.name} input size must be a multiple of {patch}, got {input_size}"
            )
        self.spec = spec
        self.input_size = int(input_size)
        self.network = network
        self.normalise = bool(normalise)
        self.final_norm = bool(final_norm)
        tokens = input_size // patch
        grid = resize_pos_grid(patch_pos_grid(network), (tokens, tokens))
        self.register_buffer("pos_patch", grid.flatten(1, 2), persistent=False)
        cls_pos = None
        if not getattr(network, "no_embed_class", False):
            cls_pos = network.pos_embed.detach()[:, : network.num_prefix_tokens]
        self.register_buffer("pos_prefix", cls_pos, persistent=False)

    @torch.inference_mode()
    def encode(self, slices: torch.Tensor) -> torch.Tensor:
        """Encode ``(B, 1, S, S)`` slices in [0, 1] to ``(B, C, S/p, S/p)`` tokens."""
        net = self.network
        x = net.patch_embed.proj(to_rgb(slices, self.spec, normalise=self.normalise))
        batch, _, h, w = x.shape
        x = net.patch_embed.norm(x.flatten(2).transpose(1, 2)) + self.pos_patch.to(x.dtype)
        prefix = [net.cls_token.expand(batch, -1, -1)]
        if self.pos_prefix is not None:
            prefix[0] = prefix[0] + self.pos_prefix.to(x.dtype)
        if getattr(net, "reg_token", None) is not None:
            prefix.append(net.reg_token.expand(batch, -1, -1))
        x = torch.cat([*prefix, x], dim=1)
        x = net.norm_pre(x)
        for block in net.blocks:
            x = block(x)
        if self.final_norm:
            x = net.norm(x)
        x = x[:, net.num_prefix_tokens:]
        return x.transpose(1, 2).reshape(batch, -1, h, w).float()
