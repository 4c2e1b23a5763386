"""Sphinx extension: keep the built book loadable offline and free of script errors.

- Warns (an error under ``--warningiserror``) when a page would load a script or style
  sheet from another host, so no CDN load slips back in (MathJax is vendored in
  ``book/_static/mathjax``).
- Serves plotly.js once for the whole site: the installed plotly package's bundle is
  copied into the build's ``_static/`` (not into git), and every page holding a plotly
  figure loads it from its ``<head>``, a plain blocking script, so ``Plotly`` is defined
  before the figures' inline scripts run while the body is parsed. The kernels no longer
  embed their 4.8 MB copy in each page (:class:`breastlib.viz._plotly.PlotlyPage`).
- Lets table headers wrap at their underscores (``slices_per_s_batched``): a ``<wbr>``
  after each ``_`` in a ``<th>``, so that wide result tables fit the text column
  (``book/_static/breastlib.css`` does the rest).
- Drops repeated inline ``<script>`` bodies: with Sphinx 7.4, sphinx-thebe 0.3.1 and
  sphinx-togglebutton each emit their configuration snippet twice, and the second
  ``const THEBE_JS_URL`` is a ``SyntaxError`` in every page's console.
- Marks the build as static for the kernels that execute the chapters.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The shared plotly.js bundle, under the build's ``_static/``.
PLOTLY_JS = "plotly.min.js"
#: What ``plotly.io.to_html(include_plotlyjs=True)`` sets before its bundle: plotly must
#: leave the page's own MathJax configuration alone.
PLOTLY_CONFIG = "window.PlotlyConfig = {MathJaxConfig: 'local'};"
#: The first line of plotly.js's licence header, found in a page that embeds the bundle.
PLOTLY_HEADER = "* plotly.js v"
#: Marks in a page body that a plotly figure's inline script calls ``Plotly``.
PLOTLY_MARKS = ("Plotly.newPlot", "Plotly.react", 'class="breastlib-interactive"')


#: A table header cell with text only (pandas writes one per column and index level).
_HEADER_CELL = re.compile(r"(<th\b[^>]*>)([^<]*)(</th>)")


def breakable_headers(body: str) -> str:
    """``body`` with a line-break opportunity after each underscore of a header cell.

    Parameters
    ----------
    body
        A page's rendered HTML body.

    Returns
    -------
    str
        The body, ``_<wbr>`` for ``_`` in the text of every ``<th>`` that holds text only.
    """
    return _HEADER_CELL.sub(lambda cell: cell[1] + cell[2].replace("_", "_<wbr>") + cell[3],
                            body)


def plotly_bundle() -> Path:
    """The installed plotly package's minified plotly.js (the one its ``to_html`` embeds).

    Returns
    -------
    pathlib.Path
        ``plotly/package_data/plotly.min.js``.
    """
    from importlib.resources import files

    return Path(str(files("plotly") / "package_data" / PLOTLY_JS))


def needs_plotly(body: str) -> bool:
    """Whether a page body holds a plotly figure that its own scripts draw.

    Parameters
    ----------
    body
        The page's rendered HTML body.

    Returns
    -------
    bool
        True when it names ``Plotly.newPlot``/``Plotly.react`` or holds a breastlib
        interactive figure.
    """
    return any(mark in body for mark in PLOTLY_MARKS)


def _copy_plotly(app: Sphinx) -> None:
    # Before any page is written, so each page's ``?v=`` checksum is the bundle's own.
    if app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plotly_bundle(), static / PLOTLY_JS)


def _key(asset: Any) -> tuple:
    attributes = getattr(asset, "attributes", {}) or {}
    return str(getattr(asset, "filename", asset) or ""), tuple(sorted(
        (k, str(v)) for k, v in attributes.items() if k != "priority"))


def _offline_assets(app: Sphinx, pagename: str, templatename: str, context: dict,
                    doctree: Any) -> None:
    body = str(context.get("body") or "")
    if "<th" in body:
        context["body"] = breakable_headers(body)
    if needs_plotly(body):
        # Page-only assets (Sphinx >= 3.5); no ``defer``: the body's scripts need Plotly.
        app.add_js_file(None, body=PLOTLY_CONFIG, priority=200)
        app.add_js_file(PLOTLY_JS, priority=201)
    if PLOTLY_HEADER in body:
        logger.warning("%s embeds its own copy of plotly.js (an output cached before the "
                       "site shared one? clear _build/.jupyter_cache)", pagename,
                       type="offline", location=pagename)
    scripts = context.get("script_files")
    if scripts is not None:
        unique, seen = [], set()
        for script in scripts:
            key = _key(script)
            if key not in seen:
                seen.add(key)
                unique.append(script)
        context["script_files"] = unique
    for asset in [*(scripts or []), *(context.get("css_files") or [])]:
        filename = str(getattr(asset, "filename", asset) or "")
        if "://" in filename or filename.startswith("//"):
            logger.warning("%s loads %s from another host; vendor it under book/_static",
                           pagename, filename, type="offline", location=pagename)


def _niivue_bundle(app: Sphinx, pagename: str, templatename: str, context: dict,
                   doctree: Any) -> None:
    """Load the vendored NiiVue bundle (book/_static/niivue) on the pages that hold a
    breastlib.viz.niivue view, before the view's inline script runs."""
    if 'class="breastlib-niivue"' in str(context.get("body") or ""):
        app.add_js_file("niivue/niivue.umd.js")


def setup(app: Sphinx) -> dict[str, Any]:
    # The kernels that execute the chapters inherit this: live-only widgets (ipywidgets
    # explorers, itkwidgets) then print a note instead of leaving dead controls in a
    # static page (breastlib.viz.live.in_static_build).
    os.environ["BREASTLIB_STATIC_BUILD"] = "1"
    app.connect("builder-inited", _copy_plotly)
    app.connect("html-page-context", _niivue_bundle, priority=400)
    app.connect("html-page-context", _offline_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
