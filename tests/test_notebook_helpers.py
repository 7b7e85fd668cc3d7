"""mobilenet_edu.notebook: the helpers the lessons use to show mistakes as one line and to silence native noise."""

import os
import subprocess
import sys

import pytest

from mobilenet_edu import MobileNetError
from mobilenet_edu.notebook import peak_memory, quiet_native_output, release_freed_memory, report, resident_memory


def test_report_prints_a_user_mistake_as_one_line(capsys):
    with report():
        raise MobileNetError("cannot read image x.jpg: not an image")
    out = capsys.readouterr().out
    assert out == "error: cannot read image x.jpg: not an image\n"


def test_report_lets_a_bug_through():
    with pytest.raises(ZeroDivisionError), report():
        _ = 1 / 0


def test_quiet_native_output_silences_python_and_file_descriptors():
    # In a child process, so that the file descriptors under test are that process's own 1 and 2.
    code = (
        "import os, sys\n"
        "from mobilenet_edu.notebook import quiet_native_output\n"
        "print('before', flush=True)\n"
        "with quiet_native_output():\n"
        "    print('python stdout'); print('python stderr', file=sys.stderr)\n"
        "    os.write(1, b'native stdout\\n'); os.write(2, b'native stderr\\n')\n"
        "print('after', flush=True); os.write(2, b'stderr works again\\n')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert run.stdout == "before\nafter\n"
    assert run.stderr == "stderr works again\n"


def test_quiet_native_output_keeps_exceptions_and_restores_streams():
    stdout, stderr = sys.stdout, sys.stderr
    with pytest.raises(MobileNetError, match="kept"), quiet_native_output():
        raise MobileNetError("kept")
    assert (sys.stdout, sys.stderr) == (stdout, stderr)


def test_peak_memory_grows_with_a_large_allocation_and_is_none_without_resource(monkeypatch):
    import builtins

    # A fresh process, which then holds a block larger than its whole peak so far (importing torch can briefly
    # take more than it keeps): the peak must rise to at least the block's size.
    probe = ("from mobilenet_edu.notebook import peak_memory\n"
             "before = peak_memory()\n"
             "block = bytearray(before + 300 * 2**20)\n"  # zero-filled, so every page is touched and resident
             "print(before, peak_memory())")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    before, after = map(int, out.split())
    assert 0 < before and after >= before + 300 * 2**20, (before, after)
    assert peak_memory(children=True) >= after  # that process is a finished child of this one

    real_import = builtins.__import__

    def no_resource(name, *args, **kwargs):  # what Windows' Python does
        if name == "resource":
            raise ImportError("No module named 'resource'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_resource)
    assert peak_memory() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc/self/statm: Linux")
def test_release_freed_memory_hands_freed_tensors_back_to_the_os():
    # A fresh process (an earlier test may have changed the allocator's settings): 200 MB of tensors of 100 KB
    # each, below glibc's 128 KB threshold, so they come from its heap; the last one stays alive, so the heap's
    # top cannot shrink by itself. After they are freed the process stays as large; after the call it is not.
    probe = ("import torch\n"
             "from mobilenet_edu.notebook import release_freed_memory, resident_memory\n"
             "blocks = [torch.ones(25_600) for _ in range(2_000)]\n"
             "keep = blocks[-1]\n"
             "start = resident_memory()\n"
             "del blocks\n"
             "freed = resident_memory()\n"
             "released = release_freed_memory()\n"
             "print(start, freed, resident_memory(), released)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    start, freed, after, released = out.split()
    start, freed, after = int(start), int(freed), int(after)
    if not released:
        pytest.skip("not glibc: malloc_trim does not apply")
    assert freed > start - 50e6, (start, freed)    # freed, yet still held by the process
    assert after < freed - 150e6, (freed, after)   # handed back


def test_resident_memory_and_release_say_when_they_do_not_apply(monkeypatch):
    import builtins
    import ctypes

    now = resident_memory()
    assert now is None or now > 0
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):  # macOS and Windows have no /proc
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert resident_memory() is None

    def no_libc(*args, **kwargs):
        raise OSError("no C library by that name")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert release_freed_memory() is False
