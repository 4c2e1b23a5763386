"""Orthogonal 3-D browsing for static pages: axial, coronal and sagittal views side by side.

One plotly figure holds, for every volume, three image traces (one per view). Each view
has its own slider, which swaps the ``source`` of that view's traces only and moves the
cross-hair lines that mark the slice in the two other views; the drop-down menu shows one
volume's three traces at a time. Everything is in the page (``data:`` URIs, no kernel, no
CDN), laid out in radiological convention with square millimetre pixels, like
:func:`breastlib.viz.interactive.slice_browser`: the patient's right on the viewer's left
in axial and coronal views, anterior at the top of axial views and on the viewer's left in
sagittal views, superior at the top of coronal and sagittal views. Colour-mapped volumes
get a colour bar with units.

plotly is imported lazily: it belongs to the ``book`` extra, not to the core library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from breastlib.viz._plotly import (
    PlotlyPage,
    check_spacing,
    colorbar_title,
    colorbar_trace,
    colorbar_volumes,
    draw_static_slice,
    encoded_slices,
    orientation_letters,
    row_colorbar,
    slice_labels,
    title_layout,
    volume_menu,
)
from breastlib.viz.interactive import display_images, show_interactive, slice_indices
from breastlib.viz.slices import NORMAL_AXIS, VIEWS, orthogonal_slice

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import plotly.graph_objects as go

__all__ = ["orthogonal_browser", "show_orthogonal_browser", "static_orthogonal"]

# The array axis along each view's screen columns (rows show the remaining one).
_COLUMN_AXIS = {"axial": 0, "coronal": 0, "sagittal": 1}
_CROSSHAIR = dict(color="#00e5ff", width=1, dash="dot")


def _screen_mm(index: float, axis: int, shape: tuple[int, ...], spacing: np.ndarray) -> float:
    """Screen coordinate (mm from the left or top edge) of a voxel centre along ``axis``.

    Columns run against their array axis (patient's right, or anterior, first) and rows
    too (anterior or superior at the top), so every on-screen axis is reversed.
    """
    return float((shape[axis] - index - 0.5) * spacing[axis])


def orthogonal_browser(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | tuple[float, float, float],
    *,
    max_slices: int = 16,
    title: str = "",
    windows: Mapping[str, tuple[float, float]] | None = None,
    colormaps: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    slice_numbers: Sequence[int] | np.ndarray | None = None,
    n_slices_total: int | None = None,
    max_pixels: int = 192,
    image_format: str = "jpeg",
    height: int = 520,
) -> go.Figure:
    """A kernel-free three-view browser: a slider per view and a menu over volumes.

    Parameters
    ----------
    volumes
        Name -> ``(X, Y, Z)`` canonical RAS+ array; all on one grid. The first one is
        shown initially.
    spacing
        ``(3,)`` voxel size in mm.
    max_slices
        At most this many evenly spaced slices per view (first and last included); the
        page stores ``3 * max_slices`` small images per volume.
    title
        Figure title; the selected volume's name is appended.
    windows, colormaps, units
        As for :func:`breastlib.viz.interactive.slice_browser` (one colour bar per
        colour-mapped volume, at the right, shown with that volume).
    slice_numbers, n_slices_total
        ``(Z,)`` 0-based index of each given axial slice in the original volume and that
        volume's number of axial slices, when the arrays hold a subset of its axial slices;
        the axial slider then counts in the original's numbers.
    max_pixels
        Longest side of a stored slice in pixels.
    image_format
        ``"jpeg"`` (default: small pages) or ``"png"``.
    height
        Figure height in CSS pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        ``3 * len(volumes)`` ``go.Image`` traces, ordered volume by volume as (axial,
        coronal, sagittal), then one colour-bar trace per volume with a colour bar;
        ``layout.sliders[k]`` restyles view ``k``'s traces and moves the cross-hairs,
        ``layout.updatemenus[0]`` toggles ``visible``. ``layout.meta`` records per view
        the stored slice indices (``slices``), their 1-based numbers in the original
        volume (``slice_numbers``) and its slice count (``n_slices_total``).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    spacing = check_spacing(spacing)
    colormaps = dict(colormaps or {})
    units, windows = dict(units or {}), dict(windows or {})
    shown = display_images(volumes, windows=windows)
    names = list(shown)
    shape = next(iter(shown.values())).shape
    barred = colorbar_volumes(names, colormaps, units)
    labels = {view: slice_labels(shape[NORMAL_AXIS[view]], None, None) for view in VIEWS}
    labels["axial"] = slice_labels(shape[2], slice_numbers, n_slices_total)
    indices = {view: slice_indices(shape[NORMAL_AXIS[view]], max_slices) for view in VIEWS}
    starts = {view: len(indices[view]) // 2 for view in VIEWS}

    sources: dict[tuple[str, str], list[str]] = {}
    pixel_mm: dict[str, float] = {}
    size_mm: dict[str, tuple[float, float]] = {}
    for view in VIEWS:
        for name in names:
            sources[view, name], pixel_mm[view], size_mm[view] = encoded_slices(
                shown[name], spacing, view, indices[view], colormap=colormaps.get(name),
                image_format=image_format, max_pixels=max_pixels)

    widths = [size_mm[view][0] for view in VIEWS]
    figure = make_subplots(rows=1, cols=3, subplot_titles=VIEWS, horizontal_spacing=0.02,
                           column_widths=[w / sum(widths) for w in widths])
    trace_of: dict[tuple[str, str], int] = {}
    for name_number, name in enumerate(names):
        for col, view in enumerate(VIEWS, start=1):
            trace_of[view, name] = len(figure.data)
            figure.add_trace(go.Image(
                source=sources[view, name][starts[view]], name=f"{name} ({view})",
                visible=name_number == 0, x0=pixel_mm[view] / 2, dx=pixel_mm[view],
                y0=pixel_mm[view] / 2, dy=pixel_mm[view], hoverinfo="skip",
            ), row=1, col=col)
    for name in barred:  # after the image traces, so those keep their numbers
        window = windows.get(name)
        figure.add_trace(colorbar_trace(
            colormaps.get(name, "gray"), window or (0.0, 1.0),
            colorbar_title(name, units, window), visible=name == names[0], length=0.9))

    # Cross-hairs: in each view, one line per other view at that view's current slice.
    lines: list[dict[str, Any]] = []
    line_of: dict[tuple[str, str], int] = {}  # (shown in view, slice of view) -> shape index
    for col, view in enumerate(VIEWS, start=1):
        width_mm, height_mm = size_mm[view]
        axis_ref = "" if col == 1 else str(col)
        for other in VIEWS:
            if other == view:
                continue
            normal = NORMAL_AXIS[other]
            where = _screen_mm(indices[other][starts[other]], normal, shape, spacing)
            line_of[view, other] = len(lines)
            if normal == _COLUMN_AXIS[view]:  # a vertical line
                lines.append(dict(type="line", x0=where, x1=where, y0=0, y1=height_mm,
                                  xref=f"x{axis_ref}", yref=f"y{axis_ref}", line=_CROSSHAIR))
            else:
                lines.append(dict(type="line", x0=0, x1=width_mm, y0=where, y1=where,
                                  xref=f"x{axis_ref}", yref=f"y{axis_ref}", line=_CROSSHAIR))

    sliders = []
    for number, view in enumerate(VIEWS):
        traces = [trace_of[view, name] for name in names]
        normal = NORMAL_AXIS[view]
        steps = []
        for k, index in enumerate(indices[view]):
            where = _screen_mm(index, normal, shape, spacing)
            moved: dict[str, float] = {}
            for shown_in in VIEWS:
                if shown_in == view:
                    continue
                line = lines[line_of[shown_in, view]]
                ends = ("x0", "x1") if line["x0"] == line["x1"] else ("y0", "y1")
                for end in ends:
                    moved[f"shapes[{line_of[shown_in, view]}].{end}"] = where
            steps.append(dict(
                label=str(int(labels[view][0][index])), method="update",
                args=[{"source": [sources[view, name][k] for name in names]}, moved, traces],
            ))
        sliders.append(dict(
            active=starts[view], x=number / 3, len=1 / 3 - 0.02, y=0, yanchor="top",
            pad=dict(t=8), ticklen=0, font=dict(size=8), transition=dict(duration=0),
            currentvalue=dict(prefix=f"{view} ", suffix=f"/{labels[view][1]}",
                              xanchor="left", font=dict(size=11)),
            steps=steps,
        ))

    prefix = f"{title} — " if title else ""
    menu = volume_menu(names, prefix, y=1.08, traces_per_volume=len(VIEWS),
                       bar_owners=barred)
    annotations = list(figure.layout.annotations)  # the subplot titles
    for col, view in enumerate(VIEWS, start=1):
        width_mm, height_mm = size_mm[view]
        ref = "" if col == 1 else str(col)
        annotations += orientation_letters(view, width_mm, height_mm, inset=0.04, size=12,
                                           xref=f"x{ref}", yref=f"y{ref}")
        figure.update_xaxes(visible=False, range=[0, width_mm], constrain="domain",
                            row=1, col=col)
        figure.update_yaxes(visible=False, range=[height_mm, 0], constrain="domain",
                            scaleanchor=f"x{ref}", row=1, col=col)
    figure.update_layout(
        title=title_layout(prefix + names[0], pad=10),
        height=height, margin=dict(l=10, r=110 if barred else 10, t=110, b=70),
        paper_bgcolor="white", plot_bgcolor="black", showlegend=False,
        updatemenus=[menu], sliders=sliders, shapes=lines, annotations=annotations,
        meta=dict(names=names, slices={view: [int(i) for i in indices[view]]
                                       for view in VIEWS},
                  slice_numbers={view: [int(labels[view][0][i]) for i in indices[view]]
                                 for view in VIEWS},
                  n_slices_total={view: labels[view][1] for view in VIEWS},
                  colorbars=barred,
                  pixel_mm={view: float(pixel_mm[view]) for view in VIEWS}),
    )
    return figure


def static_orthogonal(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | tuple[float, float, float],
    *,
    title: str = "",
    windows: Mapping[str, tuple[float, float]] | None = None,
    colormaps: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> matplotlib.figure.Figure:
    """The static fallback: one row per volume, its centre axial, coronal, sagittal slices.

    Parameters
    ----------
    volumes, spacing, title, windows, colormaps, units
        As for :func:`orthogonal_browser` (colour bars beside their rows).

    Returns
    -------
    matplotlib.figure.Figure
        A figure not yet shown.
    """
    import matplotlib.pyplot as plt

    spacing = np.asarray(spacing, dtype=float)
    colormaps, units, windows = dict(colormaps or {}), dict(units or {}), dict(windows or {})
    shown = display_images(volumes, windows=windows)
    shape = next(iter(shown.values())).shape
    barred = colorbar_volumes(list(shown), colormaps, units)
    widths = [shape[a] * spacing[a] for a in (0, 0, 1)]
    # Colour bars get a narrow column of their own, so rows with and without one align.
    figure, grid = plt.subplots(
        len(shown), 3 + bool(barred), squeeze=False, constrained_layout=True,
        figsize=(9.0 + (1.0 if barred else 0.0), 2.6 * len(shown) + 0.6),
        gridspec_kw=dict(width_ratios=widths + [0.03 * sum(widths)] * bool(barred)),
    )
    axes = grid[:, :3]
    for row, (name, volume) in enumerate(shown.items()):
        for col, view in enumerate(VIEWS):
            image, extent = orthogonal_slice(volume, spacing, view)
            ax = axes[row, col]
            draw_static_slice(ax, image, extent, view, cmap=colormaps.get(name, "gray"),
                              inset=(0.04, 0.05))
            if row == 0:
                ax.set_title(view, fontsize=9)
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
        row_colorbar(figure, grid[row, -1], name, barred, windows=windows,
                     colormaps=colormaps, units=units)
    suffix = ("centre slices, radiological view: patient's right on the viewer's left; "
              "sagittal: anterior on the left")
    figure.suptitle(f"{title}\n{suffix}" if title else suffix)
    return figure


def show_orthogonal_browser(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | tuple[float, float, float],
    *,
    title: str = "",
    page: PlotlyPage | None = None,
    **options: Any,
) -> None:
    """Display an :func:`orthogonal_browser` with its :func:`static_orthogonal` fallback.

    Parameters
    ----------
    volumes, spacing, title
        As for :func:`orthogonal_browser`.
    page
        See :func:`breastlib.viz.interactive.interactive_html`.
    **options
        Further keywords for :func:`orthogonal_browser`; ``windows``, ``colormaps`` and
        ``units`` go to the fallback too.
    """
    figure = orthogonal_browser(volumes, spacing, title=title, **options)
    fallback = static_orthogonal(volumes, spacing, title=title,
                                 windows=options.get("windows"),
                                 colormaps=options.get("colormaps"),
                                 units=options.get("units"))
    show_interactive(figure, fallback, page=page)
