"""Every method side by side: the static comparison grid, its inputs from a study's
previews, its fallback, and the live grid."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
pytest.importorskip("plotly")

import matplotlib.pyplot as plt

from breastlib.viz import compare
from breastlib.viz.compare import (
    CLASS_NAME,
    PAGE_BUDGET_BYTES,
    VIEWS,
    comparison_grid,
    show_comparison_grid,
    static_comparison_grid,
    view_volume,
)

BOOK = Path(__file__).resolve().parents[1] / "book"
LONGITUDINAL = BOOK / "data" / "small" / "longitudinal"
METHODS = ("identity", "ants", "sam (random) [W]")


def stacks(depth: int = 6, methods: tuple[str, ...] = METHODS, seed: int = 0):
    """A random fixed stack, one random warped stack and Jacobian per method."""
    rng = np.random.default_rng(seed)
    shape = (20, 16, depth)
    fixed = rng.integers(0, 256, shape, dtype=np.uint8)
    warped = {m: rng.integers(0, 256, shape, dtype=np.uint8) for m in methods}
    jacobians = {m: rng.uniform(0.0, 2.0, shape).astype(np.float32) for m in methods}
    return fixed, warped, jacobians


def grid(**options):
    fixed, warped, jacobians = stacks()
    options = dict(dict(jacobians=jacobians, slice_numbers=[0, 3, 6, 9, 12, 15], n_slices=16,
                        notes={"ants": "dense error 2.96 mm"}, title="t"), **options)
    return comparison_grid(fixed, warped, (2.0, 2.5, 3.0), **options)


def image_traces(figure):
    return [figure.data[i] for i in figure.layout.meta["image_traces"]]


def picture(uri: str) -> np.ndarray:
    from PIL import Image

    data = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)


def test_every_method_and_the_fixed_image_have_a_panel():
    figure = grid()
    meta = figure.layout.meta
    assert meta["panels"] == ["fixed", *METHODS]  # the fixed image is the first panel
    assert meta["views"] == list(VIEWS)
    titles = [a.text for a in figure.layout.annotations if a.text.startswith("<b>")]
    assert len(titles) == len(METHODS) + 1
    assert titles[0].startswith("<b>fixed</b>") and "[W]" in titles[3]
    assert "dense error 2.96 mm" in titles[2]
    keys = meta["traces"]
    assert [k for k in keys if k[0] == "fixed"] == [["fixed", "fixed"]]
    for method in METHODS:  # one image trace per view
        assert sorted(k[1] for k in keys if k[0] == method) == sorted(VIEWS)
    # Each panel on its own axes, the fixed image on the first.
    axes = {(t.xaxis, t.yaxis) for t in image_traces(figure)}
    assert len(axes) == len(METHODS) + 1
    assert (figure.data[0].xaxis, figure.data[0].yaxis) == ("x", "y")
    for number, _ in enumerate(meta["panels"]):
        suffix = "" if number == 0 else str(number + 1)
        assert figure.layout[f"yaxis{suffix}"].scaleanchor == f"x{suffix}"  # square mm
        if number:  # zooming one panel zooms them all
            assert figure.layout[f"xaxis{suffix}"].matches == "x"
            assert figure.layout[f"yaxis{suffix}"].matches == "y"


def test_the_slider_moves_every_panel():
    figure = grid()
    slider = figure.layout.sliders[0]
    traces = figure.layout.meta["image_traces"]
    assert len(slider.steps) == 6
    assert [s.label for s in slider.steps] == ["1", "4", "7", "10", "13", "16"]
    assert slider.currentvalue.prefix == "axial slice " and slider.currentvalue.suffix == " of 16"
    for step in slider.steps:
        assert step.method == "restyle" and list(step.args[1]) == traces
        assert len(step.args[0]["source"]) == len(traces)
    for before, after in zip(slider.steps[:-1], slider.steps[1:], strict=True):
        old, new = before.args[0]["source"], after.args[0]["source"]
        changed = [a != b for a, b in zip(old, new, strict=True)]
        assert all(changed), "a panel kept its picture when the slice moved"
    start = slider.steps[slider.active].args[0]["source"]
    assert [t.source for t in image_traces(figure)] == list(start)


def test_the_view_buttons_switch_every_panel_and_keep_the_fixed_one():
    figure = grid()
    keys = figure.layout.meta["traces"]
    menu = figure.layout.updatemenus[0]
    assert menu.type == "buttons" and len(menu.buttons) == len(VIEWS)  # not a drop-down
    shown = {}
    for button, view in zip(menu.buttons, VIEWS, strict=True):
        visible = button.args[0]["visible"]
        assert len(visible) == len(figure.data)
        assert visible[0] and keys[0] == ["fixed", "fixed"]  # the fixed panel stays
        for method in METHODS:
            on = [k[1] for k, v in zip(keys, visible, strict=True) if v and k[0] == method]
            assert on == [view], f"{method} shows {on} under the {view} button"
        bars = [k[1] for k, v in zip(keys, visible, strict=True) if v and k[0] == "colour bar"]
        assert bars == ([view] if view in ("difference", "jacobian") else [])
        assert view.split()[0].lower() in button.label.lower() or view == "difference"
        shown[view] = visible
    # The first view is what the figure opens on.
    assert [t.visible for t in figure.data] == shown[VIEWS[0]]


def test_views_show_what_they_say():
    fixed = np.full((20, 20, 1), 0.2, np.float32)
    warped = np.full((20, 20, 1), 0.9, np.float32)
    spacing = (2.0, 2.0, 3.0)
    np.testing.assert_allclose(view_volume("warped", fixed, warped, spacing), 0.9)
    np.testing.assert_allclose(view_volume("difference", fixed, warped, spacing),
                               min(0.7 / compare.DIFFERENCE_MAX, 1.0))
    board = view_volume("checkerboard", fixed, warped, spacing)[:, :, 0]
    assert board[0, 0] == pytest.approx(0.2) and board[10, 0] == pytest.approx(0.9)
    assert board[:10, :10].max() == pytest.approx(0.2)  # 20 mm squares of 2 mm voxels
    jacobian = np.array([-1.0, 0.0, 1.0, 3.0]).reshape(4, 1, 1)
    np.testing.assert_allclose(view_volume("jacobian", fixed[:4, :1], warped[:4, :1], spacing,
                                           jacobian).ravel(), [0.0, 0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="needs"):
        view_volume("jacobian", fixed, warped, spacing)
    with pytest.raises(ValueError, match="view"):
        view_volume("blend", fixed, warped, spacing)


def test_pictures_are_radiological_with_square_pixels():
    fixed, warped, _ = stacks(depth=2, methods=("a",))
    fixed[:] = 0
    fixed[-5:, -4:, :] = 255  # the patient's right (high x), anterior (high y) corner
    figure = comparison_grid(fixed, warped, (1.0, 2.0, 3.0), max_slices=2)
    image = picture(figure.data[0].source)
    assert image.shape == (32, 20)  # 16 x 2 mm by 20 x 1 mm: 1 mm pixels, Y rows
    assert image[1:7, 1:4].min() > 200  # right on the viewer's left, anterior at the top
    assert image[10:, :].max() < 60 and image[:, 8:].max() < 60
    letters = [a.text for a in figure.layout.annotations if a.xref == "x" and len(a.text) == 1]
    assert letters == ["R", "L", "A", "P"]


def test_without_jacobians_there_is_no_jacobian_view():
    fixed, warped, _ = stacks()
    figure = comparison_grid(fixed, warped, (2.0, 2.0, 2.0))
    assert figure.layout.meta["views"] == list(VIEWS[:-1])
    assert len(figure.layout.updatemenus[0].buttons) == 3
    assert figure.layout.sliders[0].currentvalue.suffix == " of 6"


def test_the_budget_bounds_the_page():
    full = grid()
    size = len(full.to_html(include_plotlyjs=False, full_html=False))
    small = grid(budget_bytes=size // 2)
    assert len(small.layout.sliders[0].steps) < len(full.layout.sliders[0].steps)
    assert len(small.to_html(include_plotlyjs=False, full_html=False)) <= size // 2
    with pytest.raises(ValueError, match="budget"):
        grid(budget_bytes=1000)


def test_bad_inputs_are_refused():
    fixed, warped, jacobians = stacks()
    with pytest.raises(ValueError, match="shape"):
        comparison_grid(fixed, {"a": warped["ants"][:, :, :3]}, (1, 1, 1))
    with pytest.raises(ValueError, match="no method"):
        comparison_grid(fixed, {}, (1, 1, 1))
    with pytest.raises(ValueError, match="fixed"):
        comparison_grid(fixed, {"fixed": warped["ants"]}, (1, 1, 1))
    with pytest.raises(ValueError, match="jacobians"):
        comparison_grid(fixed, warped, (1, 1, 1), jacobians={"ants": jacobians["ants"]})
    with pytest.raises(ValueError, match="slice_numbers"):
        comparison_grid(fixed, warped, (1, 1, 1), slice_numbers=[1, 2])


def test_static_fallback_shows_every_panel_at_one_slice():
    fixed, warped, jacobians = stacks()
    figure = static_comparison_grid(fixed, warped, (2.0, 2.5, 3.0), jacobians=jacobians,
                                    position=2, slice_numbers=[0, 3, 6, 9, 12, 15],
                                    n_slices=16, views=("warped", "jacobian"))
    drawn = [ax for ax in figure.axes if ax.images]
    assert len(drawn) == 2 * (len(METHODS) + 1)
    titles = [ax.get_title() for ax in drawn]
    assert titles.count("fixed\nreference") == 2 and sum("[W]" in t for t in titles) == 2
    assert "axial slice 7 of 16" in figure._suptitle.get_text()
    plt.close(figure)
    with pytest.raises(ValueError, match="jacobian"):
        static_comparison_grid(fixed, warped, (1, 1, 1), views=("jacobian",))


def test_show_comparison_grid_displays_the_figure_and_its_fallback(monkeypatch):
    import IPython.display

    from breastlib.viz._plotly import PlotlyPage

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda item: shown.append(item))
    fixed, warped, jacobians = stacks()
    show_comparison_grid(fixed, warped, (2.0, 2.0, 2.0), jacobians=jacobians,
                         page=PlotlyPage(plotlyjs_embedded=True))
    html, fallback = shown
    assert html.data.startswith(f'<div class="{CLASS_NAME}"><div class="breastlib-interactive">')
    assert "* plotly.js v" not in html.data  # the page already holds plotly.js
    assert isinstance(fallback, matplotlib.figure.Figure)


# --- the book's real previews --------------------------------------------------------


@pytest.fixture(scope="module")
def book_grid_inputs(tmp_path_factory):
    """:func:`comparison_grid_inputs` on the book's committed longitudinal previews, with
    the cohort's first pair (the book's own cohort when built, else generated alike)."""
    from breastlib.booktools import compare as booktools_compare
    from breastlib.booktools import figures as booktools_figures
    from breastlib.phantom import make_cohort

    table = pd.read_csv(LONGITUDINAL / "results.csv")
    manifest = BOOK.parent / "_build" / "cohorts" / "small" / "longitudinal" / "manifest.csv"
    if not manifest.is_file():  # pair 0 of seed 0 is the same pair whatever the count
        manifest = make_cohort("longitudinal", 1, size="small", seed=0,
                               out_dir=tmp_path_factory.mktemp("cohort"))
    # The committed previews' version (a code change bumps RESULTS_VERSION before the
    # book's next build recomputes them): the grid is measured on what is committed.
    versions = pd.Series([p.stem.rsplit("__v", 1)[1]
                          for p in (LONGITUDINAL / "previews").glob("*.npz")])
    version = str(versions.value_counts().idxmax())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(booktools_figures, "RESULTS_VERSION", version)  # preview_file
        inputs = booktools_compare.comparison_grid_inputs(manifest, LONGITUDINAL, table)
    return table, version, inputs


def test_book_grid_fits_the_page_budget(book_grid_inputs):
    table, version, inputs = book_grid_inputs
    first = table[(table["pair_id"] == table["pair_id"].iloc[0]) & (table["status"] == "ok")]
    previews = {p.name.split("__")[1] for p in (LONGITUDINAL / "previews").glob(
        f"{first['pair_id'].iloc[0]}__*__v{version}.npz")}
    # Of a random-weight architecture only its first seed has a preview, so one panel.
    seed = pd.to_numeric(first.get("seed", pd.Series(0, index=first.index))).fillna(0)
    shown = first[first["method"].isin(previews) & (seed == 0)]
    assert first["method"].isin(previews).sum() > len(shown)  # the v8 rows have seeds 1-2
    figure = comparison_grid(**inputs)
    meta = figure.layout.meta
    assert len(meta["panels"]) == len(shown) + 1 >= 3
    assert meta["panels"][1] == "no registration (moving)"
    flagged = shown["verdict"].isin(["worse_than_identity", "folded"]).sum()
    assert sum("[" in name for name in meta["panels"]) == flagged
    size = len(figure.to_html(include_plotlyjs=False, full_html=False))
    assert size <= PAGE_BUDGET_BYTES, f"the grid adds {size} bytes to the page"
    assert len(meta["slices"]) >= 6, "too few slices kept to browse"
    assert meta["n_slices"] == inputs["n_slices"] > 40  # the fixed grid's own slice count
    assert figure.layout.sliders[0].currentvalue.suffix == f" of {meta['n_slices']}"
    assert set(meta["slices"]) <= set(inputs["slice_numbers"].tolist())


def test_book_grid_inputs_decode_the_previews(book_grid_inputs):
    _, _, inputs = book_grid_inputs
    identity = inputs["jacobians"]["no registration (moving)"]
    np.testing.assert_allclose(identity, 1.0, atol=0.01)  # 128 / 255 * 2
    assert all(j.max() <= 2.0 and j.min() >= 0.0 for j in inputs["jacobians"].values())
    assert inputs["fixed"].dtype == np.uint8 and inputs["fixed"].shape[2] == 24
    notes = inputs["notes"]
    assert all(note.startswith("dense error ") for note in notes.values())
    errors = [float(n.split()[-2]) for n in list(notes.values())[1:]]
    assert errors == sorted(errors)  # best first after the unregistered image


# --- the live grid ----------------------------------------------------------------------


def test_live_grid_registers_every_method_and_redraws(tiny_cohort):
    pytest.importorskip("ipywidgets")
    from test_live import fake_result

    from breastlib.viz.live_compare import ComparisonGridExplorer, grid_figure

    calls = []

    def register(task, pair_id, method, weights):
        calls.append((task, pair_id, method, weights))
        return fake_result(depth=10)

    explorer = ComparisonGridExplorer({"longitudinal": tiny_cohort},
                                      methods=("identity", "mind", "sam"), register=register)
    assert calls == []
    results = explorer.refresh()
    assert [c[2:] for c in calls] == [("identity", "none"), ("mind", "none"),
                                      ("sam", "random")]
    assert list(results) == ["no registration (moving)", "mind", "sam (random)"]
    assert explorer.slice.max == 10 and explorer.slice.value == 6
    assert explorer.output.outputs[0]["data"]["image/png"]
    first = explorer.output.outputs[0]["data"]["image/png"]
    explorer.view.value = "jacobian"  # redraws, never recomputes
    explorer.slice.value = 2
    assert len(calls) == 3 and explorer.output.outputs[0]["data"]["image/png"] != first
    explorer.weights.value = "pretrained"  # only the encoder is registered again
    assert calls[-1][2:] == ("sam", "pretrained") and len(calls) == 4
    assert explorer.widget.children

    figure = grid_figure(results, view="checkerboard", slice_index=3, title="t")
    drawn = [ax for ax in figure.axes if ax.images]
    assert len(drawn) == len(results) + 1  # the fixed image and every method
    assert "axial slice 4 of 10" in figure._suptitle.get_text()
    plt.close(figure)


def test_live_grid_leaves_out_a_failed_method(tiny_cohort):
    pytest.importorskip("ipywidgets")
    from test_live import fake_result

    from breastlib.viz.live_compare import ComparisonGridExplorer

    def register(task, pair_id, method, weights):
        if method == "sam":
            raise RuntimeError("no weights")
        return fake_result()

    explorer = ComparisonGridExplorer({"longitudinal": tiny_cohort},
                                      methods=("identity", "sam"), register=register)
    assert list(explorer.refresh()) == ["no registration (moving)"]
    assert "failed" in explorer.status.value and "no weights" in explorer.status.value


def test_live_grid_is_a_note_in_the_static_build(monkeypatch, tiny_cohort, capsys):
    from breastlib.viz import live
    from breastlib.viz.live_compare import show_comparison_explorer

    monkeypatch.setenv(live.STATIC_BUILD_ENV, "1")
    assert show_comparison_explorer({"longitudinal": tiny_cohort}) is None
    assert "needs a running kernel" in capsys.readouterr().out


def test_grid_inputs_need_the_pairs_previews(tiny_cohort, tmp_path):
    from breastlib.booktools.compare import comparison_grid_inputs, preview_jacobian

    table = pd.DataFrame([dict(pair_id="tiny_000", method="affine", profile="fast",
                               status="ok", weights=None, verdict="ok")])
    with pytest.raises(FileNotFoundError, match="tiny_000"):
        comparison_grid_inputs(tiny_cohort, tmp_path, table)
    stored = np.array([0, 128, 255], dtype=np.uint8)
    np.testing.assert_allclose(preview_jacobian(stored), [0.0, 256 / 255, 2.0], rtol=1e-6)
