"""Sphinx extension: keep the built book loadable offline and free of script errors.

- Warns (an error under ``--warningiserror``) when a page would load a script or style
  sheet from another host, so no CDN load slips back in (MathJax is vendored in
  ``book/_static/mathjax``; plotly.js is embedded by the pages that use it).
- Drops repeated inline ``<script>`` bodies: with Sphinx 7.4, sphinx-thebe 0.3.1 and
  sphinx-togglebutton each emit their configuration snippet twice, and the second
  ``const THEBE_JS_URL`` is a ``SyntaxError`` in every page's console.
- Marks the build as static for the kernels that execute the chapters.
"""

from __future__ import annotations

import os
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _key(asset: Any) -> tuple:
    attributes = getattr(asset, "attributes", {}) or {}
    return str(getattr(asset, "filename", asset) or ""), tuple(sorted(
        (k, str(v)) for k, v in attributes.items() if k != "priority"))


def _offline_assets(app: Sphinx, pagename: str, templatename: str, context: dict,
                    doctree: Any) -> None:
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


def setup(app: Sphinx) -> dict[str, Any]:
    # The kernels that execute the chapters inherit this: live-only widgets (ipywidgets
    # explorers, itkwidgets) then print a note instead of leaving dead controls in a
    # static page (breastlib.viz.live.in_static_build).
    os.environ["BREASTLIB_STATIC_BUILD"] = "1"
    app.connect("html-page-context", _offline_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
