"""Real anatomy with a known answer: the pre-contrast image deformed by the phantom's own
deformation regimes, and the method ranking it gives set beside the phantom's.

The phantom draws its deformations (:func:`breastlib.phantom.deformation.draw_deformation`)
in a body frame: the chest surface's midline at ``x = 0``, the chest surface through
``y = 0`` there (anterior ``+y``), the middle of the breasts at ``z = 0``. On the exam that
frame comes from the image (:func:`chest_origin`): the left-right line through the skin of
the intermammary cleft, where the image-derived breast mask ends, stands for the chest
surface, a flat plane (:class:`~breastlib.phantom.deformation.FlatChest`) with the
pectoralis :data:`CHEST_DEPTH_MM` behind it, where the deformation vanishes. The regimes
then run unchanged: ``visit`` (a rigid shift and turn plus a smooth deformation, 95th
percentile 5-15 mm in the breast), ``position`` (a prone -> supine-like flattening and
lateral spread, 15-30 mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from breastlib.booktools.real_exam.loading import RealExam
from breastlib.booktools.real_exam.measures import folding_pct
from breastlib.booktools.real_exam.registration import run_method
from breastlib.displacement import Displacement
from breastlib.evaluate.metrics import field_error_stats
from breastlib.grid import Grid
from breastlib.phantom.deformation import REGIMES, FlatChest, draw_deformation
from breastlib.phantom.realism import Realism
from breastlib.volume import Volume

#: Depth (mm) of the pectoralis behind the skin of the intermammary cleft: where the
#: deformation vanishes (the middle of the phantom subjects' 9-18 mm of subcutaneous fat).
CHEST_DEPTH_MM = 13.5
#: The phantom's regimes drawn on the exam, and the phantom task drawn with each (the
#: ``position`` regime is the modality task's, whose pairs also change contrast).
KNOWN_REGIMES = {"visit": "longitudinal", "position": "modality"}
#: Seed of the known deformations (one stream per regime).
KNOWN_SEED = 0
#: Columns of a known-deformation table.
ERROR_COLUMNS = ("dense error mean (mm)", "dense error p95 (mm)", "folded (% body)")


def chest_origin(exam: RealExam) -> np.ndarray:
    """The phantom frame's origin on the exam, ``(3,)`` RAS mm.

    ``x``: the mean ``x`` of the breast mask (between the two breasts); ``y``: the median
    over slices of the breast mask's posterior edge, which is the left-right line through
    the intermammary cleft (:func:`~breastlib.evaluate.image_masks.breast_mask_from_image`);
    ``z``: the middle of the breast mask's extent. Assumes the patient lies square in the
    coil (axes along RAS).

    Raises
    ------
    ValueError
        An empty breast mask.
    """
    breast = np.asarray(exam.breast, bool)
    index = np.argwhere(breast).astype(float)
    if index.size == 0:
        raise ValueError("the breast mask is empty: no frame for a deformation")
    slices = np.flatnonzero(breast.any(axis=(0, 1)))
    posterior = [np.flatnonzero(breast[:, :, z].any(axis=0)).min() for z in slices]
    centre = np.array([index[:, 0].mean(), float(np.median(posterior)),
                       (index[:, 2].min() + index[:, 2].max()) / 2.0])
    return exam.pre.grid.index_to_world(centre[None])[0]


def _shifted(grid: Grid, origin: np.ndarray) -> Grid:
    """``grid`` with its world coordinates moved by ``-origin`` (the same voxels)."""
    move = np.eye(4)
    move[:3, 3] = -np.asarray(origin, float)
    return Grid.from_file_affine(grid.file_shape, move @ grid.file_affine)


def regime_deformation(exam: RealExam, regime: str, *, seed: int = KNOWN_SEED
                       ) -> tuple[Displacement, Displacement, dict]:
    """A deformation of the phantom's ``regime``, drawn on the exam's anatomy with the
    deformation effects of the phantom's default realism (multi-scale, sliding, shape
    change: :meth:`~breastlib.phantom.realism.Realism.deformation_switches`).

    Parameters
    ----------
    exam
        The exam (pre-contrast working grid, body and breast masks).
    regime
        ``"visit"`` or ``"position"`` (:data:`~breastlib.phantom.deformation.REGIMES`).
    seed
        Seed; the same seed and regime give the same field.

    Returns
    -------
    true : Displacement
        The fixed -> moving pull-back field ``u_true`` on the pre-contrast working grid.
    inverse : Displacement
        The moving -> fixed field on the same grid: ``moving = inverse.warp(pre)``.
    info : dict
        The drawn parameters and measured magnitudes (mm, degrees) of
        :func:`~breastlib.phantom.deformation.draw_deformation`.
    """
    if regime not in REGIMES or regime == "static":
        raise ValueError(f"regime must be 'visit' or 'position', not {regime!r}")
    grid = exam.pre.grid
    local = _shifted(grid, chest_origin(exam))
    index = np.argwhere(exam.breast)
    points = local.index_to_world(index[:: max(1, len(index) // 30_000)].astype(float))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), REGIMES.index(regime)]))
    # The phantom's default effects (finer scales, sliding at the chest wall, a change of
    # breast shape), so that the exam moves as the book's phantom pairs do.
    deform = draw_deformation(FlatChest(CHEST_DEPTH_MM), regime, rng, local, local, points,
                              **Realism.default().deformation_switches())
    true = Displacement.from_millimetres(deform.displacement(local).millimetres(), grid)
    inverse = Displacement.from_millimetres(
        deform.inverse_displacement(local).millimetres(), grid)
    return true, inverse, dict(deform.info)


def deformed_pre(exam: RealExam, inverse: Displacement) -> Volume:
    """The pre-contrast image deformed: ``moving(y) = pre(y + w(y))``, drawn from the whole
    (uncropped) working image so that no edge of the crop is pulled in."""
    source = exam.pre_whole if exam.pre_whole is not None else exam.pre
    return inverse.warp(source, device="cpu")


def error_row(estimated: Displacement, true: Displacement, exam: RealExam) -> dict[str, float]:
    """The dense error ``|u - u_true|`` (mean and 95th percentile, mm) in the breast mask
    and folding (% body) of one registration (:data:`ERROR_COLUMNS`)."""
    error = field_error_stats(estimated.millimetres(), true.millimetres(), exam.breast)
    return dict(zip(ERROR_COLUMNS, (error["mean"], error["p95"],
                                    folding_pct(estimated, exam.body)), strict=True))


@dataclass
class KnownDeformation:
    """The pre-contrast image warped by a known field and registered back.

    Attributes
    ----------
    regime
        The phantom regime drawn.
    moving
        The pre-contrast image deformed (:func:`deformed_pre`).
    true
        ``u_true``, the fixed -> moving pull-back field on the working grid.
    estimated
        The registration's field.
    table
        Rows ``identity`` (no registration) and the method, :data:`ERROR_COLUMNS`.
    seconds
        Wall-clock seconds of the registration.
    """

    regime: str
    moving: Volume
    true: Displacement
    estimated: Displacement
    table: pd.DataFrame
    seconds: float


def known_deformation(exam: RealExam, regime: str = "visit", *, seed: int = KNOWN_SEED,
                      method: str = "mind") -> KnownDeformation:
    """Deform the pre-contrast image with a phantom ``regime``, register it back.

    ``method`` runs with the profile's own initial alignment, as in the phantom study.
    """
    true, inverse, _ = regime_deformation(exam, regime, seed=seed)
    moving = deformed_pre(exam, inverse)
    result = run_method(exam.pre, moving, method, init=None)
    rows = {name: error_row(disp, true, exam) for name, disp in
            (("identity", Displacement.identity(exam.pre.grid)),
             (method, result.displacement))}
    table = pd.DataFrame(rows).T
    table.index.name = f"{regime} regime"
    return KnownDeformation(regime, moving, true, result.displacement, table,
                            result.seconds["total"])


# -- does the phantom's ranking transfer? ---------------------------------------------------
def phantom_errors(ran: pd.DataFrame, task: str, metric: str = "field_error_mean_mm"
                   ) -> pd.Series:
    """Mean dense error (mm) per method over the phantom study's pairs of ``task``: of
    what breastlib delivers with its stage guard (a row's ``guarded_<metric>``, its own
    value where that is missing), as the real exam's tables report it.

    Parameters
    ----------
    ran
        The study rows that ran (:attr:`breastlib.booktools.chapters.StudyTables.ran`),
        method labels such as ``sam (random)``.
    task
        The phantom task.
    metric
        The column averaged.

    Returns
    -------
    pandas.Series
        Plain method name (``sam``) -> mean, sorted from best to worst.
    """
    rows = ran[ran["task"] == task]
    names = rows["method"].astype(str).str.split(" ").str[0]
    values = pd.to_numeric(rows[metric], errors="coerce")
    if f"guarded_{metric}" in rows:  # a row that kept its own field has no guarded value
        values = pd.to_numeric(rows[f"guarded_{metric}"], errors="coerce").fillna(values)
    return values.groupby(names).mean().sort_values()


def ranking_table(real: pd.DataFrame, phantom: pd.Series,
                  column: str = "dense error mean (mm)") -> pd.DataFrame:
    """The methods' dense errors and ranks on the real anatomy and on the phantom.

    Methods whose errors are identical on both (SAM, MedSAM and SSLSAM share one
    architecture: with random weights they are one method) are one row, named
    ``sam = medsam = sslsam``, so that a copy does not count as agreement.

    Parameters
    ----------
    real
        A known-deformation method table (index: method names).
    phantom
        :func:`phantom_errors` of the matching task.
    column
        The real table's error column.

    Returns
    -------
    pandas.DataFrame
        One row per distinct method in both (sorted by the real-anatomy rank):
        ``real anatomy (mm)``, ``rank (real)``, ``phantom (mm)``, ``rank (phantom)``; ties
        share the average rank.
    """
    methods = [m for m in real.index if m in phantom.index]
    values = pd.DataFrame({"real anatomy (mm)": real.loc[methods, column].astype(float),
                           "phantom (mm)": phantom.loc[methods].astype(float)})
    groups: dict[tuple[float, float], list[str]] = {}
    for method, (a, b) in values.iterrows():
        key = (round(float(a), 9), round(float(b), 9))
        groups.setdefault(key, []).append(str(method))
    table = pd.DataFrame([values.loc[names[0]] for names in groups.values()],
                         index=[" = ".join(names) for names in groups.values()])
    table.insert(1, "rank (real)", table["real anatomy (mm)"].rank(method="average"))
    table["rank (phantom)"] = table["phantom (mm)"].rank(method="average")
    table.index.name = "method"
    return table.sort_values(["rank (real)", "rank (phantom)"])


def rank_agreement(table: pd.DataFrame) -> dict[str, float]:
    """Spearman's and Kendall's rank correlation of the two rankings of
    :func:`ranking_table`, with their two-sided p-values (NaN with fewer than 3 methods)."""
    from scipy.stats import kendalltau, spearmanr

    if len(table) < 3:
        nan = float("nan")
        return {"spearman": nan, "spearman_p": nan, "kendall": nan, "kendall_p": nan}
    real, phantom = table["real anatomy (mm)"], table["phantom (mm)"]
    rho = spearmanr(real, phantom)
    tau = kendalltau(real, phantom)
    return {"spearman": float(rho.statistic), "spearman_p": float(rho.pvalue),
            "kendall": float(tau.statistic), "kendall_p": float(tau.pvalue)}


def transfer_words(table: pd.DataFrame, regime: str, task: str) -> str:
    """Two sentences on whether the phantom's ranking holds on the real anatomy, computed
    from :func:`ranking_table` (Markdown)."""
    if table.empty:
        return f"No method has both a real-anatomy and a phantom {task} row."
    agreement = rank_agreement(table)
    best_real = table["real anatomy (mm)"].idxmin()
    best_phantom = table["phantom (mm)"].idxmin()
    same = "the same method" if best_real == best_phantom else "different methods"
    strength = abs(agreement["spearman"])
    words = ("strongly" if strength >= 0.7 else "moderately" if strength >= 0.4 else
             "weakly")
    sign = "agree" if agreement["spearman"] >= 0 else "disagree"
    return (f"With the `{regime}` regime the two rankings {words} {sign}: Spearman's rho "
            f"{agreement['spearman']:.2f} (p = {agreement['spearman_p']:.2g}), Kendall's tau "
            f"{agreement['kendall']:.2f}, over {len(table)} distinct methods. The best on the real "
            f"anatomy is {best_real} ({table.loc[best_real, 'real anatomy (mm)']:.2f} mm), on "
            f"the phantom's {task} pairs {best_phantom} "
            f"({table.loc[best_phantom, 'phantom (mm)']:.2f} mm): {same}.")
