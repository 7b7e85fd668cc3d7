"""Under ``pytest --nbval``: a lesson that needs CIFAR-10 is skipped, with one reason line, where the data is
neither found nor downloadable, instead of failing cell after cell. CI (``CI=true``) never skips: there the lesson
runs and fails, and ``tests/test_lessons.py`` says why. Which lessons need the data is read from each notebook
(``mobilenet_edu.lessons.needs_cifar10``), so new lessons are covered without being named here.

The Chinese lessons (``zh-CN/``) have their English lessons' code cells and outputs byte for byte
(``tests/test_translation.py`` checks them cell by cell), so running every one again would double the time of CI
for nothing new. What can differ is the folder a lesson runs from, so only the Chinese lessons that open a file
(``asset_path``: the photographs) run, from their own folder; ``MOBILENET_EDU_ZH_RUN=all`` runs every one. (This
lives here, not in a conftest.py of zh-CN/: a third module named ``conftest`` would shadow ``tests/conftest.py``
for the tests that import from it.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mobilenet_edu.lessons import ci, data_skip_reason, needs_cifar10, read_notebook, source
from mobilenet_edu.translation import LANG

_reason: list[str | None] = []  # computed once per run, on the first notebook that needs the data


class SkippedLesson(pytest.File):
    """Stands in for nbval's collector of a lesson that cannot run here; collecting it reports one skip."""

    reason: str = ""

    def collect(self):
        return []


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collected = yield
    nbval = [c for c in collected or [] if type(c).__name__ == "IPyNbFile"]
    if not nbval or ci() or not needs_cifar10(read_notebook(file_path)):
        return collected
    if not _reason:
        _reason.append(data_skip_reason())
    if _reason[0] is None:
        return collected
    item = SkippedLesson.from_parent(parent, path=file_path)
    item.reason = f"{file_path.name} {_reason[0]}"
    return [c for c in collected if c not in nbval] + [item]


@pytest.hookimpl(tryfirst=True)
def pytest_make_collect_report(collector):
    if isinstance(collector, SkippedLesson):
        return pytest.CollectReport(collector.nodeid, "skipped", (str(collector.path), None, collector.reason), [])
    return None


def _opens_files(path: Path) -> bool:
    return any(c.get("cell_type") == "code" and "asset_path(" in source(c) for c in read_notebook(path)["cells"])


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.suffix != ".ipynb" or path.parent.name != LANG or os.environ.get("MOBILENET_EDU_ZH_RUN") == "all":
        return None
    return True if not _opens_files(path) else None
