"""Where an axial slice sits in the square encoder input, and the way back to voxels.

Slices are shown to an encoder in radiological orientation: rows run anterior ->
posterior and columns from the patient's right to the patient's left, so the patient's
right (high X in RAS+) is on the image's left. By default pixels are square: the in-plane
field of view is scaled to the input size by its longer physical side (anisotropic
spacing is resampled away) and the shorter side is zero-padded; ``fill="stretch"``
resizes the slice to the whole square instead, as the released code does. Token maps come
back through the inverse: bilinear resampling at token centres onto the ``(X, Y)`` voxel
grid, then interpolation along Z between encoded slices (:func:`slice_weights`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SliceLayout:
    """Where the slice content sits in the square encoder input (display orientation).

    Attributes
    ----------
    rows, cols
        Display rows (= Y voxels) and columns (= X voxels).
    content_rows, content_cols
        Input pixels covered by the image along rows and columns.
    size
        Input side, pixels.
    patch
        Encoder patch side, pixels.
    """

    rows: int
    cols: int
    content_rows: int
    content_cols: int
    size: int
    patch: int

    @classmethod
    def build(
        cls, shape: tuple[int, int, int], spacing: np.ndarray, size: int, patch: int,
        fill: str = "pad",
    ) -> SliceLayout:
        """The layout of ``(X, Y, Z)`` volumes with ``(3,)`` mm ``spacing`` in a
        ``size``-pixel input cut into ``patch``-pixel tokens.

        ``fill="pad"`` keeps square pixels (shorter side zero-padded); ``"stretch"``
        fills the whole input whatever the aspect ratio, as the released code's resize of
        each slice to the input (inference_reg.py, foundReg.encode_3D_gap).
        """
        nx, ny = shape[0], shape[1]
        if fill == "stretch":
            return cls(ny, nx, size, size, size, patch)
        if fill != "pad":
            raise ValueError(f"fill must be 'pad' or 'stretch', got {fill!r}")
        ex, ey = nx * float(spacing[0]), ny * float(spacing[1])
        extent = max(ex, ey)
        return cls(ny, nx, max(1, round(size * ey / extent)), max(1, round(size * ex / extent)),
                   size, patch)

    @property
    def token_rows(self) -> int:
        """Token rows that hold image content."""
        return math.ceil(self.content_rows / self.patch)

    @property
    def token_cols(self) -> int:
        """Token columns that hold image content."""
        return math.ceil(self.content_cols / self.patch)


def to_display(slices_xy: torch.Tensor) -> torch.Tensor:
    """``(B, X, Y)`` canonical RAS slices -> ``(B, Y, X)`` radiological images: anterior
    (high Y) in the top row, the patient's right (high X) in the first column."""
    return slices_xy.flip((-2, -1)).transpose(-1, -2)


def from_display(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_display` on the last two axes: ``(..., Y, X)`` -> ``(..., X, Y)``."""
    return images.transpose(-1, -2).flip((-2, -1))


def prepare(slices_xy: torch.Tensor, layout: SliceLayout) -> torch.Tensor:
    """``(B, X, Y)`` slices -> ``(B, 1, S, S)`` encoder input, square pixels, zero padded."""
    image = to_display(slices_xy)[:, None]
    size = (layout.content_rows, layout.content_cols)
    if tuple(image.shape[-2:]) != size:
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False,
                              antialias=True)
    pad_c, pad_r = layout.size - size[1], layout.size - size[0]
    return F.pad(image, (0, pad_c, 0, pad_r))


def to_voxels(maps: torch.Tensor, layout: SliceLayout) -> torch.Tensor:
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
    return from_display(display)


def image_tokens(
    tokens: torch.Tensor, layout: SliceLayout, weight: torch.Tensor | None
) -> torch.Tensor:
    """Rows ``(N, C)`` of the in-image (and in-mask) tokens of ``(E, C, h, w)`` tokens.

    ``weight`` is ``None`` or an ``(E, h', w')`` boolean of the in-image token cells
    (from :func:`mask_tokens`).
    """
    t = tokens[:, :, : layout.token_rows, : layout.token_cols]
    rows = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])
    if weight is not None:
        rows = rows[weight.reshape(-1)]
    return rows


def mask_tokens(mask: np.ndarray, index: list[int], layout: SliceLayout) -> torch.Tensor:
    """``(E, h', w')`` booleans: token cells of slices ``index`` at least half inside the
    ``(X, Y, Z)`` ``mask``."""
    m = torch.from_numpy(np.ascontiguousarray(mask[:, :, index], dtype=np.float32))
    img = prepare(m.permute(2, 0, 1), layout)
    pooled = F.avg_pool2d(img, layout.patch)[:, 0]
    return pooled[:, : layout.token_rows, : layout.token_cols] >= 0.5


def slice_weights(index: list[int], depth: int, blend: str = "linear") -> torch.Tensor:
    """How each slice's features mix the features of the encoded slices.

    Parameters
    ----------
    index
        Increasing encoded slice indices, the last one ``depth - 1``
        (:func:`breastlib.features.settings.encoded_slices`).
    depth
        Number of slices ``Z``.
    blend
        ``"linear"``: linear interpolation between the two nearest encoded slices, exact
        at each encoded slice. ``"released"``: the same, except after the second-to-last
        encoded slice ``p``, where the released code (inference_reg.py,
        foundReg.encode_3D_gap) divides by ``L = Z - p`` instead of ``Z - 1 - p``: slice
        ``s > p`` gets ``((s - p) last + (Z - s) previous) / L``, so the encoded last slice
        itself becomes ``((L - 1) last + previous) / L``.

    Returns
    -------
    torch.Tensor
        ``(Z, E)`` float64 weights, rows summing to 1.
    """
    if blend not in ("linear", "released"):
        raise ValueError(f"blend must be 'linear' or 'released', got {blend!r}")
    weights = torch.zeros((depth, len(index)), dtype=torch.float64)
    for e, z in enumerate(index):
        weights[z, e] = 1.0
    for e in range(len(index) - 1):
        lo, hi = index[e], index[e + 1]
        for z in range(lo + 1, hi):
            w = (z - lo) / (hi - lo)
            weights[z, e], weights[z, e + 1] = 1 - w, w
    if blend == "released" and len(index) > 1:
        prev, span = index[-2], depth - index[-2]
        for z in range(prev + 1, depth):
            weights[z] = 0.0
            weights[z, -1], weights[z, -2] = (z - prev) / span, (depth - z) / span
    return weights


def interpolate_z(
    maps: torch.Tensor, index: list[int], depth: int, blend: str = "linear"
) -> torch.Tensor:
    """``(E, k, X, Y)`` maps at slices ``index`` -> ``(k, X, Y, Z)`` by interpolation along Z
    (``blend`` as :func:`slice_weights`)."""
    e, k, x, y = maps.shape
    out = torch.empty((k, x, y, depth), dtype=torch.float32, device=maps.device)
    if blend == "released":
        weights = slice_weights(index, depth, blend)
        for z in range(depth):
            used = torch.nonzero(weights[z]).flatten().tolist()
            out[..., z] = sum(maps[i] * float(weights[z, i]) for i in used)
        return out
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
