import json

import pytest
import torch
from testkit import CIFAR_DIR, assert_one_line_error, needs_cifar

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


# ----------------------------------------------------------------------------------------------------
# The shipped weights re-measured on the full test set, and what lesson 08 (and its exercises) says about them.
# The lesson runs with any weights (its WEIGHTS variable) and on 1,000 images under the quick switch, so the
# checks that hold only for the shipped weights on all 10,000 images live here.


def _answers(name: str) -> dict:
    """Every test image's logits, and its mirror image's, for the shipped weights ``name`` (batches of 500, as
    lesson 08 evaluates them)."""
    from mobilenet_edu.data import TensorBatches, load_cifar10

    m = mobilenet_edu.load_pretrained(name)
    card = m.pretrained_cfg
    _, _, x, y = load_cifar10(CIFAR_DIR)
    batches = TensorBatches(x, y, 500, card["mean"], card["std"], train=False)
    with torch.no_grad():
        logits = torch.cat([m(b) for b, _ in batches])
        mirror = torch.cat([m(b.flip(3)) for b, _ in batches])
    pred = logits.argmax(1)
    confusion = torch.bincount(y * 10 + pred, minlength=100).view(10, 10)
    return {"model": m, "card": card, "x": x, "y": y, "logits": logits, "mirror": mirror, "confusion": confusion,
            "right": pred == y, "confidence": logits.softmax(1).max(1).values,
            "per_class": 100 * confusion.diag().double() / confusion.sum(1)}


@pytest.fixture(scope="module")
def cifar10():
    return _answers("cifar10")


@pytest.fixture(scope="module")
def classroom():
    return _answers("cifar10-classroom")


@needs_weights
@needs_cifar
@pytest.mark.parametrize("which", ["cifar10", "classroom"])
def test_shipped_weights_reproduce_every_figure_of_their_card(which, request):
    """Lesson 08's 'the result is the figure on the card': top-1, top-5 and flip-TTA top-1 on all 10,000 test
    images, to within one image (the cards were measured on a CPU; another CPU may round one close call)."""
    a = request.getfixturevalue(which)
    card, y, n = a["card"], a["y"], len(a["y"])
    assert n == card["metrics"]["n"] == 10_000 and card["machine"]["device"] == "cpu"
    top5 = (a["logits"].topk(5, 1).indices == y[:, None]).any(1)
    tta = (0.5 * (a["logits"] + a["mirror"])).argmax(1) == y
    measured = {"top1": a["right"].double().mean() * 100, "top5": top5.double().mean() * 100,
                "top1_flip_tta": tta.double().mean() * 100}
    for k, v in measured.items():
        assert abs(v.item() - card["metrics"][k]) < 0.015, (which, k, v.item(), card["metrics"][k])


@needs_cifar
def test_shipped_classroom_weights_are_the_classroom_recipe(classroom):
    """The classroom recipe's reference run (README, lesson 07): its card describes that recipe."""
    m, card = classroom["model"], classroom["card"]
    assert card["recipe"]["recipe"] == "classroom" and card["arch"]["width"] == 0.5 and m.width == 0.5
    assert [r["epoch"] for r in card["history"]] == list(range(1, card["recipe"]["epochs"] + 1))
    # trained for its 10-minute time budget (lesson 07 re-plans from the speed its card keeps): the plan it made is
    # the epochs it trained, and its training ended within the budget
    budget = card["budget"]
    assert budget["minutes"] == 10 and budget["plan"]["epochs"] == card["epochs_done"] == card["recipe"]["epochs"]
    assert card["train_time_s"] <= budget["used_s"] <= 600 and card["metrics"]["top1"] >= 85


@needs_weights
@needs_cifar
def test_lesson_08_findings_hold_for_the_shipped_weights(cifar10):
    a = cifar10
    classes, confusion, per_class, y = a["card"]["classes"], a["confusion"], a["per_class"], a["y"]
    # Accuracy per class: the vehicles easy, the animals hard, cats above all; a wide spread.
    assert classes[per_class.argmin()] == "cat" and classes[per_class.argmax()] == "automobile"
    assert 100 - per_class.min() > 4 * (100 - per_class.max())
    # The confusion matrix, each pair of classes once (both directions added): cat and dog first; among the next five,
    # trucks and automobiles, airplanes and ships, and the rest pairs of small animals; a frog is rarely a truck.
    mistakes = confusion.clone().fill_diagonal_(0)
    pairs = (mistakes + mistakes.T).triu().flatten().sort(descending=True, stable=True).indices[:6].tolist()
    top = [{classes[i] for i in divmod(cell, 10)} for cell in pairs]
    assert top[0] == {"cat", "dog"}
    assert {"automobile", "truck"} in top[1:] and {"airplane", "ship"} in top[1:]
    small_animals = {"bird", "cat", "frog", "deer"}
    assert all(pair <= small_animals for pair in top[1:] if pair not in ({"automobile", "truck"}, {"airplane", "ship"}))
    assert confusion[classes.index("frog"), classes.index("truck")] <= 2
    # Label smoothing 0.1: no answer, right or wrong, near 100%.
    assert a["card"]["recipe"]["label_smoothing"] == 0.1 and a["confidence"].max() < 0.97
    # Flip-TTA fixes some answers and breaks others; the net gain is the card's difference, in images.
    tta_right = (0.5 * (a["logits"] + a["mirror"])).argmax(1) == y
    fixed, broken = (tta_right & ~a["right"]).sum().item(), (a["right"] & ~tta_right).sum().item()
    metrics = a["card"]["metrics"]
    assert fixed > 100 and broken > 100 and fixed - broken == round((metrics["top1_flip_tta"] - metrics["top1"]) * 100)


@needs_weights
@needs_cifar
def test_lesson_08_exercises_hold_for_the_shipped_weights(cifar10, classroom):
    a = cifar10
    classes, confusion, confidence, right = a["card"]["classes"], a["confusion"], a["confidence"], a["right"]
    # Exercise 1: the lowest precision is cat's, and its false alarms are mostly dogs.
    precision = confusion.diag() / confusion.sum(0)
    low = precision.argmin().item()
    column = confusion[:, low].clone()
    column[low] = 0
    assert classes[low] == "cat" and classes[column.argmax()] == "dog"
    # Exercise 2: a confidence threshold that rejects 100 noise images rejects a large share of the real test
    # images too, most of them answered right.
    card, m = a["card"], a["model"]
    noise = torch.rand(100, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(card["mean"]).view(1, 3, 1, 1), torch.tensor(card["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        noise_conf = m((noise - mean) / std).softmax(1).max(1).values
    below = confidence <= noise_conf.max()
    assert noise_conf.median() > 0.5 and below.sum() > 3000 and (below & right).sum() > 0.7 * below.sum()
    # Exercise 3: the solution compares WEIGHTS with cifar10-classroom unless WEIGHTS' card names the classroom recipe,
    # then with cifar10; the classroom network loses on every class, most on cat, and most where cifar10 is weakest.
    assert a["card"]["recipe"].get("recipe") != "classroom" and classroom["card"]["recipe"]["recipe"] == "classroom"
    lost = a["per_class"] - classroom["per_class"]
    assert (lost > 0).all() and classes[lost.argmax()] == "cat"
    assert torch.corrcoef(torch.stack([lost, 100 - a["per_class"]]))[0, 1] > 0.5
