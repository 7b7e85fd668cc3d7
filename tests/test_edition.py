"""`python -m mobilenet_edu student-edition OUT`: every lesson without solutions and outputs, and still runnable.

Running every student notebook would cost CI as much as the nbval run of the series again (minutes). It is not
needed: a student notebook is the teacher's notebook up to its first removed solution (nbval runs that part in
CI), then answer cells that hold a comment, markdown, and whatever code follows. So CI checks (1) that the
prefix is the teacher's, (2) that no later cell reads a name only a solution defines (syntax trees), and (3) runs
the first lesson's student notebook in full (a smoke test of the format) and every other one that has code after
a removed solution, unless it needs CIFAR-10 (the data lessons take minutes; (1) and (2) cover them).
``MOBILENET_EDU_STUDENT_RUN=all`` runs every student notebook top to bottom.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from testkit import assert_one_line_error

from mobilenet_edu.edition import ANSWER_TAG, student_edition, student_notebook
from mobilenet_edu.errors import MobileNetError
from mobilenet_edu.lessons import (
    lessons,
    needs_cifar10,
    notebooks_dir,
    read_notebook,
    solution_dependencies,
    solution_indices,
)

QUIET = {"log": lambda *a, **k: None}


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edition") / "students"
    counts = student_edition(out, **QUIET)
    assert counts == {lesson.path.name: len(solution_indices(read_notebook(lesson.path))) for lesson in lessons()}
    return out


def is_answer(cell: dict) -> bool:
    return ANSWER_TAG in cell.get("metadata", {}).get("tags", [])


def test_no_solution_code_and_no_outputs(edition):
    found = lessons()
    assert sorted(p.name for p in edition.iterdir()) == sorted(lesson.path.name for lesson in found)
    for lesson in found:
        teacher = read_notebook(lesson.path)
        solutions = ["".join(teacher["cells"][i]["source"]).strip() for i in solution_indices(teacher)]
        assert solutions, f"{lesson.path.name}: no solutions found"
        nb = nbformat.read(edition / lesson.path.name, as_version=4)
        nbformat.validate(nb)
        sols = set(solution_indices(teacher))
        kept = [ln.strip() for i, c in enumerate(teacher["cells"]) if i not in sols
                for ln in "".join(c["source"]).splitlines()]
        now = [ln.strip() for c in nb.cells for ln in c.source.splitlines()]
        for sol in solutions:  # a solution's line may be left only as often as the other cells have it
            for line in {ln.strip() for ln in sol.splitlines() if ln.strip() and not ln.strip().startswith("#")}:
                assert now.count(line) == kept.count(line), f"{lesson.path.name}: solution line left: {line}"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), lesson.path.name
        answers = [c for c in code if is_answer(c)]
        assert len(answers) == len(solutions)
        assert [c.source for c in answers][:1] == ["# Exercise 1: write your answer here.\n"]
        assert not any(c.get("metadata", {}).get("jupyter", {}).get("source_hidden") for c in nb.cells)
        assert "widgets" not in nb.metadata


def test_no_later_cell_depends_on_a_solution():
    for lesson in lessons():
        assert solution_dependencies(read_notebook(lesson.path)) == [], lesson.path.name


def test_the_dependency_check_finds_a_cell_that_needs_a_solution():
    src = lessons()[0].path
    nb = read_notebook(src)
    first = solution_indices(nb)[0]
    nb["cells"][first]["source"] = "only_the_solution_has_this = 42\n"
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "print(only_the_solution_has_this)\n"})
    assert solution_dependencies(nb) == [f"cell {len(nb['cells']) - 1} reads 'only_the_solution_has_this', "
                                         "which only a solution defines"]


def run(path: Path, cwd: Path, timeout: int = 600) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def student_runs() -> list[str]:
    """The lessons whose student notebook CI runs: the first, and any other with code after a removed solution
    that does not need CIFAR-10."""
    found = lessons()
    if os.environ.get("MOBILENET_EDU_STUDENT_RUN", "") == "all":
        return [lesson.path.name for lesson in found]
    names = [found[0].path.name]
    for lesson in found[1:]:
        teacher = read_notebook(lesson.path)
        if needs_cifar10(teacher):
            continue
        student, _ = student_notebook(teacher)
        first = next(i for i, c in enumerate(student["cells"]) if is_answer(c))
        if any(c["cell_type"] == "code" and not is_answer(c) for c in student["cells"][first:]):
            names.append(lesson.path.name)
    return names


def test_the_student_notebook_is_the_teachers_up_to_the_first_answer(edition):
    for lesson in lessons():
        teacher = read_notebook(lesson.path)["cells"]
        student = read_notebook(edition / lesson.path.name)["cells"]
        first = next(i for i, c in enumerate(student) if is_answer(c))
        assert first == solution_indices({"cells": teacher})[0]
        assert [c["source"] for c in student[:first]] == [c["source"] for c in teacher[:first]], lesson.path.name


@pytest.mark.parametrize("name", student_runs())
def test_student_notebook_runs_top_to_bottom_in_quick_mode(edition, name, monkeypatch, tmp_path):
    monkeypatch.setenv("MOBILENET_EDU_QUICK", "1")
    nb = run(edition / name, cwd=tmp_path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


def test_refuses_the_lessons_folder_and_a_non_empty_folder(tmp_path, cli):
    for out in (notebooks_dir(), notebooks_dir() / "students"):
        with pytest.raises(MobileNetError, match="lessons' own folder"):
            student_edition(out, force=True, **QUIET)
    assert not (notebooks_dir() / "students").exists()
    (tmp_path / "my notes.txt").write_text("keep me")
    assert_one_line_error(cli("student-edition", tmp_path), "not empty", "--force")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my notes.txt"]
    proc = cli("student-edition", tmp_path, "--force")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "my notes.txt").read_text() == "keep me" and len(list(tmp_path.glob("*.ipynb"))) >= 1
    assert "solutions replaced" in proc.stdout
