"""The book's Sphinx extension (``book/_ext/offline_site.py``) on a two-page project.

Sphinx runs in a subprocess: the extension sets ``BREASTLIB_STATIC_BUILD=1`` in the
process that loads it, which must not leak into the other tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("plotly")

EXTENSIONS = Path(__file__).resolve().parents[1] / "book" / "_ext"
FIGURE = ('<div class="breastlib-interactive"><div id="breastlib-plot-0"></div>'
          '<script>Plotly.newPlot("breastlib-plot-0", [{y: [1, 2]}]);</script></div>')


def _build(tmp_path: Path, index_html: str) -> subprocess.CompletedProcess:
    source, out = tmp_path / "src", tmp_path / "html"
    source.mkdir()
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXTENSIONS)!r})\n"
        "extensions = ['offline_site']\nhtml_theme = 'basic'\n")
    (source / "index.rst").write_text(
        "Figure\n======\n\n.. toctree::\n\n   prose\n\n.. raw:: html\n\n   "
        + index_html.replace("\n", "\n   ") + "\n")
    (source / "prose.rst").write_text("Prose\n=====\n\nNo figure here.\n")
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(source), str(out)],
        capture_output=True, text=True, timeout=300)


def test_plotly_js_is_copied_once_and_loaded_only_where_a_figure_is(tmp_path):
    import plotly

    result = _build(tmp_path, FIGURE)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "html"
    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert (out / "_static" / "plotly.min.js").read_bytes() == bundle.read_bytes()

    page = (out / "index.html").read_text()
    head, body = page.split("</head>", 1)
    scripts = re.findall(r"<script[^>]*>", head)
    plotly_tag = [tag for tag in scripts if "_static/plotly.min.js" in tag]
    # A blocking script in <head>: Plotly exists before the body's figure scripts run.
    assert len(plotly_tag) == 1 and not re.search(r"\b(defer|async)\b", plotly_tag[0])
    assert head.index("window.PlotlyConfig") < head.index("_static/plotly.min.js")
    assert "Plotly.newPlot" in body and "plotly.js v" not in page
    assert "plotly.min.js" not in (out / "prose.html").read_text()


def test_a_page_embedding_its_own_plotly_js_fails_the_build(tmp_path):
    """A chapter output cached before the site shared plotly.js still carries the bundle."""
    result = _build(tmp_path, FIGURE + "<script>/**\n* plotly.js v9.9.9\n*/</script>")
    assert result.returncode != 0
    assert "embeds its own copy of plotly.js" in result.stdout + result.stderr


def test_header_cells_wrap_at_their_underscores(monkeypatch):
    """Only a header cell's own text gains ``<wbr>``: data cells and markup stay as they are."""
    monkeypatch.syspath_prepend(str(EXTENSIONS))
    from offline_site import breakable_headers

    body = ('<tr><th></th><th class="blank level0">slices_per_s</th><th>n</th>'
            '<th><a href="a_b.html">a_b</a></th></tr><tr><td>run_1</td></tr>')
    assert breakable_headers(body) == (
        '<tr><th></th><th class="blank level0">slices_<wbr>per_<wbr>s</th><th>n</th>'
        '<th><a href="a_b.html">a_b</a></th></tr><tr><td>run_1</td></tr>')
