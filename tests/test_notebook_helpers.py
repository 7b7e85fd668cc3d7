"""mobilenet_edu.notebook: the helpers the lessons use to show mistakes as one line and to silence native noise."""

import os
import subprocess
import sys

import pytest

from mobilenet_edu import MobileNetError
from mobilenet_edu.notebook import quiet_native_output, report


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
