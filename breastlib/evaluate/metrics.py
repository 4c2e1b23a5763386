"""Evaluation metrics, one definition each (see book/conventions.md, "Metrics").

- Dice per named structure.
- HD95 in mm: the larger of the two directed 95th-percentile surface distances; NaN when
  either mask is empty.
- TRE in mm: fixed landmarks mapped to the moving image (``to_moving``) compared with
  the moving landmarks; mean, median and 90th percentile, before and after.
- Jacobian: ``det(I + du/dx)`` in world mm (see :meth:`Displacement.jacobian_determinant`);
  % of ``J <= 0`` and SD of ``log J`` inside the fixed body mask, ``J`` clipped at 1e-9.
- Dense field error in mm (the primary metric where the true field is known):
  ``|u - u_true|`` over the fixed image's breast mask; mean and 95th percentile.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

from breastlib.tissues import breast_mask, fgt_mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks; NaN when both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, border_value=0)


def hd95_mm(a: np.ndarray, b: np.ndarray, spacing: np.ndarray) -> float:
    """95th-percentile symmetric Hausdorff distance in mm.

    Parameters
    ----------
    a, b
        ``(X, Y, Z)`` boolean masks on the same grid.
    spacing
        ``(3,)`` voxel size in mm along the array axes.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if not a.any() or not b.any():
        return float("nan")
    surface_a, surface_b = _surface(a), _surface(b)
    dist_to_b = ndi.distance_transform_edt(~surface_b, sampling=spacing)
    dist_to_a = ndi.distance_transform_edt(~surface_a, sampling=spacing)
    return float(
        max(np.percentile(dist_to_b[surface_a], 95), np.percentile(dist_to_a[surface_b], 95))
    )


def tre_stats(points_a: np.ndarray, points_b: np.ndarray) -> dict[str, float]:
    """Mean, median and 90th percentile of ``|a - b|`` in mm for ``(N, 3)`` point sets."""
    a = np.asarray(points_a, dtype=np.float64)
    b = np.asarray(points_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"point sets must both be (N, 3), got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no landmarks given")
    distance = np.linalg.norm(a - b, axis=1)
    return {
        "mean": float(distance.mean()),
        "median": float(np.median(distance)),
        "p90": float(np.percentile(distance, 90)),
    }


def jacobian_stats(determinant: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Folding and smoothness of a field from its Jacobian determinant.

    Returns
    -------
    dict
        ``jac_nonpos_pct``: % of voxels with ``J <= 0``; ``sdlogj``: SD of
        ``log(clip(J, 1e-9))``; both inside ``mask`` when given.
    """
    values = determinant if mask is None else determinant[np.asarray(mask, dtype=bool)]
    if values.size == 0:
        return {"jac_nonpos_pct": float("nan"), "sdlogj": float("nan")}
    return {
        "jac_nonpos_pct": float(100.0 * np.mean(values <= 0)),
        "sdlogj": float(np.std(np.log(np.clip(values, 1e-9, None)))),
    }


def label_dice(
    fixed_labels: np.ndarray, warped_labels: np.ndarray, label_names: Mapping[str, int]
) -> dict[str, float]:
    """Dice of every named label present in either map: ``{"dice_<name>": value}``."""
    out: dict[str, float] = {}
    for name, value in label_names.items():
        a, b = fixed_labels == value, warped_labels == value
        if a.any() or b.any():
            out[f"dice_{name}"] = dice(a, b)
    return out


def label_metrics(
    fixed_labels: np.ndarray,
    warped_labels: np.ndarray,
    label_names: Mapping[str, int],
    spacing: np.ndarray,
) -> dict[str, float]:
    """Dice per named label plus Dice/HD95 of the breast and FGT masks.

    Keys: ``dice_<name>`` for every label present in either map, ``dice_breast``,
    ``dice_fgt``, ``hd95_breast_mm``, ``hd95_fgt_mm``.
    """
    out = label_dice(fixed_labels, warped_labels, label_names)
    composite = {"breast": breast_mask, "fgt": fgt_mask}
    for name, make in composite.items():
        a, b = make(fixed_labels, label_names), make(warped_labels, label_names)
        if not (a.any() or b.any()):
            continue
        out[f"dice_{name}"] = dice(a, b)
        out[f"hd95_{name}_mm"] = hd95_mm(a, b, spacing)
    return out


def field_error_stats(
    estimated_mm: np.ndarray, true_mm: np.ndarray, mask: np.ndarray
) -> dict[str, float]:
    """Dense error of a displacement field against the true one, in mm.

    Parameters
    ----------
    estimated_mm, true_mm
        ``(3, X, Y, Z)`` displacement vectors in millimetres on the same grid.
    mask
        ``(X, Y, Z)`` boolean region (the fixed image's breast, else its body).

    Returns
    -------
    dict
        ``mean`` and ``p95`` of ``|u - u_true|`` over the mask (NaN when it is empty).
    """
    if estimated_mm.shape != true_mm.shape:
        raise ValueError(f"field shapes differ: {estimated_mm.shape} vs {true_mm.shape}")
    error = np.linalg.norm(np.asarray(estimated_mm, np.float64)
                           - np.asarray(true_mm, np.float64), axis=0)[np.asarray(mask, bool)]
    if error.size == 0:
        return {"mean": float("nan"), "p95": float("nan")}
    return {"mean": float(error.mean()), "p95": float(np.percentile(error, 95))}
