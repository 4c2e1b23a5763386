"""The study runner: table layout, resume after a kill, failure isolation, Dask."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from breastlib.phantom import make_cohort
from breastlib.study import RESULT_COLUMNS, run_study


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    return make_cohort("longitudinal", 2, size="small", seed=1, out_dir=root)


def test_table_has_one_row_per_pair_and_method(cohort, tmp_path):
    table = run_study(cohort, ["identity", "mind"], out=tmp_path, progress=False)
    assert list(table.columns) == RESULT_COLUMNS
    assert len(table) == 4 and set(table["status"]) == {"ok"}, table["error"].tolist()
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["results.csv"]
    on_disk = pd.read_parquet(tmp_path / "results.parquet")
    assert len(on_disk) == 4
    identity = table[table["method"] == "identity"]
    # No registration: the landmark error after equals the error before.
    pd.testing.assert_series_equal(identity["tre_mean_after_mm"], identity["tre_mean_before_mm"],
                                   check_names=False, atol=1e-6)
    mind = table[table["method"] == "mind"]
    assert (mind["tre_mean_after_mm"] < mind["tre_mean_before_mm"]).all()
    assert (table["peak_rss_mib"] > 100).all()  # each row measured its own process
    assert json.loads(mind["params"].iloc[0])["iterations"] > 0


def test_rerun_skips_finished_rows(cohort, tmp_path):
    run_study(cohort, ["identity"], out=tmp_path, progress=False)
    rows = sorted((tmp_path / "rows").iterdir())
    stamps = [p.stat().st_mtime_ns for p in rows]
    start = time.perf_counter()
    table = run_study(cohort, ["identity"], out=tmp_path, progress=False)
    assert time.perf_counter() - start < 5  # nothing recomputed
    assert [p.stat().st_mtime_ns for p in rows] == stamps
    assert len(table) == 2


def test_failing_pair_is_recorded_and_retried(cohort, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(cohort.parent, broken)
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


def test_changed_images_are_new_rows(cohort, tmp_path):
    """Rows are keyed by image content: regenerated data never reuses stale results."""
    copy = tmp_path / "copy"
    shutil.copytree(cohort.parent, copy)
    out = tmp_path / "out"
    run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    manifest = pd.read_csv(copy / "manifest.csv")
    from breastlib.volume import load_volume

    moving = load_volume(copy / manifest.loc[0, "moving_image"])
    moving.with_array(moving.array * 1.5).save(copy / manifest.loc[0, "moving_image"])
    table = run_study(copy / "manifest.csv", ["identity"], out=out, progress=False)
    assert len(table) == 2  # the table shows the current data only
    assert len(list((out / "rows").glob("*.json"))) == 3  # old row kept in the cache


def test_killed_run_resumes_without_losing_or_duplicating(cohort, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "breastlib", "study", "--cohort", str(cohort),
               "--methods", "identity,affine", "--out", str(out)]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    rows = out / "rows"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(rows.glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in rows.glob("*.json")}
    assert 2 <= len(finished) < 4, "the kill should land mid-run"
    table = run_study(cohort, ["identity", "affine"], out=out, progress=False)
    assert len(table) == 4 and not table.duplicated(["pair_id", "method"]).any()
    assert set(table["status"]) == {"ok"}, table["error"].tolist()
    for name, stamp in finished.items():
        assert (rows / name).stat().st_mtime_ns == stamp  # finished rows not recomputed


def test_dask_local_cluster_gives_the_same_table(cohort, tmp_path):
    local = run_study(cohort, ["identity"], out=tmp_path / "local", progress=False)
    dask = run_study(cohort, ["identity"], out=tmp_path / "dask", progress=False,
                     executor="dask", workers=2)
    columns = ["task", "pair_id", "method", "dice_breast", "tre_mean_after_mm", "status"]
    pd.testing.assert_frame_equal(local[columns], dask[columns])


def test_cli_reports_bad_cohort_cleanly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "breastlib", "study", "--cohort", str(tmp_path / "none.csv"),
         "--methods", "identity", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("breastlib: error:") and "not found" in result.stderr
