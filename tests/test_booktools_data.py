"""The book's builds (``breastlib.booktools.data``): which cohort, profile and folders a
chapter reads; and the provenance line of its figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from breastlib.booktools import data as bookdata
from breastlib.booktools.data import BUILD_ENV, BUILDS, book_cohort, current_build


def test_small_is_the_default_and_full_is_corrected(monkeypatch):
    monkeypatch.delenv(BUILD_ENV, raising=False)
    small = current_build()
    assert (small.size, small.profile) == ("small", "fast")
    assert small.results_root("sequence") == Path("data/small/sequence")
    assert small.cohort_root("lesion") == Path("../_build/cohorts/small/lesion")
    monkeypatch.setenv(BUILD_ENV, "full")
    full = current_build()
    assert (full.size, full.profile) == ("full", "corrected")
    assert full.results_root("sequence") == Path("data/full/sequence")
    assert min(full.pairs.values()) >= 8  # enough pairs for every claim's Holm family
    monkeypatch.setenv(BUILD_ENV, "huge")
    with pytest.raises(ValueError, match=BUILD_ENV):
        current_build()


def test_cohort_is_generated_once_with_the_builds_pairs(monkeypatch, tmp_path):
    from breastlib.phantom.cohort import pair_recipe

    calls = []

    def fake_make_cohort(task, n_pairs, *, size, seed, out_dir):
        calls.append((task, n_pairs, size, seed))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        recipes = "".join(f"{task},{task}_{i:03d},{pair_recipe(task, size, i)}\n"
                          for i in range(n_pairs))
        (Path(out_dir) / "manifest.csv").write_text("task,pair_id,recipe\n" + recipes)
        return Path(out_dir) / "manifest.csv"

    import breastlib.phantom

    monkeypatch.setattr(breastlib.phantom, "make_cohort", fake_make_cohort)
    manifest = book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"])
    assert manifest == tmp_path / "c" / "manifest.csv"
    assert calls == [("modality", 8, "full", 0)]
    book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"])
    assert len(calls) == 1  # an existing cohort is reused
    # a cohort left by an older phantom version (other recipes) is generated again
    stale = manifest.read_text().replace("phantom-v", "phantom-old-v")
    manifest.write_text(stale)
    book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"])
    assert len(calls) == 2
    assert bookdata.TASK_PAIRS["lesion"] == BUILDS["small"].pairs["lesion"]


def test_provenance_says_what_ran_with_which_weights(monkeypatch):
    import pandas as pd

    from breastlib.booktools.figures import provenance

    monkeypatch.delenv(BUILD_ENV, raising=False)
    rows = [("sam", "random"), ("medsam", "random"), ("dinov2", "pretrained"),
            ("mind", None), ("ants", None)]
    table = pd.DataFrame([dict(task="sequence", pair_id=f"p{k}", method=m, weights=w,
                               profile="fast", status="ok")
                          for k in range(2) for m, w in rows])
    lines = provenance(table)
    assert max(len(line) for line in lines.splitlines()) <= 76  # one line of the page
    text = " ".join(lines.split())  # the claims below, whatever the line breaks
    assert "2 synthetic phantom pair(s) of task 'sequence', small size" in text
    assert "pretrained weights: dinov2." in text
    assert "RANDOM weights (architecture only, no pretraining): medsam, sam." in text
    assert "medsam, sam are one and the same network" in text
    assert "full size" in provenance(table, size="full")
