"""Build our MobileNetV1 from a timm ``mobilenetv1_100`` / ``mobilenetv1_125`` state dict.

timm names the layers ``conv_stem``/``bn1`` (stem), ``blocks.<stage>.<i>.conv_dw/bn1/conv_pw/bn2`` (the 13
blocks in 5 stages of 1, 2, 2, 6, 2) and ``classifier``; its activations are ReLU6.
"""

from __future__ import annotations

import re

import torch

from .errors import MobileNetError
from .model import BLOCKS, STEM_CHANNELS, MobileNetV1, scale_channels

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _width_from(state: dict) -> float:
    stem = state["conv_stem.weight"].shape[0]
    for w in (stem / STEM_CHANNELS, round(stem / STEM_CHANNELS * 4) / 4):
        if scale_channels(STEM_CHANNELS, w) == stem:
            return float(w)
    return stem / STEM_CHANNELS


def from_timm(state_dict: dict) -> MobileNetV1:
    """A MobileNetV1 (``act="relu6"``) holding the weights of a timm MobileNet v1 state dict.

    Width and class count are read from the tensors; the result is in eval mode.
    """
    state = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "conv_stem.weight" not in state:
        raise MobileNetError("not a timm MobileNet v1 state dict (no 'conv_stem.weight')")
    block_keys = sorted({tuple(int(n) for n in m.groups()) for k in state
                         if (m := re.match(r"blocks\.(\d+)\.(\d+)\.conv_dw\.weight$", k))})
    if len(block_keys) != len(BLOCKS):
        raise MobileNetError(f"timm state dict has {len(block_keys)} depthwise-separable blocks, "
                             f"expected {len(BLOCKS)}")
    in_chans = state["conv_stem.weight"].shape[1]
    has_fc = "classifier.weight" in state
    num_classes = state["classifier.weight"].shape[0] if has_fc else 0
    model = MobileNetV1(num_classes=num_classes, width=_width_from(state), in_chans=in_chans, act="relu6")
    ours: dict[str, torch.Tensor] = {"stem.0.weight": state["conv_stem.weight"]}
    for f in _BN:
        ours[f"stem.1.{f}"] = state[f"bn1.{f}"]
    for i, (s, j) in enumerate(block_keys):
        p = f"blocks.{s}.{j}."
        ours[f"blocks.{i}.dw.0.weight"] = state[p + "conv_dw.weight"]
        ours[f"blocks.{i}.pw.0.weight"] = state[p + "conv_pw.weight"]
        for f in _BN:
            ours[f"blocks.{i}.dw.1.{f}"] = state[p + f"bn1.{f}"]
            ours[f"blocks.{i}.pw.1.{f}"] = state[p + f"bn2.{f}"]
    if has_fc:
        ours["classifier.weight"] = state["classifier.weight"]
        ours["classifier.bias"] = state["classifier.bias"]
    from .checkpoint import load_state_checked

    load_state_checked(model, ours, source="timm weights")
    return model.eval()
