import os
import sys
from pathlib import Path

# Tests and notebook kernels run side by side (pytest -n): one thread each, or OpenMP's spinning threads
# fight over the cores (a 2-thread job beside another ran 10x slower here). Set before torch is imported,
# and inherited by the kernels and subprocesses the tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("MOBILENET_TEST_THREADS", "1")))

from mobilenet_edu.settings import DATA_VAR, data_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The one data lookup of the package: $MOBILENET_EDU_DATA, then ./data, then the checkout's data/.
CIFAR_DIR = data_root()
_HAVE_CIFAR = (CIFAR_DIR / "cifar-10-batches-py" / "test_batch").is_file()
if os.environ.get(DATA_VAR) and not _HAVE_CIFAR:
    # Asked for a data folder that is not there: fail loudly rather than skip the tests behind README numbers.
    raise pytest.UsageError(f"{DATA_VAR}={os.environ[DATA_VAR]} holds no cifar-10-batches-py/")
CIFAR_SKIP = f"CIFAR-10 not found under {CIFAR_DIR}: set {DATA_VAR} to the folder holding cifar-10-batches-py/"


def has_cifar() -> bool:
    return _HAVE_CIFAR


needs_cifar = pytest.mark.skipif(not _HAVE_CIFAR, reason=CIFAR_SKIP)


@pytest.fixture
def cli():
    """Run `python -m mobilenet ARGS` in a subprocess; returns CompletedProcess."""
    import subprocess

    def run(*args, check=False, env=None, timeout=600):
        e = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        e.update(env or {})
        return subprocess.run([sys.executable, "-m", "mobilenet_edu", *map(str, args)], capture_output=True,
                              text=True, env=e, timeout=timeout, check=check)

    return run


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n.lower() in err.lower(), err
