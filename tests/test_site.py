"""The offline HTML edition (`python -m mobilenet_edu site OUT`).

Built once per module from the committed notebooks into a temporary folder. The browser test opens every page in
headless Debian Chromium (Playwright), serves OUT on a local port and blocks every request outside it: each page
loads, its figures decode, KaTeX typesets every math span and no raw ``$...$`` is left, and every link inside
OUT answers. The same check is shown to fail on a page whose math is left raw.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import threading
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS

from mobilenet_edu.errors import MobileNetError
from mobilenet_edu.lessons import lessons, notebooks_dir
from mobilenet_edu.site import build_site, markdown, protect_math

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, list[str]]:
    """The series' HTML edition, built once for the module, and the lines the build said."""
    out = tmp_path_factory.mktemp("site") / "html"
    said: list[str] = []
    build_site(out, log=lambda *a, **k: said.append(" ".join(map(str, a))))
    return out, said


@pytest.fixture(scope="module")
def site(built) -> Path:
    return built[0]


# ----------------------------------------------------------------------------------------------------
# Without a browser


def test_math_is_protected_from_markdown_and_code_is_left_alone():
    text = "cost $D_K \\cdot D_K \\cdot M$ and `x = $HOME` and $$\\sum_{i} a_i$$ costs \\$5, or $5 and $6 each"
    protected, spans = protect_math(text)
    assert spans == [("D_K \\cdot D_K \\cdot M", False), ("\\sum_{i} a_i", True)], spans
    assert "`x = $HOME`" in protected and "\\$5" in protected
    html = markdown("A $1 \\times 1$ *pointwise* convolution, $a_1 * b_2$.\n\n```python\ny = '$not math$'\n```\n"
                    "then $N$ here,\n\n```bash\necho '$x$'\n```\n\nand $M$ there.")
    assert '<span class="math inline">1 \\times 1</span>' in html and "<em>pointwise</em>" in html
    assert '<span class="math inline">a_1 * b_2</span>' in html  # no emphasis made of the TeX's * and _
    assert "$not math$" in html and "$x$" in html
    assert '<span class="math inline">N</span>' in html and '<span class="math inline">M</span>' in html


def test_site_has_every_lesson_an_index_and_nothing_from_outside(site):
    found = lessons()
    assert found
    index = (site / "index.html").read_text()
    for lesson in found:
        page = site / f"{lesson.stem}.html"
        assert page.is_file(), page
        assert f'href="{lesson.stem}.html"' in index
    assert "optional" in index and "core" in index
    for page in site.glob("*.html"):
        text = page.read_text()
        # resources (scripts, styles, images) only from inside OUT; <a href> to the web is a link, not a load
        loads = re.findall(r'<(?:script|img|link|iframe|source)\b[^>]*\b(?:src|href)="([^"]+)"', text)
        assert loads and not [u for u in loads if re.match(r"^[a-z]+:|^//", u)], (page.name, loads)
        for u in loads:
            assert (site / u).is_file(), (page.name, u)


def test_figures_widgets_and_solutions_are_shown_from_the_committed_outputs(site):
    pngs = list(site.glob("figures/*/*.png")) + list(site.glob("figures/*/*.jpg"))
    assert pngs and all(p.stat().st_size > 100 for p in pngs)
    with_widgets = [lesson for lesson in lessons()
                    if "application/vnd.jupyter.widget-view+json" in lesson.path.read_text()]
    for lesson in with_widgets:
        assert "needs a running Python kernel" in (site / f"{lesson.stem}.html").read_text(), lesson.path.name
    page = (site / f"{lessons()[0].stem}.html").read_text()
    assert '<details class="solution"><summary>Solution to exercise 1</summary>' in page


def test_site_refuses_the_notebooks_folder_and_a_non_empty_folder(tmp_path):
    with pytest.raises(MobileNetError, match="lessons' own folder"):
        build_site(notebooks_dir() / "html", log=lambda *a, **k: None)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(MobileNetError, match="not empty"):
        build_site(tmp_path, log=lambda *a, **k: None)
    build_site(tmp_path, force=True, log=lambda *a, **k: None)
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "index.html").is_file()


def test_a_link_to_a_missing_file_is_said_when_building(tmp_path):
    src = lessons()[0].path
    nb = json.loads(src.read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "See [the notes](../NO_SUCH_FILE.md)."})
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / src.name).write_text(json.dumps(nb))
    said: list[str] = []
    build_site(tmp_path / "html", source=tmp_path / "nb", log=lambda *a, **k: said.append(" ".join(map(str, a))))
    assert any("links to ../NO_SUCH_FILE.md" in s and src.name in s for s in said), said


def test_the_series_builds_without_a_warning(built):
    """Every link in the lessons resolves: the figures a page writes from its outputs are not missing files."""
    out, said = built
    assert [line for line in said if line.startswith("warning:")] == [], said
    assert any(p.is_file() for p in (out / "figures").rglob("*"))


def test_site_cli_one_line_error(cli, tmp_path):
    from testkit import assert_one_line_error

    (tmp_path / "x").write_text("")
    assert_one_line_error(cli("site", tmp_path), "not empty")


# ----------------------------------------------------------------------------------------------------
# In a browser, with the network shut


@contextlib.contextmanager
def serve(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


RAW_MATH_JS = r"""() => {
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    let el = node.parentElement, inside = false;
    while (el) {
      if (skip.has(el.tagName) || el.classList.contains("katex")) { inside = true; break; }
      el = el.parentElement;
    }
    if (inside) continue;
    const m = node.textContent.match(/\$\$[^$]+\$\$|\$[^\s$][^$]*\$|\\\(|\\\[/);
    if (m) raw.push(m[0].slice(0, 60));
  }
  return raw;
}"""

IMAGES_JS = """async () => {
  const bad = [];
  for (const img of document.images) {
    try { await img.decode(); } catch (e) { bad.push(img.getAttribute("src") + ": " + e); continue; }
    if (!img.naturalWidth) bad.push(img.getAttribute("src") + ": no pixels");
  }
  return [document.images.length, bad];
}"""


def check_pages(browser, folder: Path, pages: list[str]) -> tuple[list[str], dict]:
    """Every problem a reader would meet on ``pages`` (file names in ``folder``), and what was counted."""
    problems: list[str] = []
    counts = {"pages": 0, "images": 0, "math": 0, "links": 0}
    with serve(folder) as base:
        context = browser.new_context()
        outside: list[str] = []

        def gate(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", gate)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        seen_links: set[str] = set()
        for name in pages:
            errors.clear()
            response = page.goto(base + name, wait_until="load")
            if response is None or not response.ok:
                problems.append(f"{name}: did not load ({response.status if response else 'no response'})")
                continue
            counts["pages"] += 1
            try:
                page.wait_for_selector("body[data-math=done]", state="attached", timeout=10_000)
            except Exception:
                problems.append(f"{name}: the math script never finished")
            n_images, bad = page.evaluate(IMAGES_JS)
            counts["images"] += n_images
            problems += [f"{name}: image {b}" for b in bad]
            raw = page.evaluate(RAW_MATH_JS)
            problems += [f"{name}: raw math left: {r!r}" for r in raw]
            untypeset = page.eval_on_selector_all(".math:not(.typeset), .math-error, .katex-error",
                                                  "els => els.map(e => e.textContent.slice(0, 60))")
            problems += [f"{name}: math not typeset: {t!r}" for t in untypeset]
            counts["math"] += page.eval_on_selector_all(".math.typeset", "els => els.length")
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
            for href in hrefs:
                url = href.split("#")[0]
                if url.startswith(base) and url not in seen_links:
                    seen_links.add(url)
                    r = context.request.get(url)
                    if not r.ok:
                        problems.append(f"{name}: link {url[len(base):]} answers {r.status}")
            problems += [f"{name}: script error {e}" for e in errors]
        counts["links"] = len(seen_links)
        problems += [f"request outside the site: {u}" for u in outside]
        context.close()
    return problems, counts


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium not found (apt-get install chromium): the HTML edition's browser test needs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_every_page_reads_offline_in_a_browser(site, browser):
    pages = sorted(p.name for p in site.glob("*.html"))
    problems, counts = check_pages(browser, site, pages)
    assert problems == [], "\n".join(problems)
    assert counts["pages"] == len(pages) == len(lessons()) + 1
    assert counts["images"] > 0 and counts["math"] > 0 and counts["links"] >= len(pages), counts
    print(json.dumps(counts))


def test_the_browser_check_fails_on_raw_math_and_a_broken_figure(site, browser, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "raw.html").write_text('<!DOCTYPE html><html><body data-math="done"><p>The cost is $D_K \\cdot M$.</p>'
                                  '<p><code>$not math$</code></p></body></html>')
    (bad / "broken.html").write_text('<!DOCTYPE html><html><body data-math="done"><img src="missing.png">'
                                     '<a href="nowhere.html">x</a><img src="https://example.org/x.png"></body></html>')
    problems, _ = check_pages(browser, bad, ["raw.html", "broken.html"])
    text = "\n".join(problems)
    assert "raw.html: raw math left: '$D_K \\\\cdot M$'" in text, text
    assert "not math" not in text
    assert "broken.html: image missing.png" in text and "link nowhere.html answers 404" in text, text
    assert "request outside the site: https://example.org/x.png" in text, text
    # and a lesson page of the real site whose KaTeX is gone: its math is never typeset
    page = next(p.name for p in sorted(site.glob("0*.html")) if 'class="math' in p.read_text())
    (bad / page).write_text((site / page).read_text().replace("static/katex/katex.min.js", "gone.js"))
    for d in ("static", "figures"):
        (bad / d).symlink_to(site / d)
    problems, _ = check_pages(browser, bad, [page])
    assert any(f"{page}: math not typeset" in p for p in problems), problems
