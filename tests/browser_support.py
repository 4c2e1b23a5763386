"""Headless Chromium for the browser tests: find it, install it in CI, or skip.

Debian's ``chromium`` package is driven by the Python ``playwright`` package through
``executable_path``; Playwright's own browser download is never used (it cannot reach
its download host here). Policy:

- Chromium present: use it.
- Missing, ``CI`` set and running as root: ``apt-get update && apt-get install -y
  chromium``; if that fails the tests fail (CI never skips the browser tests).
- Missing elsewhere: skip with a one-line hint.

Either way the tests then run the same executable with the same arguments, and a test run
names the Chromium it used: a ``chromium:`` line in the session header (what was there at
the start) and a ``browser tests ran on ...`` line in the summary (the browser the tests
launched, and whether this run installed it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("BREASTLIB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # WebGL (the NiiVue 3-D view) on the CPU: ANGLE over SwiftShader, which newer Chromium
    # only falls back to when allowed explicitly.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HINT = "headless Chromium missing: run `sudo apt-get install -y chromium` to run the browser tests"
#: How this process got its Chromium, set by :func:`require_chromium`.
origin = "not looked for"


def in_ci() -> bool:
    """True when the ``CI`` variable says so (any value but empty, 0, false, no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def chromium_version(path: Path) -> str:
    """What ``path --version`` says (``Chromium 156.0.8078.114 built on Debian ...``), or
    ``""`` when ``path`` is not an executable Chromium."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        return ""
    try:
        result = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                                timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    version = result.stdout.strip()
    return version if result.returncode == 0 and "chromium" in version.lower() else ""


def chromium_works(path: Path) -> bool:
    """Whether ``path`` is an executable Chromium that answers ``--version``."""
    return bool(chromium_version(path))


def install_chromium() -> subprocess.CompletedProcess:
    """``apt-get update && apt-get install -y chromium`` (root only), output captured."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = "apt-get update && apt-get install -y chromium"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          timeout=1200, env=env)


def require_chromium() -> Path:
    """The Chromium executable, installing it in CI; skips (outside CI) when missing."""
    global origin
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        message = "the `playwright` Python package is missing: pip install -e '.[dev]'"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    if chromium_works(CHROMIUM):
        origin = "already installed"
        return CHROMIUM
    if not in_ci():
        pytest.skip(HINT)
    if not _is_root():
        pytest.fail(f"CI without root cannot install Chromium; {HINT}")
    print("installing Debian chromium for the browser tests", file=sys.stderr)
    result = install_chromium()
    if result.returncode != 0 or not chromium_works(CHROMIUM):
        found = shutil.which("chromium")
        pytest.fail(
            f"installing chromium failed (rc={result.returncode}, on PATH: {found}):\n"
            + result.stdout[-2000:] + result.stderr[-2000:]
        )
    origin = "installed by this run"
    return CHROMIUM
