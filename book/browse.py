"""Open every page of the built reading edition in headless Chromium and report what a
reader would meet: console errors, equations typeset, images loaded, links, answers.

    python book/browse.py [--site build/book] [--screenshots DIR]

The site is served from 127.0.0.1; any request to another host is blocked and reported,
so a page that needs the network fails. Used by tests/test_book.py.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

from markdown_it import MarkdownIt
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

MATH_TOKENS = {"math_inline", "math_inline_double", "math_block", "math_block_label", "amsmath"}
CHROMIUM_CANDIDATES = ["/usr/lib/chromium/chromium", "chromium", "chromium-browser",
                       "google-chrome"]


def chromium_path() -> str | None:
    """The Chromium binary to drive (Debian's, called directly rather than via its wrapper)."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name) if "/" not in name else (name if Path(name).exists() else None)
        if found:
            return found
    return None


def count_math(markdown: str) -> int:
    """Number of equations (inline ``$..$``, ``$$..$$`` and amsmath environments) that a
    MyST parser with dollarmath and amsmath finds in ``markdown``."""
    md = MarkdownIt("commonmark").use(dollarmath_plugin, double_inline=True).use(amsmath_plugin)

    def walk(tokens) -> int:
        return sum((t.type in MATH_TOKENS) + walk(t.children or []) for t in tokens)

    return walk(md.parse(markdown))


def source_math(notebook: dict) -> int:
    """Equations in a notebook's markdown cells and in the markdown its cells printed."""
    total = 0
    for cell in notebook["cells"]:
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            total += count_math(src)
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown")
            if text is not None:
                total += count_math(text if isinstance(text, str) else "".join(text))
    return total


@dataclass
class PageReport:
    name: str
    console_errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    equations: int = 0
    math_errors: int = 0
    wide_blocks: int = 0                   # code or printed blocks that scroll sideways
    wide_equations: int = 0                # display equations that scroll sideways
    leftover_tex: list[str] = field(default_factory=list)   # "$" or "\\name" left as text
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)          # internal hrefs, site-relative
    external_links: int = 0
    ids: set[str] = field(default_factory=set)
    answers: int = 0
    answers_open: int = 0
    answer_opens: bool | None = None       # does a click on the first "Show answer" open it?
    text: str = ""


@dataclass
class SiteReport:
    pages: dict[str, PageReport]
    broken_links: list[str]
    internal_links: int
    search_results: int = 0               # pages the site's search finds for "excitation"

    def summary(self) -> dict:
        p = self.pages.values()
        return {"pages": len(self.pages),
                "equations typeset": sum(r.equations for r in p),
                "equation errors": sum(r.math_errors for r in p),
                "TeX left as text": sum(len(r.leftover_tex) for r in p),
                "code or output blocks wider than the page": sum(r.wide_blocks for r in p),
                "display equations wider than the page": sum(r.wide_equations for r in p),
                "images": sum(r.images for r in p),
                "broken images": sum(len(r.broken_images) for r in p),
                "internal links": self.internal_links,
                "broken internal links": len(self.broken_links),
                "external links (not followed)": sum(r.external_links for r in p),
                "console errors": sum(len(r.console_errors) for r in p),
                "requests outside the site": sum(len(r.blocked_requests) for r in p),
                "answers (all collapsed)": sum(r.answers for r in p),
                "search results for 'excitation'": self.search_results}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _open_page(context, base: str, report: PageReport):
    """A new browser page whose console errors, failed requests to the site and blocked
    requests elsewhere are written to ``report``."""
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and report.console_errors.append(m.text))
    page.on("pageerror", lambda e: report.console_errors.append(str(e)))
    page.on("requestfailed", lambda q: q.url.startswith(base)
            and report.failed_requests.append(q.url))
    page.route("**/*", _only_the_site(base, report))
    return page


def _search(context, base: str, word: str, report: PageReport) -> int:
    """Number of pages the site's own search lists for ``word`` (0 if it lists none in 20 s);
    what goes wrong on the way goes to ``report``."""
    page = _open_page(context, base, report)
    try:
        page.goto(f"{base}search.html?q={word}", wait_until="load")
        page.wait_for_selector("#search-results ul li", timeout=20_000)
        return page.locator("#search-results ul li").count()
    except Exception:
        return 0
    finally:
        page.close()


def _only_the_site(base: str, report: PageReport):
    """A route handler: requests to the site go through, any other is blocked and noted."""
    def route(route, request) -> None:
        if request.url.startswith((base, "data:")):
            route.continue_()
        else:
            report.blocked_requests.append(request.url)
            route.abort()
    return route


_PAGE_FACTS = r"""async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all(Array.from(document.images).map(i => i.complete ? null :
      new Promise(r => { i.onload = r; i.onerror = r; })));
  const main = document.querySelector('main') || document.body;
  const article = document.querySelector('article') || main;   // not the tables of contents
  return {
    equations: article.querySelectorAll('mjx-container').length,
    mathErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    images: Array.from(main.querySelectorAll('img')).map(
        i => [i.currentSrc || i.src, i.complete && i.naturalWidth > 0]),
    hrefs: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
    wideEquations: Array.from(article.querySelectorAll('mjx-container[display="true"]')).filter(
        m => m.scrollWidth > m.clientWidth + 1).length,
    wideBlocks: Array.from(article.querySelectorAll('div.cell pre')).filter(
        p => p.scrollWidth > p.clientWidth + 1).length,
    answers: document.querySelectorAll('details.answer').length,
    answersOpen: document.querySelectorAll('details.answer[open]').length,
    text: main.innerText,
    leftoverTex: (() => {         // text outside code and typeset math that looks like TeX
      const found = [];
      const walk = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (n.parentElement.closest('pre, code, mjx-container, script, style')) continue;
        if (/\$|\\[A-Za-z]{2,}/.test(n.textContent)) found.push(n.textContent.trim().slice(0, 80));
      }
      return found;
    })(),
  };
}"""


def inspect_site(site: Path, screenshots: dict[str, Path] | None = None,
                 executable: str | None = None) -> SiteReport:
    """Visit every top-level ``*.html`` page of ``site``; ``screenshots`` maps page names
    (e.g. ``"index"``) to PNG files to write."""
    from playwright.sync_api import sync_playwright

    site = Path(site)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"site: no index.html in {site} (build it with make book)")
    executable = executable or chromium_path()
    if executable is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
    screenshots = screenshots or {}
    server, base = _serve(site)
    pages: dict[str, PageReport] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable,
                                        args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for html in sorted(site.glob("*.html")):
                report = PageReport(html.stem)
                page = _open_page(context, base, report)
                page.goto(base + html.name, wait_until="load")
                facts = page.evaluate(_PAGE_FACTS)
                report.equations, report.math_errors = facts["equations"], facts["mathErrors"]
                report.leftover_tex = facts["leftoverTex"]
                report.wide_blocks = facts["wideBlocks"]
                report.wide_equations = facts["wideEquations"]
                report.images = len(facts["images"])
                report.broken_images = [src for src, ok in facts["images"] if not ok]
                for href in facts["hrefs"]:
                    if href.startswith(base):
                        report.links.append(href[len(base):])
                    elif href.startswith(("http://", "https://")):
                        report.external_links += 1
                report.ids = set(facts["ids"])
                report.answers, report.answers_open = facts["answers"], facts["answersOpen"]
                report.text = facts["text"]
                if html.stem in screenshots:
                    page.screenshot(path=str(screenshots[html.stem]), full_page=False)
                if report.answers:
                    first = page.locator("details.answer").first
                    first.locator("summary").click()
                    report.answer_opens = bool(first.evaluate(
                        "d => d.open && d.querySelector(':scope > :not(summary)')"
                        ".getBoundingClientRect().height > 0"))
                    first.locator("summary").click()
                pages[html.stem] = report
                page.close()
            search_results = _search(context, base, "excitation",
                                     pages.get("search", PageReport("search")))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    broken, total = [], 0
    for report in pages.values():
        for link in report.links:
            total += 1
            path, fragment = urldefrag(link)
            path = unquote(urlparse(path).path) or "index.html"
            target = site / path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{report.name}: {link} (no such file)")
                continue
            if fragment and target.suffix == ".html":
                visited = pages.get(target.stem) if target.parent == site else None
                ids = (visited.ids if visited is not None else
                       set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8"))))
                if unquote(fragment) not in ids:
                    broken.append(f"{report.name}: {link} (no element with id {fragment!r})")
    return SiteReport(pages, broken, total, search_results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path("build/book"))
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="folder for screenshots of the home page and notebook 03")
    args = parser.parse_args(argv)
    shots = None
    if args.screenshots is not None:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        shots = {"index": args.screenshots / "index.png",
                 "03_cbam": args.screenshots / "03_cbam.png"}
    report = inspect_site(args.site, shots)
    print(json.dumps(report.summary(), indent=1))
    for name, r in report.pages.items():
        print(f"{name}: {r.equations} equations, {r.images} images, {len(r.links)} links, "
              f"{r.answers} answers, errors {r.console_errors[:2]}, "
              f"blocked {r.blocked_requests[:2]}")
    for line in report.broken_links[:20]:
        print("broken:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
