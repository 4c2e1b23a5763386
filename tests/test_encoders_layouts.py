"""Hugging Face CLIP vision checkpoints (the MedCLIP-SAMv2 fine-tune) load into timm.

The checkpoint is built from the committed manifest ``medclip_samv2_hf.json`` (the
published names and shapes), with random values; the expected timm name of every key is
written out here, and the converted network is checked against a forward pass computed
directly from the Hugging Face tensors.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import torch.nn.functional as F
from checkpoints import checkpoint_from_manifest

from breastlib.encoders import ENCODERS, _build, _map, clear_cache, get_encoder
from breastlib.encoders import weights as w
from breastlib.encoders.base import to_rgb
from breastlib.encoders.weights.layouts import convert_hf_clip_vision

V = "vision_model."
LAYERS, WIDTH, HEADS = 12, 768, 12
#: Keys of the published file outside the vision tower (text tower, projections,
#: temperature, an open_clip text key passed through by MedCLIP-SAMv2's converter) and
#: the position-id buffer older ``transformers`` saved.
EXTRA = {
    "text_model.embeddings.token_embedding.weight": (30522, 768),
    "text_model.encoder.layers.0.self_attn.q_proj.weight": (768, 768),
    "text_projection.fc1.weight": (640, 768),
    "text_projection.fc2.weight": (512, 640),
    "visual_projection.weight": (512, 768),
    "logit_scale": (),
    "text.transformer.pooler.dense.weight": (768, 768),
}
POSITION_IDS = V + "embeddings.position_ids"


def _hf_manifest():
    return w.load_manifest(w.CHECKPOINTS[ENCODERS["medclip"].checkpoint].manifest)


def _random(name, shape):
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    if name.endswith(("layer_norm1.weight", "layer_norm2.weight", "layernorm.weight",
                      "layrnorm.weight")):
        return 1 + 0.2 * torch.randn(shape, generator=gen)
    return (0.05 if len(shape) > 1 else 0.3) * torch.randn(shape, generator=gen)


@pytest.fixture(scope="module")
def hf_state():
    """A random MedCLIP-SAMv2 checkpoint in its published Hugging Face layout."""
    state = checkpoint_from_manifest(_hf_manifest(), _random)
    for key, shape in EXTRA.items():
        state[key] = torch.zeros((1,) * len(shape)).expand(shape) if shape else torch.tensor(4.4)
    state[POSITION_IDS] = torch.arange(197)[None]
    return state


def _expected_names():
    """timm name of every vision key, written out (``qkv`` handled separately)."""
    names = {
        V + "embeddings.class_embedding": "cls_token",
        V + "embeddings.position_embedding.weight": "pos_embed",
        V + "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
        V + "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
        V + "post_layernorm.weight": "norm.weight",
        V + "post_layernorm.bias": "norm.bias",
    }
    for i in range(LAYERS):
        hf, timm = f"{V}encoder.layers.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            names[f"{hf}layer_norm1.{kind}"] = f"{timm}norm1.{kind}"
            names[f"{hf}layer_norm2.{kind}"] = f"{timm}norm2.{kind}"
            names[f"{hf}self_attn.out_proj.{kind}"] = f"{timm}attn.proj.{kind}"
            names[f"{hf}mlp.fc1.{kind}"] = f"{timm}mlp.fc1.{kind}"
            names[f"{hf}mlp.fc2.{kind}"] = f"{timm}mlp.fc2.{kind}"
    return names


def _load(state):
    spec = ENCODERS["medclip"]
    mapped, unexpected = _map(spec, state)
    with torch.device("meta"):
        net = _build(spec, mapped)
    return w.load_strict(net, mapped, unexpected, source="test").eval()


def test_every_key_is_mapped_or_dropped_and_loads_strictly(hf_state):
    mapped, dropped = convert_hf_clip_vision(hf_state)
    assert dropped == sorted([*EXTRA, POSITION_IDS])
    with torch.device("meta"):
        expected = _build(ENCODERS["medclip"]).state_dict()
    assert set(mapped) == set(expected)
    assert all(mapped[k].shape == v.shape for k, v in expected.items())
    names = _expected_names()
    vision = [k for k in hf_state if k.startswith(V) and k != POSITION_IDS]
    assert len(vision) == 198 and set(vision) - set(names) == {
        f"{V}encoder.layers.{i}.self_attn.{p}_proj.{kind}"
        for i in range(LAYERS) for p in "qkv" for kind in ("weight", "bias")
    }
    for hf, timm in names.items():
        assert torch.equal(mapped[timm].flatten(), hf_state[hf].flatten()), hf
    assert mapped["cls_token"].shape == (1, 1, WIDTH)
    assert mapped["pos_embed"].shape == (1, 197, WIDTH)
    for i in range(LAYERS):
        attn = f"{V}encoder.layers.{i}.self_attn."
        for kind in ("weight", "bias"):
            rows = mapped[f"blocks.{i}.attn.qkv.{kind}"].split(WIDTH)
            for part, got in zip("qkv", rows, strict=True):
                assert torch.equal(got, hf_state[f"{attn}{part}_proj.{kind}"])
    net = _load(hf_state)
    assert isinstance(net.norm_pre, torch.nn.Identity)  # the port has no pre_layrnorm


def _attention(x, state, layer):
    """Multi-head self-attention from the separate Hugging Face projections."""
    p = f"{V}encoder.layers.{layer}.self_attn."

    def heads(t):
        return t.unflatten(-1, (HEADS, WIDTH // HEADS)).transpose(1, 2)

    q, k, v = (heads(F.linear(x, state[f"{p}{n}_proj.weight"], state[f"{p}{n}_proj.bias"]))
               for n in "qkv")
    weights = torch.softmax(q @ k.transpose(-1, -2) * (WIDTH // HEADS) ** -0.5, dim=-1)
    out = (weights @ v).transpose(1, 2).flatten(2)
    return F.linear(out, state[f"{p}out_proj.weight"], state[f"{p}out_proj.bias"])


def _clip_vision_tokens(rgb, state):
    """The Hugging Face CLIP vision forward, final-norm tokens without the class token."""
    def norm(x, name):
        return F.layer_norm(x, (WIDTH,), state[name + ".weight"], state[name + ".bias"], 1e-6)

    e = V + "embeddings."
    x = F.conv2d(rgb, state[e + "patch_embedding.weight"], state[e + "patch_embedding.bias"],
                 stride=16).flatten(2).transpose(1, 2)
    cls = state[e + "class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + state[e + "position_embedding.weight"]
    if V + "pre_layrnorm.weight" in state:
        x = norm(x, V + "pre_layrnorm")
    for i in range(LAYERS):
        p = f"{V}encoder.layers.{i}."
        x = x + _attention(norm(x, p + "layer_norm1"), state, i)
        h = F.gelu(F.linear(norm(x, p + "layer_norm2"), state[p + "mlp.fc1.weight"],
                            state[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    return norm(x, V + "post_layernorm")[:, 1:]


def test_fused_qkv_is_query_key_value_in_order(hf_state):
    net = _load(hf_state)
    x = torch.randn(2, 197, WIDTH, generator=torch.Generator().manual_seed(1))
    for layer in (0, 11):
        with torch.inference_mode():
            got = net.blocks[layer].attn(x)
        assert torch.allclose(got, _attention(x, hf_state, layer), atol=1e-5)


@pytest.mark.parametrize("pre_norm", [False, True], ids=["port", "standard-clip"])
def test_converted_encoder_matches_clip_vision_forward(hf_state, pre_norm):
    state = dict(hf_state)
    if pre_norm:  # a standard CLIPVisionModel file: kept as norm_pre, not dropped
        state[V + "pre_layrnorm.weight"] = _random(V + "pre_layrnorm.weight", (WIDTH,))
        state[V + "pre_layrnorm.bias"] = _random(V + "pre_layrnorm.bias", (WIDTH,))
    net = _load(state)
    assert isinstance(net.norm_pre, torch.nn.LayerNorm) == pre_norm
    if pre_norm:
        assert torch.equal(net.norm_pre.weight, state[V + "pre_layrnorm.weight"])
    from breastlib.encoders._vit import TimmViTEncoder

    enc = TimmViTEncoder(ENCODERS["medclip"], net, 224)
    x = torch.rand(1, 1, 224, 224, generator=torch.Generator().manual_seed(2))
    got = enc.encode(x).flatten(2).transpose(1, 2)
    with torch.inference_mode():
        ref = _clip_vision_tokens(to_rgb(x, enc.spec), state)
    assert torch.allclose(got, ref, atol=1e-4)


def _tiny_hf_state():
    state = checkpoint_from_manifest(_hf_manifest())
    state["visual_projection.weight"] = torch.zeros(512, 768)
    state["logit_scale"] = torch.tensor(4.4)
    return state


def test_medclip_file_in_hf_layout_loads_by_path(tmp_path):
    clear_cache()
    state = _tiny_hf_state()
    path = tmp_path / "pytorch_model.bin"
    torch.save(state, path)
    enc = get_encoder("medclip", weights=str(path), input_size=32, device="cpu")
    qkv = enc.network.blocks[3].attn.qkv.weight
    assert torch.equal(qkv[WIDTH:2 * WIDTH], state[f"{V}encoder.layers.3.self_attn.k_proj.weight"])
    assert enc.encode(torch.rand(1, 1, 32, 32)).shape == (1, WIDTH, 2, 2)
    parallel = tmp_path / "parallel.bin"
    torch.save({"module." + k: v for k, v in state.items()}, parallel)
    get_encoder("medclip", weights=str(parallel), input_size=32, device="cpu")
    clear_cache()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.__setitem__(V + "encoder.layers.0.self_attn.rotary.weight", torch.zeros(3)),
         r"1 unmapped: vision_model\.encoder\.layers\.0\.self_attn\.rotary\.weight"),
        (lambda s: s.__setitem__("visual.trunk.cls_token", torch.zeros(1, 1, 768)),
         r"1 unmapped: visual\.trunk\.cls_token"),
        (lambda s: s.pop(V + "encoder.layers.5.self_attn.k_proj.weight"),
         r"no vision_model\.encoder\.layers\.5\.self_attn\.k_proj\.weight to fuse"),
        (lambda s: s.__setitem__(V + "encoder.layers.2.self_attn.v_proj.bias", torch.zeros(7)),
         r"layers\.2\.self_attn\.\{q,k,v\}_proj\.bias differ in shape"),
        (lambda s: s.__setitem__(V + "embeddings.class_embedding", torch.zeros(1, 1, 768)),
         r"class_embedding \(1, 1, 768\) is not \(C,\)"),
    ],
    ids=["unknown-vision-key", "mixed-layout", "missing-k", "qkv-shapes", "cls-rank"],
)
def test_keys_that_do_not_convert_are_named(edit, message):
    state = _tiny_hf_state()
    edit(state)
    with pytest.raises(w.WeightsError, match=message):
        convert_hf_clip_vision(state)


def test_missing_vision_keys_are_named_by_the_strict_load():
    state = _tiny_hf_state()
    del state[V + "post_layernorm.bias"]
    del state[V + "embeddings.patch_embedding.bias"]  # standard CLIP has no patch bias
    with pytest.raises(w.WeightsError, match=r"2 missing: norm\.bias, patch_embed\.proj\.bias"):
        _load(state)
