import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ.get("MOBILENET_TEST_THREADS", "1")))

ROOT = Path(__file__).resolve().parents[1]
CIFAR_DIR = ROOT.parent / "shared" / "datasets"


def has_cifar() -> bool:
    return (CIFAR_DIR / "cifar-10-batches-py" / "test_batch").is_file()


@pytest.fixture
def cli():
    """Run `python -m mobilenet ARGS` in a subprocess; returns CompletedProcess."""
    import subprocess

    def run(*args, check=False, env=None, timeout=600):
        e = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        e.update(env or {})
        return subprocess.run([sys.executable, "-m", "mobilenet", *map(str, args)], capture_output=True,
                              text=True, env=e, timeout=timeout, check=check)

    return run


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n.lower() in err.lower(), err
