"""Every registration method behind one call: classical baselines and feature + ConvexAdam."""

from __future__ import annotations

from typing import Any

from breastlib.register.baselines import BASELINES, register_baseline
from breastlib.register.pipeline import RegistrationResult, register_pair
from breastlib.volume import Volume


def register_method(
    fixed: Volume,
    moving: Volume,
    *,
    method: str,
    profile: str = "fast",
    device: str = "auto",
    weights: str = "random",
    seed: int = 0,
    **options: Any,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` with any method the study knows.

    Parameters
    ----------
    fixed, moving
        Volumes on grids that overlap in world space; raw intensities of any range.
    method
        A baseline (``identity``, ``affine``, ``ants``, ``elastix``), ``mind`` or an
        encoder name (``sam``, ``dinov2``, ...).
    profile, device, weights
        ConvexAdam profile, compute device and encoder weights; the classical baselines
        run on the CPU with their own parameters and ignore them.
    seed
        Seeds every random choice of the method.
    **options
        Further keywords for :func:`~breastlib.register.register_pair` (``init``,
        ``input_size``, ``slice_step``, ``pca_dims``, ``progress``, profile overrides) or,
        for a baseline, its parameter overrides.

    Returns
    -------
    RegistrationResult
        The fixed -> moving pull-back displacement and its provenance.
    """
    if method in BASELINES:
        return register_baseline(fixed, moving, method=method, seed=seed, **options)
    return register_pair(fixed, moving, method=method, profile=profile, device=device,
                         weights=weights, seed=seed, **options)
