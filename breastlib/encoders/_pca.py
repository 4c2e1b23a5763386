"""Joint PCA of token matrices without float64 token buffers.

The fit accumulates a ``(C, C)`` second-moment matrix (float64, a few MB) over chunks of
float32 tokens, so the tokens themselves are never copied to float64 or stacked.
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
        Subtract the mean (standard PCA). ``False`` reproduces the published uncentred
        ``torch.pca_lowrank(center=False)`` subspace (leading right singular vectors).
    method
        ``"exact"``: eigendecomposition of the accumulated second moment
        (deterministic). ``"lowrank"``: ``torch.pca_lowrank`` on the stacked rows with a
        seeded generator, as published (needs all rows in memory).
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


def project(tokens: torch.Tensor, components: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Project ``(B, C, h, w)`` tokens to ``(B, k, h, w)`` with a fitted PCA."""
    centred = tokens - mean.view(1, -1, 1, 1).to(tokens.dtype)
    return torch.einsum("bchw,ck->bkhw", centred, components.to(tokens.dtype))
