"""ConvexAdam + MIND: the three peer tests, plus the building blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from synthetic_volumes import blob_volume, centred_affine

from breastlib.encoders.mind import mind_ssc
from breastlib.errors import BreastlibError
from breastlib.register import PROFILES, get_profile, register_pair
from breastlib.register.convex import search_offsets, ssd_cost_volume
from breastlib.smoothing import box_smooth, upsample_field


def test_identical_images_give_zero_field(blob_pair):
    fixed, _, _ = blob_pair
    result = register_pair(fixed, fixed, init="com")
    magnitude = result.displacement.magnitude_mm()
    # Adam moves every parameter by about the learning rate at first, whatever the
    # gradient's size, so "zero" is zero up to a small fraction of a voxel (2-3 mm here).
    assert magnitude.mean() < 0.15 and magnitude.max() < 1.0, magnitude.max()


def test_known_translation_recovered_in_mm(blob_pair, centre_region):
    fixed, moving, shift = blob_pair
    result = register_pair(fixed, moving, init="none")
    u = result.displacement.millimetres()
    region = centre_region(fixed.shape)
    error = np.linalg.norm(u[:, region] - shift[:, None], axis=0)
    # Voxels are 2.0 x 2.4 x 3.0 mm.
    assert error.mean() < 1.0, f"shift {shift} mm recovered with mean error {error.mean():.2f} mm"


def test_translation_beyond_search_window_needs_com_init(centre_region):
    shape = (44, 48, 32)
    affine = centred_affine(shape, (0.0, 0.0, 0.0), spacing=(4.5, 4.5, 4.5), angle_deg=10.0)
    shift = np.array([0.0, 70.0, -10.0])  # far beyond the 2 x 4-voxel (36 mm) search cube
    fixed = blob_volume(shape, affine, shift_mm=-shift / 2, seed=3)
    moving = blob_volume(shape, affine, shift_mm=shift / 2, seed=3)
    region = centre_region(shape)
    errors = {}
    for init in ("none", "com"):
        u = register_pair(fixed, moving, init=init, half_width=2).displacement.millimetres()
        errors[init] = np.linalg.norm(u[:, region] - shift[:, None], axis=0).mean()
    assert errors["com"] < 1.5, errors
    assert errors["none"] > errors["com"] + 1.0, errors  # the window alone falls short


def test_rotated_direction_cosines_give_identity_in_world(centre_region):
    """Same anatomy on grids with different direction cosines: the world map is identity."""
    shape = (44, 44, 30)
    fixed = blob_volume(shape, centred_affine(shape, spacing=(2.2, 2.2, 3.0), angle_deg=0.0),
                        seed=7)
    moving = blob_volume(shape, centred_affine(shape, spacing=(2.2, 2.2, 3.0), angle_deg=25.0,
                                               lps=True), seed=7)
    result = register_pair(fixed, moving, init="com")
    u = result.displacement.millimetres()
    centre = centre_region(shape, 0.3)
    assert np.linalg.norm(u[:, centre], axis=0).mean() < 1.0


def test_outputs_are_deterministic(blob_pair):
    fixed, moving, _ = blob_pair
    a = register_pair(fixed, moving, iterations=20)
    b = register_pair(fixed, moving, iterations=20)
    np.testing.assert_array_equal(a.displacement.field, b.displacement.field)
    assert a.params["iterations"] == 20 and a.device == "cpu"
    assert set(a.seconds) == {"init", "features", "optimisation", "convex", "adam", "guard",
                              "total"}
    assert a.seconds["optimisation"] == pytest.approx(a.seconds["convex"] + a.seconds["adam"])
    assert a.convex_displacement is None


def test_kept_convex_field_is_the_zero_iteration_result(blob_pair):
    fixed, moving, _ = blob_pair
    # The guard off: on a pure shift the affine start is already right, and the guard
    # would (rightly) keep it instead of either field compared here.
    both = register_pair(fixed, moving, iterations=15, keep_convex=True, guard=False)
    convex_only = register_pair(fixed, moving, iterations=0, guard=False)
    adam_only = register_pair(fixed, moving, iterations=15, guard=False)
    np.testing.assert_allclose(both.convex_displacement.field,
                               convex_only.displacement.field, atol=1e-5)
    np.testing.assert_allclose(both.displacement.field, adam_only.displacement.field,
                               atol=1e-5)
    assert np.abs(both.displacement.field - both.convex_displacement.field).max() > 1e-3
    np.testing.assert_array_equal(both.convex_displacement.grid.affine, fixed.affine)


def test_profiles_and_overrides():
    for name in ("paper", "corrected"):  # the paper's scale
        assert PROFILES[name].iterations == 1000 and PROFILES[name].learning_rate == 3.0
        assert PROFILES[name].smooth_kernel == 7 and PROFILES[name].smooth_passes == 5
        assert PROFILES[name].mind_radius == 3 and PROFILES[name].encoder_size == "paper"
    assert PROFILES["corrected"].guard and not PROFILES["paper"].guard
    assert PROFILES["convexadam"].regularisation == 1.25
    assert PROFILES["convexadam"].iterations == 80
    assert get_profile("fast", iterations=3).iterations == 3
    with pytest.raises(BreastlibError, match="unknown profile"):
        get_profile("quick")
    with pytest.raises(BreastlibError, match="lambda_"):
        get_profile("fast", lambda_=2)


def _pooled_box(field, kernel, passes):
    for _ in range(passes):
        field = F.avg_pool3d(F.pad(field, [kernel // 2] * 6, mode="replicate"), kernel, stride=1)
    return field


@pytest.mark.parametrize(("kernel", "passes", "shape"), [
    (3, 1, (20, 18, 16)), (5, 2, (20, 18, 16)), (7, 3, (9, 5, 2)), (7, 1, (2, 3, 1)),
])
def test_running_sum_smoothing_equals_box_filter(kernel, passes, shape):
    torch.manual_seed(0)
    field = torch.randn(2, 3, *shape, dtype=torch.float64, requires_grad=True)
    ours = box_smooth(field, kernel=kernel, passes=passes)
    naive = _pooled_box(field, kernel, passes)
    torch.testing.assert_close(ours, naive, atol=1e-12, rtol=0)
    weights = torch.randn_like(ours)
    grad_ours, = torch.autograd.grad((ours * weights).sum(), field)
    grad_naive, = torch.autograd.grad((naive * weights).sum(), field)
    torch.testing.assert_close(grad_ours, grad_naive, atol=1e-12, rtol=0)


def test_running_sums_keep_float32_precision_on_long_offset_lines():
    # A published-size coarse field (224 voxels per line) displaced by ~20 voxels: the
    # prefix sums would reach ~5000, where float32 steps are 5e-4, without centring.
    torch.manual_seed(1)
    field = 20.0 + torch.randn(1, 3, 224, 16, 8)
    exact = _pooled_box(field.double(), 7, 5)
    error = (box_smooth(field, kernel=7, passes=5).double() - exact).abs().max()
    assert error < 1e-5


def test_upsampling_keeps_a_constant_field_in_fine_voxels():
    coarse = torch.ones(1, 3, 4, 5, 6) * 2.0
    fine = upsample_field(coarse, 3, (11, 14, 17))
    assert fine.shape == (1, 3, 11, 14, 17)
    torch.testing.assert_close(fine, torch.full_like(fine, 6.0))


def test_cost_volume_minimum_at_true_shift():
    torch.manual_seed(0)
    fixed = torch.randn(1, 4, 12, 12, 12)
    moving = torch.roll(fixed, shifts=(2, -1, 1), dims=(2, 3, 4))
    cost = ssd_cost_volume(fixed, moving, 3, smooth=0)
    offsets = search_offsets(3, device=torch.device("cpu"))
    best = offsets[cost[:, 6, 6, 6].argmin()]
    assert best.tolist() == [2.0, -1.0, 1.0]


def test_mind_is_contrast_invariant_and_bounded():
    volume = blob_volume((24, 24, 16), np.diag([2.0, 2.0, 2.0, 1.0]))
    image = torch.from_numpy(volume.array)[None, None] / volume.array.max()
    features = mind_ssc(image, radius=1, dilation=2)
    assert features.shape == (1, 12, 24, 24, 16)
    assert float(features.min()) >= 0.0 and float(features.max()) <= 1.0 + 1e-6
    torch.testing.assert_close(mind_ssc(image * 3.0 + 0.5), features, atol=1e-4, rtol=1e-4)


def test_affine_init_recovers_rotation_and_shift():
    from breastlib.register.initial import initial_matrix

    shape = (40, 40, 28)
    affine = centred_affine(shape, (0.0, 0.0, 0.0), spacing=(4.0, 4.0, 4.5))
    fixed = blob_volume(shape, affine, seed=5)
    # Moving anatomy = fixed anatomy rotated 8 degrees about S and shifted, built exactly
    # by sampling the analytic object through the inverse map.
    theta = np.deg2rad(8.0)
    truth = np.eye(4)
    truth[:3, :3] = [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                     [0, 0, 1]]
    truth[:3, 3] = [6.0, -5.0, 4.0]
    from synthetic_volumes import textured_blob

    from breastlib.volume import Volume

    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    source = (world - truth[:3, 3]) @ np.linalg.inv(truth[:3, :3]).T  # truth^-1 (p)
    moving = Volume.from_array(textured_blob(source, seed=5), affine)
    matrix = initial_matrix(fixed, moving, "affine")
    probe = fixed.grid.index_to_world(np.array([[12, 14, 10], [28, 25, 18], [20, 20, 14]]))
    expected = probe @ truth[:3, :3].T + truth[:3, 3]
    mapped = probe @ matrix[:3, :3].T + matrix[:3, 3]
    assert np.linalg.norm(mapped - expected, axis=1).max() < 2.0


def test_affine_init_is_reproducible():
    from breastlib.register.initial import affine_matrix

    shape = (32, 32, 24)
    affine = centred_affine(shape, (0.0, 0.0, 0.0), spacing=(4.0, 4.0, 4.5))
    fixed = blob_volume(shape, affine, seed=5)
    moving = blob_volume(shape, affine, shift_mm=np.array([3.0, -2.0, 1.0]), seed=5)
    first = affine_matrix(fixed, moving, seed=0)
    np.testing.assert_array_equal(first, affine_matrix(fixed, moving, seed=0))


def test_block_average_keeps_world_positions_and_block_means():
    from breastlib.register.initial import block_average
    from breastlib.volume import Volume

    rng = np.random.default_rng(3)
    affine = np.diag([0.7, 0.7, 1.5, 1.0])
    affine[:3, 3] = (10.0, -20.0, 5.0)
    volume = Volume.from_array(rng.random((100, 97, 40), dtype=np.float32), affine)
    coarse = block_average(volume)  # factors round(2 / 0.7) = 3 and round(2 / 1.5) = 1
    assert coarse.shape == (33, 32, 40)
    np.testing.assert_allclose(coarse.spacing, [2.1, 2.1, 1.5])
    assert coarse.array[4, 5, 6] == pytest.approx(volume.array[12:15, 15:18, 6].mean(), rel=1e-5)
    # block (4, 5, 6) is centred on fine voxel (13, 16, 6)
    np.testing.assert_allclose(coarse.grid.index_to_world(np.array([[4.0, 5.0, 6.0]])),
                               volume.grid.index_to_world(np.array([[13.0, 16.0, 6.0]])))
    assert block_average(coarse) is coarse  # already coarse enough
