"""Joint PCA of token matrices without float64 token buffers.

:func:`fit_pca` (breastlib's) accumulates a ``(C, C)`` second-moment matrix (float64, a few
MB) over chunks of float32 tokens, so the tokens themselves are never copied to float64 or
stacked. :func:`fit_released_pca` is the released code's PCA (``torch.pca_lowrank`` on the
tokens of every slice), computed from the encoded slices and their blend weights without
building the tokens of the slices in between.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def fit_pca(
    chunks: Iterable[torch.Tensor],
    dims: int,
    *,
    centred: bool = True,
    method: str = "exact",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit a PCA projection on rows of token matrices.

    Parameters
    ----------
    chunks
        ``(N_i, C)`` float32 tensors, all rows used (e.g. all tokens of encoded slices
        of the fixed and the moving volume).
    dims
        Number of components ``k``.
    centred
        Subtract the mean before fitting and before projecting (standard PCA). ``False``
        fits the leading right singular vectors of the uncentred rows (the eigenvectors
        of the second moment) and projects without removing the mean. Neither is the
        released code's PCA, which fits a centred basis and projects uncentred rows: see
        :func:`fit_released_pca`.
    method
        ``"exact"``: eigendecomposition of the accumulated second moment
        (deterministic). ``"lowrank"``: ``torch.pca_lowrank(q=dims + 6)`` on the stacked
        rows (centred or not as above) with a generator seeded by ``seed``; needs all rows
        in memory.
    seed
        Seeds the ``"lowrank"`` randomised solver.

    Returns
    -------
    components : torch.Tensor
        ``(C, k)`` float32, orthonormal columns, sign fixed so each column's largest
        absolute entry is positive.
    mean : torch.Tensor
        ``(C,)`` float32 mean removed before projecting (zeros when not ``centred``).
    """
    if method == "lowrank":
        rows = torch.cat([c.float() for c in chunks])
        mean = rows.mean(0) if centred else torch.zeros(rows.shape[1], device=rows.device)
        with torch.random.fork_rng(devices=[rows.device] if rows.device.type == "cuda" else []):
            torch.manual_seed(seed)
            _, _, v = torch.pca_lowrank(rows - mean, q=min(dims + 6, *rows.shape), center=False)
        comps = v[:, :dims]
    elif method == "exact":
        second = None
        total = None
        count = 0
        for chunk in chunks:
            chunk = chunk.float()
            gram = (chunk.T @ chunk).double()
            second = gram if second is None else second + gram
            csum = chunk.sum(0).double()
            total = csum if total is None else total + csum
            count += chunk.shape[0]
        if second is None or count == 0:
            raise ValueError("PCA needs at least one token")
        mean64 = total / count
        moment = second / count
        if centred:
            moment = moment - torch.outer(mean64, mean64)
        _, vecs = torch.linalg.eigh(moment)
        comps = vecs.flip(1)[:, :dims].float()
        mean = mean64.float() if centred else torch.zeros_like(mean64, dtype=torch.float32)
    else:
        raise ValueError(f"unknown PCA method '{method}'")
    if comps.shape[1] < dims:
        raise ValueError(f"cannot fit {dims} components to {comps.shape[0]}-channel tokens")
    index = comps.abs().argmax(0)
    signs = torch.sign(comps[index, torch.arange(comps.shape[1])])
    signs[signs == 0] = 1
    return (comps * signs).contiguous(), mean.to(comps.device)


def fit_released_pca(
    slices: list[torch.Tensor],
    weights: torch.Tensor,
    dims: int,
    *,
    seed: int = 0,
    niter: int = 2,
) -> torch.Tensor:
    """The released code's PCA basis, fitted on the tokens of every slice.

    The released code (utils/img_operations.py, pca_lowrank_transform) calls
    ``torch.pca_lowrank(rows, q=dims)`` on the tokens of every slice of both volumes, the
    blended ones included, and multiplies the *uncentred* rows by the basis it returns
    (which is that of the *centred* rows): project with ``mean = 0``. This function runs
    the same randomised algorithm (Halko et al. 2009, algorithm 4.4, as
    ``torch.pca_lowrank`` with ``center=True``: a ``randn(C, q)`` test matrix,
    ``niter`` power iterations with QR, an SVD of the projected rows) but applies every
    product to ``rows = weights @ encoded`` through the encoded slices, so the tokens of
    the slices in between are never built. The draw comes from a generator seeded by
    ``seed`` (the released code's is unseeded), so a run repeats; for a row matrix
    small enough to build, the basis equals ``torch.pca_lowrank``'s under the same seed.

    Parameters
    ----------
    slices
        One ``(E, T, C)`` float32 tensor per volume: the ``T`` tokens of each of its
        ``E`` encoded slices.
    weights
        ``(Z, E)`` blend weights of every slice (:func:`breastlib.features.layout.slice_weights`).
    dims
        Components ``k`` (the released ``q``, no oversampling).
    seed
        Seeds the random test matrix.
    niter
        Power iterations (``torch.pca_lowrank``'s default 2).

    Returns
    -------
    torch.Tensor
        ``(C, k)`` float32 basis with orthonormal columns, signs as the SVD gives them.
    """
    device = slices[0].device
    blend = weights.to(device=device, dtype=torch.float32)
    channels = slices[0].shape[-1]
    rows = sum(blend.shape[0] * s.shape[1] for s in slices)
    if not 0 < dims <= min(rows, channels):
        raise ValueError(f"cannot fit {dims} components to {rows} rows of {channels} channels")
    counts = blend.sum(0)  # how often each encoded slice's rows appear, (E,)
    mean = sum(torch.einsum("e,etc->c", counts, s) for s in slices) / rows

    def times(matrix: torch.Tensor) -> torch.Tensor:
        """(centred rows) @ matrix, ``(rows, q)``, rows in (volume, slice, token) order."""
        parts = [torch.einsum("ze,etq->ztq", blend, (s - mean) @ matrix) for s in slices]
        return torch.cat([p.reshape(-1, matrix.shape[1]) for p in parts])

    def transposed_times(q: torch.Tensor) -> torch.Tensor:
        """(centred rows)^T @ q, ``(C, q)``."""
        out = torch.zeros((channels, q.shape[1]), dtype=q.dtype, device=device)
        start = 0
        for s in slices:
            size = blend.shape[0] * s.shape[1]
            block = q[start : start + size].reshape(blend.shape[0], s.shape[1], -1)
            start += size
            out += torch.einsum("etc,etq->cq", s - mean, torch.einsum("ze,ztq->etq", blend, block))
        return out

    devices = [device] if device.type == "cuda" else []
    wide = rows < channels  # torch.pca_lowrank then works on the transposed matrix
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        test = torch.randn(rows if wide else channels, dims, dtype=torch.float32,
                           device=device)
    # the range finder of the (possibly transposed) centred rows, then an SVD of the
    # small projected matrix
    left, right = (transposed_times, times) if wide else (times, transposed_times)
    basis = torch.linalg.qr(left(test)).Q
    for _ in range(niter):
        basis = torch.linalg.qr(right(basis)).Q
        basis = torch.linalg.qr(left(basis)).Q
    u, _, vh = torch.linalg.svd(right(basis).T, full_matrices=False)
    components = basis @ u if wide else vh.mH
    return components[:, :dims].contiguous()


def project(tokens: torch.Tensor, components: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Project ``(B, C, h, w)`` tokens to ``(B, k, h, w)`` with a fitted PCA."""
    centred = tokens - mean.view(1, -1, 1, 1).to(tokens.dtype)
    return torch.einsum("bchw,ck->bkhw", centred, components.to(tokens.dtype))
