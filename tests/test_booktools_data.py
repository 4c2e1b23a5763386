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
    assert min(full.pairs.values()) >= 10  # enough subjects for every claim's Holm family
    assert small.seeds == full.seeds == (0, 1, 2)
    monkeypatch.setenv(BUILD_ENV, "huge")
    with pytest.raises(ValueError, match=BUILD_ENV):
        current_build()


def test_cohort_is_generated_once_with_the_builds_pairs(monkeypatch, tmp_path):
    from breastlib.phantom.cohort import pair_recipe

    calls, restored = [], []

    def fake_make_cohort(task, n_pairs, *, size, seed, out_dir):
        calls.append((task, n_pairs, size, seed))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        recipes = "".join(f"{task},{task}_{i:03d},{pair_recipe(task, size, i)}\n"
                          for i in range(n_pairs))
        (Path(out_dir) / "manifest.csv").write_text("task,pair_id,recipe\n" + recipes)
        return Path(out_dir) / "manifest.csv"

    import breastlib.phantom
    import breastlib.phantom.cohort

    monkeypatch.setattr(breastlib.phantom, "make_cohort", fake_make_cohort)
    monkeypatch.setattr(breastlib.phantom.cohort, "restore_missing_pairs",
                        lambda manifest, ids: restored.append(ids))
    shipped = tmp_path / "data" / "cohort.csv"
    manifest = book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"],
                           shipped=shipped)
    assert manifest == tmp_path / "c" / "manifest.csv"
    assert calls == [("modality", 10, "full", 0)]
    assert shipped.read_text() == manifest.read_text()  # the copy the book commits
    assert restored[-1] == ["modality_000"]  # only the pair the chapters show is made
    book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"],
                shipped=shipped)
    assert len(calls) == 1  # an existing cohort is reused
    # a fresh checkout has the shipped manifest only: no generation at all
    import shutil

    shutil.rmtree(tmp_path / "c")
    book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"],
                shipped=shipped)
    assert len(calls) == 1 and manifest.read_text() == shipped.read_text()
    # a cohort left by an older phantom version (other recipes) is generated again
    stale = manifest.read_text().replace("phantom-v", "phantom-old-v")
    manifest.write_text(stale)
    shipped.write_text(stale)
    book_cohort("modality", cohort_root=tmp_path / "c", build=BUILDS["full"],
                shipped=shipped)
    assert len(calls) == 2
    assert bookdata.TASK_PAIRS["lesion"] == BUILDS["small"].pairs["lesion"]


def test_first_subject_is_the_lesion_pair_and_its_control(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("pair_id\nlesion_000_lesion\nlesion_000_control\nlesion_001_lesion\n")
    assert bookdata.first_subject(manifest) == ["lesion_000_lesion", "lesion_000_control"]
    manifest.write_text("pair_id\nsequence_000\nsequence_001\n")
    assert bookdata.first_subject(manifest) == ["sequence_000"]


def test_book_results_runs_random_seeds_and_adds_pretrained_beside(monkeypatch, tmp_path):
    """weights="auto": every encoder with random weights over the build's seeds, plus
    pretrained rows for the encoders whose checkpoint is cached, in one table."""
    import pandas as pd

    import breastlib.encoders
    import breastlib.phantom.cohort
    import breastlib.study.run as study

    calls = []

    def fake_run_study(manifest, methods, *, weights, seeds, **_):
        calls.append((list(methods), weights, tuple(seeds)))
        return pd.DataFrame({"method": methods, "weights": weights})

    monkeypatch.setattr(bookdata, "book_cohort", lambda *a, **k: tmp_path / "m.csv")
    monkeypatch.setattr(study, "plan_jobs", lambda *a, **k: ([], []))
    monkeypatch.setattr(study, "run_study", fake_run_study)
    monkeypatch.setattr(study, "write_results", lambda table, out: None)
    monkeypatch.setattr(breastlib.phantom.cohort, "restore_missing_pairs", lambda *a: [])
    monkeypatch.setattr(breastlib.encoders, "weights_setting",
                        lambda m, w: "pretrained" if m == "dinov2" else "random")
    build = bookdata.BookBuild("small", "small", "fast", {"sequence": 10}, (0, 1, 2))
    _, table = bookdata.book_results("sequence", build=build, results_root=tmp_path,
                                     methods=("mind", "sam", "dinov2"))
    assert calls == [(["mind", "sam", "dinov2"], "random", (0, 1, 2)),
                     (["dinov2"], "pretrained", (0, 1, 2))]
    assert len(table) == 4
    calls.clear()
    bookdata.book_results("sequence", build=build, results_root=tmp_path,
                          methods=("mind", "sam"), weights="random")
    assert calls == [(["mind", "sam"], "random", (0, 1, 2))]


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
    assert ("sam, medsam, sslsam are one and the same network (their pretrained weights "
            "are what tells them apart): it ran once per pair and seed, shown as medsam, "
            "sam.") in text
    only_sam = provenance(table[table["method"] != "medsam"])
    assert "shown as sam." in " ".join(only_sam.split())
    assert "full size" in provenance(table, size="full")
