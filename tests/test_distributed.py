"""torchrun on this CPU: gloo, 2 processes, synthetic data."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent
COMMON = ["--data", "synthetic", "--synthetic-size", "256", "--width", "0.25", "--lr", "0.05", "--no-tta"]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def torchrun(n, *args, timeout=600):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r


def single(*args):
    r = subprocess.run([sys.executable, "-m", "mobilenet_edu", *map(str, args)], capture_output=True, text=True,
                       env=_env(), timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r


def test_ranks_end_identical_and_see_disjoint_samples(tmp_path):
    torchrun(2, HERE / "ddp_worker.py", tmp_path, 4)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(r0["flat"], r1["flat"])
    # and the running statistics too: each rank's last forward updated its own, train() then copies rank 0's
    assert torch.equal(r0["buffers"], r1["buffers"])
    a, b = set(r0["indices"].tolist()), set(r1["indices"].tolist())
    assert not a & b and a | b == set(range(256))


def test_two_processes_batch_b_equal_one_process_batch_2b(tmp_path):
    k = ["--freeze-bn", "--max-steps", "3", "--epochs", "1", *COMMON]
    torchrun(2, "-m", "mobilenet_edu", "train", "--batch-size", "8", "--out", tmp_path / "two", *k)
    single("train", "--batch-size", "16", "--out", tmp_path / "one", *k)
    w2, w1 = load_file(tmp_path / "two" / "weights.safetensors"), load_file(tmp_path / "one" / "weights.safetensors")
    moved = max((w1[n].float() - MobileNetInit[n]).abs().max().item() for n in w1 if n in MobileNetInit)
    assert moved > 1e-3  # the weights did change over the 3 steps
    diff = max((w1[n].float() - w2[n].float()).abs().max().item() for n in w1)
    assert diff <= 1e-5, diff


def _init_state():
    from mobilenet_edu import MobileNetV1

    torch.manual_seed(0)
    return {k: v.float() for k, v in MobileNetV1(num_classes=10, width=0.25, small_input=True).state_dict().items()}


MobileNetInit = _init_state()


@pytest.mark.parametrize("first,then", [(1, 2), (2, 1)])
def test_resume_across_world_sizes(tmp_path, first, then):
    run = tmp_path / "run"
    args = ["train", "--batch-size", "8", "--epochs", "2", "--out", run, *COMMON]
    steps_first_epoch = 256 // (8 * first)
    launch = (lambda *a: torchrun(2, "-m", "mobilenet_edu", *a)) if first == 2 else single
    launch(*args, "--max-steps", steps_first_epoch)
    ck = torch.load(run / "ckpt.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["world_size"] == first
    relaunch = (lambda *a: torchrun(2, "-m", "mobilenet_edu", *a)) if then == 2 else single
    r = relaunch(*args, "--resume")
    assert "resumed from" in r.stdout and f"resuming a {first}-process run under {then}" in r.stdout
    ck = torch.load(run / "ckpt.pt", weights_only=True)
    assert ck["epoch"] == 2 and ck["world_size"] == then
    assert [h["epoch"] for h in ck["history"]] == [1, 2]
    assert ck["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # the schedule ran to its end
    assert ck["history"][1]["train_loss"] < ck["history"][0]["train_loss"]  # the resumed run keeps learning


def test_torchrun_standalone_leaves_one_set_of_outputs(tmp_path):
    run = tmp_path / "RUN"
    torchrun(2, "-m", "mobilenet_edu", "train", "--epochs", "1", "--batch-size", "16", "--out", run, *COMMON)
    assert len(list(run.rglob("weights.safetensors"))) == 1
    assert len(list(run.rglob("card.json"))) == 1
    import json

    card = json.loads((run / "card.json").read_text())
    assert card["machine"]["world_size"] == 2
    assert card["metrics"]["n"] == 64  # the whole test set, reduced across both ranks


def test_a_dying_rank_brings_the_job_down(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(HERE / "ddp_dying_worker.py"), str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)  # no hang
    assert r.returncode != 0
    assert "ddp_dying_worker.py FAILED" in r.stderr or "ChildFailedError" in r.stderr, r.stderr[-2000:]
    assert "Signal 9" in r.stderr or "SIGKILL" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "weights.safetensors").exists()


def test_the_demo_of_lesson_10_averages_gradients_into_the_whole_batch_s():
    r = torchrun(2, "-m", "mobilenet_edu.ddp_demo")
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 5 and lines[0].startswith("2 processes (gloo), rank 0 trains on images [0, 2, 4")
    assert all(line.endswith("True") for line in lines[1:]), r.stdout
    # one all-reduce of every gradient value in the first step, then DDP's buckets (lesson 10b explains both)
    assert "step 1: 1 all-reduce(s) carrying 823,722 " in lines[1] and "step 2: 2 all-reduce(s)" in lines[2]


def test_the_lines_lesson_10_quotes_from_the_demo_are_the_module_s():
    import json

    import mobilenet_edu.ddp_demo as demo

    cells = json.loads((HERE.parent / "notebooks" / "10_scaling_out.ipynb").read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    [block] = [b for b in text.split("```python\n")[1:] if "DistributedDataParallel" in b]
    quoted = [line.strip() for line in block.split("```")[0].splitlines() if line.strip()]
    module = {line.strip() for line in Path(demo.__file__).read_text(encoding="utf-8").splitlines()}
    assert len(quoted) >= 4 and [line for line in quoted if line not in module] == []
