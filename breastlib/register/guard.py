"""Keep the stage of a registration that matches best: no silent drift.

Where features carry no usable information (random weights, an encoder blind to a
contrast), Adam keeps stepping on noise and can end tens of millimetres away with a
folded field, far worse than where it started. The guard judges each stage's field from
the two images alone (never from a true field, landmarks or label maps) with one fixed,
modality-independent measure that does not depend on the method being judged: the mean
squared difference of MIND-SSC descriptors (radius 1, dilation 2, background floor 0.05)
inside the fixed image's foreground, at the resolution of the Adam grid.

The candidates, from least to most refined, are ``identity`` (no registration at all),
``initial`` (the initial alignment alone), ``convex`` (plus the convex step) and ``adam``
(plus instance optimisation). A candidate whose field folds more than
:data:`~breastlib.displacement.FOLDING_LIMIT_PCT` % of the foreground is out. Walking
from the least refined stage up, a stage replaces the one kept so far only if it lowers
the cost by more than :data:`GUARD_MARGIN` (relative): the burden of proof lies on the
registration, since the judge is not the objective the stage optimised and small
differences are noise rather than evidence. The result records which stage was kept and
every stage's cost and folding, so a reader sees how often the guard stepped in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from breastlib._sampling import normalise_index
from breastlib.displacement import FOLDING_LIMIT_PCT
from breastlib.encoders.mind import mind_ssc
from breastlib.smoothing import downsample

#: Stages in order of refinement.
STAGES = ("identity", "initial", "convex", "adam")
#: A more refined stage replaces the one kept so far only if it lowers the judge's cost
#: by more than this fraction.
GUARD_MARGIN = 0.05
#: The judge's MIND-SSC settings, the same for every method and profile.
GUARD_MIND = {"radius": 1, "dilation": 2, "floor": 0.05}


@dataclass(frozen=True)
class StageCheck:
    """How one stage's field looks to the judge.

    Attributes
    ----------
    stage
        One of :data:`STAGES`.
    cost
        Mean MIND-SSC squared difference over the fixed foreground (dimensionless).
    folding_pct
        Percentage of the fixed foreground with a non-positive Jacobian determinant.
    """

    stage: str
    cost: float
    folding_pct: float

    def to_dict(self) -> dict[str, float | str]:
        return {k: (round(v, 5) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def _mind(image: torch.Tensor) -> torch.Tensor:
    """``(X, Y, Z)`` normalised image -> ``(1, 12, X, Y, Z)`` MIND-SSC descriptors."""
    return mind_ssc(image[None, None].float(), **GUARD_MIND)


def _folding_pct(field: torch.Tensor, mask: torch.Tensor) -> float:
    """Percentage of ``mask`` where ``det(I + du/di)`` of a ``(1, 3, x, y, z)`` voxel field
    is non-positive (central differences, one-sided at the borders)."""
    rows = []
    for c in range(3):
        grads = torch.gradient(field[0, c].double())
        rows.append([g + (1.0 if a == c else 0.0) for a, g in enumerate(grads)])
    det = (rows[0][0] * (rows[1][1] * rows[2][2] - rows[1][2] * rows[2][1])
           - rows[0][1] * (rows[1][0] * rows[2][2] - rows[1][2] * rows[2][0])
           + rows[0][2] * (rows[1][0] * rows[2][1] - rows[1][1] * rows[2][0]))
    return float((det[mask] <= 0).double().mean() * 100.0)


def _warp(features: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Pull ``(1, C, x, y, z)`` features back through a ``(1, 3, x, y, z)`` voxel field."""
    shape = tuple(features.shape[2:])
    axes = [torch.arange(s, device=features.device, dtype=features.dtype) for s in shape]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    grid = normalise_index(identity + field[0].permute(1, 2, 3, 0), shape)[None]
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


def check_stages(
    fixed: torch.Tensor,
    aligned_moving: torch.Tensor,
    unaligned_moving: torch.Tensor | None,
    fields: dict[str, torch.Tensor],
    foreground: np.ndarray,
    *,
    factor: int = 2,
) -> list[StageCheck]:
    """Score every stage with the judge.

    Parameters
    ----------
    fixed
        ``(X, Y, Z)`` fixed image, normalised to [0, 1].
    aligned_moving
        ``(X, Y, Z)`` moving image on the fixed grid after the initial alignment,
        normalised; the fields below pull it back.
    unaligned_moving
        ``(X, Y, Z)`` moving image on the fixed grid without any alignment, normalised
        (the ``identity`` candidate); ``None`` when the initial alignment is the identity.
    fields
        ``{"convex": ..., "adam": ...}``: ``(1, 3, X, Y, Z)`` displacements in fixed voxels
        relative to ``aligned_moving``.
    foreground
        ``(X, Y, Z)`` boolean mask of the fixed image's foreground.
    factor
        Judge at 1/``factor`` resolution (the Adam grid's spacing).

    Returns
    -------
    list of StageCheck
        In the order of :data:`STAGES` (``identity`` left out when
        ``unaligned_moving`` is ``None``).
    """
    device = fixed.device
    mask = torch.as_tensor(foreground, device=device, dtype=torch.float32)[None, None]
    coarse_mask = downsample(mask, factor)[0, 0] > 0.5
    if not bool(coarse_mask.any()):
        coarse_mask = torch.ones_like(coarse_mask)
    fixed_mind = downsample(_mind(fixed), factor)
    aligned_mind = downsample(_mind(aligned_moving), factor)

    def cost(moving_mind: torch.Tensor) -> float:
        return float(((moving_mind - fixed_mind) ** 2).sum(1)[0][coarse_mask].mean())

    checks = []
    if unaligned_moving is not None:
        checks.append(StageCheck("identity", cost(downsample(_mind(unaligned_moving), factor)),
                                 0.0))
    checks.append(StageCheck("initial", cost(aligned_mind), 0.0))
    for stage in ("convex", "adam"):
        if stage in fields:
            coarse_field = downsample(fields[stage].float(), factor) / factor
            checks.append(StageCheck(stage, cost(_warp(aligned_mind, coarse_field)),
                                     _folding_pct(coarse_field, coarse_mask)))
    return checks


def choose_stage(checks: list[StageCheck], *, margin: float = GUARD_MARGIN) -> str:
    """Walk the stages from least to most refined; a stage that does not fold replaces
    the one kept so far when its cost is lower by more than ``margin`` (relative).

    Parameters
    ----------
    checks
        From :func:`check_stages`, in the order of :data:`STAGES`.
    margin
        Relative improvement a stage must show to be kept.
    """
    usable = [c for c in checks if c.folding_pct <= FOLDING_LIMIT_PCT]
    if not usable:  # only reachable if identity is absent and the initial field folds
        return checks[0].stage
    kept = usable[0]
    for check in usable[1:]:
        if check.cost < kept.cost * (1.0 - margin):
            kept = check
    return kept.stage
