"""Encoder registry, random twins and position-embedding resizing (tiny inputs, CPU)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from breastlib.encoders import ENCODERS, get_encoder, get_spec, list_methods
from breastlib.encoders.base import resize_pos_grid, seed_for, to_rgb
from breastlib.errors import BreastlibError

NAMES = ["sam", "medsam", "sslsam", "dinov2", "dinov2-s", "dinov2-b", "medclip", "biomedclip"]


def test_registry_lists_every_method_with_published_facts():
    assert list_methods() == [*NAMES, "mind"]
    facts = {n: (s.channels, s.patch_size, s.published_input, s.pca_dims)
             for n, s in ENCODERS.items()}
    assert facts["sam"] == (256, 16, 1024, 3)
    assert facts["medsam"] == (256, 16, 1024, 3)
    assert facts["dinov2"] == (1024, 14, 1792, 8)
    assert facts["biomedclip"] == (768, 16, 224, 12)
    assert get_spec("medsam").mean is None  # MedSAM takes raw [0, 1] input
    assert {ENCODERS[n].twin for n in ("sam", "medsam", "sslsam")} == {"sam"}
    with pytest.raises(BreastlibError, match="unknown encoder"):
        get_spec("resnet")


def test_seed_depends_on_network_and_seed():
    # Pinned: every random-weight result of the study was drawn with these seeds, so they
    # must not change between runs, interpreters (no salted ``hash()``) or versions.
    assert seed_for("sam", 0) == 3427017800934974879
    assert seed_for("sam", 1) == 8254273809951523708
    assert seed_for("dinov2", 0) == 6430171595630443537


def test_random_twin_is_seeded_and_reproducible():
    a = get_encoder("dinov2-s", input_size=28, seed=3, device="cpu").network.state_dict()
    from breastlib.encoders import clear_cache

    clear_cache()
    b = get_encoder("dinov2-s", input_size=28, seed=3, device="cpu").network.state_dict()
    c = get_encoder("dinov2-s", input_size=28, seed=4, device="cpu").network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["blocks.0.attn.qkv.weight"], c["blocks.0.attn.qkv.weight"])


def test_resize_pos_grid_identity_constant_and_smooth():
    grid = torch.randn(1, 8, 8, 5)
    assert resize_pos_grid(grid, (8, 8)) is grid
    const = torch.full((1, 8, 8, 2), 0.7)
    assert torch.allclose(resize_pos_grid(const, (4, 4)), const[:, :4, :4], atol=1e-6)
    # a linear ramp sampled at token centres is reproduced at the new centres (interior)
    i = (torch.arange(16) + 0.5) / 16
    ramp = (i[:, None] + 2 * i[None, :])[None, :, :, None]
    small = resize_pos_grid(ramp, (8, 8))[0, 2:6, 2:6, 0]
    j = (torch.arange(8) + 0.5) / 8
    assert torch.allclose(small, (j[:, None] + 2 * j[None, :])[2:6, 2:6], atol=2e-3)


def test_sam_encoder_matches_segment_anything_forward_at_native_size():
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT

    from breastlib.encoders.sam import SamEncoder

    torch.manual_seed(0)
    net = ImageEncoderViT(img_size=64, depth=2, embed_dim=64, num_heads=2, out_chans=32,
                          use_rel_pos=True, global_attn_indexes=(1,), window_size=2,
                          qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()
    torch.nn.init.normal_(net.pos_embed)
    x = torch.rand(2, 1, 64, 64)
    spec = get_spec("sam")
    with torch.inference_mode():
        ref = net(to_rgb(x, spec))
    got = SamEncoder(spec, net, 64).encode(x)
    assert torch.allclose(got, ref, atol=1e-5)
    # half size: position embedding resized to the 2x2 grid, forward works
    half = SamEncoder(spec, net, 32)
    assert half.pos_embed.shape == (1, 2, 2, 64)
    assert torch.allclose(half.pos_embed, resize_pos_grid(net.pos_embed.detach(), (2, 2)))
    assert half.encode(x[:, :, :32, :32]).shape == (2, 32, 2, 2)


def test_sam_vit_b_reduced_input_and_batching():
    enc = get_encoder("sam", input_size=64, device="cpu")
    assert enc.pos_embed.shape == (1, 4, 4, 768)
    assert tuple(enc.network.pos_embed.shape) == (1, 64, 64, 768)  # network untouched
    x = torch.rand(3, 1, 64, 64)
    batched = enc.encode(x)
    single = torch.cat([enc.encode(x[i : i + 1]) for i in range(3)])
    assert batched.shape == (3, 256, 4, 4) and batched.dtype == torch.float32
    assert torch.allclose(batched, single, atol=1e-4)
    with pytest.raises(ValueError, match="multiple of 16"):
        get_encoder("sam", input_size=60, device="cpu")


@pytest.mark.parametrize(("name", "size", "prefix"), [("dinov2-s", 518, 5), ("biomedclip", 224, 1)])
def test_timm_encoder_matches_timm_forward_at_native_size(name, size, prefix):
    enc = get_encoder(name, input_size=size, device="cpu")
    x = torch.rand(1, 1, size, size)
    with torch.inference_mode():
        ref = enc.network.forward_features(to_rgb(x, enc.spec))[:, prefix:]
    got = enc.encode(x)
    side = size // enc.spec.patch_size
    assert got.shape == (1, enc.spec.channels, side, side)
    assert torch.allclose(got.flatten(2).transpose(1, 2), ref, atol=1e-5)
