"""The series read as data (mobilenet_edu.lessons), and what it is used for: lessons that need CIFAR-10 are skipped
under nbval with one reason line where the data cannot be had, never in CI; and lessons find their files from
any working directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mobilenet_edu.data import load_cifar10
from mobilenet_edu.errors import MobileNetError
from mobilenet_edu.lessons import (
    asset_path,
    ci,
    data_skip_reason,
    lessons,
    needs_cifar10,
    notebooks_dir,
    read_notebook,
    source,
)

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("MOBILENET_EDU_DATA", "data install", "network")


def nb_with(*codes: str, meta: dict | None = None) -> dict:
    return {"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in codes],
            "metadata": meta or {}, "nbformat": 4, "nbformat_minor": 5}


def test_lessons_are_found_in_order_core_and_optional(tmp_path):
    for name, title in [("07_train.ipynb", "# 07 · Training"), ("06b_deep_dive.ipynb", "# 06b · Deeper (optional)"),
                        ("06_data.ipynb", "# 06 · The data"), ("scratch.ipynb", "# x"), ("README.md", "")]:
        (tmp_path / name).write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": title}]}))
    found = lessons(tmp_path)
    assert [(f.number, f.optional, f.title) for f in found] == [
        ("06", False, "The data"), ("06b", True, "Deeper (optional)"), ("07", False, "Training")]
    real = lessons()
    assert real and real[0].number == "01" and all(f.title and not f.title.startswith("#") for f in real)


def test_which_lessons_need_cifar10():
    assert needs_cifar10(nb_with("x = load_cifar10(data_root())"))
    assert needs_cifar10(nb_with("from mobilenet_edu.data import load_cifar10"))
    assert needs_cifar10(nb_with("!python -m mobilenet_edu train --data-dir data"))
    assert needs_cifar10(nb_with("import mobilenet_edu.settings as s\nroot = s.data_root()"))
    assert not needs_cifar10(nb_with("model = load_pretrained('cifar10')", "print('CIFAR-10 is 32x32')"))
    assert not needs_cifar10(nb_with("x = load_cifar10(root)", meta={"mobilenet_edu": {"needs_cifar10": False}}))
    assert needs_cifar10(nb_with("print(1)", meta={"mobilenet_edu": {"needs_cifar10": True}}))
    real = {f.number: needs_cifar10(read_notebook(f.path)) for f in lessons()}
    assert real["01"] is False and real["06"] is True and real["09b"] is True, real   # 09b calibrates on CIFAR-10


def test_the_offline_message_names_the_three_routes(tmp_path, monkeypatch):
    import torchvision.datasets.utils as u

    with pytest.raises(MobileNetError) as e:
        load_cifar10(tmp_path, download=False)
    assert all(r in str(e.value) for r in ROUTES), e.value

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(u, "download_and_extract_archive", offline)
    with pytest.raises(MobileNetError) as e:
        load_cifar10(tmp_path / "data")
    assert "could not be downloaded" in str(e.value) and all(r in str(e.value) for r in ROUTES), e.value
    assert "\n" not in str(e.value)


def test_skip_reason_only_without_data_and_network(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILENET_EDU_DATA", str(tmp_path))
    reason = data_skip_reason(reachable=lambda: False)
    assert reason and all(r in reason for r in ROUTES), reason
    assert data_skip_reason(reachable=lambda: True) is None
    (tmp_path / "cifar-10-batches-py").mkdir()
    for n in ("data_batch_1", "test_batch"):
        (tmp_path / "cifar-10-batches-py" / n).write_bytes(b"x")
    assert data_skip_reason(reachable=lambda: False) is None


def test_ci_never_skips_a_data_lesson():
    """In CI (CI=true) the data must be there: a lesson that would be skipped for want of it fails this test."""
    if not ci():
        pytest.skip("only in CI (CI=true): elsewhere a machine without CIFAR-10 may skip the data lessons")
    data_lessons = [f.path.name for f in lessons() if needs_cifar10(read_notebook(f.path))]
    assert data_skip_reason() is None, f"CI would skip {data_lessons}: {data_skip_reason()}"


OFFLINE_PLUGIN = "import mobilenet_edu.data as d\nd.download_reachable = lambda timeout=3.0: False\n"


def _collect(tmp_path: Path, ci_value: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Collect (not run) the first data lesson under nbval with no data and no network, as a new user would."""
    (tmp_path / "offline_plugin.py").write_text(OFFLINE_PLUGIN)
    lesson = next(f.path for f in lessons() if needs_cifar10(read_notebook(f.path)))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MOBILENET_EDU_DATA")}
    env.update(PYTHONPATH=str(tmp_path), CI=ci_value, MOBILENET_EDU_DATA=str(tmp_path / "no data"))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "offline_plugin", "-p", "no:cacheprovider",
                           "--nbval", "--collect-only", "-q", "-rs", str(lesson.relative_to(ROOT))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300), lesson


def test_without_data_a_data_lesson_is_one_skip_with_its_reason_and_ci_runs_it(tmp_path):
    proc, lesson = _collect(tmp_path, "")
    skips = [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert len(skips) == 1 and lesson.name in skips[0], proc.stdout + proc.stderr
    assert all(r in skips[0] for r in ROUTES), skips[0]
    proc, _ = _collect(tmp_path, "true")
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED")], proc.stdout
    # collected, not skipped: '...ipynb::Cell 0' per cell, or '...ipynb: 26' at -qq
    assert re.search(rf"{re.escape(lesson.name)}(::Cell 0|: [1-9])", proc.stdout), proc.stdout[-2000:]


# ----------------------------------------------------------------------------------------------------
# From any working directory


def test_asset_path():
    assert asset_path("grace_hopper.jpg").is_file()
    with pytest.raises(MobileNetError, match="not found"):
        asset_path("no_such_picture.jpg")


def readers_of_assets() -> list[Path]:
    """Lessons that open a file of assets/ (through asset_path, as they should)."""
    return [f.path for f in lessons() if any("asset_path(" in source(c) for c in read_notebook(f.path)["cells"]
                                             if c.get("cell_type") == "code")]


def test_no_lesson_reads_a_file_relative_to_its_own_folder():
    # "../assets/x.jpg" works only when the kernel starts in notebooks/ (JupyterLab), not at the repository's top
    # (VS Code) or for a copy elsewhere; asset_path finds the file from anywhere.
    relative = [f"{f.path.name} cell {i}" for f in lessons() for i, c in enumerate(read_notebook(f.path)["cells"])
                if c.get("cell_type") == "code" and re.search(r"""["']\.\./""", source(c))]
    assert relative == []
    assert readers_of_assets(), "no lesson opens an asset: the working-directory test below would test nothing"


@pytest.mark.parametrize("where", ["top", "elsewhere"])
def test_a_lesson_that_reads_an_asset_runs_from_another_folder(where, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    lesson = next(p for p in readers_of_assets() if not needs_cifar10(read_notebook(p)))
    path = lesson
    if where == "elsewhere":  # a copy of the notebook in a folder of its own, run from there
        path = tmp_path / lesson.name
        shutil.copy(lesson, path)
    cwd = ROOT if where == "top" else tmp_path
    monkeypatch.setenv("MOBILENET_EDU_QUICK", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert notebooks_dir() != cwd
