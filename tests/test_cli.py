"""The `breastlib` command: outputs, SimpleITK cross-check, `apply`, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from synthetic_volumes import blob_volume, centred_affine

from breastlib.cli import main

SHAPE = (44, 40, 28)
# Sub-voxel: 0.6 of the smallest voxel side (2.0 mm). A geometry error (a flipped axis, a
# swapped affine) misses by the 5.8 mm shift or more. MIND's background floor (``fast``)
# costs about 0.1 mm on these noise-free blobs: 0.92 -> 1.04 mm on the sagittal grid.
SUB_VOXEL_MM = 1.2


@pytest.fixture(scope="module", params=["lps-oblique", "sagittal-anisotropic"])
def registered(request, tmp_path_factory):
    """One `breastlib register` run per awkward grid, shared by the assertions below."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "lps-oblique":
        affine = centred_affine(SHAPE, spacing=(2.1, 2.4, 3.0), angle_deg=17.0, lps=True)
    else:
        affine = centred_affine(SHAPE, spacing=(3.0, 2.0, 2.4), permute=(1, 2, 0))
    shift = np.array([4.0, -3.0, 3.0])
    fixed = blob_volume(SHAPE, affine, seed=3)
    moving = blob_volume(SHAPE, affine, shift_mm=shift, seed=3)
    fixed.save(root / "fixed.nii.gz")
    moving.save(root / "moving.nii.gz")
    fixed.with_array((fixed.array > 2.4).astype(np.int32)).save(root / "fixed_labels.nii.gz")
    moving.with_array((moving.array > 2.4).astype(np.int32)).save(root / "moving_labels.nii.gz")
    (root / "labels.json").write_text(json.dumps({"blob": 1}))
    rng = np.random.default_rng(0)
    points = fixed.grid.index_to_world(rng.uniform(8, np.array(fixed.shape) - 9, (25, 3)))
    pd.DataFrame(points, columns=list("xyz")).assign(kind="test").to_csv(
        root / "fixed_points.csv", index=False)
    pd.DataFrame(points + shift, columns=list("xyz")).to_csv(root / "moving_points.csv",
                                                             index=False)
    out = root / "out"
    code = main([
        "register", str(root / "fixed.nii.gz"), str(root / "moving.nii.gz"), "--out", str(out),
        "--fixed-labels", str(root / "fixed_labels.nii.gz"),
        "--moving-labels", str(root / "moving_labels.nii.gz"),
        "--label-names", str(root / "labels.json"),
        "--fixed-points", str(root / "fixed_points.csv"),
        "--moving-points", str(root / "moving_points.csv"),
    ])
    assert code == 0
    return root, out, affine, points, shift


def test_writes_all_outputs_with_fixed_affine(registered):
    root, out, affine, _, _ = registered
    names = {p.name for p in out.iterdir()}
    assert names == {"displacement.nii.gz", "warped.nii.gz", "warped_labels.nii.gz", "qc.png",
                     "summary.json"}
    for name in ("displacement.nii.gz", "warped.nii.gz", "warped_labels.nii.gz"):
        np.testing.assert_allclose(nib.load(out / name).affine, affine, atol=1e-5)
    assert nib.load(out / "warped.nii.gz").shape == SHAPE  # the fixed file's own order
    assert (out / "qc.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(root.glob(".out.partial-*"))  # staging folder cleaned up


def test_summary_records_run_and_metrics(registered):
    _, out, affine, _points, shift = registered
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "mind" and summary["profile"] == "fast"
    assert summary["params"]["iterations"] > 0 and summary["device"] == "cpu"
    assert set(summary["seconds"]) >= {"features", "optimisation", "total"}
    assert summary["peak_rss_mib"] > 50
    # `fast` registers the images' own voxels (work_spacing 0)
    assert summary["params"]["work_spacing"] == 0.0
    spacing = np.linalg.norm(affine[:3, :3], axis=0)  # the file's voxel sizes, in its order
    assert sorted(summary["work_spacing_mm"]) == pytest.approx(sorted(spacing), abs=1e-3)
    assert summary["pooling_factors"] == {"convex": [4, 4, 4], "adam": [2, 2, 2]}
    # Adam's cells of 2 voxels, 4-8 mm: `fast`'s 15 mm of smoothing takes its 3 passes of
    # a 7-cell box, or 4 along an axis of cells under 4.33 mm; the cells' geometric mean is
    # over 4.4 mm, so the regulariser keeps its weight
    cells = np.asarray(summary["work_spacing_mm"]) * 2
    assert summary["smoothing_passes"] == [4 if c < 15 / 12 ** 0.5 else 3 for c in cells]
    assert np.prod(cells) ** (1 / 3) >= 4.4 and summary["regularisation_weight"] == 2.0
    metrics = summary["metrics"]
    # TRE before registration is the mean distance between corresponding landmarks.
    assert metrics["tre_mean_before_mm"] == pytest.approx(np.linalg.norm(shift), abs=1e-4)
    assert metrics["tre_mean_after_mm"] < SUB_VOXEL_MM < metrics["tre_mean_before_mm"]
    assert metrics["dice_blob"] > metrics["dice_blob_before"]
    assert metrics["jac_nonpos_pct"] == 0.0 and metrics["sdlogj"] < 0.2
    assert metrics["hd95_breast_mm"] is None  # no breast tissue names in this label map


def test_simpleitk_applies_field_like_warped(registered):
    root, out, _, _, _ = registered
    transform = sitk.DisplacementFieldTransform(
        sitk.ReadImage(str(out / "displacement.nii.gz"), sitk.sitkVectorFloat64))
    theirs = sitk.GetArrayFromImage(sitk.Resample(
        sitk.ReadImage(str(root / "moving.nii.gz")), sitk.ReadImage(str(root / "fixed.nii.gz")),
        transform, sitk.sitkLinear, 0.0))
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "warped.nii.gz")))
    inner = (slice(4, -4),) * 3
    np.testing.assert_allclose(ours[inner], theirs[inner], atol=1e-3)


def test_apply_reproduces_warped_and_maps_points(registered, tmp_path):
    root, out, _, points, shift = registered
    disp = str(out / "displacement.nii.gz")
    fixed = str(root / "fixed.nii.gz")
    assert main(["apply", disp, "--fixed", fixed, "--image", str(root / "moving.nii.gz"),
                 "--out", str(tmp_path / "w.nii.gz")]) == 0
    # Equal up to float32 rounding of the field's trip through the file.
    np.testing.assert_allclose(nib.load(tmp_path / "w.nii.gz").get_fdata(),
                               nib.load(out / "warped.nii.gz").get_fdata(), atol=1e-5)
    assert main(["apply", disp, "--fixed", fixed, "--labels",
                 str(root / "moving_labels.nii.gz"), "--out", str(tmp_path / "l.nii.gz")]) == 0
    np.testing.assert_array_equal(nib.load(tmp_path / "l.nii.gz").get_fdata(),
                                  nib.load(out / "warped_labels.nii.gz").get_fdata())
    assert main(["apply", disp, "--fixed", fixed, "--points", str(root / "fixed_points.csv"),
                 "--out", str(tmp_path / "to_moving.csv")]) == 0
    mapped = pd.read_csv(tmp_path / "to_moving.csv")
    assert list(mapped["kind"]) == ["test"] * len(points)  # extra columns kept
    errors = np.linalg.norm(mapped[list("xyz")].to_numpy() - (points + shift), axis=1)
    assert errors.mean() < SUB_VOXEL_MM
    assert main(["apply", disp, "--fixed", fixed, "--points", str(tmp_path / "to_moving.csv"),
                 "--inverse", "--out", str(tmp_path / "back.csv")]) == 0
    back = pd.read_csv(tmp_path / "back.csv")
    np.testing.assert_allclose(back[list("xyz")].to_numpy(), points, atol=0.05)
    assert back["residual_mm"].max() < 0.05


def _run(args, cwd=None):
    return subprocess.run([sys.executable, "-m", "breastlib", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _assert_clean_failure(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("breastlib: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def pair_files(tmp_path):
    affine = centred_affine((20, 20, 12), spacing=(2.0, 2.0, 3.0))
    blob_volume((20, 20, 12), affine).save(tmp_path / "f.nii.gz")
    blob_volume((20, 20, 12), affine, seed=1).save(tmp_path / "m.nii.gz")
    return tmp_path


def test_missing_file_fails_cleanly_without_output(pair_files):
    out = pair_files / "out"
    result = _run(["register", str(pair_files / "f.nii.gz"), str(pair_files / "nope.nii.gz"),
                   "--out", str(out)])
    _assert_clean_failure(result, "nope.nii.gz", "not found")
    assert not out.exists()


def test_corrupt_nan_and_4d_inputs_fail_cleanly(pair_files):
    corrupt = pair_files / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b garbage")
    nan = np.ones((8, 8, 6), np.float32)
    nan[2, 2, 2] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), pair_files / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 6, 3), np.float32), np.eye(4)),
             pair_files / "dce.nii.gz")
    fixed = str(pair_files / "f.nii.gz")
    for name, fragment in [("corrupt.nii.gz", "cannot read"), ("nan.nii.gz", "--nan zero"),
                           ("dce.nii.gz", "--volume-index")]:
        result = _run(["register", fixed, str(pair_files / name), "--out",
                       str(pair_files / "out")])
        _assert_clean_failure(result, name, fragment)
    assert not (pair_files / "out").exists()


def test_non_overlapping_grids_and_mismatched_labels_fail_cleanly(pair_files):
    far = np.diag([2.0, 2.0, 3.0, 1.0])
    far[:3, 3] = [5000.0, 0.0, 0.0]
    blob_volume((20, 20, 12), far).save(pair_files / "far.nii.gz")
    result = _run(["register", str(pair_files / "f.nii.gz"), str(pair_files / "far.nii.gz"),
                   "--out", str(pair_files / "out")])
    _assert_clean_failure(result, "far.nii.gz", "do not overlap")
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 6), np.int16), np.eye(4)),
             pair_files / "labels.nii.gz")
    result = _run(["register", str(pair_files / "f.nii.gz"), str(pair_files / "m.nii.gz"),
                   "--out", str(pair_files / "out"), "--fixed-labels",
                   str(pair_files / "labels.nii.gz"), "--moving-labels",
                   str(pair_files / "labels.nii.gz")])
    _assert_clean_failure(result, "labels.nii.gz", "does not match")
    assert not (pair_files / "out").exists()


def test_apply_rejects_field_of_another_image(pair_files):
    other = blob_volume((16, 16, 10), np.diag([2.0, 2.0, 3.0, 1.0]))
    from breastlib.displacement import Displacement

    Displacement.identity(other.grid).save(pair_files / "d.nii.gz")
    result = _run(["apply", str(pair_files / "d.nii.gz"), "--fixed",
                   str(pair_files / "f.nii.gz"), "--image", str(pair_files / "m.nii.gz"),
                   "--out", str(pair_files / "w.nii.gz")])
    _assert_clean_failure(result, "d.nii.gz", "does not match")
    assert not (pair_files / "w.nii.gz").exists()


def test_console_script_help_lists_subcommands():
    result = _run(["--help"])
    assert result.returncode == 0
    assert "register" in result.stdout and "apply" in result.stdout


def test_outputs_are_readable_by_others(registered):
    _, out, _, _, _ = registered
    for path in out.iterdir():
        assert path.stat().st_mode & 0o044 == 0o044, path  # not left private by mkstemp


def test_register_runs_a_classical_baseline(tmp_path):
    """`--method affine` goes through the same command: a mm shift on an oblique LPS grid."""
    affine = centred_affine(SHAPE, spacing=(2.1, 2.4, 3.0), angle_deg=17.0, lps=True)
    shift = np.array([5.0, -4.0, 3.0])
    blob_volume(SHAPE, affine, seed=3).save(tmp_path / "fixed.nii.gz")
    blob_volume(SHAPE, affine, shift_mm=shift, seed=3).save(tmp_path / "moving.nii.gz")
    out = tmp_path / "out"
    assert main(["register", str(tmp_path / "fixed.nii.gz"), str(tmp_path / "moving.nii.gz"),
                 "--out", str(out), "--method", "affine"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "affine" and summary["profile"] == "baseline"
    field = sitk.ReadImage(str(out / "displacement.nii.gz"), sitk.sitkVectorFloat64)
    centre = [s // 2 for s in field.GetSize()]
    lps = np.array(field[centre])
    ras = lps * np.array([-1.0, -1.0, 1.0])
    assert np.linalg.norm(ras - shift) < 0.5  # millimetres


def test_a_write_that_fails_in_the_writer_thread_is_reported_and_leaves_nothing(
        tmp_path, monkeypatch):
    """The NIfTI files compress in a second thread: a failure there (a full disk) must
    still stop the command with its error, and leave no output and no staging folder."""
    from breastlib.volume import Volume
    from breastlib.workflows import register_files

    affine = centred_affine(SHAPE, spacing=(2.0, 2.0, 2.5))
    blob_volume(SHAPE, affine, seed=1).save(tmp_path / "fixed.nii.gz")
    blob_volume(SHAPE, affine, shift_mm=np.array([2.0, 0, 0]), seed=1).save(
        tmp_path / "moving.nii.gz")
    existing = tmp_path / "out"
    existing.mkdir()
    (existing / "keep.txt").write_text("an earlier result")

    def full_disk(self, path, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(Volume, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        register_files(tmp_path / "fixed.nii.gz", tmp_path / "moving.nii.gz", existing,
                       method="affine")
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]
    assert not list(tmp_path.glob(".out.partial-*"))


def test_no_qc_skips_the_picture_and_changes_nothing_else(pair_files):
    """`--no-qc` writes every other output and the same field to the bit; neither run
    imports matplotlib (the picture is drawn with Pillow: matplotlib's import alone was
    most of a second)."""
    outputs = {}
    for flag in ([], ["--no-qc"]):
        out = pair_files / ("out" + "".join(flag))
        script = ("import sys; from breastlib.cli import main; "
                  f"code = main(['register', {str(pair_files / 'f.nii.gz')!r}, "
                  f"{str(pair_files / 'm.nii.gz')!r}, '--out', {str(out)!r}] + {flag!r}); "
                  "print(code, 'matplotlib' in sys.modules)")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outputs[bool(flag)] = out, done.stdout.split()
    (with_qc, (code, imported)), (without, (code_no, imported_no)) = outputs[False], outputs[True]
    assert (code, imported, code_no, imported_no) == ("0", "False", "0", "False")
    assert {p.name for p in with_qc.iterdir()} - {p.name for p in without.iterdir()} == {
        "qc.png"}
    assert not (without / "qc.png").exists()
    np.testing.assert_array_equal(
        nib.load(without / "displacement.nii.gz").get_fdata(),
        nib.load(with_qc / "displacement.nii.gz").get_fdata())
