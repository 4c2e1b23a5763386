"""The `paper` profile reproduces the released pipeline's behaviours; each correction
switches one of them to breastlib's, and `paper` with every correction is `corrected`.

Each released behaviour is checked as a behaviour (what it does to a field, a slice or a
token matrix), never by running the released code.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from breastlib.encoders import get_encoder
from breastlib.encoders._pca import fit_released_pca, project
from breastlib.errors import BreastlibError
from breastlib.features import encoded_slices, feature_pair
from breastlib.features.layout import (
    SliceLayout,
    image_tokens,
    interpolate_z,
    slice_weights,
    to_voxels,
)
from breastlib.features.pair import encode_volume
from breastlib.profiles import (
    CHOICES,
    CORRECTIONS,
    PROFILES,
    correction_table,
    get_profile,
    profile_names,
)
from breastlib.register import register_pair
from breastlib.register.adam import adam_step
from breastlib.register.convex import (
    compose_sample,
    coupled_argmin,
    search_offsets,
    ssd_cost_volume,
)
from breastlib.register.pipeline import _feature_factor
from breastlib.smoothing import box_smooth, warp_scale
from breastlib.volume import Volume

# -- profiles and corrections -----------------------------------------------------------


def test_paper_with_every_correction_is_corrected():
    paper = PROFILES["paper"]
    assert not paper.guard and paper.init == "none"
    everything = {}
    for correction in CORRECTIONS:
        changed = replace(paper, **correction.as_dict())
        assert changed != paper, correction.name  # each correction changes something
        for field, value in correction.overrides:
            assert getattr(PROFILES["corrected"], field) == value, (correction.name, field)
        everything |= correction.as_dict()
    assert replace(paper, **everything) == PROFILES["corrected"]


def test_every_switch_differs_between_paper_and_corrected_only_through_a_correction():
    switched = {field for c in CORRECTIONS for field, _ in c.overrides}
    paper, corrected = PROFILES["paper"].to_dict(), PROFILES["corrected"].to_dict()
    assert {k for k in paper if paper[k] != corrected[k]} == switched
    assert set(CHOICES) <= set(paper)


def test_published_is_renamed_with_a_clear_error():
    with pytest.raises(BreastlibError, match="renamed") as error:
        get_profile("published")
    assert "'paper'" in str(error.value) and "'corrected'" in str(error.value)
    assert "published" not in profile_names()


def test_paper_plus_one_correction_resolves():
    grid = get_profile("paper+grid")
    assert grid.grid == "consistent" and grid.adam_padding == "zeros"
    assert "paper+coupling" in profile_names()
    for bad in ("paper+nothing", "corrected+grid", "paper+"):
        with pytest.raises(BreastlibError, match="unknown profile"):
            get_profile(bad)
    with pytest.raises(BreastlibError, match="grid='sideways'"):
        get_profile("paper", grid="sideways")


def test_correction_table_has_one_full_row_per_correction():
    rows = correction_table()
    assert [r["correction"] for r in rows] == [c.name for c in CORRECTIONS]
    for row in rows:
        assert all(row[k].strip() for k in ("released code", "breastlib", "why", "switch"))


# -- smoothing and grids ------------------------------------------------------------------


@pytest.mark.parametrize(("kernel", "passes", "shape"), [(3, 2, (9, 8, 7)), (7, 5, (12, 8, 7))])
def test_zero_padded_smoothing_is_the_zero_padded_average_pool(kernel, passes, shape):
    field = torch.randn(1, 3, *shape, dtype=torch.float64, requires_grad=True)
    pooled = field
    for _ in range(passes):
        pooled = F.avg_pool3d(pooled, kernel, stride=1, padding=kernel // 2)
    ours = box_smooth(field, kernel=kernel, passes=passes, padding="zeros")
    torch.testing.assert_close(ours, pooled, atol=1e-12, rtol=0)
    weights = torch.randn_like(ours)
    torch.testing.assert_close(torch.autograd.grad((ours * weights).sum(), field)[0],
                               torch.autograd.grad((pooled * weights).sum(), field)[0],
                               atol=1e-12, rtol=0)


def test_zero_padding_pulls_a_constant_field_towards_zero_at_the_border():
    field = torch.full((1, 3, 20, 20, 20), 2.0)
    zeros = box_smooth(field, kernel=3, passes=1, padding="zeros")
    assert torch.allclose(zeros[..., 1:-1, 1:-1, 1:-1], field[..., 1:-1, 1:-1, 1:-1])
    assert torch.allclose(zeros[0, 0, 0, 0, 0], torch.tensor(2.0 * 8 / 27))  # a corner
    assert torch.allclose(zeros[0, 0, 0, 10, 10], torch.tensor(2.0 * 2 / 3))  # a face
    assert torch.equal(box_smooth(field, kernel=3, passes=1), field)  # replicate keeps it


def test_released_grid_moves_samples_by_n_over_n_minus_one():
    n = 9
    ramp = torch.arange(n, dtype=torch.float32).view(1, 1, n, 1, 1).expand(1, 3, n, 4, 4)
    shift = torch.zeros(1, 3, n, 4, 4)
    shift[:, 0] = 1.5
    scale = warp_scale((n, 4, 4))
    assert torch.allclose(scale, torch.tensor([9 / 8, 4 / 3, 4 / 3]))
    sampled = compose_sample(ramp.contiguous(), shift, scale=scale, padding="zeros")[0, 0, :, 1, 1]
    assert torch.allclose(sampled[:5], torch.arange(5.0) + 1.5 * 9 / 8, atol=1e-5)
    assert sampled[-1] == 0  # past the border: zero
    consistent = compose_sample(ramp.contiguous(), shift)[0, 0, :, 1, 1]
    assert torch.allclose(consistent[:5], torch.arange(5.0) + 1.5)
    assert consistent[-1] == n - 1  # border value


def test_released_adam_without_iterations_resizes_the_start_back():
    """No Adam step: the released path drops trailing voxels (n // 2 cells) and resizes
    the zero-padded smoothed field back, so a constant start shrinks at the border."""
    initial = torch.full((1, 3, 15, 12, 10), 2.0)
    features = torch.zeros(1, 2, 15, 12, 10)
    out = adam_step(features, features, initial, iterations=0, smooth_kernel=3,
                    smooth_passes=1, padding="zeros", grid="released")
    assert out.shape == initial.shape
    assert torch.allclose(out[..., 7, 6, 5], torch.tensor(2.0), atol=1e-5)
    assert out[0, 0, 0, 0, 0] < 1.0
    same = adam_step(features, features, initial, iterations=0, smooth_kernel=3,
                     smooth_passes=1)
    assert torch.allclose(same, initial)


# -- convex step --------------------------------------------------------------------------


def test_released_ties_take_the_first_offset_and_the_smoothed_field_is_returned():
    h = 2
    offsets = search_offsets(h, device=torch.device("cpu"))
    cost = torch.zeros(offsets.shape[0], 6, 6, 6)  # no information anywhere
    first = coupled_argmin(cost, offsets, (), tie_break=False, output="argmin")
    assert torch.all(first == -h)
    assert torch.all(coupled_argmin(cost, offsets, ()) == 0)  # breastlib: no motion
    smoothed = coupled_argmin(cost, offsets, (), tie_break=False, output="smoothed",
                              smooth=1, padding="zeros")
    assert torch.allclose(smoothed[0, :, 0, 0, 0], torch.tensor(-h * 8 / 27))
    assert torch.allclose(smoothed[0, :, 3, 3, 3], torch.tensor(-float(h)))


def test_zero_padded_cost_volume_sees_zero_features_past_the_border():
    fixed = torch.rand(1, 2, 5, 5, 5) + 1.0
    moving = torch.rand(1, 2, 5, 5, 5) + 1.0
    offsets = search_offsets(1, device=torch.device("cpu")).tolist()
    look_left = offsets.index([-1.0, 0.0, 0.0])
    zeros = ssd_cost_volume(fixed, moving, 1, smooth=0, padding="zeros")
    torch.testing.assert_close(zeros[look_left, 0], (fixed[0, :, 0] ** 2).sum(0))
    border = ssd_cost_volume(fixed, moving, 1, smooth=0)
    torch.testing.assert_close(border[look_left, 0], ((fixed[0, :, 0] - moving[0, :, 0]) ** 2)
                               .sum(0))


# -- slices and PCA -----------------------------------------------------------------------


def test_released_blend_overwrites_the_last_slice():
    depth, index = 15, encoded_slices(15, 6)  # [0, 6, 12, 14]
    weights = slice_weights(index, depth, "released")
    assert torch.allclose(weights.sum(1), torch.ones(depth, dtype=torch.float64))
    span = depth - index[-2]  # L = Z - p = 3
    # the encoded last slice becomes ((L - 1) last + previous) / L
    assert torch.allclose(weights[14, -2:], torch.tensor([1 / span, (span - 1) / span],
                                                         dtype=torch.float64))
    assert torch.allclose(weights[13, -2:], torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))
    linear = slice_weights(index, depth)
    assert torch.equal(weights[:13], linear[:13]) and linear[14, -1] == 1.0
    maps = torch.stack([torch.full((1, 2, 2), float(z)) for z in index])
    out = interpolate_z(maps, index, depth, "released")[0, 0, 0]
    assert torch.allclose(out[14], torch.tensor((2 * 14 + 12) / 3))
    assert torch.allclose(out[:13], torch.arange(13.0))


def test_released_pca_is_pca_lowrank_of_every_slice_with_uncentred_projection():
    g = torch.Generator().manual_seed(0)
    index, depth = [0, 3, 6, 8], 9
    vols = [torch.randn(4, 30, 10, generator=g) @ torch.diag(torch.linspace(3, 0.1, 10)) + 2.0
            for _ in range(2)]
    weights = slice_weights(index, depth, "released")
    rows = torch.cat([torch.einsum("ze,etc->ztc", weights.float(), v).reshape(-1, 10)
                      for v in vols])
    torch.manual_seed(7)
    _, _, reference = torch.pca_lowrank(rows, q=4)
    basis = fit_released_pca(vols, weights, 4, seed=7)
    torch.testing.assert_close(basis, reference, atol=1e-5, rtol=0)
    assert torch.equal(basis, fit_released_pca(vols, weights, 4, seed=7))  # seeded
    # the basis is the centred rows' (its first axis misses the mean direction) ...
    centred = rows - rows.mean(0)
    assert torch.allclose(basis.T @ basis, torch.eye(4), atol=1e-5)
    assert (centred @ basis).var(0)[0] > 0.9 * torch.linalg.svdvals(centred)[0] ** 2 / len(rows)
    # ... and it multiplies the uncentred tokens: the projection keeps the mean's image
    tokens = vols[0].permute(0, 2, 1).reshape(4, 10, 5, 6)
    projected = project(tokens, basis, torch.zeros(10))
    assert torch.allclose(projected.permute(0, 2, 3, 1).reshape(-1, 4), vols[0].reshape(-1, 10)
                          @ basis, atol=1e-5)


def _volumes(shape=(24, 18, 9)):
    rng = np.random.default_rng(1)
    a = rng.random(shape).astype(np.float32)
    affine = np.diag([1.0, 1.5, 2.0, 1.0])
    return Volume.from_array(a, affine), Volume.from_array(np.roll(a, 2, 0), affine)


def test_paper_features_are_the_uncentred_tokens_times_the_released_basis(tmp_path):
    """End to end on a tiny pair: a stretched input, raw [0, 1] values, tokens before the
    final norm, the released basis of every slice, and the released blend."""
    fixed, moving = _volumes()
    f, m, info = feature_pair("biomedclip", fixed, moving, profile="paper", input_size=32,
                              slice_step=3, device="cpu", cache=False, seed=3)
    assert info["slice_fill"] == "stretch" and info["slice_blend"] == "released"
    assert info["preprocessing"].startswith("raw") and "before" in info["tokens"]
    encoder = get_encoder("biomedclip", input_size=32, device="cpu", seed=3,
                          input_norm=False, final_norm=False)
    depth = fixed.shape[2]
    index = encoded_slices(depth, 3)
    layout = SliceLayout.build(fixed.shape, fixed.spacing, 32, 16, "stretch")
    assert (layout.content_rows, layout.content_cols) == (32, 32)
    tokens = [encode_volume(encoder, v.array, v.spacing, index, fill="stretch")
              for v in (fixed, moving)]
    weights = slice_weights(index, depth, "released")
    every = torch.cat([torch.einsum(
        "ze,etc->ztc", weights.float(),
        torch.stack([image_tokens(t[i : i + 1], layout, None) for i in range(len(index))]))
        .reshape(-1, t.shape[1]) for t in tokens])
    torch.manual_seed(3)
    _, _, basis = torch.pca_lowrank(every, q=12)
    expected = to_voxels(torch.einsum("bchw,ck->bkhw", tokens[0], basis), layout)
    # A principal axis has no sign: two routes to the same basis (here the library's, which
    # never stacks the blended slices, and the test's) may differ in rounding enough to flip
    # one (seen with 2 threads), so each component takes the sign of the library's.
    encoded = torch.stack([f[..., z] for z in index[:-1]])
    signs = torch.sign((encoded * expected[:-1]).sum(dim=(0, 2, 3)))
    expected = expected * signs.view(1, -1, 1, 1)
    for e, z in enumerate(index[:-1]):  # every encoded slice but the overwritten last one
        torch.testing.assert_close(f[..., z], expected[e], atol=2e-3, rtol=1e-3)
    last = (expected[-2] + 2 * expected[-1]) / 3  # L = 9 - 6 = 3
    torch.testing.assert_close(f[..., depth - 1], last, atol=2e-3, rtol=1e-3)
    assert f.shape == m.shape == (12, *fixed.shape)


def test_encoder_switches():
    slices = torch.rand(2, 1, 32, 32)
    raw = get_encoder("dinov2-s", input_size=28, device="cpu", input_norm=False)
    normal = get_encoder("dinov2-s", input_size=28, device="cpu")
    assert not torch.allclose(raw.encode(slices[..., :28, :28]),
                              normal.encode(slices[..., :28, :28]))
    # DINOv2 tokens stay after the final norm whatever final_norm says
    assert get_encoder("dinov2-s", input_size=28, device="cpu", final_norm=False).final_norm
    before = get_encoder("biomedclip", input_size=32, device="cpu", final_norm=False)
    after = get_encoder("biomedclip", input_size=32, device="cpu")
    tokens = before.encode(slices).flatten(2).transpose(1, 2)
    normed = before.network.norm(tokens).transpose(1, 2).reshape(2, -1, 2, 2)
    torch.testing.assert_close(normed, after.encode(slices), atol=1e-5, rtol=1e-5)
    # the SAM family keeps its released preprocessing (ImageNet for SAM) either way
    sam = [get_encoder("sam", input_size=32, device="cpu", input_norm=flag).encode(slices)
           for flag in (True, False)]
    assert torch.equal(sam[0], sam[1])


def test_raw_feature_spread_scales_mind_and_sam_only():
    params = get_profile("paper")
    a, b = torch.randn(3, 4, 4, 4) * 5, torch.randn(3, 4, 4, 4) * 5
    for method, factor in (("mind", 10.0), ("sam", 10.0), ("medsam", 10.0), ("dinov2", 1.0),
                           ("biomedclip", 1.0)):
        assert _feature_factor(method, a, b, params) == factor
    scale = _feature_factor("dinov2", a, b, get_profile("paper+spread"))
    fa, fb = a * scale, b * scale
    spread = torch.sqrt(0.5 * (fa.var() + fb.var()))
    assert torch.allclose(spread, torch.tensor(3.0), atol=1e-4)  # 0.3, then x10


@pytest.mark.parametrize("method", ["mind", "sam", "dinov2-s", "medclip"])
def test_register_pair_runs_the_paper_profile(method, tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTLIB_CACHE", str(tmp_path))
    fixed, moving = _volumes((26, 22, 13))
    size = {"mind": None, "sam": 32, "dinov2-s": 28, "medclip": 32}[method]
    result = register_pair(fixed, moving, method=method, profile="paper", iterations=2,
                           input_size=size, device="cpu")
    assert result.profile == "paper" and result.stage == "adam" and not result.stage_checks
    expected = get_profile("paper", iterations=2).to_dict() | {"init": "none", "seed": 0}
    assert result.params == expected
    assert np.isfinite(result.displacement.field).all()
    assert np.allclose(result.initial_matrix, np.eye(4))


def test_cli_says_what_replaced_a_renamed_profile(capsys):
    from breastlib.cli import main

    with pytest.raises(SystemExit):
        main(["register", "f.nii.gz", "m.nii.gz", "--out", "o", "--profile", "published"])
    error = capsys.readouterr().err
    assert "renamed" in error and "'paper'" in error and "'corrected'" in error
