"""Three-view browser: each slider moves its own view and the cross-hairs in the others."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
pytest.importorskip("plotly")

from breastlib.viz.orthogonal import orthogonal_browser, static_orthogonal

VIEWS = ("axial", "coronal", "sagittal")


@pytest.fixture
def corner_volume() -> np.ndarray:
    """Bright at the patient's right (high x), anterior (high y), superior (high z)."""
    volume = np.zeros((40, 30, 20), dtype=np.float32)
    volume[30:, 22:, 14:] = 1.0
    volume[2:6, 2:6, 2:6] = 0.5
    return volume


def test_every_view_is_radiological(corner_volume, decode_image):
    figure = orthogonal_browser({"v": corner_volume}, (1.0, 1.0, 1.0), image_format="png")
    sliders = figure.layout.sliders
    # Last stored slice of every view cuts through the bright corner.
    pictures = {view: decode_image(sliders[k].steps[-1].args[0]["source"][0])
                for k, view in enumerate(VIEWS)}
    for view in ("axial", "coronal"):  # right on the viewer's left, A or S at the top
        rows, cols = pictures[view].shape
        assert pictures[view][: rows // 4, : cols // 5].mean() > 200, view
        assert pictures[view][-rows // 4:, -cols // 5:].mean() < 30, view
    rows, cols = pictures["sagittal"].shape  # anterior on the left, superior at the top
    assert pictures["sagittal"][: rows // 4, : cols // 5].mean() > 200
    # Square millimetre pixels: a 40 x 30 mm axial plane is 4:3 on screen.
    assert pictures["axial"].shape[1] / pictures["axial"].shape[0] == pytest.approx(4 / 3)


def test_sliders_restyle_their_own_view_and_move_crosshairs():
    rng = np.random.default_rng(0)
    volumes = {name: rng.random((20, 16, 12)) for name in ("fixed", "warped")}
    spacing = (2.0, 2.0, 3.0)
    figure = orthogonal_browser(volumes, spacing, max_slices=6)
    assert len(figure.data) == 6
    assert [t.visible for t in figure.data] == [True] * 3 + [False] * 3
    names = [t.name for t in figure.data]
    assert names[0] == "fixed (axial)" and names[5] == "warped (sagittal)"
    shapes = figure.layout.shapes
    assert len(shapes) == 6  # two cross-hair lines in each view
    for number, view in enumerate(VIEWS):
        slider = figure.layout.sliders[number]
        slices = figure.layout.meta["slices"][view]
        assert len(slider.steps) == len(slices) <= 6
        for step, index in zip(slider.steps, slices, strict=True):
            data, layout, traces = step.args
            assert step.method == "update" and set(data) == {"source"}
            # This view's trace of each volume, and nothing else.
            assert list(traces) == [3 * k + number for k in range(2)]
            # Its slice is marked in both other views, at the voxel centre in mm from the
            # screen edge (axes run against the array axis on screen).
            axis = {"axial": 2, "coronal": 1, "sagittal": 0}[view]
            expected = (np.shape(volumes["fixed"])[axis] - index - 0.5) * spacing[axis]
            assert len(layout) == 4 and all(v == pytest.approx(expected)
                                            for v in layout.values())
            moved = {int(key.split("[")[1].split("]")[0]) for key in layout}
            assert len(moved) == 2
            for line in moved:  # the moved lines are drawn in the other two views
                assert shapes[line].xref != ("x" if number == 0 else f"x{number + 1}")
    menu = figure.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == ["fixed", "warped"]
    assert menu.buttons[1].args[0]["visible"] == [False] * 3 + [True] * 3


def test_bad_spacing_fails_and_fallback_has_three_views_per_volume():
    volume = np.random.default_rng(1).random((10, 8, 6))
    with pytest.raises(ValueError, match="spacing"):
        orthogonal_browser({"v": volume}, (1.0, 0.0, 1.0))
    figure = static_orthogonal({"a": volume, "b": volume}, (1.0, 1.0, 2.0), title="t")
    assert len(figure.axes) == 6
    assert [ax.get_title() for ax in figure.axes[:3]] == list(VIEWS)
    assert figure.axes[3].get_ylabel() == "b"
    matplotlib.pyplot.close(figure)
