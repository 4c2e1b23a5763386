"""What the chapters call (breastlib.booktools.chapters, breastlib.viz.panels and the
cross-task figures), on small synthetic inputs and the committed study results; and the
chapters themselves stay narrative plus a few calls."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from breastlib.booktools import chapters
from breastlib.booktools.chapters import (
    CODE_LINE_LIMIT,
    SETUP_MARKER,
    StudyTables,
    TaskChapter,
    code_cell_lines,
    highlights,
    study_results,
)
from breastlib.booktools.data import BUILD_ENV, BUILDS
from breastlib.booktools.figures import (
    METRICS,
    distributions,
    error_by_task,
    flag_counts,
    primary_metric,
    ran_rows,
    rank_heatmaps,
    ranked_by,
    summary_table,
    task_means,
)
from breastlib.booktools.notebooks import MARKER, notebook_chapters
from breastlib.displacement import Displacement
from breastlib.profiles import get_profile
from breastlib.viz import panels
from breastlib.volume import Volume

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "book" / "data" / "small"
BENCHMARKS = ROOT / "benchmarks" / "results"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def committed() -> pd.DataFrame:
    """The small build's committed study rows, every task."""
    return pd.concat([pd.read_csv(SMALL / task / "results.csv")
                      for task in BUILDS["small"].pairs], ignore_index=True)


def volume(array: np.ndarray, spacing=(2.0, 2.5, 3.0), dtype=np.float32) -> Volume:
    return Volume.from_array(np.asarray(array), np.diag([*spacing, 1.0]), dtype=dtype)


# --- the chapters: narrative and a few calls ---------------------------------------------


@pytest.mark.parametrize("md", [p for p in notebook_chapters(ROOT) if p.stem != "method"],
                         ids=lambda path: path.stem)
def test_chapter_code_stays_short(md):
    lines = code_cell_lines(md.read_text())
    assert lines <= CODE_LINE_LIMIT, (
        f"{md.name}: {lines} lines of code (limit {CODE_LINE_LIMIT}): move logic into "
        "breastlib (booktools.chapters, viz.panels) and call it")


def test_task_chapters_differ_only_in_narrative_and_task():
    """Each task chapter renders its body by calls on task_chapter(its task)."""
    tasks = [p for p in (ROOT / "book").glob("task-*.md")]
    assert len(tasks) == 4
    for md in tasks:
        text = md.read_text()
        assert f'task_chapter("{md.stem.removeprefix("task-")}")' in text
        for call in ("show_comparison()", "show_explorer()", "show_comparison_explorer()",
                     "summary()", "show_distributions()", "highlights()"):
            assert f"chapter.{call}" in text, (md.name, call)


def test_code_cell_lines_skips_setup_cell_options_and_blank_lines():
    assert SETUP_MARKER == MARKER
    text = ("---\njupytext: {}\n---\n\n"
            f"```{{code-cell}} ipython3\n:tags: [remove-cell]\n{MARKER}: x\nimport sys\n```\n\n"
            "# Title\n\n```python\nnot = 'a cell'\n```\n\n"
            "```{code-cell} ipython3\n:tags: [remove-input]\nimport numpy\n\nx = 1  # one\n```\n"
            "text\n\n```{code-cell} ipython3\n# a comment counts\nprint(x)\n```\n")
    assert code_cell_lines(text) == 4
    assert code_cell_lines("no cells") == 0
    yaml_options = ("```{code-cell} ipython3\n---\ntags: [hide-input]\nmystnb:\n  figure:\n"
                    "    name: fig-x\n---\nplot()\n```\n")
    assert code_cell_lines(yaml_options) == 1


# --- all tasks at once -------------------------------------------------------------------


def test_ran_rows_keeps_ok_rows_and_labels_encoders():
    table = pd.DataFrame({"method": ["sam", "mind", "sam", "dinov2"],
                          "weights": ["random", None, "random", "pretrained"],
                          "status": ["ok", "ok", "failed", "ok"]})
    ran = ran_rows(table)
    assert list(ran["method"]) == ["sam (random)", "mind", "dinov2 (pretrained)"]
    assert list(table["method"]) == ["sam", "mind", "sam", "dinov2"]  # a copy
    assert ran_rows(table.iloc[:0]).empty


def test_study_results_reads_committed_rows_in_task_order(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    build = BUILDS["small"]
    assert study_results(build, compute=False).rows.empty  # nothing committed here
    for task in ("lesion", "sequence"):
        folder = build.results_root(task)
        folder.mkdir(parents=True)
        pd.DataFrame({"task": [task] * 2, "method": ["sam", "mind"],
                      "weights": ["random", ""], "status": ["ok", "failed"]}
                     ).to_csv(folder / "results.csv", index=False)
    study = study_results(build, compute=False)
    assert isinstance(study, StudyTables)
    assert list(study.rows["task"]) == ["sequence", "sequence", "lesion", "lesion"]
    assert list(study.ran["method"]) == ["sam (random)", "sam (random)"]


def test_study_results_computes_through_book_results(monkeypatch, committed):
    calls = []

    def fake_book_results(task, *, build):
        calls.append((task, build.name))
        return Path("manifest.csv"), committed[committed["task"] == task]

    monkeypatch.setattr(chapters, "book_results", fake_book_results)
    results, ran = study_results(BUILDS["small"])
    assert calls == [(task, "small") for task in BUILDS["small"].pairs]
    assert len(results) == len(committed)
    assert set(ran["status"]) == {"ok"} and "sam (random)" in set(ran["method"])
    note = chapters.build_note(StudyTables(results, ran), BUILDS["small"])
    assert note.startswith("build 'small': small phantoms, 'fast' profile, computed on cpu.")
    assert "pretrained encoders: none" in note


def test_build_note_names_pretrained_encoders():
    rows = pd.DataFrame({"method": ["sam", "dinov2", "mind"], "device": ["cuda", "cuda", None],
                         "weights": ["pretrained", "random", ""],
                         "status": ["ok", "ok", "ok"]})
    note = chapters.build_note(StudyTables(rows, ran_rows(rows)), BUILDS["full"])
    assert note == ("build 'full': full phantoms, 'corrected' profile, computed on cuda.\n"
                    "pretrained encoders: sam (pretrained)")


def test_show_full_build(monkeypatch, tmp_path, capsys, committed):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BUILD_ENV, raising=False)
    assert chapters.show_full_build() is None
    assert "No full-resolution study is committed yet" in capsys.readouterr().out
    folder = BUILDS["full"].results_root("sequence")
    folder.mkdir(parents=True)
    committed[committed["task"] == "sequence"].to_csv(folder / "results.csv", index=False)
    means = chapters.show_full_build()
    assert "full size" in capsys.readouterr().out
    assert set(means.index.get_level_values("task")) == {"sequence"}
    monkeypatch.setenv(BUILD_ENV, "full")
    assert chapters.show_full_build() is None
    assert "This page is the full build" in capsys.readouterr().out


def test_cross_task_tables_and_figures(committed):
    ran = ran_rows(committed)
    means = task_means(ran)
    assert list(means.columns) == [*METRICS.values(), "flagged"]
    assert set(means.index.get_level_values("task")) == set(BUILDS["small"].pairs)
    mind = ran[(ran["method"] == "mind") & (ran["task"] == "sequence")]
    assert means.loc[("mind", "sequence"), "TRE after (mm)"] == round(
        mind["tre_mean_after_mm"].mean(), 2)
    assert primary_metric(ran) == "field_error_mean_mm"  # every committed row has it
    assert ran["field_error_mean_mm"].notna().all() and ran["verdict"].notna().all()
    figure = error_by_task(ran)
    assert figure.axes[0].get_ylabel() == "mean dense error in the breast (mm)"
    figure = rank_heatmaps(ran, ("tre_mean_after_mm", "dice_fgt"))
    assert [ax.get_title() for ax in figure.axes] == ["TRE after (mm)", "Dice FGT"]
    assert "dense error" in ranked_by(ran)


def _ranked_rows() -> pd.DataFrame:
    """Three methods on two pairs of one task: the landmark error ranks a, b, c; the dense
    error ranks c, a, b; b folded on one pair, c is worse than identity on one."""
    rows = []
    for pair in ("p0", "p1"):
        for method, tre, dense, verdict in (("a", 1.0, 5.0, "ok"), ("b", 2.0, 6.0, "ok"),
                                           ("c", 3.0, 2.0, "ok"), ("identity", 9.0, 8.0,
                                                                   "ok")):
            if pair == "p1" and method == "b":
                verdict = "folded"
            if pair == "p1" and method == "c":
                verdict = "worse_than_identity"
            rows.append(dict(task="sequence", pair_id=pair, method=method, weights="",
                             status="ok", tre_mean_before_mm=10.0, tre_mean_after_mm=tre,
                             field_error_mean_mm=dense, dice_breast=0.9, dice_fgt=0.5,
                             jac_nonpos_pct=0.0, verdict=verdict,
                             stage_kept="identity" if method == "c" else "adam"))
    return pd.DataFrame(rows)


def test_tables_rank_by_the_dense_error_and_mark_flagged_rows():
    rows = _ranked_rows()
    assert primary_metric(rows) == "field_error_mean_mm"
    assert primary_metric(rows.drop(columns="field_error_mean_mm")) == "tre_mean_after_mm"
    summary = summary_table(rows)
    assert list(summary.index) == ["c", "a", "b", "identity"]
    assert summary.loc["b", "flagged"] == "1 F of 2"
    assert summary.loc["c", "flagged"] == "1 W of 2"
    assert summary.loc["a", "flagged"] == ""
    assert summary.loc["c", "guard"] == 2 and summary.loc["a", "guard"] == 0
    assert flag_counts(rows[rows["method"] == "a"]) == ""
    lines = highlights(summary).splitlines()
    assert lines[0] == "Lowest dense error: c (2.00 mm, against 8.00 mm with no registration)."
    assert lines[2].endswith("c (1 W of 2); b (1 F of 2)")  # in rank order
    by_tre = summary_table(rows.drop(columns="field_error_mean_mm"))
    assert list(by_tre.index) == ["a", "b", "c", "identity"]


def test_landmark_error_by_group_in_the_order_of_the_primary_metric():
    from breastlib.booktools.figures import landmark_group_table

    rows = _ranked_rows()
    assert landmark_group_table(rows).empty  # rows of phantom version 1: no groups
    rows["tre_interior_mm"] = rows["tre_mean_after_mm"] - 0.5
    rows["tre_chest_wall_mm"] = rows["tre_mean_after_mm"] * 2
    rows["tre_skin_mm"] = np.nan  # no skin landmark in these pairs: no column
    table = landmark_group_table(rows)
    assert list(table.index) == ["c", "a", "b", "identity"]
    assert list(table.columns) == ["all landmarks", "interior", "chest wall"]
    assert table.loc["b", "chest wall"] == 4.0 and table.loc["a", "interior"] == 0.5


def test_figures_mark_flagged_rows():
    ran = ran_rows(_ranked_rows())
    figure = error_by_task(ran)
    ax = figure.axes[0]
    hatched = [bar for container in ax.containers[1:] for bar in container if bar.get_hatch()]
    assert len(hatched) == 2  # b and c in the one task
    assert sorted(t.get_text() for t in ax.texts) == ["F", "W"]
    figure = rank_heatmaps(ran, ("field_error_mean_mm",))
    texts = [t.get_text() for t in figure.axes[0].texts]
    # Best first by the dense error; two decimals throughout, so the columns line up.
    assert texts == ["2.00 W", "5.00", "6.00 F", "8.00"]
    figure = distributions(ran)
    assert [ax.get_xlabel() for ax in figure.axes[:3]] == ["dense error (mm)",
                                                          "TRE after (mm)", "Dice breast"]


def test_answer_figure_flags_by_position_and_cuts_runaway_bars():
    """A method missing from one task must not shift its flags onto the next task, and a
    bar far above every error before registration is cut at the axis with its value."""
    rows = []
    for task, before in (("t1", 8.0), ("t2", 9.0)):
        rows.append(dict(task=task, pair_id=f"{task}p", method="identity", weights=None,
                         field_error_mean_mm=before, verdict="ok", status="ok"))
    rows.append(dict(task="t1", pair_id="t1p", method="mind", weights=None,
                     field_error_mean_mm=2.0, verdict="ok", status="ok"))
    rows.append(dict(task="t2", pair_id="t2p", method="sam", weights="random",
                     field_error_mean_mm=60.0, verdict="folded", status="ok"))
    figure = error_by_task(ran_rows(pd.DataFrame(rows)))
    ax = figure.axes[0]
    assert ax.get_ylim()[1] == pytest.approx(1.6 * 9.0)
    labels = {t.get_text(): t.xy[0] for t in ax.texts}
    assert list(labels) == ["F\n60"] and labels["F\n60"] > 0.5  # over t2, not t1
    hatched = [b for c in ax.containers[1:] for b in c if b.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_x() > 0.5
    # The distributions put errors spanning more than a decade on a log axis, not Dice.
    panels = distributions(ran_rows(pd.DataFrame(rows)), ("field_error_mean_mm",))
    assert panels.axes[0].get_xscale() == "log"
    assert panels.axes[0].get_xlabel().endswith(", log scale")
    calm = distributions(ran_rows(pd.DataFrame(rows[:3])), ("field_error_mean_mm",))
    assert calm.axes[0].get_xscale() == "linear"


# --- a task chapter ----------------------------------------------------------------------


def test_highlights_name_the_best_and_the_flagged():
    summary = pd.DataFrame({"TRE before (mm)": [10.0, 10.0, 10.0],
                            "TRE after (mm)": [2.0, 12.0, 10.0],
                            "Dice FGT": [0.5, 0.7, 0.4],
                            "flagged": ["", "1 W of 1", ""]},
                           index=["mind", "sam (random)", "id"])
    assert highlights(summary).splitlines() == [
        "Lowest landmark error: mind (2.00 mm, against 10.00 mm before).",
        "Best FGT overlap: sam (random) (Dice 0.70).",
        "Flagged (F folded, W worse than no registration): sam (random) (1 W of 1)"]
    summary["flagged"] = ""
    assert highlights(summary).endswith("no registration): none")


@pytest.fixture
def small_task(tmp_path) -> TaskChapter:
    """A one-pair cohort with previews of two methods, and its (synthetic) results."""
    shape = (12, 10, 6)
    fixed = volume(np.random.default_rng(0).random(shape) * 100)
    (tmp_path / "cohort").mkdir()
    fixed.save(tmp_path / "cohort" / "fixed.nii.gz")
    manifest = tmp_path / "cohort" / "manifest.csv"
    pd.DataFrame({"pair_id": ["p0"], "fixed_image": ["fixed.nii.gz"]}).to_csv(manifest,
                                                                               index=False)
    previews = tmp_path / "study" / "previews"
    previews.mkdir(parents=True)
    from breastlib.study.run import RESULTS_VERSION

    for method in ("identity", "mind"):
        np.savez(previews / f"p0__{method}__fast__random__abc__v{RESULTS_VERSION}.npz",
                 warped=np.full((12, 10, 3), 7, np.uint8),
                 jacobian=np.zeros((12, 10, 3), np.uint8),
                 slices=np.array([0, 2, 4]), spacing=np.array([2.0, 2.5, 3.0]))
    rows = [dict(task="sequence", pair_id="p0", method=method, weights=weights,
                 profile="fast", status="ok", tre_mean_before_mm=10.0, tre_mean_after_mm=after,
                 dice_breast=0.9, dice_fgt=dice, hd95_breast_mm=3.0, jac_nonpos_pct=0.0,
                 sdlogj=0.1)
            for method, weights, after, dice in (("identity", "", 10.0, 0.3),
                                                 ("mind", "", 2.0, 0.6),
                                                 ("sam", "random", 15.0, 0.2))]
    return TaskChapter("sequence", manifest, tmp_path / "study", pd.DataFrame(rows),
                       BUILDS["small"])


def test_task_chapter_comparison_grid_shows_every_method_beside_the_fixed_image(
        small_task, monkeypatch):
    import breastlib.viz.compare

    shown = {}
    monkeypatch.setattr(breastlib.viz.compare, "show_comparison_grid",
                        lambda *args, **options: shown.update(args=args, **options))
    small_task.show_comparison()
    names = list(shown.get("warped") or shown["args"][1])
    assert any("mind" in name for name in names) and len(names) == 2  # moving + mind


def test_task_chapter_sections(small_task, monkeypatch, capsys):
    import breastlib.viz.interactive
    import breastlib.viz.live

    shown = {}
    monkeypatch.setattr(breastlib.viz.interactive, "show_slice_browser",
                        lambda volumes, spacing, **options: shown.update(
                            volumes=volumes, spacing=spacing, **options))
    small_task.show_browser()
    assert shown["title"] == "sequence: pair p0"
    assert shown["n_static"] == 3 and shown["image_format"] == "jpeg"
    assert list(shown["volumes"]) == ["fixed", "moving (before registration)",
                                      "mind: warped moving", "|fixed - warped|: before",
                                      "|fixed - warped|: mind"]
    assert shown["spacing"][2] == pytest.approx(6.0)  # every second slice previewed
    # The slider counts the pair's own slices (1, 3, 5 of 6), not the preview's (1-3 of 3).
    assert shown["slice_numbers"].tolist() == [0, 2, 4] and shown["n_slices_total"] == 6
    assert set(shown["units"]) == set(shown["colormaps"]) == {
        "|fixed - warped|: before", "|fixed - warped|: mind"}
    assert all("0-255" in title for title in shown["units"].values())

    asked = {}
    monkeypatch.setattr(breastlib.viz.live, "show_explorer",
                        lambda cohorts, **options: asked.update(cohorts=cohorts, **options))
    small_task.show_explorer()
    assert list(asked["cohorts"]) == list(BUILDS["small"].pairs)
    assert asked["task"] == "sequence" and asked["profile"] == "fast"
    assert asked["cohorts"]["lesion"].args == ("lesion",)  # called only when chosen

    summary = small_task.summary()
    assert list(summary.index) == ["mind", "identity", "sam (random)"]
    assert small_task.highlights().splitlines()[0].startswith("Lowest landmark error: mind")
    assert "landmark error" in small_task.ranked_by()
    assert "1 synthetic phantom pair(s) of task 'sequence'" in small_task.provenance()
    small_task.show_distributions()
    assert plt.get_fignums() == []  # displayed, then closed
    capsys.readouterr()


def test_task_chapter_reads_the_builds_results(monkeypatch, committed):
    def fake_book_results(task, *, build):
        return Path("m.csv"), committed[committed["task"] == task]

    monkeypatch.setattr(chapters, "book_results", fake_book_results)
    chapter = chapters.task_chapter("lesion", build=BUILDS["small"])
    assert chapter.results_dir == Path("data/small/lesion")
    assert chapter.manifest == Path("m.csv")
    assert set(chapter.results["task"]) == {"lesion"}
    assert summary_table(chapter.results).equals(chapter.summary())


# --- panels ------------------------------------------------------------------------------


def test_draw_slice_windows_and_label_maps():
    _, (a, b) = plt.subplots(1, 2)
    values = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6)
    image = panels.draw_slice(a, values, (1.0, 2.0, 3.0), view="coronal", index=1,
                              title="grey")
    low, high = panels.slice_window(np.take(values, 1, axis=1))
    assert image.get_clim() == pytest.approx((low, high))
    assert image.get_extent() == [0.0, 4.0, 0.0, 18.0]  # mm: x across, z up
    assert a.get_title() == "grey" and list(a.get_xticks()) == []
    labels = panels.draw_slice(b, values.astype(np.int32), (1, 1, 1), window=(0, 19),
                               colormap="tab20")
    assert labels.get_interpolation() == "nearest" and labels.get_clim() == (0, 19)
    assert image.get_interpolation() != "nearest"


def test_view_grid_is_views_by_volumes():
    volumes = {"a": np.zeros((6, 5, 4)), "b": np.ones((6, 5, 4), dtype=np.int16)}
    figure = panels.view_grid(volumes, (1.0, 1.0, 2.0), index={"axial": 0},
                              windows={"a": (0.0, 1.0)}, colormaps={"b": "tab20"},
                              title="grid")
    axes = np.array(figure.axes).reshape(3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["a", "b"]
    assert [ax.get_title() for ax in axes[1]] == ["", ""]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["axial", "coronal", "sagittal"]
    assert axes[0, 0].images[0].get_clim() == (0.0, 1.0)
    assert axes[0, 1].images[0].get_cmap().name == "tab20"
    assert figure.get_suptitle() == "grid"


def test_as_rgb_stretches_three_channels_to_unit_range():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(5, 8, 7, 4)) * np.array([1, 10, 100, 1, 1])[:, None, None, None]
    rgb = panels.as_rgb(features, (1.0, 1.0, 1.0), index=2)
    assert rgb.shape == (7, 8, 3)  # rows: y, columns: x
    assert rgb.min() == 0.0 and rgb.max() == 1.0
    for channel in range(3):  # each channel stretched on its own
        assert np.percentile(rgb[..., channel], 50) == pytest.approx(0.5, abs=0.2)
    with pytest.raises(ValueError, match="C >= 3"):
        panels.as_rgb(features[:2], (1.0, 1.0, 1.0))


def test_image_row_and_stage_grid():
    figure = panels.image_row({"grey": np.zeros((4, 5)), "rgb": np.zeros((4, 5, 3))})
    assert [ax.get_title() for ax in figure.axes] == ["grey", "rgb"]
    reference = np.zeros((6, 5, 4))
    warped = {("mind", "convex"): reference + 0.2, ("mind", "adam"): reference,
              ("sam", "adam"): reference + 1.0}
    figure = panels.stage_grid(warped, reference, (1.0, 1.0, 1.0), title="stages")
    axes = np.array(figure.axes[:8]).reshape(2, 4)
    # One colour bar, with its unit, for every difference panel (they share one scale).
    assert len(figure.axes) == 9
    assert figure.axes[8].get_ylabel().replace("\n", " ") == (
        "|fixed - warped| (normalised intensity, 0-1)")
    assert [ax.get_title() for ax in axes[0]] == [
        "mind: convex", "|fixed - warped|", "mind: adam", "|fixed - warped|"]
    assert [ax.get_title() for ax in axes[1]] == ["", "", "sam: adam", "|fixed - warped|"]
    assert axes[0, 1].images[0].get_array().max() == pytest.approx(0.2)
    assert axes[0, 1].images[0].get_clim() == (0.0, 0.5)


# --- the cohort chapter ------------------------------------------------------------------


def fake_subject(shape=(16, 14, 10), spacing=(2.0, 2.0, 2.5)):
    """A label map (fat in the front half, FGT blocks in it), images and an anatomy."""
    from breastlib.phantom import LABELS

    labels = np.zeros(shape, dtype=np.int32)
    labels[:, shape[1] // 2:, :] = LABELS["fat"]
    labels[4:10, 9:13, 3:8] = LABELS["fgt"]
    signal = {"t1": (300.0, 100.0), "t2": (220.0, 100.0), "t1fs": (20.0, 100.0)}
    images = {name: volume(np.where(labels == LABELS["fat"], fat,
                                    np.where(labels == LABELS["fgt"], fgt, 5.0)), spacing)
              for name, (fat, fgt) in signal.items()}
    images["ct"] = volume(np.where(labels > 0, -100.0, -1000.0), spacing)
    anatomy = SimpleNamespace(subject=SimpleNamespace(
        lesion=SimpleNamespace(centre=np.array([0.0, 0.0, 5.0])),
        breasts=[None, SimpleNamespace(nipple=np.array([12.0, 20.0, 0.0]))]))
    return images, volume(labels, spacing, dtype=np.int32), anatomy


def test_fat_fgt_ratios_and_subject_slices():
    images, labels, anatomy = fake_subject()
    assert chapters.fat_fgt_ratios(images, labels) == {"t1": 3.0, "t2": 2.2, "t1fs": 0.2}
    assert chapters.subject_slices(labels, anatomy) == {"axial": 2, "coronal": 5,
                                                        "sagittal": 6}


def test_contrast_figure_has_a_column_per_contrast_and_labels():
    images, labels, anatomy = fake_subject()
    figure = chapters.contrast_figure(images, labels, anatomy)
    axes = np.array(figure.axes).reshape(3, 5)
    assert [ax.get_title() for ax in axes[0]] == ["T1 (no fat sat)", "T2-weighted",
                                                  "T1 fat-sat pre", "CT (HU)", "labels"]
    assert axes[0, 3].images[0].get_clim() == (-200.0, 250.0)
    assert axes[0, 4].images[0].get_cmap().name == "tab20"


def test_ground_truth_figure_row_per_task(monkeypatch):
    import breastlib.phantom

    images, labels, _ = fake_subject()
    grid = labels.grid

    def fake_pair(task, size, *, seed):
        return SimpleNamespace(
            fixed=images["t1"], moving=images["ct" if task == "modality" else "t2"],
            displacement=Displacement.identity(grid),
            fixed_landmarks=np.zeros((3, 3)), moving_landmarks=np.ones((3, 3)),
            landmark_kinds=["a", "b", "c"],
            info={"fixed_sequence": "t1", "moving_sequence":
                  "ct" if task == "modality" else "t2", "magnitude_mm": 4.0})

    monkeypatch.setattr(breastlib.phantom, "make_pair", fake_pair)
    figure = chapters.ground_truth_figure(["sequence", "modality"])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles[:4] == ["fixed: t1", "moving: t2", "moving warped by ground truth",
                          "|u| (mm)"]
    assert "modality\n3 landmarks, TRE before 1.7 mm" in figure.axes[4].texts[0].get_text()
    assert figure.axes[5].images[0].get_clim() == (-200.0, 250.0)  # CT window


# --- the method chapter ------------------------------------------------------------------


def test_before_after_volumes_share_windows():
    rng = np.random.default_rng(2)
    fixed, moving = (volume(rng.random((8, 7, 6)) * 50) for _ in range(2))
    shown = chapters.before_after_volumes(fixed, moving, fixed, np.ones((8, 7, 6)))
    volumes = shown["volumes"]
    assert set(volumes) == set(shown["windows"])
    assert volumes["|fixed - warped| (after)"].max() == 0.0
    assert shown["windows"]["Jacobian determinant"] == (0.0, 2.0)
    assert shown["colormaps"]["Jacobian determinant"] == "PiYG"
    figure = panels.view_grid(spacing=fixed.spacing, views=("axial",), **shown)
    # Six panels, then a colour bar under each colour-mapped column (both differences
    # and the Jacobian); the grey images have none.
    assert len(figure.axes) == 6 + 3
    labels = [ax.get_xlabel() for ax in figure.axes[6:]]
    # The chapter's units label the bars: differences in normalised intensity.
    assert labels[:2] == ["normalised intensity (0-1)"] * 2
    assert "unitless" in labels[2] and "1 = volume kept" in labels[2]


def test_stage_table_measures_each_stage():
    rng = np.random.default_rng(3)
    moving = volume(rng.random((8, 7, 6)))
    grid = moving.grid
    shifted = Displacement.from_millimetres(np.ones((3, 8, 7, 6), np.float32), grid)
    run = SimpleNamespace(convex_displacement=Displacement.identity(grid),
                          displacement=shifted, seconds={"convex": 1.0, "optimisation": 3.0},
                          stage="adam")
    points = np.array([[4.0, 4.0, 4.0], [6.0, 6.0, 6.0]])
    labels = volume(np.full((8, 7, 6), 1), dtype=np.int16)  # all fat: all breast
    pair = SimpleNamespace(fixed_landmarks=points, moving_landmarks=points + 1.0,
                           moving=moving, fixed_labels=labels, displacement=shifted)
    table, warped = chapters.stage_table({"mind": run}, pair, np.ones((8, 7, 6), bool))
    assert table.loc[("mind", "convex step"), "TRE mean (mm)"] == pytest.approx(
        round(np.sqrt(3), 2))
    assert table.loc[("mind", "convex step"), "dense error (mm)"] == pytest.approx(
        round(np.sqrt(3), 2))
    assert table.loc[("mind", "convex + Adam"), "TRE mean (mm)"] == 0.0
    assert table.loc[("mind", "convex + Adam"), "dense error (mm)"] == 0.0
    assert list(table["seconds (cumulative)"]) == [1.0, 3.0]
    assert set(warped) == {("mind", "convex step"), ("mind", "convex + Adam")}
    assert warped["mind", "convex step"].min() >= 0 and warped["mind", "convex step"].max() <= 1
    guarded = SimpleNamespace(**(vars(run) | {"stage": "identity"}))
    table, _ = chapters.stage_table({"dinov2": guarded}, pair, np.ones((8, 7, 6), bool))
    assert ("dinov2", "final (guard kept 'identity')") in table.index


def test_feature_images_mind_only():
    rng = np.random.default_rng(4)
    fixed, moving = (volume(rng.random((12, 12, 8)) * 100) for _ in range(2))
    images = chapters.feature_images(fixed, moving, ())
    assert list(images) == ["fixed", "MIND-SSC (3 of 12 channels)"]
    assert images["fixed"].shape == (12, 12)
    assert images["MIND-SSC (3 of 12 channels)"].shape == (12, 12, 3)


def test_encoders_fit_says_why_not(monkeypatch, capsys):
    import breastlib.device

    monkeypatch.setattr(breastlib.device, "memory_limit_gib", lambda: 1.5)
    assert chapters.encoders_fit() is False
    assert "Only 1.5 GiB" in capsys.readouterr().out
    monkeypatch.setattr(breastlib.device, "memory_limit_gib", lambda: 8.0)
    assert chapters.encoders_fit() is True


def test_profile_comparison_reads_the_benchmark(capsys):
    shown = chapters.profile_comparison(BENCHMARKS / "profiles.json")
    assert list(shown.columns) == ["tre_mean_before_mm", "field_error_mean_mm",
                                   "tre_mean_after_mm", "jac_nonpos_pct", "stage", "seconds"]
    assert list(shown.loc["lesion"].index) == ["paper", "corrected", "convexadam", "fast"]
    assert set(shown["stage"]) <= {"identity", "initial", "convex", "adam"}
    assert shown["field_error_mean_mm"].notna().all()
    # One landmark error before registration per task, whatever the profile.
    assert (shown.groupby(level="task")["tre_mean_before_mm"].nunique() == 1).all()
    assert capsys.readouterr().out.startswith("measured on ")


def test_profile_comparison_keeps_the_measured_order(tmp_path, capsys):
    rows = [{"task": task, "profile": profile, "tre_mean_before_mm": 9.0,
             "field_error_mean_mm": 2.123, "tre_mean_after_mm": 1.0, "jac_nonpos_pct": 0.0,
             "stage": "adam", "seconds": 3.0}
            for task in ("sequence", "lesion") for profile in ("zeta", "alpha")]
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"machine": "m", "torch_threads": 1, "date": "d",
                                "command": "c", "rows": rows}))
    shown = chapters.profile_comparison(path)
    assert list(shown.loc["sequence"].index) == ["zeta", "alpha"]
    assert list(shown.index.get_level_values("task").unique()) == ["sequence", "lesion"]
    assert shown.loc[("lesion", "alpha"), "field_error_mean_mm"] == 2.12


def test_mind_floor_comparison_reads_the_benchmark(capsys):
    shown = chapters.mind_floor_comparison(BENCHMARKS / "mind_floor.json")
    assert shown.columns[0] == "field_error_before_mm"
    assert "seconds" not in shown.columns  # not measured on an idle machine
    floors = shown.reset_index().groupby("task")["floor"].apply(set)
    assert all(values == {0.0, 0.05} for values in floors)  # with and without, every task
    assert shown.loc[("modality", 0.05), "verdict"] == "ok"
    assert capsys.readouterr().out.startswith("measured on ")



def test_fix_comparison_marks_flags_and_keeps_the_order(tmp_path, capsys):
    def row(task, variant, dense, verdict, seconds):
        return {"task": task, "seed": 12, "method": "mind", "variant": variant,
                "field_error_mean_mm": dense, "field_error_mean_before_mm": 9.04,
                "verdict": verdict, "seconds": seconds}

    rows = [row("sequence", "fast", 2.04, "ok", 20.0),
            row("sequence", "no guard", 31.0, "folded", 18.5),
            row("longitudinal", "fast", 3.0, "ok", 21.0),
            row("longitudinal", "no guard", 9.5, "worse_than_identity", 19.0)]
    path = tmp_path / "fixes.json"
    path.write_text(json.dumps({"machine": "x86_64", "torch_threads": 2, "date": "today",
                                "weights": "random", "command": "bench", "rows": rows}))
    shown = chapters.fix_comparison(path)
    assert list(shown.index) == [("sequence", "mind"), ("longitudinal", "mind")]
    dense = shown["dense error (mm)"]
    assert list(dense.columns) == ["no registration", "fast", "no guard"]
    assert dense.loc[("sequence", "mind")].tolist() == ["9.0", "2.0", "31.0 F"]
    assert dense.loc[("longitudinal", "mind"), "no guard"] == "9.5 W"
    assert shown.loc[("sequence", "mind"), ("seconds", "no guard")] == 18.5
    assert capsys.readouterr().out.startswith("measured on x86_64")


def test_the_method_chapter_says_what_each_fix_costs():
    """book/method.md reads benchmarks/results/fixes.json in words; when the benchmark is
    run again, these claims must be read again."""
    record = json.loads((BENCHMARKS / "fixes.json").read_text())
    rows = pd.DataFrame(record["rows"]).set_index(["task", "method", "variant"])
    dense = rows["field_error_mean_mm"]
    text = " ".join((ROOT / "book" / "method.md").read_text().split())
    tasks = ["longitudinal", "sequence", "modality", "lesion"]
    shipped = rows.xs("fast", level="variant")
    assert (shipped["verdict"] == "ok").all()  # "No row of the shipped profile is flagged"
    assert (shipped.xs("dinov2", level="method")["stage_kept"] == "initial").all()
    drift = rows.loc[("sequence", "dinov2", "no guard")]
    assert (f"DINOv2 with random weights ended {drift['field_error_mean_mm']:.1f} mm from "
            f"the true field on average and folded {drift['jac_nonpos_pct']:.1f} % of the "
            f"body, against {drift['field_error_mean_before_mm']:.1f} mm") in text
    folded = [rows.loc[(t, "dinov2", "no guard")] for t in ("sequence", "modality")]
    assert all(r["verdict"] == "folded" for r in folded)
    assert (f"({folded[0]['field_error_mean_mm']:.1f} and {folded[1]['field_error_mean_mm']:.1f}"
            f" mm, {folded[0]['jac_nonpos_pct']:.1f} % and {folded[1]['jac_nonpos_pct']:.1f} "
            "% of the body folded)") in text
    assert rows.loc[("modality", "mind", "no guard"), "verdict"] == "worse_than_identity"

    def span(variant: str) -> str:
        values = [dense[(t, "mind", variant)] for t in tasks]
        return f"{min(values):.1f}-{max(values):.1f} mm"

    assert f"({span('no initial alignment')} against {span('fast')} with it)" in text
    assert f"centres of the body masks ({span('centres start')})" in text
    for task in tasks:
        assert dense[(task, "mind", "no initial alignment")] > dense[(task, "mind", "fast")]
        assert dense[(task, "mind", "centres start")] > dense[(task, "mind", "fast")]
        assert rows.loc[(task, "dinov2", "centres start"), "stage_kept"] == "identity"
    for task in ("longitudinal", "lesion"):
        assert dense[(task, "mind", "no background fix")] > dense[(task, "mind", "fast")]
    assert dense[("sequence", "mind", "no background fix")] < dense[("sequence", "mind", "fast")]
    seconds = rows["seconds"].groupby(level="variant").mean()
    assert (f"The guard costs {seconds['fast'] - seconds['no guard']:.0f} s of a registration "
            f"that takes {seconds['fast']:.0f} s on average") in text
    assert (f"The affine start adds {seconds['fast'] - seconds['no initial alignment']:.0f} s"
            in text)
    assert (f"The background masks cost about "
            f"{seconds['fast'] - seconds['no background fix']:.0f} s") in text


def test_correction_table_names_every_switch():
    from breastlib.profiles import correction_names, get_profile

    table = chapters.correction_table()
    assert list(table.index) == list(correction_names())
    assert table.notna().all().all() and (table != "").all().all()
    paper, corrected = get_profile("paper"), get_profile("corrected")
    for name in table.index:  # each switch moves paper towards corrected
        assert get_profile(f"paper+{name}") != paper
    assert corrected != paper
    steps = chapters.not_reproduced_table()
    assert len(steps) >= 5 and list(steps.columns) == ["released code", "breastlib"]


def test_paper_ablation_reads_the_benchmark(capsys, tmp_path):
    shown = chapters.paper_ablation(BENCHMARKS / "paper_ablation.json")
    assert shown.index[0] == "paper" and shown.index[-1] == "corrected"
    assert all(p.startswith("paper+") for p in shown.index[1:-1])
    out = capsys.readouterr().out
    assert out.startswith("measured on ") and "random" in out
    assert set(shown.columns.get_level_values("task")) == {
        "longitudinal", "sequence", "modality", "lesion"}
    # Encoder-only corrections cannot change MIND: the switches are isolated.
    mind = shown.xs("mind", axis=1, level="method")
    assert (mind.loc["paper+input-norm"] == mind.loc["paper"]).all()
    tre = chapters.paper_ablation(BENCHMARKS / "paper_ablation.json",
                                  metric="tre_mean_after_mm")
    assert tre.index[0] == "no registration"
    with pytest.raises(KeyError, match="no column"):
        chapters.paper_ablation(BENCHMARKS / "paper_ablation.json", metric="nonsense")

# --- the performance appendix ------------------------------------------------------------


def test_benchmark_records(tmp_path, capsys):
    for name, speedups in (("encoders_a.json", [1.2, 2.0]), ("encoders_b.json", [1.6])):
        rows = [{"encoder": f"e{k}", "input_size": 224, "batch_speedup": s,
                 "slices_per_s_batched": 1.0 + k}
                for k, s in enumerate(speedups)]
        (tmp_path / name).write_text(json.dumps({"meta": {"threads": 2}, "rows": rows}))
    speed = chapters.benchmark_runs("encoders_*.json", results_dir=tmp_path)
    assert list(speed["run"]) == ["encoders_a", "encoders_a", "encoders_b"]
    assert capsys.readouterr().out.splitlines() == ["encoders_a.json: threads=2",
                                                    "encoders_b.json: threads=2"]
    assert chapters.batching_verdict(speed) == (
        "batched / single: 1.20x to 2.00x over 3 measurements (best: e1 at 224 px); "
        "1.5x target NOT met.")
    assert chapters.batching_verdict(speed[speed["batch_speedup"] > 1.5]).endswith(" met.")
    assert chapters.throughput_figure(speed).axes[0].get_yscale() == "log"


def test_batch_sweep_of_the_committed_record(capsys):
    sweep = chapters.benchmark("batch_sweep.json", results_dir=BENCHMARKS)
    assert capsys.readouterr().out.startswith("batch_sweep.json: ")
    best = chapters.best_batch_sizes(sweep)
    assert set(best["encoder"]) == set(sweep["encoder"])
    for _, row in best.iterrows():
        assert row["vs_batch_1"] == round(
            sweep.loc[sweep["encoder"] == row["encoder"], "vs_batch_1"].max(), 2)
    assert chapters.batch_sweep_figure(sweep).axes[0].get_xscale() == "log"


def test_the_scaling_record_and_what_the_appendix_says_of_it():
    """The performance appendix's sentences on time and memory against size are the
    committed record's numbers (so that a new measurement cannot leave them stale)."""
    rows = chapters.benchmark("scaling.json", results_dir=BENCHMARKS)
    figure = chapters.scaling_figure(rows)
    assert len(figure.axes) == 3 and figure.axes[0].get_xscale() == "log"
    total = {(r["size"], r["profile"]): r["seconds"]["total"] for _, r in rows.iterrows()}
    peak = {(r["size"], r["profile"]): r["peak_rss_mib"] / 1024 for _, r in rows.iterrows()}
    guard = [r["seconds"]["guard"] / r["seconds"]["total"]
             for _, r in rows.iterrows() if r["profile"] == "fast"]
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    wall = {(r["size"], r["profile"]): r["wall_s"] for _, r in rows.iterrows()}
    assert f"full-size pair in {total['full', 'fast']:.0f} s with a peak of " \
           f"{peak['full', 'fast']:.0f} GB ({wall['full', 'fast']:.1f} s for the whole process" \
           in text
    assert f"takes {total['full', 'convexadam']:.0f} s and {peak['full', 'convexadam']:.0f} GB" \
           in text
    met = wall["full", "fast"] < 180 and peak["full", "fast"] < 6
    assert ("is met" in text) == met and ("is **not met**" in text) == (not met)
    assert f"{total['full', 'fast'] / total['small x1.59', 'fast']:.1f} times as long" in text
    assert f"({min(guard) * 100:.0f}-{max(guard) * 100:.0f} % of the time" in text


def test_the_cohort_chapter_computes_how_hard_each_task_is(committed):
    """book/cohort.md states each task's difficulty through study_words (so regenerated
    rows rewrite it), and the committed rows give every task a row of the table."""
    table = chapters.task_difficulty(committed)
    assert list(table.index) == list(BUILDS["small"].pairs)
    text = (ROOT / "book" / "cohort.md").read_text()
    assert "Markdown(task_difficulty_words(task_difficulty(study.rows)))" in text
    assert "no registration leaves the landmarks" not in text  # no pinned copy of it


def test_random_encoder_words_read_own_and_guarded_results():
    """The task chapters' paragraph on random-weight encoders is computed: each
    architecture's own result over pairs and seeds, the references, and the guard."""
    rows = []
    for pair in ("p0", "p1"):
        rows += [dict(pair_id=pair, method="identity", weights=None, seed=0,
                      field_error_mean_mm=9.0, stage_kept="", status="ok"),
                 dict(pair_id=pair, method="affine", weights=None, seed=0,
                      field_error_mean_mm=4.0, stage_kept="", status="ok"),
                 dict(pair_id=pair, method="mind", weights=None, seed=0,
                      field_error_mean_mm=2.0, stage_kept="adam", status="ok")]
        rows += [dict(pair_id=pair, method="sam", weights="random", seed=s,
                      field_error_mean_mm=7.0 + s, guarded_field_error_mean_mm=4.0,
                      stage_kept="initial" if s else "adam", status="ok") for s in range(3)]
    text = chapters.random_encoder_words(pd.DataFrame(rows))
    assert "(2 pairs, 3 seeds each)" in text
    assert "Of those" not in text  # no verdicts, nothing flagged
    flagged = pd.DataFrame(rows).assign(verdict=lambda t: np.where(
        t["seed"].eq(1) & t["method"].eq("sam"), "folded", "ok"))
    assert ("Of those 6 fields, 2 folded beyond the limit."
            in chapters.random_encoder_words(flagged))
    assert "ended on average sam 8.0 mm from the true deformation" in text
    assert ("against 4.0 mm after the affine start alone, 9.0 mm with no registration, "
            "2.0 mm with MIND") in text
    assert "earlier stage on 4 of their 6 rows" in text and "averages 4.0 mm" in text
    assert chapters.random_encoder_words(pd.DataFrame(rows[:3])) == ""
    for task in ("longitudinal", "sequence"):
        chapter = (ROOT / "book" / f"task-{task}.md").read_text()
        assert "Markdown(chapter.random_encoders_in_words())" in chapter


def test_the_appendix_says_how_long_a_phantom_pair_takes():
    rows = chapters.benchmark("phantom.json", results_dir=BENCHMARKS)
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    for size in ("small", "full"):
        seconds = rows.loc[rows["size"] == size, "generate_s"]
        assert f"takes {seconds.min():.0f}-{seconds.max():.0f} s" in text, size
    assert rows.loc[rows["size"] == "small", "generate_s"].max() < 30


def test_the_task_chapters_compute_what_they_say_of_their_rows():
    """MIND on the modality pairs and the random-weight encoders of every task are
    described by sentences computed from the rows, not pinned to one regeneration."""
    modality = (ROOT / "book" / "task-modality.md").read_text()
    assert 'Markdown(chapter.method_in_words("mind"))' in modality
    assert "With those switches MIND folds" not in " ".join(modality.split())
    method = (ROOT / "book" / "method.md").read_text()
    assert "Markdown(guard_words(study_results(compute=False).rows))" in method
    assert "On this build's 80 rows" not in method
    for task in ("longitudinal", "sequence"):
        assert 'Markdown(chapter.method_in_words("mind"))' in (
            ROOT / "book" / f"task-{task}.md").read_text(), task
    for task in BUILDS["small"].pairs:
        assert "Markdown(chapter.random_encoders_in_words())" in (
            ROOT / "book" / f"task-{task}.md").read_text(), task


def test_error_map_titles_the_dense_error_the_study_reports():
    """The method chapter prints pair_metrics' dense error and draws error_map's: one
    number, measured over the same breast voxels (where the true field lands inside the
    moving image)."""
    from breastlib.displacement import Displacement
    from breastlib.evaluate.pair import CohortPair, pair_metrics
    from breastlib.phantom import make_pair
    from breastlib.phantom.labels import LABELS
    from breastlib.phantom.pair import Acquisition

    # On this pair the true field leads out of the moving image for part of the breast:
    # the whole breast's mean (14.2 mm) differs from the measured one (13.7 mm).
    pair = make_pair("sequence", "small", seed=0, acquisition=Acquisition(supersample=1))
    estimate = Displacement(np.zeros((3, *pair.fixed.shape), np.float32), pair.fixed.grid)
    scored = CohortPair(pair_id="p", task="sequence", fixed=pair.fixed, moving=pair.moving,
                        fixed_labels=pair.fixed_labels, moving_labels=pair.moving_labels,
                        fixed_points=pair.fixed_landmarks, moving_points=pair.moving_landmarks,
                        label_names=LABELS, true_displacement=pair.displacement)
    metrics = pair_metrics(estimate, scored)
    figure = chapters.error_maps({"identity": (pair, estimate)})
    assert f"dense error {metrics['field_error_mean_mm']:.1f} mm" in figure.axes[0].get_title()


def test_the_stage_record_covers_every_profile_and_encoder_and_the_text_reads_it():
    """benchmarks/results/stages.json: every profile with MIND and both fast profiles with
    every encoder family on the small pair, and the full-size row the appendix quotes."""
    stages = chapters.stage_seconds(chapters.benchmark("stages.json", results_dir=BENCHMARKS))
    assert stages.index.is_unique
    small = stages.loc["small"]
    assert {p for p, _ in small.index} == {"fast", "convexadam", "corrected", "paper"}
    for profile in ("fast", "convexadam"):
        assert set(small.loc[profile].index) >= {"mind", "dinov2", "sam", "medclip"}
    assert (small["error"] == "").all()
    full = stages.loc[("full", "fast", "mind")]
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    assert f"in {full['total']:.0f} s with a peak of {full['peak_gb']:.1f} GB" in text
    # the target: a full-size pair under 3 minutes and 6 GB on 2 cores
    assert full["total"] < 180 and full["peak_gb"] < 6.0
    # every encoder at full size with fast, and convexadam with MIND, as the text says
    encoders = stages.loc[("full", "fast")].drop("mind")
    assert set(encoders.index) == {"dinov2", "sam", "medclip", "biomedclip"}
    assert (encoders["error"] == "").all() and (encoders["total"] < 180).all()
    for name, label in (("dinov2", "DINOv2"), ("sam", "SAM"), ("medclip", "MedCLIP"),
                        ("biomedclip", "BiomedCLIP")):
        assert f"{label} {'takes ' if name == 'dinov2' else ''}" \
               f"{encoders.loc[name, 'total']:.0f} s" in text
    low, high = encoders["peak_gb"].min(), encoders["peak_gb"].max()
    assert f"peaks ({low:.1f}-{high:.1f} GB) are over the 6 GB" in text and low > 6.0
    for stage, words in (("features", "features take"), ("adam", "Adam")):
        span = f"{encoders[stage].min():.0f}-{encoders[stage].max():.0f} s"
        assert f"{words} {span}" in text, stage
    package = stages.loc[("full", "convexadam", "mind")]
    assert (f"takes {package['total']:.0f} s with a peak of {package['peak_gb']:.1f} GB: "
            f"{package['adam']:.0f} s of it is Adam") in text


def test_the_appendix_reads_the_convexadam_ablation():
    """benchmarks/results/convexadam_ablation.json: the sentences of the performance
    appendix on what each departure from the package does, over five pairs per task;
    rerunning the benchmark means reading them again."""
    rows = chapters.benchmark("convexadam_ablation.json", results_dir=BENCHMARKS)
    assert sorted(rows["seed"].unique()) == [0, 1, 2, 3, 4]
    mean = rows.pivot_table(index="switch", columns="task", aggfunc="mean",
                            values=["dense_mm", "tre_mm", "folded_pct"])
    dense, tre, folded = mean["dense_mm"], mean["tre_mm"], mean["folded_pct"]
    by_pair = rows.pivot_table(index=["task", "seed"], columns="switch", values="dense_mm")
    tre_by_pair = rows.pivot_table(index=["task", "seed"], columns="switch", values="tre_mm")
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    profile, package = "the profile", "the package itself"
    keep, zeros = "background kept (no body mask)", "zero-padded Adam smoothing"
    both = "released grid + zero-padded Adam smoothing"
    solver = ["released cost smoothing", "released coupling"]
    pairs = len(by_pair)

    def versus(switch: str, other: str, task: str, table: pd.DataFrame = dense) -> str:
        return f"{table.loc[switch, task]:.2f} against {table.loc[other, task]:.2f}"

    # the landmarks: lower on (nearly) every pair and on every task's mean
    assert (tre.loc[profile] < tre.loc[package]).all()
    lower = int((tre_by_pair[profile] < tre_by_pair[package]).sum())
    assert f"lower on {lower} of the {pairs} pairs" in text
    assert f"({versus(profile, package, 'longitudinal', tre)} mm on the longitudinal" in text
    # the dense error: level over all pairs, not on every task
    wins = int((by_pair[profile] < by_pair[package]).sum())
    assert f"below the package's on {wins} of the {pairs} pairs" in text
    assert (f"longitudinal and modality pairs ({versus(profile, package, 'longitudinal')} mm, "
            f"{versus(profile, package, 'modality')})") in text
    for task in ("longitudinal", "modality"):
        assert dense.loc[profile, task] < dense.loc[package, task]
        assert versus(profile, package, task) in text
    assert dense.loc[profile, "sequence"] > dense.loc[package, "sequence"]
    assert f"higher on the sequence pairs ({versus(profile, package, 'sequence')})" in text
    assert f"level on the lesion pairs ({versus(profile, package, 'lesion')})" in text
    difference = by_pair[profile] - by_pair[package]
    assert f"differ by {difference.min():.2f} to +{difference.max():.2f} mm" in text
    overall = rows.groupby("switch")["dense_mm"].mean()
    assert (f"holds over all twenty pairs ({overall[profile]:.3f} against "
            f"{overall[package]:.3f} mm)") in text
    assert overall[profile] <= overall[package]
    assert (f"({versus(profile, package, 'lesion', folded)} % on the lesion pairs, at most "
            f"{rows.loc[rows['switch'] == profile, 'folded_pct'].max():.1f} % on one pair)"
            ) in text
    # what each departure does
    assert (f"modality pairs from {dense.loc[profile, 'modality']:.2f} to "
            f"{dense.loc[keep, 'modality']:.2f} mm with {folded.loc[keep, 'modality']:.1f} % "
            "of the body folded") in text
    others = (dense.loc[keep] - dense.loc[profile]).drop("modality")
    assert (others > 0).all()
    assert f"raises the other tasks' means by {others.max():.2f} mm or less" in text
    assert (f"cuts it from {folded.loc[profile, 'lesion']:.2f} to "
            f"{folded.loc[both, 'lesion']:.2f} % on the lesion pairs and from "
            f"{folded.loc[profile, 'longitudinal']:.2f} to "
            f"{folded.loc[both, 'longitudinal']:.2f} % on the longitudinal ones") in text
    near = (dense.loc[both] - dense.loc[package]).abs().max()
    assert near <= 0.12 and "within 0.12 mm of the package's on every task" in text
    assert (dense.loc[zeros] < dense.loc[package]).all()
    assert (f"({versus(zeros, package, 'sequence')} mm on the sequence pairs, "
            f"{versus(zeros, package, 'lesion')} on the lesion pairs)") in text
    assert ((tre.loc[zeros] > tre.loc[profile]) & (tre.loc[zeros] < tre.loc[package])).all()
    assert (dense.loc[solver] - dense.loc[profile]).abs().max().max() <= 0.1


def test_the_appendix_reads_the_held_out_ablation():
    """benchmarks/results/convexadam_ablation_heldout.json (seeds 5-9) and, with it, all
    forty pairs: the sentences that settle what the profile keeps."""
    first = chapters.benchmark("convexadam_ablation.json", results_dir=BENCHMARKS)
    heldout = chapters.benchmark("convexadam_ablation_heldout.json", results_dir=BENCHMARKS)
    assert set(heldout["seed"]).isdisjoint(first["seed"]) and heldout["seed"].nunique() == 5
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    profile, package, zeros = "the profile", "the package itself", "zero-padded Adam smoothing"

    def means(rows: pd.DataFrame, value: str) -> pd.DataFrame:
        return rows.pivot_table(index="switch", columns="task", values=value, aggfunc="mean")

    dense, folded = means(heldout, "dense_mm"), means(heldout, "folded_pct")
    assert (dense.loc[profile] < dense.loc[package]).all()
    for task, unit in (("modality", " mm"), ("sequence", "")):
        assert (f"{dense.loc[profile, task]:.2f} against {dense.loc[package, task]:.2f}{unit} "
                f"on the {task} pairs") in text
    wide = {v: heldout.pivot_table(index=["task", "seed"], columns="switch", values=v)
            for v in ("dense_mm", "tre_mm")}
    wins = {v: int((w[profile] < w[package]).sum()) for v, w in wide.items()}
    assert (f"on {wins['dense_mm']} of the 20 pairs, its landmark error on {wins['tre_mm']} "
            "of them") in text
    more = folded.columns[folded.loc[profile] > folded.loc[package]]
    count = ["no", "one", "two", "three", "four"][len(more)]
    assert f"folds more of the body on {count} tasks" in text
    assert f"({folded.loc[profile, 'longitudinal']:.2f} against " \
           f"{folded.loc[package, 'longitudinal']:.2f} % on the longitudinal pairs)" in text
    overall = heldout.groupby("switch")["dense_mm"].mean()
    assert overall[zeros] > overall[profile]
    assert (f"mean dense error is {overall[zeros]:.2f} mm against the profile's "
            f"{overall[profile]:.2f}") in text
    common = pd.concat([first[first["switch"].isin(heldout["switch"])], heldout])
    forty = common.groupby("switch")[["dense_mm", "tre_mm", "folded_pct"]].mean()
    assert len(common) == 3 * 40
    assert ("Over all forty pairs the profile's dense error is "
            f"{forty.loc[profile, 'dense_mm']:.2f} mm and the package's "
            f"{forty.loc[package, 'dense_mm']:.2f}, the landmark error "
            f"{forty.loc[profile, 'tre_mm']:.2f} against {forty.loc[package, 'tre_mm']:.2f} mm"
            ) in text
    ten = means(common, "dense_mm")
    higher = ten.columns[ten.loc[profile] > ten.loc[package]]
    assert list(higher) == ["sequence"]
    assert (f"higher on the sequence pairs ({ten.loc[profile, 'sequence']:.2f} against "
            f"{ten.loc[package, 'sequence']:.2f})") in text
    assert (means(common, "tre_mm").loc[profile] < means(common, "tre_mm").loc[package]).all()
    assert (f"folds more, {forty.loc[profile, 'folded_pct']:.2f} % of the body on average "
            f"against the package's {forty.loc[package, 'folded_pct']:.2f} %") in text


def test_ablation_table_averages_each_tasks_pairs_in_the_records_order():
    rows = chapters.benchmark("convexadam_ablation.json", results_dir=BENCHMARKS)
    table = chapters.ablation_table(rows)
    assert list(table.index) == list(dict.fromkeys(rows["switch"]))
    lesion = rows[(rows["switch"] == "the profile") & (rows["task"] == "lesion")]
    assert len(lesion) == 5
    assert table.loc["the profile", ("dense_mm", "lesion")] == round(
        lesion["dense_mm"].mean(), 2)


def test_ablation_summary_puts_both_means_in_one_cell():
    rows = chapters.benchmark("convexadam_ablation.json", results_dir=BENCHMARKS)
    table, summary = chapters.ablation_table(rows), chapters.ablation_summary(rows)
    assert summary.shape == table["dense_mm"].shape
    assert list(summary.index) == list(table.index)
    assert summary.loc["the profile", "lesion"] == (
        f"{table.loc['the profile', ('dense_mm', 'lesion')]:.2f}\u00a0/\u00a0"
        f"{table.loc['the profile', ('tre_mm', 'lesion')]:.2f}")


def test_ablation_wins_counts_pairs_below_the_package():
    rows = pd.DataFrame([
        {"task": task, "seed": seed, "switch": switch, "dense_mm": value}
        for task, values in {"a": {"the profile": [1.0, 3.0], "x": [0.5, 0.5],
                                   "the package itself": [2.0, 2.0]},
                             "b": {"the profile": [5.0, 5.0], "x": [1.0, 9.0],
                                   "the package itself": [4.0, 4.0]}}.items()
        for switch, per_seed in values.items() for seed, value in enumerate(per_seed)])
    wins = chapters.ablation_wins(rows)
    assert list(wins.index) == ["the profile", "x"]
    assert wins.loc["the profile"].tolist() == ["1 of 2", "0 of 2"]
    assert wins.loc["x"].tolist() == ["2 of 2", "1 of 2"]
    # an equal error is not a win
    assert chapters.ablation_wins(rows, against="x").loc["the profile", "a"] == "0 of 2"


def test_the_gpu_record_is_compared_with_the_cpu_record_stage_by_stage():
    """benchmarks/results/gpu_stages.json against stages.json: the ratios are CPU seconds
    over GPU seconds of the rows both hold, and the appendix's sentence reads them."""
    cpu = chapters.benchmark("stages.json", results_dir=BENCHMARKS)
    gpu = chapters.benchmark("gpu_stages.json", results_dir=BENCHMARKS)
    ratio = chapters.gpu_speedup(cpu, gpu)
    on_cpu, on_gpu = chapters.stage_seconds(cpu), chapters.stage_seconds(gpu)
    assert "peak_gpu_gb" in on_gpu.columns and "peak_gpu_gb" not in on_cpu.columns
    assert len(ratio) >= 5
    # The GPU's full-size row ran `fast` before its fine-voxel rules and the CPU's with
    # them: not compared until a GPU reruns it.
    full = ("full", "fast", "mind")
    assert full in on_cpu.index and full in on_gpu.index and full not in ratio.index
    key = on_cpu.loc[ratio.index, "total"].astype(float).idxmax()
    slow, quick = on_cpu.loc[key], on_gpu.loc[key]
    assert ratio.loc[key, "adam"] == pytest.approx(slow["adam"] / quick["adam"])
    words = chapters.gpu_speedup_words(cpu, gpu)
    assert f"{ratio['total'].min():.1f} to {ratio['total'].max():.1f} times" in words
    assert f"took {quick['total']:.1f} s against {slow['total']:.0f} s" in words
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    assert f"needs {on_gpu.loc[full, 'peak_gpu_gb']:.1f} GB of GPU memory" in text


def test_gpu_speedup_leaves_out_rows_that_failed_on_either_machine():
    def rows(total: float, error: str = "") -> dict:
        seconds = dict.fromkeys(chapters.STAGE_COLUMNS, total)
        return {"size": "small", "profile": "fast", "method": "mind", "seconds": seconds,
                "wall_s": total + 1, "peak_rss_mib": 100.0, "error": error}
    cpu = pd.DataFrame([rows(10.0), {**rows(20.0), "method": "sam"}])
    gpu = pd.DataFrame([rows(2.0), {**rows(0.0, "gave up after 60 s"), "method": "sam"}])
    ratio = chapters.gpu_speedup(cpu, gpu)
    assert list(ratio.index) == [("small", "fast", "mind")]
    assert ratio.loc[("small", "fast", "mind"), "total"] == pytest.approx(5.0)
    # a row that a later change of the profile made stale is left out too
    stale = gpu.assign(superseded=["ran an older profile", None])
    assert chapters.gpu_speedup(cpu, stale).empty
    assert ratio.loc[("small", "fast", "mind"), "wall_s"] == pytest.approx(11 / 3)


def test_sweep_verdict_names_the_encoders_that_reach_the_target():
    sweep = pd.DataFrame({"encoder": ["a", "a", "b", "b"], "input_size": [224, 224, 1024, 1024],
                          "batch": [1, 8, 1, 8], "slices_per_s": [1.0, 2.0, 1.0, 1.2],
                          "vs_batch_1": [1.0, 2.0, 1.0, 1.2]})
    assert chapters.sweep_verdict(sweep) == (
        "best speed relative to one slice: a at 224 px 2.00x (batch 8); b at 1024 px 1.20x "
        "(batch 8). The 1.5x target is reached by 1 of 2 encoders (a).")
    assert chapters.sweep_verdict(sweep, target=3.0).endswith("reached by 0 of 2 encoders (none).")


def test_the_appendix_tables_read_the_committed_records():
    """The table helpers of the performance appendix on the records they are called on:
    speed rows without the memory estimates, scaling seconds one column per stage, the
    package ratios one row per task."""
    speed = chapters.encoder_speed_table(chapters.benchmark("gpu_encoders.json",
                                                            results_dir=BENCHMARKS))
    assert speed["slices_per_s_single"].notna().all() and "peak_gpu_gb" in speed.columns
    cpu_speed = chapters.benchmark_runs("encoders_*.json", results_dir=BENCHMARKS)
    assert "peak_gpu_gb" not in chapters.encoder_speed_table(cpu_speed).columns
    memory = chapters.memory_table(cpu_speed)
    assert memory["memory_512x512x160_gb"].notna().all() and len(memory) >= 4
    for name in ("scaling.json", "gpu_scaling.json"):
        rows = chapters.benchmark(name, results_dir=BENCHMARKS)
        table = chapters.scaling_table(rows)
        assert {"convex", "adam", "total"} <= set(table.columns) and "seconds" not in table
        assert table["total"].tolist() == [r["total"] for r in rows["seconds"]]
    ratios = chapters.benchmark_ratios("convexadam_package.json", results_dir=BENCHMARKS)
    package = chapters.package_table(chapters.benchmark("convexadam_package.json",
                                                        results_dir=BENCHMARKS))
    assert set(ratios.index) == set(package.index)


def test_the_motion_figure_cuts_runaway_fields_and_says_so(monkeypatch):
    """cohort.md's error-against-motion figure on the committed rows: the axis stops at
    1.6 times the largest error with no registration, and every panel with points beyond
    it counts them."""
    from breastlib.booktools.figures import CLIP_OVER_BEFORE

    monkeypatch.chdir(ROOT / "book")
    monkeypatch.delenv("BREASTLIB_BOOK_BUILD", raising=False)
    rows = chapters.study_results(compute=False).rows
    figure = chapters.motion_error_figure(rows)
    ok = rows[rows["status"] == "ok"]
    top = CLIP_OVER_BEFORE * ok.loc[ok["method"] == "identity", "field_error_mean_mm"].max()
    assert figure.axes[0].get_ylim()[1] == pytest.approx(top)
    for ax in figure.axes:
        over = ok[(ok["task"] == ax.get_title()) & (ok["field_error_mean_mm"] > top)]
        notes = [t.get_text() for t in ax.texts]
        assert notes == ([f"{len(over)} points above, up to "
                          f"{over['field_error_mean_mm'].max():.0f} mm"] if len(over) else [])


def test_the_appendix_reads_the_side_by_side_with_the_package():
    """benchmarks/results/convexadam_package.json: the ratio ranges the performance appendix
    quotes, and the 0.5x target it says is met (rerunning the benchmark means reading them
    again)."""
    ratios = chapters.benchmark_ratios("convexadam_package.json", results_dir=BENCHMARKS)
    rows = chapters.benchmark("convexadam_package.json", results_dir=BENCHMARKS)
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())

    def span(values: pd.Series) -> str:
        return f"{values.min():.2f}-{values.max():.2f}"

    assert (f"registration takes {span(ratios['registration_ratio'])} times the package's, "
            f"its whole process {span(ratios['wall_ratio'])} times with the QC picture and "
            f"{span(ratios['wall_ratio_no_qc'])} times without it") in text
    assert ("**The time target is met on all four pairs, with the QC picture and without "
            "it.**") in text
    assert (ratios[["wall_ratio", "wall_ratio_no_qc"]] <= 0.5).all().all()
    wall = rows.groupby(["task", "tool"])["wall_s"]
    worst = wall.max().xs("breastlib convexadam", level="tool") / wall.min().xs(
        "convexadam 0.2.0", level="tool")
    assert f"slowest default run against the package's fastest is {span(worst)}" in text


def test_package_table_takes_each_tools_fastest_repeat():
    def row(tool, repeat, wall, dense):
        return {"task": "lesion", "tool": tool, "repeat": repeat, "wall_s": wall,
                "registration_s": wall - 3.0, "field_error_mean_mm": dense,
                "tre_mean_after_mm": 1.5, "dice_breast": 0.97, "jac_nonpos_pct": 0.1}

    rows = pd.DataFrame([row("convexadam 0.2.0", 0, 11.0, 2.54),
                         row("breastlib convexadam", 0, 7.0, 2.72),
                         row("convexadam 0.2.0", 1, 10.0, 2.54),
                         row("breastlib convexadam", 1, 7.5, 2.72)])
    table = chapters.package_table(rows)
    assert table.loc["lesion", ("wall_s", "convexadam 0.2.0")] == 10.0
    assert table.loc["lesion", ("wall_s", "breastlib convexadam")] == 7.0
    assert table.loc["lesion", ("field_error_mean_mm", "breastlib convexadam")] == 2.72
    assert list(dict.fromkeys(table.columns.get_level_values(0)))[-2:] == [
        "wall_s", "registration_s"]


def test_slab_table_reads_the_benchmark():
    rows = chapters.benchmark("grid_sample_slabs.json", results_dir=BENCHMARKS)
    table = chapters.slab_table(rows)
    assert list(table.columns) == [*chapters.STAGE_COLUMNS, "same field"]
    assert table["same field"].all()  # slabs change the time, never the field
    for profile in rows["profile"].unique():
        assert set(table.loc[profile].index) == {1, int(rows["slabs"].max())}
    # Two runs of one profile with different fields are reported as such.
    broken = rows.copy()
    broken.loc[broken.index[0], "field_sha1"] = "0" * 16
    assert not chapters.slab_table(broken).loc[rows["profile"].iloc[0], "same field"].all()


def test_the_appendix_quotes_the_smoothing_rows():
    """The paragraph on Adam's smoothing in millimetres quotes the record's rows with it
    and the regulariser at 4: the stage each pair kept, its errors and seconds, and on the
    pair where the guard kept an earlier stage, Adam's own field and the guard's count."""
    rows = chapters.benchmark("work_spacing.json", results_dir=BENCHMARKS)
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    start = text.index("**Adam's smoothing in millimetres**")
    paragraph = text[start:text.index("The whole registration on blocks", start)]
    chosen = rows[(rows["adam_smooth_mm"] == 15.0) & (rows["regularisation"] == 4.0)
                  & (rows["seed"] == 0)]
    assert sorted(chosen["task"]) == sorted(["longitudinal", "sequence", "modality", "lesion"])
    for _, row in chosen.iterrows():
        if row["stage"] == "adam":
            quoted = [row["tre_mean_after_mm"], row["field_error_mean_mm"]]
            assert f"{row['seconds']['total']:.0f} s" in paragraph, row["task"]
        else:
            own = row["adam_own"]
            quoted = [own["tre_mean_after_mm"], own["field_error_mean_mm"],
                      row["tre_mean_after_mm"]]
            folding = [c["folding_pct"] for c in row["stage_checks"] if c["stage"] == "adam"]
            assert f"{folding[0]:.1f} %" in paragraph, row["task"]
        for value in quoted:
            assert f"{value:.2f}" in paragraph, (row["task"], value)
    passes = [p for row in chosen["smoothing_passes"] for p in row]
    assert f"{min(passes)} to {max(passes)} passes" in paragraph


def test_work_spacing_table_reads_the_benchmark():
    rows = chapters.benchmark("work_spacing.json", results_dir=BENCHMARKS)
    table = chapters.work_spacing_table(rows)
    assert table.index.names == ["task", "registered on"]
    assert len(table) == len(rows)
    grids = table.index.get_level_values("registered on")
    assert grids.str.startswith("own voxels").sum() == (rows["work_spacing"] == 0).sum()
    assert table.index.is_unique  # two spacings may give the same blocks: both named
    # A full-size pair's own voxels are finer than 1 mm in-plane; its blocks about the
    # working spacing asked for (whole voxels per block: within 0.6 of it either way).
    own = rows[rows["work_spacing"] == 0]
    blocks = rows[rows["work_spacing"] > 0]
    assert all(s[0] < 1.0 for s in own["work_spacing_mm"])
    assert all(abs(s[0] - asked) <= 0.6 for s, asked in zip(
        blocks["work_spacing_mm"], blocks["work_spacing"], strict=True))
    assert (table["seconds"] > 0).all() and (table["dense (mm)"] > 0).all()
    # Rows with stage cells in mm had pooling factors grown past the profile's voxel counts
    # (4 and 2) on the full-size voxels; the others kept them.
    cells = (rows["convex_cell_mm"] > 0) | (rows["adam_cell_mm"] > 0)
    assert cells.any() and (~cells).any()
    for factors, with_cells in zip(rows["pooling_factors"], cells, strict=True):
        grown = max(factors["convex"]) > 4 and max(factors["adam"]) > 2
        assert grown == with_cells, factors
    # Rows with Adam's smoothing in mm ran more passes than the profile's 3 along every
    # axis of those fine cells; the others ran 3.
    smooth = rows["adam_smooth_mm"] > 0
    assert smooth.any()
    for passes, with_smooth in zip(rows["smoothing_passes"], smooth, strict=True):
        assert (min(passes) > 3) if with_smooth else passes == [3, 3, 3], passes
    # The regulariser's weight grew on cells finer than its reference, and only there.
    for _, row in rows.iterrows():
        scaled = row["regularisation_cell_mm"] > 0
        weight = row["regularisation_weight"]
        assert (weight > row["regularisation"]) if scaled else (
            weight == row["regularisation"]), row
    # A row names each fine-voxel rule where it differs from `fast` today; a row of `fast`
    # as it is names none, a row from before the rules says so.
    fast = get_profile("fast")
    today = ((rows["convex_cell_mm"] == fast.convex_cell_mm)
             & (rows["adam_cell_mm"] == fast.adam_cell_mm)
             & (rows["adam_smooth_mm"] == fast.adam_smooth_mm)
             & (rows["regularisation_cell_mm"] == fast.regularisation_cell_mm)
             & (rows["regularisation"] == fast.regularisation) & (rows["ghost_opening_mm"] > 0))
    assert today.any() and (~today).any()
    assert (~grids.str.contains(";") == today.to_numpy()).all()
    before = ~cells & ~smooth & (rows["ghost_opening_mm"] == 0)
    assert (grids.str.contains("voxel-count settings") == before.to_numpy()).all()
    named = cells & (rows["convex_cell_mm"] != fast.convex_cell_mm)
    assert (grids.str.contains("cells >=") == named.to_numpy()).all()
    assert (grids.str.contains("held-out pair") == (rows["seed"] != 0).to_numpy()).all()


def test_ghost_mask_table_reads_the_benchmark():
    rows = chapters.benchmark("ghost_mask.json", results_dir=BENCHMARKS)
    table = chapters.ghost_mask_table(rows)
    assert table.index.names == ["task", "seed", "image"] and len(table) == len(rows)
    assert set(table.index.get_level_values("task")) == {
        "longitudinal", "sequence", "modality", "lesion"}
    # Full-size voxels are opened along every in-plane axis; the opening only removes
    # voxels, so it never takes more outside the labelled body than the threshold alone
    assert all(r[0] >= 2 and r[1] >= 2 for r in rows["opening_voxels"])
    outside, left_out = table["outside body (ml)"], table["body left out (ml)"]
    assert (outside["opened"] <= outside["threshold"]).all()
    # ... and on the modality pair's fixed MR image it cut most of the ghosts away, at the
    # price of little labelled body
    key = ("modality", 0, "fixed")
    cut = outside.loc[key, "threshold"] - outside.loc[key, "opened"]
    assert cut > 0.5 * outside.loc[key, "threshold"]
    assert left_out.loc[key, "opened"] - left_out.loc[key, "threshold"] < 0.25 * cut


def test_ghost_mask_figure_outlines_both_masks_on_the_committed_slice():
    figure = chapters.ghost_mask_figure(BENCHMARKS / "ghost_mask_slice.npz")
    axes = figure.axes
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["threshold alone", "opened by 4 mm (fast's mask)"]
    for ax in axes:
        assert ax.images and ax.collections  # the slice and its mask's outline
    data = np.load(BENCHMARKS / "ghost_mask_slice.npz")
    # the opened mask lies inside the plain one and is smaller: the ghosts are gone
    assert not (data["opened"] & ~data["plain"]).any()
    assert data["opened"].sum() < data["plain"].sum()


def test_the_appendix_quotes_fast_on_every_full_size_pair():
    """The paragraph on `fast`'s fine-voxel rules quotes, for every full-size pair (the
    book's and the held-out ones), the errors and seconds of `fast` as it is and the
    errors of the voxel-count settings on the same pair."""
    rows = chapters.benchmark("work_spacing.json", results_dir=BENCHMARKS)
    table = chapters.work_spacing_table(rows).reset_index()
    text = " ".join((ROOT / "book" / "performance.md").read_text().split())
    start = text.index("**`fast`'s fine-voxel rules**")
    paragraph = text[start:text.index("The whole registration on blocks", start)]
    today = ~table["registered on"].str.contains(";").to_numpy()
    before = (table["registered on"].str.contains("voxel-count settings").to_numpy()
              & (rows["work_spacing"] == 0).to_numpy())
    assert today.sum() == 8 and before.sum() == 8  # four tasks x seeds 0 and 1
    for chosen in (today, before):
        assert sorted(zip(rows["task"][chosen], rows["seed"][chosen], strict=True)) == sorted(
            (task, seed) for task in ("longitudinal", "sequence", "modality", "lesion")
            for seed in (0, 1))
        for _, row in rows[chosen].iterrows():
            for value in (row["tre_mean_after_mm"], row["field_error_mean_mm"]):
                assert f"{value:.2f}" in paragraph, (row["task"], row["seed"], value)
    for _, row in rows[today].iterrows():
        assert f"{row['seconds']['total']:.0f} s" in paragraph, (row["task"], row["seed"])
        assert row["stage"] == "adam" and row["seconds"]["total"] < 180
