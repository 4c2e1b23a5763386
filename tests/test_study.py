"""The study runner: table layout, resume after a kill, failure isolation, Dask.

Most tests run on a tiny cohort (``tiny_cohort``, conftest.py) in the phantom's manifest
format (32 x 32 x 24 voxels on an oblique LPS grid, the moving image a rigid shift of the
fixed one), where every metric of a row has a known answer; one test runs the real phantom
cohort end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_volumes import TINY_SHIFTS

from breastlib.study.run import RESULT_COLUMNS, run_study


@pytest.fixture(scope="module")
def grid(tiny_cohort, tmp_path_factory):
    """One run of the grid (baselines and ``mind`` via register_pair), shared."""
    out = tmp_path_factory.mktemp("grid")
    return run_study(tiny_cohort, METHODS, out=out, progress=False), out


METHODS = ["identity", "affine", "mind"]


def test_table_has_one_row_per_pair_and_method(grid):
    table, out = grid
    assert list(table.columns) == RESULT_COLUMNS
    assert len(table) == 6 and set(table["status"]) == {"ok"}, table["error"].tolist()
    assert not table.duplicated(["pair_id", "method"]).any()
    assert sorted(p.name for p in out.glob("*.csv")) == ["results.csv"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), table)
    assert len(pd.read_csv(out / "results.csv")) == 6
    mind = table[table["method"] == "mind"]
    assert (mind["tre_mean_after_mm"] < mind["tre_mean_before_mm"]).all()
    assert (mind["encoder"] == "mind-ssc").all()
    assert (table["peak_rss_mib"] > 100).all()  # each row measured its own process
    assert json.loads(mind["params"].iloc[0])["iterations"] > 0


def test_rows_have_the_known_metrics_of_a_shifted_pair(grid):
    table, _ = grid
    for pair_id, shift in TINY_SHIFTS.items():
        rows = table[table["pair_id"] == pair_id].set_index("method")
        # Landmark error before registration is the shift itself, at every landmark.
        for method in ("identity", "affine"):
            assert rows.loc[method, "tre_mean_before_mm"] == pytest.approx(
                np.linalg.norm(shift), abs=1e-6)
        assert rows.loc["identity", "tre_p90_after_mm"] == pytest.approx(
            np.linalg.norm(shift), abs=1e-6)
        identity, affine = rows.loc["identity"], rows.loc["affine"]
        assert identity["jac_nonpos_pct"] == 0 and identity["sdlogj"] == pytest.approx(0)
        # The affine baseline finds the rigid shift: sub-voxel TRE, masks as good as
        # nearest-neighbour label warping on 3-4 mm voxels allows.
        assert affine["tre_mean_after_mm"] < 1.0, affine["tre_mean_after_mm"]
        assert affine["dice_breast"] > max(0.95, identity["dice_breast"])
        assert affine["dice_fgt"] > identity["dice_fgt"]
        assert affine["hd95_breast_mm"] < identity["hd95_breast_mm"]
        assert pd.isna(affine["dice_lesion"])  # no lesion in either image
        assert affine["jac_nonpos_pct"] == 0
        assert affine["weights"] is None or pd.isna(affine["weights"])
        assert json.loads(affine["params"])["method"] == "affine"


def test_phantom_cohort_end_to_end(tmp_path):
    """The phantom's own cohort (format owned by breastlib.phantom) runs as it is."""
    from breastlib.phantom import make_cohort

    manifest = make_cohort("longitudinal", 1, size="small", seed=1, out_dir=tmp_path / "c")
    table = run_study(manifest, ["identity"], out=tmp_path / "out", progress=False)
    assert len(table) == 1 and table.loc[0, "status"] == "ok", table["error"].tolist()
    assert table.loc[0, "tre_mean_before_mm"] > 1.0
    assert 0.0 < table.loc[0, "dice_breast"] < 1.0 and table.loc[0, "dice_fgt"] > 0.0


def test_rerun_skips_finished_rows(tiny_cohort, grid):
    _, out = grid
    files = [*sorted((out / "rows").iterdir()), out / "results.csv", out / "results.parquet"]
    stamps = [p.stat().st_mtime_ns for p in files]
    start = time.perf_counter()
    table = run_study(tiny_cohort, METHODS, out=out, progress=False)
    assert time.perf_counter() - start < 5  # nothing recomputed
    assert [p.stat().st_mtime_ns for p in files] == stamps  # nor rewritten
    assert len(table) == 6


def test_failing_pair_is_recorded_and_retried(tiny_cohort, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_cohort.parent, broken)
    manifest = pd.read_csv(broken / "manifest.csv")
    bad = broken / manifest.loc[0, "moving_landmarks"]
    good = bad.read_bytes()
    bad.write_text("not,a,landmark,file\n")
    out = tmp_path / "out"
    table = run_study(broken / "manifest.csv", ["identity"], out=out, progress=False)
    failed = table[table["status"] == "failed"]
    assert len(failed) == 1 and "x, y, z" in failed["error"].iloc[0]
    assert (table["status"] == "ok").sum() == 1  # the other pair went on
    bad.write_bytes(good)  # repair the file (the images, hence the row key, are unchanged)
    again = run_study(broken / "manifest.csv", ["identity"], out=out, progress=False)
    assert (again["status"] == "failed").sum() == 1  # failures are kept unless asked
    retried = run_study(broken / "manifest.csv", ["identity"], out=out, progress=False,
                        retry_failed=True)
    assert set(retried["status"]) == {"ok"} and len(retried) == 2


def test_executor_failure_is_a_failed_row(tiny_cohort, tmp_path, monkeypatch):
    """A cell whose executor raises (e.g. a lost Dask worker) is recorded, the rest run."""
    import breastlib.study.run as study

    real = study.run_job_in_subprocess

    def flaky(job, **kwargs):
        if job.pair_id == "tiny_000":
            raise RuntimeError("worker lost")
        return real(job, **kwargs)

    monkeypatch.setattr(study, "run_job_in_subprocess", flaky)
    table = run_study(tiny_cohort, ["identity"], out=tmp_path, progress=False).set_index("pair_id")
    assert table.loc["tiny_000", "status"] == "failed"
    assert table.loc["tiny_000", "error"] == "executor: RuntimeError: worker lost"
    assert table.loc["tiny_000", "task"] == "longitudinal"
    assert table.loc["tiny_001", "status"] == "ok"
    assert len(list((tmp_path / "rows").glob("*.json"))) == 2  # the failure is on disk too


def test_changed_images_are_new_rows(tiny_cohort, tmp_path):
    """Rows are keyed by image content: regenerated data never reuses stale results."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_cohort.parent, copy)
    out = tmp_path / "out"
    run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    manifest = pd.read_csv(copy / "manifest.csv")
    from breastlib.volume import load_volume

    moving = load_volume(copy / manifest.loc[0, "moving_image"])
    moving.with_array(moving.array * 1.5).save(copy / manifest.loc[0, "moving_image"])
    table = run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    assert len(table) == 2  # the table shows the current data only
    assert len(list((out / "rows").glob("*.json"))) == 3  # old row kept in the cache


def test_phantom_pairs_are_keyed_by_recipe_not_last_bits(tiny_cohort, tmp_path):
    """A phantom pair regenerated on another CPU (same recipe, voxels off in the last
    bits) finds its results; a different recipe or grid does not."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_cohort.parent, copy)
    manifest = pd.read_csv(copy / "manifest.csv")
    manifest["recipe"] = ["phantom-v1-aaaa", "phantom-v1-bbbb"]
    manifest.to_csv(copy / "manifest.csv", index=False)
    out = tmp_path / "out"
    run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    from breastlib.volume import load_volume

    path = copy / manifest.loc[0, "moving_image"]
    moving = load_volume(path)
    moving.with_array(np.nextafter(moving.array, np.float32(np.inf))).save(path)
    run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    assert len(list((out / "rows").glob("*.json"))) == 2  # nothing recomputed
    manifest.loc[0, "recipe"] = "phantom-v2-aaaa"  # a new generator version
    manifest.to_csv(copy / "manifest.csv", index=False)
    run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    assert len(list((out / "rows").glob("*.json"))) == 3


def test_killed_run_resumes_without_losing_or_duplicating(tiny_cohort, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "breastlib", "study", "--cohort", str(tiny_cohort),
               "--methods", "identity,affine", "--out", str(out)]
    scratch = tmp_path / "tmp"  # the killed study's temporary folder
    scratch.mkdir()
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, TMPDIR=str(scratch)))
    rows = out / "rows"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(rows.glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # no job description left behind by the cells the kill interrupted
    assert not list(scratch.rglob("*.json"))
    finished = {p.name: p.stat().st_mtime_ns for p in rows.glob("*.json")}
    assert 2 <= len(finished) < 4, "the kill should land mid-run"
    table = run_study(tiny_cohort, ["identity", "affine"], out=out, progress=False)
    assert len(table) == 4 and not table.duplicated(["pair_id", "method"]).any()
    assert set(table["status"]) == {"ok"}, table["error"].tolist()
    for name, stamp in finished.items():
        assert (rows / name).stat().st_mtime_ns == stamp  # finished rows not recomputed


def test_dask_local_cluster_gives_the_same_table(tiny_cohort, grid, tmp_path):
    local = grid[0][grid[0]["method"] == "identity"].reset_index(drop=True)
    dask = run_study(tiny_cohort, ["identity"], out=tmp_path, progress=False,
                     executor="dask", workers=2)
    assert len(list((tmp_path / "rows").glob("*.json"))) == 2
    machine = ["seconds_features", "seconds_optimisation", "seconds_total", "peak_rss_mib",
               "versions"]
    pd.testing.assert_frame_equal(local.drop(columns=machine), dask.drop(columns=machine))


def test_cli_reports_bad_cohort_cleanly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "breastlib", "study", "--cohort", str(tmp_path / "none.csv"),
         "--methods", "identity", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("breastlib: error:") and "not found" in result.stderr


def test_profile_overrides_reach_the_worker_and_name_the_row(tiny_cohort, tmp_path):
    """A profile at a stated smaller scale (the ablation's CPU runs): the overrides name
    the row (so another scale is another row) and reach the registration; baselines keep
    their own parameters and rows."""
    from breastlib.errors import BreastlibError
    from breastlib.study.run import plan_jobs

    overrides = {"iterations": 2}
    todo, _ = plan_jobs(tiny_cohort, ["mind", "identity"], tmp_path, profile="paper+grid",
                        overrides=overrides)
    names = {job.method: Path(job.row_path).name for job in todo}
    assert "__paper+grid@" in names["mind"] and "@" not in names["identity"]
    plain, _ = plan_jobs(tiny_cohort, ["mind"], tmp_path, profile="paper+grid")
    assert Path(plain[0].row_path).name != names["mind"]
    with pytest.raises(BreastlibError, match="unknown ConvexAdam parameter"):
        plan_jobs(tiny_cohort, ["mind"], tmp_path, overrides={"iters": 2})
    table = run_study(tiny_cohort, ["mind"], out=tmp_path, profile="paper", progress=False,
                      overrides=overrides)
    assert set(table["status"]) == {"ok"} and set(table["profile"]) == {"paper"}
    params = json.loads(table["params"].iloc[0])
    assert params["iterations"] == 2 and params["grid"] == "released"


def test_random_encoders_run_once_per_seed_and_per_network(tiny_cohort, tmp_path):
    """Random weights are an architecture: one row per seed, named by its seed (seed 0
    keeps the old name), and encoders sharing one random network (sam, medsam, sslsam)
    run once; every other method runs once with --seed."""
    from breastlib.errors import BreastlibError
    from breastlib.study.run import plan_jobs

    todo, done = plan_jobs(tiny_cohort, ["identity", "sam", "medsam", "sslsam", "medclip"],
                           tmp_path, weights="random", seeds=[0, 1, 2], previews="first")
    assert not done
    first = str(pd.read_csv(tiny_cohort)["pair_id"].iloc[0])
    cells = sorted((job.method, job.seed) for job in todo if job.pair_id == first)
    assert cells == [("identity", 0), ("medclip", 0), ("medclip", 1), ("medclip", 2),
                     ("sam", 0), ("sam", 1), ("sam", 2)]
    names = {(job.method, job.seed): Path(job.row_path).name for job in todo
             if job.pair_id == first}
    assert "__random__" in names[("sam", 0)] and "__random-seed2__" in names[("sam", 2)]
    previews = {(job.method, job.seed) for job in todo if job.preview}
    assert previews == {("identity", 0), ("sam", 0), ("medclip", 0)}
    with pytest.raises(BreastlibError, match="distinct"):
        plan_jobs(tiny_cohort, ["sam"], tmp_path, seeds=[1, 1])


def test_seed_reaches_the_row_and_its_column(tiny_cohort, tmp_path):
    table = run_study(tiny_cohort, ["identity"], out=tmp_path, seed=3, progress=False)
    assert set(table["seed"]) == {3.0}
    # nothing guards a baseline: what it delivers is its own result
    assert table["guarded_field_error_mean_mm"].equals(table["field_error_mean_mm"])
    assert all("seed" in json.loads(p.read_text()) for p in (tmp_path / "rows").iterdir())
