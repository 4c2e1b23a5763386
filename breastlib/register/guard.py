"""Keep the stage of a registration that matches best: no silent drift.

Where features carry no usable information (random weights, an encoder blind to a
contrast), Adam keeps stepping on noise and can end tens of millimetres away with a
folded field, far worse than where it started. The guard judges each stage's field from
the two images alone (never from a true field, landmarks or label maps) with one fixed,
modality-independent measure that does not depend on the method being judged: the mean
squared difference of MIND-SSC descriptors (background floor 0.05) inside the fixed
body's interior (the foreground more than :data:`GUARD_INTERIOR_MM` inside its outline),
averaged onto the Adam grid, at two scales: fine (radius 1, dilation 2) and coarse
(radius 2, dilation 4). Each stage's field warps the moving image at full resolution and
the descriptors are computed on the warped image (on images with voxels finer than
:data:`GUARD_POOLED_SPACING_MM` on the Adam grid, after pooling the warped image onto it).

The candidates, from least to most refined, are ``identity`` (no registration at all),
``initial`` (the initial alignment alone), ``convex`` (plus the convex step) and ``adam``
(plus instance optimisation). A candidate whose field folds more than
:data:`~breastlib.displacement.FOLDING_LIMIT_PCT` % of the body (at full resolution, the
image's foreground with each axial slice's holes filled) is out. Walking
from the least refined stage up, a stage replaces the one kept so far only if it lowers
the cost by more than :data:`GUARD_MARGIN` (relative) at both scales: the burden of
proof lies on the registration, since the judge is not the objective the stage optimised
and small differences are noise rather than evidence. Two scales, because a field can
align the edges in the images while moving the tissue between them the wrong way: on the
book's longitudinal pairs, random-weight DINOv2's convex step lowered the fine-scale cost
by 25 % and the coarse one by under 5 %, and it ended 5 mm farther from the true
deformation than no registration. The interior, because the body outline is the
strongest edge in either image, and a field that lines up the skin while it moves the
tissue inside the wrong way looks better over the whole foreground than it is.

On the book's 8 clinical phantom pairs with the ``fast`` profile, the guard kept MIND's
Adam step on 7 pairs and the initial alignment on the eighth (a sequence pair whose Adam
field, without the guard, folds about 2 % of the body, in ghost artefacts that the body
mask includes); it kept the initial alignment for every random-weight encoder on every
pair, and no kept stage ended farther from the true deformation than no registration.
The result records which stage was kept and every stage's costs and folding, so a reader
sees how often the guard stepped in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from breastlib._chunks import plane_chunks
from breastlib._sampling import pull_back
from breastlib.displacement import FOLDING_LIMIT_PCT
from breastlib.encoders.mind import mind_ssc
from breastlib.smoothing import downsample

#: Stages in order of refinement.
STAGES = ("identity", "initial", "convex", "adam")
#: A more refined stage replaces the one kept so far only if it lowers the judge's cost
#: by more than this fraction, at both scales.
GUARD_MARGIN = 0.10
#: The judge's fine-scale MIND-SSC settings, the same for every method and profile.
GUARD_MIND = {"radius": 1, "dilation": 2, "floor": 0.05}
#: ... and its coarse scale.
GUARD_MIND_COARSE = {"radius": 2, "dilation": 4, "floor": 0.05}
#: The judge looks this far (mm) inside the fixed body's outline.
GUARD_INTERIOR_MM = 10.0
#: Where the judge's grid (the Adam grid) has voxels no larger than this (mm), its
#: descriptors are computed on the images pooled onto that grid (warped at full
#: resolution first) rather than at full resolution: MIND's dilation of 2 voxels then
#: spans about as many millimetres as on the book's small pairs (2.6 mm voxels), and a
#: full-size pair (0.76 mm voxels, 21 million) costs 8 times fewer voxels per descriptor.
GUARD_POOLED_SPACING_MM = 2.5


@dataclass(frozen=True)
class StageCheck:
    """How one stage's field looks to the judge.

    Attributes
    ----------
    stage
        One of :data:`STAGES`.
    cost
        Mean MIND-SSC squared difference over the fixed body's interior at the fine scale
        (:data:`GUARD_MIND`; dimensionless).
    folding_pct
        Percentage of the fixed body (:func:`_filled_body`) with a non-positive Jacobian
        determinant, at full resolution, as the results count it.
    coarse_cost
        The same at the coarse scale (:data:`GUARD_MIND_COARSE`); ``None`` when not
        measured (then only ``cost`` decides).
    """

    stage: str
    cost: float
    folding_pct: float
    coarse_cost: float | None = None

    def to_dict(self) -> dict[str, float | str | None]:
        return {k: (round(v, 5) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}

    def improves_on(self, kept: StageCheck, margin: float) -> bool:
        """Lower than ``kept``'s cost by more than ``margin`` (relative) at every scale
        both measured."""
        pairs = [(self.cost, kept.cost)]
        if self.coarse_cost is not None and kept.coarse_cost is not None:
            pairs.append((self.coarse_cost, kept.coarse_cost))
        return all(new < old * (1.0 - margin) for new, old in pairs)


def _mind(image: torch.Tensor, settings: dict[str, float] = GUARD_MIND) -> torch.Tensor:
    """``(X, Y, Z)`` normalised image -> ``(1, 12, X, Y, Z)`` MIND-SSC descriptors."""
    return mind_ssc(image[None, None].float(), **settings)


def _determinant(field: torch.Tensor) -> torch.Tensor:
    """``det(I + du/di)`` of a ``(3, x, y, z)`` voxel field (central differences, one-sided
    at the borders, as :meth:`breastlib.displacement.Displacement.jacobian_determinant`)."""
    rows = []
    for c in range(3):
        grads = torch.gradient(field[c].double())
        rows.append([g + (1.0 if a == c else 0.0) for a, g in enumerate(grads)])
    return (rows[0][0] * (rows[1][1] * rows[2][2] - rows[1][2] * rows[2][1])
            - rows[0][1] * (rows[1][0] * rows[2][2] - rows[1][2] * rows[2][0])
            + rows[0][2] * (rows[1][0] * rows[2][1] - rows[1][1] * rows[2][0]))


def _folding_pct(field: torch.Tensor, mask: torch.Tensor, *, slab: int = 32) -> float:
    """Percentage of ``mask`` where ``det(I + du/di)`` of a ``(1, 3, x, y, z)`` voxel field
    is non-positive, computed ``slab`` sagittal planes at a time (bounded memory; each slab
    overlaps its neighbours by one plane, so the central differences are the same as on
    the whole field)."""
    size, folded, counted = field.shape[2], 0, 0
    for start in range(0, size, slab):
        lo, hi = max(start - 1, 0), min(start + slab + 1, size)
        det = _determinant(field[0, :, lo:hi])[start - lo: start - lo + min(slab, size - start)]
        inside = mask[start:start + slab]
        folded += int((det[inside] <= 0).sum())
        counted += int(inside.sum())
    return 100.0 * folded / max(counted, 1)


def _filled_body(foreground: np.ndarray) -> np.ndarray:
    """The body the guard counts folding in: the image's foreground with every axial
    slice's holes filled (the lungs, dark on MR and CT, are enclosed by the ribs in each
    slice but open to the edge of a field of view in 3D)."""
    from scipy.ndimage import binary_fill_holes

    filled = foreground.copy()
    for k in range(filled.shape[2]):
        filled[:, :, k] = binary_fill_holes(filled[:, :, k])
    return filled


#: Voxels per chunk in which :func:`deeper_than` turns nearest background voxels into
#: distances.
_DEPTH_CHUNK_VOXELS = 4_000_000


def nearest_background_distances(
    foreground: np.ndarray, spacing: tuple[float, float, float] | None = None, *,
    chunk_voxels: int = _DEPTH_CHUNK_VOXELS,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """``distance_transform_edt(foreground, sampling=spacing)``, to the bit, as
    ``(start, stop, distances)`` chunks of whole planes along the first axis.

    scipy's distance transform of a full-size image holds, besides its feature transform
    (three int32 volumes), the offsets to the nearest background voxel as three float64
    volumes: about 2 GB at once for 46 million voxels, the largest allocation of the
    guard. Here only the feature transform is asked of scipy, and the distances are
    computed from it ``chunk_voxels`` voxels at a time with scipy's arithmetic, operation
    for operation (scipy 1.15, ``scipy.ndimage.distance_transform_edt``; the tests compare
    the two).
    """
    from scipy.ndimage import distance_transform_edt

    nearest = distance_transform_edt(foreground, sampling=spacing, return_distances=False,
                                     return_indices=True)
    sampling = None if spacing is None else np.asarray(spacing, dtype=np.float64)
    shape = foreground.shape
    for start, stop in plane_chunks(shape[0], int(np.prod(shape[1:])), chunk_voxels):
        index = np.indices((stop - start, *shape[1:]), dtype=nearest.dtype)
        index[0] += start
        offset = (nearest[:, start:stop] - index).astype(np.float64)
        if sampling is not None:
            for axis in range(len(sampling)):
                offset[axis, ...] *= sampling[axis]
        np.multiply(offset, offset, offset)
        yield start, stop, np.sqrt(np.add.reduce(offset, axis=0))


def deeper_than(foreground: np.ndarray, depth_mm: float,
                spacing: tuple[float, float, float] | None = None, *,
                chunk_voxels: int = _DEPTH_CHUNK_VOXELS) -> np.ndarray:
    """``distance_transform_edt(foreground, sampling=spacing) > depth_mm``, to the bit,
    with bounded memory (:func:`nearest_background_distances`)."""
    deep = np.empty(foreground.shape, dtype=bool)
    for start, stop, distances in nearest_background_distances(
            foreground, spacing, chunk_voxels=chunk_voxels):
        deep[start:stop] = distances > depth_mm
    return deep


def check_stages(
    fixed: torch.Tensor,
    aligned_moving: torch.Tensor,
    unaligned_moving: torch.Tensor | None,
    fields: dict[str, torch.Tensor],
    foreground: np.ndarray,
    *,
    factor: int = 2,
    spacing: tuple[float, float, float] | None = None,
    covered: np.ndarray | None = None,
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
    spacing
        The fixed grid's voxel size (mm), to find the interior (:data:`GUARD_INTERIOR_MM`);
        ``None``: 1 mm. Where no voxel lies that deep, the whole foreground is judged.
    covered
        ``(X, Y, Z)`` boolean mask of where the moving image has data (``None``:
        everywhere); the judge looks only there, since elsewhere any warped image is
        padding.

    Returns
    -------
    list of StageCheck
        In the order of :data:`STAGES` (``identity`` left out when
        ``unaligned_moving`` is ``None``).
    """
    device = fixed.device
    interior = deeper_than(foreground, GUARD_INTERIOR_MM, spacing)
    judged = interior if interior.any() else foreground
    if covered is not None and (judged & covered).any():
        judged = judged & covered
    mask = torch.as_tensor(judged, device=device, dtype=torch.float32)[None, None]
    coarse_mask = downsample(mask, factor)[0, 0] > 0.5
    if not bool(coarse_mask.any()):
        coarse_mask = torch.ones_like(coarse_mask)
    scales = (GUARD_MIND, GUARD_MIND_COARSE)
    # Fine voxels: descriptors of the images pooled onto the judge's grid (see
    # GUARD_POOLED_SPACING_MM); coarser ones: descriptors at full resolution, then pooled.
    pooled = spacing is not None and min(spacing) * factor <= GUARD_POOLED_SPACING_MM

    def judge(image: torch.Tensor) -> list[torch.Tensor]:
        """The judge's descriptors of an ``(X, Y, Z)`` image, on the judge's grid."""
        if pooled:
            small = downsample(image[None, None].float(), factor)[0, 0]
            return [_mind(small, s) for s in scales]
        return [downsample(_mind(image, s), factor) for s in scales]

    fixed_mind = judge(fixed)
    aligned_mind = judge(aligned_moving)

    def costs(moving_mind: list[torch.Tensor]) -> tuple[float, float]:
        fine, coarse = (float(((m - f) ** 2).sum(1)[0][coarse_mask].mean())
                        for m, f in zip(moving_mind, fixed_mind, strict=True))
        return fine, coarse

    def check(stage: str, moving_mind: list[torch.Tensor], folding: float) -> StageCheck:
        fine, coarse = costs(moving_mind)
        return StageCheck(stage, fine, folding, coarse)

    checks = []
    if unaligned_moving is not None:
        checks.append(check("identity", judge(unaligned_moving), 0.0))
    checks.append(check("initial", aligned_mind, 0.0))
    body = torch.as_tensor(_filled_body(foreground), device=device)
    for stage in ("convex", "adam"):
        if stage in fields:
            # The image is warped at full resolution and its descriptors computed after:
            # warping coarse descriptors instead blurs away the millimetres that Adam adds.
            warped = pull_back(aligned_moving[None, None].float(), fields[stage].float())[0, 0]
            checks.append(check(stage, judge(warped), _folding_pct(fields[stage], body)))
    return checks


def choose_stage(checks: list[StageCheck], *, margin: float = GUARD_MARGIN) -> str:
    """Walk the stages from least to most refined; a stage that does not fold replaces
    the one kept so far when its cost is lower by more than ``margin`` (relative) at
    every scale (:meth:`StageCheck.improves_on`).

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
        if check.improves_on(kept, margin):
            kept = check
    return kept.stage
