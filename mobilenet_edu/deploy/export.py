"""`mobilenet-edu export`: build the requested file, then prove it answers like the PyTorch model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_weights
from ..data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    FolderBatches,
    FolderDataset,
    TensorBatches,
    folder_transforms,
    load_cifar10,
    scan_folder,
)
from ..errors import MobileNetError
from ..model import MIN_INPUT, MobileNetV1
from ..pretrained import resolve_weights
from ..settings import data_root
from .parity import check_parity, format_parity, parity


def model_and_card(weights: str | None, width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                   small_input: bool = False) -> tuple[MobileNetV1, dict]:
    """Trained weights with their card, or an untrained model of the given shape with a generic card."""
    if weights:
        model = load_weights(resolve_weights(weights))
        return model, model.pretrained_cfg
    size = 32 if small_input and resolution == 224 else resolution
    if size < MIN_INPUT:
        raise MobileNetError(f"--resolution {size} is below the minimum of {MIN_INPUT} px")
    if num_classes < 1:
        raise MobileNetError(f"--num-classes must be >= 1, got {num_classes}")
    torch.manual_seed(0)
    model = MobileNetV1(num_classes=num_classes, width=width, small_input=small_input).eval()
    cifar = small_input and num_classes == 10
    card = {"arch": model.arch_args, "mean": list(CIFAR10_MEAN if cifar else IMAGENET_MEAN),
            "std": list(CIFAR10_STD if cifar else IMAGENET_STD), "input_size": size,
            "classes": list(CIFAR10_CLASSES) if cifar else [f"class{i}" for i in range(num_classes)],
            "dataset": None, "note": "untrained weights (shape-only export for benchmarks)"}
    return model, card


def _cifar(card: dict, data_dir: str | None):
    if card.get("dataset") != "cifar10":
        return None
    return load_cifar10(data_root(data_dir))


def parity_batches(card: dict, data_dir: str | None, n: int | None = None, batch: int = 500) -> list:
    """Real images for the parity check: the CIFAR-10 test set for CIFAR weights; otherwise random images."""
    c = _cifar(card, data_dir)
    if c is not None:
        x, y = c[2], c[3]
        if n:
            x, y = x[:n], y[:n]
        return list(TensorBatches(x, y, batch, card["mean"], card["std"], False, channels_last=False))
    g = torch.Generator().manual_seed(0)
    size, ch = int(card["input_size"]), int(card["arch"].get("in_chans", 3))
    n = n or 256
    x01 = torch.rand(n, ch, size, size, generator=g)
    mean = torch.tensor(card["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(card["std"]).view(1, -1, 1, 1)
    return [((x01[i:i + 32] - mean) / std) for i in range(0, n, 32)]


def calibration01(card: dict, calib_data: str | None, data_dir: str | None, n: int = 512) -> np.ndarray:
    """[0, 1]-scaled calibration images (N, C, H, W) from the weights' training data (never the test set)."""
    size = int(card["input_size"])
    src = calib_data or ("cifar10" if card.get("dataset") == "cifar10" else "synthetic")
    if src == "cifar10":
        x = load_cifar10(data_root(data_dir))[0]
        g = torch.Generator().manual_seed(0)
        x = x[torch.randperm(len(x), generator=g)[:n]].float() / 255
        if size != x.shape[-1]:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear")
        return x.numpy()
    if src == "synthetic":
        g = torch.Generator().manual_seed(1)
        return torch.rand(n, int(card["arch"].get("in_chans", 3)), size, size, generator=g).numpy()
    root = Path(src).expanduser()
    root = root / "train" if (root / "train").is_dir() else root
    _, samples = scan_folder(root)
    samples = samples[:: max(1, len(samples) // n)][:n]
    fb = FolderBatches(FolderDataset(samples, folder_transforms(size, False, card["mean"], card["std"])), 32,
                       False, channels_last=False)
    mean = torch.tensor(card["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(card["std"]).view(1, -1, 1, 1)
    out = [(xb * std + mean).numpy() for xb, _ in fb]
    if not out:
        raise MobileNetError(f"no readable calibration images in {root}")
    return np.concatenate(out)


def export(a) -> dict:
    """Run the export the CLI asked for; prints the parity line; raises MobileNetError if parity fails."""
    from .onnx import OnnxRunner, export_onnx, quantize_onnx_int8

    model, card = model_and_card(a.weights, a.width, a.resolution, a.num_classes, a.small_input)
    out = Path(a.out)
    n = getattr(a, "parity_size", None)
    precision = "fp32"
    if a.format == "onnx":
        export_onnx(model, card, out)
        runner = OnnxRunner(out)
    elif a.format == "onnx-int8":
        calib = calibration01(card, a.calib_data, a.data_dir, a.calib_size)
        with tempfile.TemporaryDirectory() as td:
            fp32 = export_onnx(model, card, os.path.join(td, "fp32.onnx"))
            quantize_onnx_int8(fp32, out, calib)
        runner, precision = OnnxRunner(out), "int8"
    elif a.format in ("executorch", "executorch-int8"):
        from .executorch import PteRunner, export_executorch

        calib = None
        if a.format == "executorch-int8":
            calib, precision = calibration01(card, a.calib_data, a.data_dir, a.calib_size), "int8"
        export_executorch(model, card, out, calib01=calib)
        runner = PteRunner(out)
    elif a.format == "tensorrt":
        from .tensorrt import TrtRunner, available, build_engine

        why = available()
        if why:
            raise MobileNetError(why)
        with tempfile.TemporaryDirectory() as td:
            fp32 = export_onnx(model, card, os.path.join(td, "fp32.onnx"))
            build_engine(fp32, out, card, "fp16")
        runner, precision = TrtRunner(out, card), "fp16"
    else:
        raise MobileNetError(f"unknown --format {a.format}")
    res = parity(model, runner, parity_batches(card, a.data_dir, n))
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({size_mb:.2f} MB)")
    print(format_parity(res, precision))
    if card.get("dataset") is None and precision != "fp32":
        # Untrained logits are all near zero, so their argmax is noise: only fp32 parity means anything.
        print("(untrained weights: low-precision agreement is not meaningful and is not checked)")
        return res
    try:
        check_parity(res, precision)
    except MobileNetError as e:
        raise MobileNetError(f"{e}; the file is kept at {out} for inspection") from None
    return res
