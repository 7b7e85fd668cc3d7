"""`python -m mobilenet_edu site OUT`: the offline HTML edition, an index and one page per lesson.

Built from the committed outputs (nothing is run), for reading on a phone or before installing anything. Every
file a page loads is inside OUT: figures are written beside the pages, the stylesheet is ours, and the math is
typeset in the browser by KaTeX, bundled in ``mobilenet_edu/assets/katex`` (0.19.1, MIT; its CSS trimmed to the
woff2 fonts, which every browser that runs KaTeX reads).

Why KaTeX in the page, and not nbconvert's HTML or MathML made at build time: nbconvert's templates load MathJax,
RequireJS and the widget manager from CDNs, so they break offline; MathJax bundled is several MB against
KaTeX's 0.6 MB; and turning LaTeX into MathML while building needs a converter that is no dependency of the
series (JupyterLab's own MathJax is compiled into its bundle). The markdown is rendered with mistune and the code
coloured with Pygments, both already installed with JupyterLab. A math span that KaTeX cannot typeset keeps a
``math-error`` class, which the browser test looks for.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from .edition import check_out, write_tree
from .errors import MobileNetError
from .lessons import Lesson, exercise_number, is_solution, lessons, notebooks_dir, read_notebook, source

ASSETS = Path(__file__).resolve().parent / "assets"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("An interactive widget is here: it needs a running Python kernel, so this page cannot show it. "
               "Open {nb} in JupyterLab and run the lesson to use it.")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PLACEHOLDER = "MATHPLACEHOLDER{}END"

CSS = """
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; margin: 0; }
main, header, footer { max-width: 54rem; margin: 0 auto; padding: 0 1rem; }
header, footer { padding-top: .8rem; padding-bottom: .8rem; font-size: .92rem; }
header { border-bottom: 1px solid #ddd; } footer { border-top: 1px solid #ddd; margin-top: 2rem; }
nav a { margin-right: 1.2rem; }
a { color: #0b57a4; }
h1 { font-size: 1.8rem; line-height: 1.25; } h2 { margin-top: 2rem; }
code { font: .9em/1.4 ui-monospace, "SF Mono", Menlo, Consolas, monospace; background: #f3f3f3; padding: 0 .2em; }
pre { font: .84rem/1.45 ui-monospace, "SF Mono", Menlo, Consolas, monospace; overflow-x: auto; margin: 0;
      padding: .6rem .8rem; }
pre code { background: none; padding: 0; }
.cell.code { margin: 1rem 0; }
.source { background: #f6f8fa; border-left: 3px solid #0b57a4; }
.output pre { background: #fff; border-left: 3px solid #ccc; }
.output .stderr { background: #fff4f4; }
.output img { max-width: 100%; height: auto; display: block; margin: .4rem 0; }
.widget-note { border: 1px dashed #b08800; background: #fffbe6; padding: .6rem .8rem; margin: .4rem 0; }
details.solution { border: 1px solid #ddd; border-radius: 4px; padding: .3rem .6rem; }
details.solution > summary { cursor: pointer; color: #555; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
.series td:first-child { white-space: nowrap; }
.optional td { background: #fafafa; } .optional td:first-child { padding-left: 1.4rem; }
.math.display { display: block; margin: .8rem 0; overflow-x: auto; }
.math-error { color: #b00020; }
"""

MATH_JS = """
// Typeset every .math element with the bundled KaTeX; a failure is marked, never silent.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".math").forEach(function (el) {
    var tex = el.textContent;
    try {
      katex.render(tex, el, {displayMode: el.classList.contains("display"), throwOnError: true});
      el.classList.add("typeset");
    } catch (e) {
      el.classList.add("math-error");
      el.title = String(e && e.message || e);
    }
  });
  document.body.setAttribute("data-math", "done");
});
"""


# ----------------------------------------------------------------------------------------------------
# Markdown with math


def protect_math(text: str) -> tuple[str, list[tuple[str, bool]]]:
    """Replace each math span ($...$, $$...$$, \\(...\\), \\[...\\]) outside code by a placeholder.

    Returns the text and the spans as (TeX, display). Markdown then cannot touch the TeX (underscores and
    asterisks in it would become emphasis), and the spans come back as elements KaTeX typesets.
    """
    spans: list[tuple[str, bool]] = []
    out: list[str] = []
    i, n = 0, len(text)
    fence = None
    at_line_start = True

    def keep(tex: str, display: bool) -> str:
        spans.append((tex, display))
        return PLACEHOLDER.format(len(spans) - 1)

    while i < n:
        if at_line_start:  # a fenced code block's lines, its fences included, go through untouched
            m = re.match(r"[ ]{0,3}(```+|~~~+)", text[i:])
            if fence is None and m:
                fence = m.group(1)[0] * 3
            elif fence is not None and m and m.group(1).startswith(fence):
                fence = ""
        if fence is not None:
            j = text.find("\n", i)
            j = n if j < 0 else j + 1
            out.append(text[i:j])
            i, at_line_start = j, True
            fence = None if fence == "" else fence
            continue
        c = text[i]
        at_line_start = False
        if c == "\n":
            out.append(c)
            i += 1
            at_line_start = True
            continue
        if c == "`":
            run = re.match(r"`+", text[i:]).group(0)
            j = text.find(run, i + len(run))
            j = i + len(run) if j < 0 else j + len(run)
            out.append(text[i:j])
            i = j
            continue
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in "([":
                close = "\\)" if nxt == "(" else "\\]"
                j = text.find(close, i + 2)
                if j > 0:
                    out.append(keep(text[i + 2:j], nxt == "["))
                    i = j + 2
                    continue
            out.append(text[i:i + 2])
            i += 2
            continue
        if c == "$":
            if text.startswith("$$", i):
                j = text.find("$$", i + 2)
                if j > 0:
                    out.append(keep(text[i + 2:j].strip(), True))
                    i = j + 2
                    continue
            else:
                m = re.match(r"\$(?=\S)((?:\\.|[^$\\\n])+?)(?<=\S)\$(?!\d)", text[i:])
                if m:
                    out.append(keep(m.group(1), False))
                    i += m.end()
                    continue
        out.append(c)
        i += 1
    return "".join(out), spans


def restore_math(rendered: str, spans: list[tuple[str, bool]]) -> str:
    def sub(m: re.Match) -> str:
        tex, display = spans[int(m.group(1))]
        tag = "div" if display else "span"
        return f'<{tag} class="math {"display" if display else "inline"}">{html.escape(tex, quote=False)}</{tag}>'

    return re.sub(PLACEHOLDER.format(r"(\d+)"), sub, rendered)


_MARKDOWN = None


def markdown(text: str) -> str:
    """Markdown (with raw HTML, tables and math) to HTML."""
    global _MARKDOWN
    if _MARKDOWN is None:
        import mistune

        _MARKDOWN = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "url"])
    protected, spans = protect_math(text)
    return restore_math(_MARKDOWN(protected), spans)


def highlight(code: str) -> str:
    from pygments import highlight as pyg
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return pyg(code, PythonLexer(), HtmlFormatter(nowrap=True))


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".source pre")


# ----------------------------------------------------------------------------------------------------
# Pages


class Page:
    """One lesson page: its HTML body and the files (figures) it writes beside itself."""

    def __init__(self, lesson: Lesson, pages: dict[str, str], repo_files: Path):
        self.lesson, self.pages, self.repo_files = lesson, pages, repo_files
        self.files: dict[str, bytes] = {}
        self.figures = 0
        self.broken: list[str] = []  # links to files that are not in the repository

    def _figure(self, data: str | list, ext: str, cell: int, binary: bool = True) -> str:
        data = "".join(data) if isinstance(data, list) else data
        self.figures += 1
        name = f"figures/{self.lesson.stem}/cell{cell:02d}-{self.figures}.{ext}"
        self.files[name] = base64.b64decode(data) if binary else data.encode()
        return name

    def _links(self, body: str) -> str:
        """Links to other lessons point at their pages; files of the repository they name are copied in."""

        def sub(m: re.Match) -> str:
            attr, url = m.group(1), html.unescape(m.group(2))
            if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", url, re.IGNORECASE):
                return m.group(0)
            path, _, frag = url.partition("#")
            if path in self.files:  # a figure this page wrote from an output
                return m.group(0)
            name = Path(path).name
            if name in self.pages:
                target = self.pages[name]
            else:
                src = (self.lesson.path.parent / path).resolve()
                if not src.is_file() or not _is_within(src, self.repo_files):
                    self.broken.append(url)
                    return m.group(0)  # left as it is, and said when the site is built
                target = "files/" + src.relative_to(self.repo_files).as_posix()
                self.files[target] = src.read_bytes()
            return f'{attr}="{html.escape(target + ("#" + frag if frag else ""))}"'

        return re.sub(r'\b(href|src)="([^"]*)"', sub, body)

    def output(self, o: dict, cell: int) -> str:
        kind = o.get("output_type")
        if kind == "stream":
            text = ANSI.sub("", "".join(o.get("text", "")) if isinstance(o.get("text"), list) else o.get("text", ""))
            return f'<pre class="{html.escape(o.get("name", "stdout"))}">{html.escape(text)}</pre>'
        if kind == "error":
            tb = ANSI.sub("", "\n".join(o.get("traceback", [])) or f"{o.get('ename')}: {o.get('evalue')}")
            return f'<pre class="stderr">{html.escape(tb)}</pre>'
        data = o.get("data", {})
        if WIDGET_MIME in data:
            nb = html.escape(self.lesson.path.name)
            return f'<div class="widget-note">{WIDGET_NOTE.format(nb=f"<code>{nb}</code>")}</div>'
        for mime, ext, binary in (("image/svg+xml", "svg", False), ("image/png", "png", True),
                                  ("image/jpeg", "jpg", True), ("image/gif", "gif", True)):
            if mime in data:
                src = self._figure(data[mime], ext, cell, binary)
                return f'<img src="{src}" alt="figure from cell {cell} of {html.escape(self.lesson.path.name)}">'
        if "text/html" in data:
            raw = data["text/html"]
            return f'<div class="html">{"".join(raw) if isinstance(raw, list) else raw}</div>'
        if "text/markdown" in data:
            return markdown("".join(data["text/markdown"]))
        if "text/latex" in data:
            return markdown("".join(data["text/latex"]))
        if "text/plain" in data:
            text = "".join(data["text/plain"]) if isinstance(data["text/plain"], list) else data["text/plain"]
            return f"<pre>{html.escape(ANSI.sub('', text))}</pre>"
        return ""

    def body(self, nb: dict) -> str:
        parts = []
        cells = nb.get("cells", [])
        sols = 0
        for i, cell in enumerate(cells):
            kind = cell.get("cell_type")
            if kind == "markdown":
                parts.append(f'<div class="cell markdown">{markdown(source(cell))}</div>')
            elif kind == "code":
                code = f'<div class="source"><pre><code>{highlight(source(cell))}</code></pre></div>'
                outs = "".join(self.output(o, i) for o in cell.get("outputs", []))
                inner = code + (f'<div class="output">{outs}</div>' if outs else "")
                if is_solution(cell):
                    sols += 1
                    num = exercise_number(nb, i, sols)
                    inner = f'<details class="solution"><summary>Solution to exercise {num}</summary>{inner}</details>'
                parts.append(f'<div class="cell code">{inner}</div>')
        return self._links("\n".join(parts))


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def page(title: str, body: str, nav: str = "") -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="static/katex/katex.min.css">
<link rel="stylesheet" href="static/site.css">
<script defer src="static/katex/katex.min.js"></script>
<script defer src="static/math.js"></script>
</head>
<body>
<header><nav>{nav}</nav></header>
<main>
{body}
</main>
<footer><nav>{nav}</nav></footer>
</body>
</html>
"""


def _summary(nb: dict) -> str:
    """The lesson's 'What you will build' paragraph (its first markdown cell), as HTML."""
    cells = nb.get("cells", [])
    first = source(cells[0]) if cells and cells[0].get("cell_type") == "markdown" else ""
    m = re.search(r"\*\*What you will build\.?\*\*\.?\s*(.+?)(?:\n\s*\n|$)", first, re.DOTALL)
    text = m.group(1) if m else ""
    rendered = markdown(text).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.DOTALL)


def site_files(folder: Path | None = None, broken: list[str] | None = None) -> dict[str, bytes]:
    """Every file of the HTML edition, by its path inside OUT; links to missing files are added to ``broken``."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    found = lessons(folder)
    if not found:
        raise MobileNetError(f"no lessons (NN_name.ipynb) in {folder}")
    pages = {lesson.path.name: f"{lesson.stem}.html" for lesson in found}
    repo_files = folder.resolve().parent
    files: dict[str, bytes] = {}
    rows = []
    for k, lesson in enumerate(found):
        nb = read_notebook(lesson.path)
        p = Page(lesson, pages, repo_files)
        body = p.body(nb)
        links = ['<a href="index.html">Index</a>']
        if k > 0:
            links.append(f'<a href="{pages[found[k - 1].path.name]}" rel="prev">&larr; {found[k - 1].number}</a>')
        if k + 1 < len(found):
            links.append(f'<a href="{pages[found[k + 1].path.name]}" rel="next">{found[k + 1].number} &rarr;</a>')
        note = (f'<p class="note">Read-only page built from <code>notebooks/{html.escape(lesson.path.name)}</code> '
                "and its saved outputs. To run it, open the notebook in JupyterLab.</p>")
        title = f"{lesson.number} · {lesson.title}"
        files[pages[lesson.path.name]] = page(title, note + body, " ".join(links)).encode()
        files.update(p.files)
        if broken is not None:
            broken += [f"{lesson.path.name} links to {u}, which is not in the repository" for u in p.broken]
        cls = ' class="optional"' if lesson.optional else ""
        kind = "optional" if lesson.optional else "core"
        rows.append(f'<tr{cls}><td>{lesson.number}</td><td><a href="{pages[lesson.path.name]}">'
                    f"{restore_math(*_inline(lesson.title))}</a></td><td>{kind}</td><td>{_summary(nb)}</td></tr>")
    core = sum(not lesson.optional for lesson in found)
    index = (f"<h1>MobileNet v1, built lesson by lesson</h1>\n<p>{core} core lessons, read in order, and "
             f"{len(found) - core} optional deep dives beside them. Each page shows a lesson with the outputs of its "
             "last full run; to run a lesson yourself, open its notebook in JupyterLab.</p>\n"
             '<table class="series"><thead><tr><th>#</th><th>Lesson</th><th>Kind</th><th>What you will build</th>'
             "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")
    files["index.html"] = page("MobileNet v1: the lessons", index, '<a href="index.html">Index</a>').encode()
    files["static/site.css"] = (CSS + pygments_css()).encode()
    files["static/math.js"] = MATH_JS.encode()
    katex = ASSETS / "katex"
    for f in sorted(katex.rglob("*")):
        if f.is_file():
            files[f"static/katex/{f.relative_to(katex).as_posix()}"] = f.read_bytes()
    return files


def _inline(title: str) -> tuple[str, list[tuple[str, bool]]]:
    """A title's inline markdown (code, math) as HTML without the paragraph around it."""
    protected, spans = protect_math(title)
    import mistune

    rendered = mistune.create_markdown(escape=True)(protected).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.DOTALL), spans


def build_site(out: str | os.PathLike, force: bool = False, source: str | os.PathLike | None = None,
               log=print) -> Path:
    """Write the HTML edition of the lessons in ``source`` (default: the series) to ``out``; returns ``out``."""
    src = Path(source) if source is not None else notebooks_dir()
    out_path = check_out(Path(out), force, src)
    broken: list[str] = []
    files = site_files(src, broken)
    write_tree(out_path, files)
    for b in broken:
        log(f"warning: {b}: that link will not work")
    size = sum(len(b) for b in files.values())
    pages = sum(name.endswith(".html") for name in files)
    log(f"HTML edition: {pages} pages, {len(files)} files, {size / 2**20:.1f} MiB, written to {out_path}; "
        f"open {out_path / 'index.html'}")
    return out_path
