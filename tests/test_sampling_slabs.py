"""Sampling in slabs: the same numbers as one ``grid_sample`` call, on every core.

PyTorch's CPU kernels for 3-D ``grid_sample`` and its gradient parallelise over the batch
only; :func:`breastlib._sampling.grid_sample_slabs` cuts the output grid into a batch of
slabs that share the volume. Every output voxel is computed by the same arithmetic, so the
results must be equal to the bit, whatever the number of slabs and however unevenly they
cut the grid.
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
