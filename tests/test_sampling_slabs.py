"""Sampling in slabs: the same numbers as one ``grid_sample`` call, on every core.

PyTorch's CPU kernels for 3-D ``grid_sample`` and its gradient parallelise over the batch
only; :func:`breastlib._sampling.grid_sample_slabs` cuts the output grid into a batch of
slabs that share the volume. Every output voxel is computed by the same arithmetic, so the
results must be equal to the bit, whatever the number of slabs and however unevenly they
cut the grid. The same holds for the stage guard's warps (``pull_back``), whose coordinates
are made a chunk at a time, and for pooling a large tensor (``downsample``) in slabs of
whole cells.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from breastlib._sampling import (
    _slab_layout,
    cpu_slabs,
    grid_gradient_slabs,
    grid_sample_slabs,
)


def _volume_and_grid(rows: int, channels: int = 5, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    volume = torch.randn(1, channels, 9, 8, 7, generator=generator)
    # Some points outside [-1, 1], so both padding modes matter.
    grid = torch.rand(1, rows, 6, 5, 3, generator=generator) * 2.4 - 1.2
    return volume, grid


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["border", "zeros"])
@pytest.mark.parametrize("rows,slabs", [(10, 1), (10, 2), (11, 2), (11, 3), (7, 4),
                                        (3, 8), (1, 2)])
def test_slabs_sample_the_same_values_to_the_bit(mode, padding, rows, slabs):
    volume, grid = _volume_and_grid(rows)
    whole = F.grid_sample(volume, grid, mode=mode, padding_mode=padding,
                          align_corners=True)
    sampled = grid_sample_slabs(volume, grid, padding=padding, mode=mode, slabs=slabs)
    assert sampled.shape == whole.shape
    assert torch.equal(sampled, whole)


@pytest.mark.parametrize("padding", ["border", "zeros"])
@pytest.mark.parametrize("rows,slabs", [(10, 1), (10, 2), (11, 3), (5, 4), (2, 8)])
def test_slab_gradient_is_autograds_gradient_of_the_grid(padding, rows, slabs):
    volume, grid = _volume_and_grid(rows, seed=rows)
    weights = torch.randn(1, volume.shape[1], *grid.shape[1:4],
                          generator=torch.Generator().manual_seed(1))
    leaf = grid.clone().requires_grad_()
    (weights * F.grid_sample(volume, leaf, mode="bilinear", padding_mode=padding,
                             align_corners=True)).sum().backward()
    gradient = grid_gradient_slabs(weights, volume, grid, padding=padding, slabs=slabs)
    assert gradient.shape == grid.shape
    assert torch.equal(gradient, leaf.grad)


def test_slab_layout_covers_every_row_once_with_no_empty_slab():
    for rows in range(1, 40):
        for slabs in range(1, 10):
            n, size, pad = _slab_layout(rows, slabs)
            assert n <= slabs and n * size == rows + pad
            assert 0 <= pad < size  # the last slab holds at least one real row


def test_one_slab_per_cpu_thread():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert cpu_slabs(torch.zeros(1)) == 3
    finally:
        torch.set_num_threads(threads)


def test_adams_data_gradient_does_not_depend_on_the_thread_count():
    from breastlib.register.adam import _data_gradient

    generator = torch.Generator().manual_seed(3)
    shape = (13, 10, 8)
    fixed = torch.randn(1, 4, *shape, generator=generator)
    moving = torch.randn(1, 4, *shape, generator=generator)
    field = torch.randn(1, 3, *shape, generator=generator) * 2.0
    axes = [torch.arange(s, dtype=fixed.dtype) for s in shape]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    threads = torch.get_num_threads()
    try:
        gradients = []
        for count in (1, 3):  # one slab, then three
            torch.set_num_threads(count)
            gradients.append(_data_gradient(field, fixed, moving, identity, 0.01, None,
                                            "border"))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(gradients[0], gradients[1])


@pytest.mark.parametrize("padding", ["border", "zeros"])
@pytest.mark.parametrize("chunk_voxels", [1, 56, 57, 3 * 56, 10_000])
def test_pull_back_in_chunks_is_the_same_to_the_bit(padding, chunk_voxels):
    """Chunks of whole planes (56 voxels per plane here, so one plane, one plane and a
    bit, three planes, everything) give the warp of the one-pass coordinates."""
    from breastlib._sampling import normalise_index, pull_back

    generator = torch.Generator().manual_seed(3)
    volume = torch.randn(1, 2, 9, 8, 7, generator=generator)
    displacement = torch.randn(1, 3, 9, 8, 7, generator=generator) * 3.0
    scale = torch.tensor([1.1, 0.9, 1.05])
    axes = [torch.arange(s, dtype=torch.float32) for s in (9, 8, 7)]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    grid = normalise_index(identity + displacement[0].permute(1, 2, 3, 0) * scale,
                           (9, 8, 7))[None]
    whole = F.grid_sample(volume, grid, padding_mode=padding, align_corners=True)
    chunked = pull_back(volume, displacement, scale=scale, padding=padding,
                        chunk_voxels=chunk_voxels)
    assert torch.equal(chunked, whole)


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("shape", [(13, 6, 7), (16, 8, 5), (9, 9, 9), (8, 4, 4)])
def test_downsample_in_slabs_is_the_same_to_the_bit(monkeypatch, factor, shape):
    """Slabs of whole cells (as small as one cell here), each padded on its own: every
    cell averaged as in one pass, the last slab's replicate padding included."""
    from breastlib import smoothing

    generator = torch.Generator().manual_seed(factor)
    tensor = torch.randn(1, 3, *shape, generator=generator)
    whole = F.avg_pool3d(smoothing.pad_to_multiple(tensor, factor), factor, factor)
    for elements in (1, 3 * shape[1] * shape[2] * factor * 2, 10**9):
        monkeypatch.setattr(smoothing, "_DOWNSAMPLE_SLAB_ELEMENTS", elements)
        assert torch.equal(smoothing.downsample(tensor, factor), whole), elements


@pytest.mark.parametrize("spacing", [None, (0.688, 0.688, 1.096), (1.0, 2.5, 0.7)])
def test_depth_in_chunks_is_scipys_to_the_bit(spacing):
    """The guard's distances from the feature transform, chunk by chunk, are scipy's
    distance transform to the bit, and so is the interior thresholded from them (checked
    at thresholds equal to distances that occur, where one rounding step would flip
    voxels)."""
    import numpy as np
    from scipy.ndimage import distance_transform_edt

    from breastlib.register.guard import deeper_than, nearest_background_distances

    rng = np.random.default_rng(4)
    foreground = np.zeros((23, 19, 17), dtype=bool)
    foreground[2:21, 1:18, 3:16] = rng.random((19, 17, 13)) > 0.08
    distances = distance_transform_edt(foreground, sampling=spacing)
    for chunk in (1, 19 * 17 * 3 + 5, 10**9):
        chunks = list(nearest_background_distances(foreground, spacing, chunk_voxels=chunk))
        assert chunks[0][0] == 0 and chunks[-1][1] == foreground.shape[0]
        np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks]), distances)
        for depth in [0.0, *np.unique(distances)[1::7], 1e9]:
            np.testing.assert_array_equal(
                deeper_than(foreground, float(depth), spacing, chunk_voxels=chunk),
                distances > depth)
