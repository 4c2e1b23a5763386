"""Surface landmarks of the phantom (skin, pectoralis surface, lesion rim) and TRE by group."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from breastlib.errors import InputError
from breastlib.landmark_groups import tre_by_group
from breastlib.phantom.anatomy import Anatomy, draw_subject
from breastlib.phantom.labels import LABELS
from breastlib.phantom.landmarks import LANDMARK_GROUPS, landmark_group, surface_landmarks

SEED = 7  # its lesion has spicules, which the rim points must avoid
MUSCLE = (LABELS["pectoralis"], LABELS["chest_wall"])


@pytest.fixture(scope="module")
def anatomy():
    subject = draw_subject(SEED, lesion=True)
    assert subject.lesion is not None and len(subject.lesion.spicules) > 0
    return Anatomy(subject, raster_mm=1.0)


@pytest.fixture(scope="module")
def landmarks(anatomy):
    points, kinds = surface_landmarks(anatomy, np.random.default_rng(0))
    return points, np.array(kinds)


def _normals(f, points, h=0.05):
    """Unit central-difference gradients of a scalar field at ``(N, 3)`` points."""
    grad = np.stack([(f(points + h * e) - f(points - h * e)) / (2 * h) for e in np.eye(3)],
                    axis=1)
    return grad / np.linalg.norm(grad, axis=1, keepdims=True)


def _labels(anatomy, points):
    return anatomy.render(points)[0]


def _skin(anatomy, landmarks):
    """Skin points of each breast with the breast: ``[(Breast, (M, 3) points)]``."""
    points, kinds = landmarks
    skin = points[kinds == "skin"]
    return [(br, skin[np.sign(skin[:, 0]) == br.side]) for br in anatomy.subject.breasts]


def test_counts_kinds_and_order(anatomy):
    points, kinds = surface_landmarks(anatomy, np.random.default_rng(1), per_breast_skin=5,
                                      per_breast_chest=3, lesion_rim=4)
    per_breast = ["skin"] * 5 + ["chest_wall"] * 3
    assert kinds == per_breast * 2 + ["lesion_rim"] * 4
    assert points.shape == (len(kinds), 3)
    assert points.dtype == np.float64
    assert np.isfinite(points).all()
    # Breast by breast: the first block on the right (+x), the second on the left.
    right, left = points[:8], points[8:16]
    assert (right[:, 0] > 0).all() and (left[:, 0] < 0).all()


def test_default_counts(landmarks):
    _, kinds = landmarks
    assert (kinds == "skin").sum() == 24
    assert (kinds == "chest_wall").sum() == 16
    assert (kinds == "lesion_rim").sum() == 8


def test_skin_points_lie_on_the_breast_surface(anatomy, landmarks):
    for br, pts in _skin(anatomy, landmarks):
        assert len(pts) == 12
        assert np.abs(br.sdf(pts)[0]).max() < 0.5
        normal = _normals(lambda p, br=br: br.sdf(p)[0].astype(np.float64), pts)
        outside = _labels(anatomy, pts + 2.0 * normal)
        inside = _labels(anatomy, pts - 2.0 * normal)
        assert (outside == LABELS["background"]).all()
        assert (inside != LABELS["background"]).all()
        assert (inside != outside).all()


def test_skin_points_are_spread_over_the_breast_not_at_the_nipple(anatomy, landmarks):
    for br, pts in _skin(anatomy, landmarks):
        assert np.linalg.norm(pts - br.nipple, axis=1).min() > 20.0
        gaps = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(len(pts)) * 1e9
        assert gaps.min() > 10.0
        t, _, _ = br.local(pts.astype(np.float32))
        assert np.ptp(t) > 0.3  # from near the base towards the nipple


def test_chest_wall_points_lie_on_the_pectoralis_surface_under_the_breasts(anatomy, landmarks):
    points, kinds = landmarks
    pts = points[kinds == "chest_wall"]
    assert np.abs(anatomy.torso_sdf(pts) + anatomy.subcut).max() < 0.5
    normal = _normals(anatomy.torso_sdf, pts)
    assert (normal[:, 1] > 0.3).all()  # the anterior surface
    outside = _labels(anatomy, pts + 2.0 * normal)
    inside = _labels(anatomy, pts - 2.0 * normal)
    assert np.isin(inside, MUSCLE).all()
    assert not np.isin(outside, MUSCLE).any()
    for br in anatomy.subject.breasts:
        mine = pts[np.sign(pts[:, 0]) == br.side]
        assert len(mine) == 8
        _, a, b = br.local(mine.astype(np.float32))
        assert (np.hypot(a, b) < 1.0).all()  # under the breast's footprint


def test_lesion_rim_points_lie_on_the_lesion_boundary(anatomy, landmarks):
    points, kinds = landmarks
    pts = points[kinds == "lesion_rim"]
    centre = anatomy.subject.lesion.centre
    radius = np.linalg.norm(pts - centre, axis=1)
    ray = (pts - centre) / radius[:, None]
    assert (radius > 0.5 * anatomy.subject.lesion.radius).all()
    lesion = LABELS["lesion"]
    for step in (0.5, 2.0):
        inside = _labels(anatomy, centre + ray * np.maximum(radius - step, 0.5 * radius)[:, None])
        outside = _labels(anatomy, pts + step * ray)
        assert (inside == lesion).all()
        assert (outside != lesion).all()


def test_lesion_rim_points_avoid_the_spicules(anatomy):
    """Many rim points, so that some random rays would meet a spicule: none is on one."""
    points, _ = surface_landmarks(anatomy, np.random.default_rng(2), per_breast_skin=0,
                                  per_breast_chest=0, lesion_rim=64)
    lesion = anatomy.subject.lesion
    offset = points - lesion.centre
    radius = np.linalg.norm(offset, axis=1)
    width = 1.4 * min(1.0, lesion.radius / 5.0)  # the widest spicule (Anatomy._lesion)
    for row in lesion.spicules:
        cos = offset @ row[:3] / radius
        off_axis = radius * np.sqrt(np.maximum(1.0 - cos * cos, 0.0))
        assert ((cos <= 0) | (off_axis > width)).all()


def test_same_rng_seed_gives_the_same_points(anatomy, landmarks):
    again, kinds = surface_landmarks(anatomy, np.random.default_rng(0))
    np.testing.assert_array_equal(again, landmarks[0])
    assert kinds == landmarks[1].tolist()
    other, _ = surface_landmarks(anatomy, np.random.default_rng(1))
    assert not np.allclose(other, again)


def test_no_lesion_rim_without_a_lesion():
    subject = draw_subject(SEED, lesion=False)
    assert subject.lesion is None
    points, kinds = surface_landmarks(Anatomy(subject), np.random.default_rng(0))
    assert "lesion_rim" not in kinds
    assert kinds.count("skin") == 24 and kinds.count("chest_wall") == 16
    assert points.shape == (40, 3)


def test_zero_counts_and_negative_counts(anatomy):
    points, kinds = surface_landmarks(anatomy, np.random.default_rng(0), per_breast_skin=0,
                                      per_breast_chest=0, lesion_rim=0)
    assert points.shape == (0, 3) and kinds == []
    with pytest.raises(ValueError, match="per_breast_chest"):
        surface_landmarks(anatomy, np.random.default_rng(0), per_breast_chest=-1)


def test_every_phantom_kind_has_its_group(anatomy, landmarks):
    _, interior = anatomy.landmarks()
    assert {"nipple", "fgt_branch", "vessel_bifurcation", "lesion_centre",
            "sternum"} <= set(interior)
    expected = {"nipple": "interior", "fgt_branch": "interior",
                "vessel_bifurcation": "interior", "sternum": "interior",
                "lesion_centre": "lesion", "lesion_rim": "lesion", "skin": "skin",
                "chest_wall": "chest_wall", "pectoralis_surface": "chest_wall",
                "areola_skin": "skin"}
    for kind, group in expected.items():
        assert landmark_group(kind) == group, kind
    assert {landmark_group(k) for k in [*interior, *landmarks[1]]} == set(LANDMARK_GROUPS)
    assert LANDMARK_GROUPS == ("interior", "skin", "chest_wall", "lesion")


def test_tre_by_group_by_hand():
    errors = np.array([1.0, 2.0, 6.0, 3.0, 5.0, 10.0, 4.0, 1.0, 2.0])
    kinds = ["fgt_branch", "nipple", "skin", "chest_wall", "chest_wall", "lesion_rim",
             "lesion_centre", "skin", "skin"]
    out = tre_by_group(errors, kinds)
    assert out["interior"] == pytest.approx(1.5)
    assert out["skin"] == pytest.approx(3.0)  # (6 + 1 + 2) / 3, not the median 2
    assert out["chest_wall"] == pytest.approx(4.0)
    assert out["lesion"] == pytest.approx(7.0)
    assert [out[f"{g}_count"] for g in LANDMARK_GROUPS] == [2, 3, 2, 2]
    assert set(out) == {*LANDMARK_GROUPS, *(f"{g}_count" for g in LANDMARK_GROUPS)}


def test_tre_by_group_empty_group_is_nan_and_shapes_are_checked():
    out = tre_by_group(np.array([2.0, 4.0]), ["vessel_bifurcation", "sternum"])
    assert out["interior"] == pytest.approx(3.0)
    for group in ("skin", "chest_wall", "lesion"):
        assert np.isnan(out[group]) and out[f"{group}_count"] == 0
    with pytest.raises(InputError):
        tre_by_group(np.array([1.0, 2.0]), ["skin"])
    with pytest.raises(InputError):
        tre_by_group(np.ones((2, 3)), ["skin", "skin"])


def test_evaluation_does_not_import_the_phantom():
    code = ("import sys, breastlib.landmark_groups; "
            "sys.exit(any(m.startswith('breastlib.phantom') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
