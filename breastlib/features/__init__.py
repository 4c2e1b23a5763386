"""Volume -> dense feature volume with a frozen 2-D encoder (or 3-D MIND-SSC).

The steps, for a fixed and a moving volume already on one grid with intensities in
[0, 1]:

1. choose the axial slices to encode: every ``slice_step``-th slice **and the last**;
2. show each slice in radiological orientation (rows anterior -> posterior, columns
   patient right -> left) with square pixels: the in-plane field of view is scaled to
   the input size by its longer physical side (anisotropic spacing is resampled away)
   and the shorter side is zero-padded;
3. encode in batches of bounded token count, keeping float32 tokens of the encoded
   slices only;
4. fit one PCA jointly on the tokens of both volumes (inside the image, optionally inside
   a mask; centred by default, ``uncentred=True`` reproduces the published projection)
   and project: the projection is affine, so interpolating between slices after it is
   exact and the full-size tokens of gap slices never exist;
5. resample each encoded slice's components to the voxel grid (bilinear, token centres)
   and interpolate linearly along Z between encoded slices.

Results are cached on disk, keyed by image content, encoder, weights identity and every
parameter (``$BREASTLIB_CACHE``, else ``~/.cache/breastlib/features``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from breastlib._atomic import atomic_path
from breastlib.device import resolve_device
from breastlib.encoders import ENCODERS, MIND, SliceEncoder, get_encoder, get_spec, resolve_weights
from breastlib.encoders._pca import fit_pca, project
from breastlib.errors import BreastlibError, InputError
from breastlib.volume import Volume

CACHE_VERSION = "features-v1"
PROFILES = ("fast", "published", "convexadam")
#: Upper bound on tokens per forward pass (bounds activation memory on CPU).
MAX_BATCH_TOKENS = 8192


@dataclass(frozen=True)
class FeatureSettings:
    """Resolved encoder settings for one run.

    Attributes
    ----------
    input_size
        Square encoder input side, pixels.
    slice_step
        Encode every ``slice_step``-th axial slice (plus the last).
    pca_dims
        Output channels after PCA.
    """

    input_size: int
    slice_step: int
    pca_dims: int


def resolve_settings(
    method: str,
    profile: str = "fast",
    *,
    input_size: int | None = None,
    slice_step: int | None = None,
    pca_dims: int | None = None,
) -> FeatureSettings:
    """Profile defaults for an encoder, with explicit values taking precedence.

    ``published`` is the released pipeline (STUDY.md section 2): SAM 1024 px, DINOv2
    1792 px, BiomedCLIP 224 px, every 6th slice, PCA 3/3/3/8/12. ``fast`` and
    ``convexadam`` use the reduced input of :attr:`EncoderSpec.fast_input`.
    """
    if profile not in PROFILES:
        raise BreastlibError(f"unknown profile '{profile}': choose from {', '.join(PROFILES)}")
    spec = get_spec(method)
    size = input_size or (spec.published_input if profile == "published" else spec.fast_input)
    if size % spec.patch_size or size < spec.patch_size:
        raise BreastlibError(
            f"input size {size} for '{method}' must be a positive multiple of its patch size "
            f"{spec.patch_size}"
        )
    step = int(slice_step or 6)
    dims = int(pca_dims or spec.pca_dims)
    if step < 1 or dims < 1:
        raise BreastlibError("slice_step and pca_dims must be positive")
    return FeatureSettings(int(size), step, dims)


def encoded_slices(depth: int, step: int) -> list[int]:
    """Indices of the slices to encode: ``0, step, 2 step, ...`` and always ``depth - 1``."""
    index = list(range(0, depth, step))
    if index[-1] != depth - 1:
        index.append(depth - 1)
    return index


@dataclass(frozen=True)
class _Layout:
    """Where the slice content sits in the square encoder input (display orientation)."""

    rows: int  # display rows = Y voxels
    cols: int  # display columns = X voxels
    content_rows: int  # input pixels covered by the image along rows
    content_cols: int
    size: int  # input side
    patch: int

    @classmethod
    def build(cls, shape: tuple[int, int, int], spacing: np.ndarray, size: int, patch: int):
        nx, ny = shape[0], shape[1]
        ex, ey = nx * float(spacing[0]), ny * float(spacing[1])
        extent = max(ex, ey)
        return cls(ny, nx, max(1, round(size * ey / extent)), max(1, round(size * ex / extent)),
                   size, patch)

    @property
    def token_rows(self) -> int:
        return math.ceil(self.content_rows / self.patch)

    @property
    def token_cols(self) -> int:
        return math.ceil(self.content_cols / self.patch)


def _to_display(slices_xy: torch.Tensor) -> torch.Tensor:
    """``(B, X, Y)`` canonical RAS slices -> ``(B, Y, X)`` with anterior at the top."""
    return slices_xy.flip(-1).transpose(-1, -2)


def _from_display(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_to_display` on the last two axes."""
    return images.transpose(-1, -2).flip(-1)


def _prepare(slices_xy: torch.Tensor, layout: _Layout) -> torch.Tensor:
    """``(B, X, Y)`` slices -> ``(B, 1, S, S)`` encoder input, square pixels, zero padded."""
    image = _to_display(slices_xy)[:, None]
    size = (layout.content_rows, layout.content_cols)
    if tuple(image.shape[-2:]) != size:
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False,
                              antialias=True)
    pad_c, pad_r = layout.size - size[1], layout.size - size[0]
    return F.pad(image, (0, pad_c, 0, pad_r))


def _to_voxels(maps: torch.Tensor, layout: _Layout) -> torch.Tensor:
    """Resample ``(B, k, h, w)`` token maps to ``(B, k, X, Y)`` voxels (token centres)."""
    dev = maps.device
    r = (torch.arange(layout.rows, device=dev) + 0.5) * layout.content_rows / layout.rows
    c = (torch.arange(layout.cols, device=dev) + 0.5) * layout.content_cols / layout.cols
    gy = r / layout.size * 2 - 1
    gx = c / layout.size * 2 - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # (rows, cols, 2)
    grid = grid.expand(maps.shape[0], -1, -1, -1).to(maps.dtype)
    display = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
    return _from_display(display)


def encode_volume(
    encoder: SliceEncoder,
    array: np.ndarray,
    spacing: np.ndarray,
    index: list[int],
    *,
    batch_size: int | None = None,
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

    Returns
    -------
    torch.Tensor
        ``(len(index), C, h, w)`` float32 tokens on the encoder's device.
    """
    dev = next(encoder.parameters()).device if hasattr(encoder, "parameters") else "cpu"
    spec, size = encoder.spec, encoder.input_size
    layout = _Layout.build(array.shape, spacing, size, spec.patch_size)
    tokens_per_slice = (size // spec.patch_size) ** 2
    batch = batch_size or max(1, min(64, MAX_BATCH_TOKENS // tokens_per_slice))
    side = size // spec.patch_size
    out = torch.empty((len(index), spec.channels, side, side), dtype=torch.float32, device=dev)
    volume = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for start in range(0, len(index), batch):
        chosen = index[start : start + batch]
        slices = volume[:, :, chosen].permute(2, 0, 1).to(dev)
        out[start : start + len(chosen)] = encoder.encode(_prepare(slices, layout))
    return out


def _token_rows(tokens: torch.Tensor, layout: _Layout, weight: torch.Tensor | None):
    """Rows ``(N, C)`` of in-image (and in-mask) tokens of ``(E, C, h, w)`` tokens."""
    t = tokens[:, :, : layout.token_rows, : layout.token_cols]
    rows = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])
    if weight is not None:
        rows = rows[weight.reshape(-1)]
    return rows


def _mask_tokens(mask: np.ndarray, index: list[int], layout: _Layout) -> torch.Tensor:
    """``(E, h', w')`` booleans: token cells at least half inside the mask."""
    m = torch.from_numpy(np.ascontiguousarray(mask[:, :, index], dtype=np.float32))
    img = _prepare(m.permute(2, 0, 1), layout)
    pooled = F.avg_pool2d(img, layout.patch)[:, 0]
    return pooled[:, : layout.token_rows, : layout.token_cols] >= 0.5


def _interpolate_z(maps: torch.Tensor, index: list[int], depth: int) -> torch.Tensor:
    """``(E, k, X, Y)`` maps at slices ``index`` -> ``(k, X, Y, Z)`` by linear interpolation."""
    e, k, x, y = maps.shape
    out = torch.empty((k, x, y, depth), dtype=torch.float32, device=maps.device)
    pos = torch.tensor(index, dtype=torch.float64)
    for z in range(depth):
        hi = int(torch.searchsorted(pos, torch.tensor(float(z), dtype=torch.float64)))
        if hi < e and index[hi] == z:
            out[..., z] = maps[hi]
            continue
        lo = hi - 1
        w = (z - index[lo]) / (index[hi] - index[lo])
        out[..., z] = maps[lo] * (1 - w) + maps[hi] * w
    return out


def _array_digest(volume: Volume) -> str:
    h = hashlib.sha256()
    array = np.ascontiguousarray(volume.array, dtype=np.float32)
    h.update(str(array.shape).encode())
    h.update(np.asarray(volume.spacing, dtype=np.float64).tobytes())
    h.update(array.tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$BREASTLIB_CACHE``, else ``~/.cache/breastlib/features``."""
    env = os.environ.get("BREASTLIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "breastlib" / "features"


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
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
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
        ``"fast"`` (default), ``"published"`` or ``"convexadam"`` (= ``fast``).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seed
        Seeds random weights (with the network name) and the ``lowrank`` PCA.
    cache_dir
        Feature cache folder (default :func:`default_cache_dir`).
    cache
        Read and write the on-disk cache.
    mask
        Optional ``(X, Y, Z)`` boolean mask on the fixed grid: PCA is fitted on tokens at
        least half inside it (in both volumes).
    uncentred
        Fit and apply PCA without removing the mean (the published projection).
    pca_method
        ``"exact"`` (deterministic eigendecomposition) or ``"lowrank"`` (seeded
        randomised, as published).
    batch_size
        Slices per forward pass (default: bounded token count).

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
    if method == MIND:
        return _mind_pair(fixed, moving, profile, dev, start)

    requested = get_spec(method)
    settings = resolve_settings(method, profile, input_size=input_size,
                                slice_step=slice_step, pca_dims=pca_dims)
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
        "pca": ("uncentred" if uncentred else "centred") + f", {pca_method}, joint"
        + (", masked" if mask is not None else ""),
        "seed": int(seed),
        "preprocessing": _preprocessing(spec),
    }
    if choice.kind == "random" and len(shared) > 1:
        info["shared_with"] = shared

    key_fields = {
        "version": CACHE_VERSION, "network": spec.name, "weights": choice.identity,
        **asdict(settings), "uncentred": bool(uncentred), "pca_method": pca_method,
        "seed": int(seed) if pca_method == "lowrank" else None,
        "fixed": _array_digest(fixed), "moving": _array_digest(moving),
        "mask": None if mask is None else hashlib.sha256(
            np.packbits(np.asarray(mask, bool)).tobytes()).hexdigest(),
    }
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:32]
    path = Path(cache_dir or default_cache_dir()) / f"{spec.name}-{key}.pt"
    if cache:
        hit = _read_cache(path)
        if hit is not None:
            info.update(hit[2], cached=True, cache_file=str(path),
                        seconds_features=time.perf_counter() - start)
            return hit[0].to(dev), hit[1].to(dev), info

    encoder = get_encoder(spec.name, weights=weights, input_size=settings.input_size,
                          seed=seed, device=dev)
    depth = fixed.shape[2]
    index = encoded_slices(depth, settings.slice_step)
    layout = _Layout.build(fixed.shape, fixed.spacing, settings.input_size, spec.patch_size)
    t0 = time.perf_counter()
    tokens = [encode_volume(encoder, v.array, v.spacing, index, batch_size=batch_size)
              for v in (fixed, moving)]
    t_enc = time.perf_counter() - t0
    weight = None if mask is None else _mask_tokens(mask, index, layout).to(dev)
    if weight is not None and not bool(weight.any()):
        raise InputError("the PCA mask covers no encoded token")

    def chunks(all_tokens: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        for t in all_tokens:
            for i in range(t.shape[0]):
                yield _token_rows(t[i : i + 1], layout, None if weight is None else weight[i])

    comps, mean = fit_pca(chunks(tokens), settings.pca_dims, centred=not uncentred,
                          method=pca_method, seed=seed)
    # project and free the full-size tokens before any voxel-size buffer exists
    reduced = [project(tokens.pop(0), comps, mean) for _ in range(len(tokens))]  # (E, k, h, w)
    outputs = [_interpolate_z(_to_voxels(r, layout), index, depth) for r in reduced]
    info.update(
        token_grid=[layout.token_rows, layout.token_cols], channels=spec.channels,
        encoded_slices=len(index), seconds_encoding=t_enc, cached=False,
        seconds_features=time.perf_counter() - start,
    )
    if cache:
        _write_cache(path, outputs[0], outputs[1], info)
        info["cache_file"] = str(path)
    return outputs[0], outputs[1], info


def _preprocessing(spec: Any) -> str:
    if spec.mean is None:
        return "raw [0, 1], grey to 3 channels"
    return f"grey to 3 channels, mean {list(spec.mean)} std {list(spec.std)}"


def _read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]] | None:
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return data["fixed"], data["moving"], json.loads(data["info"])
    except Exception:  # a corrupt cache entry is recomputed, never trusted
        return None


def _write_cache(path: Path, fixed: torch.Tensor, moving: torch.Tensor, info: dict) -> None:
    keep = {k: v for k, v in info.items() if k in ("seconds_features", "seconds_encoding",
                                                    "token_grid", "channels", "encoded_slices")}
    keep = {f"original_{k}" if k.startswith("seconds") else k: v for k, v in keep.items()}
    with atomic_path(path) as tmp:
        torch.save({"fixed": fixed.cpu(), "moving": moving.cpu(), "info": json.dumps(keep)}, tmp)


def _mind_pair(
    fixed: Volume, moving: Volume, profile: str, dev: torch.device, start: float
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    try:
        from breastlib.encoders.mind import mind_ssc
        from breastlib.profiles import get_profile
    except ImportError as exc:  # pragma: no cover - the lead's module is part of the package
        raise BreastlibError(f"MIND-SSC is not available in this build ({exc})") from exc
    params = get_profile(profile)
    out = []
    for v in (fixed, moving):
        image = torch.from_numpy(np.ascontiguousarray(v.array, np.float32)).to(dev)[None, None]
        out.append(mind_ssc(image, radius=params.mind_radius, dilation=params.mind_dilation)[0])
    info = {
        "name": MIND, "weights": None, "weights_sha256": None, "input_size": None,
        "slice_step": None, "pca_dims": None, "profile": profile, "radius": params.mind_radius,
        "dilation": params.mind_dilation, "seconds_features": time.perf_counter() - start,
    }
    return out[0], out[1], info
