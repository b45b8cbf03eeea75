"""A local HTML file in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, through
Selenium), and what the page shows: ``missing()`` says why it cannot run here, ``chromium()``
starts the browser, ``show_report(path)`` walks a Snakemake report the way a reader does.

The Snakemake report is a React page that shows one result at a time: the menu lists the
categories, a category its subcategories, a subcategory a table of results, each with a view
(eye) and an info button. ``show_report`` clicks through all of them: every image is opened
in the content area and waits until it is decoded; every result that the view button only
downloads (the CSV tables) has its info view opened instead, where its description (caption)
is read, tables included. (HTML and PDF results, shown in a frame, are not handled: the
workflow has none.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# as root, offline: no sandbox, no GPU, and nothing that would try the network in the background
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--window-size=1600,1000",
)

# installed before any script of the page runs: uncaught errors, rejected promises and
# resources that failed to load (capture phase: those events do not bubble)
_CATCH_ERRORS = """
window.__errors = [];
window.addEventListener('error', function (ev) {
    if (ev.target && ev.target !== window && ev.target.tagName) {
        window.__errors.push('failed to load <' + ev.target.tagName.toLowerCase() + '> '
                             + String(ev.target.src || ev.target.href || '').slice(0, 80));
    } else {
        window.__errors.push(String(ev.message) + ' (' + ev.filename + ':' + ev.lineno + ')');
    }
}, true);
window.addEventListener('unhandledrejection', function (ev) {
    window.__errors.push('unhandled rejection: ' + String(ev.reason));
});
"""

# the report's own data (window.categories, window.results) and the app's state
_CATEGORIES = "return typeof categories === 'undefined' ? null : categories;"
_RESULT_META = """
let out = {};
for (const [path, r] of Object.entries(results)) {
    out[path] = {name: r.name, mime: r.mime_type};
}
return out;
"""
_CONTENT = "return document.querySelector('nav > div > div.p-3');"
_LINK_BY_TEXT = """
const scope = arguments[0] || document;
return Array.from(scope.querySelectorAll('a')).find(a => a.textContent.trim() === arguments[1]) || null;
"""
_ROWS = "return Array.from(arguments[0].querySelectorAll('table tbody tr'));"
_SHOWN_IMAGE = """
const path = app.state.resultPath;
if (path === arguments[0]) return null;
const img = Array.from(document.querySelectorAll('#app img')).find(i => !i.closest('nav'));
if (!img || !path || img.src !== results[path].data_uri || !img.complete) return null;
return {path: path, width: img.naturalWidth, height: img.naturalHeight};
"""
_CAPTION = """
const path = app.state.resultPath;
if (app.state.navbarMode !== 'resultinfo' || !path || path === arguments[0]) return null;
const box = document.querySelector('nav .prose');
return {
    path: path,
    text: box ? box.innerText : '',
    tables: box ? Array.from(box.querySelectorAll('table')).map(t => Array.from(t.rows).map(
        r => Array.from(r.cells).map(c => c.innerText.trim()))) : [],
};
"""


def missing() -> str | None:
    """Why the browser cannot run here, or ``None``."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not os.access(path, os.X_OK):
            return (
                f"{name} not found (Debian: apt-get install chromium chromium-driver; scripts/install_test_services.sh)"
            )
    return None


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium driven by chromedriver, with a fresh profile removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lqcdml-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _CATCH_ERRORS})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Shown:
    """One result as the page showed it."""

    category: str
    subcategory: str
    path: str
    name: str
    #: an image: its decoded size in the content area ((0, 0): it did not render); else None
    image: tuple[int, int] | None = None
    #: the description of the info view (non-image results): its text and its tables' cells
    caption: str = ""
    tables: list[list[list[str]]] = field(default_factory=list)


@dataclass
class ReportPage:
    title: str
    #: the report's categories -> subcategories -> result paths, as its data says
    categories: dict[str, dict[str, list[str]]]
    shown: list[Shown]
    #: uncaught JS errors, failed loads, console errors (Chromium's SEVERE log entries)
    errors: list[str]
    #: what the page fetched besides its own file (data: URIs are not fetched)
    requests: list[str]
    seconds: float = 0.0

    def images(self, category: str | None = None) -> list[Shown]:
        """The images that rendered (decoded, non-zero size), of one category or all."""
        return [
            s for s in self.shown if s.image and s.image[0] > 0 and s.image[1] > 0 and category in (None, s.category)
        ]


def _wait(driver, script: str, *args, timeout: float = 30.0, what: str = "the page"):
    """The first non-null value of ``script``, polled."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"browser: {what} did not come within {timeout:g} s")
        time.sleep(0.05)


def _errors(driver) -> list[str]:
    """What went wrong in the page so far: caught errors, then Chromium's SEVERE log entries."""
    errors = list(driver.execute_script("return window.__errors || [];"))
    errors += [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return [e if len(e) < 300 else f"{e[:200]} ... {e[-80:]}" for e in errors]  # data: URIs are long


def _click(driver, element, timeout: float = 10.0) -> None:
    """A real click; retried while another element covers it (the navbar's width is animated)."""
    from selenium.common.exceptions import ElementClickInterceptedException

    deadline = time.monotonic() + timeout
    while True:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        try:
            element.click()
            return
        except ElementClickInterceptedException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _home(driver) -> None:
    """Back to the menu: the first breadcrumb (the house)."""
    crumb = driver.execute_script("return document.querySelector('nav > div > nav a');")
    if crumb is not None:
        _click(driver, crumb)
    _wait(driver, "return app.state.navbarMode === 'menu' ? true : null;", what="the menu")


def _open(driver, category: str, subcategory: str, only_one: bool, single_subcategory: bool) -> object:
    """Menu -> category (-> subcategory): the subcategory's table of results."""
    _home(driver)
    link = driver.execute_script(_LINK_BY_TEXT, _wait(driver, _CONTENT), "Results" if only_one else category)
    if link is None:
        raise AssertionError(f"browser: no menu entry {category!r}")
    _click(driver, link)
    if not single_subcategory:
        _wait(driver, "return app.state.navbarMode === 'category' ? true : null;", what=f"category {category!r}")
        link = driver.execute_script(_LINK_BY_TEXT, _wait(driver, _CONTENT), subcategory)
        if link is None:
            raise AssertionError(f"browser: no entry {subcategory!r} in category {category!r}")
        _click(driver, link)
    _wait(
        driver,
        "return app.state.navbarMode === 'subcategory' && app.state.subcategory === arguments[0] ? true : null;",
        subcategory,
        what=f"subcategory {subcategory!r}",
    )
    return _wait(driver, _CONTENT)


def show_report(path: str | os.PathLike, timeout: float = 30.0) -> ReportPage:
    """Open the Snakemake report ``path`` and show every result in it, clicking as a reader does."""
    start = time.monotonic()
    url = Path(path).resolve().as_uri()
    with chromium() as driver:
        driver.set_page_load_timeout(timeout * 4)
        driver.get(url)
        try:
            _wait(
                driver,
                "return typeof app !== 'undefined' && app && app.state "
                "&& document.querySelector('#loading-screen').style.display === 'none' ? true : null;",
                timeout=timeout,
                what="the report app",
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; errors: {_errors(driver)}") from None
        title = driver.title
        categories = driver.execute_script(_CATEGORIES) or {}
        meta = driver.execute_script(_RESULT_META)
        shown = []
        for category in sorted(categories):
            subcats = categories[category]
            for subcategory in sorted(subcats):
                table = _open(driver, category, subcategory, len(categories) == 1, len(subcats) == 1)
                n_rows = len(driver.execute_script(_ROWS, table))
                for i in range(n_rows):
                    row = driver.execute_script(_ROWS, _wait(driver, _CONTENT))[i]
                    view, info = row.find_elements("css selector", "td:last-child a")[:2]
                    before = driver.execute_script("return app.state.resultPath || null;")
                    is_image = view.get_dom_attribute("download") is None
                    if is_image:  # the eye shows it in the content area
                        _click(driver, view)
                        got = _wait(driver, _SHOWN_IMAGE, before, timeout=timeout, what=f"image {i} of {subcategory!r}")
                        p = got["path"]
                        shown.append(Shown(category, subcategory, p, meta[p]["name"], (got["width"], got["height"])))
                    else:  # a download link: read its description in the info view instead
                        _click(driver, info)
                        got = _wait(
                            driver, _CAPTION, before, timeout=timeout, what=f"info of row {i} of {subcategory!r}"
                        )
                        p = got["path"]
                        shown.append(Shown(category, subcategory, p, meta[p]["name"], None, got["text"], got["tables"]))
                        _open(driver, category, subcategory, len(categories) == 1, len(subcats) == 1)
        errors = _errors(driver)
        requests = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'));"
        )
    return ReportPage(title, categories, shown, errors, list(requests), time.monotonic() - start)
