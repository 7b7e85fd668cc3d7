"""Parameters and mult-adds per layer and per layer type, as in the paper's Table 2."""

from __future__ import annotations

import torch
from torch import nn

from .errors import MobileNetError
from .model import MIN_INPUT, MobileNetV1

LAYER_TYPES = ("conv", "depthwise", "pointwise", "fc")


def layer_type(m: nn.Module) -> str | None:
    """Table 2's rows: the full stem conv, depthwise 3x3, pointwise 1x1, fully connected."""
    if isinstance(m, nn.Linear):
        return "fc"
    if isinstance(m, nn.Conv2d):
        if m.groups > 1 and m.groups == m.in_channels:
            return "depthwise"
        if m.kernel_size == (1, 1):
            return "pointwise"
        return "conv"
    return None


def conv_macs(conv: nn.Conv2d, out_h: int, out_w: int) -> int:
    """Mult-adds of one convolution: D_K * D_K * (M / groups) * N * D_F * D_F.

    The paper's formula for a standard convolution (Sec. 3.1) is D_K * D_K * M * N * D_F * D_F; with
    ``groups`` each output channel sees only M / groups input channels (1 for a depthwise convolution).
    """
    kh, kw = conv.kernel_size
    return kh * kw * (conv.in_channels // conv.groups) * conv.out_channels * out_h * out_w


@torch.no_grad()
def layer_rows(model: nn.Module, resolution: int, in_chans: int = 3) -> list[dict]:
    """One row per convolution and linear layer that one ``resolution`` x ``resolution`` image passes through,
    in the order it passes: name, Table 2 type, output shape, weight count and mult-adds. Works for any network
    built of ``nn.Conv2d`` and ``nn.Linear`` layers (VGG, the tutorial's network), not only ``MobileNetV1``."""
    rows: list[dict] = []
    hooks = []
    for name, m in model.named_modules():
        t = layer_type(m)
        if t is None:
            continue

        def hook(mod, inp, out, name=name, t=t):
            macs = mod.in_features * mod.out_features if t == "fc" else conv_macs(mod, out.shape[2], out.shape[3])
            rows.append({"name": name, "type": t, "shape": list(out.shape[1:]),
                         "params": mod.weight.numel(), "macs": int(macs)})

        hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        model(torch.zeros(1, in_chans, resolution, resolution))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return rows


def count_macs(model: nn.Module, resolution: int, in_chans: int = 3) -> int:
    """Mult-adds of one ``resolution`` x ``resolution`` image through any conv/linear network (``layer_rows``)."""
    return sum(r["macs"] for r in layer_rows(model, resolution, in_chans))


def profile(model: MobileNetV1, resolution: int = 224) -> dict:
    """Per-layer rows and totals for one ``resolution`` x ``resolution`` image.

    As in the paper, the per-type parameter counts include only conv/linear weight tensors (no BN, no
    bias); ``params`` counts every trainable parameter. Mult-adds count conv and linear layers only.
    """
    if resolution < MIN_INPUT:
        raise MobileNetError(f"resolution {resolution} px is below the minimum of {MIN_INPUT}")
    rows = layer_rows(model, resolution, model.in_chans)
    by_type = {t: {"params": 0, "macs": 0} for t in LAYER_TYPES}
    for r in rows:
        by_type[r["type"]]["params"] += r["params"]
        by_type[r["type"]]["macs"] += r["macs"]
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = sum(r["macs"] for r in rows)
    return {"resolution": resolution, "width": model.width, "small_input": model.small_input,
            "num_classes": model.num_classes, "params": params, "macs": macs, "by_type": by_type,
            "layers": rows}


def format_table(p: dict) -> str:
    """The layer table and Table 2-style shares as text."""
    lines = [f"{'layer':<18}{'type':<11}{'output':>16}{'params':>12}{'mult-adds':>14}"]
    for r in p["layers"]:
        shape = "x".join(str(s) for s in r["shape"])
        lines.append(f"{r['name']:<18}{r['type']:<11}{shape:>16}{r['params']:>12,}{r['macs']:>14,}")
    wp = sum(v["params"] for v in p["by_type"].values())
    lines.append("")
    lines.append(f"{'type (Table 2)':<18}{'mult-adds':>14}{'share':>9}{'params':>12}{'share':>9}")
    for t, v in p["by_type"].items():
        lines.append(f"{t:<18}{v['macs']:>14,}{v['macs'] / p['macs'] * 100:>8.2f}%"
                     f"{v['params']:>12,}{v['params'] / max(wp, 1) * 100:>8.2f}%")
    lines.append("")
    lines.append(f"total: {p['params']:,} parameters ({p['params'] / 1e6:.3f} M), "
                 f"{p['macs']:,} mult-adds ({p['macs'] / 1e6:.1f} M) at {p['resolution']}x{p['resolution']}, "
                 f"width {p['width']:g}{', small input' if p['small_input'] else ''}")
    return "\n".join(lines)
