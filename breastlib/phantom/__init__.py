"""A synthetic prone breast MRI cohort with exact ground truth.

Procedural anatomy (:mod:`.anatomy`), tissue contrasts from relaxation physics
(:mod:`.contrast`), acquisition effects (:mod:`.acquisition`), invertible ground-truth
deformations (:mod:`.deformation`), pairs per study task (:mod:`.pair`) and cohorts on
disk (:mod:`.cohort`).
"""

from __future__ import annotations

from breastlib.phantom.acquisition import Acquisition, ct_grid, mri_grid
from breastlib.phantom.anatomy import Anatomy, Subject, VisitState, draw_subject
from breastlib.phantom.cohort import MANIFEST_COLUMNS, make_cohort, write_landmarks
from breastlib.phantom.contrast import CONTRASTS, synthesize, tissue_table
from breastlib.phantom.deformation import REGIMES, Deformation, draw_deformation
from breastlib.phantom.labels import LABELS
from breastlib.phantom.pair import TASKS, Pair, make_pair, render_subject, task_regime

__all__ = [
    "CONTRASTS", "LABELS", "MANIFEST_COLUMNS", "REGIMES", "TASKS",
    "Acquisition", "Anatomy", "Deformation", "Pair", "Subject", "VisitState",
    "ct_grid", "draw_deformation", "draw_subject", "make_cohort",
    "make_pair", "mri_grid", "render_subject", "synthesize", "task_regime", "tissue_table",
    "write_landmarks",
]
