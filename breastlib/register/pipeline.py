"""One pair, end to end: initial alignment -> features -> convex step -> Adam.

Every step follows the profile (:mod:`breastlib.profiles`); with ``paper`` it is the
paper's released pipeline, quirks included, and with ``corrected`` or ``fast`` it carries
breastlib's corrections (:data:`breastlib.profiles.CORRECTIONS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from breastlib._sampling import sample_volume
from breastlib.device import resolve_device
from breastlib.displacement import Displacement
from breastlib.encoders import get_spec
from breastlib.encoders.mind import mind_volume
from breastlib.errors import InputError
from breastlib.intensity import normalise_intensity
from breastlib.profiles import get_profile
from breastlib.register.adam import adam_step, convex_start
from breastlib.register.convex import convex_step
from breastlib.register.guard import check_stages, choose_stage
from breastlib.register.initial import (
    block_average,
    block_factors,
    foreground_mask,
    initial_matrix,
)
from breastlib.smoothing import downsample, upsample_blocks
from breastlib.volume import Volume


@dataclass
class RegistrationResult:
    """What :func:`register_pair` returns.

    Attributes
    ----------
    displacement
        Fixed -> moving pull-back field on the fixed grid (initial alignment included).
    method, profile
        Feature method and parameter profile names.
    params
        Every ConvexAdam parameter used.
    device
        Where the computation ran (``"cpu"``, ``"cuda:0"``).
    seconds
        ``{"init", "features", "optimisation", "convex", "adam", "guard", "total"}``
        wall-clock seconds (``optimisation`` is ``convex`` + ``adam``; ``guard`` is 0 with
        the guard off).
    initial_matrix
        4x4 fixed -> moving world matrix of the initial alignment (RAS mm).
    encoder
        Encoder description for foundation-model methods (``None`` for MIND).
    convex_displacement
        With ``keep_convex=True``: the field after the convex step alone, smoothed as Adam
        starts from it (what ``iterations=0`` returns), initial alignment included;
        otherwise ``None``.
    stage
        For ConvexAdam methods, the stage whose field :attr:`displacement` is: ``"adam"``
        unless the profile's guard kept an earlier one (``"convex"``, ``"initial"`` or
        ``"identity"``); empty for the classical baselines.
    stage_checks
        With the guard on, every stage's judge cost and folding
        (:class:`breastlib.register.guard.StageCheck` as dicts); otherwise empty.
    adam_displacement
        With ``keep_adam=True`` and a guard that kept an earlier stage: the Adam stage's
        field all the same (the method's own result, initial alignment included), which
        a study measures to judge the features rather than the guard; otherwise ``None``
        (then :attr:`displacement` is that field, or there is none).
    work_spacing_mm
        ``(3,)`` voxel size (mm) of the grid the features, both stages and the guard ran
        on: the fixed image's own, or its blocks with the profile's ``work_spacing``
        (every field above is on the fixed grid all the same).
    pooling_factors
        ``{"convex": (fx, fy, fz), "adam": (fx, fy, fz)}``: working voxels per cell of
        each stage's grid (:meth:`~breastlib.profiles.ConvexAdamParams.pooling_factors`);
        empty for the classical baselines.
    smoothing_passes
        ``(px, py, pz)``: passes of the box filter Adam applies to its field along each
        axis (:meth:`~breastlib.profiles.ConvexAdamParams.smoothing_passes`); empty for
        the classical baselines.
    regularisation_weight
        The weight of Adam's diffusion regulariser on this grid (``regularisation``, or
        more on cells finer than the profile's ``regularisation_cell_mm``,
        :meth:`~breastlib.profiles.ConvexAdamParams.regularisation_weight`); ``None`` for
        the classical baselines.
    """

    displacement: Displacement
    method: str
    profile: str
    params: dict[str, Any]
    device: str
    seconds: dict[str, float]
    initial_matrix: np.ndarray
    encoder: dict[str, Any] | None = field(default=None)
    convex_displacement: Displacement | None = field(default=None)
    stage: str = ""
    stage_checks: list[dict[str, Any]] = field(default_factory=list)
    adam_displacement: Displacement | None = field(default=None)
    work_spacing_mm: tuple[float, ...] = ()
    pooling_factors: dict[str, tuple[int, ...]] = field(default_factory=dict)
    smoothing_passes: tuple[int, ...] = ()
    regularisation_weight: float | None = None

    @property
    def own_displacement(self) -> Displacement:
        """The method's own result: the Adam stage's field even where the guard kept an
        earlier stage (when it was kept, ``keep_adam=True``), else :attr:`displacement`."""
        return self.adam_displacement if self.adam_displacement is not None else (
            self.displacement)


# Standard deviation of MIND-SSC descriptors on breast MRI (about 0.3). PCA features of
# the encoders are brought to the same spread, so that the regularisation weight and the
# coupling weights of a profile mean the same for every method.
_MIND_FEATURE_STD = 0.3


def _joint_std(fixed: torch.Tensor, moving: torch.Tensor) -> float:
    """The joint standard deviation of two feature volumes (the root of their mean
    variance), at least 1e-12."""
    return max(float(torch.sqrt(0.5 * (fixed.var() + moving.var()))), 1e-12)


def _feature_factor(method: str, fixed: torch.Tensor | None, moving: torch.Tensor | None,
                    params: Any) -> float:
    """The one factor the profile multiplies both ``(C, X, Y, Z)`` feature volumes by
    (for MIND it depends on the profile alone: the volumes may be ``None``).

    ``feature_spread="mind"``: encoder features brought to MIND's spread, then every
    method times ``feature_scale``. ``"raw"``: no rescaling; ``feature_scale`` on MIND and
    the SAM family only, as the released code multiplies MIND-SSC and SAM tokens by 10 and
    leaves DINOv2 and BiomedCLIP as they are (inference_reg.py, foundReg.case_inference
    and extract_encoder_feature).
    """
    if params.feature_spread == "mind":
        spread = 1.0
        if method != "mind":
            spread = _MIND_FEATURE_STD / _joint_std(fixed, moving)
        return spread * params.feature_scale
    scaled = method == "mind" or get_spec(method).family == "sam"
    return params.feature_scale if scaled else 1.0


def register_pair(
    fixed: Volume,
    moving: Volume,
    *,
    method: str = "mind",
    profile: str = "fast",
    init: str | None = None,
    device: str = "auto",
    weights: str = "random",
    input_size: int | None = None,
    slice_step: int | None = None,
    pca_dims: int | None = None,
    seed: int = 0,
    progress: bool = False,
    keep_convex: bool = False,
    keep_adam: bool = False,
    **overrides: Any,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` with features + ConvexAdam.

    Parameters
    ----------
    fixed, moving
        Volumes on any grids that overlap in world space; raw intensities of any range.
    method
        ``"mind"`` or a foundation encoder name (see ``breastlib.encoders``).
    profile
        A name of :func:`breastlib.profiles.profile_names`: ``"fast"`` (default),
        ``"corrected"``, ``"paper"``, ``"convexadam"`` or ``"paper+<correction>"``.
    init
        ``"none"``, ``"com"`` (centres of mass) or ``"affine"``; default the profile's
        (``affine``; ``none`` for ``paper`` and ``convexadam``).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    weights, input_size, slice_step, pca_dims
        Encoder options (ignored by MIND).
    seed
        Seeds PCA and random-weight encoders.
    progress
        Show a progress bar over the Adam iterations.
    keep_convex
        Also return the convex step's field (:attr:`RegistrationResult.convex_displacement`),
        so one run shows what each stage contributes; costs one more full-size field.
    keep_adam
        Where the guard keeps an earlier stage, also return the Adam stage's field
        (:attr:`RegistrationResult.adam_displacement`): what the features themselves did.
    **overrides
        Any :class:`ConvexAdamParams` field, e.g. ``iterations=300``.
    """
    if init is not None:
        overrides["init"] = init
    params = get_profile(profile, **overrides)
    init = params.init
    dev = resolve_device(device)
    if not fixed.grid.overlaps(moving.grid) and init == "none":
        raise InputError("fixed and moving images do not overlap in world space")
    torch.manual_seed(seed)
    start = time.perf_counter()

    # With a working spacing, everything below runs on block averages of both images, and
    # each field comes back to the image grid through to_displacement.
    image_grid, factors = fixed.grid, (1, 1, 1)
    if params.work_spacing > 0:
        factors = block_factors(fixed, params.work_spacing)
        fixed = block_average(fixed, params.work_spacing)
        moving = block_average(moving, params.work_spacing)
    matrix = initial_matrix(fixed, moving, init)
    index_map = np.linalg.inv(moving.affine) @ matrix @ fixed.affine
    moving_on_fixed = sample_volume(moving.array, index_map, fixed.shape, device=str(dev))
    if not np.any(moving_on_fixed):
        raise InputError("after initial alignment the moving image does not overlap the fixed")
    fixed_norm = normalise_intensity(fixed.array)
    moving_norm = normalise_intensity(moving_on_fixed)
    del moving_on_fixed  # full-size arrays are let go as soon as they are used up
    t_init = time.perf_counter()
    fixed_input, moving_input = fixed_norm, moving_norm
    if params.background == "mask":
        fixed_input = fixed_norm * foreground_mask(fixed.with_array(fixed_norm))
        moving_input = moving_norm * foreground_mask(fixed.with_array(moving_norm))

    pooling = params.pooling_factors(fixed.spacing, fixed.shape)
    convex_factor, adam_factor = pooling["convex"], pooling["adam"]
    passes = params.smoothing_passes(fixed.spacing, adam_factor)
    regularisation = params.regularisation_weight(fixed.spacing, adam_factor)
    encoder_info = None
    # Both stages see the features only pooled onto their grids: each volume is pooled as
    # soon as it exists and its full resolution let go (MIND-SSC of a full-size image is
    # 12 x 21-46 million voxels, 1-2 GB).
    released = params.grid == "released"

    def pooled(features: torch.Tensor) -> list[torch.Tensor]:
        full = features[None].to(dev, torch.float32)
        return [downsample(full, factor, floor=released)
                for factor in (convex_factor, adam_factor)]

    if method == "mind":
        factor = _feature_factor(method, None, None, params)  # the same for every image
        fixed_pooled = pooled(mind_volume(fixed_input, params, dev))
        moving_pooled = pooled(mind_volume(moving_input, params, dev))
    else:
        from breastlib.features import feature_pair

        fixed_feat, moving_feat, encoder_info = feature_pair(
            method, fixed.with_array(fixed_input), fixed.with_array(moving_input),
            weights=weights, input_size=input_size, slice_step=slice_step, pca_dims=pca_dims,
            profile=profile, device=str(dev), seed=seed, params=params,
        )
        factor = _feature_factor(method, fixed_feat, moving_feat, params)
        fixed_pooled, moving_pooled = pooled(fixed_feat), pooled(moving_feat)
        del fixed_feat, moving_feat
    del fixed_input, moving_input
    convex_pair, adam_pair = ([f.mul_(factor), m.mul_(factor)]
                              for f, m in zip(fixed_pooled, moving_pooled, strict=True))
    del fixed_pooled, moving_pooled  # each pair is let go with its stage
    t_features = time.perf_counter()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=params.iterations, desc=f"{method} ConvexAdam", unit="it", leave=False)
    with torch.no_grad():
        initial = convex_step(
            *convex_pair, fine_shape=fixed.shape, grid_spacing=convex_factor,
            half_width=params.half_width, coupling=params.coupling,
            inverse_iterations=params.inverse_iterations, cost_smooth=params.cost_smooth,
            cost_padding=params.cost_padding, coupling_smooth=params.coupling_smooth,
            coupling_padding=params.coupling_padding, coupling_output=params.coupling_output,
            tie_break=params.tie_break, grid=params.grid,
        )
    t_convex = time.perf_counter()
    covered = covered_mask(fixed, moving, matrix)
    adam_settings = dict(
        grid_spacing=adam_factor, learning_rate=params.learning_rate,
        regularisation=regularisation, smooth_kernel=params.smooth_kernel,
        smooth_passes=passes, padding=params.adam_padding, grid=params.grid,
        cost=params.adam_cost,
        weight=overlap_weight(covered, dev) if params.data_region == "overlap" else None,
    )
    convex_field = None
    if keep_convex or params.guard:
        convex_field = convex_start(
            initial, grid_spacing=adam_factor, smooth_kernel=params.smooth_kernel,
            smooth_passes=passes, padding=params.adam_padding, grid=params.grid,
        )
    del convex_pair
    field = adam_step(
        *adam_pair, initial, pooled=True, iterations=params.iterations,
        progress=(lambda i: bar.update(1)) if bar is not None else None, **adam_settings,
    )
    del initial, adam_pair, adam_settings
    if bar is not None:
        bar.close()
    t_opt = time.perf_counter()

    def to_displacement(voxels: torch.Tensor) -> Displacement:
        """A voxel field on the working grid as the image grid's field, the initial
        alignment included."""
        if factors != (1, 1, 1):
            voxels = upsample_blocks(voxels, factors, image_grid.shape)
        array = voxels[0].detach().cpu().numpy().astype(np.float32, copy=False)
        return Displacement(array, image_grid).then_affine(matrix)

    stage, checks = "adam", []
    if params.guard:
        stage, checks = _guard(fixed, moving, fixed_norm, moving_norm, matrix, covered,
                               {"convex": convex_field, "adam": field}, params.adam_grid, dev)
    if stage == "identity":
        displacement = Displacement.identity(image_grid)
    elif stage == "initial":
        displacement = Displacement.from_world_affine(matrix, image_grid)
    else:
        displacement = to_displacement(convex_field if stage == "convex" else field)
    convex_displacement = (to_displacement(convex_field)
                           if keep_convex and convex_field is not None else None)
    adam_displacement = (to_displacement(field) if keep_adam and stage != "adam" else None)
    end = time.perf_counter()
    return RegistrationResult(
        displacement=displacement,
        method=method,
        profile=profile,
        params=params.to_dict() | {"init": init, "seed": seed},
        device=str(dev),
        seconds={
            "init": t_init - start,
            "features": t_features - t_init,
            "optimisation": t_opt - t_features,
            "convex": t_convex - t_features,
            "adam": t_opt - t_convex,
            "guard": end - t_opt,
            "total": end - start,
        },
        initial_matrix=matrix,
        encoder=encoder_info,
        convex_displacement=convex_displacement,
        stage=stage,
        stage_checks=[c.to_dict() for c in checks],
        adam_displacement=adam_displacement,
        work_spacing_mm=tuple(float(s) for s in fixed.spacing),
        pooling_factors=pooling,
        smoothing_passes=passes,
        regularisation_weight=regularisation,
    )


#: Voxels by which the moving image's coverage is eroded before it weighs Adam's data
#: term: features near the edge of a field of view see the padding beyond it (MIND-SSC's
#: reach is its dilation plus its radius, 3 voxels with ``fast``).
OVERLAP_MARGIN = 4


def covered_mask(fixed: Volume, moving: Volume, matrix: np.ndarray) -> np.ndarray:
    """``(X, Y, Z)`` bool on the fixed grid: where the moving image, seen through the
    initial alignment ``matrix``, has data at least :data:`OVERLAP_MARGIN` voxels inside
    its field of view (the fixed grid's own border is not eroded)."""
    from scipy.ndimage import binary_erosion

    seen = Displacement.from_world_affine(matrix, fixed.grid).coverage(moving.grid)
    return binary_erosion(seen, iterations=OVERLAP_MARGIN, border_value=1)


def overlap_weight(covered: np.ndarray, dev: torch.device) -> torch.Tensor | None:
    """``(1, 1, X, Y, Z)`` float weight on the fixed grid: 1 where ``covered`` (from
    :func:`covered_mask`), else 0; ``None`` when that covers every voxel or none (then the
    weight would change nothing, or leave nothing to match)."""
    seen = covered
    if seen.all() or not seen.any():
        return None
    return torch.as_tensor(seen, dtype=torch.float32, device=dev)[None, None]


def _guard(
    fixed: Volume, moving: Volume, fixed_norm: np.ndarray, moving_norm: np.ndarray,
    matrix: np.ndarray, covered: np.ndarray, fields: dict[str, torch.Tensor], factor: int,
    dev: torch.device,
) -> tuple[str, list[Any]]:
    """Judge every stage (:mod:`breastlib.register.guard`) and name the one to keep."""
    unaligned = None
    if not np.allclose(matrix, np.eye(4)):
        index_map = np.linalg.inv(moving.affine) @ fixed.affine
        unaligned = torch.as_tensor(normalise_intensity(
            sample_volume(moving.array, index_map, fixed.shape, device=str(dev))), device=dev)
    with torch.no_grad():
        checks = check_stages(
            torch.as_tensor(fixed_norm, device=dev), torch.as_tensor(moving_norm, device=dev),
            unaligned, fields, foreground_mask(fixed), factor=factor, spacing=fixed.spacing,
            covered=covered,
        )
    return choose_stage(checks), checks
