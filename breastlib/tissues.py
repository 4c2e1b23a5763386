"""Tissue vocabulary of label maps: which named labels make up the breast and the FGT.

A label map comes with ``{name: integer value}`` (``labels.json``). Masks are selected by
name, so any label map whose names follow this vocabulary works: the phantom's
(:data:`breastlib.phantom.labels.LABELS`) and a user's. The breast is the union of the
breast tissues; the pectoralis muscle and the chest wall are not breast (see the book's
conventions appendix, book/conventions.md, "Metrics").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from breastlib.errors import InputError

#: Tissue names belonging to the breast (pectoralis and chest wall excluded). ``duct`` is
#: not drawn by the phantom but is a breast tissue in users' label maps.
BREAST_TISSUES: tuple[str, ...] = (
    "skin", "fat", "fgt", "duct", "ligament", "nipple", "vessel", "lesion",
)
#: Tissue names of the fibroglandular tissue.
FGT_TISSUES: tuple[str, ...] = ("fgt", "duct")


def tissue_mask(
    labels: np.ndarray, label_names: Mapping[str, int], tissues: tuple[str, ...]
) -> np.ndarray:
    """Union of the named tissues present in ``label_names`` (others are ignored).

    Parameters
    ----------
    labels
        Integer label array, any shape.
    label_names
        ``{name: value}`` of the label map.
    tissues
        Names to include.

    Returns
    -------
    numpy.ndarray
        Boolean mask, the shape of ``labels``.
    """
    values = [value for name, value in label_names.items() if name in tissues]
    return np.isin(labels, values)


def breast_mask(labels: np.ndarray, label_names: Mapping[str, int]) -> np.ndarray:
    """The whole-breast mask (breast tissues, pectoralis and chest wall excluded)."""
    return tissue_mask(labels, label_names, BREAST_TISSUES)


def fgt_mask(labels: np.ndarray, label_names: Mapping[str, int]) -> np.ndarray:
    """The fibroglandular tissue mask (FGT and ducts)."""
    return tissue_mask(labels, label_names, FGT_TISSUES)


def load_label_names(path: Path | None) -> dict[str, int] | None:
    """Read a flat ``{name: value}`` JSON file (``labels.json``); ``None`` passes through."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        names = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from exc
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in names.items()
    ):
        raise InputError('expected a flat JSON object {"name": integer value}', path)
    return names
