"""What the real-exam chapter's cells show: each call displays a table, its summary in
words and a figure, and does nothing when the exam or its numbers are unavailable, so that
the chapter's cells stay one line each."""

from __future__ import annotations

import pandas as pd

from breastlib.booktools.real_exam.cache import ExamNumbers
from breastlib.booktools.real_exam.figures import (
    breast_slice,
    feature_figure,
    known_deformation_figure,
    ranking_figure,
)
from breastlib.booktools.real_exam.known import (
    KNOWN_REGIMES,
    known_deformation,
    phantom_errors,
    ranking_table,
    transfer_words,
)
from breastlib.booktools.real_exam.loading import RealExam
from breastlib.booktools.real_exam.tables import summary

#: The encoders whose features the chapter shows (random weights unless cached).
FEATURE_ENCODERS = ("sam", "dinov2", "medclip")


def _display(*objects: object) -> None:
    from IPython.display import Markdown, display

    for item in objects:
        display(Markdown(item) if isinstance(item, str) else item)


def show_experiment(numbers: ExamNumbers | None, experiment: str) -> None:
    """Display one experiment's method table (3 decimals) and :func:`~breastlib.booktools.
    real_exam.tables.summary`."""
    if numbers:
        table = numbers.tables[experiment]
        _display(table.round(3), summary(table, experiment))


def show_known(exam: RealExam | None, numbers: ExamNumbers | None, regime: str) -> None:
    """Display the ``known_<regime>`` table, its summary and MIND's registration of that
    deformation (:func:`~breastlib.booktools.real_exam.figures.known_deformation_figure`,
    computed on this build)."""
    show_experiment(numbers, f"known_{regime}")
    if exam:
        _display(known_deformation_figure(exam, known_deformation(exam, regime)))


def phantom_rankings(numbers: ExamNumbers | None, ran: pd.DataFrame
                     ) -> dict[str, pd.DataFrame]:
    """Regime -> :func:`~breastlib.booktools.real_exam.known.ranking_table` of the real
    anatomy's ``known_<regime>`` table against the phantom task of that regime
    (:data:`~breastlib.booktools.real_exam.known.KNOWN_REGIMES`), for the regimes whose
    task the phantom still draws in that regime (:func:`~breastlib.phantom.task_regime`:
    since phantom version 2 every task moves in the ``visit`` regime, so the ``position``
    regime has no counterpart); empty without numbers."""
    from breastlib.phantom import task_regime

    if not numbers:
        return {}
    return {regime: ranking_table(numbers.tables[f"known_{regime}"],
                                  phantom_errors(ran, task))
            for regime, task in KNOWN_REGIMES.items() if task_regime(task) == regime}


def show_rankings(numbers: ExamNumbers | None, ran: pd.DataFrame) -> None:
    """Display, per regime, the two rankings side by side and in words, then one scatter of
    every method's error on the real anatomy against the phantom's.

    Parameters
    ----------
    numbers
        The chapter's numbers (:func:`~breastlib.booktools.real_exam.cache.exam_numbers`).
    ran
        The phantom study's rows that ran (:attr:`breastlib.booktools.chapters.
        StudyTables.ran`).
    """
    rankings = phantom_rankings(numbers, ran)
    titles = {}
    for regime, table in rankings.items():
        task = KNOWN_REGIMES[regime]
        _display(f"**The `{regime}` regime against the phantom's {task} task**",
                 table.round(2), transfer_words(table, regime, task))
        titles[f"'{regime}' regime vs phantom {task}"] = table
    alone = [regime for regime in KNOWN_REGIMES if regime not in rankings]
    if numbers and alone:
        _display("No phantom task moves in the " + ", ".join(f"`{r}`" for r in alone)
                 + " regime (every task of phantom version 2 moves in the `visit` regime), "
                 "so its table above has no phantom ranking to compare with.")
    if titles and all(len(t) for t in titles.values()):
        _display(ranking_figure(titles))


def show_features(exam: RealExam | None, encoders: tuple[str, ...] = FEATURE_ENCODERS) -> None:
    """Display the encoders' first three PCA components on an axial slice of the exam's
    pre-contrast image (registered with phase 1) beside a slice of a phantom pair of the
    build's size (longitudinal task, seed 0), with :func:`~breastlib.booktools.chapters.
    feature_images`."""
    if not exam:
        return
    from breastlib.booktools.chapters import encoders_fit, feature_images
    from breastlib.booktools.data import current_build
    from breastlib.phantom import make_pair

    encoders = encoders if encoders_fit() else ()
    pair = make_pair("longitudinal", size=current_build().size, seed=0)
    rows = {"real exam (uta11)": feature_images(exam.pre, exam.dce["post1"], encoders,
                                                index=breast_slice(exam.breast)),
            "phantom (longitudinal, seed 0)": feature_images(pair.fixed, pair.moving, encoders)}
    _display(feature_figure(rows))
