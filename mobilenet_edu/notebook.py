"""Small helpers for the lessons: bad input shown as one readable line, never a traceback; native noise silenced."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from .errors import MobileNetError


@contextmanager
def report() -> Iterator[None]:
    """Run the block; a MobileNetError (a user's mistake: a bad file, a wrong argument) prints one line.

    The cell still finishes normally, so a lesson can show what a mistake looks like::

        with report():
            predict("not-an-image.txt")      # prints: error: cannot read image not-an-image.txt: ...
    """
    try:
        yield
    except MobileNetError as e:
        print(f"error: {e}")


def one_line_errors() -> None:
    """In IPython/Jupyter: show every MobileNetError raised by a cell as one line instead of a traceback.

    The cell still counts as failed (the kernel reports an error); only the display changes.
    """
    try:
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return

    def show(shell, etype, evalue, tb, tb_offset=None):
        print(f"{etype.__name__}: {evalue}", file=sys.stderr)
        return []

    ip.set_custom_exc((MobileNetError,), show)


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Run the block with everything it prints thrown away: Python's ``print`` and, at the file-descriptor
    level, what compiled code writes to stdout and stderr (which ``contextlib.redirect_stdout`` cannot catch).

    Lesson 09 wraps ExecuTorch's first load in it: its runtime reports its CPU detection through both routes.
    Exceptions still propagate, with their messages intact.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def peak_memory(children: bool = False) -> int | None:
    """Peak resident memory in bytes of this process (``children=True``: of its largest finished child process),
    as the kernel counts it; None where Python has no ``resource`` module (Windows), so a lesson can say so.

    ``ru_maxrss`` is in bytes on macOS and in kilobytes on Linux and the BSDs.
    """
    try:
        import resource
    except ImportError:
        return None
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def resident_memory() -> int | None:
    """Resident memory in bytes that this process holds now (Linux: ``/proc/self/statm``); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Hand memory freed through the C library's ``malloc`` (PyTorch tensors, large Python objects) back to the
    operating system (glibc's ``malloc_trim``).

    Freeing a tensor returns its memory to the C library's allocator, not to the operating system: glibc keeps
    freed blocks below 32 MiB for later allocations that fit them, so the process stays close to its largest size
    and what a later cell needs beyond those blocks stacks on top of an earlier cell's peak. Returns whether
    memory was handed back; False where it does not apply (no glibc: macOS, Windows, musl) or nothing could be.
    """
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    return trim(0) == 1
