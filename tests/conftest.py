import os
import sys

# Tests and notebook kernels run side by side (pytest -n): one thread each, or OpenMP's spinning threads
# fight over the cores (a 2-thread job beside another ran 10x slower here). Set before torch is imported,
# and inherited by the kernels and subprocesses the tests start. Where a lesson or test asks for more threads
# itself, under several workers a waiting thread sleeps at once instead of spinning (OMP_WAIT_POLICY=PASSIVE):
# two 2-thread processes side by side took 20 s each by default, 10-11 s passive; one alone 6.0 s, 6.5 s passive.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("MOBILENET_TEST_THREADS", "1")))

from testkit import asked_for_missing_data  # noqa: E402

from mobilenet_edu.settings import DATA_VAR  # noqa: E402

if asked_for_missing_data():
    # Asked for a data folder that is not there: fail loudly rather than skip the tests behind README numbers.
    raise pytest.UsageError(f"{DATA_VAR}={os.environ[DATA_VAR]} holds no cifar-10-batches-py/")


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
