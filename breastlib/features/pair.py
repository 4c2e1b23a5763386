"""Dense features of a fixed/moving pair: encode, joint PCA, back to voxels (or MIND-SSC).

The steps of :func:`feature_pair` for a 2-D encoder are listed in
:mod:`breastlib.features`; the geometry is in :mod:`breastlib.features.layout`, the
settings in :mod:`breastlib.features.settings` and the on-disk cache in
:mod:`breastlib.features.cache`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from breastlib.device import resolve_device
from breastlib.encoders import ENCODERS, MIND, SliceEncoder, get_encoder, get_spec, resolve_weights
from breastlib.encoders._pca import fit_pca, fit_released_pca, project
from breastlib.encoders.base import EncoderSpec
from breastlib.encoders.mind import mind_volume
from breastlib.errors import InputError
from breastlib.features.cache import cache_path, read_cache, write_cache
from breastlib.features.layout import (
    SliceLayout,
    image_tokens,
    interpolate_z,
    mask_tokens,
    prepare,
    slice_weights,
    to_voxels,
)
from breastlib.features.settings import (
    MAX_BATCH_TOKENS,
    FeatureSettings,
    encoded_slices,
    resolve_settings,
)
from breastlib.profiles import ConvexAdamParams, get_profile
from breastlib.volume import Volume

FeaturePair = tuple[torch.Tensor, torch.Tensor, dict[str, Any]]


def encode_volume(
    encoder: SliceEncoder,
    array: np.ndarray,
    spacing: np.ndarray,
    index: list[int],
    *,
    batch_size: int | None = None,
    fill: str = "pad",
) -> torch.Tensor:
    """Encode chosen axial slices of one volume.

    Parameters
    ----------
    encoder
        From :func:`breastlib.encoders.get_encoder`.
    array
        ``(X, Y, Z)`` float32 intensities in [0, 1].
    spacing
        ``(3,)`` voxel size in mm.
    index
        Slice indices along Z to encode.
    batch_size
        Slices per forward pass; default keeps a batch under :data:`MAX_BATCH_TOKENS`.
    fill
        ``"pad"`` or ``"stretch"`` (:meth:`breastlib.features.layout.SliceLayout.build`).

    Returns
    -------
    torch.Tensor
        ``(len(index), C, h, w)`` float32 tokens on the encoder's device.
    """
    dev = next(encoder.parameters()).device if hasattr(encoder, "parameters") else "cpu"
    spec, size = encoder.spec, encoder.input_size
    layout = SliceLayout.build(array.shape, spacing, size, spec.patch_size, fill)
    tokens_per_slice = (size // spec.patch_size) ** 2
    batch = batch_size or max(1, min(64, MAX_BATCH_TOKENS // tokens_per_slice))
    side = size // spec.patch_size
    out = torch.empty((len(index), spec.channels, side, side), dtype=torch.float32, device=dev)
    volume = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for start in range(0, len(index), batch):
        chosen = index[start : start + batch]
        slices = volume[:, :, chosen].permute(2, 0, 1).to(dev)
        out[start : start + len(chosen)] = encoder.encode(prepare(slices, layout))
    return out


def feature_pair(
    method: str,
    fixed: Volume,
    moving: Volume,
    *,
    weights: str | os.PathLike = "random",
    input_size: int | None = None,
    slice_step: int | None = None,
    pca_dims: int | None = None,
    profile: str = "fast",
    device: str | torch.device = "auto",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    cache: bool = True,
    mask: np.ndarray | None = None,
    uncentred: bool = False,
    pca_method: str = "exact",
    batch_size: int | None = None,
    params: ConvexAdamParams | None = None,
) -> FeaturePair:
    """Dense features of a fixed/moving pair on their common voxel grid.

    Parameters
    ----------
    method
        Encoder name (:func:`breastlib.encoders.list_methods`), or ``"mind"``.
    fixed, moving
        Volumes on the same grid, ``(X, Y, Z)`` float32 in [0, 1].
    weights
        ``"random"`` (seeded twin of the architecture), ``"pretrained"`` or a path.
    input_size, slice_step, pca_dims
        Override the profile's values (pixels, slices, channels).
    profile
        A name of :func:`breastlib.profiles.profile_names` (default ``"fast"``): input
        size, MIND settings and the switches of how slices are shown, blended and
        reduced.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seed
        Seeds random weights (with the network name) and the randomised PCAs.
    cache_dir
        Feature cache folder (default
        :func:`breastlib.features.cache.default_cache_dir`).
    cache
        Read and write the on-disk cache.
    mask
        Optional ``(X, Y, Z)`` boolean mask on the fixed grid: PCA is fitted on tokens at
        least half inside it (in both volumes). Not with the released PCA.
    uncentred
        Fit on the uncentred rows (their second moment) and project without removing the
        mean; not the released PCA (a profile with ``pca="released"`` is).
    pca_method
        ``"exact"`` (deterministic eigendecomposition) or ``"lowrank"``
        (``torch.pca_lowrank`` with ``q = dims + 6``, seeded); see
        :func:`breastlib.encoders._pca.fit_pca`. With a profile's ``pca="released"``,
        ``uncentred`` and ``pca_method`` must keep their defaults.
    batch_size
        Slices per forward pass (default: bounded token count).
    params
        The resolved parameters, when they carry overrides of ``profile`` (as
        :func:`breastlib.register.register_pair` passes them).

    Returns
    -------
    fixed_features, moving_features : torch.Tensor
        ``(C, X, Y, Z)`` float32 on ``device``.
    info : dict
        ``{name, weights, weights_sha256, input_size, slice_step, pca_dims,
        seconds_features, ...}``; ``shared_with`` lists the encoders whose random-weight
        features are identical to these.
    """
    start = time.perf_counter()
    if fixed.shape != moving.shape or not fixed.grid.same_as(moving.grid):
        raise InputError("fixed and moving must be on the same grid (resample moving first)")
    if mask is not None and tuple(mask.shape) != fixed.shape:
        raise InputError(f"mask shape {tuple(mask.shape)} differs from image {fixed.shape}")
    dev = resolve_device(device)
    params = params if params is not None else get_profile(profile)
    if method == MIND:
        return _mind_pair(fixed, moving, profile, params, dev, start)

    requested = get_spec(method)
    settings = resolve_settings(method, profile, input_size=input_size,
                                slice_step=slice_step, pca_dims=pca_dims, params=params)
    released_pca = settings.pca == "released"
    if released_pca and (uncentred or pca_method != "exact"):
        raise InputError("the profile's released PCA fixes centring and solver: leave "
                         "uncentred and pca_method at their defaults")
    if released_pca and mask is not None:
        raise InputError("the released PCA is fitted on every token: no mask")
    choice = resolve_weights(requested, weights, seed)
    spec = ENCODERS[requested.twin] if choice.kind == "random" else requested
    shared = sorted(n for n, s in ENCODERS.items() if s.twin == requested.twin)
    info: dict[str, Any] = {
        "name": method,
        "weights": choice.kind,
        "weights_sha256": choice.sha256,
        "input_size": settings.input_size,
        "slice_step": settings.slice_step,
        "pca_dims": settings.pca_dims,
        "profile": profile,
        "network": spec.name if choice.kind == "random" else method,
        "label": f"{method} ({'random init' if choice.kind == 'random' else choice.kind})",
        "pca": _pca_words(settings, uncentred, pca_method, mask is not None),
        "seed": int(seed),
        "preprocessing": _preprocessing(spec, settings),
        "tokens": "before the final norm" if not settings.final_norm
        and spec.family == "biomedclip" else "after the final norm",
        "slice_fill": settings.fill,
        "slice_blend": settings.blend,
    }
    if choice.kind == "random" and len(shared) > 1:
        info["shared_with"] = shared

    path = cache_path(cache_dir, spec.name, choice.identity, settings, uncentred=uncentred,
                      pca_method=pca_method, seed=seed, fixed=fixed, moving=moving, mask=mask)
    if cache:
        hit = read_cache(path)
        if hit is not None:
            info.update(hit[2], cached=True, cache_file=str(path),
                        seconds_features=time.perf_counter() - start)
            return hit[0].to(dev), hit[1].to(dev), info

    encoder = get_encoder(spec.name, weights=weights, input_size=settings.input_size,
                          seed=seed, device=dev, input_norm=settings.input_norm,
                          final_norm=settings.final_norm)
    depth = fixed.shape[2]
    index = encoded_slices(depth, settings.slice_step)
    layout = SliceLayout.build(fixed.shape, fixed.spacing, settings.input_size, spec.patch_size,
                               settings.fill)
    t0 = time.perf_counter()
    tokens = [encode_volume(encoder, v.array, v.spacing, index, batch_size=batch_size,
                            fill=settings.fill)
              for v in (fixed, moving)]
    t_enc = time.perf_counter() - t0
    weight = None if mask is None else mask_tokens(mask, index, layout).to(dev)
    if weight is not None and not bool(weight.any()):
        raise InputError("the PCA mask covers no encoded token")

    def chunks(all_tokens: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        for t in all_tokens:
            for i in range(t.shape[0]):
                yield image_tokens(t[i : i + 1], layout, None if weight is None else weight[i])

    if released_pca:
        # inference_reg.py, foundReg.case_inference: the basis of every slice's centred
        # tokens (blended ones included), applied to uncentred tokens
        rows = [torch.stack([image_tokens(t[i : i + 1], layout, None)
                             for i in range(t.shape[0])]) for t in tokens]
        comps = fit_released_pca(rows, slice_weights(index, depth, settings.blend),
                                 settings.pca_dims, seed=seed)
        mean = torch.zeros(comps.shape[0], device=comps.device)
        del rows
    else:
        comps, mean = fit_pca(chunks(tokens), settings.pca_dims, centred=not uncentred,
                              method=pca_method, seed=seed)
    # project and free the full-size tokens before any voxel-size buffer exists
    reduced = [project(tokens.pop(0), comps, mean) for _ in range(len(tokens))]  # (E, k, h, w)
    outputs = [interpolate_z(to_voxels(r, layout), index, depth, settings.blend)
               for r in reduced]
    info.update(
        token_grid=[layout.token_rows, layout.token_cols], channels=spec.channels,
        encoded_slices=len(index), seconds_encoding=t_enc, cached=False,
        seconds_features=time.perf_counter() - start,
    )
    if cache:
        write_cache(path, outputs[0], outputs[1], info)
        info["cache_file"] = str(path)
    return outputs[0], outputs[1], info


def _preprocessing(spec: EncoderSpec, settings: FeatureSettings) -> str:
    """How a grey slice becomes the encoder's three-channel input, in words."""
    raw = spec.mean is None or (not settings.input_norm and spec.family != "sam")
    if raw:
        return "raw [0, 1], grey to 3 channels"
    return f"grey to 3 channels, mean {list(spec.mean)} std {list(spec.std)}"


def _pca_words(settings: FeatureSettings, uncentred: bool, method: str, masked: bool) -> str:
    """The PCA of a run, in words (recorded in ``info["pca"]``)."""
    if settings.pca == "released":
        return "released: pca_lowrank basis of every slice's centred tokens, uncentred projection"
    return (("uncentred" if uncentred else "centred") + f", {method}, joint"
            + (", masked" if masked else ""))


def _mind_pair(
    fixed: Volume, moving: Volume, profile: str, params: ConvexAdamParams, dev: torch.device,
    start: float,
) -> FeaturePair:
    """MIND-SSC descriptors of both volumes with the profile's radius and dilation."""
    # One image at a time, as the registration pipeline does: each volume's intermediate
    # buffers are freed before the next one is computed.
    out = (mind_volume(fixed.array, params, dev), mind_volume(moving.array, params, dev))
    info = {
        "name": MIND, "weights": None, "weights_sha256": None, "input_size": None,
        "slice_step": None, "pca_dims": None, "profile": profile, "radius": params.mind_radius,
        "dilation": params.mind_dilation, "floor": params.mind_floor,
        "seconds_features": time.perf_counter() - start,
    }
    return out[0], out[1], info
