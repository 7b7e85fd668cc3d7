"""The popular tutorial this series replaces, reproduced so its mistakes can be measured, not just named.

Its network has 12 depthwise-separable blocks (one of the paper's five 512-channel blocks is missing) and a
bias on every convolution before BatchNorm (wasted: BatchNorm subtracts it again, notebook 03). Its data
path upscales 32x32 CIFAR images to 256 and crops 224 (about 12x the mult-adds of the 32x32 small-input
network, notebook 06) with per-image PIL transforms, and applies the same random augmentation to the test
set (notebook 06 shows what that does to the measured accuracy, with ``tutorial_crop``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The tutorial's 12 blocks: (output channels, stride). The paper's Table 1 has five 512/s1 blocks; this has four.
TUTORIAL_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                   (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def tutorial_mobilenet(num_classes: int = 10) -> nn.Sequential:
    """The tutorial's network: a 3x3 stride-2 stem, 12 blocks, a bias on every conv, then BN and ReLU."""

    def conv_bn_relu(cin: int, cout: int, k: int, s: int, groups: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=True), nn.BatchNorm2d(cout), nn.ReLU(True)]

    layers, cin = conv_bn_relu(3, 32, 3, 2), 32
    for cout, stride in TUTORIAL_BLOCKS:
        layers += conv_bn_relu(cin, cin, 3, stride, groups=cin) + conv_bn_relu(cin, cout, 1, 1)
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


def tutorial_transform():
    """The tutorial's PIL pipeline: resize to 256, random 224 crop, flip, ImageNet normalisation.

    The tutorial used this same random transform for its test set too (the mistake notebook 06 measures);
    our evaluation uses no augmentation at all.
    """
    from torchvision import transforms as T

    return T.Compose([T.Resize(256), T.RandomCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def tutorial_crop(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], seed: int,
                  crop: int = 28) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The tutorial's random test transform brought down to 32 px, on batches of normalised images: a random
    ``crop`` x ``crop`` window (a 224 crop of 256 keeps 7/8 of each side: 28 of 32), enlarged back to full size
    (bilinear), mirrored half of the time. Yields (images, labels) in channels_last, as ``TensorBatches`` does.
    The draws come from ``seed`` alone: the same seed gives the same views."""
    g = torch.Generator().manual_seed(seed)
    for x, y in batches:
        n, size = len(x), x.shape[-1]
        top = torch.randint(0, size - crop + 1, (n,), generator=g).tolist()
        left = torch.randint(0, size - crop + 1, (n,), generator=g).tolist()
        mirror = torch.rand(n, generator=g) < 0.5
        windows = torch.stack([img[:, t:t + crop, c:c + crop] for img, t, c in zip(x, top, left)])
        windows = F.interpolate(windows, size=(size, size), mode="bilinear", align_corners=False)
        windows = torch.where(mirror[:, None, None, None], windows.flip(3), windows)
        yield windows.contiguous(memory_format=torch.channels_last), y
