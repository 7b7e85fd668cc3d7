"""Under ``pytest --nbval``: which Chinese lessons run.

A Chinese lesson has its English lesson's code cells and outputs, byte for byte (``tests/test_translation.py``
checks them cell by cell), so running every one again would double the time of CI for nothing new. What can differ
is the folder a lesson runs from, so the lessons that open a file (``asset_path``: the photographs) run here, from
this folder, in quick mode like the English ones. ``MOBILENET_EDU_ZH_RUN=all`` runs every Chinese lesson.
"""

from __future__ import annotations

import os
from pathlib import Path

from mobilenet_edu.lessons import read_notebook, source


def opens_files(path: Path) -> bool:
    return any(c.get("cell_type") == "code" and "asset_path(" in source(c) for c in read_notebook(path)["cells"])


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.suffix != ".ipynb" or os.environ.get("MOBILENET_EDU_ZH_RUN") == "all":
        return None
    return True if not opens_files(path) else None
