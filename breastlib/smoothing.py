"""Box smoothing of displacement and feature tensors, and grid resampling helpers.

A ``k^3`` box filter is three 1-D averages. A narrow one (``k <= 5``, MIND-SSC's patch
filter and the convex step's smoothing) is a sum of ``k`` shifted copies; a wider one is a
difference of two prefix sums, ``mean(x[i-h .. i+h]) = (S[i+h+1] - S[i-h]) / k`` with
``S = cumsum(x)``, which costs the same few reads per voxel whatever the kernel.

Adam smooths its field in every iteration and needs the gradient through the filter: there
the filter is one small matrix per axis (:func:`box_matrices`), whose transpose applies
the filter's adjoint without autograd (benchmarks/bench_smoothing.py times the filters).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from breastlib._chunks import plane_chunks

#: Passes of a box filter: one count for every axis, or one per spatial axis.
Passes = int | tuple[int, int, int]


def _per_axis(value: int | tuple[int, ...], least: int, what: str) -> tuple[int, int, int]:
    """One integer for every spatial axis, or three, as three (each at least ``least``)."""
    counts = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(counts) != 3 or min(counts) < least:
        raise ValueError(f"{what} is an int >= {least} or three of them, got {value!r}")
    return counts  # type: ignore[return-value]


def as_passes(passes: Passes) -> tuple[int, int, int]:
    """Box-filter passes as one count per spatial axis (each at least 0)."""
    return _per_axis(passes, 0, "passes")


def box_smooth(
    field: torch.Tensor, *, kernel: int, passes: Passes = 1, padding: str = "replicate"
) -> torch.Tensor:
    """Repeated ``kernel^3`` box filter (differentiable).

    With ``padding="replicate"`` equal to
    ``avg_pool3d(pad(field, kernel // 2, "replicate"), kernel, stride=1)`` applied
    ``passes`` times; with ``padding="zeros"`` equal to
    ``avg_pool3d(field, kernel, stride=1, padding=kernel // 2)`` (zeros outside, counted
    in the average), the smoothing of the released code (utils/convexAdam_3D.py,
    convex_adam_3d_param; convex_adam_utils.py, correlate and coupled_convex), which pulls
    a field towards zero near the border. Computed one axis at a time from running sums.

    Parameters
    ----------
    field
        ``(B, C, X, Y, Z)`` tensor.
    kernel
        Odd box width in voxels; 1 returns the input.
    passes
        How many times the box filter is applied: one count for every axis, or
        ``(px, py, pz)``.
    padding
        ``"replicate"`` or ``"zeros"``.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``field``.
    """
    if kernel % 2 != 1:
        raise ValueError(f"kernel must be odd, got {kernel}")
    if padding not in ("replicate", "zeros"):
        raise ValueError(f"padding must be 'replicate' or 'zeros', got {padding!r}")
    per_axis = as_passes(passes)
    if kernel == 1:
        return field
    out = field
    # Pass by pass, each axis while it has passes left: with one count for every axis this
    # is the order of the plain repeated 3-D filter, so its result is the same to the bit.
    for done in range(max(per_axis)):
        for dim, count in zip((2, 3, 4), per_axis, strict=True):
            if done < count:
                out = _box_1d(out, dim, kernel, padding)
    return out


#: Widest box filtered as a sum of shifted copies; wider ones use running sums. A sum of
#: three shifted copies took 147 ms against 353 ms for the running sums on a 12-channel
#: small phantom volume (MIND-SSC's patch filter), on 2 CPU cores.
_SHIFTED_SUM_MAX_KERNEL = 5


def _box_1d(tensor: torch.Tensor, dim: int, kernel: int, padding: str) -> torch.Tensor:
    """Centred moving average of width ``kernel`` along spatial ``dim``."""
    half = kernel // 2
    length = tensor.shape[dim]
    if kernel <= _SHIFTED_SUM_MAX_KERNEL:
        pad = [0] * 6
        slot = 2 * (4 - dim)  # F.pad lists the last axis first
        pad[slot] = pad[slot + 1] = half
        padded = F.pad(tensor, pad, mode="replicate" if padding == "replicate" else "constant")
        total = padded.narrow(dim, 0, length) + padded.narrow(dim, 1, length)
        for shift in range(2, kernel):
            total = total.add_(padded.narrow(dim, shift, length))
        return total.div_(kernel)
    # Subtracting each line's mean first keeps the running sums small, so the difference
    # of two of them loses no float32 precision on long lines with a large offset.
    mean = tensor.mean(dim, keepdim=True)
    pad = [0] * 6
    slot = 2 * (4 - dim)  # F.pad lists the last axis first
    # One extra leading value: it is in both running sums, so it cancels.
    pad[slot], pad[slot + 1] = half + 1, half
    if padding == "replicate":
        sums = F.pad(tensor - mean, pad, mode="replicate").cumsum(dim)
        window = sums.narrow(dim, kernel, length) - sums.narrow(dim, 0, length)
        return window.div_(kernel).add_(mean)  # in place: autograd needs neither operand
    # zeros outside: the centred window sum plus the mean times the in-range count
    sums = F.pad(tensor - mean, pad).cumsum(dim)
    window = sums.narrow(dim, kernel, length) - sums.narrow(dim, 0, length)
    index = torch.arange(length, device=tensor.device)
    count = ((index + half).clamp(max=length - 1) - (index - half).clamp(min=0) + 1)
    shape = [1] * tensor.ndim
    shape[dim] = length
    count = count.to(tensor.dtype).view(shape)
    return (window + mean * count) / kernel


@functools.lru_cache(maxsize=64)
def _box_matrix_cpu(length: int, kernel: int, passes: int, padding: str) -> torch.Tensor:
    half = kernel // 2
    single = torch.zeros(length, length, dtype=torch.float64)
    for i in range(length):
        for t in range(i - half, i + half + 1):
            if padding == "replicate":
                single[i, min(max(t, 0), length - 1)] += 1.0 / kernel
            elif 0 <= t < length:
                single[i, t] += 1.0 / kernel
    return torch.linalg.matrix_power(single, passes)


def box_matrices(
    shape: tuple[int, ...], *, kernel: int, passes: Passes = 1, padding: str = "replicate",
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, ...]:
    """:func:`box_smooth` as one ``(n, n)`` matrix per spatial axis of a grid of ``shape``.

    The filter is linear and separable, so ``passes`` repeated box filters along an axis of
    ``n`` voxels, borders included, are one ``n x n`` matrix (its ``passes``-th power of
    the single filter, computed in float64). :func:`apply_axis_matrices` with these
    matrices equals ``box_smooth(field, kernel=kernel, passes=passes, padding=padding)``
    up to rounding, and with their transposes applies the filter's adjoint, which is the
    gradient of a smoothed field with respect to the unsmoothed one; ``passes`` may differ
    per axis (``(px, py, pz)``). On the coarse grids
    of Adam (tens of voxels per axis) a few small matrix products cost a fraction of the
    running sums and of their backward (benchmarks/bench_smoothing.py).

    Returns
    -------
    tuple of torch.Tensor
        One ``(n, n)`` matrix per axis of ``shape``, on ``device`` in ``dtype``.
    """
    if kernel % 2 != 1:
        raise ValueError(f"kernel must be odd, got {kernel}")
    if padding not in ("replicate", "zeros"):
        raise ValueError(f"padding must be 'replicate' or 'zeros', got {padding!r}")
    counts = (passes,) * len(shape) if isinstance(passes, int) else as_passes(passes)
    return tuple(_box_matrix_cpu(int(n), kernel, count, padding).to(device, dtype)
                 for n, count in zip(shape, counts, strict=True))


def apply_axis_matrices(
    tensor: torch.Tensor, matrices: tuple[torch.Tensor, ...], *, transpose: bool = False
) -> torch.Tensor:
    """Multiply each spatial axis of a ``(B, C, X, Y, Z)`` tensor by its ``(n, n)`` matrix
    (``out[.., i, ..] = sum_j M[i, j] in[.., j, ..]``), or by its transpose."""
    mx, my, mz = (m.T if transpose else m for m in matrices)
    out = torch.einsum("ij,bcjyz->bciyz", mx, tensor)
    out = torch.einsum("ij,bcxjz->bcxiz", my, out)
    return out @ mz.T


#: A pooling factor: one for every axis, or one per spatial axis ``(fx, fy, fz)``.
Factor = int | tuple[int, int, int]


def as_factors(factor: Factor) -> tuple[int, int, int]:
    """A pooling factor as one integer per spatial axis (each at least 1)."""
    return _per_axis(factor, 1, "a pooling factor")


def scale_components(field: torch.Tensor, factor: Factor, *, divide: bool = False
                     ) -> torch.Tensor:
    """A ``(B, 3, x, y, z)`` displacement with component k times (or over) the factor
    along axis k: coarse voxels to fine ones, or back. One factor for all axes is the
    plain product or quotient."""
    if isinstance(factor, int) or len(set(factor)) == 1:
        f = factor if isinstance(factor, int) else factor[0]
        return field / f if divide else field * f
    values = torch.tensor(as_factors(factor), dtype=field.dtype, device=field.device)
    values = values.view(1, 3, 1, 1, 1)
    return field / values if divide else field * values


def pad_to_multiple(tensor: torch.Tensor, multiple: Factor) -> torch.Tensor:
    """Replicate-pad the spatial axes of ``(B, C, X, Y, Z)`` up to a multiple of ``multiple``
    (one for all axes, or one per axis)."""
    pad = []
    for size, factor in zip(reversed(tensor.shape[2:]), reversed(as_factors(multiple)),
                            strict=True):
        pad += [0, (-size) % factor]
    if not any(pad):
        return tensor
    return F.pad(tensor, pad, mode="replicate")


#: Elements of one slab when :func:`downsample` pads a large tensor: the padded copy of a
#: full-size MIND-SSC volume (12 x 46 million voxels) would double its 2.2 GB.
_DOWNSAMPLE_SLAB_ELEMENTS = 32_000_000


def downsample(tensor: torch.Tensor, factor: Factor, *, floor: bool = False) -> torch.Tensor:
    """Average-pool ``(B, C, X, Y, Z)`` by ``factor`` (one for all axes, or ``(fx, fy, fz)``).

    By default the tensor is first padded (replicate) to a multiple of ``factor``, so every
    voxel lies in a cell; ``floor=True`` drops the trailing voxels instead
    (``n // factor`` cells), as the released code's unpadded ``avg_pool3d`` does. A large
    tensor is padded and pooled in slabs of whole cells along ``X`` (each cell averaged
    as in one pass, to the bit), so that no padded copy of all of it is made.
    """
    factors = as_factors(factor)
    if factors == (1, 1, 1):
        return tensor
    if floor:
        return F.avg_pool3d(tensor, kernel_size=factors, stride=factors)
    slabs = list(plane_chunks(tensor.shape[2], tensor[:, :, :1].numel(),
                              _DOWNSAMPLE_SLAB_ELEMENTS, multiple=factors[0]))
    padded = any(size % f for size, f in zip(tensor.shape[2:], factors, strict=True))
    if not padded or len(slabs) == 1:
        return F.avg_pool3d(pad_to_multiple(tensor, factors), kernel_size=factors,
                            stride=factors)
    return torch.cat([
        F.avg_pool3d(pad_to_multiple(tensor[:, :, start:stop], factors),
                     kernel_size=factors, stride=factors)
        for start, stop in slabs], dim=2)


def resize_field(field: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Trilinear resize of a ``(B, 3, x, y, z)`` field to ``shape`` (``align_corners=False``,
    values unchanged), the released code's way between grids (utils/convexAdam_3D.py,
    convex_adam_3d_param): coarse cell ``p`` sits at fine ``(p + 0.5) n / m - 0.5``."""
    return F.interpolate(field, size=tuple(shape), mode="trilinear", align_corners=False)


def warp_scale(shape: tuple[int, ...], *, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(3,)`` factors ``n / (n - 1)`` (1 where ``n == 1``) of a grid of ``shape``.

    The released code (utils/convexAdam_3D.py, convex_adam_3d_param, and
    convex_adam_utils.py, inverse_consistency) divides a displacement of ``d`` voxels by
    ``(n - 1) / 2`` to normalise it but samples with ``align_corners=False``, where one
    normalised unit is ``n / 2`` voxels: the sample lands ``d n / (n - 1)`` voxels away.
    Multiplying a voxel displacement by these factors before sampling in voxel units
    reproduces that.
    """
    values = [s / (s - 1) if s > 1 else 1.0 for s in shape]
    return torch.tensor(values, device=device, dtype=dtype)


def upsample_blocks(
    coarse: torch.Tensor, factors: tuple[int, int, int], shape: tuple[int, int, int]
) -> torch.Tensor:
    """A displacement on a grid of whole blocks (``factors`` fine voxels per coarse voxel
    along each axis, block ``p`` centred at fine ``p f + (f - 1) / 2``, as
    :func:`breastlib.register.initial.block_average` makes it) brought to the fine grid.

    Parameters
    ----------
    coarse
        ``(1, 3, x, y, z)`` displacement in coarse voxels (component k along axis k).
    factors
        Fine voxels per coarse voxel along each axis.
    shape
        ``(X, Y, Z)`` of the fine grid; fine voxels beyond the last whole block (trailing
        voxels the blocks dropped) take the last block's values, as do those beyond the
        first and last block centres.

    Returns
    -------
    torch.Tensor
        ``(1, 3, X, Y, Z)`` trilinear in between, in fine voxels.
    """
    covered = tuple(n * f for n, f in zip(coarse.shape[2:], factors, strict=True))
    fine = F.interpolate(coarse, size=covered, mode="trilinear", align_corners=False)
    fine = fine[:, :, : shape[0], : shape[1], : shape[2]]
    pad = []
    for size, target in zip(reversed(fine.shape[2:]), reversed(shape), strict=True):
        pad += [0, target - size]
    if any(pad):
        fine = F.pad(fine, pad, mode="replicate")
    scale = torch.tensor(factors, dtype=fine.dtype, device=fine.device).view(1, 3, 1, 1, 1)
    return fine.mul_(scale)


def upsample_field(
    coarse: torch.Tensor, factor: Factor, shape: tuple[int, int, int]
) -> torch.Tensor:
    """Upsample a coarse displacement (coarse voxel units) to fine voxel units.

    Coarse voxel ``p`` is the mean of fine voxels ``p*f ... p*f+f-1``, i.e. centred at
    ``p*f + (f-1)/2``: exactly the sampling of ``interpolate(align_corners=False)``.

    Parameters
    ----------
    coarse
        ``(B, 3, x, y, z)`` displacement in coarse voxels.
    factor
        The pooling factor used to make the coarse grid (one for all axes, or
        ``(fx, fy, fz)``).
    shape
        ``(X, Y, Z)`` of the fine grid (before padding).
    """
    factors = as_factors(factor)
    if factors == (1, 1, 1):
        return coarse[:, :, : shape[0], : shape[1], : shape[2]]
    return upsample_blocks(coarse, factors, shape)
