"""Slice browsers: radiological layout, square mm pixels, independent controls, no CDN."""

from __future__ import annotations

import sys
import types

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
pytest.importorskip("plotly")

from breastlib.viz import _plotly
from breastlib.viz.interactive import (
    PlotlyPage,
    display_images,
    interactive_html,
    slice_browser,
    slice_indices,
    static_slices,
)
from breastlib.viz.live import STATIC_BUILD_ENV


@pytest.fixture
def marked_volume() -> np.ndarray:
    """A bright block at the patient's right (high x), anterior (high y), superior."""
    volume = np.zeros((40, 20, 10), dtype=np.float32)
    volume[30:, 14:, 6:] = 1.0
    volume[5:10, 2:5, :] = 0.5  # something at left-posterior so percentiles stay sane
    return volume


def test_slice_indices_are_even_and_keep_both_ends():
    assert slice_indices(5, 24).tolist() == [0, 1, 2, 3, 4]
    picked = slice_indices(100, 24)
    assert picked.size == 24 and picked[0] == 0 and picked[-1] == 99
    assert np.all(np.diff(picked) > 0)
    with pytest.raises(ValueError):
        slice_indices(0, 3)


def test_axial_slices_are_radiological_with_square_mm_pixels(marked_volume, decode_image):
    spacing = (1.0, 2.0, 3.0)  # 40 mm wide (x), 40 mm high (y): square in mm
    figure = slice_browser({"a": marked_volume}, spacing, view="axial", max_slices=10)
    steps = figure.layout.sliders[0].steps
    top_slice = steps[-1].args[0]["source"][0]  # most superior slice: block is there
    image = decode_image(top_slice)
    assert image.shape[0] == image.shape[1]  # square in mm, so square in pixels
    rows, cols = image.shape
    # Patient's right on the viewer's left, anterior at the top (row 0 is the top).
    assert image[: rows // 4, : cols // 4].mean() > 200
    assert image[: rows // 4, -cols // 4:].mean() < 20
    assert image[-rows // 4:, : cols // 4].mean() < 60
    assert figure.layout.meta["pixel_mm"] == pytest.approx(1.0)


def test_sagittal_view_puts_anterior_left_and_superior_up(marked_volume, decode_image):
    figure = slice_browser({"a": marked_volume}, (1.0, 1.0, 1.0), view="sagittal")
    image = decode_image(figure.layout.sliders[0].steps[-1].args[0]["source"][0])
    rows, cols = image.shape
    assert image[: rows // 3, : cols // 4].mean() > 200  # superior-anterior corner
    assert image[-rows // 3:, -cols // 4:].mean() < 20


def test_slider_and_menu_are_independent():
    rng = np.random.default_rng(0)
    volumes = {name: rng.random((12, 10, 30)) for name in ("fixed", "warped", "moving")}
    figure = slice_browser(volumes, (1.0, 1.0, 2.0), max_slices=8, title="t")
    assert len(figure.data) == 3 and [t.visible for t in figure.data] == [True, False, False]
    slider = figure.layout.sliders[0]
    assert len(slider.steps) == 8 and slider.active == 4
    for step in slider.steps:
        # Every step restyles the source of all traces, and nothing about visibility.
        assert step.method == "restyle" and set(step.args[0]) == {"source"}
        assert len(step.args[0]["source"]) == 3
    menu = figure.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == list(volumes)
    for number, button in enumerate(menu.buttons):
        assert set(button.args[0]) == {"visible"}
        assert button.args[0]["visible"] == [k == number for k in range(3)]
        assert button.args[1]["title.text"].endswith(button.label)
    sources = {s for step in slider.steps for s in step.args[0]["source"]}
    assert len(sources) == 24  # every slice of every volume is a distinct picture


def test_windows_share_one_scale_across_volumes():
    small = np.full((4, 4, 4), 0.1)
    large = np.full((4, 4, 4), 0.4)
    large[0, 0, 0] = 0.0
    shown = display_images({"before": large, "after": small},
                           windows={"before": (0, 0.5), "after": (0, 0.5)})
    assert shown["after"].max() == pytest.approx(0.2)
    assert shown["before"].max() == pytest.approx(0.8)
    # Without a window each volume is stretched by itself.
    assert display_images({"before": large})["before"].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not shown"):
        display_images({"a": small}, windows={"b": (0, 1)})
    with pytest.raises(ValueError, match="one"):
        display_images({"a": small, "b": np.zeros((4, 4, 5))})


def test_colormap_gives_rgb_and_bad_arguments_fail(decode_image):
    volume = np.random.default_rng(1).random((8, 8, 4))
    figure = slice_browser({"j": volume}, (1, 1, 1), colormaps={"j": "PiYG"})
    assert decode_image(figure.data[0].source).shape[-1] == 3
    with pytest.raises(ValueError, match="view"):
        slice_browser({"j": volume}, (1, 1, 1), view="oblique")
    with pytest.raises(ValueError, match="spacing"):
        slice_browser({"j": volume}, (1, 1))
    with pytest.raises(ValueError, match="image_format"):
        slice_browser({"j": volume}, (1, 1, 1), image_format="gif")


def test_jpeg_pages_are_smaller_than_png():
    rng = np.random.default_rng(2)
    volume = rng.random((96, 96, 6))
    sizes = {fmt: len(slice_browser({"v": volume}, (1, 1, 1), image_format=fmt).to_json())
             for fmt in ("png", "jpeg")}
    assert sizes["jpeg"] < sizes["png"]


def test_html_embeds_plotlyjs_once_and_never_from_a_cdn(monkeypatch):
    monkeypatch.delenv(STATIC_BUILD_ENV, raising=False)  # a live kernel
    figure = slice_browser({"v": np.ones((6, 6, 3))}, (1, 1, 1))
    page = PlotlyPage()
    first, second = interactive_html(figure, page=page), interactive_html(figure, page=page)
    assert len(first) > 1_000_000 > len(second)  # plotly.js (~5 MB) only in the first
    for html in (first, second):
        assert 'class="breastlib-interactive"' in html
        assert "<script src=" not in html
    assert 'id="breastlib-plot-0"' in first and 'id="breastlib-plot-1"' in second
    # Only the bundle itself names its CDN (the topojson default for maps, unused here).
    assert "cdn.plot.ly" not in second and "require(" not in second
    assert len(interactive_html(figure, include_plotlyjs=True, page=page)) > 1_000_000
    # Outside a kernel and without a page, a fragment stands alone.
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert len(interactive_html(figure)) > 1_000_000
    # Colab isolates each output, so each needs its own copy.
    monkeypatch.setattr(_plotly, "in_colab", lambda: True)
    assert len(interactive_html(figure, page=page)) > 1_000_000


def test_static_book_pages_never_embed_plotlyjs(monkeypatch):
    """The book's static build loads one shared plotly.js (book/_ext/offline_site.py):
    no fragment carries the bundle, not the first, not on Colab, not standing alone."""
    monkeypatch.setenv(STATIC_BUILD_ENV, "1")
    figure = slice_browser({"v": np.ones((6, 6, 3))}, (1, 1, 1))
    page = PlotlyPage()
    first, second = interactive_html(figure, page=page), interactive_html(figure, page=page)
    for html in (first, second):
        assert len(html) < 1_000_000 and "plotly.js v" not in html
        assert 'class="breastlib-interactive"' in html and "Plotly.newPlot" in html
    assert not page.plotlyjs_embedded
    monkeypatch.setattr(_plotly, "in_colab", lambda: True)
    assert len(interactive_html(figure, page=page)) < 1_000_000
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert len(interactive_html(figure)) < 1_000_000
    # Asked for explicitly, the bundle is still embedded.
    assert len(interactive_html(figure, include_plotlyjs=True, page=page)) > 1_000_000


def test_a_kernel_is_one_page(monkeypatch):
    """Without a page, figures go into the running kernel's: plotly.js once per kernel."""
    monkeypatch.delenv(STATIC_BUILD_ENV, raising=False)
    figure = slice_browser({"v": np.ones((6, 6, 3))}, (1, 1, 1))
    shells = [types.SimpleNamespace(), types.SimpleNamespace()]
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: shells[0]))
    first, second = interactive_html(figure), interactive_html(figure)
    assert len(first) > 1_000_000 > len(second)
    assert 'id="breastlib-plot-1"' in second
    shells.reverse()  # another kernel: a new page
    assert len(interactive_html(figure)) > 1_000_000


def test_static_fallback_has_a_row_per_volume():
    volumes = {"a": np.random.default_rng(3).random((10, 12, 20)), "b": np.ones((10, 12, 20))}
    figure = static_slices(volumes, (1.0, 1.0, 2.0), n_slices=3, title="fallback")
    axes = figure.axes
    assert len(axes) == 6
    assert axes[0].get_ylabel() == "a" and axes[3].get_ylabel() == "b"
    assert axes[0].get_title().startswith("axial slice")
    matplotlib.pyplot.close(figure)
