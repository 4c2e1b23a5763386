"""NiiVue 3-D views: every volume travels in the page, decodes back, and fits the budget."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from breastlib.displacement import Displacement
from breastlib.phantom import LABELS, Acquisition, make_pair
from breastlib.tissues import breast_mask
from breastlib.viz import niivue
from breastlib.viz.niivue import (
    DEFAULT_MAX_BYTES,
    NIIVUE_BUNDLE,
    NIIVUE_VERSION,
    decode_nifti,
    encode_nifti,
    niivue_viewer,
    registration_views,
)

ROOT = Path(__file__).resolve().parents[1]
#: What one chapter may add to its page (the view's volumes, HTML and script).
CHAPTER_BUDGET = 5_000_000


def payload(html: str) -> dict:
    """The JSON the fragment's script reads its volumes from."""
    found = re.search(r'<script type="application/json" class="nv-data">(.*?)</script>',
                      html, re.S)
    assert found, "no volume payload in the fragment"
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def pair():
    return make_pair("longitudinal", "small", seed=0, acquisition=Acquisition(supersample=1))


@pytest.fixture(scope="module")
def views(pair):
    """The method chapter's view: its pair, the true field and two stand-in estimates."""
    truth = pair.displacement
    fields = {
        "half the truth": Displacement.from_millimetres(truth.millimetres() * 0.5,
                                                        pair.fixed.grid),
        "ground truth": truth,
        "shifted 3 mm": Displacement.from_millimetres(
            truth.millimetres() + np.array([3.0, 0, 0], np.float32)[:, None, None, None],
            pair.fixed.grid),
    }
    mask = breast_mask(pair.fixed_labels.array, LABELS)
    return registration_views(pair.fixed, pair.moving, fields, truth=truth, mask=mask)


def test_vendored_bundle_is_the_pinned_release_and_fetches_nothing():
    folder = ROOT / "book" / "_static" / "niivue"
    bundle = folder / Path(NIIVUE_BUNDLE).name
    assert bundle.is_file() and (folder / "LICENSE").is_file()
    readme = (folder / "README.md").read_text()
    assert NIIVUE_VERSION in readme and "BSD-2-Clause" in readme
    assert "BSD 2-Clause" in (folder / "LICENSE").read_text()
    code = bundle.read_text(encoding="utf-8")
    assert code.startswith("(function(") and "sA.niivue={}" in code[:400]  # UMD, global
    # URLs in the bundle are comments in its shaders and docs, never loaded: no fetch of
    # an absolute http(s) address, no CDN host.
    for host in ("unpkg.com", "jsdelivr", "cdnjs", "googleapis", "niivue.github.io"):
        assert host not in code, host
    assert not re.search(r"fetch\(\s*[\"']https?://", code)


def test_encode_round_trip_image_and_map():
    affine = np.array([[2.0, 0, 0, -10], [0, 3.0, 0, 5], [0, 0, 1.5, 7], [0, 0, 0, 1]])
    image = np.random.default_rng(0).normal(100, 20, (6, 5, 4)).astype(np.float32)
    decoded = decode_nifti(encode_nifti(image, affine))
    assert decoded.shape == (6, 5, 4) and decoded.get_data_dtype() == np.uint8
    np.testing.assert_allclose(decoded.affine, affine)
    values = decoded.get_fdata()
    assert 0.0 <= values.min() and values.max() <= 1.0 + 1e-6

    jac = np.linspace(-0.5, 2.5, 120, dtype=np.float32).reshape(6, 5, 4)
    jac[0, 0, 0] = np.nan
    decoded = decode_nifti(encode_nifti(jac, affine, value_range=(0.0, 2.0)))
    back = decoded.get_fdata()
    inside = (jac >= 0) & (jac <= 2)
    np.testing.assert_allclose(back[inside], jac[inside], atol=2.0 / 254)
    assert decoded.dataobj.get_unscaled()[0, 0, 0] == 0  # NaN: below the range, transparent
    assert back[0, 0, 0] < 0.0
    assert float(decoded.header["cal_min"]) == 0.0 and float(decoded.header["cal_max"]) == 2.0


def test_html_holds_every_method_and_decodes_to_the_grid(pair, views):
    html = niivue_viewer(views["fixed"], views["warped_by_method"], affine=views["affine"],
                         overlays=views["overlays"], overlay_ranges=views["overlay_ranges"],
                         overlay_colormaps=views["overlay_colormaps"], title="method")
    data = payload(html)
    methods = ["not registered", "half the truth", "ground truth", "shifted 3 mm"]
    assert list(data["warped"]) == methods
    assert set(data["overlays"]) == {"error (mm)", "Jacobian determinant"}
    for maps in data["overlays"].values():
        assert list(maps) == methods
    assert data["ranges"]["Jacobian determinant"] == [0.0, 2.0]
    for method in methods:
        assert f'<option value="{method}">' in html
    fixed = decode_nifti(data["fixed"])
    # Corner voxel centres stay where they were, whatever the downsampling.
    corner = np.array([n - 1 for n in pair.fixed.shape] + [1.0])
    small_corner = np.array([n - 1 for n in fixed.shape] + [1.0])
    np.testing.assert_allclose(fixed.affine @ small_corner, pair.fixed.affine @ corner,
                               atol=1e-6)
    np.testing.assert_allclose(fixed.affine[:, 3], pair.fixed.affine[:, 3])
    for text in [*data["warped"].values(),
                 *(t for maps in data["overlays"].values() for t in maps.values())]:
        image = decode_nifti(text)
        assert image.shape == fixed.shape
        np.testing.assert_allclose(image.affine, fixed.affine)
    # The true field has no error; the 3 mm shift has about 3 mm in the breast.
    error = data["overlays"]["error (mm)"]
    assert np.nanmax(decode_nifti(error["ground truth"]).get_fdata()) < 0.2
    codes = decode_nifti(error["shifted 3 mm"]).dataobj.get_unscaled()
    shifted = decode_nifti(error["shifted 3 mm"]).get_fdata()[codes > 0]
    assert abs(np.median(shifted) - 3.0) < 0.2
    assert (codes == 0).mean() > 0.3  # outside the breast: no value


def test_the_chapter_view_fits_its_budget(views):
    html = niivue_viewer(views["fixed"], views["warped_by_method"], affine=views["affine"],
                         overlays=views["overlays"], overlay_ranges=views["overlay_ranges"])
    size = len(html.encode())
    assert size <= DEFAULT_MAX_BYTES <= CHAPTER_BUDGET
    # A tight budget downsamples further instead of failing, down to a limit.
    small = niivue_viewer(views["fixed"], views["warped_by_method"], affine=views["affine"],
                          max_bytes=400_000)
    assert len(small.encode()) <= 400_000
    assert decode_nifti(payload(small)["fixed"]).shape[0] < views["fixed"].shape[0]
    with pytest.raises(ValueError, match="budget"):
        niivue_viewer(views["fixed"], views["warped_by_method"], affine=views["affine"],
                      max_bytes=10_000)


def test_task_view_from_study_previews(tmp_path, pair):
    """A task chapter's view from the previews a study writes (here: three fields on the
    phantom pair, saved as the study saves them), within the chapter's budget."""
    from breastlib.booktools.niivue_views import task_niivue_views
    from breastlib.study.run import RESULTS_VERSION
    from breastlib.study.worker import save_preview

    truth = pair.displacement
    fields = {"identity": Displacement.identity(pair.fixed.grid), "mind": truth,
              "affine": Displacement.from_millimetres(truth.millimetres() * 0.5,
                                                      pair.fixed.grid)}
    previews = tmp_path / "study" / "previews"
    previews.mkdir(parents=True)
    rows = []
    for method, field in fields.items():
        save_preview(previews / f"p0__{method}__fast__random__x__v{RESULTS_VERSION}.npz",
                     field.warp(pair.moving).array, field.jacobian_determinant(),
                     pair.fixed.spacing)
        error = float(np.linalg.norm(field.millimetres() - truth.millimetres(), axis=0).mean())
        rows.append({"pair_id": "p0", "method": method, "profile": "fast", "status": "ok",
                     "weights": "", "verdict": "", "field_error_mean_mm": error})
    pair.fixed.save(tmp_path / "fixed.nii.gz")
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"pair_id": ["p0"], "task": ["longitudinal"],
                  "fixed_image": ["fixed.nii.gz"]}).to_csv(manifest, index=False)
    views = task_niivue_views(manifest, tmp_path / "study", pd.DataFrame(rows))
    methods = list(views["warped_by_method"])
    assert methods == ["no registration (moving)", "mind", "affine"]  # best first
    assert list(views["overlays"]["Jacobian determinant"]) == methods
    stack = views["fixed"].shape
    assert views["spacing"][2] > pair.fixed.spacing[2] and stack[:2] == pair.fixed.shape[:2]
    html = niivue_viewer(views.pop("fixed"), views.pop("warped_by_method"), **views)
    assert len(html.encode()) <= CHAPTER_BUDGET
    data = payload(html)
    assert list(data["warped"]) == methods
    assert decode_nifti(data["fixed"]).shape[2] == stack[2]  # thin stacks keep their slices


def test_bad_input_is_refused(views):
    fixed = views["fixed"]
    with pytest.raises(ValueError, match="differs"):
        niivue_viewer(fixed, {"a": fixed[:-1]}, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="not in the menu"):
        niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 1),
                      overlays={"map": {"b": fixed}})
    with pytest.raises(ValueError, match="spacing"):
        niivue_viewer(fixed, {"a": fixed})
    with pytest.raises(ValueError, match="bundle"):
        niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 1), bundle="cdn")


def test_inline_bundle_and_show_niivue_outside_a_kernel(monkeypatch):
    fixed = np.random.default_rng(1).normal(size=(12, 10, 8)).astype(np.float32)
    page = niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 2))
    inline = niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 2), bundle="inline")
    assert "<!--niivue-bundle-->" in page and "if (!window.niivue)" not in page
    assert len(inline) - len(page) > 2_000_000 and "if (!window.niivue)" in inline
    start = inline.index("if (!window.niivue)")
    assert inline.index("</script>", start) > start + 2_000_000  # the bundle closes no tag

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setenv("BREASTLIB_STATIC_BUILD", "1")
    assert niivue.show_niivue(fixed, {"a": fixed}, spacing=(1, 1, 2)) is None
    assert 'class="breastlib-niivue"' in shown[-1].data
    assert "if (!window.niivue)" not in shown[-1].data  # the book page loads the bundle


def test_show_niivue_in_a_live_kernel_without_ipyniivue(monkeypatch):
    """No ipyniivue: the HTML view, its bundle inline (no ``_static`` beside a notebook)."""
    fixed = np.random.default_rng(2).normal(size=(12, 10, 8)).astype(np.float32)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.delenv("BREASTLIB_STATIC_BUILD", raising=False)
    monkeypatch.setattr(niivue, "_in_live_kernel", lambda: True)
    monkeypatch.setitem(sys.modules, "ipyniivue", None)  # import fails
    assert niivue.show_niivue(fixed, {"a": fixed}, spacing=(1, 1, 2)) is None
    assert "if (!window.niivue)" in shown[-1].data


def test_ipyniivue_widget_swaps_volumes():
    pytest.importorskip("ipyniivue")
    fixed = np.random.default_rng(3).normal(size=(20, 18, 10)).astype(np.float32)
    box = niivue._ipyniivue_widget(
        fixed, {"a": fixed, "b": fixed[::-1].copy()},
        {"spacing": (1, 1, 2), "overlays": {"map": {"a": fixed, "b": fixed}}})
    viewer = box.children[-1]
    method, chosen_map = box.children[0].children
    shown_image, opacity = box.children[1].children
    assert [v.name for v in viewer.volumes] == ["image.nii.gz", "map.nii.gz"]
    first = viewer.volumes[0].data
    method.value = "b"
    assert viewer.volumes[0].data != first
    shown_image.value = "fixed"
    assert viewer.volumes[0].data == first  # a's warped image is the fixed one
    opacity.value = 0.3
    assert viewer.volumes[1].opacity == pytest.approx(0.3)
    chosen_map.value = "none"
    assert len(viewer.volumes) == 1


def test_views_get_distinct_deterministic_ids():
    fixed = np.random.default_rng(4).normal(size=(12, 10, 8)).astype(np.float32)

    def view_id(html: str) -> str:
        return re.search(r'<div class="breastlib-niivue" id="([^"]+)"', html).group(1)

    one = niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 2))
    assert view_id(one) == view_id(niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 2)))
    assert view_id(one) != view_id(niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 2),
                                                 title="another"))
    assert view_id(niivue_viewer(fixed, {"a": fixed}, spacing=(1, 1, 2),
                                 view_id="my view")) == "my-view"
