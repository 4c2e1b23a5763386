"""Every method of the study on the exam's five experiments, measured without ground truth
(the DCE phases and T2) or against a known deformation, and what the tables say in words."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from breastlib.booktools.data import BOOK_METHODS
from breastlib.booktools.real_exam.known import (
    KNOWN_REGIMES,
    KNOWN_SEED,
    deformed_pre,
    error_row,
    regime_deformation,
)
from breastlib.booktools.real_exam.loading import RealExam
from breastlib.booktools.real_exam.measures import (
    JACOBIAN_LOW,
    dce_measures,
    dce_regions,
    folding_pct,
    mind_ssd,
    ncc,
)
from breastlib.booktools.real_exam.registration import run_method
from breastlib.register import RegistrationResult

#: Every method of the study, in the book's order (baselines, MIND, the encoders).
METHODS: tuple[str, ...] = tuple(BOOK_METHODS)
#: The experiments of the method tables: name -> what is registered onto what.
EXPERIMENTS = {
    "post1": "DCE phase 1 -> pre-contrast",
    "post5": "DCE phase 5 -> pre-contrast",
    "t2": "T2 -> DCE pre-contrast",
    **{f"known_{regime}": f"pre-contrast deformed by the phantom's '{regime}' regime -> "
       "pre-contrast" for regime in KNOWN_REGIMES},
}


def known_regime(experiment: str) -> str | None:
    """The phantom regime of a known-deformation experiment (``known_visit`` -> ``visit``),
    ``None`` for the others."""
    return experiment.removeprefix("known_") if experiment.startswith("known_") else None

def _provenance(result: RegistrationResult) -> dict[str, str | float]:
    return {"stage": result.stage or "-", "seconds": float(result.seconds.get("total", 0.0))}


def method_tables(exam: RealExam, methods: Sequence[str] = METHODS, *,
                  progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Run every method on the :data:`EXPERIMENTS` and measure it.

    Parameters
    ----------
    exam
        The exam (working grids and masks).
    methods
        Method names (:func:`~breastlib.register.register_method`), run with
        :func:`registration_options`.
    progress
        Called with one line per registration done (e.g. ``print``).

    Returns
    -------
    dict
        Experiment name -> table, one row per method (index ``method``):

        - ``post1``, ``post5``: :func:`dce_measures` (the ``identity`` row is the exam
          before registration);
        - ``t2``: NCC, MIND-SSD, folding and ``|u|`` p95;
        - ``known_visit``, ``known_position``: the dense error ``|u - u_true|`` mean and p95
          (mm, breast) and folding (% body) (:func:`~breastlib.booktools.real_exam.known.
          error_row`); the ConvexAdam methods start from the profile's own initial
          alignment there, as in the phantom study;

        each with the columns ``stage`` (the stage the registration guard kept, ``-`` for
        the baselines) and ``seconds``.
    """
    fixed = exam.pre
    moving = {"post1": exam.dce["post1"], "post5": exam.dce["post5"], "t2": exam.t2}
    truth = {}
    for regime in KNOWN_REGIMES:
        true, inverse, _ = regime_deformation(exam, regime, seed=KNOWN_SEED)
        truth[f"known_{regime}"] = true
        moving[f"known_{regime}"] = deformed_pre(exam, inverse)
    regions = {phase: dce_regions(fixed, exam.dce[phase], exam.body, exam.breast)
               for phase in ("post1", "post5")}
    tables = {}
    for experiment in EXPERIMENTS:
        rows = {}
        for method in methods:
            known = experiment in truth
            result = run_method(fixed, moving[experiment], method,
                                init=None if known else "none")
            disp = result.displacement
            if known:
                row = error_row(disp, truth[experiment], exam)
            else:
                warped = disp.warp(moving[experiment], device="cpu").array
                if experiment in regions:
                    row = dce_measures(fixed, warped, disp, regions[experiment], exam.body,
                                       exam.breast)
                else:
                    row = {"NCC (breast)": ncc(fixed.array, warped, exam.breast),
                           "MIND-SSD (breast)": mind_ssd(fixed.array, warped, exam.breast),
                           "folded (% body)": folding_pct(disp, exam.body),
                           "|u| p95 (mm, breast)": float(
                               np.percentile(disp.magnitude_mm()[exam.breast], 95))}
            rows[method] = {**row, **_provenance(result)}
            if progress is not None:
                progress(f"{experiment} {method}: {rows[method]['seconds']:.1f} s, "
                         f"stage {rows[method]['stage']}")
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "method"
        tables[experiment] = table
    return tables



def _names(methods: Sequence[str]) -> str:
    return ", ".join(methods) if len(methods) else "none"


def summary(table: pd.DataFrame, experiment: str, *, change: float = 0.05,
            folded_pct: float = 0.1, jacobian_pct: float = 10.0) -> str:
    """What a method table shows, in a few sentences computed from its numbers.

    Parameters
    ----------
    table
        A table of :func:`method_tables` (with an ``identity`` row: the starting point).
    experiment
        Its name in :data:`EXPERIMENTS` (``post1``, ``post5``, ``t2``, ``known_...``).
    change
        A relative change (e.g. 0.05 = 5 %) from ``identity`` that counts as a change.
    folded_pct
        Folding (% body) above which a method is named as folding.
    jacobian_pct
        Share (%) of the enhancing region whose volume changes by more than
        :data:`JACOBIAN_LOW` above which a method is named as reshaping it.

    Returns
    -------
    str
        Markdown text (one paragraph).
    """
    methods = [m for m in table.index if m != "identity"]
    base = table.loc["identity"] if "identity" in table.index else None
    kept = [m for m in methods if table.loc[m, "stage"] in ("identity", "initial")]
    folds = [m for m in methods if table.loc[m, "folded (% body)"] > folded_pct]
    text = []
    if known_regime(experiment):
        column = "dense error mean (mm)"
        groups: dict[str, list[str]] = {}
        for method, value in table[column].sort_values(kind="stable").items():
            groups.setdefault(f"{value:.2f}", []).append(method)
        text.append("From best to worst by the mean dense error: " + "; ".join(
            f"{', '.join(names)} ({value} mm)" for value, names in groups.items()) + ".")
        if base is not None:
            worse = [m for m in methods if table.loc[m, column] > base[column]]
            text.append(f"Worse than no registration: {_names(worse)}.")
    elif base is not None:
        def moved(column: str, sign: int) -> list[str]:
            return [m for m in methods
                    if sign * (table.loc[m, column] - base[column]) > change * abs(base[column])]

        if experiment in ("post1", "post5"):
            for column, where in (("skin |post-pre| (%)", "at the skin"),
                                  ("edge |post-pre| (%)", "along the edges")):
                text.append(f"The subtraction artefact {where} ({base[column]:.1f} % before "
                            f"registration) falls by more than {change * 100:g} % with "
                            f"{_names(moved(column, -1))} and rises with "
                            f"{_names(moved(column, +1))}.")
            share = (table[f"J < {JACOBIAN_LOW:g} (% enhancing)"]
                     + table[f"J > {1 / JACOBIAN_LOW:.2f} (% enhancing)"])
            column = "J mean (enhancing)"
            text.append(f"In the enhancing region the mean Jacobian runs from "
                        f"{table[column].min():.2f} to {table[column].max():.2f}; more than "
                        f"{jacobian_pct:g} % of it changes volume by over "
                        f"{(1 - JACOBIAN_LOW) * 100:.0f} % with "
                        f"{_names([m for m in methods if share[m] > jacobian_pct])}.")
        else:
            column = "MIND-SSD (breast)"
            text.append(f"The MIND-SSD falls by more than {change * 100:g} % with "
                        f"{_names(moved(column, -1))} and rises with "
                        f"{_names(moved(column, +1))}.")
    text.append(f"Folding above {folded_pct:g} % of the body: {_names(folds)}.")
    text.append(f"The registration guard kept the starting field (no correction) for: "
                f"{_names(kept)}.")
    return " ".join(text)


