"""Live-kernel explorer: controls recompute on demand, cache, overlays; static-build notes."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
pytest.importorskip("ipywidgets")

from synthetic_volumes import TINY_SHIFTS

from breastlib.errors import MissingDependencyError
from breastlib.evaluate.pair import load_cohort_pair
from breastlib.viz import live
from breastlib.viz.live import (
    OVERLAYS,
    PairRegistration,
    RegistrationExplorer,
    _checkerboard,
    overlay_figure,
    register_cohort_pair,
    show_explorer,
    view_3d,
)


def fake_result(depth: int = 10) -> PairRegistration:
    rng = np.random.default_rng(0)
    shape = (16, 14, depth)
    labels = np.zeros(shape, np.int16)
    labels[3:12, 3:11, 2:8] = 1
    labels[6:9, 6:9, 3:6] = 2
    return PairRegistration(
        fixed=rng.random(shape, dtype=np.float32), warped=rng.random(shape, dtype=np.float32),
        moving=rng.random(shape, dtype=np.float32), fixed_labels=labels,
        warped_labels=np.roll(labels, 1, axis=0), jacobian=np.ones(shape, np.float32),
        spacing=np.array([2.0, 2.0, 3.0]), metrics={"tre_mean_before_mm": 5.0,
                                                     "tre_mean_after_mm": 1.0},
        seconds=1.5, label_names={"fat": 1, "fgt": 2},
    )


def test_static_build_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(live.STATIC_BUILD_ENV, raising=False)
    assert not live.in_static_build()
    monkeypatch.setenv(live.STATIC_BUILD_ENV, "1")
    assert live.in_static_build()


def test_checkerboard_alternates_20_mm_squares():
    a, b = np.zeros((40, 40)), np.ones((40, 40))
    board = _checkerboard(a, b, [0.0, 80.0, 0.0, 80.0])  # 2 mm pixels: 10-pixel squares
    assert board[0, 0] == 0 and board[0, 10] == 1 and board[10, 0] == 1 and board[10, 10] == 0
    assert board[:10, :10].sum() == 0 and board[:10, 10:20].all()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_figure_draws_every_mode(overlay):
    figure = overlay_figure(fake_result(), slice_index=4, overlay=overlay, title="t")
    assert len(figure.axes) == 4
    assert "slice 5 of 10" in figure._suptitle.get_text()
    assert "TRE 5.0 -> 1.0 mm" in figure._suptitle.get_text()
    if overlay == "label contours":  # fixed (cyan) and warped (orange) outlines
        assert len(figure.axes[3].collections) >= 2
    matplotlib.pyplot.close(figure)


def test_overlay_figure_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlay"):
        overlay_figure(fake_result(), overlay="rainbow")
    with pytest.raises(ValueError, match="outside"):
        overlay_figure(fake_result(depth=6), slice_index=6)


def test_register_cohort_pair_measures_the_registration(tiny_cohort):
    pair = load_cohort_pair(tiny_cohort, "tiny_000")
    none = register_cohort_pair(pair, method="identity")
    shift = np.linalg.norm(TINY_SHIFTS["tiny_000"])
    assert none.metrics["tre_mean_before_mm"] == pytest.approx(shift, abs=1e-4)
    assert none.metrics["tre_mean_after_mm"] == pytest.approx(shift, abs=1e-4)
    np.testing.assert_allclose(none.warped, none.moving, atol=1e-5)
    moved = register_cohort_pair(pair, method="affine")
    assert moved.metrics["tre_mean_after_mm"] < 1.0
    assert moved.fixed.shape == moved.warped.shape == moved.warped_labels.shape
    assert moved.label_names["fgt"] == 2


def test_explorer_computes_on_demand_and_caches(tiny_cohort):
    calls = []

    def register(task, pair_id, method, weights):
        calls.append((task, pair_id, method, weights))
        return fake_result(depth=8 if method == "identity" else 12)

    other = tiny_cohort.parent / "copy.csv"
    other.write_text(tiny_cohort.read_text().replace("longitudinal", "sequence"))
    made = []

    def make_sequence_cohort():  # called when the task is first selected
        made.append(True)
        return other

    explorer = RegistrationExplorer({"longitudinal": tiny_cohort, "sequence": make_sequence_cohort},
                                    methods=("identity", "sam"), register=register)
    assert calls == []  # nothing is computed before it is shown
    explorer.refresh()
    assert calls == [("longitudinal", "tiny_000", "identity", "none")]
    assert explorer.slice.max == 8 and explorer.slice.value == 5
    assert len(explorer.output.outputs) == 1  # the figure, as a PNG any front end shows
    assert explorer.output.outputs[0]["data"]["image/png"]
    explorer.method.value = "sam"
    assert calls[-1] == ("longitudinal", "tiny_000", "sam", "random")
    assert explorer.slice.max == 12
    explorer.weights.value = "pretrained"
    assert calls[-1][3] == "pretrained"
    explorer.method.value = "identity"  # seen before: from the cache
    assert len(calls) == 3
    explorer.overlay.value = "difference"  # redraws, never recomputes
    explorer.slice.value = 2
    assert len(calls) == 3 and "computed" in explorer.status.value
    assert made == []
    explorer.task.value = "sequence"
    assert made == [True]
    assert calls[-1] == ("sequence", "tiny_000", "identity", "none")
    assert list(explorer.pair.options) == list(TINY_SHIFTS)
    explorer.pair.value = "tiny_001"
    assert calls[-1][1] == "tiny_001"
    assert explorer.widget.children  # one box holding every control


def test_explorer_reports_a_failed_registration(tiny_cohort):
    def register(*key):
        raise RuntimeError("no weights")

    explorer = RegistrationExplorer({"longitudinal": tiny_cohort}, register=register)
    with pytest.raises(RuntimeError):
        explorer.refresh()
    assert "failed" in explorer.status.value and "no weights" in explorer.status.value


def test_static_build_prints_notes_instead_of_dead_controls(monkeypatch, tiny_cohort, capsys):
    monkeypatch.setenv(live.STATIC_BUILD_ENV, "1")
    assert show_explorer({"longitudinal": tiny_cohort}) is None
    assert view_3d(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), spacing=(1, 1, 1)) is None
    printed = capsys.readouterr().out
    assert "needs a running kernel" in printed and "stand in" in printed


def test_3d_view_names_the_live_extra_when_itkwidgets_is_missing(monkeypatch):
    monkeypatch.delenv(live.STATIC_BUILD_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "itkwidgets", None)  # import fails
    with pytest.raises(MissingDependencyError, match=r"breastlib\[live\]"):
        view_3d(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), spacing=(1, 1, 1))


def test_3d_view_hands_itkwidgets_images_with_geometry(monkeypatch):
    """itkwidgets itself needs a live front end; the images it is given are checked here."""
    import types

    itk = pytest.importorskip("itk")
    monkeypatch.delenv(live.STATIC_BUILD_ENV, raising=False)
    fake = types.ModuleType("itkwidgets")
    fake.compare_images = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "itkwidgets", fake)
    fixed = np.zeros((6, 5, 4), np.float32)
    fixed[5, 0, 0] = 1.0  # the patient's right-most, posterior, inferior corner
    shown = view_3d(fixed, fixed, spacing=(0.7, 0.8, 2.0), method="blend")
    assert shown["method"] == "blend"
    image = shown["fixed_image"]
    assert tuple(image.GetLargestPossibleRegion().GetSize()) == (6, 5, 4)  # x, y, z
    assert tuple(image.GetSpacing()) == pytest.approx((0.7, 0.8, 2.0))
    assert itk.array_from_image(image)[0, 0, 5] == pytest.approx(1.0)
    direction = itk.array_from_matrix(image.GetDirection())
    np.testing.assert_allclose(direction, np.diag([-1.0, -1.0, 1.0]))  # RAS axes in LPS
