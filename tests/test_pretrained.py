import json

import pytest
import torch
from conftest import CIFAR_DIR, assert_one_line_error, needs_cifar

import mobilenet_edu
from mobilenet_edu.pretrained import available

SHIPPED = "cifar10" in available()
needs_weights = pytest.mark.skipif(not SHIPPED, reason="no shipped cifar10 weights in this checkout")
# Issue #3's bar for the shipped alpha=1.0 weights: >= 90.0% single-view top-1 on the 10,000 test images
# (they measured 90.65%; the card's figure is re-measured below).
FLOOR = 90.0


@needs_weights
def test_load_pretrained_has_its_card():
    m = mobilenet_edu.load_pretrained("cifar10")
    cfg = m.pretrained_cfg
    assert not m.training and m.width == 1.0 and m.small_input
    assert cfg["input_size"] == 32 and len(cfg["classes"]) == 10 and cfg["classes"][0] == "airplane"
    assert len(cfg["mean"]) == 3 and len(cfg["std"]) == 3 and cfg["dataset"] == "cifar10"
    assert cfg["metrics"]["top1"] >= FLOOR and cfg["wall_time_s"] > 0 and "recipe" in cfg and "machine" in cfg
    for p in mobilenet_edu.pretrained.WEIGHTS_DIR.glob("*.safetensors"):
        assert p.stat().st_size < 20e6


@needs_weights
@needs_cifar
def test_shipped_weights_reproduce_their_card_on_the_test_set(cli, tmp_path):
    r = cli("eval", "--weights", "cifar10", "--data", "cifar10", "--data-dir", CIFAR_DIR, "--json",
            "--plot", tmp_path / "cm.png")
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert d["n"] == 10000 and d["top1"] >= FLOOR, d
    card_top1 = mobilenet_edu.load_pretrained("cifar10").pretrained_cfg["metrics"]["top1"]
    assert d["top1"] == pytest.approx(card_top1, abs=0.02)
    assert (tmp_path / "cm.png").stat().st_size > 0


@needs_weights
def test_predict_with_shipped_name(cli, tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 48), (30, 90, 200)).save(tmp_path / "blue.png")
    r = cli("predict", "--weights", "cifar10", "--json", tmp_path / "blue.png")
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)[0]["top"]
    classes = mobilenet_edu.load_pretrained("cifar10").pretrained_cfg["classes"]
    assert len(top) == 5 and all(c in classes for c, _ in top)


def test_unknown_pretrained_name_is_one_clear_error(cli):
    with pytest.raises(mobilenet_edu.MobileNetError, match="no shipped weights"):
        mobilenet_edu.load_pretrained("imagenet-w9")
    assert_one_line_error(cli("predict", "--weights", "imagenet-w9", "x.png"), "imagenet-w9")


def test_init_from_timm_state_dict(cli, tmp_path):
    timm = pytest.importorskip("timm")
    torch.save(timm.create_model("mobilenetv1_100").state_dict(), tmp_path / "timm.pth")
    r = cli("train", "--data", "synthetic", "--synthetic-size", "64", "--epochs", "1", "--batch-size", "16",
            "--init", tmp_path / "timm.pth", "--out", tmp_path / "run", "--no-tta")
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["arch"]["act"] == "relu6" and card["arch"]["num_classes"] == 10 and card["arch"]["small_input"]


@needs_cifar
def test_shipped_classroom_weights_reproduce_their_card():
    """The classroom recipe's reference run (README, notebook 07): its test top-1 re-measured in-process."""
    from mobilenet_edu.data import TensorBatches, load_cifar10
    from mobilenet_edu.engine import evaluate

    m = mobilenet_edu.load_pretrained("cifar10-classroom")
    card = m.pretrained_cfg
    assert card["recipe"]["recipe"] == "classroom" and card["arch"]["width"] == 0.5
    assert [r["epoch"] for r in card["history"]] == list(range(1, card["recipe"]["epochs"] + 1))
    _, _, x, y = load_cifar10(CIFAR_DIR)
    r = evaluate(m, TensorBatches(x, y, 1000, card["mean"], card["std"], train=False), 10)
    assert r["n"] == 10000 and r["top1"] == pytest.approx(card["metrics"]["top1"], abs=0.02)
