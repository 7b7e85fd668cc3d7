"""Training throughput: this project's default CIFAR-10 recipe vs the tutorial's recipe, in one run.

Default recipe: MobileNetV1(small_input=True), 32x32 input, channels_last, in-memory uint8 data with per-batch
tensor augmentation, SGD, batch 128.
Tutorial recipe (the baseline this project replaces): a 3->32 stride-2 stem, only 12 depthwise-separable
blocks, every conv with a bias then BN and ReLU; CIFAR images resized to 256, randomly cropped to 224,
flipped, ImageNet-normalised (torchvision transforms on PIL images); batch 128; RMSprop lr 1e-3, momentum 0.9.

Each recipe runs in its own subprocess so its peak RSS is its own. Prints img/s, the ratio, and peak RSS.

    python benchmarks/train_throughput.py [--data-dir ../shared/datasets] [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
from torch import nn


def tutorial_model(num_classes: int = 10) -> nn.Module:
    def cbr(cin, cout, k, s, groups=1):
        return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=True), nn.BatchNorm2d(cout), nn.ReLU(True)]

    layers = cbr(3, 32, 3, 2)
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 4 + [(1024, 2), (1024, 1)]
    cin = 32
    for cout, s in cfg:  # 12 blocks: one 512 block short of the paper's 13
        layers += cbr(cin, cin, 3, s, groups=cin) + cbr(cin, cout, 1, 1)
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


def _cifar_or_synthetic(data_dir):
    from mobilenet_edu.data import load_cifar10, synthetic

    try:
        x, y, _, _ = load_cifar10(data_dir, download=False)
        return x, y, "cifar10"
    except Exception:
        x, y = synthetic(50000, 10, 32)
        return x, y, "synthetic (CIFAR-10 not found)"


def worker_default(a) -> dict:
    from mobilenet_edu import MobileNetV1
    from mobilenet_edu.data import CIFAR10_MEAN, CIFAR10_STD, TensorBatches
    from mobilenet_edu.engine import TrainConfig, make_optimizer

    x, y, src = _cifar_or_synthetic(a.data_dir)
    batches = TensorBatches(x, y, 128, CIFAR10_MEAN, CIFAR10_STD, True)
    model = MobileNetV1(10, small_input=True).to(memory_format=torch.channels_last).train()
    opt = make_optimizer(model, TrainConfig())
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    return _loop(model, opt, crit, iter(batches), a.steps, src)


def worker_tutorial(a) -> dict:
    from PIL import Image
    from torchvision import transforms as T

    x, y, src = _cifar_or_synthetic(a.data_dir)
    tf = T.Compose([T.Resize(256), T.RandomCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    imgs = x.permute(0, 2, 3, 1).numpy()

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            idx = torch.randint(0, len(x), (128,), generator=g)
            yield torch.stack([tf(Image.fromarray(imgs[i])) for i in idx.tolist()]), y[idx]

    model = tutorial_model().train()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
    return _loop(model, opt, nn.CrossEntropyLoss(), batches(), a.steps, src)


def _loop(model, opt, crit, it, steps, src) -> dict:
    warm = 2
    n, t0 = 0, None
    for i in range(warm + steps):
        if i == warm:
            t0, n = time.perf_counter(), 0
        xb, yb = next(it)  # data time is part of the recipe's cost
        loss = crit(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(yb)
    dt = time.perf_counter() - t0
    return {"img_per_s": n / dt, "steps": steps, "data": src,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CIFAR_DIR", "../shared/datasets"))
    ap.add_argument("--steps", type=int, default=20, help="timed steps of the default recipe")
    ap.add_argument("--tutorial-steps", type=int, default=3, help="timed steps of the tutorial recipe")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", choices=["default", "tutorial"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.worker:
        print(json.dumps((worker_default if a.worker == "default" else worker_tutorial)(a)))
        return
    res = {}
    for name, steps in (("default", a.steps), ("tutorial", a.tutorial_steps)):
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--steps", str(steps), "--threads",
                              str(a.threads), "--data-dir", a.data_dir], capture_output=True, text=True, check=True)
        res[name] = json.loads(out.stdout.strip().splitlines()[-1])
    d, t = res["default"], res["tutorial"]
    print(f"data: {d['data']}; {a.threads} threads; batch 128")
    print(f"{'recipe':<48}{'img/s':>9}{'peak RSS':>11}")
    print(f"{'default (32x32 small-input, channels_last, SGD)':<48}{d['img_per_s']:>9.1f}{d['peak_rss_gb']:>9.2f} GB")
    print(f"{'tutorial (12 blocks, 224x224 upscaled, RMSprop)':<48}{t['img_per_s']:>9.1f}{t['peak_rss_gb']:>9.2f} GB")
    print(f"ratio default / tutorial: {d['img_per_s'] / t['img_per_s']:.1f}x")
    print(f"epoch of 50,000 images: default {50000 / d['img_per_s'] / 60:.1f} min, "
          f"tutorial {50000 / t['img_per_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
