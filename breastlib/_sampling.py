"""Sampling a volume at arbitrary voxel coordinates with ``torch.grid_sample``.

One helper serves resampling (an affine index map) and warping (index map plus a
displacement field). ``grid_sample`` on a ``(B, C, X, Y, Z)`` tensor treats the axes as
``(D, H, W)`` and expects the sampling grid's last dimension in reverse order
``(z, y, x)``, normalised to [-1, 1] with ``align_corners=True``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from breastlib.device import resolve_device

# Output slabs along the first axis, so a 512x512x160 warp never materialises all
# coordinates at once.
_CHUNK_VOXELS = 8_000_000


def normalise_index(index: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Convert ``(..., 3)`` voxel indices ``(x, y, z)`` to a ``grid_sample`` grid ``(z, y, x)``.

    Parameters
    ----------
    index
        Voxel coordinates along the tensor's ``(X, Y, Z)`` axes, last dim ``(x, y, z)``.
    shape
        ``(X, Y, Z)`` of the tensor that will be sampled.
    """
    size = torch.tensor([max(s - 1, 1) for s in shape], dtype=index.dtype, device=index.device)
    return (2.0 * index / size - 1.0).flip(-1)


def pull_back(volume: torch.Tensor, displacement: torch.Tensor, *,
              scale: torch.Tensor | None = None, padding: str = "border") -> torch.Tensor:
    """Sample a ``(1, C, x, y, z)`` volume at ``x + displacement(x)`` (trilinear).

    ``displacement`` is ``(1, 3, x, y, z)`` in voxels of the same grid; ``scale``
    (``(3,)``) multiplies it before sampling (see :func:`breastlib.smoothing.warp_scale`);
    ``padding`` is ``grid_sample``'s (``"border"`` or ``"zeros"``). The convex step's
    composition and the stage guard's warps both sample this way.
    """
    shape = tuple(volume.shape[2:])
    axes = [torch.arange(s, device=volume.device, dtype=volume.dtype) for s in shape]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    step = displacement[0].permute(1, 2, 3, 0)
    if scale is not None:
        step = step * scale.to(step)
    grid = normalise_index(identity + step, shape)[None]
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode=padding,
                         align_corners=True)


def sample_volume(
    array: np.ndarray,
    index_map: np.ndarray,
    out_shape: tuple[int, int, int],
    *,
    displacement: np.ndarray | None = None,
    mode: str = "linear",
    device: str = "auto",
) -> np.ndarray:
    """Sample ``array`` at ``index_map @ (i + u(i))`` for every output voxel ``i``.

    Parameters
    ----------
    array
        Source values, ``(X, Y, Z)`` or ``(C, X, Y, Z)``.
    index_map
        4x4 affine from output voxel indices to source voxel indices.
    out_shape
        ``(X', Y', Z')`` of the output grid.
    displacement
        Optional ``(3, X', Y', Z')`` field in output-voxel units added before mapping.
    mode
        ``"linear"`` (trilinear) or ``"nearest"``; voxels outside the source become 0.

    Returns
    -------
    numpy.ndarray
        ``(X', Y', Z')`` or ``(C, X', Y', Z')`` in the source dtype (integers preserved
        for ``"nearest"``).
    """
    if mode not in ("linear", "nearest"):
        raise ValueError(f"mode must be 'linear' or 'nearest', not {mode!r}")
    dev = resolve_device(device)
    squeeze = array.ndim == 3
    src = array[None] if squeeze else array
    integer = np.issubdtype(src.dtype, np.integer)
    if integer and mode == "linear":
        raise ValueError("integer label maps must be sampled with mode='nearest'")
    work_dtype = torch.float64 if integer else torch.float32
    source = torch.from_numpy(np.ascontiguousarray(src)).to(dev, work_dtype)[None]
    matrix = torch.as_tensor(index_map[:3, :3], dtype=torch.float64, device=dev)
    offset = torch.as_tensor(index_map[:3, 3], dtype=torch.float64, device=dev)
    src_shape = tuple(src.shape[1:])
    out = np.zeros((src.shape[0], *out_shape), dtype=src.dtype)
    slab = max(1, _CHUNK_VOXELS // max(1, out_shape[1] * out_shape[2]))
    gs_mode = "bilinear" if mode == "linear" else "nearest"
    for x0 in range(0, out_shape[0], slab):
        x1 = min(out_shape[0], x0 + slab)
        axes = [
            torch.arange(x0, x1, dtype=torch.float64, device=dev),
            torch.arange(out_shape[1], dtype=torch.float64, device=dev),
            torch.arange(out_shape[2], dtype=torch.float64, device=dev),
        ]
        index = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        if displacement is not None:
            u = torch.from_numpy(np.ascontiguousarray(displacement[:, x0:x1])).to(dev)
            index = index + u.to(torch.float64).permute(1, 2, 3, 0)
        src_index = index @ matrix.T + offset
        grid = normalise_index(src_index, src_shape).to(work_dtype)[None]
        values = F.grid_sample(
            source, grid, mode=gs_mode, padding_mode="zeros", align_corners=True
        )[0]
        values = values.cpu().numpy()
        if integer:
            values = np.rint(values)
        out[:, x0:x1] = values.astype(src.dtype, copy=False)
    return out[0] if squeeze else out


def sample_field_at_points(
    field: np.ndarray, index: np.ndarray, *, device: str = "auto"
) -> np.ndarray:
    """Trilinearly interpolate a ``(C, X, Y, Z)`` field at ``(N, 3)`` voxel indices.

    Points outside the grid take the value at the nearest border voxel.

    Returns
    -------
    numpy.ndarray
        ``(N, C)`` float64 values.
    """
    dev = resolve_device(device)
    source = torch.from_numpy(np.ascontiguousarray(field)).to(dev, torch.float64)[None]
    pts = torch.as_tensor(index, dtype=torch.float64, device=dev)
    grid = normalise_index(pts, tuple(field.shape[1:])).view(1, -1, 1, 1, 3)
    values = F.grid_sample(
        source, grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return values.view(field.shape[0], -1).T.cpu().numpy()
