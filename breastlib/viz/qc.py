"""The QC picture written by ``breastlib register``: readable without Python.

Slices follow the display convention of :mod:`breastlib.viz.slices` (the patient's right
on the viewer's left, anterior at the top of axial views and on the viewer's left of
sagittal views, superior at the top of coronal and sagittal views), every panel carries
outlined orientation letters, and the difference and Jacobian columns a colour bar with
units.

The picture is drawn with Pillow alone (colour tables from :mod:`breastlib.viz.colormaps`):
matplotlib's import and its figure machinery took about 0.8 s on 2 CPU cores, a sixth of
a small pair's whole ``breastlib register``; this takes a tenth of that.
"""

from __future__ import annotations

import functools
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from breastlib._atomic import atomic_path
from breastlib.intensity import normalise_intensity
from breastlib.viz._plotly import (
    JACOBIAN_UNITS,
    LETTER_COLOUR,
    LETTER_HALO,
    ORIENTATION,
    wrap_label,
)
from breastlib.viz.colormaps import apply_colour_table, colour_table
from breastlib.viz.slices import NORMAL_AXIS, VIEWS, orthogonal_slice

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image, ImageFont

#: Colour-bar label of the difference column (the Jacobian column's is the viewers'
#: :data:`~breastlib.viz._plotly.JACOBIAN_UNITS`).
DIFFERENCE_UNITS = "fixed - warped (normalised intensity: each image 0-1)"
#: The five columns: title, colour map, display window, colour-bar label (or none).
COLUMNS: tuple[tuple[str, str, tuple[float, float], str | None], ...] = (
    ("fixed", "gray", (0.0, 1.0), None),
    ("warped moving", "gray", (0.0, 1.0), None),
    ("checkerboard", "gray", (0.0, 1.0), None),
    ("fixed - warped", "RdBu_r", (-0.5, 0.5), DIFFERENCE_UNITS),
    ("Jacobian det.", "PiYG", (0.0, 2.0), JACOBIAN_UNITS),
)
#: Longest side of the largest panel, pixels.
PANEL_PIXELS = 250
#: Second line of the title.
VIEW_NOTE = ("radiological view: patient's right on the viewer's left; anterior up (axial), "
             "on the left (sagittal)")

_GAP = 8  # between panels and around the picture
_LABEL_WIDTH = 38  # the left margin holding each row's rotated two-line label
_BAR_HEIGHT = 12


def checkerboard(a: np.ndarray, b: np.ndarray, *, tile: int = 8,
                 origin: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Interleave two same-shape volumes in ``tile``-voxel 3-D blocks; ``origin`` is the
    voxel index of their first voxel in a larger volume whose blocks they continue (a
    slab cut out of it gets that volume's pattern)."""
    blocks = sum((np.arange(n) + o).reshape([-1 if j == k else 1 for j in range(a.ndim)])
                 // tile for k, (n, o) in enumerate(zip(a.shape, origin, strict=True)))
    return np.where(blocks % 2 == 0, a, b)


@dataclass
class QCPicture:
    """The QC picture and where things are on it.

    Attributes
    ----------
    image
        The RGB picture.
    panels
        ``(view, column title) -> (left, top, right, bottom)`` pixel box of each panel.
    texts
        Every text drawn, with the pixel at its centre, in drawing order (the orientation
        letters, the titles, the row labels, tick labels and colour-bar labels).
    colour_bars
        ``column title -> ((left, top, right, bottom), label)`` of each colour bar.
    """

    image: Image.Image
    panels: dict[tuple[str, str], tuple[int, int, int, int]] = field(default_factory=dict)
    texts: list[tuple[str, tuple[int, int]]] = field(default_factory=list)
    colour_bars: dict[str, tuple[tuple[int, int, int, int], str]] = field(
        default_factory=dict)


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in scalable font at ``size`` pixels (its bitmap font without
    FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # pragma: no cover - Pillow built without FreeType
        return ImageFont.load_default()


def qc_picture(
    fixed: np.ndarray,
    warped: np.ndarray,
    jacobian: np.ndarray,
    spacing: np.ndarray,
    *,
    title: str = "",
    centre: tuple[int, int, int] | None = None,
) -> QCPicture:
    """Fixed, warped, checkerboard, difference and Jacobian in three orthogonal views.

    Parameters
    ----------
    fixed, warped
        ``(X, Y, Z)`` raw intensities on the fixed grid (normalised here for display).
    jacobian
        ``(X, Y, Z)`` Jacobian determinant of the field.
    spacing
        ``(3,)`` voxel size in mm; panels keep the slices' shape in millimetres.
    title
        First line of the picture's title.
    centre
        Voxel through which the three planes pass (grid centre by default).

    Returns
    -------
    QCPicture
        Three rows (axial, coronal, sagittal) by five columns (:data:`COLUMNS`); the
        difference (``-0.5`` to ``0.5`` of the normalised intensities) and the Jacobian (0
        to 2, centred at 1) each with a colour bar under its column.
    """
    from PIL import Image, ImageDraw

    spacing = np.asarray(spacing, dtype=float)
    f = normalise_intensity(fixed)
    w = normalise_intensity(warped)
    centre = centre or tuple(s // 2 for s in fixed.shape)

    slices: dict[str, list[np.ndarray]] = {}
    sizes_mm: dict[str, tuple[float, float]] = {}
    for view in VIEWS:
        axis, index = NORMAL_AXIS[view], centre[NORMAL_AXIS[view]]
        fixed_slice, extent = orthogonal_slice(f, spacing, view, index)
        warped_slice = orthogonal_slice(w, spacing, view, index)[0]
        origin = tuple(index if k == axis else 0 for k in range(3))
        checker = checkerboard(np.take(f, [index], axis=axis), np.take(w, [index], axis=axis),
                               origin=origin)
        checker = orthogonal_slice(checker, spacing, view, 0)[0]
        slices[view] = [fixed_slice, warped_slice, checker, fixed_slice - warped_slice,
                        orthogonal_slice(jacobian, spacing, view, index)[0]]
        sizes_mm[view] = (extent[1], extent[3])
    scale = PANEL_PIXELS / max(max(size) for size in sizes_mm.values())
    sizes = {view: (max(1, round(wide * scale)), max(1, round(high * scale)))
             for view, (wide, high) in sizes_mm.items()}
    column_width = max(size[0] for size in sizes.values())

    title_font, column_font, label_font = _font(15), _font(14), _font(13)
    letter_font, small_font = _font(14), _font(11)
    width = _LABEL_WIDTH + len(COLUMNS) * (column_width + _GAP) + _GAP
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    characters = max(20, int(width / max(probe.textlength("m", font=title_font), 1.0) * 1.6))
    title_lines = [line for text in ([title] if title else []) + [VIEW_NOTE]
                   for line in textwrap.wrap(text, characters)]
    title_height = 20 * len(title_lines)
    top = _GAP + title_height + _GAP + 20
    # Each row's label, turned to read upwards; a row is at least as tall as its label
    # (flat images: the panel is centred in it).
    strips = {}
    for view in VIEWS:
        axis = NORMAL_AXIS[view]
        label = f"{view}\n({centre[axis] + 1} of {fixed.shape[axis]})"
        strip = Image.new("RGB", (max(round(probe.textlength(line, font=label_font))
                                      for line in label.split("\n")) + 6,
                                  _LABEL_WIDTH - 4), "white")
        ImageDraw.Draw(strip).multiline_text(
            (strip.width / 2, strip.height / 2), label, font=label_font, anchor="mm",
            align="center", fill="black", spacing=2)
        strips[view] = label, strip.rotate(90, expand=True)
    panel_tops, y = {}, top
    for view in VIEWS:
        row_height = max(sizes[view][1], strips[view][1].height + 4)
        panel_tops[view] = y + (row_height - sizes[view][1]) // 2
        y += row_height + _GAP
    bar_top = y + 4
    height = bar_top + _BAR_HEIGHT + 18 + 2 * 15 + _GAP

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    picture = QCPicture(image)

    def text(xy: tuple[float, float], content: str, font: object, **style: object) -> None:
        draw.text(xy, content, font=font, anchor="mm", **style)
        picture.texts.append((content, (round(xy[0]), round(xy[1]))))

    for number, line in enumerate(title_lines):
        text((width / 2, _GAP + 10 + 20 * number), line, title_font, fill="black")
    lefts = [_LABEL_WIDTH + _GAP + c * (column_width + _GAP) for c in range(len(COLUMNS))]
    for left, (name, *_rest) in zip(lefts, COLUMNS, strict=True):
        text((left + column_width / 2, top - 11), name, column_font, fill="black")

    tables = {name: colour_table(cmap) for name, cmap, _, _ in COLUMNS}
    for view in VIEWS:
        panel_w, panel_h = sizes[view]
        row_top = panel_tops[view]
        label, strip = strips[view]
        image.paste(strip, (2, round(row_top + panel_h / 2 - strip.height / 2)))
        picture.texts.append((label, (2 + strip.width // 2, round(row_top + panel_h / 2))))
        for left, (name, _cmap, (vmin, vmax), _units), values in zip(
                lefts, COLUMNS, slices[view], strict=True):
            x0 = left + (column_width - panel_w) // 2
            # Slices come with their first row at the bottom (origin="lower"): flip them.
            rgb = apply_colour_table(values[::-1], tables[name], vmin, vmax)
            tile = Image.fromarray(np.ascontiguousarray(rgb), "RGB").resize(
                (panel_w, panel_h), Image.Resampling.NEAREST)
            image.paste(tile, (x0, row_top))
            box = (x0, row_top, x0 + panel_w, row_top + panel_h)
            draw.rectangle((box[0] - 1, box[1] - 1, box[2], box[3]), outline="#555555")
            picture.panels[(view, name)] = box
            left_letter, right_letter, top_letter, bottom_letter = ORIENTATION[view]
            inset_x, inset_y = max(8.0, 0.04 * panel_w), max(8.0, 0.05 * panel_h)
            for letter, xy in ((left_letter, (x0 + inset_x, row_top + panel_h / 2)),
                               (right_letter, (x0 + panel_w - inset_x, row_top + panel_h / 2)),
                               (top_letter, (x0 + panel_w / 2, row_top + inset_y)),
                               (bottom_letter, (x0 + panel_w / 2,
                                                row_top + panel_h - inset_y))):
                text(xy, letter, letter_font, fill=LETTER_COLOUR, stroke_width=2,
                     stroke_fill=LETTER_HALO)

    for left, (name, _cmap, (vmin, vmax), units) in zip(lefts, COLUMNS, strict=True):
        if units is None:
            continue
        bar_left = left + column_width // 10
        bar_width = column_width - 2 * (column_width // 10)
        ramp = np.linspace(vmin, vmax, bar_width)[None, :].repeat(_BAR_HEIGHT, axis=0)
        image.paste(Image.fromarray(apply_colour_table(ramp, tables[name], vmin, vmax), "RGB"),
                    (bar_left, bar_top))
        bar = (bar_left, bar_top, bar_left + bar_width, bar_top + _BAR_HEIGHT)
        draw.rectangle((bar[0] - 1, bar[1] - 1, bar[2], bar[3]), outline="#555555")
        for value, x in ((vmin, bar[0]), ((vmin + vmax) / 2, (bar[0] + bar[2]) / 2),
                         (vmax, bar[2])):
            draw.line((x, bar[3], x, bar[3] + 3), fill="black")
            text((x, bar[3] + 11), f"{value:g}", small_font, fill="black")
        for number, line in enumerate(wrap_label(units, 36).split("\n")):
            text((left + column_width / 2, bar[3] + 27 + 15 * number), line, small_font,
                 fill="black")
        picture.colour_bars[name] = (bar, units)
    return picture


def save_qc(path: str | os.PathLike, picture: QCPicture) -> Path:
    """Save the picture as PNG atomically."""
    with atomic_path(path) as tmp:
        picture.image.save(tmp, format="PNG", compress_level=3)
    return Path(path)
