"""One cohort pair and how well a displacement aligns it: the study's metrics in one place.

:func:`load_cohort_pair` reads a pair listed in a cohort ``manifest.csv`` (images, label
maps, landmarks, label names); :func:`pair_metrics` scores a fixed -> moving displacement
on it with the definitions of :mod:`breastlib.evaluate.metrics` (Dice and HD95 of the
breast, FGT and lesion masks, TRE before and after, Jacobian statistics inside the body).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from breastlib.displacement import Displacement
from breastlib.errors import InputError
from breastlib.intensity import normalise_intensity
from breastlib.volume import Volume, load_volume

if TYPE_CHECKING:
    import pandas as pd

    from breastlib.grid import Grid


@dataclass(frozen=True)
class CohortPair:
    """A pair of a cohort manifest with whatever ground truth the manifest lists.

    Attributes
    ----------
    pair_id, task
        The manifest's identifiers.
    fixed, moving
        The two images (canonical RAS+ volumes, raw intensities).
    fixed_labels, moving_labels
        Label maps on their image's grid, or ``None``.
    fixed_points, moving_points
        ``(N, 3)`` corresponding landmarks in RAS millimetres, or ``None``.
    label_names
        ``{name: value}`` of ``labels.json`` (empty when absent).
    true_displacement
        The true fixed -> moving field on the fixed grid (a phantom's
        ``gt_displacement``), or ``None``.
    landmark_kinds
        The kind of each landmark (the ``kind`` column of the landmarks CSV: ``skin``,
        ``chest_wall``, ``fgt_branch``, ...), or ``None``: the landmark error is then also
        given per group (:mod:`breastlib.landmark_groups`).
    """

    pair_id: str
    task: str | None
    fixed: Volume
    moving: Volume
    fixed_labels: Volume | None
    moving_labels: Volume | None
    fixed_points: np.ndarray | None
    moving_points: np.ndarray | None
    label_names: dict[str, int]
    true_displacement: Displacement | None = None
    landmark_kinds: tuple[str, ...] | None = None


def load_cohort_pair(manifest: str | os.PathLike, pair_id: str) -> CohortPair:
    """Load one pair of a cohort ``manifest.csv`` (paths relative to the manifest).

    A phantom pair whose files are missing is first made again from its recipe
    (:func:`breastlib.phantom.cohort.restore_missing_pairs`).

    Raises
    ------
    InputError
        The pair is not in the manifest.
    """
    import pandas as pd

    from breastlib.points import point_array, read_points

    manifest = Path(manifest)
    root = manifest.parent
    table = pd.read_csv(manifest)
    rows = table.loc[table["pair_id"].astype(str) == str(pair_id)]
    if rows.empty:
        raise InputError(f"pair '{pair_id}' is not listed in the manifest", manifest)
    entry = rows.iloc[0]
    recipe = entry.get("recipe")
    fixed_image = root / str(entry.get("fixed_image"))
    if isinstance(recipe, str) and recipe.startswith("phantom-") and not fixed_image.is_file():
        # A phantom cohort shipped as its manifest: make the pair from its recipe.
        from breastlib.phantom.cohort import restore_missing_pairs

        restore_missing_pairs(manifest, [str(pair_id)])

    def path(column: str) -> Path | None:
        value = entry.get(column)
        return None if value is None or pd.isna(value) else root / str(value)

    def labels(column: str) -> Volume | None:
        found = path(column)
        return None if found is None else load_volume(found, labels=True)

    def points(column: str) -> pd.DataFrame | None:
        found = path(column)
        return None if found is None else read_points(found)

    truth = path("gt_displacement")
    names_file = root / "labels.json"
    names = json.loads(names_file.read_text()) if names_file.is_file() else {}
    task = entry.get("task")
    fixed_points, moving_points = points("fixed_landmarks"), points("moving_landmarks")
    return CohortPair(
        pair_id=str(pair_id), task=None if task is None or pd.isna(task) else str(task),
        fixed=load_volume(path("fixed_image")), moving=load_volume(path("moving_image")),
        fixed_labels=labels("fixed_labels"), moving_labels=labels("moving_labels"),
        fixed_points=None if fixed_points is None else point_array(fixed_points),
        moving_points=None if moving_points is None else point_array(moving_points),
        label_names=names,
        true_displacement=None if truth is None else Displacement.load(truth),
        landmark_kinds=landmark_kinds(fixed_points),
    )


def landmark_kinds(table: pd.DataFrame | None) -> tuple[str, ...] | None:
    """The ``kind`` column of a landmarks table (:func:`breastlib.points.read_points`), or
    ``None`` when it has none."""
    if table is None or "kind" not in table.columns:
        return None
    return tuple(table["kind"].astype(str))


def body_mask(fixed: Volume, fixed_labels: Volume | None) -> np.ndarray:
    """Where the Jacobian is summarised: labelled tissue, else the image's foreground.

    Parameters
    ----------
    fixed
        The fixed image.
    fixed_labels
        Its label map, or ``None``.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` boolean mask on the fixed grid: ``labels > 0`` when a non-empty label
        map is given, else voxels above 10 % of the robust intensity range.
    """
    if fixed_labels is not None and fixed_labels.array.any():
        return fixed_labels.array > 0
    return normalise_intensity(fixed.array) > 0.1


def field_error_region(pair: CohortPair) -> tuple[np.ndarray, str]:
    """Where the dense field error is measured: the fixed breast, else the fixed body;
    in either, only where the true field lands inside the moving image.

    Two acquisitions on their own grids rarely cover the same part of the body: where the
    true field leads out of the moving field of view, neither image says where the tissue
    went, and an error there measures how a method extrapolates, not how it registers
    (the same rule as label overlap, :meth:`~breastlib.displacement.Displacement.coverage`).

    Returns
    -------
    mask : numpy.ndarray
        ``(X, Y, Z)`` boolean mask on the fixed grid.
    region : str
        ``"breast"``, or ``"body"`` when the pair has no breast label (then the
        dense metric covers the whole body, which a caller should say).
    """
    from breastlib.tissues import breast_mask

    region, name = body_mask(pair.fixed, pair.fixed_labels), "body"
    if pair.fixed_labels is not None:
        breast = breast_mask(pair.fixed_labels.array, pair.label_names)
        if breast.any():
            region, name = breast, "breast"
    if pair.true_displacement is not None and pair.true_displacement.grid.same_as(
            pair.fixed.grid):
        region = within_moving_view(region, pair.true_displacement, pair.moving.grid)
    return region, name


def within_moving_view(region: np.ndarray, true_displacement: Displacement,
                       moving_grid: Grid) -> np.ndarray:
    """``region`` where ``true_displacement`` (on the fixed grid) lands inside
    ``moving_grid``; ``region`` itself when that leaves nothing."""
    seen = region & true_displacement.coverage(moving_grid)
    return seen if seen.any() else region


#: How far around the lesion the dense error "near the lesion" reaches (mm).
LESION_MARGIN_MM = 10.0


def lesion_region(pair: CohortPair, margin_mm: float = LESION_MARGIN_MM, *,
                  region: np.ndarray | None = None) -> np.ndarray | None:
    """The fixed lesion and every voxel within ``margin_mm`` of it, inside the breast.

    ``region`` is :func:`field_error_region`'s mask when the caller has it already.

    Returns
    -------
    numpy.ndarray or None
        ``(X, Y, Z)`` boolean mask on the fixed grid; ``None`` when the pair has no label
        map or its fixed label map holds no lesion.
    """
    from scipy.ndimage import distance_transform_edt

    from breastlib.tissues import tissue_mask

    if pair.fixed_labels is None or "lesion" not in pair.label_names:
        return None
    lesion = tissue_mask(pair.fixed_labels.array, pair.label_names, ("lesion",))
    if not lesion.any():
        return None
    distance = distance_transform_edt(~lesion, sampling=pair.fixed.spacing)
    if region is None:
        region, _ = field_error_region(pair)
    return (distance <= margin_mm) & (region | lesion)


def check_truth_grid(truth: Displacement, fixed: Volume,
                     source: str | os.PathLike | None = None) -> None:
    """Refuse, in one line naming both grids, a true field that is not on the fixed grid.

    Raises
    ------
    InputError
        The grids differ (``source`` names the true field's file, when known).
    """
    if not truth.grid.same_as(fixed.grid):
        raise InputError(
            f"the true displacement is on another grid ({truth.grid.shape}, spacing "
            f"{np.round(truth.grid.spacing, 4).tolist()} mm) than the fixed image "
            f"({fixed.grid.shape}, spacing {np.round(fixed.grid.spacing, 4).tolist()} mm)",
            source)


def pair_metrics(
    displacement: Displacement,
    pair: CohortPair,
    *,
    jacobian: np.ndarray | None = None,
    warped_labels: Volume | None = None,
    detail: bool = False,
) -> dict[str, Any]:
    """Every metric of ``displacement`` on ``pair`` (NaN where a mask is empty).

    The one evaluation of a registration: the study's rows, ``summary.json`` of
    ``breastlib register`` and the live explorer all call it, so the same pair gets the
    same numbers everywhere. ``jacobian`` (its
    :meth:`~Displacement.jacobian_determinant`) and ``warped_labels`` (the moving labels
    through it) are computed here unless a caller that needs them anyway passes them in.

    Returns
    -------
    dict
        ``dice_breast, hd95_breast_mm, dice_fgt, hd95_fgt_mm, dice_lesion`` (when both
        label maps exist; compared where the moving image has data,
        :meth:`~breastlib.displacement.Displacement.coverage`), ``jac_nonpos_pct, sdlogj``
        (inside :func:`body_mask`)
        and ``tre_mean_before_mm, tre_mean_after_mm, tre_median_after_mm,
        tre_p90_after_mm`` (when both landmark sets exist; with the pair's
        ``landmark_kinds`` also ``tre_<group>_mm`` for each group of
        :data:`~breastlib.landmark_groups.LANDMARK_GROUPS`, NaN where a group has
        no landmark), ``field_error_mean_mm,
        field_error_p95_mm`` (the primary metric, when the pair has a true field; over
        :func:`field_error_region`), ``field_error_lesion_mm`` (the same within
        :data:`LESION_MARGIN_MM` of the fixed lesion, when there is one: :func:`lesion_region`)
        and ``verdict`` (:func:`breastlib.evaluate.verdict.
        verdict`). With ``detail``, also the Dice of every named label, every label and
        field metric before registration (``<key>_before``), the median and 90th
        percentile of TRE before, and ``field_error_region``.

    Raises
    ------
    InputError
        The true field lies on another grid than the fixed image.
    """
    from breastlib.evaluate.metrics import (
        dice,
        field_error_stats,
        hd95_mm,
        jacobian_stats,
        label_dice,
        label_metrics,
        tre_stats,
    )
    from breastlib.evaluate.verdict import verdict
    from breastlib.landmark_groups import LANDMARK_GROUPS, tre_by_group
    from breastlib.tissues import breast_mask, fgt_mask, tissue_mask

    row: dict[str, Any] = {}
    before_row: dict[str, Any] = {}  # identity's values on this pair, for the verdict
    if pair.fixed_labels is not None and pair.moving_labels is not None:
        names = pair.label_names
        if warped_labels is None:
            warped_labels = displacement.warp_labels(pair.moving_labels)
        # Label overlap where the moving image has data (Displacement.coverage): two grids
        # covering different parts of the body must not count the uncovered part as missed.
        seen = displacement.coverage(pair.moving_labels.grid)
        fixed_labels = np.where(seen, pair.fixed_labels.array, 0)
        warped = np.where(seen, warped_labels.array, 0)
        for name, make in (("breast", breast_mask), ("fgt", fgt_mask)):
            a, b = make(fixed_labels, names), make(warped, names)
            row[f"dice_{name}"] = dice(a, b)
            row[f"hd95_{name}_mm"] = hd95_mm(a, b, pair.fixed.spacing)
        row["dice_lesion"] = dice(tissue_mask(fixed_labels, names, ("lesion",)),
                                  tissue_mask(warped, names, ("lesion",)))
        unseen = ~Displacement.identity(pair.fixed.grid).coverage(pair.moving_labels.grid)
        unregistered = pair.moving_labels.resample_to(pair.fixed.grid, mode="nearest").array
        unregistered = np.where(unseen, 0, unregistered)
        fixed_unmoved = np.where(unseen, 0, pair.fixed_labels.array)
        if detail:  # every label's Dice; the breast and FGT values above stay
            row = label_dice(fixed_labels, warped, names) | row
            before_row |= {f"{k}_before": v for k, v in label_metrics(
                fixed_unmoved, unregistered, names, pair.fixed.spacing).items()}
        else:
            a, b = breast_mask(fixed_unmoved, names), breast_mask(unregistered, names)
            before_row |= {"dice_breast_before": dice(a, b),
                           "hd95_breast_mm_before": hd95_mm(a, b, pair.fixed.spacing)}
    if jacobian is None:
        jacobian = displacement.jacobian_determinant()
    row |= jacobian_stats(jacobian, body_mask(pair.fixed, pair.fixed_labels))
    if pair.fixed_points is not None and pair.moving_points is not None:
        before = tre_stats(pair.fixed_points, pair.moving_points)
        after = tre_stats(displacement.to_moving(pair.fixed_points), pair.moving_points)
        row |= {"tre_mean_before_mm": before["mean"], "tre_mean_after_mm": after["mean"],
                "tre_median_after_mm": after["median"], "tre_p90_after_mm": after["p90"]}
        if detail:
            row |= {"tre_median_before_mm": before["median"],
                    "tre_p90_before_mm": before["p90"]}
        if pair.landmark_kinds is not None and len(pair.landmark_kinds) == len(
                pair.fixed_points):
            errors = np.linalg.norm(displacement.to_moving(pair.fixed_points)
                                    - pair.moving_points, axis=1)
            groups = tre_by_group(errors, pair.landmark_kinds)
            row |= {f"tre_{group}_mm": groups[group] for group in LANDMARK_GROUPS}
    if pair.true_displacement is not None:
        check_truth_grid(pair.true_displacement, pair.fixed)
        region, region_name = field_error_region(pair)
        truth_mm = pair.true_displacement.millimetres()
        after = field_error_stats(displacement.millimetres(), truth_mm, region)
        before = field_error_stats(np.zeros_like(truth_mm), truth_mm, region)
        row |= {"field_error_mean_mm": after["mean"], "field_error_p95_mm": after["p95"]}
        near_lesion = lesion_region(pair, region=region)
        if near_lesion is not None:
            row["field_error_lesion_mm"] = field_error_stats(
                displacement.millimetres(), truth_mm, near_lesion)["mean"]
        before_row |= {"field_error_mean_before_mm": before["mean"],
                       "field_error_p95_before_mm": before["p95"]}
        if detail:
            row["field_error_region"] = region_name
    row["verdict"] = verdict(row | before_row)
    if detail:
        row |= before_row
    return row
