"""Ground-truth deformations: magnitudes per regime, no folding, exact inverse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from breastlib.phantom import LABELS, Anatomy, draw_deformation, draw_subject, mri_grid
from breastlib.phantom.acquisition import ct_grid, grid_points
from breastlib.phantom.deformation import integrate
from breastlib.tissues import breast_mask


@pytest.fixture(scope="module")
def setting():
    anatomy = Anatomy(draw_subject(7), raster_mm=1.5)
    grid = mri_grid("small")
    pts = grid_points(grid)
    labels, _ = anatomy.render(pts)
    mask = breast_mask(labels, LABELS)
    breast = pts[mask][::7].astype(np.float64)
    lung = pts[labels == LABELS["lung"]][::50].astype(np.float64)
    return anatomy, grid, breast, lung


def _deform(setting, regime, seed, moving=None):
    anatomy, grid, breast, _ = setting
    rng = np.random.default_rng(seed)
    return draw_deformation(anatomy, regime, rng, grid, moving or grid, breast)


@pytest.mark.parametrize("seed", [0, 1])
def test_visit_regime_magnitudes(setting, seed):
    deform = _deform(setting, "visit", seed)
    info = deform.info
    # Smooth part calibrated to its drawn target (5-15 mm), rigid within the stated bounds.
    assert 5.0 * 0.95 <= info["deformation_p95_mm"] <= 15.0 * 1.05
    assert info["deformation_p95_mm"] == pytest.approx(info["deformation_target_mm"], rel=0.05)
    assert info["rotation_deg"] <= 5.0 and 2.0 <= info["translation_mm"] <= 8.0
    assert info["magnitude_mm"] >= 5.0


def test_position_regime_is_large_and_anisotropic(setting):
    deform = _deform(setting, "position", 3, moving=ct_grid("small"))
    _, _, breast, _ = setting
    assert 15.0 * 0.95 <= deform.info["magnitude_mm"] <= 30.0 * 1.05
    u = deform.soft_to_moving(breast.astype(np.float32)) - breast
    spread = np.abs(u).mean(axis=0)
    assert spread.max() > 2.0 * spread.min()  # anisotropic
    # The breasts flatten towards the chest: nipples move posteriorly by centimetres.
    anatomy = setting[0]
    nipples = np.array([b.nipple - 3.0 * b.axis for b in anatomy.subject.breasts])
    shift = deform.soft_to_moving(nipples.astype(np.float32)) - nipples
    assert np.all(shift[:, 1] < -10.0)


def test_static_regime_is_sub_millimetre(setting):
    deform = _deform(setting, "static", 4)
    assert deform.info["magnitude_mm"] < 1.0


def test_deformation_vanishes_at_the_chest_wall(setting):
    _, _, _, lung = setting
    deform = _deform(setting, "visit", 5)
    soft = deform.soft_to_moving(lung.astype(np.float32)) - lung
    assert np.percentile(np.linalg.norm(soft, axis=1), 99) < 0.5
    breast = setting[2]
    soft_b = deform.soft_to_moving(breast.astype(np.float32)) - breast
    assert np.percentile(np.linalg.norm(soft_b, axis=1), 95) > 4.0


@pytest.mark.parametrize("regime", ["visit", "position"])
def test_no_folding_and_inverse_consistency(setting, regime):
    _, grid, breast, _ = setting
    moving = ct_grid("small") if regime == "position" else grid
    deform = _deform(setting, regime, 11, moving=moving)
    gt = deform.displacement(grid)
    inv = deform.inverse_displacement(moving)
    assert gt.jacobian_determinant().min() > 0.0
    assert inv.jacobian_determinant().min() > 0.0
    # Round trip fixed -> moving -> fixed through the two stored fields.
    there = gt.to_moving(breast)
    back = inv.to_moving(there)
    err = np.linalg.norm(back - breast, axis=1)
    voxel = float(grid.spacing.min())
    assert np.percentile(err, 99) < 0.25 * voxel
    assert np.linalg.norm(there - breast, axis=1).mean() > 3.0  # it did move


def test_scaling_and_squaring_inverse_is_exact_for_a_smooth_field():
    rng = np.random.default_rng(0)
    shape = (24, 20, 16)
    white = rng.standard_normal((3, *shape))
    smooth = np.stack([gaussian_filter(c, 3.0) for c in white])
    v = torch.from_numpy((smooth / smooth.std() * 3.0).astype(np.float32))
    fwd, bwd = integrate(v, 5.0), integrate(-v, 5.0)
    assert fwd.abs().max() > 3.0
    # compose fwd then bwd at lattice nodes: x + f(x) + b(x + f(x)) == x
    from breastlib.phantom.noise import sample_grid

    idx = np.stack(np.meshgrid(*[np.arange(4, s - 4) for s in shape], indexing="ij"), -1)
    pts = idx.reshape(-1, 3).astype(np.float32) * 5.0
    f = sample_grid(fwd, np.zeros(3), 5.0, pts).T
    b = sample_grid(bwd, np.zeros(3), 5.0, pts + f).T
    assert np.abs(f + b).max() < 0.25  # interpolation error only: 5 % of a lattice cell
