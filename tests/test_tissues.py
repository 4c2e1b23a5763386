"""Tissue vocabulary (``breastlib.tissues``): breast and FGT masks are chosen by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from breastlib.errors import InputError
from breastlib.tissues import (
    BREAST_TISSUES,
    FGT_TISSUES,
    breast_mask,
    fgt_mask,
    load_label_names,
    tissue_mask,
)

#: Every breast tissue, the two non-breast neighbours of the breast, and other anatomy.
NAMES = {"background": 0, "skin": 1, "fat": 2, "fgt": 3, "duct": 4, "ligament": 5,
         "nipple": 6, "vessel": 7, "lesion": 8, "pectoralis": 9, "chest_wall": 10,
         "lung": 11, "rib": 12}


def test_vocabulary_excludes_pectoralis_and_chest_wall():
    assert set(BREAST_TISSUES) == {"skin", "fat", "fgt", "duct", "ligament", "nipple",
                                   "vessel", "lesion"}
    assert set(FGT_TISSUES) == {"fgt", "duct"}


def test_breast_and_fgt_masks_on_a_label_map_with_known_names():
    labels = np.arange(14).reshape(14, 1, 1)  # one voxel per value; 13 has no name
    breast = breast_mask(labels, NAMES)
    assert breast.shape == labels.shape and breast.dtype == bool
    assert np.flatnonzero(breast).tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert np.flatnonzero(fgt_mask(labels, NAMES)).tolist() == [3, 4]
    assert np.flatnonzero(tissue_mask(labels, NAMES, ("lesion", "rib"))).tolist() == [8, 12]


def test_masks_follow_names_not_values():
    # Another numbering: the value the phantom uses for skin is pectoralis here.
    names = {"pectoralis": 1, "chest_wall": 2, "fat": 7, "fgt": 9}
    labels = np.array([[[0, 1, 2], [7, 9, 3]]])
    assert breast_mask(labels, names).tolist() == [[[False, False, False], [True, True, False]]]
    assert fgt_mask(labels, names).tolist() == [[[False, False, False], [False, True, False]]]
    # A label map without any breast tissue name selects nothing.
    assert not breast_mask(labels, {"blob": 1, "other": 7}).any()
    assert not fgt_mask(labels, {}).any()


def test_load_label_names(tmp_path):
    assert load_label_names(None) is None
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"fat": 1, "fgt": 2}))
    assert load_label_names(path) == {"fat": 1, "fgt": 2}
    with pytest.raises(InputError, match="file not found"):
        load_label_names(tmp_path / "absent.json")
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_label_names(path)
    for bad in ([1, 2], {"fat": "1"}, {"fat": {"value": 1}}):
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError, match="flat JSON object"):
            load_label_names(path)
