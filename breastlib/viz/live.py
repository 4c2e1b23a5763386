"""Live-kernel exploration (Binder, Colab, local Jupyter): widgets that recompute.

:class:`RegistrationExplorer` puts ipywidgets controls (task, pair, method, weights,
slice, overlay mode) over the study's cohorts: choosing a combination registers that pair
with that method on the spot (seconds to a minute on a CPU for a small pair) and draws
fixed, warped and an overlay (checkerboard, difference, label contours or the Jacobian);
results are kept in memory, so going back is instant. :func:`view_3d` compares the fixed
and the warped volume in an itkwidgets 3-D viewer.

Neither belongs in the static site: a page built without a kernel would show dead
controls. The book's Sphinx extension sets ``BREASTLIB_STATIC_BUILD=1`` for the kernels
that execute its chapters, and :func:`show_explorer` then prints a note saying that the
static browsers on the page stand in. ipywidgets is in the ``book`` extra; itkwidgets
only in the ``live`` extra, imported when :func:`view_3d` is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from breastlib.errors import require
from breastlib.intensity import normalise_intensity

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

    from breastlib.evaluate.pair import CohortPair

__all__ = [
    "OVERLAYS",
    "STATIC_BUILD_ENV",
    "PairRegistration",
    "RegistrationExplorer",
    "in_static_build",
    "overlay_figure",
    "register_cohort_pair",
    "show_explorer",
    "view_3d",
]

STATIC_BUILD_ENV = "BREASTLIB_STATIC_BUILD"
OVERLAYS = ("checkerboard", "difference", "label contours", "jacobian")
_CHECKER_MM = 20.0


def in_static_build() -> bool:
    """True while the book's static site is being built (no reader behind the kernel)."""
    return os.environ.get(STATIC_BUILD_ENV) == "1"


@dataclass(frozen=True)
class PairRegistration:
    """One pair registered with one method, everything on the fixed canonical grid.

    Attributes
    ----------
    fixed, warped, moving
        ``(X, Y, Z)`` float32 intensities: the fixed image, the moving image warped by the
        estimated field, and the moving image resampled without registration.
    fixed_labels, warped_labels
        ``(X, Y, Z)`` integer label maps, or ``None`` when the cohort has none.
    jacobian
        ``(X, Y, Z)`` Jacobian determinant of the deformation.
    spacing
        ``(3,)`` voxel size in mm.
    metrics
        :func:`breastlib.evaluate.pair.pair_metrics` of the field.
    seconds
        Wall-clock seconds of the registration.
    label_names
        ``{name: value}`` of the cohort's labels.
    """

    fixed: np.ndarray
    warped: np.ndarray
    moving: np.ndarray
    fixed_labels: np.ndarray | None
    warped_labels: np.ndarray | None
    jacobian: np.ndarray
    spacing: np.ndarray
    metrics: dict[str, Any]
    seconds: float
    label_names: dict[str, int]


def register_cohort_pair(
    pair: CohortPair,
    *,
    method: str,
    weights: str = "random",
    profile: str = "fast",
    device: str = "auto",
    seed: int = 0,
) -> PairRegistration:
    """Register one cohort pair with one method and keep what the explorer draws.

    Parameters
    ----------
    pair
        From :func:`breastlib.evaluate.pair.load_cohort_pair`.
    method, weights, profile, device, seed
        As for :func:`breastlib.register.register_method`.
    """
    from breastlib.evaluate.pair import pair_metrics
    from breastlib.register import register_method

    result = register_method(pair.fixed, pair.moving, method=method, weights=weights,
                             profile=profile, device=device, seed=seed)
    field = result.displacement
    jacobian = field.jacobian_determinant()
    warped_labels = None
    if pair.fixed_labels is not None and pair.moving_labels is not None:
        warped_labels = field.warp_labels(pair.moving_labels)
    return PairRegistration(
        fixed=pair.fixed.array, warped=field.warp(pair.moving).array,
        moving=pair.moving.resample_to(pair.fixed).array,
        fixed_labels=None if warped_labels is None else pair.fixed_labels.array,
        warped_labels=None if warped_labels is None else warped_labels.array,
        jacobian=jacobian, spacing=pair.fixed.spacing,
        metrics=pair_metrics(field, pair, jacobian=jacobian, warped_labels=warped_labels),
        seconds=float(result.seconds["total"]), label_names=pair.label_names,
    )


def _checkerboard(a: np.ndarray, b: np.ndarray, extent: list[float]) -> np.ndarray:
    """Alternate ``a`` and ``b`` in squares of about 20 mm (display slices, same shape)."""
    rows, cols = a.shape
    row_mm = (extent[3] - extent[2]) / rows
    col_mm = (extent[1] - extent[0]) / cols
    r = (np.arange(rows) * row_mm // _CHECKER_MM).astype(int)
    c = (np.arange(cols) * col_mm // _CHECKER_MM).astype(int)
    return np.where((r[:, None] + c[None, :]) % 2 == 0, a, b)


def overlay_figure(
    result: PairRegistration,
    *,
    slice_index: int | None = None,
    overlay: str = "checkerboard",
    title: str = "",
) -> matplotlib.figure.Figure:
    """Fixed, moving, warped and one overlay of an axial slice, radiological view.

    Parameters
    ----------
    result
        From :func:`register_cohort_pair`.
    slice_index
        Axial slice (centre when ``None``).
    overlay
        One of :data:`OVERLAYS`: a checkerboard of fixed and warped, their absolute
        difference, the breast and FGT outlines of the fixed (cyan) and warped (orange)
        label maps over the warped image, or the Jacobian determinant (0 to 2).
    title
        Figure title.
    """
    import matplotlib.pyplot as plt

    from breastlib.tissues import breast_mask, fgt_mask
    from breastlib.viz.slices import orthogonal_slice

    if overlay not in OVERLAYS:
        raise ValueError(f"overlay must be one of {OVERLAYS}, got {overlay!r}")
    spacing = result.spacing
    k = result.fixed.shape[2] // 2 if slice_index is None else int(slice_index)
    if not 0 <= k < result.fixed.shape[2]:
        raise ValueError(f"slice {k} is outside 0..{result.fixed.shape[2] - 1}")
    images = {name: normalise_intensity(getattr(result, name))
              for name in ("fixed", "moving", "warped")}

    def cut(volume: np.ndarray) -> tuple[np.ndarray, list[float]]:
        return orthogonal_slice(volume, spacing, "axial", k)

    (fixed, extent), (moving, _), (warped, _) = (cut(images[n]) for n in images)
    figure, axes = plt.subplots(1, 4, figsize=(14, 3.9), constrained_layout=True)
    shown = {"fixed": fixed, "moving (not registered)": moving, "warped moving": warped}
    for ax, (name, image) in zip(axes, shown.items(), strict=False):
        ax.imshow(image, origin="lower", extent=extent, cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=10)
    ax = axes[3]
    if overlay == "checkerboard":
        ax.imshow(_checkerboard(fixed, warped, extent), origin="lower", extent=extent,
                  cmap="gray", vmin=0, vmax=1)
    elif overlay == "difference":
        ax.imshow(np.abs(fixed - warped), origin="lower", extent=extent, cmap="magma",
                  vmin=0, vmax=0.5)
    elif overlay == "jacobian":
        ax.imshow(cut(result.jacobian)[0], origin="lower", extent=extent, cmap="PiYG",
                  vmin=0, vmax=2)
    else:
        ax.imshow(warped, origin="lower", extent=extent, cmap="gray", vmin=0, vmax=1)
        if result.fixed_labels is None or result.warped_labels is None:
            ax.text(0.5, 0.5, "no label maps in this cohort", transform=ax.transAxes,
                    ha="center", color="white")
        else:
            names = result.label_names
            for labels, colour in ((result.fixed_labels, "cyan"),
                                   (result.warped_labels, "orange")):
                for make in (breast_mask, fgt_mask):
                    mask = cut(make(labels, names).astype(np.float32))[0]
                    if mask.any() and not mask.all():
                        ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.8,
                                   origin="lower", extent=extent)
    ax.set_title(f"{overlay} (fixed vs warped)", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    metrics = result.metrics
    dense = (f"dense error {metrics['field_error_mean_mm']:.1f} mm, "
             if "field_error_mean_mm" in metrics else "")
    line = (f"{dense}TRE {metrics.get('tre_mean_before_mm', np.nan):.1f} -> "
            f"{metrics.get('tre_mean_after_mm', np.nan):.1f} mm, "
            f"Dice breast {metrics.get('dice_breast', np.nan):.2f}, "
            f"FGT {metrics.get('dice_fgt', np.nan):.2f}, "
            f"folded {metrics.get('jac_nonpos_pct', np.nan):.2f} %, "
            f"{result.seconds:.0f} s, {metrics.get('verdict', '')}")
    heading = f"{title}: axial slice {k + 1} of {result.fixed.shape[2]}" if title else (
        f"axial slice {k + 1} of {result.fixed.shape[2]}")
    figure.suptitle(f"{heading}\n{line} (patient's right on the viewer's left)",
                    fontsize=10)
    return figure


class CohortControls:
    """What every live explorer shares: cohorts loaded on demand, the task, pair and
    weights controls, a status line, an output area and a cache of registrations.

    Subclasses call :meth:`_setup_cohorts` first, then add their own controls.
    """

    def _setup_cohorts(
        self,
        manifests: Mapping[str, str | os.PathLike | Callable[[], str | os.PathLike]],
        *,
        task: str | None,
        profile: str,
        device: str,
        seed: int,
        register: Callable[[str, str, str, str], PairRegistration] | None,
    ) -> None:
        import ipywidgets as widgets

        from breastlib.evaluate.pair import load_cohort_pair

        if not manifests:
            raise ValueError("no cohorts to explore")
        self._sources = dict(manifests)
        self.manifests: dict[str, Path] = {}
        self.pairs: dict[str, list[str]] = {}
        self.profile, self.device, self.seed = profile, device, seed
        self.cache: dict[tuple[str, str, str, str], PairRegistration] = {}

        def default_register(task: str, pair_id: str, method: str,
                             weights: str) -> PairRegistration:
            pair = load_cohort_pair(self.manifests[task], pair_id)
            return register_cohort_pair(pair, method=method, weights=weights,
                                        profile=self.profile, device=self.device,
                                        seed=self.seed)

        self._register = register or default_register
        first = task or next(iter(self._sources))
        if first not in self._sources:
            raise ValueError(f"task {first!r} is not among {sorted(self._sources)}")
        self.task = widgets.Dropdown(options=list(self._sources), value=first,
                                     description="task")
        self.pair = widgets.Dropdown(options=self._pairs_of(first), description="pair")
        self.weights = widgets.ToggleButtons(options=["random", "pretrained"],
                                             value="random", description="weights")
        self.status = widgets.HTML()
        self.output = widgets.Output()
        self.task.observe(self._task_changed, names="value")

    def _pairs_of(self, task: str) -> list[str]:
        """The task's pair ids, making its cohort first when it is given as a function."""
        import pandas as pd

        if task not in self.manifests:
            source = self._sources[task]
            self.manifests[task] = Path(source() if callable(source) else source)
            self.pairs[task] = [str(p) for p in pd.read_csv(self.manifests[task])["pair_id"]]
        return self.pairs[task]

    def _task_changed(self, change: dict[str, Any]) -> None:
        self.pair.options = self._pairs_of(change["new"])  # selects the first pair
        self.refresh()

    def _weights_for(self, method: str) -> str:
        from breastlib.register.baselines import BASELINES

        return "none" if method in ("mind", *BASELINES) else self.weights.value

    def refresh(self) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class RegistrationExplorer(CohortControls):
    """ipywidgets controls over cohorts that register the chosen pair on demand.

    Parameters
    ----------
    manifests
        Task name -> cohort ``manifest.csv``, or a function returning it (called when the
        task is first selected, for example to generate the cohort).
    methods
        Methods offered in the menu (baselines, ``mind``, encoders).
    task
        Task selected first (the first of ``manifests`` when ``None``).
    profile, device, seed
        Passed to :func:`register_cohort_pair`.
    register
        The function that computes a :class:`PairRegistration` (for tests; defaults to
        loading the pair and calling :func:`register_cohort_pair`).

    Attributes
    ----------
    task, pair, method, weights, slice, overlay
        The controls (``ipywidgets`` Dropdown, ToggleButtons and IntSlider).
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
        methods: tuple[str, ...] = ("identity", "affine", "mind", "sam", "dinov2"),
        task: str | None = None,
        profile: str = "fast",
        device: str = "auto",
        seed: int = 0,
        register: Any = None,
    ) -> None:
        import ipywidgets as widgets

        self._setup_cohorts(manifests, task=task, profile=profile, device=device, seed=seed,
                            register=register)
        self.method = widgets.Dropdown(options=list(methods), value=methods[0],
                                       description="method")
        self.slice = widgets.IntSlider(min=1, max=1, value=1, description="slice",
                                       continuous_update=False)
        self.overlay = widgets.ToggleButtons(options=list(OVERLAYS), value=OVERLAYS[0],
                                             description="overlay")
        for control in (self.pair, self.method, self.weights):
            control.observe(lambda _change: self.refresh(), names="value")
        for control in (self.slice, self.overlay):
            control.observe(lambda _change: self.draw(), names="value")
        self._key: tuple[str, str, str, str] | None = None

    @property
    def widget(self) -> Any:
        """The whole explorer as one ipywidgets box."""
        import ipywidgets as widgets

        return widgets.VBox([
            widgets.HBox([self.task, self.pair, self.method]),
            self.weights, widgets.HBox([self.slice]), self.overlay, self.status,
            self.output,
        ])

    def refresh(self) -> PairRegistration:
        """Compute (or fetch from :attr:`cache`) the selected combination, then draw it."""
        weights = self._weights_for(self.method.value)
        key = (self.task.value, self.pair.value, self.method.value, weights)
        if key not in self.cache:
            self.status.value = (f"registering {key[1]} with {key[2]} "
                                 f"({weights} weights, {self.profile} profile)...")
            try:
                self.cache[key] = self._register(*key)
            except Exception as exc:  # shown to the reader; the explorer stays usable
                self.status.value = f"<b>failed</b>: {type(exc).__name__}: {exc}"
                raise
        result = self.cache[key]
        self._key = key
        depth = result.fixed.shape[2]
        self.slice.max = depth
        if not 1 <= self.slice.value <= depth or self.slice.value == 1:
            with self.slice.hold_trait_notifications():
                self.slice.value = depth // 2 + 1
        self.draw()
        return result

    def draw(self) -> None:
        """Redraw the current result with the current slice and overlay."""
        import io

        import matplotlib.pyplot as plt
        from IPython.display import Image

        if self._key is None:
            return
        task, pair_id, method, weights = self._key
        result = self.cache[self._key]
        label = method if weights == "none" else f"{method} ({weights})"
        figure = overlay_figure(result, slice_index=self.slice.value - 1,
                                overlay=self.overlay.value, title=f"{task} {pair_id}, {label}")
        # A PNG of our own: shown the same by every front end, whatever its backend.
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        plt.close(figure)
        self.output.outputs = ()
        self.output.append_display_data(Image(data=buffer.getvalue(), format="png"))
        self.status.value = f"{task} / {pair_id} / {label}: computed in {result.seconds:.0f} s"


def show_explorer(
    manifests: Mapping[str, str | os.PathLike | Callable[[], str | os.PathLike]],
    **options: Any,
) -> Any:
    """Display a :class:`RegistrationExplorer` in a live kernel; in the static build, say
    that the page's static browsers stand in. Returns the explorer (``None`` when static).
    """
    if in_static_build():
        print("Live explorer: this cell builds ipywidgets controls that register the chosen "
              "pair on demand. It needs a running kernel (open this page in Colab or Binder, "
              "or locally with Jupyter); in this static page the slice browsers above "
              "stand in.")
        return None
    from IPython.display import display

    explorer = RegistrationExplorer(manifests, **options)
    display(explorer.widget)
    explorer.refresh()
    return explorer


def view_3d(
    fixed: np.ndarray,
    warped: np.ndarray,
    *,
    spacing: np.ndarray | tuple[float, float, float],
    method: str = "checkerboard",
) -> Any:
    """An itkwidgets 3-D comparison of the fixed and the warped volume.

    Parameters
    ----------
    fixed, warped
        ``(X, Y, Z)`` canonical RAS+ arrays on one grid (for example the ``fixed`` and
        ``warped`` of a :class:`PairRegistration`).
    spacing
        ``(3,)`` voxel size in mm.
    method
        itkwidgets' ``compare_images`` method: ``"checkerboard"``, ``"blend"``,
        ``"green-magenta"``, ``"cyan-red"`` or ``"cyan-magenta"``.

    Returns
    -------
    Any
        The itkwidgets viewer (display it by ending a cell with it), or ``None`` in the
        static build, where a note is printed instead.

    Raises
    ------
    MissingDependencyError
        itkwidgets or itk is not installed (``pip install 'breastlib[live]'``).
    """
    if in_static_build():
        print("3-D view: itkwidgets needs a live kernel with internet; in this static page "
              "the three-view browser stands in.")
        return None
    itkwidgets = require("itkwidgets", "live")
    itk = require("itk", "live")

    def image(array: np.ndarray) -> Any:
        # itk arrays are indexed (z, y, x); ours are (x, y, z) in RAS+, and itk's world is
        # LPS, so the first two axes point against its x and y.
        picture = itk.image_from_array(
            np.ascontiguousarray(normalise_intensity(array).transpose(2, 1, 0)))
        picture.SetSpacing([float(s) for s in spacing])
        picture.SetDirection(itk.matrix_from_array(np.diag([-1.0, -1.0, 1.0])))
        return picture

    return itkwidgets.compare_images(fixed_image=image(fixed), moving_image=image(warped),
                                     method=method)
