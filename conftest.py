"""Loaded by pytest before ``notebooks/conftest.py`` and ``tests/conftest.py``, in every pytest-xdist worker.

Several workers on a few cores: PyTorch's CPU operators run on OpenMP threads (as many as there are cores), and by
default a thread that reaches the end of a parallel region spins, waiting for the others, before it sleeps. With
two workers on two cores, four busy threads share two cores, and the spinning ones take the cores that the thread
being waited for needs. Measured on 2 cores: two processes, each evaluating 2,000 CIFAR-10 images, timing 300
batch-1 calls and 20 training steps, took 20 s each side by side against 6 s alone; with
``OMP_WAIT_POLICY=PASSIVE`` (a waiting thread sleeps at once) 11 s each, and 6.5 s alone. So under several workers
the waiting threads sleep: in the workers, the notebook kernels they start and the command-line runs the tests
start (all inherit the environment). A value already set is kept; one process alone keeps OpenMP's default.
"""

import os

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
