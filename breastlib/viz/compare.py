"""Every method side by side: a kernel-free comparison grid for static pages.

One panel per method at the same axial slice, the fixed image always first. One slider
moves every panel (it restyles the ``source`` of every image trace), and four buttons
switch every method panel between views of the registration:

- ``warped``: the moving image warped onto the fixed grid;
- ``difference``: ``|fixed - warped|`` (magma, 0 to half the display range);
- ``checkerboard``: 20 mm squares alternating fixed and warped, so that edges that do not
  line up show as steps;
- ``jacobian``: the Jacobian determinant of the estimated field (PiYG, 0 to 2: pink is
  compression, green expansion, 0 and below folding).

Images are small JPEG ``data:`` URIs in radiological convention (patient's right on the
viewer's left) with square millimetre pixels, as in :mod:`breastlib.viz.interactive`; the
number of slices kept is the largest that fits a page-size budget. The panels' axes are
linked, so zooming or panning one (drag a box, double-click to reset) does the same to
all; the difference and Jacobian views carry a colour bar in their unit. Each figure comes
with a static matplotlib fallback (every panel at one slice) for readers without JavaScript.
The same views are drawn by the live grid of :mod:`breastlib.viz.live_compare`.

plotly is imported lazily: it belongs to the ``book`` extra, not to the core library.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from breastlib.viz._plotly import (
    JACOBIAN_UNITS,
    PlotlyPage,
    check_spacing,
    colorbar_trace,
    draw_static_slice,
    encoded_slices,
    kernel_page,
    orientation_letters,
    scale_bar_mm,
    title_layout,
    wrap_label,
)
from breastlib.viz.interactive import slice_indices
from breastlib.viz.slices import orthogonal_slice

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import plotly.graph_objects as go

__all__ = [
    "CLASS_NAME",
    "NOT_REGISTERED",
    "PAGE_BUDGET_BYTES",
    "VIEWS",
    "VIEW_TITLES",
    "VIEW_UNITS",
    "checkerboard_mask",
    "comparison_grid",
    "comparison_grid_html",
    "display_values",
    "show_comparison_grid",
    "static_comparison_grid",
    "view_volume",
]

#: The views every method panel switches between, in button order.
VIEWS = ("warped", "difference", "checkerboard", "jacobian")
#: What each view is called on its button and in the title.
VIEW_TITLES = {
    "warped": "warped moving",
    "difference": "|fixed - warped|",
    "checkerboard": "checkerboard fixed / warped",
    "jacobian": "Jacobian determinant",
}
#: Colour map of each view (``None``: greyscale).
VIEW_COLORMAPS: dict[str, str | None] = {
    "warped": None, "difference": "magma", "checkerboard": None, "jacobian": "PiYG",
}
#: Colour-bar title (quantity and unit) of each colour-mapped view.
VIEW_UNITS = {
    "difference": "|fixed - warped| (normalised intensity: each image 0-1)",
    "jacobian": JACOBIAN_UNITS,
}
#: Most bytes the interactive figure may add to a page (its HTML without plotly.js).
PAGE_BUDGET_BYTES = 1_500_000
#: Class of the ``div`` wrapping the grid in a page (what the browser tests look for).
CLASS_NAME = "breastlib-comparison-grid"
#: Side of the checkerboard squares in mm (as in the live explorer's overlay).
CHECKER_MM = 20.0
#: ``|fixed - warped|`` is shown from 0 to this fraction of the display range.
DIFFERENCE_MAX = 0.5
#: The Jacobian determinant is shown from 0 to this value (1: no volume change).
JACOBIAN_MAX = 2.0
#: Panel title of the identity method: its "warped" image is the moving image as it came.
NOT_REGISTERED = "no registration (moving)"
_FIXED = "fixed"


def display_values(volume: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] as float32: uint8 arrays are divided by 255, others are
    clipped to [0, 1] (they are expected to be display values already)."""
    volume = np.asarray(volume)
    if volume.dtype == np.uint8:
        return volume.astype(np.float32) / 255.0
    return np.clip(volume.astype(np.float32), 0.0, 1.0)


def checkerboard_mask(shape: tuple[int, int, int], spacing: np.ndarray) -> np.ndarray:
    """``(X, Y, 1)`` bool: ``True`` on the squares (``CHECKER_MM`` a side, in the axial
    plane) that show the fixed image."""
    x = (np.arange(shape[0]) * spacing[0] // CHECKER_MM).astype(int)
    y = (np.arange(shape[1]) * spacing[1] // CHECKER_MM).astype(int)
    return ((x[:, None] + y[None, :]) % 2 == 0)[:, :, None]


def view_volume(
    view: str,
    fixed: np.ndarray,
    warped: np.ndarray,
    spacing: np.ndarray | Sequence[float],
    jacobian: np.ndarray | None = None,
) -> np.ndarray:
    """One view of a registration as display values, to draw with ``VIEW_COLORMAPS[view]``.

    Parameters
    ----------
    view
        One of :data:`VIEWS`.
    fixed, warped
        ``(X, Y, Z)`` display values in [0, 1] (see :func:`display_values`).
    spacing
        ``(3,)`` voxel size in mm (the checkerboard squares are in mm).
    jacobian
        ``(X, Y, Z)`` Jacobian determinant (no unit); needed by the ``jacobian`` view.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` float32 in [0, 1]: the warped image, ``|fixed - warped|`` over
        :data:`DIFFERENCE_MAX`, the checkerboard, or the determinant over
        :data:`JACOBIAN_MAX` (clipped).
    """
    if view == "warped":
        return warped.astype(np.float32, copy=False)
    if view == "difference":
        return np.clip(np.abs(fixed - warped) / DIFFERENCE_MAX, 0.0, 1.0).astype(np.float32)
    if view == "checkerboard":
        mask = checkerboard_mask(fixed.shape, check_spacing(spacing))
        return np.where(mask, fixed, warped).astype(np.float32)
    if view == "jacobian":
        if jacobian is None:
            raise ValueError("the jacobian view needs the Jacobian determinant")
        return np.clip(np.asarray(jacobian, dtype=np.float32) / JACOBIAN_MAX, 0.0, 1.0)
    raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


def _check_inputs(
    fixed: np.ndarray, warped: Mapping[str, np.ndarray],
    jacobians: Mapping[str, np.ndarray] | None, slice_numbers: Sequence[int] | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Display values of fixed and warped, and the stack's slice numbers (0-based)."""
    fixed = display_values(fixed)
    if fixed.ndim != 3:
        raise ValueError(f"fixed must be (X, Y, K), got shape {fixed.shape}")
    if not warped:
        raise ValueError("no method to compare")
    if _FIXED in warped:
        raise ValueError(f"{_FIXED!r} names the fixed panel; rename that method")
    shown = {name: display_values(volume) for name, volume in warped.items()}
    volumes = {"fixed": fixed, **shown, **(jacobians or {})}
    bad = sorted(n for n, v in volumes.items() if np.shape(v) != fixed.shape)
    if bad:
        raise ValueError(f"{bad} do not have the fixed image's shape {fixed.shape}")
    if jacobians is not None and set(jacobians) != set(warped):
        raise ValueError("jacobians must name exactly the methods of warped")
    numbers = (np.arange(fixed.shape[2]) if slice_numbers is None
               else np.asarray(slice_numbers, dtype=int))
    if numbers.shape != (fixed.shape[2],):
        raise ValueError(f"slice_numbers must hold {fixed.shape[2]} numbers, got "
                         f"{numbers.shape}")
    return fixed, shown, numbers


def _view_colourbar(view: str) -> go.Scatter:
    """The hidden colour-bar trace of the ``difference`` or ``jacobian`` view, in its
    unit (:data:`VIEW_UNITS`), shown by that view's button."""
    high = JACOBIAN_MAX if view == "jacobian" else DIFFERENCE_MAX
    trace = colorbar_trace(VIEW_COLORMAPS[view] or "gray", (0.0, high), VIEW_UNITS[view],
                           visible=False, length=0.6)
    if view == "jacobian":
        trace.marker.colorbar.update(tickvals=[0, 1, 2], ticktext=["≤0 folded", "1", "≥2"])
    else:
        trace.marker.colorbar.update(tickvals=[0, high / 2, high],
                                     ticktext=["0", f"{high / 2:g}", f"≥{high:g}"])
    return trace


def comparison_grid(
    fixed: np.ndarray,
    warped: Mapping[str, np.ndarray],
    spacing: np.ndarray | Sequence[float],
    *,
    jacobians: Mapping[str, np.ndarray] | None = None,
    slice_numbers: Sequence[int] | None = None,
    n_slices: int | None = None,
    notes: Mapping[str, str] | None = None,
    title: str = "",
    max_slices: int = 24,
    budget_bytes: int = PAGE_BUDGET_BYTES,
    jpeg_quality: int = 60,
    max_pixels: int = 160,
    columns: int = 4,
    panel_height: int = 215,
) -> go.Figure:
    """A kernel-free grid of every method at one axial slice, with one slider and view
    buttons.

    Parameters
    ----------
    fixed
        ``(X, Y, K)`` axial stack of the fixed image, canonical RAS+: uint8 display values
        (0 to 255, as in the study's previews) or floats in [0, 1].
    warped
        Method label (``"sam (random) [W]"``) -> ``(X, Y, K)`` moving image warped by that
        method, same scale; panels follow this order, after the fixed one.
    spacing
        ``(3,)`` voxel size in mm (pixels are resampled to square millimetres).
    jacobians
        Method label -> ``(X, Y, K)`` Jacobian determinant (no unit), for every method of
        ``warped``; ``None`` leaves the ``jacobian`` view out.
    slice_numbers
        0-based index in the whole volume of each of the ``K`` slices (the previews'
        ``slices``); default ``0..K-1``. The slider says ``slice 34 of 64`` in these
        numbers, counted from 1.
    n_slices
        Slices of the whole volume (the ``of 64``); default ``max(slice_numbers) + 1``.
    notes
        Method label -> a short second line of its panel title (for example the dense
        error, ``"2.96 mm"``).
    title
        Figure title; the current view is appended.
    max_slices
        At most this many evenly spaced slices of the stack are kept.
    budget_bytes
        Most bytes the figure may add to a page (its HTML without plotly.js): fewer slices
        are kept until it fits.
    jpeg_quality
        JPEG quality of every image (1 to 95).
    max_pixels
        Longest side of a stored image in pixels.
    columns
        Panels per row.
    panel_height
        Height of one row of panels in CSS pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Image`` trace for the fixed panel, then one per method and view (method
        by method, views in :data:`VIEWS` order), then one invisible colour-bar trace per
        colour view. ``layout.sliders[0]`` restyles the ``source`` of every image trace;
        ``layout.updatemenus[0]`` holds one button per view, toggling ``visible``.
        ``layout.meta`` records ``panels``, ``views``, ``slices`` (0-based, in the
        volume), ``image_traces`` and ``traces`` (``[panel, view]`` of each trace).

    Raises
    ------
    ValueError
        Shapes that differ, no method, a method named ``fixed``, or a budget too small
        for even one slice.
    """
    spacing = check_spacing(spacing)
    fixed, shown, numbers = _check_inputs(fixed, warped, jacobians, slice_numbers)
    views = VIEWS if jacobians is not None else VIEWS[:-1]
    names = list(shown)
    total = int(n_slices) if n_slices is not None else int(numbers.max()) + 1
    notes = dict(notes or {})

    # Every image of every slice, encoded once; then the most slices that fit the budget.
    positions = slice_indices(fixed.shape[2], max_slices)
    stacks: list[tuple[str, str, np.ndarray, str | None]] = [
        (_FIXED, "fixed", fixed, None)]
    for name in names:
        jacobian = None if jacobians is None else jacobians[name]
        for view in views:
            stacks.append((name, view, view_volume(view, fixed, shown[name], spacing,
                                                   jacobian), VIEW_COLORMAPS[view]))
    sources: list[list[str]] = []
    for _, _, volume, colormap in stacks:
        uris, pixel_mm, (width_mm, height_mm) = encoded_slices(
            volume, spacing, "axial", positions, colormap=colormap, image_format="jpeg",
            quality=jpeg_quality, max_pixels=max_pixels)
        sources.append(uris)
    # Bytes of each slice in the page: plotly's JSON writes every "/" as "\\u002f".
    cost = np.array([sum(len(trace[k]) + 5 * trace[k].count("/") for trace in sources)
                     for k in range(len(positions))])
    keep = np.arange(len(positions))
    while True:
        # The page holds each kept slice once (slider steps) and the start slice again.
        if cost[keep].sum() + cost[keep[len(keep) // 2]] <= budget_bytes:
            figure = _assemble(
                traces=[(panel, view) for panel, view, _, _ in stacks],
                sources=[[trace[k] for k in keep] for trace in sources],
                numbers=numbers[positions[keep]], total=total, views=views, names=names,
                notes=notes, title=title, columns=columns, panel_height=panel_height,
                pixel_mm=pixel_mm, size_mm=(width_mm, height_mm))
            size = len(figure.to_html(include_plotlyjs=False, full_html=False))
            if size <= budget_bytes:
                return figure
        if len(keep) == 1:
            raise ValueError(f"one slice of every panel takes {2 * cost[keep].sum()} "
                             f"bytes or more, more than budget_bytes={budget_bytes}")
        keep = np.unique(np.linspace(0, len(positions) - 1, len(keep) - 1).round()
                         .astype(int))


def _assemble(
    *, traces: list[tuple[str, str]], sources: list[list[str]],
    numbers: np.ndarray, total: int, views: Sequence[str], names: list[str],
    notes: Mapping[str, str], title: str, columns: int, panel_height: int, pixel_mm: float,
    size_mm: tuple[float, float],
) -> go.Figure:
    """The figure of :func:`comparison_grid` from its encoded images.

    ``traces`` lists ``(panel, view)`` per image trace;
    ``sources[trace][k]`` is the URI of slice ``k``, whose number (0-based, in the
    volume) is ``numbers[k]``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    width_mm, height_mm = size_mm
    start = len(numbers) // 2
    panels = [_FIXED, *names]
    rows = math.ceil(len(panels) / columns)
    titles = ["<b>fixed</b><br>reference"] + [
        f"<b>{name}</b><br>{notes.get(name, '')}" for name in names]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles,
                           horizontal_spacing=0.02, vertical_spacing=0.1 / rows + 0.02)
    initial = views[0]
    trace_keys = []
    for number, (panel, view) in enumerate(traces):
        place = panels.index(panel)
        figure.add_trace(go.Image(
            source=sources[number][start], name=f"{panel}: {view}",
            visible=view in (initial, "fixed"), hoverinfo="skip",
            x0=pixel_mm / 2, dx=pixel_mm, y0=pixel_mm / 2, dy=pixel_mm,
        ), row=place // columns + 1, col=place % columns + 1)
        trace_keys.append([panel, view])
    image_traces = list(range(len(traces)))
    bar_views = [v for v in ("difference", "jacobian") if v in views]
    for view in bar_views:
        figure.add_trace(_view_colourbar(view), row=1, col=1)
        trace_keys.append(["colour bar", view])

    prefix = f"{title}: " if title else ""
    buttons = [
        dict(label=VIEW_TITLES[view], method="update",
             args=[{"visible": [key[1] in (view, "fixed") for key in trace_keys]},
                   {"title.text": prefix + VIEW_TITLES[view]}])
        for view in views
    ]
    menu = dict(type="buttons", direction="right", active=0, showactive=True, x=0.0,
                xanchor="left", y=1.0, yanchor="bottom", pad=dict(b=44, t=0),
                font=dict(size=12), buttons=buttons)
    slider = dict(
        active=start, pad=dict(t=10), x=0.0, len=1.0, ticklen=0, y=0.0, yanchor="top",
        font=dict(size=9), transition=dict(duration=0),
        currentvalue=dict(prefix="axial slice ", suffix=f" of {total}", xanchor="left"),
        steps=[
            dict(label=str(int(number) + 1), method="restyle",
                 args=[{"source": [trace[k] for trace in sources]}, image_traces])
            for k, number in enumerate(numbers)
        ],
    )
    annotations = list(figure.layout.annotations)
    for annotation in annotations:
        annotation.font = dict(size=11)
    shapes = []
    for place in range(len(panels)):
        suffix = "" if place == 0 else str(place + 1)
        annotations += orientation_letters("axial", width_mm, height_mm, inset=0.03,
                                           size=10, xref=f"x{suffix}", yref=f"y{suffix}")
        # Zooming or panning one panel moves them all (the axes match the first's).
        x_link = {} if place == 0 else {"matches": "x"}
        y_link = {} if place == 0 else {"matches": "y"}
        figure.update_layout({
            f"xaxis{suffix}": dict(visible=False, range=[0, width_mm], constrain="domain",
                                   **x_link),
            f"yaxis{suffix}": dict(visible=False, range=[height_mm, 0], constrain="domain",
                                   scaleanchor=f"x{suffix}", **y_link),
        })
    for place in range(len(panels), rows * columns):  # empty cells of the last row
        suffix = str(place + 1)
        figure.update_layout({f"xaxis{suffix}": dict(visible=False),
                              f"yaxis{suffix}": dict(visible=False)})
    bar = scale_bar_mm(width_mm)
    bar_x, bar_y = 0.05 * width_mm, 0.93 * height_mm
    annotations.append(dict(text=f"{bar} mm", x=bar_x + bar / 2, y=bar_y, yanchor="bottom",
                            showarrow=False, xref="x", yref="y", yshift=3,
                            font=dict(color="white", size=10)))
    shapes.append(dict(type="line", x0=bar_x, x1=bar_x + bar, y0=bar_y, y1=bar_y,
                       xref="x", yref="y", line=dict(color="white", width=3)))
    figure.update_layout(
        title=title_layout(prefix + VIEW_TITLES[initial], pad=10),
        height=rows * panel_height + 210, margin=dict(l=10, r=120, t=130, b=80),
        paper_bgcolor="white", plot_bgcolor="black",
        updatemenus=[menu], sliders=[slider], annotations=annotations, shapes=shapes,
        meta=dict(kind="comparison-grid", panels=panels, views=list(views),
                  slices=[int(n) for n in numbers], n_slices=total,
                  image_traces=image_traces, traces=trace_keys, pixel_mm=float(pixel_mm)),
    )
    return figure


def static_comparison_grid(
    fixed: np.ndarray,
    warped: Mapping[str, np.ndarray],
    spacing: np.ndarray | Sequence[float],
    *,
    jacobians: Mapping[str, np.ndarray] | None = None,
    position: int | None = None,
    slice_numbers: Sequence[int] | None = None,
    n_slices: int | None = None,
    notes: Mapping[str, str] | None = None,
    views: Sequence[str] = ("warped", "difference"),
    title: str = "",
    columns: int = 4,
    panel_inches: float = 2.1,
) -> matplotlib.figure.Figure:
    """Every method at one axial slice, one block of panels per view (matplotlib).

    The static fallback of :func:`comparison_grid`, and the picture of the live grid
    (:mod:`breastlib.viz.live_compare`).

    Parameters
    ----------
    fixed, warped, spacing, jacobians, slice_numbers, n_slices, notes
        As for :func:`comparison_grid`.
    position
        Index into the stack's ``K`` slices; default the middle one.
    views
        Views drawn, one block each (from :data:`VIEWS`; ``jacobian`` needs
        ``jacobians``).
    title
        Figure title.
    columns
        Panels per row.
    panel_inches
        Side of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A figure not yet shown (``display`` it, then close it).
    """
    import matplotlib.pyplot as plt

    spacing = check_spacing(spacing)
    fixed, shown, numbers = _check_inputs(fixed, warped, jacobians, slice_numbers)
    unknown = [v for v in views if v not in VIEWS]
    if unknown or not views:
        raise ValueError(f"views must be among {VIEWS}, got {list(views)}")
    if "jacobian" in views and jacobians is None:
        raise ValueError("the jacobian view needs jacobians")
    depth = fixed.shape[2]
    position = depth // 2 if position is None else int(position)
    if not 0 <= position < depth:
        raise ValueError(f"position {position} is outside 0..{depth - 1}")
    total = int(n_slices) if n_slices is not None else int(numbers.max()) + 1
    notes = dict(notes or {})
    panels = [_FIXED, *shown]
    rows = math.ceil(len(panels) / columns)
    figure = plt.figure(figsize=(panel_inches * columns + 0.4,
                                 (panel_inches + 0.45) * rows * len(views) + 0.7),
                        constrained_layout=True)
    blocks = np.atleast_1d(figure.subfigures(len(views), 1))
    here = slice(position, position + 1)
    for block, view in zip(blocks, views, strict=True):
        axes = block.subplots(rows, columns, squeeze=False)
        block.suptitle(VIEW_TITLES[view], fontsize=11, fontweight="bold")
        for place, ax in enumerate(axes.flat):
            if place >= len(panels):
                ax.set_axis_off()
                continue
            name = panels[place]
            if name == _FIXED:
                volume, cmap, label = fixed[:, :, here], "gray", "fixed\nreference"
            else:
                jacobian = None if jacobians is None else np.asarray(jacobians[name])[:, :, here]
                volume = view_volume(view, fixed[:, :, here], shown[name][:, :, here],
                                     spacing, jacobian)
                cmap = VIEW_COLORMAPS[view] or "gray"
                label = "\n".join(p for p in (textwrap.fill(name, width=28),
                                              notes.get(name, "")) if p)
            image, extent = orthogonal_slice(volume, spacing, "axial", 0)
            draw_static_slice(ax, image, extent, "axial", cmap=cmap, inset=(0.05, 0.05))
            ax.set_title(label, fontsize=8)
        if VIEW_COLORMAPS[view] is not None:  # the bar, in the view's unit
            from matplotlib.cm import ScalarMappable
            from matplotlib.colors import Normalize

            high = JACOBIAN_MAX if view == "jacobian" else DIFFERENCE_MAX
            bar = block.colorbar(ScalarMappable(Normalize(0.0, high), VIEW_COLORMAPS[view]),
                                 ax=axes.ravel().tolist(), shrink=0.7, fraction=0.03)
            bar.set_label(wrap_label(VIEW_UNITS[view], 36), fontsize=8)
            bar.ax.tick_params(labelsize=7)
    suffix = (f"axial slice {int(numbers[position]) + 1} of {total}; radiological view: "
              "patient's right on the viewer's left")
    figure.suptitle(f"{title}\n{suffix}" if title else suffix, fontsize=10)
    return figure


def comparison_grid_html(
    figure: go.Figure, *, include_plotlyjs: bool | None = None,
    page: PlotlyPage | None = None,
) -> str:
    """The figure as a page fragment: the :class:`~breastlib.viz._plotly.PlotlyPage`
    ``div`` wrapped in ``<div class="breastlib-comparison-grid">`` (:data:`CLASS_NAME`).

    ``include_plotlyjs`` and ``page`` as for
    :func:`breastlib.viz.interactive.interactive_html`.
    """
    page = page if page is not None else kernel_page()
    return f'<div class="{CLASS_NAME}">{page.html(figure, include_plotlyjs=include_plotlyjs)}</div>'


def show_comparison_grid(
    fixed: np.ndarray,
    warped: Mapping[str, np.ndarray],
    spacing: np.ndarray | Sequence[float],
    *,
    jacobians: Mapping[str, np.ndarray] | None = None,
    slice_numbers: Sequence[int] | None = None,
    n_slices: int | None = None,
    notes: Mapping[str, str] | None = None,
    title: str = "",
    static_views: Sequence[str] = ("warped", "difference"),
    page: PlotlyPage | None = None,
    **options: Any,
) -> None:
    """Display a :func:`comparison_grid` and its :func:`static_comparison_grid` fallback.

    Returns nothing, so that a notebook cell ending with this call does not display the
    figure a second time through plotly's own renderer; call :func:`comparison_grid` for
    the figure itself. The arguments of
    :func:`breastlib.booktools.compare.comparison_grid_inputs` fit:
    ``show_comparison_grid(**comparison_grid_inputs(manifest, results_dir, table))``.

    Parameters
    ----------
    fixed, warped, spacing, jacobians, slice_numbers, n_slices, notes, title
        As for :func:`comparison_grid`.
    static_views
        Views of the fallback (the middle slice).
    page
        See :func:`breastlib.viz.interactive.interactive_html`.
    **options
        Further keywords for :func:`comparison_grid` (``max_slices``, ``columns``...).
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    common = dict(jacobians=jacobians, slice_numbers=slice_numbers, n_slices=n_slices,
                  notes=notes, title=title)
    figure = comparison_grid(fixed, warped, spacing, **common, **options)
    # The fallback shows the slider's start slice.
    middle = figure.layout.meta["slices"][len(figure.layout.meta["slices"]) // 2]
    numbers = (np.arange(np.shape(fixed)[2]) if slice_numbers is None
               else np.asarray(slice_numbers))
    position = int(np.flatnonzero(numbers == middle)[0])
    fallback = static_comparison_grid(fixed, warped, spacing, position=position,
                                      views=static_views, columns=options.get("columns", 4),
                                      **common)
    display(HTML(comparison_grid_html(figure, page=page)))
    display(fallback)
    plt.close(fallback)
