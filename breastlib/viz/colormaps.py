"""Colour look-up tables for pictures drawn without matplotlib.

The QC picture of ``breastlib register`` is drawn with Pillow alone, so that a registration
does not pay for matplotlib's import. Its colour maps are the ones matplotlib calls
``gray``, ``RdBu_r`` and ``PiYG``: the diverging ones are ColorBrewer's 11-class schemes
(Cynthia Brewer, colorbrewer2.org), interpolated linearly between equally spaced anchors
into 256 entries, which is how matplotlib builds them; the tests compare every entry with
matplotlib's.
"""

from __future__ import annotations

import numpy as np

#: Number of entries of every table.
LUT_SIZE = 256

# ColorBrewer's 11-class diverging schemes, from their first to their last class (RGB 0-255).
_ANCHORS = {
    "RdBu": ((103, 0, 31), (178, 24, 43), (214, 96, 77), (244, 165, 130), (253, 219, 199),
             (247, 247, 247), (209, 229, 240), (146, 197, 222), (67, 147, 195),
             (33, 102, 172), (5, 48, 97)),
    "PiYG": ((142, 1, 82), (197, 27, 125), (222, 119, 174), (241, 182, 218), (253, 224, 239),
             (247, 247, 247), (230, 245, 208), (184, 225, 134), (127, 188, 65), (77, 146, 33),
             (39, 100, 25)),
    "gray": ((0, 0, 0), (255, 255, 255)),
}


def colour_table(name: str) -> np.ndarray:
    """``(256, 3)`` uint8 RGB table of a colour map: ``gray``, ``RdBu``, ``PiYG``, or any of
    them with ``_r`` for the reversed map.

    Raises
    ------
    ValueError
        For another name.
    """
    base, reversed_ = (name[:-2], True) if name.endswith("_r") else (name, False)
    if base not in _ANCHORS:
        raise ValueError(f"unknown colour map {name!r}: choose from "
                         f"{', '.join(sorted(_ANCHORS))} (or with '_r')")
    anchors = np.asarray(_ANCHORS[base], dtype=float)
    if reversed_:
        anchors = anchors[::-1]
    where = np.linspace(0.0, 1.0, LUT_SIZE)
    knots = np.linspace(0.0, 1.0, len(anchors))
    table = np.stack([np.interp(where, knots, anchors[:, c]) for c in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


def apply_colour_table(values: np.ndarray, table: np.ndarray, vmin: float,
                       vmax: float) -> np.ndarray:
    """``(..., 3)`` uint8 RGB of ``values`` through ``table``: ``vmin`` maps to the first
    entry, ``vmax`` to the last, values outside are clipped and NaN is drawn as ``vmin``
    (matplotlib's ``Normalize`` followed by its look-up: ``floor(x * 256)``, 1 at the top)."""
    scaled = (np.nan_to_num(np.asarray(values, dtype=np.float64), nan=vmin) - vmin) / (
        vmax - vmin)
    index = np.clip(np.floor(scaled * len(table)), 0, len(table) - 1).astype(np.intp)
    return table[index]
