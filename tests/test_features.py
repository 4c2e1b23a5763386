"""Volume -> feature volume: slice choice, geometry, PCA, interpolation, cache (tiny, CPU)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from breastlib.encoders._pca import fit_pca, project
from breastlib.errors import InputError
from breastlib.features import encoded_slices, feature_pair, resolve_settings
from breastlib.features.layout import SliceLayout, interpolate_z, prepare, to_voxels
from breastlib.volume import Volume

NAMES = ["sam", "medsam", "sslsam", "dinov2", "dinov2-s", "dinov2-b", "medclip", "biomedclip"]
TINY = {"sam": 32, "medsam": 32, "sslsam": 32, "medclip": 32, "biomedclip": 32,
        "dinov2": 28, "dinov2-s": 28, "dinov2-b": 28}


def _pair(shape=(24, 20, 10), spacing=(1.0, 1.2, 2.0), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(shape).astype(np.float32)
    affine = np.diag([*spacing, 1.0])
    return Volume.from_array(a, affine), Volume.from_array(np.roll(a, 1, 0), affine)


def test_encoded_slices_keep_the_last_slice():
    assert encoded_slices(13, 6) == [0, 6, 12]
    assert encoded_slices(14, 6) == [0, 6, 12, 13]
    assert encoded_slices(1, 6) == [0]


def test_z_interpolation_is_linear_and_exact_at_encoded_slices():
    index = encoded_slices(11, 4)  # [0, 4, 8, 10]
    z = torch.tensor(index, dtype=torch.float32)
    maps = (2 * z - 1)[:, None, None, None].expand(-1, 2, 3, 3).contiguous()
    out = interpolate_z(maps, index, 11)
    expected = 2 * torch.arange(11, dtype=torch.float32) - 1
    assert out.shape == (2, 3, 3, 11)
    assert torch.allclose(out[0, 0, 0], expected)
    assert out[..., 10].eq(maps[-1]).all()  # last encoded slice is not overwritten


def test_layout_gives_square_pixels_for_anisotropic_spacing():
    layout = SliceLayout.build((100, 50, 3), np.array([0.5, 2.0, 1.0]), 64, 16)
    # X extent 50 mm, Y extent 100 mm: rows (Y) fill the input, columns (X) half of it
    assert (layout.content_rows, layout.content_cols) == (64, 32)
    assert (layout.token_rows, layout.token_cols) == (4, 2)


def test_slice_orientation_and_token_to_voxel_mapping_round_trip():
    x, y = 40, 30
    xs, ys = torch.meshgrid(torch.arange(x), torch.arange(y), indexing="ij")
    field = (0.02 * xs + 0.05 * ys).float()[None]  # smooth, varies along both axes
    layout = SliceLayout.build((x, y, 1), np.array([1.0, 1.0, 1.0]), 64, 8)
    image = prepare(field, layout)
    assert image.shape == (1, 1, 64, 64)
    # radiological display: anterior (high Y) in the top row, the patient's right (high X
    # in RAS+) in the first column; the field grows with X, so the top row falls
    top = image[0, 0, 0, : layout.content_cols]
    assert top[0] > top[-1]
    assert image[0, 0, 0, 0] > image[0, 0, layout.content_rows - 1, 0]
    tokens = F.avg_pool2d(image, 8)
    back = to_voxels(tokens, layout)[0, 0]
    assert back.shape == (x, y)
    inner = (slice(4, -4), slice(4, -4))
    assert torch.allclose(back[inner], field[0][inner], atol=0.02)


def _svd_basis(rows, k, centred):
    data = rows - rows.mean(0) if centred else rows
    return np.linalg.svd(data.double().numpy(), full_matrices=False)[2][:k].T


@pytest.mark.parametrize("centred", [True, False])
def test_exact_pca_matches_svd_and_is_sign_stable(centred):
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(500, 6, generator=g) @ torch.diag(torch.tensor([5.0, 3, 2, 1, .5, .1]))
    rows = rows + 2.0
    comps, mean = fit_pca([rows[:200], rows[200:]], 3, centred=centred)
    ref = _svd_basis(rows, 3, centred)
    assert comps.dtype == torch.float32 and comps.shape == (6, 3)
    assert np.allclose(np.abs(comps.double().numpy().T @ ref), np.eye(3), atol=1e-4)
    assert torch.allclose(mean, rows.mean(0) if centred else torch.zeros(6), atol=1e-5)
    again, _ = fit_pca([rows], 3, centred=centred)
    assert torch.allclose(comps, again, atol=1e-5)


def test_lowrank_pca_is_seeded():
    rows = torch.randn(300, 10, generator=torch.Generator().manual_seed(1))
    a, _ = fit_pca([rows], 3, method="lowrank", seed=5, centred=False)
    b, _ = fit_pca([rows], 3, method="lowrank", seed=5, centred=False)
    assert torch.equal(a, b)


def test_projection_commutes_with_slice_interpolation():
    t0, t1 = torch.randn(2, 1, 8, 4, 4).unbind(0)
    comps, mean = fit_pca([t0.flatten(2).squeeze(0).T], 3)
    w = 0.3
    assert torch.allclose(project((1 - w) * t0 + w * t1, comps, mean),
                          (1 - w) * project(t0, comps, mean) + w * project(t1, comps, mean),
                          atol=1e-5)


def test_patient_right_is_on_the_image_left():
    """A volume bright only on the patient's right (high X in RAS+) gives slices bright in
    their left columns: the radiological convention, which a flipped X would break."""
    volume = torch.zeros((1, 20, 16))  # (B, X, Y)
    volume[:, 12:] = 1.0  # the patient's right half
    layout = SliceLayout.build((20, 16, 1), np.array([1.0, 1.0, 1.0]), 32, 8)
    image = prepare(volume, layout)[0, 0, : layout.content_rows, : layout.content_cols]
    third = layout.content_cols // 3
    assert image[:, :third].min() > 0.9 and image[:, -third:].max() < 0.1
    back = to_voxels(F.avg_pool2d(prepare(volume, layout), 8), layout)[0, 0]
    assert back[-1].mean() > 0.5 > back[0].mean()  # and back to the same side


def test_profiles_resolve_paper_corrected_and_fast_settings():
    pub = resolve_settings("dinov2", "corrected")
    assert (pub.input_size, pub.slice_step, pub.pca_dims) == (1792, 6, 8)
    assert (pub.input_norm, pub.final_norm, pub.fill, pub.blend, pub.pca) == (
        True, True, "pad", "linear", "exact")
    paper = resolve_settings("biomedclip", "paper")
    assert (paper.input_size, paper.input_norm, paper.final_norm, paper.fill, paper.blend,
            paper.pca) == (224, False, False, "stretch", "released", "released")
    assert resolve_settings("sam", "paper+aspect").fill == "pad"
    assert resolve_settings("sam", "corrected").input_size == 1024
    assert resolve_settings("sam", "fast").input_size < 1024
    assert resolve_settings("medclip", "fast", pca_dims=4).pca_dims == 4
    with pytest.raises(Exception, match="multiple of its patch size"):
        resolve_settings("dinov2", "fast", input_size=100)


@pytest.mark.parametrize("name", NAMES)
def test_every_encoder_gives_voxel_features_with_random_weights(name, tmp_path):
    fixed, moving = _pair()
    f, m, info = feature_pair(name, fixed, moving, input_size=TINY[name], slice_step=4,
                              device="cpu", cache_dir=tmp_path)
    k = info["pca_dims"]
    assert f.shape == m.shape == (k, *fixed.shape)
    assert f.dtype == m.dtype == torch.float32
    assert torch.isfinite(f).all() and torch.isfinite(m).all()
    assert info["weights"] == "random" and info["weights_sha256"] is None
    assert info["label"].endswith("(random init)")
    assert info["encoded_slices"] == 4  # slices 0, 4, 8 and the last one, 9
    for key in ("name", "input_size", "slice_step", "pca_dims", "seconds_features"):
        assert key in info


def test_sam_family_random_features_are_shared(tmp_path):
    fixed, moving = _pair()
    kw = {"input_size": 32, "slice_step": 4, "device": "cpu", "cache_dir": tmp_path}
    f1, _, i1 = feature_pair("sam", fixed, moving, **kw)
    f2, _, i2 = feature_pair("medsam", fixed, moving, **kw)
    assert i1["shared_with"] == ["medsam", "sam", "sslsam"] and i2["cached"]
    assert i2["preprocessing"] == i1["preprocessing"]  # one network, one preprocessing
    assert torch.equal(f1, f2)


def test_identity_determinism_and_seed(tmp_path):
    fixed, _ = _pair()
    kw = {"input_size": 28, "slice_step": 3, "device": "cpu", "cache": False}
    f, m, _ = feature_pair("dinov2-s", fixed, fixed, **kw)
    assert torch.equal(f, m)
    f2, _, _ = feature_pair("dinov2-s", fixed, fixed, **kw)
    assert torch.equal(f, f2)
    f3, _, _ = feature_pair("dinov2-s", fixed, fixed, seed=1, **kw)
    assert not torch.allclose(f, f3)


def test_cache_hit_miss_and_corrupt_entry(tmp_path):
    fixed, moving = _pair()
    kw = {"input_size": 32, "slice_step": 4, "device": "cpu", "cache_dir": tmp_path}
    f, m, info = feature_pair("biomedclip", fixed, moving, **kw)
    assert not info["cached"]
    f2, m2, info2 = feature_pair("biomedclip", fixed, moving, **kw)
    assert info2["cached"] and torch.equal(f, f2) and torch.equal(m, m2)
    _, _, info3 = feature_pair("biomedclip", fixed, moving, pca_dims=4, **kw)
    assert not info3["cached"]
    _, _, info4 = feature_pair("biomedclip", fixed, moving, uncentred=True, **kw)
    assert not info4["cached"]
    other = moving.with_array(moving.array * 0.5)
    _, _, info5 = feature_pair("biomedclip", fixed, other, **kw)
    assert not info5["cached"]
    from pathlib import Path

    Path(info["cache_file"]).write_bytes(b"corrupt")
    f6, _, info6 = feature_pair("biomedclip", fixed, moving, **kw)
    assert not info6["cached"] and torch.allclose(f6, f)


def test_mask_and_grid_checks(tmp_path):
    fixed, moving = _pair()
    kw = {"input_size": 32, "slice_step": 4, "device": "cpu", "cache": False}
    mask = np.zeros(fixed.shape, bool)
    with pytest.raises(InputError, match="covers no encoded token"):
        feature_pair("biomedclip", fixed, moving, mask=mask, **kw)
    mask[:, :12] = True
    f, _, info = feature_pair("biomedclip", fixed, moving, mask=mask, **kw)
    assert "masked" in info["pca"] and f.shape[0] == 12
    other = Volume.from_array(moving.array, np.diag([1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(InputError, match="same grid"):
        feature_pair("sam", fixed, other, **kw)


def test_a_feature_cache_that_cannot_be_written_warns_and_loses_nothing(tmp_path, monkeypatch):
    """A full disk under the feature cache (torch.save's short write is a RuntimeError)
    must not fail the registration that computed the features: the entry is skipped with a
    warning and no partial file is left behind."""
    import breastlib.features.cache as cache

    def full_disk(obj, target):
        Path(target).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(cache.torch, "save", full_disk)
    path = tmp_path / "entry.pt"
    with pytest.warns(UserWarning, match="feature cache entry not written"):
        written = cache.write_cache(path, torch.zeros(2, 3, 3, 3), torch.zeros(2, 3, 3, 3), {})
    assert written is False and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert cache.write_cache(path, torch.zeros(2, 3, 3, 3), torch.ones(2, 3, 3, 3), {})
    assert torch.equal(cache.read_cache(path)[1], torch.ones(2, 3, 3, 3))
