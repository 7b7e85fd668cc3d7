"""The notebooks' hygiene and their drift against the package.

`pytest --nbval` runs every notebook and compares its outputs; these tests check what nbval cannot:

- Each notebook was committed after a real top-to-bottom run: every code cell executed, execution counts
  1, 2, 3, ... in order, no error outputs, no paths of the author's machine.
- Each notebook is a lesson: a title first, exercises at the end, their solutions in collapsed cells. An
  optional deep dive (``06b_name.ipynb``) says so at its top, and its core lesson points to it.
- Test machinery stays out of the learner's view: nbval's markers are cell tags (``nbval-ignore-output``,
  ``nbval-skip``) with their reason in the cell's metadata (``"nbval": {"reason": ...}``), never comments in
  the code; quick-mode sizes come from ``settings.size``, never from an ``if quick`` branch in a lesson.
- No drift: a code cell whose line says ``# twin: mobilenet_edu.<module>.<name>`` defines ``<name>``
  exactly as the package does (same code, compared as Python syntax trees, so comments and formatting
  may differ but not one token of code). The notebooks import that piece from the package from then on.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAME = re.compile(r"^(\d\d)([a-z]?)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")   # 06_core.ipynb, 06b_optional.ipynb
TWIN = re.compile(r"^#\s*twin:\s*(mobilenet_edu(?:\.\w+)+)\s*$", re.MULTILINE)
# Paths that give away the machine a notebook ran on (home folders, scratch folders, this workplace).
TAGS = ("nbval-ignore-output", "nbval-skip", "nbval-raises-exception", "raises-exception")
QUICK_BRANCH = re.compile(r"\bquick\(\)|\bQUICK\b")
MACHINE_PATH = re.compile(r"(/work/|/tmp/|/root/|/home/\w|/Users/\w|[A-Z]:\\\\Users)")


def notebook_paths() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def python_source(cell: dict) -> str:
    """A code cell as plain Python: IPython magics and shell lines become comments."""
    return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                     for line in source(cell).splitlines())


# ----------------------------------------------------------------------------------------------------
# Drift between a notebook's pieces and the package


def _strip(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=True, include_attributes=False)


def package_definition(dotted: str) -> ast.AST:
    """The syntax tree of ``mobilenet_edu.<module>.<name>`` as written in the package's source file."""
    module_name, _, name = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node
    raise LookupError(f"{dotted}: no top-level definition named {name!r} in {module.__file__}")


def cell_definition(code: str, name: str) -> ast.AST | None:
    """The cell's top-level definition of ``name``; the last one when there are several (as Python binds it)."""
    found = None
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            found = node
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found = node
    return found


def drift(path: Path) -> list[str]:
    """One message per twin in ``path`` whose code differs from the package's (empty: no drift)."""
    problems = []
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] != "code":
            continue
        code = python_source(cell)
        for dotted in TWIN.findall(code):
            name = dotted.rpartition(".")[2]
            where = f"{path.name} cell {i} ({dotted})"
            try:
                theirs = package_definition(dotted)
            except (ImportError, LookupError) as e:
                problems.append(f"{where}: {e}")
                continue
            ours = cell_definition(code, name)
            if ours is None:
                problems.append(f"{where}: the cell says it is this twin but defines no {name!r}")
            elif _strip(ours) != _strip(theirs):
                diff = "\n".join(difflib.unified_diff(ast.unparse(theirs).splitlines(), ast.unparse(ours).splitlines(),
                                                      "package", "notebook", lineterm="", n=1))
                problems.append(f"{where}: differs from the package\n{diff}")
    return problems


def twins(path: Path) -> list[str]:
    return [d for c in cells(path) if c["cell_type"] == "code" for d in TWIN.findall(python_source(c))]


# ----------------------------------------------------------------------------------------------------
# Hygiene


def hygiene(path: Path) -> list[str]:
    """What is wrong with how ``path`` was committed (empty: a clean top-to-bottom run)."""
    problems = []
    if not NAME.match(path.name):
        problems.append(f"{path.name}: name is not NN_snake_case.ipynb")
    cs = cells(path)
    code = [c for c in cs if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    if None in counts:
        problems.append(f"{path.name}: {counts.count(None)} code cell(s) never executed")
    elif counts != list(range(1, len(counts) + 1)):
        problems.append(f"{path.name}: execution counts {counts} are not 1..{len(counts)} in order "
                        "(restart the kernel and run all)")
    for i, c in enumerate(cs):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                problems.append(f"{path.name} cell {i}: error output {o.get('ename')}: {o.get('evalue')}")
            text = json.dumps({k: v for k, v in o.items() if k != "metadata"})
            text = re.sub(r'"image/(png|jpeg)": "[^"]*"', "", text)
            m = MACHINE_PATH.search(text)
            if m:
                problems.append(f"{path.name} cell {i}: output shows a path of the author's machine ({m.group(0)}...)")
    for i, c in enumerate(code):
        if "NBVAL_" in source(c):
            problems.append(f"{path.name} code cell {i}: an NBVAL_ comment in the code a learner reads; use the "
                            "cell tag (nbval-ignore-output, nbval-skip) with metadata nbval.reason")
        tags = [t for t in c.get("metadata", {}).get("tags", []) if t in TAGS]
        if tags and not str(c.get("metadata", {}).get("nbval", {}).get("reason", "")).strip():
            problems.append(f"{path.name} code cell {i}: tag {tags[0]} has no reason (metadata nbval.reason)")
        if QUICK_BRANCH.search(python_source(c)):
            problems.append(f"{path.name} code cell {i}: asks the quick switch itself; take the size from "
                            "mobilenet_edu.settings.size (one place for every quick-mode size)")
    if not cs or cs[0]["cell_type"] != "markdown" or not source(cs[0]).lstrip().startswith("# "):
        problems.append(f"{path.name}: does not open with a title (a markdown cell starting '# ')")
    heads = [i for i, c in enumerate(cs) if c["cell_type"] == "markdown"
             and re.search(r"^#+\s*Exercises", source(c), re.MULTILINE)]
    if not heads:
        problems.append(f"{path.name}: no 'Exercises' section")
    else:
        after = cs[heads[-1] + 1:]
        hidden = [c for c in after if c["cell_type"] == "code"
                  and c.get("metadata", {}).get("jupyter", {}).get("source_hidden")]
        if not hidden:
            problems.append(f"{path.name}: the exercises have no solutions in collapsed cells "
                            "(code cells with metadata.jupyter.source_hidden = true)")
    return problems


# ----------------------------------------------------------------------------------------------------
# The tests


def core_and_optional() -> tuple[list[Path], list[Path]]:
    named = [(p, NAME.match(p.name)) for p in notebook_paths()]
    return [p for p, m in named if m and not m.group(2)], [p for p, m in named if m and m.group(2)]


def test_there_are_notebooks_numbered_from_01_without_gaps():
    core, _ = core_and_optional()
    assert core, f"no notebooks in {NOTEBOOKS}"
    numbers = [int(NAME.match(p.name).group(1)) for p in core]
    assert numbers == list(range(1, len(core) + 1)), [p.name for p in core]


@pytest.mark.parametrize("path", core_and_optional()[1], ids=lambda p: p.name)
def test_an_optional_notebook_says_so_and_its_lesson_points_to_it(path):
    assert re.search(r"\boptional\b", source(cells(path)[0]), re.IGNORECASE), f"{path.name}: not marked optional"
    [lesson] = [p for p in core_and_optional()[0] if p.name[:2] == path.name[:2]]
    prose = "\n".join(source(c) for c in cells(lesson) if c["cell_type"] == "markdown")
    assert path.name in prose, f"{lesson.name} never points to {path.name}"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_was_committed_after_a_clean_run(path):
    assert hygiene(path) == []


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_pieces_match_the_package(path):
    assert drift(path) == []


def test_the_series_shows_the_pieces_later_notebooks_import():
    found = {d for p in notebook_paths() for d in twins(p)}
    for piece in ("mobilenet_edu.model.DepthwiseSeparable", "mobilenet_edu.model.MobileNetV1"):
        assert piece in found, f"no notebook writes out {piece}"


def _edited_copy(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` with one line of code added inside its first twin; returns the twin's name."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or not TWIN.search(python_source(cell)):
            continue
        dotted = TWIN.search(python_source(cell)).group(1)
        name = dotted.rpartition(".")[2]
        lines = source(cell).splitlines(keepends=True)
        for j, line in enumerate(lines):
            if re.match(rf"(class|def)\s+{name}\b", line):
                body = next(ln for ln in lines[j + 1:] if ln.strip() and not ln.lstrip().startswith("#"))
                indent = body[: len(body) - len(body.lstrip())]
                lines.insert(j + 1, f"{indent}edited_by_a_learner = True\n")
                break
        else:  # a data twin (a table): one more entry, as a learner might add
            lines.append(f"{name} = {name} + (('edited_by_a_learner', 1),)\n")
        cell["source"] = lines
        dst.write_text(json.dumps(nb))
        return dotted
    raise AssertionError(f"{src.name} has no twin cell")


def test_drift_check_fails_on_an_edited_copy(tmp_path):
    with_twins = [p for p in notebook_paths() if twins(p)]
    assert with_twins, "no notebook declares a twin"
    for src in with_twins:
        assert drift(src) == []
        dst = tmp_path / src.name
        dotted = _edited_copy(src, dst)
        problems = drift(dst)
        assert len(problems) == 1 and dotted in problems[0] and "edited_by_a_learner" in problems[0], problems


def test_hygiene_check_fails_on_a_notebook_run_out_of_order(tmp_path):
    src = notebook_paths()[0]
    nb = json.loads(src.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[0]["execution_count"], code[-1]["execution_count"] = code[-1]["execution_count"], 1
    code[1]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]
    code[2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "saved to /home/alice/run\n"}]
    (tmp_path / src.name).write_text(json.dumps(nb))
    found = "\n".join(hygiene(tmp_path / src.name))
    assert "not 1.." in found and "error output ValueError" in found and "/home/a" in found, found
    code[0]["execution_count"] = None
    (tmp_path / src.name).write_text(json.dumps(nb))
    assert "never executed" in "\n".join(hygiene(tmp_path / src.name))


def test_hygiene_check_finds_test_machinery_in_view(tmp_path):
    src = notebook_paths()[0]
    nb = json.loads(src.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[0]["source"] = "# NBVAL_IGNORE_OUTPUT\n# timings vary\n" + source(code[0])
    code[1]["metadata"]["tags"] = ["nbval-ignore-output"]
    code[2]["source"] = "n = 100 if quick() else 10_000\n" + source(code[2])
    (tmp_path / src.name).write_text(json.dumps(nb))
    found = "\n".join(hygiene(tmp_path / src.name))
    assert "NBVAL_ comment" in found and "has no reason" in found and "asks the quick switch" in found, found
    code[1]["metadata"]["nbval"] = {"reason": "timings vary"}
    (tmp_path / src.name).write_text(json.dumps(nb))
    assert "has no reason" not in "\n".join(hygiene(tmp_path / src.name))
