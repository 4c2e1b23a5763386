"""The cohort manifest: one CSV row per image pair, the input of ``breastlib study``.

Paths in a manifest are relative to the manifest's folder. A study needs only
:data:`REQUIRED_COLUMNS`; a cohort written by ``breastlib phantom`` has every column of
:data:`COLUMNS` (ground truth, sequences, the phantom's recipe), and the study uses those
it finds (labels for Dice/HD95, landmarks for TRE, the true field for the dense error).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from breastlib.errors import InputError

#: Columns every manifest must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("task", "pair_id", "fixed_image", "moving_image")
#: Every column of a phantom cohort's manifest, in the order ``breastlib phantom`` writes.
COLUMNS: tuple[str, ...] = (
    *REQUIRED_COLUMNS, "fixed_labels", "moving_labels",
    "fixed_landmarks", "moving_landmarks", "gt_displacement", "gt_inverse_displacement",
    "fixed_sequence", "moving_sequence", "has_lesion", "same_grid", "regime",
    "magnitude_mm", "n_landmarks", "density", "size", "seed", "recipe",
)


def read_manifest(manifest: str | os.PathLike) -> pd.DataFrame:
    """Read and check a cohort ``manifest.csv`` (as written by ``breastlib phantom``)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError("cohort manifest not found", manifest)
    try:
        table = pd.read_csv(manifest)
    except Exception as exc:
        raise InputError(f"cannot read manifest ({exc})", manifest) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"manifest lacks column(s): {', '.join(missing)}", manifest)
    if table["pair_id"].duplicated().any():
        raise InputError("manifest has duplicate pair_id values", manifest)
    return table
