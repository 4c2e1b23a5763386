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


def test_smooth_deformation_has_its_size_and_its_inverse():
    grid = volume(np.zeros((40, 40, 30)), spacing=(3.0, 3.0, 3.0)).grid
    breast = np.zeros(grid.shape, bool)
    breast[10:30, 10:30, 8:22] = True
    true, inverse = real_exam.smooth_deformation(grid, breast, p95_mm=5.0, seed=3)
    p95 = np.percentile(true.magnitude_mm()[breast], 95)
    assert p95 == pytest.approx(5.0, rel=0.05)
    # u(x) + w(x + u(x)) = 0: the inverse undoes the field
    points = grid.index_to_world(np.argwhere(breast)[::50].astype(float))
    back, _ = inverse.to_fixed(inverse.to_moving(points))
    round_trip = true.to_moving(inverse.to_moving(points))
    assert np.abs(round_trip - points).max() < 0.3
    assert np.abs(back - points).max() < 0.1
    assert real_exam.folding_pct(true, breast) == 0.0


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
    # MIND makes the T2 image's structure more like the pre-contrast image's
    assert table.loc["after", "MIND-SSD (breast)"] < table.loc["before", "MIND-SSD (breast)"]


@needs_realdata
def test_known_deformation_is_recovered(exam):
    known = real_exam.known_deformation(exam, p95_mm=6.0, seed=0)
    before = known.table.loc["identity", "dense error mean (mm)"]
    after = known.table.loc["mind", "dense error mean (mm)"]
    assert 2.0 < before < 6.0
    assert after < before
    assert known.table.loc["mind", "folded (% body)"] < 1.0
    assert isinstance(real_exam.known_deformation_figure(exam, known), Figure)
