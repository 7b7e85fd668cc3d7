"""Launch ``torchrun`` from Python (a notebook cell, a test) and watch it: one line per epoch's progress bar,
updated in place, and the processes' output as it arrives.

``python -m torch.distributed.run`` *is* ``torchrun``; called through ``sys.executable`` it surely runs in the
caller's own Python environment. ``--standalone`` means "every process on this machine" (torchrun picks a free
port for them to meet on).
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from .errors import MobileNetError


class _Line:
    """One output line that can be rewritten: an IPython display handle in a notebook, else a printed line."""

    def __init__(self, text: str):
        try:
            from IPython import get_ipython
            from IPython.display import Pretty, display

            in_kernel = get_ipython() is not None and hasattr(get_ipython(), "kernel")
        except ImportError:
            in_kernel = False
        if in_kernel:
            self._pretty = Pretty
            self._handle = display(Pretty(text), display_id=True)
        else:
            self._handle = None
            print(text, flush=True)

    def update(self, text: str) -> None:
        if self._handle is not None:
            self._handle.update(self._pretty(text))


def follow_progress(stream, notices: list[str], min_interval_s: float = 1.0) -> None:
    """Read a process's standard error: each epoch's tqdm bar (a line starting "epoch k/n:" with a "|", which
    tqdm redraws after a carriage return) is shown as one output line, updated at most every ``min_interval_s``;
    every other line goes into ``notices`` (shown only if the job fails)."""
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode   # a chunk may end mid-character
    pending, shown, epoch, last = "", None, None, 0.0
    for chunk in iter(lambda: os.read(stream.fileno(), 4096), b""):
        *pieces, pending = re.split(r"[\r\n]", pending + decode(chunk))
        bars = [piece for piece in pieces if piece.startswith("epoch ") and "|" in piece]
        notices.extend(piece for piece in pieces if piece.strip() and piece not in bars)
        if not bars:
            continue
        if bars[-1].split(":")[0] != epoch:   # a new epoch: a new line
            shown, epoch = _Line(bars[-1]), bars[-1].split(":")[0]
        elif time.monotonic() - last > min_interval_s or "100%" in bars[-1]:
            shown.update(bars[-1])
        else:
            continue
        last = time.monotonic()


def torchrun(nproc: int, args: Sequence[object], keep: Callable[[str], bool] = lambda line: True,
             env: dict[str, str] | None = None) -> list[str]:
    """Run ``python ARGS`` as ``nproc`` processes under torchrun on this machine (``ARGS`` starting with ``-m``
    runs a module); print the standard-output lines that ``keep`` accepts as they arrive, show the progress bars,
    and return every standard-output line. A failed job prints its last 20 notices and raises MobileNetError."""
    if nproc < 1:
        raise MobileNetError(f"nproc must be >= 1, got {nproc}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           *map(str, args)]
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    if os.name == "nt":  # PyTorch's Windows wheels have no libuv for torchrun's meeting point
        full_env["USE_LIBUV"] = "0"
    lines: list[str] = []
    notices: list[str] = []
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    follower = threading.Thread(target=follow_progress, args=(job.stderr, notices), daemon=True)
    follower.start()
    for line in job.stdout:
        lines.append(line.rstrip("\n"))
        if keep(lines[-1]):
            print(lines[-1], flush=True)
    job.wait()
    follower.join()
    if job.returncode != 0:
        print("\n".join(notices[-20:]))
        raise MobileNetError(f"torchrun failed with exit status {job.returncode} (its last lines are above)")
    return lines
