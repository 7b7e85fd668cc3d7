import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from testkit import assert_one_line_error

from mobilenet_edu.checkpoint import load_checkpoint, load_weights
from mobilenet_edu.errors import MobileNetError

FAST = ["--width", "0.25", "--batch-size", "32", "--threads", "1", "--lr", "0.05"]


def test_train_synthetic_writes_a_complete_run(cli, tmp_path):
    run = tmp_path / "run"
    r = cli("train", "--data", "synthetic", "--epochs", "2", "--out", run, *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    names = {p.name for p in run.iterdir()}
    assert {"metrics.csv", "curves.png", "ckpt.pt", "weights.safetensors", "card.json", "tb"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    card = json.loads((run / "card.json").read_text())
    for key in ("arch", "mean", "std", "input_size", "classes", "dataset", "recipe", "metrics", "wall_time_s",
                "machine"):
        assert key in card, key
    assert {"top1", "top5", "top1_flip_tta"} <= set(card["metrics"])
    assert card["arch"]["small_input"] is True and card["input_size"] == 32
    m = load_weights(run / "weights.safetensors")
    assert m.pretrained_cfg["classes"] == card["classes"] and m(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    # the synthetic classes are learnable: training loss goes down
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_sigkill_mid_epoch_then_resume(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "mobilenet_edu", "train", "--data", "synthetic", "--synthetic-size", "2048",
           "--epochs", "3", "--out", str(run), *FAST]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 300
        while not (run / "ckpt.pt").exists() and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert (run / "ckpt.pt").exists(), "no checkpoint after the first epoch"
        time.sleep(0.5)  # well inside epoch 2
        assert p.poll() is None, "the run ended before it could be killed"
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    assert not (run / "weights.safetensors").exists()
    ck = load_checkpoint(run / "ckpt.pt")  # the last good checkpoint, never a truncated one
    assert 1 <= ck["epoch"] < 3
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resumed from {run / 'ckpt.pt'} after epoch {ck['epoch']} of 3" in r.stdout
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3]
    load_weights(run / "weights.safetensors")


def _image_folder(root, corrupt=True):
    from PIL import Image

    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P", "I;16"]
    files = {}
    for split, n in (("train", 6), ("val", 2)):
        for ci, cls in enumerate(["cat", "dog"]):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                mode = modes[i % len(modes)]
                h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
                base = (rng.random((h, w, 3)) * 60 + (40 if ci == 0 else 160)).astype(np.uint8)
                img = Image.fromarray(base)
                if mode == "I;16":
                    img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
                elif mode != "RGB":
                    img = img.convert(mode)
                ext = ".png" if mode in ("RGBA", "P", "I;16") or i % 2 else ".jpg"
                path = d / f"{i}_{mode.replace(';', '')}{ext}"
                img.save(path)
                files.setdefault(mode, path)
    if corrupt:
        (root / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return files


def test_image_folder_mixed_modes_corrupt_file_and_predict(cli, tmp_path):
    files = _image_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    r = cli("train", "--data", tmp_path / "imgs", "--epochs", "1", "--resolution", "64", "--batch-size", "4",
            "--width", "0.25", "--threads", "1", "--out", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "skipped 1 unreadable image file" in r.stdout
    card = json.loads((run / "card.json").read_text())
    assert card["classes"] == ["cat", "dog"] and card["input_size"] == 64 and card["skipped_files"] == 1
    assert card["arch"]["small_input"] is False
    r = cli("predict", "--weights", run / "weights.safetensors", "--json", "--top-k", "2", *files.values())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out) == 5
    for o in out:
        probs = [p for _, p in o["top"]]
        assert {c for c, _ in o["top"]} == {"cat", "dog"} and sum(probs) == pytest.approx(1, abs=1e-4)
    r = cli("eval", "--weights", run / "weights.safetensors", "--data", tmp_path / "imgs", "--json",
            "--plot", tmp_path / "cm.png")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["n"] == 4 and set(d["per_class"]) == {"cat", "dog"} and (tmp_path / "cm.png").stat().st_size > 0
    # bad inputs: one line, non-zero exit
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(cli("predict", "--weights", run / "weights.safetensors", tmp_path / "notes.txt"),
                          "cannot read image")
    assert_one_line_error(cli("predict", "--weights", run / "weights.safetensors", tmp_path / "absent.png"),
                          "no such image")
    (tmp_path / "imgs" / "train" / "empty").mkdir()
    assert_one_line_error(cli("train", "--data", tmp_path / "imgs", "--out", tmp_path / "r2", "--epochs", "1"),
                          "has no image files")
    # weights for another class count than the data
    r10 = tmp_path / "r10"
    cli("train", "--data", "synthetic", "--epochs", "1", "--out", r10, *FAST, check=True)
    assert_one_line_error(cli("eval", "--weights", r10 / "weights.safetensors", "--data", tmp_path / "imgs"),
                          "10 classes")


def test_cli_bad_inputs(cli, tmp_path):
    assert_one_line_error(cli("train", "--data", tmp_path / "no_such_dir"), "no_such_dir")
    assert_one_line_error(cli("eval", "--weights", "no-such-weights", "--data", "synthetic"), "no-such-weights")
    (tmp_path / "w.safetensors").write_bytes(b"\x00" * 100)
    assert_one_line_error(cli("eval", "--weights", tmp_path / "w.safetensors", "--data", "synthetic"),
                          "safetensors")
    assert_one_line_error(cli("train", "--data", "synthetic", "--epochs", "0", "--out", tmp_path / "x"), "epochs")
    assert_one_line_error(cli("train", "--data", "synthetic", "--sync-bn", "--out", tmp_path / "x"), "sync-bn")
    assert_one_line_error(cli("train", "--bogus"), "unrecognized")


def test_an_existing_run_is_never_overwritten_by_accident(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", "--data", "synthetic", "--epochs", "1", "--out", run, "--no-tta", *FAST, check=True)
    before = (run / "weights.safetensors").read_bytes()
    assert_one_line_error(cli("train", "--data", "synthetic", "--epochs", "1", "--out", run, *FAST), "--resume")
    assert (run / "weights.safetensors").read_bytes() == before
    r = cli("train", "--data", "synthetic", "--epochs", "1", "--out", run, "--overwrite", "--seed", "1", *FAST)
    assert r.returncode == 0 and (run / "weights.safetensors").read_bytes() != before


def test_wrong_channel_count_from_cli(cli, tmp_path):
    from mobilenet_edu import MobileNetV1
    from mobilenet_edu.checkpoint import save_weights

    m = MobileNetV1(num_classes=2, width=0.25, in_chans=1, small_input=True)
    w = save_weights(m, tmp_path / "gray.safetensors", {"arch": m.arch_args, "mean": [0.5], "std": [0.25],
                                                         "input_size": 32, "classes": ["a", "b"]})
    from PIL import Image

    Image.new("RGB", (40, 40)).save(tmp_path / "x.png")
    assert_one_line_error(cli("predict", "--weights", w, tmp_path / "x.png"), "1 input channels")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_keep_freed_memory_stops_most_page_faults_of_a_training_step():
    """By default glibc hands a training step's large activations (33 MB at batch 256, over its 32 MB limit) back
    to the OS when they are freed and the next step faults them in again; after keep_freed_memory() (which
    engine.train calls on the CPU) they are reused in place. Each measured in a fresh process."""
    from mobilenet_edu.pagefaults import measure_step

    default, keep = measure_step(keep=False, threads=1), measure_step(keep=True, threads=1)
    assert default["applied"] is False and len(default["per_step"]) == 5
    assert default["faults"] == sum(default["per_step"]) / 5
    # the seconds come from mobilenet_edu.timing (median and IQR of a step), not from a clock read around each step
    assert 0 < keep["seconds"] < 60 and keep["iqr"] >= 0 and default["seconds"] > 0
    if not keep["applied"]:
        pytest.skip("not glibc: mallopt does not apply")
    assert keep["faults"] * 4 < default["faults"], (default, keep)


def test_page_fault_probe_errors_are_one_line():
    from mobilenet_edu.pagefaults import measure_step

    with pytest.raises(MobileNetError, match="steps must be at least 1"):
        measure_step(keep=True, steps=0)
    if sys.platform.startswith("linux"):
        with pytest.raises(MobileNetError, match="probe failed: .*width"):
            measure_step(keep=True, width=-1)


def test_progressive_resizing_trains_small_first_then_full_size(cli, tmp_path):
    """--low-res 16 --full-res-epochs 1 of 3: the first two epochs see 16 px images, the last one 32 px; every
    evaluation is at the full 32 px, and the weights work at 32 px."""
    from mobilenet_edu.engine import epoch_size, recipe, resized

    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    (small, label), = resized([(x, torch.arange(4))], 16)
    assert small.shape == (4, 3, 16, 16) and small.is_contiguous(memory_format=torch.channels_last)
    assert label.tolist() == [0, 1, 2, 3]
    flat = torch.full((1, 3, 32, 32), 0.7)  # a flat colour stays that colour
    assert torch.allclose(next(resized([(flat, None)], 24))[0], torch.full((1, 3, 24, 24), 0.7))
    # Fewer epochs than full_res_epochs (say the classroom recipe cut to 2 epochs): all at full size.
    assert [epoch_size(recipe("classroom", epochs=2), e, 32) for e in range(2)] == [32, 32]

    run = tmp_path / "run"
    r = cli("train", "--data", "synthetic", "--epochs", "3", "--low-res", "16", "--full-res-epochs", "1",
            "--out", run, "--no-tta", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((run / "card.json").read_text())
    assert [row["train_size"] for row in card["history"]] == [16, 16, 32]
    assert card["recipe"]["low_res"] == 16 and card["input_size"] == 32
    assert load_weights(run / "weights.safetensors")(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_cpu_amp_runs_pointwise_in_bfloat16_and_depthwise_in_float32():
    """The classroom recipe's CPU mixed precision: under autocast the 1x1 convolutions and the classifier compute in
    bfloat16, the depthwise ones and the 3-channel stem in float32 (oneDNN's bf16 depthwise backward is slow), every
    gradient is float32 like its weight, and autocast is still on after the forward pass."""
    from mobilenet_edu.engine import amp_dtype, cpu_has_bf16, float32_thin_convs
    from mobilenet_edu.model import MobileNetV1

    cpu = torch.device("cpu")
    assert amp_dtype(cpu) is None and amp_dtype(cpu, enabled=False, cpu=True) is None
    assert amp_dtype(cpu, cpu=True) == (torch.bfloat16 if cpu_has_bf16() else None)
    torch.manual_seed(0)
    m = MobileNetV1(10, width=0.25, small_input=True)
    assert float32_thin_convs(m) == 14  # the stem and 13 depthwise convolutions
    out_dtype = {}
    for name, mod in m.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_hook(lambda mod, args, out, name=name: out_dtype.__setitem__(name, out.dtype))
    x = torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = m(x)
        assert torch.is_autocast_enabled("cpu")
    assert out_dtype["stem.0"] == torch.float32 and out_dtype["classifier"] == torch.bfloat16
    for i in range(13):
        assert out_dtype[f"blocks.{i}.dw.0"] == torch.float32 and out_dtype[f"blocks.{i}.pw.0"] == torch.bfloat16
    logits.float().logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m.parameters())
    # A convolution that raises (a wrong channel count) leaves autocast as it found it, inside and outside autocast.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(RuntimeError):
            m.blocks[0].dw(torch.randn(1, 5, 8, 8))
        assert torch.is_autocast_enabled("cpu")
    m.blocks[0].dw(torch.randn(1, m.blocks[0].dw[0].in_channels, 8, 8))
    assert not torch.is_autocast_enabled("cpu") and out_dtype["blocks.0.dw.0"] == torch.float32
    # Without autocast the float32 forwards change nothing: the same float32 network as before.
    with torch.no_grad():
        plain = MobileNetV1(10, width=0.25, small_input=True)
        plain.load_state_dict(m.state_dict())
        m.eval(), plain.eval()
        assert torch.equal(m(x), plain(x)) and out_dtype["blocks.0.pw.0"] == torch.float32


def test_training_with_cpu_amp_learns_and_says_so(cli, tmp_path):
    from mobilenet_edu.engine import cpu_has_bf16

    run = tmp_path / "run"
    r = cli("train", "--data", "synthetic", "--epochs", "2", "--cpu-amp", "--out", run, "--no-tta", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((run / "card.json").read_text())
    assert card["recipe"]["cpu_amp"] is True
    assert ("(bfloat16)" in r.stdout) == cpu_has_bf16(), r.stdout[:400]
    losses = [row["train_loss"] for row in card["history"]]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_cpu_amp_without_bf16_instructions_says_it_trains_in_float32(monkeypatch, capsys, tmp_path):
    from mobilenet_edu import engine

    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: False)  # what a CPU without AVX512-BF16 or AMX reports
    cfg = engine.TrainConfig(data="synthetic", width=0.25, batch_size=32, threads=1, epochs=1, max_steps=1,
                             cpu_amp=True, device="cpu", tta=False, out=str(tmp_path / "run"))
    card = engine.train(cfg)
    out = capsys.readouterr().out
    assert "no bfloat16 instructions" in out and "float32" in out and "1.1x the time of" in out, out
    assert card["recipe"]["cpu_amp"] is True and "bfloat16" not in str(card.get("amp"))
    # under a time budget the run does not take longer: it plans fewer epochs
    fixed = engine.Speed({size: 0.1 for size in range(8, 257)}, 0.01, 0.01)  # a fixed probe: one epoch fits
    monkeypatch.setattr(engine, "measure_speed", lambda *a, **k: fixed)
    engine.train(dataclasses.replace(cfg, epochs=1, max_steps=None, time_budget=0.05, overwrite=True))
    out = capsys.readouterr().out
    assert "no bfloat16 instructions" in out and "plans fewer epochs" in out, out


@pytest.mark.parametrize("flags, needle", [
    (["--low-res", "24", "--full-res-epochs", "0"], "--full-res-epochs >= 1"),
    (["--low-res", "-1"], "--low-res"),
    (["--low-res", "32", "--full-res-epochs", "1"], "from 16 to 31 px"),
    (["--low-res", "12", "--full-res-epochs", "1"], "from 16 to 31 px"),
])
def test_progressive_resizing_bad_settings_get_one_line(cli, tmp_path, flags, needle):
    assert_one_line_error(cli("train", "--data", "synthetic", "--epochs", "2", "--out", tmp_path / "x", *flags, *FAST),
                          needle)
    assert not (tmp_path / "x" / "weights.safetensors").exists()


def test_resume_uses_this_runs_learning_rate(tmp_path):
    """Resuming with another --lr (a rescaled one after changing the global batch, lesson 10) trains with it:
    the checkpoint restores momentum buffers and the schedule's position, not the old settings."""
    from mobilenet_edu.data import build_data
    from mobilenet_edu.engine import lr_factor, recipe, train

    spe = len(build_data("synthetic", None, 32, 500, small_input=True, synthetic_size=512).train)
    base = dict(data="synthetic", width=0.25, batch_size=32, threads=1, epochs=3, out=str(tmp_path / "run"))
    first = train(recipe("full", **base, lr=0.05, max_steps=spe), progress=False)
    assert [r["epoch"] for r in first["history"]] == [1]
    assert first["history"][0]["lr"] == pytest.approx(0.05 * lr_factor(spe, 3 * spe, 0.25, "onecycle", spe))
    second = train(recipe("full", **base, lr=0.2, weight_decay=0.0, resume=True, max_steps=2 * spe), progress=False)
    assert [r["epoch"] for r in second["history"]] == [1, 2]
    assert second["history"][1]["lr"] == pytest.approx(0.2 * lr_factor(2 * spe, 3 * spe, 0.25, "onecycle", spe))
    assert second["recipe"]["lr"] == 0.2
