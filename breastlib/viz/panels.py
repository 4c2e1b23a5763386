"""Static panel figures (matplotlib): slices of volumes side by side, features as colour.

Every slice goes through :func:`breastlib.viz.slices.orthogonal_slice`, so each panel is in
radiological display convention (the patient's right on the viewer's left, anterior or
superior at the top; sagittal views show anterior on the left) with millimetre extents:
anisotropic voxels keep their true shape. Grid panels carry outlined orientation letters
and colour-mapped columns a colour bar with units. These are the figures of the book's
cohort and method chapters; they return the figure and leave displaying it to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from breastlib.viz._plotly import JACOBIAN_UNITS, draw_letters, wrap_label
from breastlib.viz.slices import VIEWS, orthogonal_slice

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes
    import matplotlib.figure
    import matplotlib.image

#: A display window: the values shown as black and as white (or the colormap's ends).
Window = tuple[float, float]
#: Percentiles of the shown slice that make the default window.
DEFAULT_PERCENTILES = (1.0, 99.5)


def slice_window(image: np.ndarray, percentiles: tuple[float, float] = DEFAULT_PERCENTILES
                 ) -> Window:
    """The default window of one 2-D slice: its 1st and 99.5th percentile.

    Parameters
    ----------
    image
        ``(H, W)`` slice, any unit.
    percentiles
        Lower and upper percentile, in ``[0, 100]``.

    Returns
    -------
    tuple of float
        ``(low, high)`` in the slice's own unit.
    """
    low, high = np.percentile(image, percentiles)
    return float(low), float(high)


def draw_slice(
    ax: matplotlib.axes.Axes,
    volume: np.ndarray,
    spacing: np.ndarray | Sequence[float],
    *,
    view: str = "axial",
    index: int | None = None,
    window: Window | None = None,
    colormap: str = "gray",
    title: str | None = None,
    letters: bool = False,
) -> matplotlib.image.AxesImage:
    """Draw one orthogonal slice of a volume into ``ax``, without ticks.

    Parameters
    ----------
    ax
        The matplotlib axes to draw into.
    volume
        ``(X, Y, Z)`` canonical RAS+ array (any unit). Integer arrays (label maps) are
        drawn without interpolation.
    spacing
        ``(3,)`` voxel size in mm; the axes are in mm.
    view
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    index
        Slice index along the view's normal axis; the centre slice when ``None``.
    window
        ``(low, high)`` in the volume's unit; default :func:`slice_window` of the slice.
    colormap
        A matplotlib colormap name.
    title
        Panel title (font size 9), or none.
    letters
        Draw the view's orientation letters at the panel's edges (yellow, outlined in
        black so they read on any colour map).

    Returns
    -------
    matplotlib.image.AxesImage
        The image, for a colour bar.
    """
    image, extent = orthogonal_slice(np.asarray(volume), np.asarray(spacing, dtype=float),
                                     view, index)
    low, high = window if window is not None else slice_window(image)
    integer = np.issubdtype(image.dtype, np.integer) or image.dtype == bool
    shown = ax.imshow(image, origin="lower", extent=extent, cmap=colormap, vmin=low,
                      vmax=high, interpolation="nearest" if integer else None)
    ax.set_xticks([])
    ax.set_yticks([])
    if letters:
        draw_letters(ax, view, fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return shown


def is_qualitative(colormap: str) -> bool:
    """Whether a matplotlib colour map is a short list of distinct colours (``tab20``,
    ``Set1``...: label maps), which a colour bar would not explain."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    cmap = matplotlib.colormaps[colormap]
    return isinstance(cmap, ListedColormap) and cmap.N <= 20


def view_grid(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | Sequence[float],
    *,
    views: Sequence[str] = VIEWS,
    index: Mapping[str, int] | None = None,
    windows: Mapping[str, Window] | None = None,
    colormaps: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    panel_size: tuple[float, float] = (2.6, 2.4),
    title: str | None = None,
    letters: bool = True,
) -> matplotlib.figure.Figure:
    """One column per volume, one row per view: several volumes on one grid, compared.

    Parameters
    ----------
    volumes
        Column title -> ``(X, Y, Z)`` canonical RAS+ array; all on one grid.
    spacing
        ``(3,)`` voxel size in mm of that grid.
    views
        The rows, from ``"axial"``, ``"coronal"``, ``"sagittal"``; each row is labelled
        with its view.
    index
        View -> slice index along its normal axis; the centre slice for a view not given.
    windows
        Column title -> ``(low, high)`` in that volume's unit; default the
        :func:`slice_window` of each slice.
    colormaps
        Column title -> matplotlib colormap; default ``"gray"``.
    units
        Column title -> colour-bar label (the quantity and its unit). A column with a
        window and a continuous colour map (not grey, not a label map such as ``tab20``),
        or named here with a window, gets a colour bar beneath it; its label defaults to
        the column title (a Jacobian's: unitless, 1 = volume kept).
    panel_size
        Width and height of one panel in inches.
    title
        Figure title, or none.
    letters
        Orientation letters on every panel.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(views) x len(volumes)`` panels (the first ``len(views) * len(volumes)`` of
        ``figure.axes``, row by row), then one colour-bar axes per barred column, in a
        row beneath.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    index, windows, colormaps = index or {}, windows or {}, colormaps or {}
    units = dict(units or {})
    unknown = set(units) - set(volumes)
    if unknown:
        raise ValueError(f"units name volumes that are not shown: {sorted(unknown)}")
    barred = [name for name in volumes if name in windows and (
        name in units or (name in colormaps and colormaps[name] not in ("gray", "grey")
                          and not is_qualitative(colormaps[name])))]
    # Colour bars fill a thin row of their own beneath the panels: columns with and
    # without one keep their panels aligned.
    figure, grid = plt.subplots(
        len(views) + bool(barred), len(volumes), squeeze=False, constrained_layout=True,
        figsize=(panel_size[0] * len(volumes),
                 panel_size[1] * len(views) + (0.8 if barred else 0.0)),
        gridspec_kw=dict(height_ratios=[1.0] * len(views) + [0.06] * bool(barred)))
    axes = grid[:len(views)]
    for column, (name, volume) in enumerate(volumes.items()):
        for row, view in enumerate(views):
            shown = draw_slice(axes[row, column], volume, spacing, view=view,
                               index=index.get(view), window=windows.get(name),
                               colormap=colormaps.get(name, "gray"),
                               title=name if row == 0 else None, letters=letters)
        if name in barred:
            default = JACOBIAN_UNITS if "jacobian" in name.lower() else name
            bar = figure.colorbar(shown, cax=grid[-1, column], orientation="horizontal",
                                  ticks=MaxNLocator(nbins=4))
            bar.ax.set_label("<colorbar>")  # as matplotlib names its own colour bars
            bar.set_label(wrap_label(units.get(name, default), 34), fontsize=8)
            bar.ax.tick_params(labelsize=7)
        elif barred:
            figure.delaxes(grid[-1, column])
    for row, view in enumerate(views):
        axes[row, 0].set_ylabel(view)
    if title:
        figure.suptitle(title)
    return figure


def as_rgb(
    features: np.ndarray,
    spacing: np.ndarray | Sequence[float],
    *,
    view: str = "axial",
    index: int | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> np.ndarray:
    """The first three feature channels of one slice as red, green and blue.

    Each channel is stretched on its own from its ``percentiles`` to ``[0, 1]``, so regions
    of similar colour have similar features.

    Parameters
    ----------
    features
        ``(C, X, Y, Z)`` feature volumes on a canonical RAS+ grid, ``C >= 3``, any unit.
    spacing
        ``(3,)`` voxel size in mm.
    view, index
        The slice, as for :func:`breastlib.viz.slices.orthogonal_slice` (centre when
        ``index`` is ``None``).
    percentiles
        Lower and upper percentile of each channel mapped to 0 and 1.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float RGB in ``[0, 1]``, in radiological display orientation (show
        with ``imshow(..., origin="lower")``).

    Raises
    ------
    ValueError
        ``features`` is not 4-D or has fewer than three channels.
    """
    features = np.asarray(features)
    if features.ndim != 4 or features.shape[0] < 3:
        raise ValueError(f"features must be (C >= 3, X, Y, Z), got shape {features.shape}")
    spacing = np.asarray(spacing, dtype=float)
    rgb = np.stack([orthogonal_slice(channel, spacing, view, index)[0]
                    for channel in features[:3]], axis=-1)
    low = np.percentile(rgb, percentiles[0], axis=(0, 1))
    high = np.percentile(rgb, percentiles[1], axis=(0, 1))
    return np.clip((rgb - low) / np.maximum(high - low, 1e-6), 0, 1)


def image_row(
    images: Mapping[str, np.ndarray],
    *,
    panel_size: tuple[float, float] = (3.3, 3.6),
) -> matplotlib.figure.Figure:
    """Display-ready 2-D slices in one row, one titled panel each, without axes.

    Parameters
    ----------
    images
        Title -> ``(H, W)`` grey slice (shown with its own min-max window) or
        ``(H, W, 3)`` RGB slice in ``[0, 1]`` (from :func:`as_rgb`), both in the
        orientation :func:`breastlib.viz.slices.orthogonal_slice` returns.
    panel_size
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``1 x len(images)`` panels.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(images), squeeze=False, constrained_layout=True,
                                figsize=(panel_size[0] * len(images), panel_size[1]))
    for ax, (title, image) in zip(axes[0], images.items(), strict=True):
        ax.imshow(image, origin="lower", cmap="gray" if image.ndim == 2 else None)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    return figure


def stage_grid(
    warped: Mapping[tuple[str, str], np.ndarray],
    reference: np.ndarray,
    spacing: np.ndarray | Sequence[float],
    *,
    view: str = "axial",
    window: Window = (0.0, 1.0),
    difference_window: Window = (0.0, 0.5),
    reference_name: str = "fixed",
    unit: str = "normalised intensity, 0-1",
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Warped images of several runs and stages, each beside its difference to a reference.

    One row per run; per stage two panels: the warped image and ``|reference - warped|``
    (magma colormap). A (run, stage) that is missing leaves its two panels empty.

    Parameters
    ----------
    warped
        ``(run, stage)`` -> ``(X, Y, Z)`` warped image on the reference's grid, in the
        reference's unit (for example intensities normalised to ``[0, 1]``). Rows and
        columns follow the order in which runs and stages first appear.
    reference
        ``(X, Y, Z)`` the image every warped image should match (the fixed image).
    spacing
        ``(3,)`` voxel size in mm.
    view
        The slice shown (its centre slice): ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    window, difference_window
        ``(low, high)`` of the warped images and of the differences, in their unit.
    reference_name
        Name of the reference in the difference panels' titles.
    unit
        The images' unit, written on the differences' colour bar.
    title
        Figure title, or none.

    Returns
    -------
    matplotlib.figure.Figure
        ``runs x 2 * stages`` panels (the first axes, row by row), then the colour bar of
        the differences (one scale for all).
    """
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(run for run, _ in warped))
    stages = list(dict.fromkeys(stage for _, stage in warped))
    figure, axes = plt.subplots(len(runs), 2 * len(stages), squeeze=False,
                                constrained_layout=True,
                                figsize=(3.25 * 2 * len(stages), 3.2 * len(runs)))
    reference = np.asarray(reference)
    difference = None
    for row, run in enumerate(runs):
        for column, stage in enumerate(stages):
            image = warped.get((run, stage))
            if image is None:
                continue
            draw_slice(axes[row, 2 * column], image, spacing, view=view, window=window,
                       title=f"{run}: {stage}", letters=True)
            difference = draw_slice(axes[row, 2 * column + 1], np.abs(reference - image),
                                    spacing, view=view, window=difference_window,
                                    colormap="magma", title=f"|{reference_name} - warped|",
                                    letters=True)
    for ax in axes.flat:
        ax.set_axis_off()
    if difference is not None:
        bar = figure.colorbar(difference, ax=axes, location="right", shrink=0.9, aspect=25)
        bar.set_label(wrap_label(f"|{reference_name} - warped| ({unit})", 24),
                      fontsize=8)
    if title:
        figure.suptitle(title)
    return figure
