"""Figures that explain themselves: colour bars with units on every colour-mapped view,
orientation letters that read on any colour map, sliders counting the volume's own slices,
and a results heatmap whose numbers and labels are legible."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from breastlib.viz._plotly import JACOBIAN_UNITS, LETTER_BOX, slice_labels, wrap_label
from breastlib.viz.qc import DIFFERENCE_UNITS, qc_picture

DIFF_UNITS = "|fixed - warped|: intensity, 0-255 scale of the normalised images"


@pytest.fixture
def volumes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"fixed": rng.random((10, 8, 6)) * 255, "|fixed - warped|": rng.random((10, 8, 6)) * 128,
            "Jacobian determinant": 1 + 0.5 * rng.standard_normal((10, 8, 6))}


@pytest.fixture
def options() -> dict:
    return dict(windows={"fixed": (0, 255), "|fixed - warped|": (0, 128),
                         "Jacobian determinant": (0, 2)},
                colormaps={"|fixed - warped|": "magma", "Jacobian determinant": "PiYG"},
                units={"|fixed - warped|": DIFF_UNITS})


def test_slice_labels_count_the_original_volume():
    labels, total = slice_labels(3, None, None)
    assert labels.tolist() == [1, 2, 3] and total == 3
    labels, total = slice_labels(3, np.array([0, 30, 63]), 64)
    assert labels.tolist() == [1, 31, 64] and total == 64
    for numbers, n_total, match in (([0, 30], 64, "one index per slice"),
                                    ([0, 30, 63], None, "n_slices_total"),
                                    ([0, 30, 64], 64, "increase"), ([5, 3, 9], 64, "increase")):
        with pytest.raises(ValueError, match=match):
            slice_labels(3, numbers, n_total)
    with pytest.raises(ValueError, match="without slice_numbers"):
        slice_labels(3, None, 64)


def test_wrapped_labels_keep_equations_whole():
    assert "1 = volume kept" in wrap_label(JACOBIAN_UNITS, 34)
    assert all(len(line) <= 34 for line in wrap_label(JACOBIAN_UNITS, 34).splitlines())


def test_slice_browser_colour_bars_letters_and_slice_numbers(volumes, options):
    pytest.importorskip("plotly")
    from breastlib.viz.interactive import slice_browser, static_slices

    numbers = np.array([0, 10, 21, 31, 42, 63])
    figure = slice_browser(volumes, (1, 1, 10), slice_numbers=numbers, n_slices_total=64,
                           **options)
    # Three images, then one colour bar per colour-mapped volume, shown with it alone.
    assert len(figure.data) == 5 and figure.layout.meta["colorbars"] == [
        "|fixed - warped|", "Jacobian determinant"]
    bars = figure.data[3:]
    assert [bar.marker.colorbar.title.text for bar in bars] == [DIFF_UNITS, JACOBIAN_UNITS]
    assert (bars[0].marker.cmin, bars[0].marker.cmax) == (0, 128)
    assert (bars[1].marker.cmin, bars[1].marker.cmax) == (0, 2)  # centred at 1
    assert [bar.visible for bar in bars] == [False, False]  # "fixed" is shown first
    menu = figure.layout.updatemenus[0]
    assert menu.buttons[2].args[0]["visible"] == [False, False, True, False, True]
    assert menu.buttons[0].args[0]["visible"] == [True, False, False, False, False]
    slider = figure.layout.sliders[0]
    for step in slider.steps:  # the slider restyles the three images, never the bars
        assert list(step.args[1]) == [0, 1, 2] and len(step.args[0]["source"]) == 3
    # The slider counts the original volume's slices.
    assert [s.label for s in slider.steps] == ["1", "11", "22", "32", "43", "64"]
    assert slider.currentvalue.suffix == " of 64"
    assert figure.layout.meta["n_slices_total"] == 64
    letters = [a for a in figure.layout.annotations if len(a.text) == 1]
    assert len(letters) == 4 and all(a.bgcolor == LETTER_BOX for a in letters)

    fallback = static_slices(volumes, (1, 1, 10), n_slices=2, slice_numbers=numbers,
                             n_slices_total=64, **options)
    assert fallback.axes[0].get_title() == "axial slice 22 of 64"
    bar_labels = [ax.get_ylabel().replace("\n", " ") for ax in fallback.axes
                  if ax.get_ylabel() and ax.get_label() == "<colorbar>"]
    assert bar_labels == [DIFF_UNITS, JACOBIAN_UNITS]
    effects = [t.get_path_effects() for t in fallback.axes[0].texts]
    assert len(effects) == 4 and all(effects)  # outlined letters
    plt.close(fallback)


def test_grey_volumes_named_in_units_get_a_bar_and_unknown_names_fail(volumes):
    pytest.importorskip("plotly")
    from breastlib.viz.interactive import slice_browser

    figure = slice_browser(volumes, (1, 1, 1), units={"fixed": "T1 (a.u.)"})
    assert len(figure.data) == 4
    assert figure.data[3].marker.colorbar.title.text == "T1 (a.u.) (normalised 0-1)"
    figure = slice_browser(volumes, (1, 1, 1))  # no colour map, no bar
    assert len(figure.data) == 3 and figure.layout.margin.r == 10
    with pytest.raises(ValueError, match="units name volumes"):
        slice_browser(volumes, (1, 1, 1), units={"other": "mm"})


def test_orthogonal_browser_colour_bars_and_axial_numbers(volumes, options):
    pytest.importorskip("plotly")
    from breastlib.viz.orthogonal import orthogonal_browser, static_orthogonal

    figure = orthogonal_browser(volumes, (1, 1, 10), slice_numbers=[0, 10, 21, 31, 42, 63],
                                n_slices_total=64, **options)
    assert len(figure.data) == 9 + 2
    assert figure.data[9].marker.colorbar.title.text == DIFF_UNITS
    menu = figure.layout.updatemenus[0]
    assert menu.buttons[2].args[0]["visible"] == [False] * 6 + [True] * 3 + [False, True]
    axial, coronal = figure.layout.sliders[:2]
    assert axial.steps[-1].label == "64" and axial.currentvalue.suffix == "/64"
    assert coronal.steps[-1].label == "8" and coronal.currentvalue.suffix == "/8"
    fallback = static_orthogonal(volumes, (1, 1, 10), **options)
    labels = [ax.get_ylabel().replace("\n", " ") for ax in fallback.axes
              if ax.get_label() == "<colorbar>"]
    assert labels == [DIFF_UNITS, JACOBIAN_UNITS]
    plt.close(fallback)


def test_qc_picture_bars_have_units_and_the_colour_maps_ends():
    rng = np.random.default_rng(1)
    volume = rng.random((8, 8, 6))
    picture = qc_picture(volume, volume, np.ones((8, 8, 6)), np.ones(3))
    assert [label for _, label in picture.colour_bars.values()] == [DIFFERENCE_UNITS,
                                                                   JACOBIAN_UNITS]
    drawn = " ".join(text for text, _ in picture.texts)
    for label in (DIFFERENCE_UNITS, JACOBIAN_UNITS):
        assert " ".join(label.split()) in " ".join(drawn.split())  # wrapped, all there
    pixels = np.asarray(picture.image)
    (left, top, right, bottom), _ = picture.colour_bars["fixed - warped"]
    middle = (top + bottom) // 2
    # RdBu reversed: blue at -0.5 (left), red at +0.5 (right).
    assert tuple(pixels[middle, left]) == (5, 48, 97)
    assert tuple(pixels[middle, right - 1]) == (103, 0, 31)
    assert len(picture.panels) == 15
    # Identical images: the difference panels are the colour map's centre, near white,
    # and the Jacobian panels (all 1) the PiYG centre.
    for (view, name), (x0, y0, x1, y1) in picture.panels.items():
        if name in ("fixed - warped", "Jacobian det."):
            inner = pixels[y0 + (y1 - y0) // 4:y1 - (y1 - y0) // 4,
                           x0 + (x1 - x0) // 4:x1 - (x1 - x0) // 4]  # the letters: outside
            assert np.all(inner >= 240), (view, name)


def test_rank_heatmap_is_legible():
    from breastlib.booktools.figures import rank_heatmaps

    rows = [dict(task=task, pair_id="p0", method=method, field_error_mean_mm=error,
                 tre_mean_after_mm=error, dice_breast=0.9, jac_nonpos_pct=0.0, verdict="ok")
            for task in ("lesion", "longitudinal", "modality", "sequence")
            for method, error in (("elastix", 1.5), ("medclip (random)", 8.5),
                                  ("identity", 9.0))]
    figure = rank_heatmaps(pd.DataFrame(rows))
    assert len(figure.axes) == 4
    width, height = figure.get_size_inches()
    assert width <= 10.5 and height <= 10  # shown near its own size on a page
    for ax in figure.axes:
        assert min(t.get_fontsize() for t in ax.texts) >= 9
        assert [t.get_text() for t in ax.get_xticklabels()] == [
            "lesion", "longitudinal", "modality", "sequence"]
        assert all(t.get_rotation() == 30 for t in ax.get_xticklabels())  # never run together
    # Method names once per row of panels.
    assert [len([t for t in ax.get_yticklabels() if t.get_text()]) for ax in figure.axes] == [
        3, 0, 3, 0]
    plt.close(figure)
