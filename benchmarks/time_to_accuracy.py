"""Time to 90% CIFAR-10 test top-1 (and the accuracy reached at 60 minutes) of a training run.

Reads RUN/metrics.csv (one row per epoch, with the evaluation top-1 after that epoch and the elapsed wall
time) of a finished or running `mobilenet train` run; with --train it first runs the default recipe into RUN.
Note that a one-cycle schedule only reaches its full accuracy at its last epoch: a mid-run figure is a lower
bound on what a recipe of that length would reach.

    python benchmarks/time_to_accuracy.py --run runs/cifar10-w1.0 [--target 90] [--budget-min 60]
    python benchmarks/time_to_accuracy.py --train --run runs/tta [-- extra mobilenet train flags]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--target", type=float, default=90.0)
    ap.add_argument("--budget-min", type=float, default=60.0)
    ap.add_argument("--train", action="store_true", help="run `mobilenet train` (default recipe) first")
    ap.add_argument("--data-dir", default="../shared/datasets")
    a, extra = ap.parse_known_args()
    run = Path(a.run)
    if a.train:
        subprocess.run([sys.executable, "-m", "mobilenet_edu", "train", "--data-dir", a.data_dir, "--out", str(run),
                        *[e for e in extra if e != "--"]], check=True)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    if not rows:
        sys.exit(f"{run}/metrics.csv has no rows")
    print(f"{'epoch':>5}{'elapsed min':>13}{'eval top-1':>12}")
    hit = None
    at_budget = None
    for r in rows:
        t, acc = float(r["elapsed_s"]) / 60, float(r["eval_top1"])
        print(f"{int(r['epoch']):>5}{t:>13.1f}{acc:>11.2f}%")
        if hit is None and acc >= a.target:
            hit = (int(r["epoch"]), t)
        if t <= a.budget_min:
            at_budget = (int(r["epoch"]), acc)
    if hit:
        print(f"time to {a.target:g}%: {hit[1]:.1f} min (epoch {hit[0]})")
    else:
        print(f"time to {a.target:g}%: not reached in {len(rows)} epochs "
              f"({float(rows[-1]['elapsed_s']) / 60:.1f} min); best {max(float(r['eval_top1']) for r in rows):.2f}%")
    if at_budget:
        print(f"accuracy at {a.budget_min:g} min: {at_budget[1]:.2f}% (after epoch {at_budget[0]})")


if __name__ == "__main__":
    main()
