"""The real-exam chapter's computations (breastlib.booktools.real_exam).

The tests that need the exam read it from the local mirror ``../shared/realdata`` beside the
repository (``$BREASTLIB_TEST_REALDATA`` overrides it) at 6 mm voxels, and are skipped, with
the reason, where it is absent. The 'data unavailable' path runs with an empty mirror and
the network blocked.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest
from matplotlib.figure import Figure
from realdata import REALDATA, needs_realdata

from breastlib.booktools import real_exam
from breastlib.volume import Volume

#: Heavy downsampling keeps every registration here to seconds.
SPACING_MM = 6.0


@pytest.fixture(scope="module")
def exam() -> real_exam.RealExam:
    if not (REALDATA / "uta11" / "files.csv").is_file():
        pytest.skip("the real-data mirror is absent")
    return real_exam.load_exam(REALDATA / "uta11", spacing_mm=SPACING_MM)


def volume(array: np.ndarray, spacing=(1.0, 1.5, 2.0), origin=(-10.0, 5.0, 3.0)) -> Volume:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return Volume.from_array(np.asarray(array, np.float32), affine)


# -- without the data ---------------------------------------------------------------------
def test_unavailable_data_prints_one_line_and_returns_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BREASTLIB_DATA", str(tmp_path / "cache"))
    empty = tmp_path / "mirror"
    empty.mkdir()
    monkeypatch.setenv("BREASTLIB_DATA_MIRROR", str(empty))

    def no_network(*args, **kwargs):
        raise socket.gaierror("the tests block the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    assert real_exam.open_exam(retries=0) is None
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert "breastlib data fetch uta11" in lines[0] and "not available" in lines[0]


def test_unavailable_message_is_one_short_line():
    message = real_exam.unavailable_message("x\n" * 500)
    assert "\n" not in message and len(message) < 400


def test_downsample_keeps_the_extent_and_crop_keeps_the_voxels():
    rng = np.random.default_rng(0)
    source = volume(rng.random((40, 30, 20)))
    coarse = real_exam.downsample(source, 4.0)
    assert coarse.shape == (10, 11, 10)  # 40 mm, 45 mm, 40 mm in about 4 mm voxels
    low, high = source.grid.world_bounds()
    c_low, c_high = coarse.grid.world_bounds()
    # the same extent: voxel edges (centre -/+ half a voxel) agree
    np.testing.assert_allclose(c_low - coarse.spacing / 2, low - source.spacing / 2, atol=1e-4)
    np.testing.assert_allclose(c_high + coarse.spacing / 2, high + source.spacing / 2, atol=1e-4)
    mask = np.zeros(source.shape, bool)
    mask[10:20, 5:10, 4:8] = True
    box = real_exam.crop_box(mask, source.spacing, margin_mm=3.0)
    assert box == (slice(7, 23), slice(3, 12), slice(2, 10))
    part = real_exam.crop(source, box)
    np.testing.assert_array_equal(part.array, source.array[box])
    np.testing.assert_allclose(part.grid.index_to_world(np.zeros((1, 3))),
                               source.grid.index_to_world(np.array([[7.0, 3.0, 2.0]])))


def test_similarities_of_an_image_with_itself_and_another():
    rng = np.random.default_rng(1)
    a = rng.random((24, 24, 24)).astype(np.float32)
    mask = np.ones(a.shape, bool)
    assert real_exam.ncc(a, 3 * a + 1, mask) == pytest.approx(1.0)
    assert real_exam.mind_ssd(a, a, mask) == pytest.approx(0.0, abs=1e-9)
    assert real_exam.mind_ssd(a, rng.random(a.shape), mask) > 0.01


def test_flat_chest_deformations_keep_the_phantom_regimes_and_vanish_behind_the_chest():
    """The phantom's regimes drawn with a flat chest (the real exam's frame): calibrated
    sizes, an inverse that undoes the field, no folding, and no motion at the pectoralis
    apart from the regime's rigid part."""
    from breastlib.phantom.deformation import FlatChest, draw_deformation

    shape = (50, 40, 24)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-100.0, -60.0, -46.0)  # y: 60 mm behind the chest plane to 96 mm in front
    grid = Volume.from_array(np.zeros(shape, np.float32), affine).grid
    breast = np.zeros(shape, bool)
    breast[5:20, 18:35, 6:18] = True  # right breast, in front of y = 0
    breast[30:45, 18:35, 6:18] = True
    points = grid.index_to_world(np.argwhere(breast).astype(float))
    for regime, low, high in (("visit", 5.0, 15.0), ("position", 15.0, 30.0)):
        deform = draw_deformation(FlatChest(12.0), regime, np.random.default_rng(1), grid,
                                  grid, points)
        true = deform.displacement(grid)
        p95 = np.percentile(true.magnitude_mm()[breast], 95)
        assert low * 0.9 <= p95 <= high * 1.3, regime
        round_trip = deform.to_fixed(deform.to_moving(points[::40]))
        assert np.abs(round_trip - points[::40]).max() < 0.5, regime  # lattice: 5 mm
        assert real_exam.folding_pct(true, np.ones(shape, bool)) == 0.0, regime
        # behind the pectoralis (y < -12 mm) only the rigid part moves the tissue
        back = grid.index_to_world(np.array([[25.0, 5.0, 12.0]]))  # y = -40 mm
        soft = deform.soft_to_moving(back.astype(np.float32)) - back
        assert np.abs(soft).max() < 0.05, regime


# -- on the exam --------------------------------------------------------------------------
@needs_realdata
def test_exam_geometry_and_masks(exam):
    table = real_exam.geometry_table(exam)
    assert list(table.index) == ["s08_pre", "s09_post1", "s19_post5", "s03_t2_tse"]
    assert table.loc["s08_pre", "grid"] == "352 x 352 x 160"
    assert table.loc["s03_t2_tse", "grid"] == "512 x 512 x 58"
    assert {v.shape for v in exam.dce.values()} == {exam.pre.shape}
    for body, breast in ((exam.body, exam.breast), (exam.t2_body, exam.t2_breast)):
        assert breast.any() and not (breast & ~body).any()
    # cropped around the breasts: the breast reaches near the anterior edge of the crop
    ys = np.flatnonzero(exam.breast.any(axis=(0, 2)))
    assert exam.pre.shape[1] - ys.max() <= real_exam.CROP_MARGIN_MM / SPACING_MM + 2


@needs_realdata
def test_motion_correction_and_t2_measures_and_figures(exam):
    for name, run, figure in (("dce", real_exam.motion_correction, real_exam.subtraction_figure),
                              ("t2", real_exam.t2_to_dce, real_exam.t2_figure)):
        result = run(exam)
        table = result.table
        assert list(table.index) == ["before", "after"], name
        assert np.isfinite(table.to_numpy()).all(), name
        assert table.loc["before", "|u| p95 (mm, breast)"] == 0.0
        assert table.loc["after", "folded (% body)"] < 1.0
        assert result.moving_after.shape == exam.pre.shape
        assert isinstance(figure(exam, result), Figure)
    # MIND never makes the T2 image's structure less like the pre-contrast image's (the
    # guard keeps the starting field unless a stage makes the body's interior more alike)
    assert table.loc["after", "MIND-SSD (breast)"] <= table.loc["before", "MIND-SSD (breast)"]


@needs_realdata
def test_phantom_regimes_on_the_exam_are_recovered(exam):
    origin = real_exam.chest_origin(exam)
    low, high = exam.pre.grid.world_bounds()
    assert (low < origin).all() and (origin < high).all()
    for regime, (least, most) in (("visit", (5.0, 20.0)), ("position", (15.0, 35.0))):
        known = real_exam.known_deformation(exam, regime)
        before = known.table.loc["identity", "dense error p95 (mm)"]
        assert least < before < most, regime
        assert known.table.loc["mind", "dense error mean (mm)"] < 0.5 * known.table.loc[
            "identity", "dense error mean (mm)"], regime
        assert known.table.loc["mind", "folded (% body)"] < 1.0
        # drawn from the uncropped image: no empty slab where the crop's edge moved in (the
        # first and last slices may sample beyond the acquired volume)
        body = exam.pre.array > np.percentile(exam.pre.array, 60)
        body[:, :, :4] = body[:, :, -4:] = False
        assert (known.moving.array[body] > 0).mean() > 0.999
        assert isinstance(real_exam.known_deformation_figure(exam, known), Figure)
    again, _, _ = real_exam.regime_deformation(exam, "visit")
    first, _, _ = real_exam.regime_deformation(exam, "visit")
    np.testing.assert_array_equal(again.millimetres(), first.millimetres())


# -- the measures of the method tables, on small synthetic volumes --------------------------
def test_skin_band_is_the_outer_millimetres_of_the_body_not_the_array_edge():
    body = np.zeros((30, 30, 30), bool)
    body[5:25, 5:25, :] = True  # touches the array's z edges: those are not outline
    breast = body.copy()
    band = real_exam.skin_band(body, breast, (2.0, 2.0, 2.0), width_mm=4.0)
    # two voxels deep (2 and 4 mm) from the x and y outline, at every z
    assert band[5:7, 10, 15].all() and band[23:25, 10, 15].all()
    assert not band[7, 10, 15] and not band[15, 15, 0]
    assert not (band & ~body).any()
    assert not real_exam.skin_band(body, np.zeros_like(body), (2.0, 2.0, 2.0)).any()


def test_enhancing_region_is_the_clearly_brighter_blob_and_leaves_out_exclusions():
    rng = np.random.default_rng(2)
    pre = rng.normal(100.0, 5.0, (32, 32, 32))
    post = pre + rng.normal(10.0, 5.0, pre.shape)  # a global change and noise
    post[10:16, 10:16, 10:16] += 80.0  # the lesion
    breast = np.zeros(pre.shape, bool)
    breast[4:28, 4:28, 4:28] = True
    region, threshold = real_exam.enhancing_region(pre, post, breast)
    lesion = np.zeros(pre.shape, bool)
    lesion[10:16, 10:16, 10:16] = True
    assert 10.0 < threshold < 90.0
    assert region[lesion].mean() > 0.95 and not (region & ~lesion).any()
    exclude = np.zeros(pre.shape, bool)
    exclude[10:13] = True
    region, _ = real_exam.enhancing_region(pre, post, breast, exclude=exclude)
    assert not (region & exclude).any() and region[13:16, 10:16, 10:16].all()
    empty, threshold = real_exam.enhancing_region(pre, post, np.zeros_like(breast))
    assert not empty.any() and np.isnan(threshold)


def test_edge_band_follows_the_strong_edge_and_leaves_out_exclusions():
    pre = np.zeros((24, 24, 24), np.float32)
    pre[12:] = 100.0  # one strong edge between x = 11 and x = 12
    inside = np.ones(pre.shape, bool)
    band = real_exam.edge_band(pre, inside, percentile=90.0)
    xs = np.flatnonzero(band.any(axis=(1, 2)))
    assert set(xs) <= {10, 11, 12, 13} and {11, 12} <= set(xs)
    exclude = np.zeros(pre.shape, bool)
    exclude[:, :12] = True
    band = real_exam.edge_band(pre, inside, percentile=90.0, exclude=exclude)
    assert band.any() and not (band & exclude).any()


def test_subtraction_artefact_and_jacobian_in_region():
    pre = np.zeros((4, 4, 4))
    post = np.full(pre.shape, 5.0)
    band = np.zeros(pre.shape, bool)
    band[0] = True
    assert real_exam.subtraction_artefact(pre, post, band, scale=50.0) == pytest.approx(10.0)
    assert np.isnan(real_exam.subtraction_artefact(pre, post, ~np.ones_like(band), 50.0))
    determinant = np.ones((4, 4, 4))
    determinant[0] = 0.5
    determinant[1] = 1.5
    region = np.zeros(determinant.shape, bool)
    region[:2] = True
    stats = real_exam.jacobian_in_region(determinant, region)
    assert stats == {"mean": pytest.approx(1.0), "below_pct": 50.0, "above_pct": 50.0}
    assert real_exam.jacobian_in_region(determinant, region[::-1])["below_pct"] == 0.0
    assert np.isnan(real_exam.jacobian_in_region(determinant, ~np.ones_like(region))["mean"])


def test_jacobian_of_a_uniform_expansion():
    grid = volume(np.zeros((16, 16, 16)), spacing=(2.0, 2.0, 2.0)).grid
    from breastlib.displacement import Displacement

    index = np.indices(grid.shape).astype(np.float32)
    field = Displacement(-0.05 * (index - 8.0), grid)  # samples a 5 % smaller moving region
    determinant = field.jacobian_determinant()
    region = np.ones(grid.shape, bool)
    stats = real_exam.jacobian_in_region(determinant, region)
    assert stats["mean"] == pytest.approx(0.95 ** 3, rel=1e-4)
    assert stats["below_pct"] == 100.0


def test_registration_options_of_baselines_and_convexadam_methods():
    assert real_exam.registration_options("ants") == {}
    assert real_exam.registration_options("identity") == {}
    options = real_exam.registration_options("sam")
    assert options["init"] == "none" and options["weights"] == "random"
    assert set(real_exam.METHODS) >= {"identity", "mind", "sam", "medclip"}


def synthetic_exam() -> real_exam.RealExam:
    """A tiny exam: a bright box (the body) with a brighter blob enhancing after contrast."""
    rng = np.random.default_rng(5)
    shape = (26, 22, 18)
    body = np.zeros(shape, bool)
    body[3:23, 3:19, 2:16] = True
    pre = np.where(body, 100.0, 0.0) + rng.normal(0.0, 2.0, shape)
    pre[8:12, 8:14, 6:10] += 60.0  # a gland: edges inside the breast
    post = pre + np.where(body, 5.0, 0.0) + rng.normal(0.0, 2.0, shape)
    post[14:18, 9:13, 8:12] += 120.0  # the enhancing lesion
    breast = body.copy()
    breast[:, :8] = False
    dce = {name: volume(array, spacing=(3.0, 3.0, 3.0)) for name, array in
           (("pre", pre), ("post1", post), ("post5", post * 1.1))}
    t2 = volume(200.0 - pre, spacing=(3.0, 3.0, 3.0))
    return real_exam.RealExam(folder=REALDATA, native=dict(dce, t2=t2), dce=dce, t2=t2,
                              body=body, breast=breast, t2_body=body, t2_breast=breast)


def test_method_tables_of_the_identity_on_a_synthetic_exam():
    exam = synthetic_exam()
    tables = real_exam.method_tables(exam, ("identity",))
    assert list(tables) == list(real_exam.EXPERIMENTS)
    for name, table in tables.items():
        assert list(table.index) == ["identity"], name
        assert table.loc["identity", "stage"] == "-"
        assert table.loc["identity", "folded (% body)"] == 0.0
    for phase in ("post1", "post5"):
        row = tables[phase].loc["identity"]
        assert row["J mean (enhancing)"] == pytest.approx(1.0)
        assert row["J < 0.9 (% enhancing)"] == 0.0
        assert row["|u| p95 (mm, breast)"] == 0.0
        assert row["skin |post-pre| (%)"] > 0.0 and row["edge |post-pre| (%)"] > 0.0
    regions = real_exam.dce_regions(exam.pre, exam.dce["post1"], exam.body, exam.breast)
    assert regions.enhancing[15, 10, 9] and not regions.enhancing[8:12, 8:14, 6:10].any()
    assert not (regions.edges & regions.enhancing).any()
    assert not (regions.skin & (regions.edges | regions.enhancing)).any()
    # no registration: the dense error is the known deformation itself
    # (the clinical phantom's finer scales and sliding add to the regime's smooth part)
    for regime, (low, high) in (("visit", (5.0, 25.0)), ("position", (15.0, 40.0))):
        known = tables[f"known_{regime}"].loc["identity"]
        assert low < known["dense error p95 (mm)"] < high, regime
    assert isinstance(real_exam.regions_figure(exam, regions), Figure)


# -- the numbers cache ----------------------------------------------------------------------
def test_tables_survive_json_with_text_and_missing_numbers():
    import pandas as pd

    table = pd.DataFrame({"a": [1.23456789, float("nan")], "stage": ["adam", "-"]},
                         index=pd.Index(["x", "y"], name="method"))
    back = real_exam.table_from_json(real_exam.table_to_json(table))
    assert back.loc["x", "a"] == pytest.approx(1.23457) and np.isnan(back.loc["y", "a"])
    assert list(back["stage"]) == ["adam", "-"] and back.index.name == "method"


def test_cache_key_depends_on_what_the_numbers_depend_on(monkeypatch):
    key = real_exam.cache_key(("identity",))
    assert key == real_exam.cache_key(["identity"])
    assert key["dataset"] == "uta11" and len(key["files_sha256"]) == 64
    assert real_exam.cache_key(("identity", "mind")) != key
    assert real_exam.cache_key(("identity",), spacing_mm=6.0) != key
    assert real_exam.cache_key(("identity",), profile="corrected") != key
    monkeypatch.setattr(real_exam.cache, "MEASURES_VERSION", "test")
    assert real_exam.cache_key(("identity",)) != key
    monkeypatch.setattr("breastlib.study.run.RESULTS_VERSION", "test")
    assert real_exam.key_id(real_exam.cache_key(("identity",))) != real_exam.key_id(key)


def test_numbers_come_from_the_cache_when_the_key_matches(tmp_path, monkeypatch):
    exam = synthetic_exam()
    calls = []
    compute = real_exam.method_tables

    def counted(*args, **kwargs):
        calls.append(args[1])
        return compute(*args, **kwargs)

    monkeypatch.setattr(real_exam.tables, "method_tables", counted)
    path = tmp_path / "real-exam" / "numbers.json"
    first = real_exam.exam_numbers(exam, path=path, methods=("identity",))
    assert not first.from_cache and path.is_file() and len(calls) == 1
    assert "computed now" in first.provenance() and first.key_id in first.provenance()
    second = real_exam.exam_numbers(exam, path=path, methods=("identity",))
    assert second.from_cache and len(calls) == 1
    assert first.key_id in second.provenance() and "read from the cache" in second.provenance()
    for name, table in first.tables.items():
        assert list(second.tables[name].columns) == list(table.columns)
        numbers = table.drop(columns="stage").to_numpy(float)
        np.testing.assert_allclose(second.tables[name].drop(columns="stage").to_numpy(float),
                                   numbers, rtol=1e-5)
    # without the exam, a matching cache still gives the numbers; another key gives none
    assert real_exam.exam_numbers(None, path=path, methods=("identity",)).from_cache
    assert real_exam.exam_numbers(None, path=path, methods=("identity", "affine")) is None
    # a changed key recomputes and rewrites the cache
    monkeypatch.setattr(real_exam.cache, "MEASURES_VERSION", "changed")
    third = real_exam.exam_numbers(exam, path=path, methods=("identity",))
    assert not third.from_cache and len(calls) == 2 and third.key_id != first.key_id
    assert real_exam.exam_numbers(None, path=path, methods=("identity",)).key_id == third.key_id
    # an unreadable cache is recomputed, not an error
    path.write_text("{not json")
    assert not real_exam.exam_numbers(exam, path=path, methods=("identity",)).from_cache
    assert len(calls) == 3 and not list(path.parent.glob(".*part*"))


def test_summary_names_the_methods_that_change_the_numbers():
    import pandas as pd

    columns = ["skin |post-pre| (%)", "edge |post-pre| (%)", "folded (% body)",
               "J mean (enhancing)", "J < 0.9 (% enhancing)", "J > 1.11 (% enhancing)", "stage"]
    table = pd.DataFrame([[10.0, 20.0, 0.0, 1.0, 0.0, 0.0, "-"],
                          [8.0, 25.0, 0.5, 1.2, 5.0, 40.0, "adam"],
                          [10.1, 20.1, 0.0, 1.0, 0.0, 0.0, "identity"]],
                         columns=columns, index=pd.Index(["identity", "good", "kept"]))
    text = real_exam.summary(table, "post5")
    assert "at the skin (10.0 % before registration) falls by more than 5 % with good and " \
           "rises with none" in text
    assert "along the edges (20.0 % before registration) falls by more than 5 % with none " \
           "and rises with good" in text
    assert "from 1.00 to 1.20" in text and "over 10 % with good." in text
    assert "body: good." in text and "no correction) for: kept." in text
    known = pd.DataFrame({"dense error mean (mm)": [3.0, 1.0, 3.01, 3.0],
                          "folded (% body)": 0.0, "stage": ["-", "adam", "adam", "initial"]},
                         index=["identity", "mind", "bad", "kept"])
    text = real_exam.summary(known, "known_visit")
    assert text.startswith("From best to worst by the mean dense error: mind (1.00 mm); "
                           "identity, kept (3.00 mm); bad (3.01 mm).")
    assert "Worse than no registration: bad." in text


def test_the_committed_cache_matches_the_code_and_is_plausible():
    """The book reads book/data/real-exam/numbers.json: when its key goes stale (a new
    RESULTS_VERSION, a changed measure), every build recomputes 40 registrations, longer
    than a notebook cell may run. Recompute it then (see the chapter's module)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "book" / real_exam.CACHE_PATH
    numbers = real_exam.read_numbers(path, real_exam.cache_key())
    assert numbers is not None, (
        f"{path} is missing or its key is stale: recompute it with "
        "real_exam.exam_numbers(real_exam.open_exam(), path=...)")
    assert set(numbers.tables) == set(real_exam.EXPERIMENTS)
    for name, table in numbers.tables.items():
        assert list(table.index) == list(real_exam.METHODS), name
        assert table.loc["identity", "folded (% body)"] == 0.0, name
        assert table.loc["mind", "folded (% body)"] < 1.0, name
    for phase in ("post1", "post5"):
        identity = numbers.tables[phase].loc["identity"]
        assert identity["J mean (enhancing)"] == pytest.approx(1.0)
        assert identity["|u| p95 (mm, breast)"] == 0.0
    for regime in real_exam.KNOWN_REGIMES:
        known = numbers.tables[f"known_{regime}"]
        assert known.loc["mind", "dense error mean (mm)"] < known.loc[
            "identity", "dense error mean (mm)"], regime


def test_the_chapter_says_what_the_committed_numbers_show(monkeypatch):
    """book/real-exam.md states, in words, how the real anatomy's ranking compares with the
    phantom's; when the committed numbers change, these claims must be read again."""
    from pathlib import Path

    from breastlib.booktools.chapters import study_results

    book = Path(__file__).resolve().parents[1] / "book"
    monkeypatch.chdir(book)
    monkeypatch.delenv("BREASTLIB_BOOK_BUILD", raising=False)
    numbers = real_exam.read_numbers(real_exam.CACHE_PATH, real_exam.cache_key())
    assert numbers is not None
    ran = study_results(compute=False).ran
    rankings = real_exam.phantom_rankings(numbers, ran)
    # the position regime has no phantom counterpart since phantom version 2
    assert list(rankings) == ["visit"]
    visit = rankings["visit"]
    text = " ".join((book / "real-exam.md").read_text().split())
    # "Spearman's rho 0.70 over the five distinct methods"
    rho = real_exam.rank_agreement(visit)["spearman"]
    assert f"Spearman's rho {rho:.2f} over the {len(visit)} distinct" in text.replace(
        "five", "5")
    leaders = {"elastix", "ants", "mind"}
    for column in ("real anatomy (mm)", "phantom (mm)"):
        assert set(visit[column].sort_values().index[:3]) == leaders, column
        assert visit[column].idxmax() == "identity", column
    assert list(visit["real anatomy (mm)"].sort_values().index[:3]) == [
        "elastix", "ants", "mind"]  # "elastix, ANTs, MIND here"
    assert list(visit["phantom (mm)"].sort_values().index[:3]) == [
        "mind", "elastix", "ants"]  # "MIND, elastix, ANTs on the phantom's"
    # "the random-weight encoders tie with the affine on both"
    assert "affine = sam = dinov2 = medclip" in visit.index  # the study runs SAM once
    # the position regime: DINOv2's convex step recovers about half, the rest stay affine
    position = numbers.tables["known_position"]
    dense = position["dense error mean (mm)"]
    assert position.loc["dinov2", "stage"] == "convex"
    assert f"({1 - dense['dinov2'] / dense['identity']:.0%})".replace("%", " %") in text
    for name in ("sam", "medsam", "sslsam", "medclip"):
        assert dense[name] == pytest.approx(dense["affine"]), name
    assert 1 - dense["affine"] / dense["identity"] < 0.02
    for name in ("known_visit", "known_position"):
        assert (numbers.tables[name]["folded (% body)"] == 0.0).all(), name
    # "every deformable method's error is smaller on the real anatomy than on the phantom"
    deformable = visit.loc[list(leaders)]
    assert (deformable["real anatomy (mm)"] < deformable["phantom (mm)"]).all()
    # "no field that breastlib delivers folds on the phantom's pairs": a row whose guard
    # kept the start delivers the affine or no field; every other row's own field is kept
    kept_start = ran["stage_kept"].isin(["initial", "identity"])
    assert (ran.loc[~kept_start, "jac_nonpos_pct"] < 1.0).all()
    # "the random encoders' own Adam fields do fold on sequence and modality pairs"
    for task in ("sequence", "modality"):
        own = ran[(ran["task"] == task) & ran["method"].astype(str).str.contains("random")]
        assert (own["verdict"] == "folded").any(), task
    # the DCE series: every ConvexAdam method kept the starting field
    for phase in ("post1", "post5"):
        table = numbers.tables[phase]
        kept = table.loc[["mind", "sam", "dinov2", "medclip"], "stage"]
        assert set(kept) <= {"initial", "identity"}, phase


@needs_realdata
def test_dce_regions_on_the_exam(exam):
    for phase in ("post1", "post5"):
        regions = real_exam.dce_regions(exam.pre, exam.dce[phase], exam.body, exam.breast)
        for name in ("skin", "edges", "enhancing"):
            mask = getattr(regions, name)
            assert not (mask & ~exam.breast).any(), (phase, name)
        # at the tests' 6 mm voxels the smoothing leaves phase 5 no voxel above threshold
        assert regions.skin.any() and regions.edges.any()
        assert regions.enhancing.any() or phase == "post5"
        assert not (regions.enhancing & (regions.skin | regions.edges)).any()
        assert regions.enhancing.sum() < 0.05 * exam.breast.sum()
        assert regions.threshold > 0.0 and regions.scale > 0.0


# -- the phantom's ranking beside the real anatomy's ------------------------------------------
def test_ranking_table_and_agreement_of_two_rankings():
    import pandas as pd

    ran = pd.DataFrame({"task": ["longitudinal"] * 6 + ["modality"],
                        "method": ["mind", "mind", "sam (random)", "sam (random)", "identity",
                                   "identity", "mind"],
                        "field_error_mean_mm": [1.0, 3.0, 9.0, 7.0, 8.0, 8.0, 50.0]})
    phantom = real_exam.phantom_errors(ran, "longitudinal")
    assert phantom.to_dict() == {"mind": 2.0, "identity": 8.0, "sam": 8.0}
    real = pd.DataFrame({"dense error mean (mm)": [9.0, 2.5, 10.0, 4.0]},
                        index=["identity", "mind", "sam", "ants"])
    table = real_exam.ranking_table(real, phantom)
    assert list(table.index) == ["mind", "identity", "sam"]  # ants has no phantom row
    # identical numbers on both sides: one method (a random-weight architecture's copies)
    twins = real_exam.ranking_table(
        pd.concat([real, real.loc[["sam"]].rename(index={"sam": "medsam"})]),
        pd.concat([phantom, pd.Series({"medsam": 8.0})]))
    assert list(twins.index) == ["mind", "identity", "sam = medsam"]
    assert list(table["rank (real)"]) == [1.0, 2.0, 3.0]
    assert list(table["rank (phantom)"]) == [1.0, 2.5, 2.5]  # a tie shares its ranks
    agreement = real_exam.rank_agreement(table)
    assert agreement["spearman"] == pytest.approx(0.866, abs=1e-3)
    words = real_exam.transfer_words(table, "visit", "longitudinal")
    assert "Spearman's rho 0.87" in words and "mind (2.50 mm)" in words
    assert "on the phantom's longitudinal pairs mind (2.00 mm): the same method" in words
    reversed_ = real_exam.ranking_table(real.assign(**{"dense error mean (mm)": [1.0, 9.0,
                                                                                 0.5, 4.0]}),
                                        phantom)
    assert real_exam.rank_agreement(reversed_)["spearman"] < 0
    assert "disagree" in real_exam.transfer_words(reversed_, "visit", "longitudinal")
    assert np.isnan(real_exam.rank_agreement(table.iloc[:2])["spearman"])
    figure = real_exam.ranking_figure({"visit": table, "position": reversed_})
    assert len(figure.axes) == 2 and figure.axes[0].get_xlabel().endswith("(mm)")


def test_the_book_build_chooses_the_grid_the_profile_and_the_cache(monkeypatch):
    monkeypatch.delenv("BREASTLIB_BOOK_BUILD", raising=False)
    small = real_exam.exam_build()
    assert (small.spacing_mm, small.profile) == (real_exam.WORK_SPACING_MM, "fast")
    assert small.cache_path == real_exam.CACHE_PATH
    assert real_exam.registration_settings()["profile"] == "fast"
    monkeypatch.setenv("BREASTLIB_BOOK_BUILD", "full")
    full = real_exam.exam_build()
    assert full.spacing_mm == 0.0 and full.profile == "corrected"
    assert full.cache_path != small.cache_path  # never overwrites the committed numbers
    assert real_exam.registration_options("mind")["profile"] == "corrected"
    assert real_exam.cache_key(("identity",))["work_spacing_mm"] == 0.0
    # 0 keeps the voxels: the volume comes back as it is
    source = volume(np.ones((4, 5, 6)))
    assert real_exam.downsample(source, 0.0) is source
    monkeypatch.setenv("BREASTLIB_BOOK_BUILD", "huge")
    with pytest.raises(ValueError, match="BREASTLIB_BOOK_BUILD"):
        real_exam.exam_build()


def test_feature_figure_has_one_labelled_row_per_image():
    rows = {"real exam": {"image": np.zeros((8, 10)), "sam": np.zeros((8, 10, 3))},
            "phantom": {"image": np.zeros((6, 6)), "sam": np.ones((6, 6, 3)),
                        "dinov2": np.ones((6, 6, 3))}}
    figure = real_exam.feature_figure(rows)
    axes = figure.axes
    assert len(axes) == 6
    assert axes[0].get_ylabel() == "real exam" and axes[3].get_ylabel() == "phantom"
    assert not axes[2].axison  # the first row's empty third panel
