"""Encoder registry: every method name, its facts, and a builder for ready-to-run encoders.

>>> from breastlib.encoders import list_methods, get_spec
>>> list_methods()[:3]
['sam', 'medsam', 'sslsam']
>>> get_spec("dinov2").pca_dims
8

``get_encoder(name, weights=..., input_size=..., seed=..., device=...)`` returns a
:class:`~breastlib.encoders.base.SliceEncoder`. ``weights`` is ``"random"`` (the
architecture with its library's initialiser, seeded from the network and ``seed``),
``"pretrained"`` (the registry checkpoint from the cache, see
:mod:`breastlib.encoders.weights`) or a path to a checkpoint file.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from breastlib.device import resolve_device
from breastlib.encoders.base import CLIP_MEAN, CLIP_STD, EncoderSpec, SliceEncoder, seed_for
from breastlib.errors import BreastlibError

_SAM_NOTE = "SAM ViT-B image encoder, neck output"
ENCODERS: dict[str, EncoderSpec] = {
    s.name: s
    for s in [
        EncoderSpec("sam", "sam", "sam_vit_b", 16, 256, 1024, 256, 3,
                    checkpoint="sam_vit_b", random_twin="sam", description=_SAM_NOTE),
        EncoderSpec("medsam", "sam", "sam_vit_b", 16, 256, 1024, 256, 3, mean=None, std=None,
                    checkpoint="medsam_vit_b", random_twin="sam",
                    description=_SAM_NOTE + ", MedSAM weights, raw [0, 1] input"),
        EncoderSpec("sslsam", "sam", "sam_vit_b", 16, 256, 1024, 256, 3,
                    checkpoint="sslsam_vit_b", random_twin="sam",
                    description=_SAM_NOTE + ", SSLSAM (breast MRI) weights"),
        EncoderSpec("dinov2", "dinov2", "vit_large_patch14_reg4_dinov2", 14, 1024, 1792, 224, 8,
                    checkpoint="dinov2_vitl14_reg4",
                    description="DINOv2 ViT-L/14 + 4 registers, x_norm_patchtokens"),
        EncoderSpec("dinov2-s", "dinov2", "vit_small_patch14_reg4_dinov2", 14, 384, 1792, 224, 8,
                    checkpoint="dinov2_vits14_reg4",
                    description="DINOv2 ViT-S/14 + 4 registers, x_norm_patchtokens"),
        EncoderSpec("dinov2-b", "dinov2", "vit_base_patch14_reg4_dinov2", 14, 768, 1792, 224, 8,
                    checkpoint="dinov2_vitb14_reg4",
                    description="DINOv2 ViT-B/14 + 4 registers, x_norm_patchtokens"),
        EncoderSpec("medclip", "biomedclip", "vit_base_patch16_224", 16, 768, 224, 224, 12,
                    mean=CLIP_MEAN, std=CLIP_STD, checkpoint="medclip_samv2",
                    random_twin="biomedclip",
                    description="BiomedCLIP ViT-B/16 vision tower, MedCLIP-SAMv2 fine-tune"),
        EncoderSpec("biomedclip", "biomedclip", "vit_base_patch16_224", 16, 768, 224, 224, 12,
                    mean=CLIP_MEAN, std=CLIP_STD, checkpoint="biomedclip",
                    random_twin="biomedclip",
                    description="BiomedCLIP ViT-B/16 vision tower, last hidden state"),
    ]
}
#: 3-D handcrafted descriptor, run by :func:`breastlib.features.feature_pair` directly.
MIND = "mind"


def list_methods() -> list[str]:
    """All method names accepted by ``--method``: the 2-D encoders, then ``mind``."""
    return [*ENCODERS, MIND]


def checkpoint_names(requested: Iterable[str]) -> list[str]:
    """The registry checkpoints a user asks for, in order, each once.

    Parameters
    ----------
    requested
        Checkpoint names (``sam_vit_b``), encoder method names as the study uses them
        (``sam``, ``dinov2``, ``medclip``: their pretrained checkpoint) or ``all`` (every
        checkpoint in the registry).

    Raises
    ------
    BreastlibError
        A name that is none of these (the message lists the valid ones).
    """
    from breastlib.encoders.weights import CHECKPOINTS

    names: list[str] = []
    for name in requested:
        if name == "all":
            found = list(CHECKPOINTS)
        elif name in CHECKPOINTS:
            found = [name]
        elif name in ENCODERS and ENCODERS[name].checkpoint:
            found = [ENCODERS[name].checkpoint]
        else:
            raise BreastlibError(
                f"unknown weights '{name}': give an encoder ({', '.join(ENCODERS)}), a "
                f"checkpoint ({', '.join(CHECKPOINTS)}) or 'all'")
        names += [n for n in found if n not in names]
    return names


def get_spec(name: str) -> EncoderSpec:
    """The :class:`EncoderSpec` of a 2-D encoder name."""
    if name not in ENCODERS:
        raise BreastlibError(
            f"unknown encoder '{name}': choose from {', '.join(list_methods())}"
        )
    return ENCODERS[name]


@dataclass(frozen=True)
class WeightsChoice:
    """A resolved ``weights`` argument.

    Attributes
    ----------
    kind
        ``"random"``, ``"pretrained"`` or ``"path"``.
    path
        Checkpoint file (``None`` for random).
    identity
        Stable key for caches: ``random:<twin>:<seed>`` or ``sha256:<hex>``.
    sha256
        File hash (``None`` for random).
    """

    kind: str
    path: Path | None
    identity: str
    sha256: str | None


def resolve_weights(spec: EncoderSpec, weights: str | os.PathLike, seed: int) -> WeightsChoice:
    """Turn ``"random" | "pretrained" | PATH`` into a file and a cache identity.

    Raises
    ------
    WeightsError
        Pretrained weights are not in the cache or fail their checksum.
    """
    from breastlib.encoders.weights.cache import file_sha256, locate
    from breastlib.encoders.weights.registry import WeightsError

    if str(weights) == "random":
        return WeightsChoice("random", None, f"random:{spec.twin}:{int(seed)}", None)
    if str(weights) == "pretrained":
        if spec.checkpoint is None:
            raise BreastlibError(f"encoder '{spec.name}' has no pretrained checkpoint")
        path = locate(spec.checkpoint)
        kind = "pretrained"
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"{path}: checkpoint file not found (weights must be 'random', "
                f"'pretrained' or a path to a file)"
            )
        kind = "path"
    sha = file_sha256(path)
    return WeightsChoice(kind, path, f"sha256:{sha}", sha)


def _build(spec: EncoderSpec, mapped: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """The family's network; ``mapped`` (checkpoint tensors by network name) picks a
    variant where a layout needs one (a CLIP tower with a pre-block norm)."""
    if spec.family == "sam":
        from breastlib.encoders.sam import build_network

        return build_network()
    if spec.family == "dinov2":
        from breastlib.encoders.dinov2 import build_network

        return build_network(spec.arch)
    from breastlib.encoders.biomedclip import build_network, needs_pre_norm

    return build_network(pre_norm=mapped is not None and needs_pre_norm(mapped))


def _map(spec: EncoderSpec, state: dict[str, torch.Tensor]):
    if spec.family == "sam":
        from breastlib.encoders.sam import map_state_dict
    elif spec.family == "dinov2":
        from breastlib.encoders.dinov2 import map_state_dict
    else:
        from breastlib.encoders.biomedclip import map_state_dict
    return map_state_dict(state)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_network(spec: EncoderSpec, choice: WeightsChoice) -> nn.Module:
    """Build the frozen CPU network of ``spec`` with random or checkpoint weights."""
    from breastlib.encoders.weights.loading import load_strict, read_state_dict

    if choice.kind == "random":
        with _seeded(seed_for(spec.twin, int(choice.identity.rsplit(":", 1)[1]))):
            net = _build(spec)
    else:
        assert choice.path is not None
        state = read_state_dict(choice.path)
        mapped, unexpected = _map(spec, state)
        with torch.device("meta"):
            net = _build(spec, mapped)
        load_strict(net, mapped, unexpected, source=str(choice.path))
    net.eval()
    for param in net.parameters():
        param.requires_grad_(False)
    return net


_NETWORKS: OrderedDict[tuple[str, str, str], nn.Module] = OrderedDict()
_MAX_CACHED = 2


def _network(spec: EncoderSpec, choice: WeightsChoice, device: torch.device) -> nn.Module:
    key = (spec.arch, choice.identity, str(device))
    if key not in _NETWORKS:
        while len(_NETWORKS) >= _MAX_CACHED:
            _NETWORKS.popitem(last=False)
        _NETWORKS[key] = build_network(spec, choice).to(device)
    _NETWORKS.move_to_end(key)
    return _NETWORKS[key]


def clear_cache() -> None:
    """Forget the networks kept in memory between calls."""
    _NETWORKS.clear()


def get_encoder(
    name: str,
    *,
    weights: str | os.PathLike = "random",
    input_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    input_norm: bool = True,
    final_norm: bool = True,
) -> SliceEncoder:
    """A ready-to-run 2-D encoder.

    Parameters
    ----------
    name
        Encoder name from :func:`list_methods` (not ``mind``).
    weights
        ``"random"``, ``"pretrained"`` or a checkpoint path.
    input_size
        Square input side in pixels (multiple of the patch size); default the
        published size.
    seed
        Seeds random weights (with the network name).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or a device.
    input_norm
        DINOv2 and CLIP towers: normalise the input with the spec's mean/std (``False``:
        raw [0, 1], as the released code feeds them). The SAM family keeps its own
        preprocessing, as released (ImageNet statistics, MedSAM raw).
    final_norm
        CLIP towers: tokens after the final LayerNorm (``False``: before it, as the
        released code's Hugging Face ``last_hidden_state``). DINOv2's tokens are always
        taken after its final norm (``x_norm_patchtokens``).

    Returns
    -------
    SliceEncoder
        ``encode((B, 1, S, S) in [0, 1]) -> (B, C, S/p, S/p)`` float32.
    """
    spec = get_spec(name)
    dev = resolve_device(device)
    choice = resolve_weights(spec, weights, seed)
    size = int(input_size or spec.published_input)
    net = _network(spec, choice, dev)
    if spec.family == "sam":
        from breastlib.encoders.sam import SamEncoder

        return SamEncoder(spec, net, size).to(dev)
    from breastlib.encoders._vit import TimmViTEncoder

    return TimmViTEncoder(spec, net, size, normalise=input_norm,
                          final_norm=final_norm or spec.family != "biomedclip").to(dev)


def weights_setting(method: str, weights: str) -> str:
    """``"auto"`` -> ``"pretrained"`` when the encoder's checkpoint is in the cache, else
    ``"random"``; other values pass through. Non-encoder methods have no weights."""
    if weights != "auto":
        return weights
    from breastlib.encoders.weights.cache import checkpoint_path

    spec = ENCODERS.get(method)
    if spec is None or spec.checkpoint is None:
        return "random"
    return "pretrained" if checkpoint_path(spec.checkpoint).is_file() else "random"


__all__ = [
    "ENCODERS", "MIND", "EncoderSpec", "SliceEncoder", "WeightsChoice", "clear_cache",
    "get_encoder", "get_spec", "list_methods", "resolve_weights", "weights_setting",
]
