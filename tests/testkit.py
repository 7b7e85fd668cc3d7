"""Helpers the tests import (``from testkit import ...``): a module of its own, because ``from conftest import``
finds whichever conftest.py pytest imported last (notebooks/ has one too), which depends on the command line."""
import os

import pytest

from mobilenet_edu.settings import DATA_VAR, data_root

# The one data lookup of the package: $MOBILENET_EDU_DATA, then ./data, then the checkout's data/.
CIFAR_DIR = data_root()
_HAVE_CIFAR = (CIFAR_DIR / "cifar-10-batches-py" / "test_batch").is_file()
CIFAR_SKIP = f"CIFAR-10 not found under {CIFAR_DIR}: set {DATA_VAR} to the folder holding cifar-10-batches-py/"


def asked_for_missing_data() -> bool:
    """$MOBILENET_EDU_DATA set to a folder without CIFAR-10."""
    return bool(os.environ.get(DATA_VAR)) and not _HAVE_CIFAR


needs_cifar = pytest.mark.skipif(not _HAVE_CIFAR, reason=CIFAR_SKIP)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n.lower() in err.lower(), err
