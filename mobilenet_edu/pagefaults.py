"""Page faults and seconds per CPU training step, each measured in a fresh Python process.

A fresh process because the allocator's state is per process: whatever ran before (a notebook's earlier
cells, other tests) would change the figures. ``measure_step(keep=False)`` is glibc's default behaviour,
``measure_step(keep=True)`` the same steps after ``engine.keep_freed_memory()``, as ``engine.train`` does on
the CPU. The first step allocates everything once and is not counted; the faults are counted step by step
(``ru_minflt``, so Linux only), the seconds come from ``mobilenet_edu.timing`` (the series' one timer).

Run directly: ``python -m mobilenet_edu.pagefaults keep`` (or ``default``) prints the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from .errors import MobileNetError


def measure_step(keep: bool, steps: int = 5, batch: int = 256, size: int = 32, width: float = 0.5,
                 threads: int | None = None) -> dict:
    """Mean minor page faults per training step of a small-input MobileNet, and its seconds per step, in a fresh
    process.

    Returns ``{"applied", "faults", "per_step", "seconds", "iqr"}``: ``applied`` says whether keep_freed_memory()
    took effect (False when ``keep`` is False, or without glibc); ``faults`` is the mean over ``steps`` counted
    steps and ``per_step`` lists each one's; ``seconds`` and ``iqr`` are the median and interquartile range of a
    step from ``timing.time_it`` (rounds and length from ``settings.size``, as everywhere).
    """
    if steps < 1:
        raise MobileNetError(f"steps must be at least 1, not {steps}")
    if not sys.platform.startswith("linux"):
        raise MobileNetError("page faults are measured with getrusage's ru_minflt, which needs Linux")
    args = [sys.executable, "-m", __name__, "keep" if keep else "default", "--steps", str(steps),
            "--batch", str(batch), "--size", str(size), "--width", str(width)]
    if threads:
        args += ["--threads", str(threads)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise MobileNetError(f"the page-fault probe failed: {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe(keep: bool, steps: int, batch: int, size: int, width: float, threads: int | None) -> dict:
    import resource

    import torch

    from .engine import keep_freed_memory
    from .model import MobileNetV1
    from .timing import time_it

    applied = keep_freed_memory() if keep else False
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = MobileNetV1(num_classes=10, width=width, small_input=True).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    step()  # the first step allocates everything once
    faults = []
    for _ in range(steps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    t = time_it(step, "training step")
    return {"applied": applied, "faults": sum(faults) / steps, "per_step": faults, "seconds": t.median, "iqr": t.iqr}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mobilenet_edu.pagefaults", description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("default", "keep"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    print(json.dumps(_probe(a.mode == "keep", a.steps, a.batch, a.size, a.width, a.threads)))


if __name__ == "__main__":
    main()
