"""Under ``pytest --nbval``: a lesson that needs CIFAR-10 is skipped, with one reason line, where the data is
neither found nor downloadable, instead of failing cell after cell. CI (``CI=true``) never skips: there the lesson
runs and fails, and ``tests/test_lessons.py`` says why. Which lessons need the data is read from each notebook
(``mobilenet_edu.lessons.needs_cifar10``), so new lessons are covered without being named here.
"""

from __future__ import annotations

import pytest

from mobilenet_edu.lessons import ci, data_skip_reason, needs_cifar10, read_notebook

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
