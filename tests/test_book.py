"""The book builds from a clean state with warnings as errors, every chapter executed.

The ``built_book`` fixture lives in ``conftest.py`` so the browser tests share the build.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

# One xdist worker builds the book once for every test that reads it.
pytestmark = pytest.mark.xdist_group("book")

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


def test_book_tests_share_one_worker(request):
    """Under ``--dist loadgroup`` every test of the "book" group runs on one worker, which
    builds the book once; if the group split, each worker would build it again."""
    if not request.config.getoption("loadgroup", False):
        pytest.skip("not running under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@book"), request.node.nodeid


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
