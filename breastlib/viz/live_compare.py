"""Live-kernel comparison grid (Binder, Colab, local Jupyter): every method at one slice.

:class:`ComparisonGridExplorer` is the live counterpart of the static grid of
:mod:`breastlib.viz.compare`: ipywidgets controls choose a task, a pair, the encoder
weights, a view (warped moving, ``|fixed - warped|``, checkerboard, Jacobian
determinant) and one axial slice; every method in the grid registers the chosen pair on
the spot (kept in memory, so going back is instant) and one figure shows the fixed image
and every method side by side, drawn by
:func:`breastlib.viz.compare.static_comparison_grid`. The panels fill in as the methods
finish.

In the book's static build (``BREASTLIB_STATIC_BUILD=1``) :func:`show_comparison_explorer`
prints a note instead of dead controls, as :func:`breastlib.viz.live.show_explorer` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from breastlib.intensity import normalise_intensity
from breastlib.viz.compare import NOT_REGISTERED, VIEW_TITLES, VIEWS, static_comparison_grid
from breastlib.viz.live import (
    CohortControls,
    PairRegistration,
    in_static_build,
)

__all__ = ["ComparisonGridExplorer", "grid_figure", "show_comparison_explorer"]

#: How a flagged verdict is marked in a panel title (as in the book's tables).
_MARKS = {"folded": "F", "worse_than_identity": "W"}


def _label(method: str, weights: str, result: PairRegistration) -> str:
    """``sam (random) [W]``: the method, its weights (encoders only) and its flag; the
    identity is :data:`~breastlib.viz.compare.NOT_REGISTERED`."""
    label = method if weights == "none" else f"{method} ({weights})"
    label = NOT_REGISTERED if method == "identity" else label
    mark = _MARKS.get(str(result.metrics.get("verdict", "")), "")
    return label + (f" [{mark}]" if mark else "")


def _note(result: PairRegistration) -> str:
    """The dense error where the true field is known, else the landmark error."""
    metrics = result.metrics
    for key, name in (("field_error_mean_mm", "dense error"), ("tre_mean_after_mm", "TRE")):
        value = metrics.get(key)
        if value is not None and np.isfinite(value):
            return f"{name} {value:.2f} mm"
    return ""


def grid_figure(
    results: Mapping[str, PairRegistration],
    *,
    view: str = "warped",
    slice_index: int | None = None,
    title: str = "",
    columns: int = 4,
) -> Any:
    """Every registration of one pair at one axial slice, the fixed image first.

    Parameters
    ----------
    results
        Panel label (``"sam (random)"``) -> :class:`~breastlib.viz.live.PairRegistration`
        of the same pair (the fixed image is taken from the first).
    view
        One of :data:`breastlib.viz.compare.VIEWS`.
    slice_index
        0-based axial slice (the centre when ``None``).
    title
        Figure title.
    columns
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        Not yet shown (``display`` it, then close it).
    """
    if not results:
        raise ValueError("no registration to show")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    first = next(iter(results.values()))
    depth = first.fixed.shape[2]
    k = depth // 2 if slice_index is None else int(slice_index)
    if not 0 <= k < depth:
        raise ValueError(f"slice {k} is outside 0..{depth - 1}")
    here = slice(k, k + 1)
    notes = {}
    for label, result in results.items():
        notes[label] = _note(result) + (f", {result.seconds:.0f} s" if _note(result) else "")
    return static_comparison_grid(
        normalise_intensity(first.fixed)[:, :, here],
        {label: normalise_intensity(r.warped)[:, :, here] for label, r in results.items()},
        first.spacing,
        jacobians={label: r.jacobian[:, :, here] for label, r in results.items()},
        slice_numbers=[k], n_slices=depth, notes=notes, views=(view,), title=title,
        columns=min(columns, len(results) + 1),
    )


class ComparisonGridExplorer(CohortControls):
    """ipywidgets controls over cohorts that show every method at one slice.

    Parameters
    ----------
    manifests
        Task name -> cohort ``manifest.csv``, or a function returning it (called when the
        task is first selected, for example to generate the cohort).
    methods
        The methods in the grid, in panel order after the fixed image.
    task
        Task selected first (the first of ``manifests`` when ``None``).
    profile, device, seed
        Passed to :func:`breastlib.viz.live.register_cohort_pair`.
    register
        ``(task, pair_id, method, weights) -> PairRegistration`` (for tests; defaults to
        loading the pair and calling :func:`~breastlib.viz.live.register_cohort_pair`).
    columns
        Panels per row.

    Attributes
    ----------
    task, pair, weights, view, slice
        The controls (``ipywidgets`` Dropdown, ToggleButtons and IntSlider; the slice is
        counted from 1).
    status
        An ``HTML`` line saying what is being computed or shown.
    output
        The ``Output`` widget holding the figure.
    cache
        ``(task, pair, method, weights) -> PairRegistration`` computed so far.
    """

    def __init__(
        self,
        manifests: Mapping[str, str | os.PathLike | Callable[[], str | os.PathLike]],
        *,
        methods: Sequence[str] = ("identity", "affine", "mind", "sam", "dinov2"),
        task: str | None = None,
        profile: str = "fast",
        device: str = "auto",
        seed: int = 0,
        register: Callable[[str, str, str, str], PairRegistration] | None = None,
        columns: int = 4,
    ) -> None:
        import ipywidgets as widgets

        if not methods:
            raise ValueError("no methods to compare")
        self._setup_cohorts(manifests, task=task, profile=profile, device=device, seed=seed,
                            register=register)
        self.methods = tuple(methods)
        self.columns = columns
        self.view = widgets.ToggleButtons(
            options=[(VIEW_TITLES[v], v) for v in VIEWS], value=VIEWS[0],
            description="view")
        self.slice = widgets.IntSlider(min=1, max=1, value=1, description="slice",
                                       continuous_update=False)
        for control in (self.pair, self.weights):
            control.observe(lambda _change: self.refresh(), names="value")
        for control in (self.slice, self.view):
            control.observe(self._control_moved, names="value")
        self._shown: dict[str, tuple[str, str, str, str]] = {}
        self._quiet = False

    @property
    def widget(self) -> Any:
        """The whole explorer as one ipywidgets box."""
        import ipywidgets as widgets

        return widgets.VBox([widgets.HBox([self.task, self.pair]), self.weights, self.view,
                             self.slice, self.status, self.output])

    def keys(self) -> list[tuple[str, str, str, str]]:
        """``(task, pair, method, weights)`` of every panel for the current controls."""
        return [(self.task.value, self.pair.value, method, self._weights_for(method))
                for method in self.methods]

    def refresh(self) -> dict[str, PairRegistration]:
        """Register every method on the selected pair (or fetch it from :attr:`cache`),
        redrawing as each one finishes; a method that fails is reported and left out.

        Returns
        -------
        dict
            Panel label -> :class:`~breastlib.viz.live.PairRegistration` shown.
        """
        self._shown = {}
        keys = self.keys()
        failed = []
        for number, key in enumerate(keys, start=1):
            if key not in self.cache:
                self.status.value = (f"registering {key[1]} with {key[2]} ({number} of "
                                     f"{len(keys)}; {self.profile} profile)...")
                try:
                    self.cache[key] = self._register(*key)
                except Exception as exc:  # shown to the reader; the grid goes on
                    failed.append(f"{key[2]}: {type(exc).__name__}: {exc}")
                    continue
            self._shown[_label(key[2], key[3], self.cache[key])] = key
            if len(self._shown) == 1:
                self._reset_slice(self.cache[key])
            self.draw()
        if failed:
            self.status.value = "<b>failed</b>: " + "; ".join(failed)
        return {label: self.cache[key] for label, key in self._shown.items()}

    def _control_moved(self, _change: dict[str, Any]) -> None:
        if not self._quiet:
            self.draw()

    def _reset_slice(self, result: PairRegistration) -> None:
        """Fit the slider to the pair's depth; start on the middle slice (no redraw: the
        caller draws)."""
        depth = result.fixed.shape[2]
        self._quiet = True
        try:
            self.slice.max = depth
            if not 1 <= self.slice.value <= depth or self.slice.value == 1:
                self.slice.value = depth // 2 + 1
        finally:
            self._quiet = False

    def draw(self) -> None:
        """Redraw the registrations computed so far at the current slice and view."""
        import io

        import matplotlib.pyplot as plt
        from IPython.display import Image

        if not self._shown:
            return
        results = {label: self.cache[key] for label, key in self._shown.items()}
        task, pair_id = self.task.value, self.pair.value
        figure = grid_figure(results, view=self.view.value, slice_index=self.slice.value - 1,
                             title=f"{task} {pair_id}", columns=self.columns)
        # A PNG of our own: shown the same by every front end, whatever its backend.
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        plt.close(figure)
        self.output.outputs = ()
        self.output.append_display_data(Image(data=buffer.getvalue(), format="png"))
        self.status.value = (f"{task} / {pair_id}: {len(results)} of {len(self.methods)} "
                             "methods")


def show_comparison_explorer(
    manifests: Mapping[str, str | os.PathLike | Callable[[], str | os.PathLike]],
    **options: Any,
) -> ComparisonGridExplorer | None:
    """Display a :class:`ComparisonGridExplorer` in a live kernel; in the static build,
    say that the page's static comparison grid stands in. Returns the explorer (``None``
    when static).

    Parameters
    ----------
    manifests
        As for :class:`ComparisonGridExplorer`.
    **options
        Further keywords for :class:`ComparisonGridExplorer` (``methods``, ``task``,
        ``profile``...).
    """
    if in_static_build():
        print("Live comparison grid: this cell builds ipywidgets controls that register the "
              "chosen pair with every method on demand and show them side by side. It needs "
              "a running kernel (open this page in Colab or Binder, or locally with "
              "Jupyter); in this static page the comparison grid above stands in.")
        return None
    from IPython.display import display

    explorer = ComparisonGridExplorer(manifests, **options)
    display(explorer.widget)
    explorer.refresh()
    return explorer
