"""NiiVue 3-D views of the book's chapters, built from what the chapters already hold.

:func:`task_niivue_views` reads a task chapter's study previews (the axial slice stack the
study stored per method, :func:`~breastlib.booktools.compare.comparison_grid_inputs`) into
the keywords of :func:`breastlib.viz.niivue.show_niivue`; the method and real-exam
chapters build theirs from their registrations with
:func:`breastlib.viz.niivue.show_registration_niivue`. Nothing is recomputed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from breastlib.booktools.compare import comparison_grid_inputs

__all__ = ["show_task_niivue", "task_niivue_views"]


#: Where the Jacobian determinant is within this of 1 (volume kept, within the preview's
#: 8-bit resolution of 2/255) the map is left transparent, so that only what a
#: registration compresses or stretches is coloured, not the whole volume.
JACOBIAN_UNCHANGED = 0.02


def task_niivue_views(
    manifest: str | os.PathLike, results_dir: str | os.PathLike, table: pd.DataFrame
) -> dict[str, Any]:
    """Keywords of :func:`~breastlib.viz.niivue.show_niivue` for the cohort's first pair:
    the fixed image, every method's warped image and its Jacobian determinant (0 to 2).

    The previews hold every few axial slices of each volume (the study's preview stack),
    so the 3-D view is that stack, its slice spacing the mean step between stored slices
    (in mm); menu entries are labelled as in the chapter's comparison grid
    (``no registration (moving)`` first, then best first, flagged rows marked).

    Parameters
    ----------
    manifest, results_dir, table
        As for :func:`~breastlib.booktools.compare.comparison_grid_inputs`.

    Returns
    -------
    dict
        ``fixed`` (``(X, Y, K)`` uint8), ``warped_by_method`` (label -> ``(X, Y, K)``),
        ``spacing`` (``(3,)`` mm), ``overlays`` (``{"Jacobian determinant": label ->
        (X, Y, K)}``, NaN (transparent) where it is within :data:`JACOBIAN_UNCHANGED` of
        1), ``overlay_ranges``, ``overlay_colormaps`` and ``title``.
    """
    inputs = comparison_grid_inputs(manifest, results_dir, table)
    spacing = np.array(inputs["spacing"], dtype=float)
    slices = np.asarray(inputs["slice_numbers"])
    if len(slices) > 1:
        spacing[2] *= float(np.mean(np.diff(slices)))
    return {
        "fixed": inputs["fixed"], "warped_by_method": inputs["warped"], "spacing": spacing,
        "overlays": {"Jacobian determinant": {
            name: np.where(np.abs(jacobian - 1.0) < JACOBIAN_UNCHANGED, np.nan, jacobian)
            for name, jacobian in inputs["jacobians"].items()}},
        "overlay_ranges": {"Jacobian determinant": (0.0, 2.0)},
        "overlay_colormaps": {"Jacobian determinant": "blue2red"},
        "title": f"{inputs['title']}: {len(slices)} of its {inputs['n_slices']} axial "
                 "slices in 3-D",
    }


def show_task_niivue(
    manifest: str | os.PathLike, results_dir: str | os.PathLike, table: pd.DataFrame,
    **options: Any,
) -> Any:
    """Display :func:`task_niivue_views` with :func:`~breastlib.viz.niivue.show_niivue`
    (``options`` go to it, e.g. ``title``)."""
    from breastlib.viz.niivue import show_niivue

    views = task_niivue_views(manifest, results_dir, table)
    views.update(options)
    return show_niivue(views.pop("fixed"), views.pop("warped_by_method"), **views)
