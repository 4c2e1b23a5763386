"""Tissue contrast of the synthetic cohort follows the relaxation physics.

Targets and their sources: book/conventions.md, "Phantom physics".

Ratios are measured on the generated images inside the generated label map (eroded, so
partial volume at tissue borders does not bias them).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from breastlib.phantom import LABELS, Acquisition, render_subject, tissue_table
from breastlib.tissues import BREAST_TISSUES, breast_mask


@pytest.fixture(scope="module")
def subject():
    acq = Acquisition(supersample=1, noise=0.01)
    images, labels, anatomy = render_subject(3, "small", lesion=True, density="c",
                                             acquisition=acq)
    return images, labels.array, anatomy


def _core(labels: np.ndarray, name: str) -> np.ndarray:
    mask = labels == LABELS[name]
    core = binary_erosion(mask, iterations=1)
    return core if core.sum() >= 20 else mask


def _median(image: np.ndarray, labels: np.ndarray, name: str) -> float:
    mask = _core(labels, name)
    assert mask.sum() >= 5, f"no {name} voxels drawn"
    return float(np.median(image[mask]))


def _breast_ratio(image, labels, a, b):
    """Median ratio of tissues a:b inside the breasts only (y > chest, same coil region)."""
    front = np.zeros_like(labels, dtype=bool)
    front[:, labels.shape[1] // 2:, :] = True  # anterior half of the field of view
    ma = _core(labels, a) & front
    mb = _core(labels, b) & front
    return float(np.median(image[ma]) / np.median(image[mb]))


def test_label_names_follow_the_naming_rule():
    assert LABELS["background"] == 0
    assert len(set(LABELS.values())) == len(LABELS)
    for name in LABELS:
        for word in ("fat", "fgt", "fibro", "gland"):
            if word in name:
                assert name == ("fat" if word == "fat" else "fgt"), name
    json.dumps(LABELS)  # flat and serialisable
    assert set(BREAST_TISSUES) - {"duct"} <= set(LABELS)  # the phantom draws no ducts


def test_every_tissue_is_drawn(subject):
    _, labels, _ = subject
    present = set(np.unique(labels).tolist())
    for name in ("fat", "fgt", "skin", "nipple", "pectoralis", "rib", "lung", "heart",
                 "vessel", "lesion", "sternum", "chest_wall"):
        assert LABELS[name] in present, f"{name} missing from the label map"


def test_t1_fat_to_fgt_ratio(subject):
    images, labels, _ = subject
    assert 2.6 <= _breast_ratio(images["t1"].array, labels, "fat", "fgt") <= 3.4


def test_t2_fat_to_fgt_ratio(subject):
    images, labels, _ = subject
    assert 1.9 <= _breast_ratio(images["t2"].array, labels, "fat", "fgt") <= 2.5


def test_fat_suppression_and_its_failure_near_the_skin(subject):
    images, labels, _ = subject
    fs = images["t1fs"].array
    assert _breast_ratio(fs, labels, "fat", "fgt") < 0.35
    # Fat just under the skin is suppressed worse than deep fat.
    skin = labels == LABELS["skin"]
    near = (labels == LABELS["fat"]) & binary_erosion(~skin, iterations=1) & \
        ~binary_erosion(~skin, iterations=2)
    deep = (labels == LABELS["fat"]) & binary_erosion(~skin, iterations=6)
    deep &= breast_mask(labels, LABELS)
    assert np.median(fs[near]) > 1.3 * np.median(fs[deep])


def test_enhancement_order_on_early_post_contrast(subject):
    images, labels, _ = subject
    pre, post, sub = images["t1fs"].array, images["post"].array, images["sub"].array
    fgt_gain = _median(post, labels, "fgt") / _median(pre, labels, "fgt")
    assert 1.15 <= fgt_gain <= 1.8  # mild background parenchymal enhancement (~ +41 %)
    lesion = _median(sub, labels, "lesion")
    assert lesion > 2.0 * _median(sub, labels, "fgt")  # cancers enhance more than FGT
    assert _median(sub, labels, "heart") > _median(sub, labels, "fgt")
    assert abs(_median(sub, labels, "fat")) < 0.3 * _median(sub, labels, "fgt")
    # Subtraction is exactly post - pre.
    np.testing.assert_allclose(sub, post - pre, atol=1e-3)


def test_ct_hounsfield_units(subject):
    images, labels, _ = subject
    ct = images["ct"].array
    assert -130 <= _median(ct, labels, "fat") <= -70
    assert 20 <= _median(ct, labels, "fgt") <= 60
    assert -900 <= _median(ct, labels, "lung") <= -780
    assert _median(ct, labels, "rib") > 200
    assert _median(ct, labels, "background") < -950


def test_tissue_table_matches_the_cited_ratios():
    t1, t2 = tissue_table("t1"), tissue_table("t2")
    assert 2.7 <= t1["fat"] / t1["fgt"] <= 3.2
    assert 2.0 <= t2["fat"] / t2["fgt"] <= 2.4
    post, pre = tissue_table("post"), tissue_table("t1fs")
    assert post["fgt"] / pre["fgt"] == pytest.approx(1.41, abs=0.01)
    assert 0.1 <= pre["fat"] / pre["fgt"] <= 0.3
