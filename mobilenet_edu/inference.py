"""Run any saved model (our safetensors, a shipped name, ONNX, ExecuTorch) on data or image files."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_weights
from .data import FolderBatches, FolderDataset, build_data, folder_transforms, image_tensor, open_image, scan_folder
from .engine import evaluate
from .errors import MobileNetError
from .pretrained import resolve_weights


def load_runner(weights: str):
    """``(callable logits = f(x), card)`` for a weights file of any supported format."""
    path = resolve_weights(weights)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .deploy.onnx import OnnxRunner

        r = OnnxRunner(path)
        return r, r.card
    if suffix == ".pte":
        from .deploy.executorch import PteRunner

        r = PteRunner(path)
        return r, r.card
    model = load_weights(path)
    return model, model.pretrained_cfg


def _check_input_channels(card: dict) -> None:
    chans = card.get("arch", {}).get("in_chans", 3)
    if chans != 3:
        raise MobileNetError(f"these weights expect {chans} input channels, but images are read as 3-channel RGB")


def evaluate_weights(weights: str, data: str, data_dir: str | None, tta: bool = False, batch_size: int = 500,
                     plot: str | None = None) -> dict:
    """Score ``weights`` on the test split of ``data`` using the normalisation and input size of its card."""
    runner, card = load_runner(weights)
    _check_input_channels(card)
    mean, std, size = card["mean"], card["std"], int(card["input_size"])
    p = Path(data).expanduser()
    if data not in ("cifar10", "synthetic") and p.is_dir():
        root = p / "val" if (p / "val").is_dir() else p
        classes, samples = scan_folder(root)
        test = FolderBatches(FolderDataset(samples, folder_transforms(size, False, mean, std)), batch_size, False)
        name = str(p)
    else:
        d = build_data(data, data_dir, batch_size=batch_size, eval_batch_size=batch_size, mean=mean, std=std,
                       input_size=size, num_classes=len(card["classes"]))
        test, classes, name = d.test, d.classes, d.name
    if len(classes) != len(card["classes"]):
        raise MobileNetError(f"the weights have {len(card['classes'])} classes but {name} has {len(classes)}")
    r = evaluate(runner, test, len(classes), tta=tta)
    r.update(classes=classes, data=name, name=str(weights))
    skipped = getattr(test, "skipped", ())
    r["skipped"] = len(skipped)
    if plot:
        from .plots import plot_confusion

        r["plot"] = str(plot_confusion(r["confusion"], classes, plot,
                                       title=f"{Path(str(weights)).name} on {name}: top-1 {r['top1']:.2f}%"))
    return r


@torch.no_grad()
def predict_files(weights: str, images: list[str], top_k: int = 5) -> list[dict]:
    """Top-k (class, probability) for each image file; unreadable files raise MobileNetError."""
    runner, card = load_runner(weights)
    _check_input_channels(card)
    crop = float(card.get("crop_pct", 0.875))
    tensors = [image_tensor(open_image(f), int(card["input_size"]), card["mean"], card["std"], crop) for f in images]
    out = []
    for f, x in zip(images, tensors):
        prob = torch.softmax(runner(x).float(), 1)[0]
        k = min(top_k, prob.numel())
        v, i = prob.topk(k)
        out.append({"image": str(f), "top": [(card["classes"][j], round(float(pv), 6)) for pv, j in zip(v, i)]})
    return out
