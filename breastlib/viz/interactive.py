"""Interactive slice browsers for static pages: no kernel, no CDN.

A browser is a plotly figure holding one image trace per volume (method). Every slice of
every volume is a small PNG (or JPEG) encoded once as a ``data:`` URI; the slider swaps
the ``source`` of all traces to the chosen slice and the drop-down menu toggles which
trace is visible, so the two controls are independent and the page needs no Python
behind it. Slices are shown in radiological convention (patient's right on the viewer's
left, anterior up in axial views, superior up otherwise, anterior on the viewer's left in
sagittal views; see :mod:`breastlib.viz.slices`) with square millimetre pixels, boxed
orientation letters, a scale bar and, for colour-mapped volumes, a colour bar with units.
The slider counts the volume's own slices, also when only a subset is stored.

Each interactive figure comes with a static matplotlib fallback (a grid of a few slices)
so a reader without JavaScript, a PDF or a notebook viewer still sees the picture.

plotly is imported lazily: it belongs to the ``book`` extra, not to the core library.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from breastlib.intensity import normalise_intensity
from breastlib.viz._plotly import (
    LETTER_BOX,
    PlotlyPage,
    check_spacing,
    colorbar_title,
    colorbar_trace,
    colorbar_volumes,
    draw_static_slice,
    encoded_slices,
    kernel_page,
    orientation_letters,
    row_colorbar,
    scale_bar_mm,
    slice_labels,
    title_layout,
    volume_menu,
)
from breastlib.viz.slices import NORMAL_AXIS, VIEWS, orthogonal_slice

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import plotly.graph_objects as go

__all__ = [
    "PlotlyPage",
    "display_images",
    "interactive_html",
    "show_interactive",
    "show_slice_browser",
    "slice_browser",
    "slice_indices",
    "static_slices",
]


def slice_indices(n: int, max_slices: int) -> np.ndarray:
    """Evenly spaced slice indices, first and last included, at most ``max_slices``.

    Parameters
    ----------
    n
        Number of slices along the view's normal axis.
    max_slices
        Upper bound on the number of indices returned (at least 1).

    Returns
    -------
    numpy.ndarray
        Sorted unique ``int`` indices in ``[0, n - 1]``.
    """
    if n < 1 or max_slices < 1:
        raise ValueError(f"need n >= 1 and max_slices >= 1, got {n}, {max_slices}")
    count = min(n, max_slices)
    return np.unique(np.linspace(0, n - 1, count).round().astype(int))


def display_images(
    volumes: Mapping[str, np.ndarray],
    *,
    windows: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, np.ndarray]:
    """Map every volume to display values in [0, 1].

    Parameters
    ----------
    volumes
        Name -> ``(X, Y, Z)`` array, all of one shape.
    windows
        Name -> ``(low, high)``: that volume is mapped linearly and clipped, so that
        several volumes share one scale (difference images before and after
        registration, a Jacobian). Volumes not named are normalised one by one with
        :func:`breastlib.intensity.normalise_intensity` (robust percentiles).

    Returns
    -------
    dict of str to numpy.ndarray
        Name -> ``(X, Y, Z)`` float32 in [0, 1].
    """
    if not volumes:
        raise ValueError("no volumes to show")
    windows = dict(windows or {})
    unknown = set(windows) - set(volumes)
    if unknown:
        raise ValueError(f"windows name volumes that are not shown: {sorted(unknown)}")
    shapes = {np.shape(v) for v in volumes.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"volumes must share one (X, Y, Z) shape, got {sorted(shapes)}")
    shown = {}
    for name, volume in volumes.items():
        data = np.asarray(volume, dtype=np.float32)
        if name in windows:
            low, high = (float(v) for v in windows[name])
            if high <= low:
                raise ValueError(f"window for {name!r} must have high > low, got {low, high}")
            shown[name] = np.clip((data - low) / (high - low), 0.0, 1.0)
        else:
            shown[name] = normalise_intensity(data)
    return shown


def slice_browser(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | tuple[float, float, float],
    *,
    view: str = "axial",
    max_slices: int = 24,
    title: str = "",
    windows: Mapping[str, tuple[float, float]] | None = None,
    colormaps: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    slice_numbers: Sequence[int] | np.ndarray | None = None,
    n_slices_total: int | None = None,
    max_pixels: int = 256,
    image_format: str = "png",
    height: int = 560,
) -> go.Figure:
    """A kernel-free slice browser: a slider over slices and a menu over volumes.

    Parameters
    ----------
    volumes
        Name (fixed, moving, a method's warped image, a difference...) -> ``(X, Y, Z)``
        canonical RAS+ array; all on one grid. The first one is shown initially.
    spacing
        ``(3,)`` voxel size in mm (pixels are resampled to square millimetres).
    view
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    max_slices
        At most this many evenly spaced slices (first and last included) are stored,
        which bounds the page size.
    title
        Figure title; the selected volume's name is appended.
    windows
        Name -> ``(low, high)`` display window shared across volumes (see
        :func:`display_images`); others are normalised with
        :func:`breastlib.intensity.normalise_intensity`.
    colormaps
        Name -> matplotlib colour map for that volume (greyscale otherwise).
    units
        Name -> colour-bar title: the quantity and its unit, e.g. ``"|fixed - warped|
        (0-255 normalised intensity)"``. Every colour-mapped volume and every volume named
        here gets a colour bar spanning its window (shown with that volume only); without
        an entry the title is the volume's name (a Jacobian's says unitless, 1 = volume
        kept), followed by ``(normalised 0-1)`` when the volume has no window.
    slice_numbers
        ``(Z,)`` 0-based index of each given slice along the view's normal axis in the
        original volume, when the arrays hold a subset of its slices (the ``slices`` of a
        study preview); the slider then reads "slice 34 of 64" in the original's numbers.
    n_slices_total
        Slices of the original volume along that axis; required with ``slice_numbers``.
    max_pixels
        Longest side of a stored slice in pixels.
    image_format
        ``"png"`` (lossless, default) or ``"jpeg"`` (about five times smaller pages
        for full-resolution volumes).
    height
        Figure height in CSS pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Image`` trace per volume, then one colour-bar trace per volume with a
        colour bar; ``layout.sliders[0]`` restyles the image traces' ``source``,
        ``layout.updatemenus[0]`` toggles ``visible``. ``layout.meta`` records the stored
        slice indices (``slices``, into the given arrays), their 1-based numbers in the
        original volume (``slice_numbers``) and ``n_slices_total``.
    """
    import plotly.graph_objects as go

    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    spacing = check_spacing(spacing)
    colormaps, units, windows = dict(colormaps or {}), dict(units or {}), dict(windows or {})
    shown = display_images(volumes, windows=windows)
    names = list(shown)
    shape = next(iter(shown.values())).shape
    axis = NORMAL_AXIS[view]
    labels, total = slice_labels(shape[axis], slice_numbers, n_slices_total)
    indices = slice_indices(shape[axis], max_slices)
    barred = colorbar_volumes(names, colormaps, units)

    sources: dict[str, list[str]] = {}
    for name in names:
        sources[name], pixel_mm, (width_mm, height_mm) = encoded_slices(
            shown[name], spacing, view, indices, colormap=colormaps.get(name),
            image_format=image_format, max_pixels=max_pixels)
    start = len(indices) // 2

    figure = go.Figure()
    for number, name in enumerate(names):
        figure.add_trace(go.Image(
            source=sources[name][start], name=name, visible=number == 0,
            x0=pixel_mm / 2, dx=pixel_mm, y0=pixel_mm / 2, dy=pixel_mm,
            hoverinfo="skip",
        ))
    for name in barred:
        window = windows.get(name)
        figure.add_trace(colorbar_trace(
            colormaps.get(name, "gray"), window or (0.0, 1.0),
            colorbar_title(name, units, window), visible=name == names[0]))

    prefix = f"{title} — " if title else ""
    menu = volume_menu(names, prefix, y=1.0, bar_owners=barred, pad=dict(b=8))
    image_traces = list(range(len(names)))
    slider = dict(
        active=start, pad=dict(t=24), x=0.0, len=1.0, ticklen=0,
        font=dict(size=9), transition=dict(duration=0),
        currentvalue=dict(prefix=f"{view} slice ", suffix=f" of {total}", xanchor="left",
                          font=dict(size=12)),
        steps=[
            dict(label=str(int(labels[index])), method="restyle",
                 args=[{"source": [sources[name][k] for name in names]}, image_traces])
            for k, index in enumerate(indices)
        ],
    )
    annotations = orientation_letters(view, width_mm, height_mm, inset=0.03, size=15)
    bar = scale_bar_mm(width_mm)
    bar_x, bar_y = 0.05 * width_mm, 0.93 * height_mm
    # Boxed label and a dark outline under the white bar: readable on any colour map.
    annotations.append(dict(text=f"{bar} mm", x=bar_x + bar / 2, y=bar_y - 0.01 * height_mm,
                            yanchor="bottom", showarrow=False, xref="x", yref="y",
                            bgcolor=LETTER_BOX, borderpad=1,
                            font=dict(color="white", size=11)))
    figure.update_layout(
        title=title_layout(prefix + names[0], pad=12),
        # The right margin holds the colour bars (ticks and a title along the bar).
        height=height, margin=dict(l=10, r=110 if barred else 10, t=100, b=10),
        paper_bgcolor="white", plot_bgcolor="black", showlegend=False,
        updatemenus=[menu], sliders=[slider], annotations=annotations,
        shapes=[dict(type="line", x0=bar_x, x1=bar_x + bar, y0=bar_y, y1=bar_y,
                     xref="x", yref="y", line=dict(color=colour, width=width))
                for colour, width in (("black", 6), ("white", 3))],
        meta=dict(view=view, slices=[int(i) for i in indices], names=names,
                  slice_numbers=[int(labels[i]) for i in indices], n_slices_total=total,
                  colorbars=barred, pixel_mm=float(pixel_mm)),
    )
    figure.update_xaxes(visible=False, range=[0, width_mm], constrain="domain")
    figure.update_yaxes(visible=False, range=[height_mm, 0], scaleanchor="x",
                        constrain="domain")
    return figure


def static_slices(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | tuple[float, float, float],
    *,
    view: str = "axial",
    n_slices: int = 4,
    title: str = "",
    windows: Mapping[str, tuple[float, float]] | None = None,
    colormaps: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    slice_numbers: Sequence[int] | np.ndarray | None = None,
    n_slices_total: int | None = None,
) -> matplotlib.figure.Figure:
    """The static fallback of a browser: one row per volume, a few slices per row.

    Parameters
    ----------
    volumes, spacing, view, windows, colormaps, units, slice_numbers, n_slices_total
        As for :func:`slice_browser` (same normalisation, same radiological layout, the
        same colour bars beside their rows, the same slice numbers).
    n_slices
        Number of evenly spaced interior slices per row.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        A figure not yet shown (``plt.show()`` or ``display`` it, then close it).
    """
    import matplotlib.pyplot as plt

    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if n_slices < 1:
        raise ValueError(f"n_slices must be >= 1, got {n_slices}")
    spacing = np.asarray(spacing, dtype=float)
    colormaps, units, windows = dict(colormaps or {}), dict(units or {}), dict(windows or {})
    shown = display_images(volumes, windows=windows)
    n = next(iter(shown.values())).shape[NORMAL_AXIS[view]]
    labels, total = slice_labels(n, slice_numbers, n_slices_total)
    barred = colorbar_volumes(list(shown), colormaps, units)
    # Interior slices: the first and last are often empty borders.
    indices = np.unique(np.linspace(0, n - 1, n_slices + 2).round().astype(int)[1:-1])
    indices = indices if indices.size else np.array([n // 2])
    # Colour bars get a narrow column of their own, so rows with and without one align.
    figure, grid = plt.subplots(
        len(shown), indices.size + bool(barred), squeeze=False, constrained_layout=True,
        figsize=(2.0 * indices.size + 1.6 + (1.0 if barred else 0.0),
                 2.0 * len(shown) + 0.6),
        gridspec_kw=dict(width_ratios=[1.0] * indices.size + [0.08] * bool(barred)),
    )
    axes = grid[:, :indices.size]
    for row, (name, volume) in enumerate(shown.items()):
        for col, index in enumerate(indices):
            image, extent = orthogonal_slice(volume, spacing, view, int(index))
            ax = axes[row, col]
            draw_static_slice(ax, image, extent, view, cmap=colormaps.get(name, "gray"),
                              inset=(0.03, 0.03))
            if row == 0:
                ax.set_title(f"{view} slice {int(labels[index])} of {total}", fontsize=9)
            if col == 0:  # horizontal and wrapped: long method names never overlap rows
                ax.set_ylabel(textwrap.fill(name, width=16), rotation=0, ha="right",
                              va="center", fontsize=8, labelpad=6)
        row_colorbar(figure, grid[row, -1], name, barred, windows=windows,
                     colormaps=colormaps, units=units)
    suffix = "radiological view: patient's right on the viewer's left"
    if view == "sagittal":
        suffix = "sagittal view: anterior on the viewer's left, superior up"
    figure.suptitle(f"{title}\n{suffix}" if title else suffix)
    return figure


def interactive_html(
    figure: go.Figure,
    *,
    include_plotlyjs: bool | None = None,
    page: PlotlyPage | None = None,
) -> str:
    """HTML for a plotly figure; plotly.js never comes from a CDN.

    Parameters
    ----------
    figure
        The figure (for example from :func:`slice_browser`).
    include_plotlyjs
        Embed the plotly.js bundle (about 5 MB) in this output. ``None``: in the book's
        static build never (every page loads the site's one copy from ``_static/``);
        in a live kernel in the first figure of the page, and in every figure on Colab,
        whose outputs do not share scripts.
    page
        The page the fragment goes into, which knows whether plotly.js is already in it
        and numbers the fragments. ``None``: the running IPython kernel's page (a book
        page runs in one kernel, so plotly.js is embedded once per page); outside IPython
        a new page, so the fragment stands alone. Pass one :class:`PlotlyPage` to put
        several fragments in one document from a script.

    Returns
    -------
    str
        A ``<div class="breastlib-interactive">`` fragment with a deterministic id.
    """
    page = page if page is not None else kernel_page()
    return page.html(figure, include_plotlyjs=include_plotlyjs)


def show_interactive(
    figure: go.Figure,
    fallback: matplotlib.figure.Figure | None = None,
    *,
    include_plotlyjs: bool | None = None,
    page: PlotlyPage | None = None,
) -> None:
    """Display an interactive figure and its static fallback in a notebook page.

    The interactive figure is a ``text/html`` output (rendered as is by MyST-NB; see
    :func:`interactive_html` for where plotly.js comes from); the fallback is an
    ordinary matplotlib image output beneath it, which a reader without JavaScript, a PDF
    or a notebook viewer still sees.

    Parameters
    ----------
    figure
        The plotly figure.
    fallback
        A matplotlib figure; it is displayed, then closed.
    include_plotlyjs, page
        See :func:`interactive_html`.
    """
    from IPython.display import HTML, display

    display(HTML(interactive_html(figure, include_plotlyjs=include_plotlyjs, page=page)))
    if fallback is not None:
        import matplotlib.pyplot as plt

        display(fallback)
        plt.close(fallback)


def show_slice_browser(
    volumes: Mapping[str, np.ndarray],
    spacing: np.ndarray | tuple[float, float, float],
    *,
    view: str = "axial",
    title: str = "",
    n_static: int = 4,
    page: PlotlyPage | None = None,
    **options: Any,
) -> None:
    """Build a :func:`slice_browser`, display it with its :func:`static_slices` fallback.

    Returns nothing, so that a notebook cell ending with this call does not display the
    figure a second time through plotly's own renderer (which would load plotly.js from
    a CDN); call :func:`slice_browser` for the figure itself.

    Parameters
    ----------
    volumes, spacing, view, title
        As for :func:`slice_browser`.
    n_static
        Slices per row in the static fallback.
    page
        See :func:`interactive_html`.
    **options
        Further keywords for :func:`slice_browser`; ``windows``, ``colormaps``, ``units``,
        ``slice_numbers`` and ``n_slices_total`` are passed to the fallback too.
    """
    figure = slice_browser(volumes, spacing, view=view, title=title, **options)
    shared = ("windows", "colormaps", "units", "slice_numbers", "n_slices_total")
    fallback = static_slices(
        volumes, spacing, view=view, n_slices=n_static, title=title,
        **{key: options[key] for key in shared if key in options},
    )
    show_interactive(figure, fallback, page=page)
