"""SAM ViT-B image encoder (SAM, MedSAM, SSLSAM) through ``segment-anything``.

The network is always built at SAM's native 1024 px so that checkpoints load into it
unchanged; smaller inputs run through :class:`SamEncoder`, which resizes the absolute
position embedding to the smaller token grid (bicubic, see
:func:`~breastlib.encoders.base.resize_pos_grid`). The decomposed relative position
tables of the four global-attention blocks are resized linearly by ``segment-anything``
itself (``get_rel_pos``); the windowed blocks keep their 14 x 14 tables.

With random weights the library's own initialiser applies, which sets the absolute
position embedding and the relative tables to zero: a random SAM has no positional
information, a property of the architecture as released.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from breastlib.encoders.base import EncoderSpec, resize_pos_grid, to_rgb
from breastlib.errors import require

NATIVE_SIZE = 1024
PATCH = 16
EMBED_DIM = 768
DEPTH = 12
HEADS = 12
GLOBAL_BLOCKS = (2, 5, 8, 11)
WINDOW = 14
NECK_CHANNELS = 256

#: Top-level prefixes of a full ``Sam`` state dict that the image encoder does not use.
UNUSED_PREFIXES = ("prompt_encoder.", "mask_decoder.")


def build_network() -> nn.Module:
    """Build the SAM ViT-B ``ImageEncoderViT`` at 1024 px with library initialisation.

    Returns
    -------
    torch.nn.Module
        The encoder (about 89 M parameters) on the CPU, in eval mode.
    """
    require("segment_anything", "encoders")
    from segment_anything.modeling import ImageEncoderViT

    net = ImageEncoderViT(
        img_size=NATIVE_SIZE,
        patch_size=PATCH,
        in_chans=3,
        embed_dim=EMBED_DIM,
        depth=DEPTH,
        num_heads=HEADS,
        mlp_ratio=4.0,
        out_chans=NECK_CHANNELS,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        act_layer=nn.GELU,
        use_abs_pos=True,
        use_rel_pos=True,
        rel_pos_zero_init=True,
        window_size=WINDOW,
        global_attn_indexes=GLOBAL_BLOCKS,
    )
    return net.eval()


def map_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a SAM-family checkpoint onto ``ImageEncoderViT`` parameter names.

    Accepted layouts, each explicit:

    * a full ``Sam`` state dict (Meta's ``sam_vit_b_01ec64.pth``, MedSAM's
      ``medsam_vit_b.pth``): ``image_encoder.*`` is kept and stripped, the prompt encoder
      and mask decoder (:data:`UNUSED_PREFIXES`) are dropped;
    * the same saved from ``nn.DataParallel`` (every key prefixed ``module.``), as in
      the SSLSAM / finetune-SAM training code;
    * a bare image-encoder state dict (``patch_embed.*``, ``blocks.*``, ``neck.*``).

    Parameters
    ----------
    state
        Raw checkpoint tensors by name.

    Returns
    -------
    mapped : dict
        Tensors by ``ImageEncoderViT`` name.
    unexpected : list of str
        Keys that fit none of the rules above (the caller reports them).
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    full = any(k.startswith("image_encoder.") for k in state)
    for key, value in state.items():
        if full:
            if key.startswith("image_encoder."):
                mapped[key[len("image_encoder."):]] = value
            elif not key.startswith(UNUSED_PREFIXES):
                unexpected.append(key)
        else:
            mapped[key] = value
    return mapped, unexpected


class SamEncoder(nn.Module):
    """Run a SAM ViT-B image encoder at any multiple of 16 px.

    Parameters
    ----------
    spec
        Encoder facts (preprocessing).
    network
        A network from :func:`build_network` (shared, never modified).
    input_size
        Input side in pixels; the neck returns ``input_size / 16`` tokens per side.
    """

    def __init__(self, spec: EncoderSpec, network: nn.Module, input_size: int) -> None:
        super().__init__()
        if input_size % PATCH or input_size < PATCH:
            raise ValueError(f"SAM input size must be a multiple of {PATCH}, got {input_size}")
        self.spec = spec
        self.input_size = int(input_size)
        self.network = network
        tokens = input_size // PATCH
        self.register_buffer(
            "pos_embed", resize_pos_grid(network.pos_embed.detach(), (tokens, tokens)),
            persistent=False,
        )

    @torch.inference_mode()
    def encode(self, slices: torch.Tensor) -> torch.Tensor:
        """Encode ``(B, 1, S, S)`` slices in [0, 1] to ``(B, 256, S/16, S/16)`` tokens."""
        net = self.network
        x = net.patch_embed(to_rgb(slices, self.spec))  # (B, h, w, 768)
        x = x + self.pos_embed.to(x.dtype)
        for block in net.blocks:
            x = block(x)
        return net.neck(x.permute(0, 3, 1, 2)).float()
