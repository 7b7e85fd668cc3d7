"""mobilenet_edu.launch: torchrun from Python, its output followed as it arrives."""

import os
import textwrap

import pytest

from mobilenet_edu import MobileNetError
from mobilenet_edu.launch import follow_progress, torchrun

SCRIPT = textwrap.dedent("""
    import os, sys
    rank = int(os.environ["RANK"])
    sys.stdout.write(f"rank {rank} of {os.environ['WORLD_SIZE']}\\n")   # one write: the ranks share a pipe
    sys.stdout.flush()
    if rank == 0:
        sys.stderr.write("epoch 1/1:  50%|#####     | 1/2\\repoch 1/1: 100%|##########| 2/2\\n")
        sys.stderr.write("a notice\\n")
    sys.exit(int(os.environ.get("FAIL", "0")))
""")


def test_torchrun_runs_every_process_and_returns_their_lines(tmp_path, capsys):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    lines = torchrun(2, [script], keep=lambda line: line.startswith("rank 0"))
    assert sorted(line for line in lines if line.startswith("rank")) == ["rank 0 of 2", "rank 1 of 2"]
    printed = capsys.readouterr().out
    assert "rank 0 of 2" in printed and "rank 1 of 2" not in printed   # only what `keep` accepts
    assert "epoch 1/1: " in printed   # outside a notebook, a new epoch's bar is printed once


def test_a_failed_job_is_one_error_and_shows_its_notices(tmp_path, capsys):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    with pytest.raises(MobileNetError, match="exit status"):
        torchrun(1, [script], env={"FAIL": "3"})
    assert "ChildFailedError" in capsys.readouterr().out   # torchrun's own report of the failure, shown
    with pytest.raises(MobileNetError, match="nproc"):
        torchrun(0, [script])


def test_progress_bars_and_notices_are_told_apart():
    r, w = os.pipe()
    os.write(w, b"epoch 1/2:  10%|#  |\repoch 1/2: 100%|###|\nwarning: x\nepoch 2/2:  5%|  |\r")
    os.close(w)
    notices = []
    with open(r, "rb") as stream:
        follow_progress(stream, notices)
    assert notices == ["warning: x"]
