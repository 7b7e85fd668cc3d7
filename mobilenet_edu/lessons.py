"""The series as data: which notebooks are lessons, their titles, their exercises' solutions, their data needs.

The student edition, the HTML edition and the test suite's data check all read the series through these
functions, so a new lesson (core ``NN_name.ipynb`` or optional ``NNb_name.ipynb``) is covered by all three
without being named anywhere. Reading a notebook here is reading a file, never running it.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import MobileNetError

# NN_snake.ipynb is a core lesson; NNx_snake.ipynb (a letter after the number) an optional deep dive beside NN.
LESSON_NAME = re.compile(r"^(?P<num>\d\d)(?P<opt>[a-z]?)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
EXERCISES = re.compile(r"^#+\s*(?:Exercises|练习)\b", re.MULTILINE)  # the Chinese edition's heading too
# A notebook may say what it needs in its metadata: {"mobilenet_edu": {"needs_cifar10": true/false}};
# without the key, the code decides (NEEDS_CIFAR_NAMES below).
META_KEY = "mobilenet_edu"
# Names whose use means "this lesson reads CIFAR-10": the loader, the data folder, the CLI's data flag, and the
# deployment helpers that draw their calibration and parity images from the test and training sets.
NEEDS_CIFAR_NAMES = frozenset({"load_cifar10", "ensure_cifar10", "download_cifar10", "data_root", "build_data",
                               "calibration01", "parity_batches"})
NEEDS_CIFAR_TEXT = re.compile(r"--data-dir\b")


def repo_root() -> Path | None:
    """The checkout this package runs from (editable install), or None for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def notebooks_dir() -> Path:
    """The series' ``notebooks/`` folder; a MobileNetError outside a checkout (the lessons are not installed)."""
    root = repo_root()
    if root is None:
        raise MobileNetError("the lessons' notebooks/ folder was not found: this command works in a clone of the "
                             "repository (pip install -e .), not in an installed copy of the package")
    return root / "notebooks"


def asset_path(name: str) -> Path:
    """A file the lessons read (a photograph, ...), found through the package, whatever the working directory.

    Looks in the package's own ``mobilenet_edu/assets/`` (what ships inside the package: the offline site's KaTeX)
    and then in the checkout's top-level ``assets/``, where the photographs are: they are not package data, so they
    are found from a checkout (the README's editable install), not from a copy installed without one.
    """
    here = Path(__file__).resolve().parent
    root = repo_root()
    for folder in (here / "assets", root / "assets" if root else None):
        if folder is not None and (folder / name).is_file():
            return folder / name
    raise MobileNetError(f"asset {name!r} not found in the package or the repository's assets/ folder")


@dataclass(frozen=True)
class Lesson:
    """One lesson notebook: core ("06") or optional ("06b"), with its title from the first heading."""

    path: Path
    number: str  # "06" or "06b"
    optional: bool
    title: str

    @property
    def stem(self) -> str:
        return self.path.stem


def source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def read_notebook(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MobileNetError(f"cannot read notebook {path}: {e}") from None


def lesson_title(nb: dict, fallback: str) -> str:
    """The first markdown heading without its number prefix: '# 02 · Depthwise ...' -> 'Depthwise ...'."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+)$", source(cell), re.MULTILINE)
            if m:
                return re.sub(r"^\d\d[a-z]?\s*[·:.\-–—]\s*", "", m.group(1).strip())
            break
    return fallback


def lessons(folder: str | Path | None = None) -> list[Lesson]:
    """Every lesson in ``folder`` (default: the series' notebooks/), in reading order: 06, 06b, 07, ..."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    found = []
    for p in folder.glob("*.ipynb"):
        m = LESSON_NAME.match(p.name)
        if m:
            found.append(Lesson(p, m["num"] + m["opt"], bool(m["opt"]), lesson_title(read_notebook(p), p.stem)))
    return sorted(found, key=lambda lesson: (lesson.number, lesson.path.name))


# ----------------------------------------------------------------------------------------------------
# Exercises and their solutions


def is_solution(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and bool(cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"))


def solution_indices(nb: dict) -> list[int]:
    """Indices of the exercise solutions: collapsed code cells after the last 'Exercises' heading."""
    cells = nb.get("cells", [])
    heads = [i for i, c in enumerate(cells) if c.get("cell_type") == "markdown" and EXERCISES.search(source(c))]
    if not heads:
        return []
    return [i for i in range(heads[-1] + 1, len(cells)) if is_solution(cells[i])]


def exercise_number(nb: dict, index: int, fallback: int) -> str:
    """The number of the exercise a solution answers: the last '**N.**' in the markdown just above it."""
    for cell in reversed(nb["cells"][:index]):
        if cell.get("cell_type") == "markdown":
            nums = re.findall(r"\*\*(\d+)\.\*\*", source(cell))
            return nums[-1] if nums else str(fallback)
        if is_solution(cell):
            break
    return str(fallback)


def python_source(code: str) -> str:
    """A code cell as plain Python: IPython magics and shell lines become comments."""
    return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def _names(code: str) -> tuple[set[str], set[str]]:
    """(names the code binds at top level or anywhere by assignment/import/def, names it reads)."""
    try:
        tree = ast.parse(python_source(code))
    except SyntaxError:
        return set(), set()
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, read


def solution_dependencies(nb: dict) -> list[str]:
    """Names that a cell after a solution reads and that only solutions define (empty: no cell needs one).

    A student notebook without the solutions then runs top to bottom: the cells above the first solution
    are the teacher's, and nothing below it needs a name that only a removed solution would have bound.
    """
    sols = set(solution_indices(nb))
    if not sols:
        return []
    only_in_solutions: set[str] = set()
    defined_elsewhere: set[str] = set()
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        bound, read = _names(source(cell))
        if i in sols:
            only_in_solutions |= bound - defined_elsewhere
            continue
        if i > min(sols):
            for name in sorted(read & only_in_solutions):
                problems.append(f"cell {i} reads {name!r}, which only a solution defines")
        defined_elsewhere |= bound
        only_in_solutions -= bound
    return problems


# ----------------------------------------------------------------------------------------------------
# Which lessons need CIFAR-10


def needs_cifar10(nb: dict) -> bool:
    """Whether a lesson reads CIFAR-10: its metadata says so, else its code uses the loader or the data folder."""
    meta = nb.get("metadata", {}).get(META_KEY, {})
    if isinstance(meta, dict) and "needs_cifar10" in meta:
        return bool(meta["needs_cifar10"])
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code = source(cell)
        if NEEDS_CIFAR_TEXT.search(code):
            return True
        _, read = _names(code)
        try:
            tree = ast.parse(python_source(code))
        except SyntaxError:
            continue
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        if (read | attrs | imported) & NEEDS_CIFAR_NAMES:
            return True
    return False


def ci() -> bool:
    """Whether this is a CI run (``CI=true``, as CI services set it): there, no lesson may be skipped for data."""
    import os

    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def data_skip_reason(reachable=None) -> str | None:
    """Why the lessons that need CIFAR-10 cannot run here (not found and not downloadable), or None when they can."""
    from .data import download_reachable, find_cifar10, offline_routes
    from .settings import data_root

    root = data_root()
    if find_cifar10(root) is not None or (reachable or download_reachable)():
        return None
    return f"needs CIFAR-10, which is not in {root} and cannot be downloaded: {offline_routes(root)}"
