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

from breastlib._chunks import plane_chunks
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


def cpu_slabs(tensor: torch.Tensor) -> int:
    """How many slabs :func:`grid_sample_slabs` cuts a grid into on ``tensor``'s device:
    one per CPU thread, one on a GPU (whose kernels use every core on one volume)."""
    return torch.get_num_threads() if tensor.device.type == "cpu" else 1


def _slab_layout(rows: int, slabs: int) -> tuple[int, int, int]:
    """``(n, size, pad)``: ``rows`` output rows cut into ``n`` slabs of ``size`` rows,
    the last one padded by ``pad`` rows."""
    size = -(-rows // max(1, min(slabs, rows)))
    n = -(-rows // size)
    return n, size, n * size - rows


def _grid_in_slabs(grid: torch.Tensor, n: int, size: int, pad: int) -> torch.Tensor:
    """``(1, D, H, W, 3)`` grid -> ``(n, size, H, W, 3)``, the last slab padded with
    copies of the last row (sampled, then dropped)."""
    if pad:
        grid = torch.cat([grid, grid[:, -1:].expand(-1, pad, -1, -1, -1)], dim=1)
    return grid.reshape(n, size, *grid.shape[2:])


def _values_in_slabs(values: torch.Tensor, n: int, size: int, pad: int) -> torch.Tensor:
    """``(1, C, D, H, W)`` -> ``(n, C, size, H, W)`` (a strided view unless padded)."""
    if pad:
        values = F.pad(values, (0, 0, 0, 0, 0, pad))
    return values[0].unflatten(1, (n, size)).transpose(0, 1)


def grid_sample_slabs(volume: torch.Tensor, grid: torch.Tensor, *, padding: str = "border",
                      mode: str = "bilinear", slabs: int | None = None) -> torch.Tensor:
    """``F.grid_sample(volume, grid, mode, padding, align_corners=True)`` of one
    ``(1, C, X, Y, Z)`` volume on a ``(1, D, H, W, 3)`` grid, with the grid cut into
    ``slabs`` slabs along ``D`` and sampled as a batch.

    PyTorch's CPU kernels for 3-D ``grid_sample`` and its gradient parallelise over the
    batch only, so one volume is sampled on one core however many threads torch has. The
    slabs share the volume (a stride-0 batch, no copy) and every output voxel is computed
    by the same arithmetic as without slabs: the result is the same to the bit.
    ``slabs`` defaults to :func:`cpu_slabs`.

    Returns
    -------
    torch.Tensor
        ``(1, C, D, H, W)``.
    """
    rows = grid.shape[1]
    n, size, pad = _slab_layout(rows, cpu_slabs(volume) if slabs is None else slabs)
    if n == 1:
        return F.grid_sample(volume, grid, mode=mode, padding_mode=padding,
                             align_corners=True)
    sampled = F.grid_sample(volume.expand(n, -1, -1, -1, -1), _grid_in_slabs(grid, n, size, pad),
                            mode=mode, padding_mode=padding, align_corners=True)
    return sampled.transpose(0, 1).reshape(1, volume.shape[1], n * size,
                                           *sampled.shape[3:])[:, :, :rows]


def grid_gradient_slabs(weights: torch.Tensor, volume: torch.Tensor, grid: torch.Tensor, *,
                        padding: str = "border", slabs: int | None = None) -> torch.Tensor:
    """The gradient with respect to ``grid`` of ``sum(weights * grid_sample(volume, grid))``
    (bilinear, ``align_corners=True``), in slabs as :func:`grid_sample_slabs` samples.

    Parameters
    ----------
    weights
        ``(1, C, D, H, W)``: the gradient with respect to the samples.
    volume, grid, padding, slabs
        As for :func:`grid_sample_slabs`.

    Returns
    -------
    torch.Tensor
        ``(1, D, H, W, 3)``, in the grid's normalised ``(z, y, x)`` units.
    """
    mode = {"zeros": 0, "border": 1}[padding]
    rows = grid.shape[1]
    n, size, pad = _slab_layout(rows, cpu_slabs(volume) if slabs is None else slabs)
    if n == 1:
        # interpolation 0: bilinear; output_mask: the gradient of the grid only.
        return torch.ops.aten.grid_sampler_3d_backward(
            weights, volume, grid, 0, mode, True, [False, True])[1]
    _, gradient = torch.ops.aten.grid_sampler_3d_backward(
        _values_in_slabs(weights, n, size, pad), volume.expand(n, -1, -1, -1, -1),
        _grid_in_slabs(grid, n, size, pad), 0, mode, True, [False, True])
    return gradient.reshape(1, n * size, *gradient.shape[2:])[:, :rows]


def pull_back(volume: torch.Tensor, displacement: torch.Tensor, *,
              scale: torch.Tensor | None = None, padding: str = "border",
              chunk_voxels: int = _CHUNK_VOXELS) -> torch.Tensor:
    """Sample a ``(1, C, x, y, z)`` volume at ``x + displacement(x)`` (trilinear).

    ``displacement`` is ``(1, 3, x, y, z)`` in voxels of the same grid; ``scale``
    (``(3,)``) multiplies it before sampling (see :func:`breastlib.smoothing.warp_scale`);
    ``padding`` is ``grid_sample``'s (``"border"`` or ``"zeros"``). The convex step's
    composition and the stage guard's warps both sample this way. The sampling
    coordinates are made ``chunk_voxels`` output voxels at a time (whole planes along the
    first axis): a full-size field's coordinates would take three times the field's
    memory at once. Each output voxel is computed the same way whatever the chunks.
    """
    shape = tuple(volume.shape[2:])
    out = None
    for start, stop in plane_chunks(shape[0], shape[1] * shape[2], chunk_voxels):
        axes = [torch.arange(start, stop, device=volume.device, dtype=volume.dtype),
                *(torch.arange(s, device=volume.device, dtype=volume.dtype)
                  for s in shape[1:])]
        identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        step = displacement[0, :, start:stop].permute(1, 2, 3, 0)
        if scale is not None:
            step = step * scale.to(step)
        grid = normalise_index(identity + step, shape)[None]
        sampled = grid_sample_slabs(volume, grid, padding=padding)
        if stop - start == shape[0]:
            return sampled
        if out is None:
            out = sampled.new_empty((1, volume.shape[1], *shape))
        out[:, :, start:stop] = sampled
    return out


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
        values = grid_sample_slabs(source, grid, padding="zeros", mode=gs_mode)[0]
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
