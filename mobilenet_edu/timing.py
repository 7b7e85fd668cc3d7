"""One way to time things, on top of PyTorch's own timer, ``torch.utils.benchmark.Timer``.

Why that timer and not a ``time.perf_counter()`` loop: it warms up before it measures, repeats a call until a
measurement lasts long enough to trust (``blocked_autorange``), sets the number of threads for the measurement
and puts it back afterwards, and waits for a GPU to finish (it synchronises the accelerator) before it reads the
clock. Its default is **one** thread; this module passes the thread count PyTorch is using unless told otherwise.

What this module adds: several candidates timed in interleaved rounds (each round times every candidate once),
so that a busy moment of a shared machine hits them all alike, and a median and spread over all rounds.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import MobileNetError
from .settings import size

# torch.utils.benchmark imports torch.utils.cpp_extension, which warns on stderr when it finds a CUDA toolkit
# (nvcc) but no CUDA runtime: nothing this module uses, and a stray stderr line in every notebook. torch 2.8 and
# newer log it; torch 2.7 and older print it, hence both the logger level and the redirect.
_cpp_log = logging.getLogger("torch.utils.cpp_extension")
_level = _cpp_log.level
_cpp_log.setLevel(logging.ERROR)
try:
    with contextlib.redirect_stderr(io.StringIO()):
        from torch.utils import benchmark
finally:
    _cpp_log.setLevel(_level)


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median over every measured block and the interquartile range (IQR) around it."""

    label: str
    median: float
    iqr: float
    blocks: int
    threads: int

    def rate(self, items_per_call: int) -> float:
        """Items (images, batches) per second, from the median."""
        return items_per_call / self.median

    def __str__(self) -> str:
        return (f"{self.label}: {self.median * 1e3:.2f} ms per call (IQR {self.iqr * 1e3:.2f} ms, "
                f"{self.blocks} blocks, {self.threads} thread{'s' if self.threads != 1 else ''})")


def compare(candidates: dict[str, Callable[[], object]], *, threads: int | None = None, rounds: int | None = None,
            seconds: float | None = None) -> dict[str, Timing]:
    """Time each callable with ``torch.utils.benchmark.Timer``, the candidates taking turns for ``rounds`` rounds.

    ``threads``: PyTorch threads during the measurement (default: the current count). ``seconds``: the
    ``min_run_time`` of one measurement. ``rounds`` and ``seconds`` default to the sizes in
    ``settings.SIZES`` (fewer and shorter under the quick switch).
    """
    if not candidates:
        raise MobileNetError("nothing to time: give at least one callable")
    threads = threads or torch.get_num_threads()
    rounds = rounds or size("timing_rounds")
    seconds = seconds if seconds is not None else size("timing_seconds")
    if rounds < 1 or threads < 1 or seconds < 0:
        raise MobileNetError(f"rounds and threads must be >= 1 and seconds >= 0 (got {rounds}, {threads}, {seconds})")
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, label=name)
            times[name].extend(timer.blocked_autorange(min_run_time=seconds).times)
    out = {}
    for name, t in times.items():
        q1, q2, q3 = np.percentile(t, [25, 50, 75])
        out[name] = Timing(name, float(q2), float(q3 - q1), len(t), threads)
    return out


def time_it(fn: Callable[[], object], label: str = "call", **kwargs) -> Timing:
    """One callable: ``compare({label: fn}, ...)[label]``."""
    return compare({label: fn}, **kwargs)[label]
