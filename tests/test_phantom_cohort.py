"""Cohorts on disk: manifest, labels.json, NIfTI files, landmarks CSV, CLI, register."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from breastlib.displacement import Displacement
from breastlib.phantom import LABELS, MANIFEST_COLUMNS, Acquisition, make_cohort, make_pair
from breastlib.volume import load_volume

FAST = Acquisition(supersample=1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    return make_cohort("lesion", 1, "small", seed=2, out_dir=out, acquisition=FAST)


def test_manifest_and_labels(cohort):
    manifest = pd.read_csv(cohort)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert len(manifest) == 2 and sorted(manifest["has_lesion"]) == [False, True]
    assert set(manifest["task"]) == {"lesion"}
    labels = json.loads((cohort.parent / "labels.json").read_text())
    assert labels == LABELS
    for column in ("fixed_image", "moving_image", "fixed_labels", "moving_labels",
                   "fixed_landmarks", "moving_landmarks", "gt_displacement",
                   "gt_inverse_displacement"):
        for rel in manifest[column]:
            assert not Path(rel).is_absolute()
            assert (cohort.parent / rel).is_file(), rel
    assert not list(cohort.parent.rglob("*.part*"))  # atomic writes left no temporaries
    # Each pair names its recipe; a recipe changes with every generation parameter.
    assert manifest["recipe"].str.startswith("phantom-v").all()
    assert manifest["recipe"].nunique() == 2


def test_recipe_names_every_generation_parameter():
    from breastlib.phantom.cohort import pair_recipe

    base = pair_recipe("lesion", "small", 3, has_lesion=True, acquisition=FAST)
    assert base == pair_recipe("lesion", "small", 3, has_lesion=True, acquisition=FAST)
    others = {
        pair_recipe("sequence", "small", 3, has_lesion=True, acquisition=FAST),
        pair_recipe("lesion", "full", 3, has_lesion=True, acquisition=FAST),
        pair_recipe("lesion", "small", 4, has_lesion=True, acquisition=FAST),
        pair_recipe("lesion", "small", 3, has_lesion=False, acquisition=FAST),
        pair_recipe("lesion", "small", 3, has_lesion=True, acquisition=Acquisition()),
    }
    assert base not in others and len(others) == 5


def test_files_round_trip_the_pair(cohort):
    row = pd.read_csv(cohort).iloc[0]
    root = cohort.parent
    pair = make_pair("lesion", "small", seed=int(row["seed"]), has_lesion=bool(row["has_lesion"]),
                     acquisition=FAST)
    fixed = load_volume(root / row["fixed_image"])
    np.testing.assert_allclose(fixed.array, pair.fixed.array, rtol=1e-6)
    assert fixed.grid.same_as(pair.fixed.grid)
    labels = load_volume(root / row["fixed_labels"], labels=True)
    np.testing.assert_array_equal(labels.array, pair.fixed_labels.array)
    gt = Displacement.load(root / row["gt_displacement"])
    np.testing.assert_allclose(gt.millimetres(), pair.displacement.millimetres(), atol=1e-4)
    inv = Displacement.load(root / row["gt_inverse_displacement"])
    assert inv.grid.same_as(pair.moving.grid)
    fixed_pts = pd.read_csv(root / row["fixed_landmarks"])
    moving_pts = pd.read_csv(root / row["moving_landmarks"])
    assert list(fixed_pts.columns) == ["x", "y", "z", "kind"]
    assert len(fixed_pts) == row["n_landmarks"] >= 40
    assert (fixed_pts["kind"] == moving_pts["kind"]).all()
    mapped = gt.to_moving(fixed_pts[["x", "y", "z"]].to_numpy())
    err = np.linalg.norm(mapped - moving_pts[["x", "y", "z"]].to_numpy(), axis=1)
    assert err.max() < 0.01  # well under a voxel, after a float round trip through files


def test_cli_writes_a_cohort_that_register_consumes(tmp_path):
    cli = pytest.importorskip("breastlib.cli")
    out = tmp_path / "cohort"
    assert cli.main(["phantom", "--task", "sequence", "--pairs", "1", "--seed", "1",
                     "--out", str(out)]) == 0
    row = pd.read_csv(out / "manifest.csv").iloc[0]
    fixed_pts = pd.read_csv(out / row["fixed_landmarks"])[["x", "y", "z"]].to_numpy()
    moving_pts = pd.read_csv(out / row["moving_landmarks"])[["x", "y", "z"]].to_numpy()
    reg = tmp_path / "reg"
    code = cli.main([
        "register", str(out / row["fixed_image"]), str(out / row["moving_image"]),
        "--out", str(reg), "--profile", "fast",
        "--fixed-points", str(out / row["fixed_landmarks"]),
        "--moving-points", str(out / row["moving_landmarks"]),
        "--fixed-labels", str(out / row["fixed_labels"]),
        "--moving-labels", str(out / row["moving_labels"]),
        "--label-names", str(out / "labels.json"),
    ])
    assert code == 0
    summary = json.loads((reg / "summary.json").read_text())
    before = summary["metrics"]["tre_mean_before_mm"]
    expected = float(np.linalg.norm(fixed_pts - moving_pts, axis=1).mean())
    assert before == pytest.approx(expected, abs=1e-3)
    assert before > 3.0  # the visit regime leaves a real misalignment


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    cli = pytest.importorskip("breastlib.cli")
    assert cli.main(["phantom", "--task", "lesion", "--pairs", "0", "--out",
                     str(tmp_path)]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_missing_pairs_are_made_again_from_their_recipe(cohort, tmp_path, monkeypatch):
    """A cohort shipped as its manifest: a default pair whose files are missing is made
    from its recipe when loaded; a pair made with other options is refused, not guessed."""
    import shutil

    import breastlib.phantom.cohort as cohort_module
    from breastlib.errors import BreastlibError
    from breastlib.evaluate.pair import load_cohort_pair
    from breastlib.phantom.cohort import pair_recipe, restore_missing_pairs

    copy = tmp_path / "shipped"
    shutil.copytree(cohort.parent, copy)
    manifest = copy / "manifest.csv"
    assert restore_missing_pairs(manifest) == []  # nothing missing, nothing made
    table = pd.read_csv(manifest)
    lesion = table[table["has_lesion"]].iloc[0]
    shutil.rmtree(copy / lesion["pair_id"])
    with pytest.raises(BreastlibError, match="not a default phantom pair"):
        restore_missing_pairs(manifest)  # made with supersample=1: not rebuildable
    # the same pair under its default recipe is rebuilt (made fast here, with the call
    # recorded, since a default small pair takes about 20 s)
    table.loc[table["pair_id"] == lesion["pair_id"], "recipe"] = pair_recipe(
        "lesion", "small", int(lesion["seed"]), has_lesion=True)
    table.to_csv(manifest, index=False)
    calls = []

    def fast_make_pair(task, size, seed, *, has_lesion):
        calls.append((task, size, seed, has_lesion))
        return make_pair(task, size, seed, has_lesion=has_lesion, acquisition=FAST)

    monkeypatch.setattr(cohort_module, "make_pair", fast_make_pair)
    pair = load_cohort_pair(manifest, lesion["pair_id"])
    assert calls == [("lesion", "small", int(lesion["seed"]), True)]
    assert pair.fixed.array.shape == load_volume(
        cohort.parent / lesion["fixed_image"]).array.shape
    assert restore_missing_pairs(manifest) == []  # now on disk
