"""Plumbing shared by the kernel-free plotly browsers and their static fallbacks.

Slices as square-millimetre ``data:`` URIs, orientation letters (boxed or outlined so that
they read on any colour map), colour bars, slice labels, the scale bar, the title and the
volume menu of :mod:`breastlib.viz.interactive` and
:mod:`breastlib.viz.orthogonal`, and :class:`PlotlyPage`, which writes figures into one
HTML page with plotly.js inline at most once (never in the book's static build, whose
pages load the one shared copy in ``_static/``). No state is kept at module level: a
page's state lives in its :class:`PlotlyPage` (the running kernel's one by default).

plotly, PIL and matplotlib are imported lazily, inside the functions that use them.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from breastlib.viz.slices import orthogonal_slice

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes
    import matplotlib.image
    import plotly.graph_objects as go

# Letters at the (left, right, top, bottom) edges of each view, as orthogonal_slice lays
# them out: patient's right on the viewer's left; anterior on the left of sagittal views.
ORIENTATION = {
    "axial": ("R", "L", "A", "P"),
    "coronal": ("R", "L", "S", "I"),
    "sagittal": ("A", "P", "S", "I"),
}
#: Colour of the orientation letters.
LETTER_COLOUR = "#ffd400"
#: Box behind each plotly orientation letter, so it reads on any colour map (a
#: yellow letter alone vanishes on the pale middle of a diverging map).
LETTER_BOX = "rgba(0, 0, 0, 0.6)"
#: Outline (halo) of the matplotlib orientation letters, for the same reason.
LETTER_HALO = "black"
#: Default colour-bar title of a volume whose name says it is a Jacobian determinant.
JACOBIAN_UNITS = "Jacobian determinant (unitless; 1 = volume kept)"
_SCALE_BARS_MM = (5, 10, 20, 50, 100, 200)
#: Attribute of the IPython shell holding the kernel's :class:`PlotlyPage`.
_KERNEL_PAGE = "_breastlib_plotly_page"


def check_spacing(spacing: np.ndarray | Sequence[float]) -> np.ndarray:
    """``(3,)`` float voxel size in mm; raises ``ValueError`` unless three positive numbers."""
    spacing = np.asarray(spacing, dtype=float)
    if spacing.shape != (3,) or np.any(spacing <= 0):
        raise ValueError(f"spacing must be three positive numbers, got {spacing}")
    return spacing


def square_pixels(
    image: np.ndarray, extent: list[float], max_pixels: int
) -> tuple[np.ndarray, float]:
    """Resample a [0, 1] slice to square pixels, top row first.

    Parameters
    ----------
    image, extent
        From :func:`breastlib.viz.slices.orthogonal_slice` (``extent`` in mm).
    max_pixels
        Longest side of the result in pixels.

    Returns
    -------
    picture : numpy.ndarray
        ``(rows, cols)`` uint8 greyscale.
    pixel_mm : float
        Side of one pixel in mm.
    """
    from PIL import Image

    width_mm, height_mm = extent[1], extent[3]
    rows, cols = image.shape
    pixel_mm = min(width_mm / cols, height_mm / rows)
    pixel_mm = max(pixel_mm, max(width_mm, height_mm) / max_pixels)
    size = (max(1, round(width_mm / pixel_mm)), max(1, round(height_mm / pixel_mm)))
    grey = Image.fromarray(np.round(image[::-1] * 255).astype(np.uint8))
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(grey), pixel_mm


def encode_image(image: np.ndarray, colormap: str | None, image_format: str, *,
                 quality: int = 90) -> str:
    """uint8 greyscale -> ``data:`` URI (``"png"`` or ``"jpeg"``, the latter at JPEG
    ``quality``), optionally through a matplotlib colour map."""
    from PIL import Image

    if colormap is None:
        picture = Image.fromarray(image)
    else:
        import matplotlib

        rgb = matplotlib.colormaps[colormap](image / 255.0)[..., :3]
        picture = Image.fromarray(np.round(rgb * 255).astype(np.uint8))
    buffer = io.BytesIO()
    if image_format == "png":
        picture.save(buffer, format="PNG", optimize=True)
    elif image_format == "jpeg":
        picture.save(buffer, format="JPEG", quality=int(quality))
    else:
        raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/{image_format};base64,{encoded}"


def encoded_slices(
    volume: np.ndarray, spacing: np.ndarray, view: str, indices: np.ndarray, *,
    colormap: str | None, image_format: str, max_pixels: int, quality: int = 90,
) -> tuple[list[str], float, tuple[float, float]]:
    """``data:`` URIs of a [0, 1] volume's slices in one view, square mm pixels.

    Parameters
    ----------
    volume
        ``(X, Y, Z)`` display values in [0, 1].
    spacing
        ``(3,)`` voxel size in mm.
    view
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    indices
        Slice indices along the view's normal axis.
    colormap, image_format, quality, max_pixels
        As for :func:`encode_image` and :func:`square_pixels`.

    Returns
    -------
    uris : list of str
        One URI per index.
    pixel_mm : float
        Pixel side in mm.
    size_mm : tuple of float
        The picture's (width, height) in mm.
    """
    uris = []
    pixel_mm, size_mm = 1.0, (0.0, 0.0)
    for index in indices:
        image, extent = orthogonal_slice(volume, spacing, view, int(index))
        picture, pixel_mm = square_pixels(image, extent, max_pixels)
        uris.append(encode_image(picture, colormap, image_format, quality=quality))
        size_mm = (picture.shape[1] * pixel_mm, picture.shape[0] * pixel_mm)
    return uris, pixel_mm, size_mm


def scale_bar_mm(width_mm: float) -> int:
    """The largest round length (mm) that fits in a fifth of the picture's width (mm)."""
    fitting = [b for b in _SCALE_BARS_MM if b <= width_mm / 5]
    return fitting[-1] if fitting else _SCALE_BARS_MM[0]


def orientation_letters(
    view: str, width_mm: float, height_mm: float, *, inset: float, size: int,
    xref: str = "x", yref: str = "y",
) -> list[dict[str, Any]]:
    """Plotly annotations: the four orientation letters of ``view`` at its edges.

    ``inset`` is the letters' distance from the edges as a fraction of the picture
    (``width_mm`` by ``height_mm``); ``size`` the font size in points.
    """
    left, right, top, bottom = ORIENTATION[view]
    # A dark box behind each letter: readable on grey scale and on any colour map.
    letter = dict(showarrow=False, font=dict(color=LETTER_COLOUR, size=size),
                  bgcolor=LETTER_BOX, borderpad=1, xref=xref, yref=yref)
    near, far = inset, 1 - inset
    return [
        dict(text=left, x=near * width_mm, y=height_mm / 2, xanchor="left", **letter),
        dict(text=right, x=far * width_mm, y=height_mm / 2, xanchor="right", **letter),
        dict(text=top, x=width_mm / 2, y=near * height_mm, yanchor="top", **letter),
        dict(text=bottom, x=width_mm / 2, y=far * height_mm, yanchor="bottom", **letter),
    ]


def title_layout(text: str, *, pad: int) -> dict[str, Any]:
    """A centred title on the figure's top line (menus go on the next: no overlap)."""
    return dict(text=text, x=0.5, xanchor="center", yref="container", y=1.0, yanchor="top",
                pad=dict(t=pad))


def volume_menu(
    names: list[str], prefix: str, *, y: float, traces_per_volume: int = 1,
    bar_owners: Sequence[str] = (), **options: Any
) -> dict[str, Any]:
    """A drop-down that shows one volume's traces and names it in the title.

    Parameters
    ----------
    names
        Volume names, in trace order; each volume owns ``traces_per_volume`` consecutive
        traces.
    prefix
        Title text before the volume's name.
    y
        Vertical position of the menu (paper fraction, bottom anchored).
    bar_owners
        The volume owning each colour-bar trace (:func:`colorbar_trace`), in the order
        those traces follow the image traces; a bar is shown with its volume.
    **options
        Further menu properties (``pad``...).
    """
    return dict(
        type="dropdown", direction="down", active=0, showactive=True,
        x=0.0, xanchor="left", y=y, yanchor="bottom", **options,
        buttons=[
            dict(label=name, method="update",
                 args=[{"visible": [other == name for other in names
                                    for _ in range(traces_per_volume)]
                                   + [owner == name for owner in bar_owners]},
                       {"title.text": prefix + name}])
            for name in names
        ],
    )


def colorbar_title(name: str, units: Mapping[str, str], window: tuple[float, float] | None
                   ) -> str:
    """The colour-bar title of volume ``name``: ``units[name]`` when given, a Jacobian's
    default (:data:`JACOBIAN_UNITS`) when the name says Jacobian, else the name itself;
    ``(normalised 0-1)`` is appended when the volume has no window (it is stretched by
    itself, so its values have no unit)."""
    if name in units:
        title = units[name]
    elif "jacobian" in name.lower():
        title = JACOBIAN_UNITS
    else:
        title = name
    return title if window is not None else f"{title} (normalised 0-1)"


def colorbar_volumes(
    names: Sequence[str], colormaps: Mapping[str, str], units: Mapping[str, str]
) -> list[str]:
    """The volumes that get a colour bar: every colour-mapped one and every one named in
    ``units``, in ``names`` order."""
    unknown = set(units) - set(names)
    if unknown:
        raise ValueError(f"units name volumes that are not shown: {sorted(unknown)}")
    return [name for name in names if name in colormaps or name in units]


def plotly_colorscale(colormap: str, n: int = 11) -> list[list[float | str]]:
    """A matplotlib colour map as a plotly colour scale of ``n`` evenly spaced stops."""
    import matplotlib

    cmap = matplotlib.colormaps[colormap]
    stops = np.linspace(0.0, 1.0, n)
    return [[float(t), "rgb({:.0f}, {:.0f}, {:.0f})".format(*(np.asarray(cmap(t)[:3]) * 255))]
            for t in stops]


def colorbar_trace(
    colormap: str, window: tuple[float, float], title: str, *, visible: bool,
    length: float = 0.8,
) -> go.Scatter:
    """An invisible trace that only draws a colour bar, in the right margin.

    ``go.Image`` traces carry no colour bar, so each colour-mapped volume gets one of
    these beside its image traces; the volume menu shows it with its volume.

    Parameters
    ----------
    colormap
        Matplotlib colour map name (``"gray"`` for a grey-scale bar).
    window
        ``(low, high)`` values at the bar's ends, in the volume's unit.
    title
        Quantity and unit, written along the bar.
    visible
        Whether the bar shows initially.
    length
        Length of the bar as a fraction of the plot's height.
    """
    import plotly.graph_objects as go

    low, high = (float(v) for v in window)
    return go.Scatter(
        x=[None], y=[None], mode="markers", visible=visible, showlegend=False,
        hoverinfo="skip", name=title,
        marker=dict(color=[low], colorscale=plotly_colorscale(colormap), cmin=low,
                    cmax=high, showscale=True,
                    colorbar=dict(title=dict(text=title, side="right", font=dict(size=12)),
                                  x=1.0, xanchor="left", xpad=12, len=length,
                                  thickness=14, outlinewidth=0, tickfont=dict(size=11))),
    )


def slice_labels(
    n: int, slice_numbers: Sequence[int] | np.ndarray | None, n_slices_total: int | None
) -> tuple[np.ndarray, int]:
    """The volume's own 1-based slice numbers of an ``n``-slice stack, and their total.

    Parameters
    ----------
    n
        Slices in the stack shown.
    slice_numbers
        ``(n,)`` 0-based index of each shown slice in the original volume (the ``slices``
        array of a preview stack), or ``None`` when the stack is the whole volume.
    n_slices_total
        Slices in the original volume; required with ``slice_numbers``.

    Returns
    -------
    labels : numpy.ndarray
        ``(n,)`` int, 1-based slice numbers in the original volume.
    total : int
        Slices in the original volume.
    """
    if slice_numbers is None:
        if n_slices_total is not None and n_slices_total != n:
            raise ValueError(f"n_slices_total={n_slices_total} without slice_numbers must "
                             f"equal the {n} slices shown")
        return np.arange(1, n + 1), n
    numbers = np.asarray(slice_numbers, dtype=int)
    if numbers.shape != (n,):
        raise ValueError(f"slice_numbers must hold one index per slice ({n}), got shape "
                         f"{numbers.shape}")
    if n_slices_total is None:
        raise ValueError("slice_numbers needs n_slices_total (slices in the whole volume)")
    if numbers.min() < 0 or numbers.max() >= n_slices_total or np.any(np.diff(numbers) <= 0):
        raise ValueError(f"slice_numbers must increase within [0, {n_slices_total - 1}], got "
                         f"{numbers.tolist()}")
    return numbers + 1, int(n_slices_total)


def wrap_label(text: str, width: int) -> str:
    """``text`` wrapped to lines of at most ``width`` characters for a colour-bar label,
    never breaking inside an ``a = b`` group ("1 = volume kept" stays on one line)."""
    import textwrap

    return textwrap.fill(text.replace(" = ", "\u00a0=\u00a0"), width).replace("\u00a0", " ")


def draw_letters(
    ax: matplotlib.axes.Axes, view: str, *, inset: tuple[float, float] = (0.04, 0.05),
    fontsize: float = 8,
) -> None:
    """The four orientation letters of ``view`` at the edges of a matplotlib axes, yellow
    with a black outline so that they read on grey scale and on any colour map;
    ``inset`` = (horizontal, vertical) distance from the edges in fractions of the axes."""
    from matplotlib import patheffects

    left, right, top, bottom = ORIENTATION[view]
    dx, dy = inset
    halo = [patheffects.withStroke(linewidth=2.5, foreground=LETTER_HALO)]
    for text, x, y in ((left, dx, 0.5), (right, 1 - dx, 0.5),
                       (top, 0.5, 1 - dy), (bottom, 0.5, dy)):
        ax.text(x, y, text, transform=ax.transAxes, color=LETTER_COLOUR, fontsize=fontsize,
                fontweight="bold", ha="center", va="center", path_effects=halo)


def static_colorbar(
    figure: Any, cax: Any, colormap: str, window: tuple[float, float], title: str,
    **options: Any
) -> Any:
    """A matplotlib colour bar for display values ``[0, 1]`` that stand for ``window``.

    Parameters
    ----------
    figure
        The matplotlib figure.
    cax
        The (narrow) axes the bar fills.
    colormap
        Matplotlib colour map of those axes.
    window
        ``(low, high)``: the values shown at 0 and 1, in the volume's unit.
    title
        Quantity and unit, the bar's label.
    **options
        Further :meth:`matplotlib.figure.Figure.colorbar` keywords (``shrink``...).

    Returns
    -------
    matplotlib.colorbar.Colorbar
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    mappable = ScalarMappable(norm=Normalize(*window), cmap=colormap)
    bar = figure.colorbar(mappable, cax=cax, **options)
    bar.ax.set_label("<colorbar>")  # as matplotlib names the colour bars it makes itself
    bar.set_label(title, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def draw_static_slice(
    ax: matplotlib.axes.Axes, image: np.ndarray, extent: list[float], view: str, *,
    cmap: str, inset: tuple[float, float],
) -> matplotlib.image.AxesImage:
    """Draw one display slice (values in ``[0, 1]``) on a fallback axes: no ticks,
    orientation letters (:func:`draw_letters`) inset by ``inset`` = (horizontal, vertical)
    fractions of the axes. Returns the image."""
    shown = ax.imshow(image, origin="lower", extent=extent, interpolation="nearest",
                      cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    draw_letters(ax, view, inset=inset)
    return shown


def in_colab() -> bool:
    """Colab sandboxes each output in its own frame, so each needs its own plotly.js."""
    return "google.colab" in sys.modules


@dataclass
class PlotlyPage:
    """The plotly figures written into one HTML page (a notebook run in one kernel).

    Attributes
    ----------
    plotlyjs_embedded
        Whether a fragment written so far carries the plotly.js bundle (never set in
        the book's static build, whose pages load the site's shared copy).
    figures
        Fragments written so far; numbers the next ``div`` id.
    """

    plotlyjs_embedded: bool = False
    figures: int = 0

    def html(self, figure: go.Figure, *, include_plotlyjs: bool | None = None) -> str:
        """A ``<div class="breastlib-interactive">`` fragment for ``figure``.

        ``include_plotlyjs=None`` embeds plotly.js (about 5 MB, inline, never from a CDN)
        in the page's first fragment, and in every fragment on Colab; in the book's
        static build (:func:`breastlib.viz.live.in_static_build`) in none, as the site
        loads one shared copy in the ``<head>`` of every page with an interactive figure
        (``book/_ext/offline_site.py``). The ``div`` ids ``breastlib-plot-0``, ``-1``...
        are deterministic within the page.
        """
        if include_plotlyjs is None:
            from breastlib.viz.live import in_static_build

            include_plotlyjs = not in_static_build() and (
                in_colab() or not self.plotlyjs_embedded)
        self.plotlyjs_embedded = self.plotlyjs_embedded or bool(include_plotlyjs)
        div_id = f"breastlib-plot-{self.figures}"
        self.figures += 1
        body = figure.to_html(
            full_html=False, include_plotlyjs=bool(include_plotlyjs), div_id=div_id,
            include_mathjax=False, config=dict(displaylogo=False, responsive=True),
        )
        return f'<div class="breastlib-interactive">{body}</div>'


def kernel_page() -> PlotlyPage:
    """The :class:`PlotlyPage` of the running IPython kernel (one page per kernel, as a
    book chapter runs in one kernel), kept on its shell; outside IPython a new page."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return PlotlyPage()
    page = getattr(shell, _KERNEL_PAGE, None)
    if not isinstance(page, PlotlyPage):
        page = PlotlyPage()
        setattr(shell, _KERNEL_PAGE, page)
    return page


def row_colorbar(
    figure: Any, cax: Any, name: str, barred: Collection[str], *,
    windows: Mapping[str, tuple[float, float]], colormaps: Mapping[str, str],
    units: Mapping[str, str],
) -> None:
    """The colour bar at the end of ``name``'s row of a static fallback grid: drawn into
    ``cax`` when ``name`` is colour-mapped (in ``barred``), else ``cax`` is left blank
    (when other rows have a bar, so that the columns stay aligned)."""
    if name in barred:
        window = windows.get(name)
        static_colorbar(figure, cax, colormaps.get(name, "gray"), window or (0.0, 1.0),
                        wrap_label(colorbar_title(name, units, window), 30))
    elif barred:
        cax.set_axis_off()
