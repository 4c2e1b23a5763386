"""Volume IO and geometry, with SimpleITK and nibabel as independent oracles."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from synthetic_volumes import blob_volume, textured_blob

from breastlib.errors import InputError
from breastlib.volume import Volume, load_volume, volume_to_sitk


def test_save_load_keeps_file_grid_and_canonical_content(tmp_path, grid_case):
    name, shape, affine = grid_case
    volume = blob_volume(shape, affine)
    path = volume.save(tmp_path / f"{name}.nii.gz")
    written = nib.load(path)
    assert written.shape == shape  # the file's own voxel order is kept
    np.testing.assert_allclose(written.affine, affine, atol=1e-5)
    again = load_volume(path)
    np.testing.assert_array_equal(again.array, volume.array)
    np.testing.assert_allclose(again.affine, volume.affine, atol=1e-5)


def test_canonical_array_is_ras(grid_case):
    _, shape, affine = grid_case
    volume = blob_volume(shape, affine)
    direction = volume.grid.direction
    # Closest canonical orientation: each axis points mostly along +R, +A, +S.
    assert np.all(np.diag(direction) > 0.5)
    # The same world point holds the same value whatever the storage order.
    index = np.array([[5, 7, 3]])
    world = volume.grid.index_to_world(index)
    expected = textured_blob(world)[0]
    assert volume.array[5, 7, 3] == pytest.approx(expected, rel=1e-5)


def test_nifti_itk_nifti_round_trip(tmp_path, grid_case):
    _name, shape, affine = grid_case
    volume = blob_volume(shape, affine)
    path = volume.save(tmp_path / "a.nii.gz")
    image = sitk.ReadImage(str(path))
    sitk.WriteImage(image, str(tmp_path / "b.mha"))
    sitk.WriteImage(image, str(tmp_path / "c.nii.gz"))
    for other in ("b.mha", "c.nii.gz"):
        again = load_volume(tmp_path / other)
        np.testing.assert_allclose(again.array, volume.array, rtol=1e-6)
        np.testing.assert_allclose(again.affine, volume.affine, atol=1e-4)
    # Our own sitk conversion agrees with SimpleITK's reading of the file.
    ours = volume_to_sitk(volume)
    for a, b in zip(ours.TransformContinuousIndexToPhysicalPoint((1.5, 2.0, 3.25)),
                    image.TransformContinuousIndexToPhysicalPoint(
                        image.TransformPhysicalPointToContinuousIndex(
                            ours.TransformContinuousIndexToPhysicalPoint((1.5, 2.0, 3.25)))),
                    strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def _write_dicom_series(volume: Volume, folder) -> None:
    image = sitk.Cast(volume_to_sitk(volume.with_array(volume.array * 100)), sitk.sitkInt16)
    direction = image.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series = "1.2.826.0.1.3680043.2.1125.1"
    for k in range(image.GetDepth()):
        slice_ = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "MR",
            "0020|000e": series,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{p:.6f}" for p in position),
            "0020|0037": "\\".join(f"{d:.6f}" for d in (*direction[0::3], *direction[1::3])),
            "0018|0050": f"{image.GetSpacing()[2]:.6f}",
            "0008|0018": f"{series}.{k + 1}",
        }
        for tag, value in tags.items():
            slice_.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(slice_)


def test_dicom_series_geometry(tmp_path, grid_case):
    _name, shape, affine = grid_case
    volume = blob_volume(shape, affine)
    folder = tmp_path / "dicom"
    folder.mkdir()
    _write_dicom_series(volume, folder)
    loaded = load_volume(folder)
    np.testing.assert_allclose(loaded.affine, volume.affine, atol=1e-3)
    np.testing.assert_allclose(loaded.array, volume.array * 100, atol=1.0)  # int16 cast


def test_resample_matches_analytic_anatomy(grid_case):
    _, shape, affine = grid_case
    source = blob_volume(shape, affine)
    target_affine = np.diag([2.5, 2.5, 2.5, 1.0])
    target_affine[:3, 3] = [-10.0, -45.0, -20.0]
    target = blob_volume((24, 24, 20), target_affine)
    resampled = source.resample_to(target)
    inside = np.zeros(target.shape, bool)
    inside[6:-6, 6:-6, 6:-6] = True
    # Linear interpolation of a smooth function: a few per cent of its range.
    error = np.abs(resampled.array - target.array)[inside]
    assert error.max() < 0.05 * np.ptp(target.array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((8, 8), np.float32), "3-D"),
        (np.zeros((8, 8, 1), np.float32), "single slice"),
        (np.zeros((8, 8, 4, 3), np.float32), "--volume-index"),
    ],
)
def test_bad_shapes_raise_clear_errors(tmp_path, data, message):
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(InputError, match=message) as info:
        load_volume(path)
    assert str(path) in str(info.value)


def test_four_d_needs_volume_index(tmp_path):
    data = np.stack([np.full((6, 6, 4), i, np.float32) for i in range(3)], axis=-1)
    path = tmp_path / "dce.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    assert load_volume(path, volume_index=2).array.mean() == 2.0
    with pytest.raises(InputError, match="out of range"):
        load_volume(path, volume_index=3)


def test_nan_policy(tmp_path):
    data = np.ones((6, 6, 4), np.float32)
    data[1, 2, 3] = np.nan
    data[2, 2, 2] = np.inf
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(InputError, match="2 NaN/Inf"):
        load_volume(path)
    cleaned = load_volume(path, nan="zero")
    assert np.isfinite(cleaned.array).all() and cleaned.array.sum() == data.size - 2


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_volume(tmp_path / "nope.nii.gz")
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"this is not a nifti header" * 20))
    with pytest.raises(InputError, match="cannot read"):
        load_volume(corrupt)
    truncated = tmp_path / "truncated.nii.gz"
    blob_volume((10, 10, 6), np.eye(4)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot read"):
        load_volume(truncated)


def test_zero_size_axis_rejected():
    with pytest.raises(InputError, match="zero-size"):
        Volume.from_array(np.zeros((4, 0, 3), np.float32), np.eye(4))


def test_label_maps_keep_integers(tmp_path):
    labels = np.zeros((6, 6, 4), np.int32)
    labels[2:4, 2:4, 1:3] = 7
    path = tmp_path / "lab.nii.gz"
    Volume.from_array(labels, np.diag([-1.0, 1.0, 2.0, 1.0]), dtype=None).save(path)
    loaded = load_volume(path, labels=True)
    assert loaded.array.dtype == np.int32 and set(np.unique(loaded.array)) == {0, 7}
