"""Shared fixtures: small textured volumes on deliberately awkward grids."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

#: Most xdist workers the suite starts: each holds a few GB at its peak.
MAX_WORKERS = 4


def _threads_per_worker() -> int | None:
    """CPU threads for each xdist worker, so that workers do not oversubscribe the cores."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


# Set before numpy and torch load, and inherited by subprocesses (CLI runs, book kernels).
if _threads_per_worker() is not None:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_name] = str(_threads_per_worker())

import numpy as np  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Never read or fill a user's caches from the tests.
# Each process that loads this file (the controller and every xdist worker) makes its own
# pair and removes it when it exits: a full run leaves about 1 GB there.
for _variable, _prefix in (("BREASTLIB_CACHE", "breastlib-test-cache-"),
                           ("BREASTLIB_WEIGHTS", "breastlib-test-weights-")):
    os.environ[_variable] = tempfile.mkdtemp(prefix=_prefix)
    atexit.register(shutil.rmtree, os.environ[_variable], ignore_errors=True)

from synthetic_volumes import blob_volume, centred_affine, write_tiny_cohort  # noqa: E402


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, at least two, at most :data:`MAX_WORKERS`."""
    return min(MAX_WORKERS, max(2, os.cpu_count() or 1))


# Geometry cases that catch the classic errors: anisotropic spacing, oblique direction
# cosines, LPS storage order, a sagittal (axis-permuted) stack, non-zero origins.
GRID_CASES = {
    "ras-anisotropic": dict(spacing=(0.7 * 3, 0.7 * 3, 2.0 * 2)),
    "lps-oblique": dict(spacing=(2.0, 2.4, 3.0), angle_deg=17.0, lps=True),
    "sagittal-stack": dict(spacing=(3.0, 2.0, 2.2), permute=(1, 2, 0), angle_deg=-9.0),
}


@pytest.fixture(params=sorted(GRID_CASES))
def grid_case(request):
    """(name, shape, file affine) for each awkward grid."""
    shape = (40, 36, 28)
    return request.param, shape, centred_affine(shape, **GRID_CASES[request.param])


@pytest.fixture
def blob_pair():
    """A fixed blob and a moving copy shifted by a known amount (mm), oblique LPS grid."""
    shape = (48, 44, 32)
    affine = centred_affine(shape, spacing=(2.0, 2.4, 3.0), angle_deg=17.0, lps=True)
    shift = np.array([4.0, -3.0, 5.0])
    fixed = blob_volume(shape, affine, seed=3)
    moving = blob_volume(shape, affine, shift_mm=shift, seed=3)
    return fixed, moving, shift


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    """``manifest.csv`` of :func:`synthetic_volumes.write_tiny_cohort` (two shifted blob
    pairs whose metrics have known answers), written once per test module."""
    return write_tiny_cohort(tmp_path_factory.mktemp("tiny-cohort"))


def _centre_region(shape: tuple[int, ...], fraction: float = 0.25) -> np.ndarray:
    mask = np.zeros(shape, bool)
    lo = [int(s * fraction) for s in shape]
    hi = [int(s * (1 - fraction)) for s in shape]
    mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return mask


@pytest.fixture
def centre_region():
    """``centre_region(shape, fraction=0.25)``: boolean mask of the central box of a grid,
    ``fraction`` of each axis left out on either side (where registration errors are
    measured, away from the borders)."""
    return _centre_region


def _decode_image(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    header, data = uri.split(",", 1)
    assert header.startswith("data:image/"), header
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


@pytest.fixture
def decode_image():
    """``decode_image(uri)``: the pixels of a ``data:image/...;base64`` URI as an array."""
    return _decode_image


@pytest.fixture(scope="session")
def built_book():
    """Build the book once per test session into ``_build/html`` (shared by the book and
    browser tests)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    # The real-exam chapter fetches its data from the local mirror beside the repository
    # when there is one (it prints a note and skips its cells when the data is unavailable).
    mirror = root.parent / "shared" / "realdata"
    if mirror.is_dir() and "BREASTLIB_DATA_MIRROR" not in env:
        env["BREASTLIB_DATA_MIRROR"] = str(mirror)
    result = subprocess.run(
        [str(jupyter_book), "build", str(root), "--warningiserror", "--nitpick",
         "--keep-going", "--all"],
        capture_output=True, text=True, timeout=1500, env=env, cwd=root,
    )
    assert result.returncode == 0, (result.stdout[-6000:] + result.stderr[-3000:])
    return root / "_build" / "html"


@pytest.fixture(scope="session")
def chromium_path():
    """Debian's headless Chromium: installed in CI as root, otherwise skip when missing."""
    from browser_support import require_chromium

    return require_chromium()


def pytest_report_header(config):
    """The Chromium the browser tests find at the start (CI may install it later)."""
    from browser_support import CHROMIUM, chromium_version, in_ci

    version = chromium_version(CHROMIUM)
    if version:
        return f"chromium: {version} ({CHROMIUM})"
    then = "CI installs it for the browser tests" if in_ci() else "the browser tests skip"
    return f"chromium: none at {CHROMIUM} ({then})"


def pytest_terminal_summary(terminalreporter):
    """The Chromium the browser tests ran on, as each of them recorded it (this works on
    xdist workers too: ``record_property`` travels with the reports)."""
    used = {value for reports in terminalreporter.stats.values() for report in reports
            for name, value in getattr(report, "user_properties", ()) if name == "chromium"}
    for value in sorted(used):
        terminalreporter.write_line(f"browser tests ran on {value}")
