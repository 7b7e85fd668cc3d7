"""Deployment latency table: every backend side by side, as `mobilenet bench` measures it.

1. MobileNet v1 1.0 at 224x224, batch 1, 2 threads (the paper's network; untrained weights, same FLOPs),
   with torchvision/timm reference models, and the ratios ONNX Runtime fp32 / int8 vs PyTorch eager.
2. The 32x32 CIFAR-10 model (the shipped weights when present) at batch 1 and 256.

    python benchmarks/deploy_latency.py [--threads 2] [--iters 30] [--skip-cifar]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def bench(*args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "mobilenet_edu", "bench", "--json", *args], capture_output=True,
                         text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def table(rows: list[dict]) -> None:
    print(f"{'model':<34}{'backend':<15}{'batch':>6}{'p50 ms':>9}{'p90 ms':>9}{'img/s':>9}{'x torch':>9}"
          f"{'roofline':>10}")
    for r in rows:
        sp = f"{r['speedup_vs_torch']:.2f}" if r["speedup_vs_torch"] else "-"
        print(f"{r['model']:<34}{r['backend']:<15}{r['batch']:>6}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
              f"{r['img_per_s']:>9.1f}{sp:>9}{r['roofline_fraction'] * 100:>9.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2")
    ap.add_argument("--iters", default="30")
    ap.add_argument("--backends", default="torch,torch-compile,onnx,onnx-int8,executorch")
    ap.add_argument("--cifar-backends", default="torch,onnx,onnx-int8,executorch")
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--data-dir", default="../shared/datasets", help="CIFAR-10 (int8 calibration images)")
    a = ap.parse_args()
    rows = bench("--resolution", "224", "--batch-size", "1", "--threads", a.threads, "--iters", a.iters,
                 "--backends", a.backends, "--plot", "bench_224.png")
    print(f"== MobileNet v1 1.0, 224x224, batch 1, {a.threads} threads "
          f"(peak {rows[0]['peak_gflops']:.0f} GFLOP/s measured) ==")
    table(rows)
    ours = {r["backend"]: r for r in rows if r["model"].startswith("mobilenet_v1")}
    for b in ("onnx", "onnx-int8", "torch-compile", "executorch"):
        if b in ours:
            print(f"{b} vs torch eager: {ours[b]['speedup_vs_torch']:.2f}x; "
                  f"{ours[b]['roofline_fraction'] * 100:.0f}% of the fp32 roofline "
                  f"({ours[b]['roofline_ms']:.2f} ms)")
    if not a.skip_cifar:
        from mobilenet_edu.pretrained import available

        w = ["--weights", "cifar10"] if "cifar10" in available() else ["--small-input", "--num-classes", "10"]
        rows = bench(*w, "--data-dir", a.data_dir,
                     "--batch-size", "1,256", "--threads", a.threads, "--iters", a.iters, "--no-reference",
                     "--backends", a.cifar_backends, "--plot", "bench_cifar.png")
        print(f"\n== CIFAR-10 model (32x32{', shipped weights' if len(w) == 2 else ''}), batch 1 and 256 ==")
        table(rows)


if __name__ == "__main__":
    main()
