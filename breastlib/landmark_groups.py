"""Target registration error per landmark group: interior, skin, chest wall, lesion.

Registrations usually fail first at tissue boundaries (the skin surface, the
pectoralis/chest-wall interface, a lesion's rim), so a single mean TRE over all
landmarks hides those failures behind the many interior points. This module groups
landmark kinds and reports the TRE of each group separately.

It sits in the bottom layer of the package (it needs numpy only), so that the phantom,
which makes landmarks of each kind, and the evaluation, which scores them, both use the one
mapping; :mod:`breastlib.phantom.landmarks` re-exports it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from breastlib.errors import InputError

#: Landmark groups in display order.
LANDMARK_GROUPS: tuple[str, ...] = ("interior", "skin", "chest_wall", "lesion")

#: The study-row column of each group's mean TRE (mm), in display order.
GROUP_TRE_COLUMNS: tuple[str, ...] = tuple(f"tre_{group}_mm" for group in LANDMARK_GROUPS)

_LESION_KINDS = frozenset({"lesion_centre", "lesion_rim"})


def landmark_group(kind: str) -> str:
    """The group of a landmark kind.

    Parameters
    ----------
    kind
        A landmark kind, e.g. ``"fgt_branch"``, ``"skin"``, ``"chest_wall"``,
        ``"lesion_rim"``.

    Returns
    -------
    str
        ``"skin"`` for kinds containing ``skin``; ``"chest_wall"`` for kinds containing
        ``chest_wall`` or ``pectoralis``; ``"lesion"`` for ``lesion_centre`` and
        ``lesion_rim``; ``"interior"`` for every other kind (duct branchings, vessel
        bifurcations, nipples, sternum).
    """
    if "skin" in kind:
        return "skin"
    if "chest_wall" in kind or "pectoralis" in kind:
        return "chest_wall"
    if kind in _LESION_KINDS:
        return "lesion"
    return "interior"


def tre_by_group(errors_mm: np.ndarray, kinds: Sequence[str]) -> dict[str, float]:
    """Mean TRE and landmark count of each landmark group.

    Parameters
    ----------
    errors_mm
        ``(N,)`` registration error (mm) of each landmark.
    kinds
        ``N`` landmark kinds, in the same order.

    Returns
    -------
    dict
        For every group ``g`` of :data:`LANDMARK_GROUPS`, ``g``: the mean error (mm) of its
        landmarks (NaN when it has none) and ``f"{g}_count"``: how many landmarks it has.

    Raises
    ------
    InputError
        When ``errors_mm`` is not one-dimensional or its length differs from ``kinds``'.
    """
    errors = np.asarray(errors_mm, dtype=np.float64)
    if errors.ndim != 1 or errors.shape[0] != len(kinds):
        raise InputError(f"errors_mm must be (N,) with N = {len(kinds)} kinds, "
                         f"got shape {errors.shape}")
    groups = np.array([landmark_group(k) for k in kinds], dtype=object)
    out: dict[str, float] = {}
    for group in LANDMARK_GROUPS:
        member = groups == group
        count = int(member.sum())
        out[group] = float(errors[member].mean()) if count else float("nan")
        out[f"{group}_count"] = count
    return out
