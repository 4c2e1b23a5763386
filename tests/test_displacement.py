"""Displacement fields: file format, warping, points and Jacobian against SimpleITK."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi
from synthetic_volumes import blob_volume

from breastlib.displacement import NIFTI_INTENT_VECTOR, Displacement
from breastlib.errors import InputError
from breastlib.volume import Volume


def smooth_field(grid, *, amplitude_mm: float = 6.0, seed: int = 0) -> Displacement:
    """A smooth random field with |u| up to about ``amplitude_mm``."""
    rng = np.random.default_rng(seed)
    field = np.stack([ndi.gaussian_filter(rng.standard_normal(grid.shape), 5) for _ in range(3)])
    field *= amplitude_mm / np.abs(field).max()
    return Displacement.from_millimetres(field, grid)


def interior(shape, margin=4):
    mask = np.zeros(shape, bool)
    mask[margin:-margin, margin:-margin, margin:-margin] = True
    return mask


def test_file_header_matches_simpleitk(tmp_path, grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    disp = smooth_field(fixed.grid)
    path = disp.save(tmp_path / "displacement.nii.gz")
    image = nib.load(path)
    header = image.header
    assert image.shape == (*shape, 1, 3)
    assert int(header["intent_code"]) == NIFTI_INTENT_VECTOR
    assert header.get_data_dtype() == np.float64
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    np.testing.assert_allclose(image.affine, affine, atol=1e-5)  # the fixed file's affine
    # What SimpleITK writes for the same field read back as a sitkVectorFloat64 image.
    field = sitk.ReadImage(str(path), sitk.sitkVectorFloat64)
    sitk.WriteImage(field, str(tmp_path / "by_sitk.nii.gz"))
    theirs = nib.load(tmp_path / "by_sitk.nii.gz")
    assert theirs.shape == image.shape
    assert int(theirs.header["intent_code"]) == NIFTI_INTENT_VECTOR
    np.testing.assert_allclose(np.asarray(theirs.dataobj), np.asarray(image.dataobj), atol=1e-9)
    np.testing.assert_allclose(theirs.affine, image.affine, atol=1e-4)


def test_components_are_lps_millimetres(tmp_path):
    affine = np.diag([-2.0, 3.0, 4.0, 1.0])  # file x axis runs R->L
    fixed = blob_volume((10, 8, 6), affine)
    shift_ras = np.array([1.0, 2.0, 3.0])
    field = np.broadcast_to(shift_ras[:, None, None, None], (3, *fixed.shape)).copy()
    path = Displacement.from_millimetres(field, fixed.grid).save(tmp_path / "d.nii.gz")
    data = np.asarray(nib.load(path).dataobj)
    np.testing.assert_allclose(data[0, 0, 0, 0], [-1.0, -2.0, 3.0])  # LPS


def test_simpleitk_warp_matches_ours(tmp_path, grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine, seed=1)
    moving_affine = np.diag([2.2, 2.1, 2.6, 1.0])
    moving_affine[:3, 3] = [-50.0, -80.0, -40.0]
    moving = blob_volume((50, 48, 36), moving_affine, seed=2)
    disp = smooth_field(fixed.grid, amplitude_mm=7.0)
    disp.save(tmp_path / "d.nii.gz")
    fixed.save(tmp_path / "f.nii.gz")
    moving.save(tmp_path / "m.nii.gz")
    ours = disp.warp(moving).save(tmp_path / "w.nii.gz")
    transform = sitk.DisplacementFieldTransform(
        sitk.ReadImage(str(tmp_path / "d.nii.gz"), sitk.sitkVectorFloat64)
    )
    theirs = sitk.Resample(sitk.ReadImage(str(tmp_path / "m.nii.gz")),
                           sitk.ReadImage(str(tmp_path / "f.nii.gz")), transform,
                           sitk.sitkLinear, 0.0)
    ours_array = sitk.GetArrayFromImage(sitk.ReadImage(str(ours)))
    theirs_array = sitk.GetArrayFromImage(theirs)
    # Compare where both interpolators are well inside the moving image (their border
    # handling differs by design: ITK extrapolates half a voxel, we pad with zeros).
    index = np.indices(fixed.shape, dtype=np.float64) + disp.field
    world = np.einsum("ij,j...->i...", fixed.affine[:3, :3], index)
    world += fixed.affine[:3, 3, None, None, None]
    inverse = np.linalg.inv(moving.affine)
    moving_index = np.einsum("ij,j...->i...", inverse[:3, :3], world)
    moving_index += inverse[:3, 3, None, None, None]
    inside = np.all([(moving_index[a] > 1) & (moving_index[a] < moving.shape[a] - 2)
                     for a in range(3)], axis=0)
    inside_file = fixed.grid.to_file_order(inside).transpose(2, 1, 0)
    assert inside_file.sum() > 0.3 * inside.size
    np.testing.assert_allclose(ours_array[inside_file], theirs_array[inside_file], atol=1e-4)
    # Output carries the fixed file's affine.
    np.testing.assert_allclose(nib.load(ours).affine, affine, atol=1e-5)


def test_file_round_trips(tmp_path, grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    disp = smooth_field(fixed.grid)
    again = Displacement.load(disp.save(tmp_path / "d.nii.gz"))
    assert again.grid.same_as(disp.grid)
    np.testing.assert_allclose(again.field, disp.field, atol=1e-5)
    l2r = Displacement.load_learn2reg(disp.save_learn2reg(tmp_path / "d.npz"), fixed)
    np.testing.assert_allclose(l2r.field, disp.field, atol=0.01)  # float16


def test_field_in_file_voxels_is_read_on_any_orientation(grid_case):
    """A field in voxels of the file's axes (Learn2Reg, the convexadam package) becomes the
    same displacement, whatever the file's orientation; a field of another shape is refused."""
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    disp = smooth_field(fixed.grid, amplitude_mm=4.0)
    to_file = fixed.grid.canonical_to_file_vectors()
    vectors = np.einsum("ij,j...->i...", to_file, disp.field.astype(np.float64))
    u_file = np.moveaxis(fixed.grid.to_file_order(np.moveaxis(vectors, 0, -1)), -1, 0)
    again = Displacement.from_file_voxels(u_file, fixed)
    np.testing.assert_allclose(again.field, disp.field, atol=1e-5)
    with pytest.raises(InputError, match="does not match the fixed file"):
        Displacement.from_file_voxels(np.moveaxis(u_file, 0, -1), fixed)


def test_learn2reg_field_drives_map_coordinates(tmp_path, grid_case):
    """The L2R convention: warped_file[i] = moving_file[i + u_file(i)] with map_coordinates."""
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine, seed=4)
    moving = blob_volume(shape, affine, seed=5)  # same grid, as Learn2Reg assumes
    disp = smooth_field(fixed.grid, amplitude_mm=5.0)
    disp.save_learn2reg(tmp_path / "d.npz")
    u_file = np.load(tmp_path / "d.npz")["arr_0"].astype(np.float64)
    moving_file = fixed.grid.to_file_order(moving.array)
    coords = np.indices(moving_file.shape, dtype=np.float64) + u_file
    warped_file = ndi.map_coordinates(moving_file, coords, order=1)
    ours_file = fixed.grid.to_file_order(disp.warp(moving).array)
    mask = fixed.grid.to_file_order(interior(fixed.shape))
    np.testing.assert_allclose(warped_file[mask], ours_file[mask], atol=0.02)


def test_points_both_directions(grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    disp = smooth_field(fixed.grid, amplitude_mm=5.0)
    rng = np.random.default_rng(1)
    index = rng.uniform(6, np.array(fixed.shape) - 7, size=(30, 3))
    points = fixed.grid.index_to_world(index)
    moved = disp.to_moving(points)
    u_mm = disp.millimetres()
    expected = points + np.stack(
        [ndi.map_coordinates(u_mm[c], index.T, order=1) for c in range(3)], axis=1
    )
    np.testing.assert_allclose(moved, expected, atol=1e-4)
    back, residual = disp.to_fixed(moved)
    np.testing.assert_allclose(back, points, atol=1e-3)
    assert residual.max() < 1e-3


def test_jacobian_matches_simpleitk_after_rotating_vectors(tmp_path, grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    disp = smooth_field(fixed.grid, amplitude_mm=8.0)
    ours = disp.jacobian_determinant()
    # SimpleITK's filter ignores the direction matrix: express vectors along the index
    # axes (in mm) first, then it computes the world Jacobian determinant.
    along_index = np.einsum("ij,j...->i...", fixed.grid.direction.T, disp.millimetres())
    image = sitk.GetImageFromArray(np.moveaxis(along_index, 0, -1).transpose(2, 1, 0, 3)
                                   .astype(np.float64), isVector=True)
    image.SetSpacing(tuple(float(s) for s in fixed.spacing))
    theirs = sitk.GetArrayFromImage(
        sitk.DisplacementFieldJacobianDeterminant(image)).transpose(2, 1, 0)
    mask = interior(fixed.shape, 2)
    np.testing.assert_allclose(ours[mask], theirs[mask], atol=1e-4)


@pytest.mark.parametrize("slab_voxels", [1, 37, 10**9])
def test_jacobian_does_not_depend_on_its_slabs(grid_case, monkeypatch, slab_voxels):
    """One row per slab, ragged slabs, one slab: the same determinant to the bit, the
    borders of every slab differentiated centrally and the image's own one-sidedly."""
    import breastlib.displacement as displacement_module

    _, shape, affine = grid_case
    disp = smooth_field(blob_volume(shape, affine).grid, amplitude_mm=8.0, seed=4)
    whole = disp.jacobian_determinant()
    monkeypatch.setattr(displacement_module, "_JACOBIAN_SLAB_VOXELS", slab_voxels)
    np.testing.assert_array_equal(disp.jacobian_determinant(), whole)
    # the same determinant from numpy.gradient over the whole field
    g = [np.gradient(disp.field[c].astype(np.float64)) for c in range(3)]
    j = [[g[c][a] + (c == a) for a in range(3)] for c in range(3)]
    reference = np.linalg.det(np.moveaxis(np.array(j), (0, 1), (-2, -1)))
    np.testing.assert_allclose(whole, reference, rtol=1e-6, atol=1e-6)


def test_jacobian_of_uniform_scaling_in_world_units(grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    scale = 1.1
    world_affine = np.eye(4)
    world_affine[:3, :3] *= scale
    disp = Displacement.from_world_affine(world_affine, fixed.grid)
    np.testing.assert_allclose(disp.jacobian_determinant(), scale**3, rtol=1e-5)


def test_jacobian_of_an_affine_map_is_its_determinant_everywhere(grid_case):
    """``u(p) = (A - I) p`` in world mm maps ``p -> A p``: ``J = det(A)`` at every voxel,
    whatever the grid's spacing, direction cosines and storage order."""
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    theta = np.deg2rad(20.0)
    rotation = np.array([[np.cos(theta), 0.0, np.sin(theta)], [0.0, 1.0, 0.0],
                         [-np.sin(theta), 0.0, np.cos(theta)]])
    shear = np.array([[1.0, 0.3, -0.2], [0.0, 1.0, 0.15], [0.0, 0.0, 1.0]])
    for scales, det in (((1.2, 0.9, 1.1), 1.188), ((1.0, -0.8, 1.25), -1.0)):
        matrix = rotation @ np.diag(scales) @ shear  # det = product of the scales
        assert np.linalg.det(matrix) == pytest.approx(det)
        index = np.indices(fixed.shape, dtype=np.float64).reshape(3, -1)
        world = fixed.affine[:3, :3] @ index + fixed.affine[:3, 3, None]
        field_mm = ((matrix - np.eye(3)) @ world).reshape(3, *fixed.shape)
        determinant = Displacement.from_millimetres(field_mm, fixed.grid).jacobian_determinant()
        np.testing.assert_allclose(determinant, det, rtol=1e-4)


def test_affine_composition_matches_world_map(grid_case):
    _, shape, affine = grid_case
    fixed = blob_volume(shape, affine)
    matrix = np.eye(4)
    matrix[:3, 3] = [3.0, -2.0, 1.5]
    disp = smooth_field(fixed.grid).then_affine(matrix)
    points = fixed.grid.index_to_world(np.array([[10.0, 12.0, 8.0]]))
    inner = smooth_field(fixed.grid).to_moving(points)
    np.testing.assert_allclose(disp.to_moving(points), inner + matrix[:3, 3], atol=1e-4)


def test_label_warp_is_nearest_and_keeps_values():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    labels = np.zeros((20, 20, 12), np.int32)
    labels[5:12, 5:12, 3:8] = 3
    labels[12:16, 6:10, 4:9] = 250
    volume = Volume.from_array(labels, affine, dtype=None)
    disp = smooth_field(volume.grid, amplitude_mm=3.0)
    warped = disp.warp_labels(volume)
    assert warped.array.dtype == np.int32
    assert set(np.unique(warped.array)) <= {0, 3, 250}


def test_shape_and_nan_checks(tmp_path):
    fixed = blob_volume((8, 8, 6), np.eye(4))
    with pytest.raises(InputError, match="does not match"):
        Displacement(np.zeros((3, 8, 8, 5), np.float32), fixed.grid)
    bad = np.zeros((3, 8, 8, 6), np.float32)
    bad[0, 1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        Displacement(bad, fixed.grid)
    fixed.save(tmp_path / "image.nii.gz")
    with pytest.raises(InputError, match="not a displacement"):
        Displacement.load(tmp_path / "image.nii.gz")
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        Displacement.identity(fixed.grid).to_moving(np.zeros((4, 2)))


def test_field_written_by_simpleitk_loads_as_ras_millimetres(tmp_path):
    """SimpleITK/ITK store vectors in LPS: (-1, -2, 3) there is (1, 2, 3) mm in RAS."""
    array = np.zeros((4, 5, 6, 3))  # (z, y, x, vector), identity direction: LPS axes
    array[...] = [-1.0, -2.0, 3.0]
    field = sitk.GetImageFromArray(array, isVector=True)
    field.SetSpacing((2.0, 3.0, 4.0))
    field.SetOrigin((10.0, -20.0, 5.0))
    sitk.WriteImage(field, str(tmp_path / "itk.nii.gz"))
    disp = Displacement.load(tmp_path / "itk.nii.gz")
    assert disp.grid.shape == (6, 5, 4)
    np.testing.assert_allclose(disp.millimetres(),
                               np.broadcast_to(np.array([1.0, 2.0, 3.0])[:, None, None, None],
                                               (3, 6, 5, 4)), atol=1e-6)
    point = disp.grid.index_to_world(np.array([[2.0, 2.0, 1.0]]))
    np.testing.assert_allclose(disp.to_moving(point), point + np.array([1.0, 2.0, 3.0]),
                               atol=1e-6)


def test_coverage_is_where_the_pull_back_lands_inside_the_moving_grid():
    from breastlib.grid import Grid

    fixed = Grid.from_file_affine((10, 6, 4), np.diag([2.0, 1.0, 3.0, 1.0]))
    moving = Grid.from_file_affine((6, 6, 4), np.diag([2.0, 1.0, 3.0, 1.0]))  # x 0-10 mm
    np.testing.assert_array_equal(Displacement.identity(fixed).coverage(moving).any(axis=(1, 2)),
                                  np.arange(10) <= 5)
    shifted = np.zeros((3, 10, 6, 4), np.float32)
    shifted[0] = 2.0  # pulls from 2 voxels further along x
    covered = Displacement(shifted, fixed).coverage(moving)
    assert covered[:4].all() and not covered[4:].any()
    # on a moving grid of another orientation and spacing the rule is the world's
    flipped = Grid.from_file_affine((12, 6, 4), np.array(
        [[-1.0, 0, 0, 11.0], [0, 1.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]]))  # x 0-11 mm
    got = Displacement.identity(fixed).coverage(flipped).all(axis=(1, 2))
    np.testing.assert_array_equal(got, np.arange(10) * 2.0 <= 11.5)
