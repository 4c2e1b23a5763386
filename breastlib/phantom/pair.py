"""One registration pair with exact ground truth, in memory (:func:`make_pair`).

The fixed image is drawn from the subject's reference anatomy on its grid; the moving
image is drawn at ``x = phi^-1(y)`` for each of its own sub-voxel positions ``y``, so it
shows the same tissue displaced by the known transform, with the second visit's tissue
changes. Landmarks are distinctive anatomical points (duct branchings, vessel
bifurcations, nipples, lesion centre, sternum) in the fixed image, mapped to the moving
image through the stored ground-truth field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from breastlib.displacement import Displacement
from breastlib.errors import BreastlibError
from breastlib.grid import Grid
from breastlib.phantom.acquisition import (
    Acquisition,
    acquire,
    bias_field,
    ct_grid,
    mri_grid,
    render_on_grid,
)
from breastlib.phantom.anatomy import Anatomy, Subject, VisitState, draw_subject
from breastlib.phantom.contrast import CONTRASTS, synthesize
from breastlib.phantom.deformation import Deformation, draw_deformation
from breastlib.phantom.labels import LABELS
from breastlib.phantom.landmarks import surface_landmarks
from breastlib.phantom.realism import Realism
from breastlib.tissues import breast_mask
from breastlib.volume import Volume

#: The study tasks and, for each, fixed sequence, moving sequence and motion regime.
TASKS: dict[str, tuple[str, str, str]] = {
    "longitudinal": ("t1", "t1", "visit"),
    "sequence": ("t1", "post", "visit"),
    "modality": ("t1", "ct", "position"),
    "lesion": ("post", "post", "visit"),
}

MIN_LANDMARKS = 40


@dataclass(frozen=True, eq=False)
class Pair:
    """A synthetic pair with ground truth.

    Attributes
    ----------
    fixed, moving
        Images (canonical RAS ``(X, Y, Z)``, float32; MRI arbitrary units or CT HU).
    fixed_labels, moving_labels
        Integer tissue label maps on the same grids (values in ``LABELS``).
    fixed_landmarks, moving_landmarks
        ``(N, 3)`` RAS mm, row ``i`` of each is the same anatomical point.
    landmark_kinds
        ``N`` strings (``fgt_branch``, ``vessel_bifurcation``, ``nipple``, ...).
    displacement
        Ground-truth pull-back field fixed -> moving on the fixed grid:
        ``moving(x + u(x))`` shows the tissue at fixed ``x``.
    inverse
        Field moving -> fixed on the moving grid.
    info
        Task, sequences, seeds, regime and measured magnitudes (mm), density, lesion.
    """

    task: str
    fixed: Volume
    moving: Volume
    fixed_labels: Volume
    moving_labels: Volume
    fixed_landmarks: np.ndarray
    moving_landmarks: np.ndarray
    landmark_kinds: list[str]
    displacement: Displacement
    inverse: Displacement
    info: dict = field(default_factory=dict)


def task_regime(task: str, realism: Realism | None = None) -> str:
    """The motion regime a task's pairs are drawn in: the task's own (:data:`TASKS`), or
    the sequence task's ``visit`` for every task when ``realism.same_regime`` (the default
    realism, :meth:`~breastlib.phantom.realism.Realism.clinical`)."""
    realism = Realism.default() if realism is None else realism
    return TASKS["sequence"][2] if realism.same_regime else TASKS[task][2]


def _streams(seed: int, task: str, n: int) -> list[np.random.Generator]:
    key = sum(ord(c) * 31 ** i for i, c in enumerate(task)) % (2 ** 31)
    return [np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), key]).spawn(n)]


def _shade(bpe: float, fat_sat_quality: float):
    def shade(contrast: str, labels: np.ndarray, aux: dict) -> np.ndarray:
        # A per-point quality (Realism.fat_sat_residue) arrives in aux from render_on_grid.
        quality = aux.get("fat_sat_quality", fat_sat_quality)
        return synthesize(contrast, labels, aux, bpe=bpe, fat_sat_quality=quality)
    return shade


def _needed(contrast: str) -> tuple[str, ...]:
    return ("post", "t1fs") if contrast == "sub" else (contrast,)


def _acquire_series(
    clean: dict[str, np.ndarray], grid: Grid, wanted: tuple[str, ...], acq: Acquisition,
    rng: np.random.Generator,
    artefacts: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Acquisition effects for series of one session (MRI series share the bias field);
    ``artefacts`` (ghosting, motion) act on the noise-free MRI images before the bias field
    and the noise."""
    bias = bias_field(grid, rng, acq.bias_amplitude, acq.coil_gradient)
    out: dict[str, np.ndarray] = {}
    noisy: dict[str, np.ndarray] = {}
    for c in sorted({n for w in wanted for n in _needed(w)}):
        if c == "ct":
            ct_acq = Acquisition(noise=12.0, slice_thickness_mm=acq.slice_thickness_mm)
            noisy[c] = acquire(clean[c], grid, c, ct_acq, rng)
        else:
            image = clean[c] if artefacts is None else artefacts(clean[c])
            noisy[c] = acquire(image, grid, c, acq, rng, bias=bias)
    for w in wanted:
        out[w] = noisy["post"] - noisy["t1fs"] if w == "sub" else noisy[w]
    return out


def render_subject(
    seed: int = 0,
    size: str = "small",
    contrasts: tuple[str, ...] = ("t1", "t1fs", "post", "sub", "t2", "ct"),
    *,
    lesion: bool = True,
    density: str | None = None,
    acquisition: Acquisition | None = None,
) -> tuple[dict[str, Volume], Volume, Anatomy]:
    """Every contrast of one subject at one visit, from one label map (no motion).

    Parameters
    ----------
    seed
        Subject seed.
    size
        ``"small"`` or ``"full"`` (see :func:`~breastlib.phantom.acquisition.mri_grid`).
    contrasts
        Any of ``t1, t1fs, post, sub, t2, ct`` (CT drawn on the MRI grid here).
    lesion, density
        Subject options (see :func:`~breastlib.phantom.anatomy.draw_subject`).

    Returns
    -------
    images : dict of Volume
        ``{contrast: Volume}``.
    labels : Volume
        The shared integer label map.
    anatomy : Anatomy
        The drawable subject.
    """
    for c in contrasts:
        if c not in CONTRASTS:
            raise BreastlibError(f"unknown contrast {c!r}; choose from {sorted(CONTRASTS)}")
    acq = acquisition or Acquisition(supersample=2 if size == "small" else 1)
    rngs = _streams(seed, "subject", 2)
    anatomy = Anatomy(draw_subject(seed, lesion=lesion, density=density),
                      raster_mm=1.0 if size == "small" else 0.6)
    grid = mri_grid(size)
    needed = tuple(sorted({n for c in contrasts for n in _needed(c)}))
    labels, clean = render_on_grid(grid, anatomy.render, _shade(1.0, 1.0), needed,
                                   supersample=acq.supersample)
    images = _acquire_series(clean, grid, tuple(contrasts), acq, rngs[0])
    return ({c: Volume(images[c], grid) for c in contrasts},
            Volume(labels.astype(np.int32), grid), anatomy)


def make_pair(
    task: str,
    size: str = "small",
    seed: int = 0,
    *,
    has_lesion: bool | None = None,
    moving_sequence: str | None = None,
    motion: str | None = None,
    acquisition: Acquisition | None = None,
    realism: Realism | None = None,
) -> Pair:
    """Generate one pair of a study task with its exact ground truth, in memory.

    Parameters
    ----------
    task
        ``"longitudinal"``, ``"sequence"``, ``"modality"`` or ``"lesion"``.
    size
        ``"small"`` (about 2.7 x 2.7 x 2.5 mm, 128 x 128 x 64, for CI) or ``"full"``
        (about 0.76 x 0.76 x 1.5 mm, 448 x 448 x 106).
    seed
        Pair seed: the same seed gives bit-identical output.
    has_lesion
        Whether the subject has a lesion. Default: always for ``lesion``, drawn with
        probability 1/2 for the other tasks.
    moving_sequence
        Override the moving contrast (e.g. ``"t2"`` for the sequence task).
    motion
        Override the motion regime: ``"visit"``, ``"position"`` or ``"static"``
        (sequence-only: sub-millimetre rigid motion, a sanity check).
    acquisition
        Acquisition effects (default: 2x supersampling for ``small``, none for
        ``full``; bias 0.12; Rician noise 2 % of fat).
    realism
        The clinical effects switched on (:class:`~breastlib.phantom.realism.Realism`);
        default :meth:`~breastlib.phantom.realism.Realism.clinical`.
        ``Realism.off()`` gives the original phantom (version 1) bit for bit.

    Returns
    -------
    Pair
    """
    if task not in TASKS:
        raise BreastlibError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    realism = Realism.default() if realism is None else realism
    fixed_seq, moving_seq, _ = TASKS[task]
    moving_seq = moving_sequence or moving_seq
    regime = motion or task_regime(task, realism)
    if moving_seq not in CONTRASTS:
        raise BreastlibError(f"unknown sequence {moving_seq!r}; choose from {sorted(CONTRASTS)}")
    acq = acquisition or Acquisition(supersample=2 if size == "small" else 1)
    # Realism draws from streams of its own, so that with it off nothing else changes.
    streams = _streams(seed, task, 6 if realism.is_off() else 9)
    r_subject, r_deform, r_visit, r_fixed, r_moving, r_pick = streams[:6]
    if has_lesion is None:
        has_lesion = task == "lesion" or bool(r_subject.random() < 0.5)
    subject_seed = int(r_subject.integers(0, 2 ** 31 - 1))
    subject: Subject = draw_subject(subject_seed, lesion=has_lesion)
    anatomy = Anatomy(subject, raster_mm=1.0 if size == "small" else 0.6)

    fixed_grid, moving_grid = _grids(size, moving_seq, realism, streams)
    fixed_acq, moving_acq = (_acquisition_for(acq, grid, realism)
                             for grid in (fixed_grid, moving_grid))
    visit1 = VisitState()
    if regime == "static":
        visit2 = VisitState()
    else:
        visit2 = VisitState(fgt_scale=float(r_visit.uniform(0.75, 0.95)),
                            lesion_scale=float(r_visit.uniform(0.5, 0.9)))
    bpe1, bpe2 = (float(v) for v in r_visit.uniform(0.6, 1.4, 2))

    # Fixed image: the reference anatomy on its own grid.
    fixed_needed = _needed(fixed_seq)
    fixed_lab, fixed_clean = render_on_grid(
        fixed_grid, lambda p: anatomy.render(p, visit1), _shade(bpe1, 1.0), fixed_needed,
        supersample=acq.supersample, image_fields=_image_fields(fixed_grid, realism, streams))
    fixed_img = _acquire_series(fixed_clean, fixed_grid, (fixed_seq,), fixed_acq, r_fixed,
                                _artefacts(fixed_grid, realism, streams))[fixed_seq]

    # Ground truth, calibrated inside the fixed breast mask.
    mask = breast_mask(fixed_lab, LABELS)
    idx = np.argwhere(mask)
    idx = idx[:: max(1, len(idx) // 30_000)]
    breast_pts = fixed_grid.index_to_world(idx)
    deform = draw_deformation(anatomy, regime, r_deform, fixed_grid, moving_grid, breast_pts,
                              **realism.deformation_switches())

    moving_fields = (_image_fields(moving_grid, realism, streams) if moving_seq != "ct"
                     else None)
    moving_lab, moving_clean = render_on_grid(
        moving_grid, lambda p: anatomy.render(p, visit2), _shade(bpe2, 1.0), _needed(moving_seq),
        supersample=acq.supersample, warp=deform.to_fixed, image_fields=moving_fields)
    moving_img = _acquire_series(moving_clean, moving_grid, (moving_seq,), moving_acq,
                                 r_moving, _artefacts(moving_grid, realism, streams))[moving_seq]

    gt = deform.displacement(fixed_grid)
    inverse = deform.inverse_displacement(moving_grid)
    surface = (surface_landmarks(anatomy, streams[8]) if realism.surface_landmarks
               else None)
    fixed_pts, kinds = _pick_landmarks(anatomy, deform, fixed_grid, moving_grid, fixed_lab,
                                       visit2, r_pick, surface=surface)
    moving_pts = gt.to_moving(fixed_pts)
    magnitude = np.linalg.norm(gt.millimetres()[:, mask], axis=0)
    info = {
        "task": task, "seed": int(seed), "size": size, "subject_seed": subject_seed,
        "fixed_sequence": fixed_seq, "moving_sequence": moving_seq, "regime": regime,
        "has_lesion": bool(has_lesion), "density": subject.density,
        "magnitude_mm": float(np.percentile(magnitude, 95)) if magnitude.size else 0.0,
        "fgt_scale": visit2.fgt_scale, "lesion_scale": visit2.lesion_scale,
        "bpe_fixed": bpe1, "bpe_moving": bpe2,
        "same_grid": bool(fixed_grid.same_as(moving_grid)),
        **{f"gt_{k}": v for k, v in deform.info.items() if k != "regime"},
    }
    if not realism.is_off():
        info["realism"] = realism.as_dict()
    return Pair(
        task=task,
        fixed=Volume(fixed_img, fixed_grid),
        moving=Volume(moving_img, moving_grid),
        fixed_labels=Volume(fixed_lab.astype(np.int32), fixed_grid),
        moving_labels=Volume(moving_lab.astype(np.int32), moving_grid),
        fixed_landmarks=fixed_pts,
        moving_landmarks=moving_pts,
        landmark_kinds=kinds,
        displacement=gt,
        inverse=inverse,
        info=info,
    )


def _grids(size: str, moving_seq: str, realism: Realism,
           streams: list[np.random.Generator]) -> tuple[Grid, Grid]:
    """The fixed and moving grids: the site's fixed protocol, or with
    ``realism.visit_grids`` one drawn per image (the CT keeps its own)."""
    if not realism.visit_grids:
        return mri_grid(size), ct_grid(size) if moving_seq == "ct" else mri_grid(size)
    from breastlib.phantom.grids import draw_mri_grid

    fixed = draw_mri_grid(size, streams[6])
    return fixed, ct_grid(size) if moving_seq == "ct" else draw_mri_grid(size, streams[6])


def _acquisition_for(acq: Acquisition, grid: Grid, realism: Realism) -> Acquisition:
    """``acq`` with the realism's noise scale and the slice profile of a drawn grid (its
    slice thickness), when the grids are drawn per image and ``acq`` does not fix one."""
    if realism.noise_scale != 1.0:
        acq = replace(acq, noise=acq.noise * realism.noise_scale)
    if not realism.visit_grids or acq.slice_thickness_mm is not None:
        return acq
    from breastlib.phantom.grids import slice_thickness_for

    return replace(acq, slice_thickness_mm=slice_thickness_for(grid))


def _image_fields(grid: Grid, realism: Realism, streams: list[np.random.Generator]
                  ) -> Callable[[np.ndarray], dict[str, np.ndarray]] | None:
    """The per-point fat-suppression quality of one MRI acquisition (``None`` when
    ``realism.fat_sat_residue`` is 0)."""
    if realism.fat_sat_residue <= 0:
        return None
    from breastlib.phantom.artefacts import draw_fat_sat_field

    quality = draw_fat_sat_field(grid, streams[7], realism.fat_sat_residue).quality
    return lambda points: {"fat_sat_quality": quality(points)}


def _artefacts(grid: Grid, realism: Realism, streams: list[np.random.Generator]
               ) -> Callable[[np.ndarray], np.ndarray] | None:
    """Ghosting and motion artefact of one MRI acquisition (``None`` when both are off)."""
    if realism.ghosting <= 0 and realism.motion <= 0:
        return None
    from breastlib.phantom.artefacts import ghosting, motion_artefact

    def apply(image: np.ndarray) -> np.ndarray:
        image = ghosting(image, realism.ghosting, streams[7])
        return motion_artefact(image, realism.motion, streams[7], spacing=grid.spacing)
    return apply


def _inside(grid: Grid, points: np.ndarray, margin: float = 3.0) -> np.ndarray:
    idx = grid.world_to_index(points)
    return np.all((idx >= margin) & (idx <= np.array(grid.shape) - 1 - margin), axis=1)


def _pick_landmarks(anatomy: Anatomy, deform: Deformation, fixed: Grid, moving: Grid,
                    fixed_labels: np.ndarray, visit2: VisitState, rng: np.random.Generator,
                    max_branches: int = 60,
                    surface: tuple[np.ndarray, list[str]] | None = None,
                    ) -> tuple[np.ndarray, list[str]]:
    """The landmarks inside both fields of view: the anatomy's interior points (at most
    ``max_branches`` duct branchings) and ``surface`` points (skin, chest wall, lesion
    rim: :func:`~breastlib.phantom.landmarks.surface_landmarks`), which lie on tissue
    boundaries and so skip the check that their voxel holds tissue."""
    pts, kinds = anatomy.landmarks()
    on_surface = np.zeros(len(kinds), bool)
    if surface is not None and len(surface[1]):
        pts = np.concatenate([pts, surface[0]])
        kinds = [*kinds, *surface[1]]
        on_surface = np.concatenate([on_surface, np.ones(len(surface[1]), bool)])
    ok = _inside(fixed, pts) & _inside(moving, deform.to_moving(pts))
    idx = np.rint(fixed.world_to_index(pts)).astype(int)
    idx = np.clip(idx, 0, np.array(fixed.shape) - 1)
    ok &= on_surface | (fixed_labels[idx[:, 0], idx[:, 1], idx[:, 2]] > 0)
    if visit2.lesion_scale <= 0:
        ok &= np.array([not k.startswith("lesion") for k in kinds])
    keep = np.flatnonzero(ok)
    branch = [i for i in keep if kinds[i] == "fgt_branch"]
    if len(branch) > max_branches:
        drop = set(rng.choice(branch, len(branch) - max_branches, replace=False).tolist())
        keep = np.array([i for i in keep if i not in drop])
    if len(keep) < MIN_LANDMARKS:
        raise BreastlibError(
            f"only {len(keep)} landmarks inside both fields of view (need {MIN_LANDMARKS})")
    return pts[keep], [kinds[i] for i in keep]
