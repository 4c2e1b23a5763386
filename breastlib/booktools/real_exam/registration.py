"""Registering the exam's series with the methods of the study, and MIND's registrations
that the chapter's figures show.

The ConvexAdam methods run with the build's profile (:func:`~breastlib.booktools.real_exam.
loading.exam_build`) and random encoder weights; the classical baselines with their own
defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from breastlib.booktools.real_exam.loading import RealExam, exam_build
from breastlib.booktools.real_exam.measures import folding_pct, mind_ssd, ncc
from breastlib.displacement import Displacement
from breastlib.register import RegistrationResult, register_method
from breastlib.register.baselines import BASELINES
from breastlib.volume import Volume

#: Initial alignment of the exam's own series: world coordinates are shared by the series of
#: one exam, so none (a centre-of-mass shift between different fields of view would only
#: add an error). The known deformations (:mod:`~breastlib.booktools.real_exam.known`) use
#: the profile's own, as the phantom study does.
INIT = "none"
#: Device of the registrations: a GPU when there is one.
DEVICE = "auto"
#: Encoder weights of the foundation-model methods: no pretrained checkpoint is assumed,
#: so the encoders run with random weights (the study's ``--weights random``).
WEIGHTS = "random"


def registration_settings(profile: str | None = None) -> dict[str, str]:
    """The ConvexAdam settings of the chapter: ``profile`` (default the build's), ``init``
    (:data:`INIT`) and ``device`` (:data:`DEVICE`)."""
    return {"profile": profile or exam_build().profile, "init": INIT, "device": DEVICE}


def registration_options(method: str, *, profile: str | None = None,
                         init: str | None = INIT) -> dict[str, str]:
    """The keywords of :func:`~breastlib.register.register_method` for ``method``.

    The ConvexAdam methods (MIND and the encoders) take :func:`registration_settings`
    (``init=None``: the profile's own initial alignment) and :data:`WEIGHTS`; the classical
    baselines (:data:`~breastlib.register.baselines.BASELINES`) run with their own defaults
    and accept none of these.
    """
    if method in BASELINES:
        return {}
    options = {**registration_settings(profile), "weights": WEIGHTS}
    if init is None:
        del options["init"]
    else:
        options["init"] = init
    return options


def run_method(fixed: Volume, moving: Volume, method: str, *,
               init: str | None = INIT) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` with ``method`` and the chapter's settings
    (:func:`registration_options`)."""
    return register_method(fixed, moving, method=method,
                           **registration_options(method, init=init))


@dataclass
class Registration:
    """One registration of the chapter and what the images say about it.

    Attributes
    ----------
    fixed
        The fixed volume (working grid).
    moving_before
        The moving image resampled onto the fixed grid through world coordinates only.
    moving_after
        The moving image warped by the registration.
    displacement
        The estimated fixed -> moving field.
    table
        One row per stage (``before``, ``after``): the measures.
    seconds
        Wall-clock seconds of the registration.
    """

    fixed: Volume
    moving_before: Volume
    moving_after: Volume
    displacement: Displacement
    table: pd.DataFrame
    seconds: float


def register_and_measure(fixed: Volume, moving: Volume, breast: np.ndarray, body: np.ndarray,
                         *, method: str = "mind") -> Registration:
    """Register ``moving`` to ``fixed`` and measure before (world coordinates) and after.

    Returns
    -------
    Registration
        Its table has the columns ``NCC (breast)``, ``MIND-SSD (breast)``,
        ``folded (% body)`` and ``|u| p95 (mm, breast)``.
    """
    result = run_method(fixed, moving, method)
    identity = Displacement.identity(fixed.grid)
    rows = {}
    warped = {}
    for stage, disp in (("before", identity), ("after", result.displacement)):
        warped[stage] = disp.warp(moving, device="cpu")
        rows[stage] = {
            "NCC (breast)": ncc(fixed.array, warped[stage].array, breast),
            "MIND-SSD (breast)": mind_ssd(fixed.array, warped[stage].array, breast),
            "folded (% body)": folding_pct(disp, body),
            "|u| p95 (mm, breast)": float(np.percentile(disp.magnitude_mm()[breast], 95)),
        }
    table = pd.DataFrame(rows).T
    table.index.name = f"{method} ({registration_settings()['profile']})"
    return Registration(fixed, warped["before"], warped["after"], result.displacement,
                        table, result.seconds["total"])


def show_motion_3d(exam: RealExam, motion: Registration, phase: str = "post5", *,
                   max_bytes: int = 2_000_000) -> None:
    """Show a motion correction in NiiVue (:func:`breastlib.viz.niivue.
    show_registration_niivue`): the pre-contrast image, the ``phase`` image before and after
    the registration, and its Jacobian determinant inside the breast mask.

    Parameters
    ----------
    exam
        The exam (:func:`open_exam`).
    motion
        :func:`motion_correction` of the same ``phase``.
    max_bytes
        Budget of the view in the page (bytes).
    """
    from breastlib.viz.niivue import show_registration_niivue

    show_registration_niivue(motion.fixed, exam.dce[phase],
                             {f"{motion.table.index.name}": motion.displacement},
                             mask=exam.breast, max_bytes=max_bytes,
                             title=f"Motion correction of {phase} in 3-D")


def motion_correction(exam: RealExam, phase: str = "post5") -> Registration:
    """Register a post-contrast phase (moving) to the pre-contrast image (fixed) with MIND."""
    return register_and_measure(exam.pre, exam.dce[phase], exam.breast, exam.body)


def t2_to_dce(exam: RealExam) -> Registration:
    """Register the T2 series (moving, its own grid) to the pre-contrast image with MIND."""
    return register_and_measure(exam.pre, exam.t2, exam.breast, exam.body)


