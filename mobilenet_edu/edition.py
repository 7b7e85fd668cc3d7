"""`python -m mobilenet_edu student-edition OUT`: every lesson without its solutions, for a class that is graded.

The repository is the teacher's edition: each exercise's solution sits in a collapsed code cell, which
JupyterLab hides but VS Code, GitHub and nbviewer show open. The student edition writes every lesson (core and
optional) with all outputs cleared and each solution replaced by an empty code cell that says where the answer
goes. Exercises are found the way the lessons are written (a collapsed code cell after the ``Exercises``
heading), never by lesson, so new lessons are covered as they come.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .checkpoint import atomic_write
from .errors import MobileNetError
from .lessons import exercise_number, lessons, notebooks_dir, read_notebook, solution_indices

ANSWER_TAG = "answer"


def answer_cell(number: str, cell_id: str | None = None) -> dict:
    """The empty cell a student writes an answer in (tagged, so a grader can find it)."""
    return {"cell_type": "code", "execution_count": None, "id": cell_id or uuid.uuid4().hex[:8],
            "metadata": {"tags": [ANSWER_TAG]}, "outputs": [],
            "source": f"# Exercise {number}: write your answer here.\n"}


def student_notebook(nb: dict) -> tuple[dict, int]:
    """A copy of ``nb`` with outputs cleared and solutions replaced by answer cells; and how many were replaced."""
    nb = copy.deepcopy(nb)
    sols = solution_indices(nb)
    for k, i in enumerate(sols, 1):
        nb["cells"][i] = answer_cell(exercise_number(nb, i, k), nb["cells"][i].get("id"))
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
            meta = cell.get("metadata", {})
            meta.pop("execution", None)
            if isinstance(meta.get("jupyter"), dict):
                meta["jupyter"].pop("outputs_hidden", None)
                if not meta["jupyter"]:
                    meta.pop("jupyter")
    nb.get("metadata", {}).pop("widgets", None)  # saved widget views belong to the cleared outputs
    return nb, len(sols)


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def check_out(out: Path, force: bool, source: Path | None = None) -> Path:
    """``out`` resolved, refused where it is the series' notebooks/ (or inside it), or non-empty without force."""
    out = Path(out).expanduser().resolve()
    source = (source or notebooks_dir()).resolve()
    if _is_within(out, source):
        raise MobileNetError(f"{out} is the lessons' own folder (or inside it): the repository is the teacher's "
                             "edition; write the copy somewhere else")
    if out.exists() and not out.is_dir():
        raise MobileNetError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise MobileNetError(f"{out} is not empty; choose an empty folder or add --force to replace the files "
                             "of the same names there")
    return out


def write_tree(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative name -> bytes) under ``out``: into a new folder built beside it and renamed into
    place when ``out`` is new or empty (all or nothing), else file by file, each atomically."""
    if not out.exists() or not any(out.iterdir()):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        try:
            for name, data in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)
            if out.exists():
                out.rmdir()  # empty, checked above
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    for name, data in files.items():
        atomic_write(out / name, lambda t, d=data: Path(t).write_bytes(d))


def student_edition(out: str | os.PathLike, force: bool = False, source: str | os.PathLike | None = None,
                    log=print) -> dict[str, int]:
    """Write the student edition of every lesson in ``source`` (default: the series) to ``out``.

    Returns {notebook name: solutions removed}.
    """
    src = Path(source) if source is not None else notebooks_dir()
    out_path = check_out(Path(out), force, src)
    found = lessons(src)
    if not found:
        raise MobileNetError(f"no lessons (NN_name.ipynb) in {src}")
    files, counts = {}, {}
    for lesson in found:
        nb, n = student_notebook(read_notebook(lesson.path))
        files[lesson.path.name] = (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()
        counts[lesson.path.name] = n
    write_tree(out_path, files)
    for name, n in counts.items():
        log(f"{name}: {n} solution{'s' if n != 1 else ''} replaced by an empty answer cell")
    log(f"student edition of {len(counts)} lessons written to {out_path}")
    return counts
