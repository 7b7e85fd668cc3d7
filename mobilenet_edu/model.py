"""MobileNet v1 (Howard et al. 2017, arXiv 1704.04861), read top to bottom.

The network is the paper's Table 1: a 3x3 stride-2 stem convolution with 32 channels, then 13
depthwise-separable blocks, global average pooling and a linear classifier. Table 1 prints "s2" on the
last depthwise layer (1024 -> 1024); that is a misprint (the 7x7 map would become 4x4, yet the next row and
the 7x7 pooling read 7x7), so the last block has stride 1, as in every released implementation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import MobileNetError

# The paper's Table 1 as data: (output channels, stride) of each depthwise-separable block.
# The stem (3x3 conv, 32 channels, stride 2) comes before these.
STEM_CHANNELS = 32
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),  # Table 1 says s2 here; that is a misprint (see module docstring).
)

MIN_INPUT = 32
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


def scale_channels(channels: int, width: float) -> int:
    """Channels for width multiplier alpha: the nearest integer to ``channels * width``, at least 1.

    For the paper's alphas (1, 0.75, 0.5, 0.25) every product is already an integer, so this reproduces
    Table 6 exactly; other alphas round to nearest (no divisibility constraint, unlike TF's make_divisible).
    """
    return max(1, int(math.floor(channels * width + 0.5)))


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> activation: the one building block of the network."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, act: type[nn.Module]):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            act(inplace=True),
        )


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv (one filter per channel) then 1x1 pointwise conv, each with BN and activation."""

    def __init__(self, cin: int, cout: int, stride: int, act: type[nn.Module]):
        super().__init__()
        self.dw = ConvBNAct(cin, cin, 3, stride, groups=cin, act=act)
        self.pw = ConvBNAct(cin, cout, 1, 1, groups=1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


def check_args(num_classes: int, width: float, in_chans: int, act: str, dropout: float) -> None:
    """Raise MobileNetError with one clear line for constructor arguments that cannot build a network."""
    if not isinstance(width, (int, float)) or not width > 0 or not math.isfinite(width):
        raise MobileNetError(f"width must be a number > 0, got {width!r}")
    if int(num_classes) < 0:
        raise MobileNetError(f"num_classes must be >= 0, got {num_classes}")
    if int(in_chans) < 1:
        raise MobileNetError(f"in_chans must be >= 1, got {in_chans}")
    if act not in ACTIVATIONS:
        raise MobileNetError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    if not 0.0 <= dropout < 1.0:
        raise MobileNetError(f"dropout must be in [0, 1), got {dropout}")


def min_input(small_input: bool) -> int:
    """The smallest input size in px: the total stride, where the last map is one pixel (32; 16 with the stride-1
    stem of ``small_input``)."""
    return MIN_INPUT // 2 if small_input else MIN_INPUT


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Raise MobileNetError with one clear line when ``x`` cannot go through ``model``."""
    if x.dim() != 4:
        raise MobileNetError(f"expected a 4-D batch (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != model.in_chans:
        raise MobileNetError(f"expected {model.in_chans} input channels, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)})")
    least = min_input(getattr(model, "small_input", False))
    if min(x.shape[2], x.shape[3]) < least:
        kind = "the small-input MobileNet v1" if least < MIN_INPUT else "MobileNet v1"
        raise MobileNetError(f"input is {x.shape[2]}x{x.shape[3]} px; {kind} needs at least {least}x{least}")


def init_weights(model: nn.Module) -> None:
    """As torchvision's MobileNetV2: He-normal (fan_out) convs, BN at identity, small-normal classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def feature_info(blocks: nn.Sequential, small_input: bool) -> list[dict]:
    """Where each stride level ends (timm's convention, for backbone use): the last block before a stride-2
    block, and the last block. Strides 2, 4, 8, 16, 32 (1, 2, 4, 8, 16 with ``small_input``)."""
    info, reduction = [], 1 if small_input else 2
    strides = [b.dw[0].stride[0] for b in blocks] + [2]
    for i, block in enumerate(blocks):
        reduction *= strides[i]
        if strides[i + 1] == 2:
            info.append(dict(module=f"blocks.{i}", num_chs=block.pw[0].out_channels, reduction=reduction))
    return info


class MobileNetV1(nn.Module):
    """MobileNet v1 with the paper's width multiplier (``width`` = alpha), for any input of at least 32 px.

    ``small_input=True`` is the variant for 32x32 images (CIFAR): the stem has stride 1 instead of 2, so
    the feature maps are 32, 16, 8, 4, 2 pixels (upscaling the images to 224 first, as the tutorial does, costs
    12.2x the mult-adds); it takes inputs from 16 px. ``act="relu6"`` matches TF-slim and timm.
    """

    def __init__(self, num_classes: int = 1000, width: float = 1.0, in_chans: int = 3,
                 small_input: bool = False, act: str = "relu", dropout: float = 0.0):
        super().__init__()
        check_args(num_classes, width, in_chans, act, dropout)
        self.num_classes, self.width, self.in_chans = int(num_classes), float(width), int(in_chans)
        self.small_input, self.act, self.drop_rate = bool(small_input), act, float(dropout)
        act_layer = ACTIVATIONS[act]

        cin = scale_channels(STEM_CHANNELS, width)
        self.stem = ConvBNAct(in_chans, cin, 3, 1 if small_input else 2, groups=1, act=act_layer)
        blocks = []
        for channels, stride in BLOCKS:  # Table 1, one row per block
            cout = scale_channels(channels, width)
            blocks.append(DepthwiseSeparable(cin, cout, stride, act_layer))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.num_features = cin
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = feature_info(self.blocks, small_input)
        init_weights(self)

    @property
    def arch_args(self) -> dict:
        """The constructor arguments; saved in the model card so weights rebuild their own network."""
        return dict(num_classes=self.num_classes, width=self.width, in_chans=self.in_chans,
                    small_input=self.small_input, act=self.act, dropout=self.drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and the 13 blocks: the last feature map (N, num_features, H/32, W/32; H/16, W/16 with small_input)."""
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            check_input(self, x)
        return self.blocks(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, dropout, classify; ``pre_logits=True`` returns the pooled features instead."""
        x = self.dropout(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature map at the end of each stride level (``feature_info`` says which blocks)."""
        check_input(self, x)
        ends = {f["module"] for f in self.feature_info}
        out, x = [], self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if f"blocks.{i}" in ends:
                out.append(x)
        return out

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0 removes it)."""
        self.num_classes = int(num_classes)
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            nn.init.normal_(self.classifier.weight, 0, 0.01)
            nn.init.zeros_(self.classifier.bias)

    def get_classifier(self) -> nn.Module:
        return self.classifier
