"""The book builds from a clean state with warnings as errors, every chapter executed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for chapter in toc.get("chapters", []):
        files.append(chapter["file"])
    for part in toc.get("parts", []):
        files.extend(chapter["file"] for chapter in part["chapters"])
    return files


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book once per test session into ``_build/html``."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--warningiserror", "--nitpick",
         "--keep-going", "--all"],
        capture_output=True, text=True, timeout=1500, env=env, cwd=ROOT,
    )
    assert result.returncode == 0, (result.stdout[-6000:] + result.stderr[-3000:])
    return BUILD / "html"


@pytest.mark.book
def test_every_chapter_is_built(built_book):
    for name in toc_files():
        page = built_book / f"{name}.html"
        assert page.exists(), page
        assert page.stat().st_size > 5_000


@pytest.mark.book
def test_executed_chapters_show_figures_and_no_errors(built_book):
    method = (built_book / "book" / "method.html").read_text()
    assert "<img" in method  # the before/after figure was rendered
    assert "Traceback" not in method
