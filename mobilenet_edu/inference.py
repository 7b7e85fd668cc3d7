"""Run any saved model (our safetensors, a shipped name, ONNX, ExecuTorch) on data or image files."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_weights
from .data import (
    FolderBatches,
    FolderDataset,
    build_data,
    folder_transforms,
    image_tensor,
    open_image,
    scan_folder,
)
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
    """Score ``weights`` on the test split of ``data`` using the normalisation and input size of its card.

    ``top1``/``top5`` are single-view; with ``tta=True`` the flip test-time-augmentation figures are added as
    ``top1_flip_tta``/``top5_flip_tta``.
    """
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
    r = evaluate(runner, test, len(classes))
    if tta:  # the single-view figure stays the headline; flip-TTA is reported beside it, named as such
        t = evaluate(runner, test, len(classes), tta=True)
        r.update(top1_flip_tta=t["top1"], top5_flip_tta=t["top5"])
    r.update(classes=classes, data=name, name=str(weights))
    skipped = getattr(test, "skipped", ())
    r["skipped"] = len(skipped)
    if plot:
        from .plots import plot_confusion

        r["plot"] = str(plot_confusion(r["confusion"], classes, plot,
                                       title=f"{Path(str(weights)).name} on {name}: top-1 {r['top1']:.2f}%"))
    return r


class Predictor:
    """A saved model (any format) with its card, ready to name the class of any image."""

    def __init__(self, weights: str):
        self.runner, self.card = load_runner(weights)
        _check_input_channels(self.card)
        self.classes = self.card["classes"]

    @torch.no_grad()
    def predict(self, image, top_k: int = 5, name: str | None = None) -> list[tuple[str, float]]:
        """Top-k ``(class, probability)`` for a PIL image, a file path or the bytes of a file.

        Any size or mode works (gray, RGBA, palette, 16-bit); a file that is not a readable image raises
        MobileNetError with one line.
        """
        if not hasattr(image, "mode"):
            image = open_image(image, name)
        else:
            from .data import pil_to_rgb
            image = pil_to_rgb(image)
        x = image_tensor(image, int(self.card["input_size"]), self.card["mean"], self.card["std"],
                         float(self.card.get("crop_pct", 0.875)))
        prob = torch.softmax(self.runner(x).float(), 1)[0]
        v, i = prob.topk(min(top_k, prob.numel()))
        return [(self.classes[j], round(float(pv), 6)) for pv, j in zip(v, i)]


def predict_files(weights: str, images: list[str], top_k: int = 5) -> list[dict]:
    """Top-k for each image file: ``{"image", "top"}``, or ``{"image", "error"}`` for a file that cannot be
    read; one bad file never stops the others."""
    predictor = Predictor(weights)
    out = []
    for f in images:
        try:
            out.append({"image": str(f), "top": predictor.predict(f, top_k)})
        except MobileNetError as e:
            out.append({"image": str(f), "error": str(e)})
    return out
