"""One display convention for every view function (book/conventions.md, "How slices are
displayed"): the patient's right on the viewer's left (axial, coronal), anterior at the top
of axial views and on the viewer's left of sagittal views, superior at the top of coronal
and sagittal views.

Every test draws a volume whose one bright octant lies at the patient's right (high x),
anterior (high y) and superior (high z) end of a RAS+ grid, and checks that each view puts
it in the top-left quadrant of the screen, and nothing bright in the bottom-right one.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from breastlib.viz import panels
from breastlib.viz._plotly import ORIENTATION
from breastlib.viz.qc import COLUMNS, qc_picture
from breastlib.viz.slices import NORMAL_AXIS, VIEWS, orthogonal_slice

SHAPE = (12, 10, 8)
SPACING = (1.0, 1.5, 2.0)
#: Where the bright octant must land in each view: (left, right, top, bottom) letters.
EXPECTED_LETTERS = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"),
                    "sagittal": ("A", "P", "S", "I")}


@pytest.fixture
def octant() -> np.ndarray:
    """Bright (1) at the right-anterior-superior octant, a faint (0.2) floor elsewhere."""
    volume = np.full(SHAPE, 0.2, dtype=np.float32)
    volume[SHAPE[0] // 2:, SHAPE[1] // 2:, SHAPE[2] // 2:] = 1.0
    return volume


def assert_top_left(screen: np.ndarray, view: str, bright: float, dark: float) -> None:
    """``screen``: the picture as seen, top row first, grey or RGB."""
    if screen.ndim == 3:
        screen = screen[..., :3].mean(axis=-1)
    rows, cols = screen.shape
    top_left = screen[: rows // 2 - rows // 8, : cols // 2 - cols // 8]
    bottom_right = screen[rows // 2 + rows // 8:, cols // 2 + cols // 8:]
    others = (screen[: rows // 2 - rows // 8, cols // 2 + cols // 8:],
              screen[rows // 2 + rows // 8:, : cols // 2 - cols // 8])
    assert top_left.min() >= bright, f"{view}: the marked octant is not at the top left"
    assert bottom_right.max() <= dark, f"{view}: something bright at the bottom right"
    for quadrant in others:
        assert quadrant.max() <= dark, f"{view}: the octant spills into another quadrant"


def screen_of(ax: matplotlib.axes.Axes) -> np.ndarray:
    """The first image of a matplotlib axes as seen (``origin="lower"``: flip rows)."""
    image = ax.images[0]
    assert image.origin == "lower"
    left, right, bottom, top = image.get_extent()
    assert left < right and bottom < top  # no flipped extent undoing the layout
    return np.asarray(image.get_array())[::-1]


def test_the_letters_name_the_convention():
    assert ORIENTATION == EXPECTED_LETTERS


@pytest.mark.parametrize("view", VIEWS)
def test_orthogonal_slice(octant, view):
    image, extent = orthogonal_slice(octant, np.array(SPACING), view, SHAPE[NORMAL_AXIS[view]] - 1)
    assert_top_left(image[::-1], view, bright=1.0, dark=0.2)  # origin="lower" on screen
    across, up = (a for a in range(3) if a != NORMAL_AXIS[view])  # mm extents
    assert extent == [0.0, SHAPE[across] * SPACING[across], 0.0, SHAPE[up] * SPACING[up]]


@pytest.mark.parametrize("view", VIEWS)
def test_panels(octant, view):
    figure, ax = plt.subplots()
    panels.draw_slice(ax, octant, SPACING, view=view, window=(0.0, 1.0), letters=True)
    assert_top_left(screen_of(ax), view, bright=1.0, dark=0.2)
    left, right, top, bottom = EXPECTED_LETTERS[view]
    texts = {t.get_text(): t.get_position() for t in ax.texts}
    assert texts[left][0] < 0.5 < texts[right][0] and texts[bottom][1] < 0.5 < texts[top][1]
    plt.close(figure)
    figure = panels.view_grid({"v": octant}, SPACING, views=(view,), windows={"v": (0, 1)})
    assert_top_left(screen_of(figure.axes[0]), view, bright=1.0, dark=0.2)
    plt.close(figure)


def test_qc_picture(octant):
    """Every panel of the Pillow-drawn QC picture, cut out of the PNG's pixels, shows the
    octant at the top left, with its four orientation letters at the matching edges."""
    picture = qc_picture(octant, octant, np.full(SHAPE, 2.0), np.array(SPACING))
    pixels = np.asarray(picture.image, dtype=float)
    for view in VIEWS:
        for name in ("fixed", "warped moving", "checkerboard"):
            left, top, right, bottom = picture.panels[(view, name)]
            screen = pixels[top:bottom, left:right] / 255
            # Grey panels: the octant is white (1), the floor 0.2 of the window after
            # normalising (0 here: the floor is the image's low percentile).
            inner = screen[3:-3, 3:-3]  # the letters sit near the edges, not in quadrants
            rows, cols = inner.shape[:2]
            assert inner[: rows // 4, : cols // 4].min() >= 0.99, (view, name)
            assert inner[-rows // 4:, -cols // 4:].max() <= 0.01, (view, name)
        left, top, right, bottom = picture.panels[(view, "fixed")]
        across, up = (SHAPE[a] * SPACING[a] for a in range(3) if a != NORMAL_AXIS[view])
        assert (right - left) / (bottom - top) == pytest.approx(across / up, rel=0.1)
    # One set of letters per panel: the last drawn are the Jacobian panel's of the last
    # view; check the placement of each view's first panel through the texts' order.
    texts = [t for t in picture.texts if t[0] in set("RLAPSI")]
    assert len(texts) == 4 * len(VIEWS) * len(COLUMNS)
    for number, view in enumerate(VIEWS):
        left, top, right, bottom = picture.panels[(view, "fixed")]
        placed = dict(texts[4 * len(COLUMNS) * number: 4 * len(COLUMNS) * number + 4])
        west, east, north, south = EXPECTED_LETTERS[view]
        assert left < placed[west][0] < (left + right) / 2 < placed[east][0] < right
        assert top < placed[north][1] < (top + bottom) / 2 < placed[south][1] < bottom


@pytest.mark.parametrize("view", VIEWS)
def test_slice_browser_and_its_fallback(octant, view, decode_image):
    pytest.importorskip("plotly")
    from breastlib.viz.interactive import slice_browser, static_slices

    figure = slice_browser({"v": octant}, SPACING, view=view, image_format="png")
    last = figure.layout.sliders[0].steps[-1].args[0]["source"][0]
    assert_top_left(decode_image(last), view, bright=250, dark=5)
    letters = {a.text: a.x for a in figure.layout.annotations if len(a.text) == 1}
    left, right = EXPECTED_LETTERS[view][:2]
    assert letters[left] < letters[right]
    fallback = static_slices({"v": octant}, SPACING, view=view, n_slices=2)
    assert_top_left(screen_of(fallback.axes[-1]), view, bright=1.0, dark=0.0)
    plt.close(fallback)


def test_orthogonal_browser_and_its_fallback(octant, decode_image):
    pytest.importorskip("plotly")
    from breastlib.viz.orthogonal import orthogonal_browser, static_orthogonal

    figure = orthogonal_browser({"v": octant}, SPACING, image_format="png")
    for number, view in enumerate(VIEWS):
        last = figure.layout.sliders[number].steps[-1].args[0]["source"][0]
        assert_top_left(decode_image(last), view, bright=250, dark=5)
    fallback = static_orthogonal({"v": octant}, SPACING)  # centre slices cut the octant
    for ax, view in zip(fallback.axes, VIEWS, strict=True):
        assert_top_left(screen_of(ax), view, bright=1.0, dark=0.0)
    plt.close(fallback)
