"""The built book as a reader sees it: headless Chromium over a local HTTP server.

Every page is opened offline (any request leaving 127.0.0.1 is blocked and fails the
test), must load without console errors, failed requests or broken internal links, and
is photographed into ``_build/screenshots/``. No output block or table may reach past
the text column's right edge. Pages with interactive figures load the site's one shared
plotly.js and must show a non-blank plotly plot whose picture changes when the slider or
the menu is moved.

Chromium is Debian's package driven by Playwright (``executable_path``); see
``browser_support.py`` for when it is installed, and when the tests skip.
"""

from __future__ import annotations

import functools
import http.server
import io
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import browser_support
import numpy as np
import pytest
from browser_support import CHROMIUM_ARGS
from test_book import toc_files

# One xdist worker builds the book once for every test that reads it.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("book")]

#: An HTML page itself, without the shared ``_static/`` files (plotly.js is one of them).
MAX_PAGE_BYTES = 4 * 1024 * 1024
VIEWPORT = {"width": 1280, "height": 900}
SKIPPED_DIRS = ("_static", "_sources", "_images")
#: A page is settled once none of its requests has been in flight for this long.
QUIET_S = 0.5


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book: Path) -> Iterator[str]:
    """Serve ``_build/html`` on 127.0.0.1 (a free port) for the module's tests."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(autouse=True)
def _record_chromium(browser, chromium_path: Path, record_property) -> None:
    """Name the browser each test ran on in its report (summed up by conftest.py)."""
    record_property("chromium", f"Chromium {browser.version} ({chromium_path}, "
                                f"{browser_support.origin})")


@pytest.fixture(scope="module")
def screenshots(built_book: Path) -> Path:
    folder = built_book.parent / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def book_pages(root: Path) -> list[str]:
    """Every HTML page of the build, as paths relative to its root."""
    pages = [p.relative_to(root) for p in root.rglob("*.html")]
    # Hidden folders hold stale pages of files the book excludes (.pytest_cache).
    return sorted(p.as_posix() for p in pages
                  if not p.parts[0].startswith((*SKIPPED_DIRS, ".")))


def shot_name(page: str, suffix: str = "") -> str:
    return page.removesuffix(".html").replace("/", "--") + suffix + ".png"


class PageWatch:
    """A browser tab that records every way a page can go wrong while it loads."""

    def __init__(self, browser, base: str):
        self.base = base
        self.problems: list[str] = []
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda request: self.problems.append(
            f"request failed: {request.url[:200]} ({request.failure})"))
        self.page.on("response", self._response)
        # Requests in flight, counted from the page's own events (see ``settle``).
        self.in_flight: dict[object, str] = {}
        self.last_activity = time.monotonic()
        self.page.on("request", self._request_started)
        self.page.on("requestfinished", self._request_ended)
        self.page.on("requestfailed", self._request_ended)
        self.navigations = 0
        self.page.on("framenavigated", self._navigated)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.problems.append(f"load from outside the site: {url[:200]}")
            route.abort()

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text[:500]}")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url[:200]}")

    def _request_started(self, request) -> None:
        self.in_flight[request] = request.url
        self.last_activity = time.monotonic()

    def _request_ended(self, request) -> None:
        self.in_flight.pop(request, None)
        self.last_activity = time.monotonic()

    def _navigated(self, frame) -> None:
        if frame.parent_frame is None:
            self.navigations += 1

    def open(self, path: str, timeout_s: float = 30.0) -> None:
        """Load ``path`` and wait until the page is complete: its ``load`` event, MathJax's
        typesetting, its web fonts, and no request in flight for :data:`QUIET_S`, all on
        the document it ends on (``index.html`` redirects to the first chapter).

        Not Playwright's ``networkidle``: that state can be lost for good when the parser
        runs a page's inline plotly.js bundle for more than 500 ms (the idle timer fires
        mid-parse) and the requests issued after it finish before DOMContentLoaded
        (microsoft/playwright#42598, closed unfixed: ``networkidle`` is discouraged); the
        wait then timed out with nothing in flight (issue #19).
        """
        from playwright.sync_api import Error as PlaywrightError

        self.page.goto(self.base + path, wait_until="load")
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: still navigating after {timeout_s:.0f} s")
            seen, error = self.navigations, None
            self.page.wait_for_load_state("load")
            try:
                # MathJax typesets after load and loads its fonts while doing so (a
                # page whose math never typesets fails its own check, not this wait).
                self.page.evaluate(
                    "async (ms) => { const m = window.MathJax; await Promise.race(["
                    " m && m.startup && m.startup.promise ? m.startup.promise : null,"
                    " new Promise(done => setTimeout(done, ms))]); await document.fonts.ready; }",
                    int(timeout_s * 1000))
            except PlaywrightError as caught:  # a navigation away destroys its context
                error = caught
            self.settle(deadline)
            # The navigation event may come after the error: judge once the page is quiet.
            if self.navigations == seen:
                if error is not None:
                    raise error
                return

    def settle(self, deadline: float) -> None:
        """Wait until no request of the page has been in flight for :data:`QUIET_S`; fail
        naming the requests still open at ``deadline`` (``time.monotonic()``)."""
        while self.in_flight or time.monotonic() - self.last_activity < QUIET_S:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.page.url}: requests still in flight: "
                    + ", ".join(url[:200] for url in self.in_flight.values()))
            # Playwright delivers the request events while the page waits here.
            self.page.wait_for_timeout(50)

    def close(self) -> None:
        self.context.close()


@functools.cache
def _fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def broken_internal_links(hrefs: list[str], base: str) -> list[str]:
    """Links into the site whose page is missing or whose anchor is not on it."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue
        target, _, fragment = href.partition("#")
        status, body = _fetch(target.split("?")[0])
        if status != 200:
            broken.append(f"{href} (HTTP {status})")
        elif fragment and target.endswith(".html"):
            anchor = re.escape(urllib.parse.unquote(fragment))
            if not re.search(rf'\b(id|name)="{anchor}"', body):
                broken.append(f"{href} (no anchor #{fragment})")
    return broken


def test_every_page_loads_offline_cleanly(chromium_path, built_book, site, browser, screenshots):
    pages = book_pages(built_book)
    missing = [f"{name}.html" for name in toc_files() if f"{name}.html" not in pages]
    assert not missing, f"chapters not built: {missing}"
    problems: dict[str, list[str]] = {}
    for path in pages:
        size = (built_book / path).stat().st_size
        watch = PageWatch(browser, site)
        try:
            watch.open(path)
            hrefs = watch.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            watch.problems += [f"broken link: {b}" for b in broken_internal_links(hrefs, site)]
            if watch.page.evaluate("() => document.querySelectorAll('.math').length > 0"
                                   " && document.querySelectorAll('mjx-container').length"
                                   " === 0"):
                watch.problems.append("math left untypeset (MathJax did not run)")
            watch.page.screenshot(path=str(screenshots / shot_name(path)), full_page=True)
        finally:
            watch.close()
        if size > MAX_PAGE_BYTES:
            watch.problems.append(
                f"page is {size / 2**20:.1f} MiB (limit {MAX_PAGE_BYTES / 2**20:.0f} MiB)")
        if watch.problems:
            problems[path] = watch.problems
    assert not problems, "\n".join(
        f"{page}:\n  " + "\n  ".join(found) for page, found in problems.items())


#: Run in a page: the output blocks (``div.cell_output`` and everything in it) and tables
#: whose right edge lies past the right edge of the text column's content box
#: (``article.bd-article``), as readable lines. An element that scrolls sideways
#: (``overflow-x`` ``auto``/``scroll``) counts by its own box: what it scrolls may be
#: wider (a wide table); one that hides its overflow is cut off wherever it stands. The
#: text of an output (a ``<pre>``) must wrap: a reader does not look for the end of a
#: sentence behind a scroll bar. Only the outermost element of a cut-off block is named;
#: a plot's SVG counts as one element.
CUT_OFF_JS = """() => {
  const column = document.querySelector("article.bd-article")
    || document.querySelector(".bd-article-container");  // search.html has no article
  if (!column) return ["no text column (article.bd-article) on the page"];
  const style = getComputedStyle(column);
  const edge = column.getBoundingClientRect().right - parseFloat(style.paddingRight)
    - parseFloat(style.borderRightWidth);
  const scrolls = el => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const describe = el => el.tagName.toLowerCase()
    + [...el.classList].map(c => "." + c).join("") + ' "'
    + (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 80) + '"';
  const found = [], named = new Set();
  for (const el of column.querySelectorAll("div.cell_output, div.cell_output *, table")) {
    if (el.closest("svg") && el.tagName.toLowerCase() !== "svg") continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;  // not displayed
    const ancestors = [];
    for (let up = el.parentElement; up && up !== column; up = up.parentElement) {
      ancestors.push(up);
    }
    if (ancestors.some(up => named.has(up))) continue;
    if (el.matches("div.cell_output pre") && el.scrollWidth > el.clientWidth + 1) {
      named.add(el);
      found.push(`a line of ${describe(el)} runs on behind a scroll bar (it should wrap)`);
      continue;
    }
    if (ancestors.some(scrolls)) continue;
    // Text overflowing a block (a long word in a table cell) has no box of its own:
    // the block's scrollWidth is where its content ends.
    const overflow = getComputedStyle(el).overflowX;
    const clips = ["hidden", "clip"].includes(overflow) && el.scrollWidth > el.clientWidth + 1;
    const right = scrolls(el) ? box.right : Math.max(
      box.right, box.left + el.clientLeft + el.scrollWidth);
    if (!clips && right <= edge + 1) continue;
    named.add(el);
    found.push(clips ? `${describe(el)} hides the right of its content` : `${describe(el)} `
               + `reaches ${Math.round(right)} px, past the column's ${Math.round(edge)} px`);
  }
  return found;
}"""


def test_no_output_or_table_is_cut_off(chromium_path, built_book, site, browser):
    """Wide tables scroll inside the text column and long output lines wrap (the site's
    ``book/_static/breastlib.css``): nothing reaches past the column's right edge, where
    the page would cut it off or run it under the page's table of contents."""
    problems: dict[str, list[str]] = {}
    for path in book_pages(built_book):
        watch = PageWatch(browser, site)
        try:
            watch.open(path)
            found = watch.page.evaluate(CUT_OFF_JS)
        finally:
            watch.close()
        if found:
            problems[path] = found
    assert not problems, "\n".join(
        f"{page}:\n  " + "\n  ".join(found) for page, found in problems.items())


def test_interactive_pages_share_one_plotly_js(built_book):
    """plotly.js lies once in ``_static/``; each page with a figure loads it from its
    ``<head>`` (before the figures' scripts run) and embeds no copy of its own."""
    import plotly

    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert (built_book / "_static" / "plotly.min.js").read_bytes() == bundle.read_bytes()
    pages = interactive_pages(built_book)
    assert pages, "no page with an interactive figure"
    for path in pages:
        html = (built_book / path).read_text(errors="replace")
        head = html.split("</head>", 1)[0]
        tags = re.findall(r"<script[^>]*_static/plotly\.min\.js[^>]*>", head)
        assert len(tags) == 1, f"{path}: {len(tags)} plotly.min.js scripts in <head>"
        assert not re.search(r"\b(defer|async)\b", tags[0]), f"{path}: {tags[0]}"
        assert html.count("* plotly.js v") == 0, f"{path} embeds its own plotly.js"


def _picture(watch: PageWatch, plot) -> np.ndarray:
    """Greyscale pixels of the plot's image trace, as the reader sees them."""
    from PIL import Image

    image = plot.locator(".imagelayer image").first
    image.scroll_into_view_if_needed()
    png = watch.page.screenshot(clip=image.bounding_box())
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)


def _changed_picture(watch: PageWatch, plot, before: np.ndarray) -> np.ndarray:
    """Wait (up to 5 s) for the picture to differ from ``before``; return it."""
    deadline = time.monotonic() + 5.0
    while True:
        after = _picture(watch, plot)
        if after.shape != before.shape or np.abs(after - before).mean() > 0.5:
            return after
        if time.monotonic() > deadline:
            return after
        watch.page.wait_for_timeout(200)


def interactive_pages(root: Path) -> list[str]:
    return [page for page in book_pages(root)
            if 'class="breastlib-interactive"' in (root / page).read_text(errors="replace")]


def test_interactive_figures_show_and_respond(chromium_path, built_book, site, browser,
                                             screenshots):
    pages = interactive_pages(built_book)
    # The method chapter and every task chapter hold a slice browser.
    required = ["book/method.html"] + [
        f"{name}.html" for name in toc_files() if Path(name).name.startswith("task-")]
    assert set(required) <= set(pages), f"no interactive figure on {set(required) - set(pages)}"
    for path in pages:
        watch = PageWatch(browser, site)
        try:
            watch.open(path)
            figures = watch.page.locator(".breastlib-interactive")
            plots = watch.page.locator(".breastlib-interactive .js-plotly-plot")
            plots.first.locator(".main-svg").first.wait_for(state="attached", timeout=20_000)
            assert plots.count() == figures.count() > 0, f"{path}: a figure did not render"
            for number in range(plots.count()):
                picture = _picture(watch, plots.nth(number))
                assert picture.size > 100 * 100, f"{path} plot {number}: image too small"
                assert picture.std() > 5 and np.ptp(picture) > 50, (
                    f"{path} plot {number}: the picture is blank")

            # Slice browsers have a slider and a menu; comparison grids (buttons, many
            # panels) are driven by test_comparison_grid_slider_moves_every_panel.
            browsers = [plots.nth(i) for i in range(plots.count()) if plots.nth(i).evaluate(
                "el => !el.closest('.breastlib-comparison-grid')")]
            if not browsers:
                assert not watch.problems, f"{path}: " + "\n".join(watch.problems)
                continue
            plot = browsers[0]
            name = shot_name(path)
            before = _picture(watch, plot)
            plot.screenshot(path=str(screenshots / name.replace(".png", "--plot.png")))
            label = plot.locator(".slider-group > .slider-label").first.text_content()
            rail = plot.locator(".slider-rail-rect").first.bounding_box()
            # The browser opens on the middle slice; jump to a fifth of the way along.
            watch.page.mouse.click(rail["x"] + 0.2 * rail["width"],
                                   rail["y"] + rail["height"] / 2)
            after = _changed_picture(watch, plot, before)
            assert plot.locator(".slider-group > .slider-label").first.text_content() != label
            assert np.abs(after - before).mean() > 0.5, f"{path}: the slider changed nothing"
            plot.screenshot(path=str(screenshots / name.replace(".png", "--slider.png")))

            plot.locator(".updatemenu-header").first.click()
            plot.locator(".updatemenu-dropdown-button").nth(1).click()
            chosen = _changed_picture(watch, plot, after)
            assert np.abs(chosen - after).mean() > 0.5, f"{path}: the menu changed nothing"
            plot.screenshot(path=str(screenshots / name.replace(".png", "--menu.png")))
            assert not watch.problems, f"{path}: " + "\n".join(watch.problems)
        finally:
            watch.close()


def test_orthogonal_browser_moves_one_view_and_its_crosshairs(chromium_path, built_book, site,
                                                              browser, screenshots):
    """The method chapter's three-view browser: the coronal slider changes the coronal
    picture only, and moves the dotted line marking that slice in the axial view."""
    watch = PageWatch(browser, site)
    try:
        watch.open("book/method.html")
        plots = watch.page.locator(".breastlib-interactive .js-plotly-plot")
        plots.first.locator(".main-svg").first.wait_for(state="attached", timeout=20_000)
        three = [n for n in range(plots.count())
                 if plots.nth(n).locator(".slider-rail-rect").count() == 3]
        assert len(three) == 1, "no three-view browser on the method chapter"
        plot = plots.nth(three[0])
        plot.scroll_into_view_if_needed()
        images = plot.locator(".imagelayer image")
        assert images.count() == 3  # one visible picture per view

        def sources() -> list[str]:
            return [images.nth(k).get_attribute("href") or "" for k in range(3)]

        def lines() -> list[str]:
            paths = plot.locator(".shapelayer path")
            return [paths.nth(k).get_attribute("d") or "" for k in range(paths.count())]

        before_sources, before_lines = sources(), lines()
        assert len(before_lines) == 6  # two cross-hairs in each view
        rail = plot.locator(".slider-rail-rect").nth(1).bounding_box()  # coronal
        watch.page.mouse.click(rail["x"] + 0.15 * rail["width"], rail["y"] + rail["height"] / 2)
        deadline = time.monotonic() + 5.0
        while sources()[1] == before_sources[1] and time.monotonic() < deadline:
            watch.page.wait_for_timeout(200)
        after_sources, after_lines = sources(), lines()
        assert after_sources[1] != before_sources[1], "the coronal slider changed nothing"
        assert after_sources[0] == before_sources[0] and after_sources[2] == before_sources[2]
        moved = sum(a != b for a, b in zip(after_lines, before_lines, strict=True))
        assert moved == 2, f"{moved} cross-hair lines moved (expected the coronal slice's 2)"
        plot.screenshot(path=str(screenshots / "book-method--orthogonal.png"))
        assert not watch.problems, "\n".join(watch.problems)
    finally:
        watch.close()



def _sources_after(watch: PageWatch, images, count: int, changed) -> list[str]:
    """The ``href`` of the first ``count`` pictures, once ``changed(hrefs)`` holds (or 5 s
    have passed)."""
    def sources() -> list[str]:
        return [images.nth(k).get_attribute("href") or "" for k in range(count)]

    deadline = time.monotonic() + 5.0
    now = sources()
    while not changed(now) and time.monotonic() < deadline:
        watch.page.wait_for_timeout(200)
        now = sources()
    return now


def _check_comparison_grid(watch: PageWatch, path: str, screenshots: Path) -> None:
    """The checks of :func:`test_comparison_grid_slider_moves_every_panel` on one page."""
    plot = watch.page.locator(".breastlib-comparison-grid .js-plotly-plot").first
    plot.locator(".main-svg").first.wait_for(state="attached", timeout=20_000)
    plot.scroll_into_view_if_needed()
    images = plot.locator(".imagelayer image")
    panels = images.count()
    assert panels >= 3, f"{path}: {panels} panels (the fixed image and 2+ methods)"
    before = _sources_after(watch, images, panels, lambda now: True)
    label = plot.locator(".slider-group > .slider-label").first.text_content()
    plot.locator(".slider-rail-rect").first.scroll_into_view_if_needed()
    rail = plot.locator(".slider-rail-rect").first.bounding_box()
    watch.page.mouse.click(rail["x"] + 0.2 * rail["width"], rail["y"] + rail["height"] / 2)
    after = _sources_after(watch, images, panels, lambda now: all(
        a != b for a, b in zip(now, before, strict=True)))
    same = [k for k in range(panels) if after[k] == before[k]]
    assert not same, f"{path}: panels {same} kept their picture when the slider moved"
    assert plot.locator(".slider-group > .slider-label").first.text_content() != label
    plot.screenshot(path=str(screenshots / shot_name(path, "--grid-slider")))

    buttons = plot.locator(".updatemenu-button")
    assert 3 <= buttons.count() <= 6, f"{path}: {buttons.count()} view buttons"
    buttons.nth(1).click()  # |fixed - warped|
    switched = _sources_after(watch, images, panels, lambda now: all(
        a != b for a, b in zip(now[1:], after[1:], strict=True)))
    assert images.count() == panels, f"{path}: a panel vanished with the view"
    assert switched[0] == after[0], f"{path}: the fixed panel changed with the view"
    kept = [k for k in range(1, panels) if switched[k] == after[k]]
    assert not kept, f"{path}: panels {kept} did not switch view"
    plot.screenshot(path=str(screenshots / shot_name(path, "--grid-view")))


def test_comparison_grid_slider_moves_every_panel(chromium_path, built_book, site, browser,
                                                  screenshots):
    """Every task chapter's comparison grid (:mod:`breastlib.viz.compare`): one panel per
    method plus the fixed image; the slider changes every panel's picture, and a view
    button changes every method panel while the fixed panel (the first) stays."""
    required = [f"{name}.html" for name in toc_files() if Path(name).name.startswith("task-")]
    assert required, "no task chapter in the table of contents"
    for path in required:
        html = (built_book / path).read_text(errors="replace")
        assert 'class="breastlib-comparison-grid"' in html, f"{path}: no comparison grid"
        watch = PageWatch(browser, site)
        try:
            watch.open(path)
            _check_comparison_grid(watch, path, screenshots)
            assert not watch.problems, f"{path}: " + "\n".join(watch.problems)
        finally:
            watch.close()


def _canvas_pixels(watch: PageWatch, canvas) -> np.ndarray:
    """RGB pixels of a canvas as the reader sees it, ``(rows, columns, 3)`` float."""
    from PIL import Image

    png = watch.page.screenshot(clip=canvas.bounding_box())
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


def test_niivue_canvas_renders_and_menu_changes_pixels(chromium_path, built_book, site,
                                                       browser, screenshots):
    """The method chapter's NiiVue 3-D view (WebGL2, drawn by SwiftShader on the CPU): it
    loads the vendored bundle from ``_static``, draws a non-blank picture, and choosing
    another method in its menu changes the picture; no console error, nothing loaded from
    outside the site."""
    watch = PageWatch(browser, site)
    try:
        watch.open("book/method.html")
        views = watch.page.locator(".breastlib-niivue")
        assert views.count() >= 1, "no NiiVue view on the method chapter"
        view = views.first
        view.scroll_into_view_if_needed()
        deadline = time.monotonic() + 60.0
        while view.get_attribute("data-ready") != "1" and time.monotonic() < deadline:
            note = view.locator(".nv-status").text_content() or ""
            assert "NiiVue" not in note, f"the view did not draw: {note}"
            watch.page.wait_for_timeout(200)
        assert view.get_attribute("data-ready") == "1", "the NiiVue view never became ready"
        assert watch.page.evaluate("() => typeof window.niivue.Niivue === 'function'")
        scripts = watch.page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
        assert any("_static/niivue/niivue.umd.js" in src for src in scripts), scripts
        canvas = view.locator("canvas")
        watch.page.wait_for_timeout(500)
        before = _canvas_pixels(watch, canvas)
        assert before.shape[0] > 300 and before.shape[1] > 300, before.shape
        lit = (before.sum(axis=2) > 30).mean()
        assert before.std() > 5 and np.ptp(before) > 50 and lit > 0.1, (
            f"the NiiVue canvas is blank (std {before.std():.1f}, {lit:.0%} lit)")
        view.screenshot(path=str(screenshots / "book-method--niivue.png"))

        menu = view.locator("select.nv-method")
        assert menu.locator("option").count() >= 2, "the method menu offers one method"
        shown = view.get_attribute("data-shown")
        menu.select_option(index=menu.locator("option").count() - 1)
        deadline = time.monotonic() + 20.0
        while view.get_attribute("data-shown") == shown and time.monotonic() < deadline:
            watch.page.wait_for_timeout(200)
        assert view.get_attribute("data-shown") != shown, "the menu choice was not drawn"
        watch.page.wait_for_timeout(500)
        after = _canvas_pixels(watch, canvas)
        changed = np.abs(after - before).mean()
        assert changed > 2, f"choosing another method changed the canvas by {changed:.2f}"
        view.screenshot(path=str(screenshots / "book-method--niivue-menu.png"))
        assert not watch.problems, "\n".join(watch.problems)
    finally:
        watch.close()
