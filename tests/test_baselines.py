"""Classical baselines: identity, affine, ANTs SyN, elastix B-spline.

The geometry is deliberately awkward (oblique direction cosines, LPS storage order,
anisotropic voxels, origin off the world centre) so that any slip in the LPS/RAS,
index-order or direction conventions of the ANTs/ITK conversions shows up in mm.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from synthetic_volumes import blob_volume, centred_affine

from breastlib.displacement import Displacement
from breastlib.errors import InputError, MissingDependencyError
from breastlib.grid import LPS_FLIP
from breastlib.register import RegistrationResult, baselines
from breastlib.register.baselines import BASELINES, register_baseline

SHAPE = (40, 36, 28)
SHIFT = np.array([4.0, -3.0, 5.0])  # mm, RAS: the true pull-back field
# Short schedules for tiny volumes; the defaults are sized for ~128 x 128 x 64.
FAST = {
    "identity": {},
    "affine": {},
    "ants": {"reg_iterations": (30, 15, 5)},
    "elastix": {"affine_iterations": 100, "bspline_iterations": 100, "threads": 1},
}
# Mean error (mm) allowed in the central region; voxels are 2.0 x 2.4 x 3.0 mm.
TOLERANCE_MM = {"affine": 0.5, "ants": 1.0, "elastix": 1.5}


@pytest.fixture(scope="module")
def pair():
    affine = centred_affine(SHAPE, spacing=(2.0, 2.4, 3.0), angle_deg=17.0, lps=True)
    fixed = blob_volume(SHAPE, affine, seed=3)
    moving = blob_volume(SHAPE, affine, shift_mm=SHIFT, seed=3)
    return fixed, moving


@pytest.fixture(scope="module")
def results(pair):
    """One registration per method, shared by the tests below."""
    fixed, moving = pair
    cache: dict[str, RegistrationResult] = {}

    def get(method: str) -> RegistrationResult:
        if method not in cache:
            cache[method] = register_baseline(fixed, moving, method=method, **FAST[method])
        return cache[method]

    return get


def test_names():
    assert BASELINES == ("identity", "affine", "ants", "elastix")


def test_identity_is_zero(pair, results):
    fixed, moving = pair
    result = results("identity")
    assert result.profile == "baseline" and result.method == "identity"
    assert np.all(result.displacement.field == 0)
    assert result.displacement.grid.same_as(fixed.grid)
    np.testing.assert_array_equal(result.initial_matrix, np.eye(4))
    assert set(result.seconds) == {"init", "features", "optimisation", "total"}
    warped = result.displacement.warp(moving).array
    np.testing.assert_allclose(warped, moving.array, atol=1e-5)


@pytest.mark.parametrize("method", ["affine", "ants", "elastix"])
def test_known_translation_on_oblique_lps_grid(pair, results, method, centre_region):
    fixed, moving = pair
    result = results(method)
    disp = result.displacement
    assert isinstance(disp, Displacement) and disp.grid.same_as(fixed.grid)
    assert result.profile == "baseline" and result.device == "cpu"
    assert set(result.seconds) == {"init", "features", "optimisation", "total"}
    assert result.params["seed"] == 0 and result.params["method"] == method

    u = disp.millimetres()
    region = centre_region(fixed.shape)
    error = np.linalg.norm(u[:, region] - SHIFT[:, None], axis=0)
    assert error.mean() < TOLERANCE_MM[method], (
        f"{method}: shift {SHIFT} mm recovered with mean error {error.mean():.3f} mm "
        f"(median {np.median(error):.3f}, max {error.max():.3f})")

    # Points: fixed landmarks map to where the same tissue sits in the moving image.
    rng = np.random.default_rng(0)
    index = rng.uniform(0.35, 0.65, size=(20, 3)) * (np.array(SHAPE) - 1)
    points = fixed.grid.index_to_world(index)
    mapped = disp.to_moving(points)
    point_error = np.linalg.norm(mapped - (points + SHIFT), axis=1)
    assert point_error.mean() < TOLERANCE_MM[method], point_error

    # The affine stage itself found the shift (translation part at the centre).
    centre = fixed.grid.index_to_world(((np.array(SHAPE) - 1) / 2.0)[None])[0]
    moved = (result.initial_matrix @ np.r_[centre, 1.0])[:3]
    assert np.linalg.norm(moved - centre - SHIFT) < 0.5

    # The warped moving image matches the fixed image better than before.
    warped = disp.warp(moving).array
    inner = centre_region(fixed.shape, 0.15)
    before = np.mean((moving.array - fixed.array)[inner] ** 2)
    after = np.mean((warped - fixed.array)[inner] ** 2)
    assert after < 0.25 * before, (before, after)


def _oblique_matrix() -> np.ndarray:
    """A fixed -> moving RAS world map with rotation, shear-free scaling and shift."""
    theta = np.deg2rad(6.0)
    matrix = np.eye(4)
    matrix[:3, :3] = np.array([[np.cos(theta), -np.sin(theta), 0.0],
                               [np.sin(theta), np.cos(theta), 0.0],
                               [0.0, 0.0, 1.0]]) @ np.diag([1.02, 0.98, 1.0])
    matrix[:3, 3] = [3.0, -2.0, 4.5]
    return matrix


def test_ants_conversion_is_exact(pair):
    """A known world affine written as an ANTs transform comes back as the same field."""
    ants = pytest.importorskip("ants")
    fixed, moving = pair
    matrix = _oblique_matrix()
    lps = LPS_FLIP @ matrix @ LPS_FLIP
    transform = ants.create_ants_transform(
        transform_type="AffineTransform", precision="double", dimension=3,
        matrix=lps[:3, :3], translation=lps[:3, 3],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "affine.mat")
        ants.write_transform(transform, path)
        disp = baselines._ants_field(
            ants, baselines._to_ants(fixed, ants), baselines._to_ants(moving, ants), [path],
            fixed,
        )
        # ANTs' own point mapping agrees too (points: LPS, same transform list).
        import pandas as pd

        points = fixed.grid.index_to_world(np.array([[3.0, 4.0, 5.0], [20.5, 17.0, 13.2]]))
        frame = pd.DataFrame(points @ LPS_FLIP[:3, :3], columns=["x", "y", "z"])
        ants_points = ants.apply_transforms_to_points(3, frame, [path]).to_numpy()
    want = Displacement.from_world_affine(matrix, fixed.grid)
    np.testing.assert_allclose(disp.millimetres(), want.millimetres(), atol=2e-3)
    np.testing.assert_allclose(disp.to_moving(points), (matrix[:3, :3] @ points.T).T
                               + matrix[:3, 3], atol=2e-3)
    # ANTs maps points through the same transform list fixed -> moving.
    np.testing.assert_allclose(ants_points @ LPS_FLIP[:3, :3], disp.to_moving(points),
                               atol=2e-3)


def test_elastix_conversion_is_exact(pair, tmp_path, monkeypatch):
    """A known affine in an elastix transform map comes back as the same field."""
    itk = pytest.importorskip("itk")
    monkeypatch.chdir(tmp_path)  # transformix writes into the current directory if let
    fixed, moving = pair
    fixed_image = baselines._to_itk(fixed, itk)
    moving_image = baselines._to_itk(moving, itk)
    parameters = itk.ParameterObject.New()
    stage = parameters.GetDefaultParameterMap("affine")
    stage["MaximumNumberOfIterations"] = ["1"]
    stage["NumberOfResolutions"] = ["1"]
    stage["WriteResultImage"] = ["false"]
    parameters.AddParameterMap(stage)
    _, transform = itk.elastix_registration_method(
        fixed_image, moving_image, parameter_object=parameters, log_to_console=False,
        number_of_threads=1,
    )
    # Overwrite the result with a known LPS affine about a known centre.
    matrix = _oblique_matrix()
    lps = LPS_FLIP @ matrix @ LPS_FLIP
    centre = np.array([5.0, -7.0, 2.0])
    translation = lps[:3, 3] - centre + lps[:3, :3] @ centre
    result_map = transform.GetParameterMap(0)
    result_map["TransformParameters"] = [
        repr(float(v)) for v in (*lps[:3, :3].ravel(), *translation)
    ]
    result_map["CenterOfRotationPoint"] = [repr(float(v)) for v in centre]
    known = itk.ParameterObject.New()
    known.AddParameterMap(result_map)
    np.testing.assert_allclose(baselines._elastix_affine_to_ras(result_map), matrix,
                               atol=1e-9)
    disp = baselines._elastix_field(itk, moving_image, known, fixed)
    want = Displacement.from_world_affine(matrix, fixed.grid)
    np.testing.assert_allclose(disp.millimetres(), want.millimetres(), atol=1e-3)
    assert list(tmp_path.iterdir()) == []  # no deformationField.nii left behind


@pytest.mark.parametrize("method", ["affine", "ants"])
def test_seeded_and_reproducible(pair, results, method):
    fixed, moving = pair
    again = register_baseline(fixed, moving, method=method, **FAST[method])
    np.testing.assert_array_equal(again.displacement.field, results(method).displacement.field)
    if method == "ants":
        assert again.params["reg_iterations"] == [30, 15, 5]


@pytest.mark.parametrize(("method", "module"), [("ants", "ants"), ("elastix", "itk")])
def test_missing_package_gives_install_hint(pair, monkeypatch, method, module):
    fixed, moving = pair
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError, match=r"breastlib\[baselines\]"):
        register_baseline(fixed, moving, method=method)


def test_bad_method_and_parameter(pair):
    fixed, moving = pair
    with pytest.raises(InputError, match="choose from identity, affine, ants, elastix"):
        register_baseline(fixed, moving, method="demons")
    with pytest.raises(InputError, match="reg_iterations"):
        register_baseline(fixed, moving, method="elastix", reg_iterations=(1,))
