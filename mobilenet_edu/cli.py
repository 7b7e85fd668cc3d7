"""`mobilenet-edu <verb>` or `python -m mobilenet_edu <verb>`: profile, train, eval, predict, export, bench; and for a
class: doctor, data install, student-edition, site."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .engine import RECIPES
from .errors import MobileNetError

LR_RULE = ("--lr is the peak learning rate for the global batch (--batch-size x number of processes). When "
           "you change the global batch by a factor k, scale --lr by k too (linear scaling rule, Goyal et al. "
           "2017); the warm-up (--warmup) keeps large learning rates stable.")


DATA_DIR_HELP = ("the folder holding cifar-10-batches-py/ (downloaded there if absent); default: "
                 "$MOBILENET_EDU_DATA, else ./data")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (no usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _budget(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {s!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of minutes >= 0 (0: no budget), got {s}")
    return v or None


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def _int_list(s: str) -> list[int]:
    try:
        out = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of integers") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{s!r}: need integers >= 1")
    return out


def _shape_args(p: argparse.ArgumentParser, resolution_default: int = 224) -> None:
    p.add_argument("--width", type=_positive_float, default=1.0, help="width multiplier alpha (> 0), default 1.0")
    p.add_argument("--resolution", type=int, default=resolution_default,
                   help=f"input size in pixels (>= 32), the resolution multiplier; default {resolution_default}")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier outputs, default 1000")
    p.add_argument("--small-input", action="store_true", help="the 32x32 (CIFAR) variant: stem stride 1")


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="mobilenet-edu", description="MobileNet v1 (Howard et al. 2017): profile, train, evaluate, "
                "predict, export and benchmark.")
    sub = ap.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("profile", help="layers, parameters and mult-adds (the paper's Tables 1, 2 and 6)")
    _shape_args(p)
    p.add_argument("--in-chans", type=int, default=3, help="input channels, default 3")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    p = sub.add_parser("train", help="train on CIFAR-10, an image folder or synthetic data",
                       argument_default=argparse.SUPPRESS,
                       description="Train MobileNet v1. A --recipe sets every choice below; flags you give override "
                       "it. " + LR_RULE + " Under torchrun every process trains on its own shard; only rank 0 "
                       "prints and writes files.")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="full",
                   help="full: the shipped weights' first stage (alpha 1, 20 epochs; the default); classroom: "
                   "alpha 0.5, trained for a --time-budget of 10 minutes (as many epochs as fit, 3 in 16 of them at "
                   "full size and the others on 24 px images), bf16 pointwise convolutions where the CPU has bf16 "
                   "instructions; "
                   "quick: seconds, for tests")
    p.add_argument("--data", help="cifar10 | synthetic | PATH (PATH/train/<class>/*, PATH/val/<class>/*); "
                   "default cifar10")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--width", type=_positive_float, help="width multiplier alpha")
    p.add_argument("--resolution", type=int, help="input size for image folders (full model), default 224")
    p.add_argument("--small-input", dest="small_input", action="store_true",
                   help="force the 32x32 variant (default: on for CIFAR-10 and synthetic data)")
    p.add_argument("--full-input", dest="small_input", action="store_false",
                   help="force the standard ImageNet stem (stride 2)")
    p.add_argument("--act", choices=["relu", "relu6"])
    p.add_argument("--dropout", type=float)
    p.add_argument("--epochs", type=int, help="train this many epochs (and no --time-budget, unless given too)")
    p.add_argument("--time-budget", dest="time_budget", type=_budget, metavar="MINUTES",
                   help="train for this many minutes, not a number of epochs: the run times its first steps and "
                   "plans the epochs that fit (the classroom recipe's default: 10; 0: off)")
    p.add_argument("--batch-size", type=int, help="per process")
    p.add_argument("--lr", type=float, help="peak learning rate for the global batch")
    p.add_argument("--optimizer", choices=["sgd", "rmsprop", "adamw"])
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float,
                   help="on conv/linear weights only (none on BN, biases, depthwise filters)")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--warmup", type=float, help="fraction of steps in linear warm-up")
    p.add_argument("--schedule", choices=["onecycle", "cosine", "exp"])
    p.add_argument("--cutout", type=int, help="cutout square size in px (0: off)")
    p.add_argument("--low-res", type=int, help="progressive resizing: train all epochs but the last --full-res-epochs "
                   "on images shrunk to this many px (0: off)")
    p.add_argument("--full-res-epochs", type=int, help="with --low-res: how many final epochs train at full size")
    p.add_argument("--val-split", type=int,
                   help="hold out this many training images and evaluate on them instead of the test set")
    p.add_argument("--subset", type=int, help="train on only this many images (and evaluate on a fifth as many)")
    p.add_argument("--no-tta", dest="tta", action="store_false", help="skip the flip-TTA figure at the end")
    p.add_argument("--out", help="run folder; default runs/train")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out (default: refuse)")
    p.add_argument("--seed", type=int)
    p.add_argument("--init", help="start from weights: ours (.safetensors) or a timm MobileNet v1 "
                   "state dict (.pth/.safetensors); the classifier is replaced if the class count differs")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")
    p.add_argument("--no-amp", dest="amp", action="store_false",
                   help="no mixed precision (neither CUDA's nor the CPU's of --cpu-amp)")
    p.add_argument("--cpu-amp", dest="cpu_amp", action="store_true",
                   help="on a CPU with bf16 instructions (AVX512-BF16, AMX): pointwise convolutions in bfloat16, "
                   "depthwise ones in float32 (the classroom recipe's choice)")
    p.add_argument("--no-cpu-amp", dest="cpu_amp", action="store_false", help="the CPU trains in float32 throughout")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--workers", type=int, help="image-folder decoding processes")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (GPU only)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--freeze-bn", action="store_true",
                   help="keep BatchNorm statistics fixed (eval mode) while training, e.g. to fine-tune on few images")
    p.add_argument("--synthetic-size", type=int, help="training images of --data synthetic")

    p = sub.add_parser("eval", help="top-1/top-5, per-class accuracy and a confusion-matrix PNG")
    p.add_argument("--weights", required=True, help="a shipped name (cifar10), .safetensors, .onnx or .pte")
    p.add_argument("--data", default="cifar10")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--tta", action="store_true", help="also report flip test-time augmentation (the image "
                   "and its mirror averaged) beside the single-view figures")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--plot", default=None, help="confusion-matrix PNG path; default: confusion.png beside weights "
                   "you trained (their run folder), none for shipped weights")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("predict", help="top-k classes with probabilities for image files")
    p.add_argument("--weights", required=True)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("images", nargs="+", metavar="IMAGE")

    p = sub.add_parser("export", help="ONNX, int8, ExecuTorch or TensorRT, with a parity check")
    p.add_argument("--format", required=True,
                   choices=["onnx", "onnx-int8", "executorch", "executorch-int8", "tensorrt"],
                   help="onnx-int8: ONNX Runtime static QDQ; executorch-int8: PyTorch PT2E, XNNPACK quantizer")
    p.add_argument("--out", required=True)
    p.add_argument("--weights", default=None, help="without it: an untrained model of the given shape")
    _shape_args(p)
    p.add_argument("--calib-data", default=None, help="calibration images: cifar10 | PATH | synthetic")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--calib-size", type=int, default=512)
    p.add_argument("--parity-size", type=int, default=None,
                   help="images for the parity check (default: the whole CIFAR-10 test set for CIFAR weights)")

    p = sub.add_parser("bench", help="latency and throughput per backend, side by side")
    p.add_argument("--weights", default=None)
    _shape_args(p)
    p.add_argument("--batch-size", type=_int_list, default=[1, 32])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--backends", default="torch,torch-compile,onnx,onnx-int8,executorch",
                   help="any of torch, torch-compile, onnx, onnx-int8, executorch, executorch-int8")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip torchvision/timm reference models")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--calib-data", default=None, help="int8 calibration images: cifar10 | PATH | synthetic")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--peak-gflops", type=float, default=None, help="machine peak fp32 GFLOP/s (default: measured)")
    p.add_argument("--plot", default="bench.png")
    p.add_argument("--json", action="store_true")

    sub.add_parser("doctor", help="check this machine for the lessons: one [OK]/[WARN]/[FAIL] line per check, "
                   "with its fix; exit status 1 on any FAIL")

    p = sub.add_parser("data", help="CIFAR-10 from a file: data install PATH")
    data_sub = p.add_subparsers(dest="data_verb", metavar="ACTION", parser_class=Parser)
    data_sub.required = True
    q = data_sub.add_parser("install", help="check and install CIFAR-10 from the official cifar-10-python.tar.gz, "
                            "its unpacked folder or a re-packed archive, where the lessons look ($MOBILENET_EDU_DATA, "
                            "else the default data folder)")
    q.add_argument("path", metavar="PATH")
    q.add_argument("--data-dir", default=None, help="install under this folder instead (" + DATA_DIR_HELP + ")")

    p = sub.add_parser("student-edition", help="every lesson with outputs cleared and the exercises' solutions "
                       "replaced by empty answer cells")
    p.add_argument("out", metavar="OUT", help="a new or empty folder (never the repository's notebooks/)")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT, replacing files of the same names")

    p = sub.add_parser("site", help="the offline HTML edition: an index and one page per lesson, from the committed "
                       "outputs; opens from the disk with no network")
    p.add_argument("out", metavar="OUT", help="a new or empty folder")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT, replacing files of the same names")
    return ap


def cmd_profile(a) -> int:
    from .model import MobileNetV1
    from .profile import format_table, profile

    m = MobileNetV1(num_classes=a.num_classes, width=a.width, in_chans=a.in_chans, small_input=a.small_input)
    p = profile(m, a.resolution)
    if a.json:
        print(json.dumps(p))
    else:
        print(format_table(p))
    return 0


def cmd_train(a) -> int:
    from .engine import dist_cleanup, recipe, train

    given = vars(a).copy()
    for k in ("verb", "recipe"):
        given.pop(k, None)
    if given.get("resolution", 224) < 32:
        raise MobileNetError(f"--resolution {given['resolution']} is below the minimum of 32 px")
    cfg = recipe(a.recipe, **given)
    try:
        train(cfg)
    finally:
        dist_cleanup()
    return 0


def cmd_eval(a) -> int:
    from .inference import evaluate_weights
    from .pretrained import WEIGHTS_DIR, resolve_weights

    plot = a.plot
    if plot is None:  # never litter the current folder: beside the user's own weights, or nowhere
        path = resolve_weights(a.weights)
        plot = None if path.parent == WEIGHTS_DIR else path.parent / "confusion.png"
    r = evaluate_weights(a.weights, a.data, a.data_dir, tta=a.tta, batch_size=a.batch_size, plot=plot)
    if a.json:
        out = {"top1": round(r["top1"], 2), "top5": round(r["top5"], 2), "n": r["n"], "view": "single"}
        if a.tta:
            out.update(top1_flip_tta=round(r["top1_flip_tta"], 2), top5_flip_tta=round(r["top5_flip_tta"], 2))
        out["per_class"] = {c: round(v, 2) for c, v in zip(r["classes"], r["per_class"])}
        print(json.dumps(out))
    else:
        print(f"{r['name']} on {r['data']} ({r['n']} images): single view top-1 {r['top1']:.2f}%  "
              f"top-5 {r['top5']:.2f}%")
        if a.tta:
            print(f"  with flip test-time augmentation: top-1 {r['top1_flip_tta']:.2f}%  "
                  f"top-5 {r['top5_flip_tta']:.2f}%")
        for c, v in zip(r["classes"], r["per_class"]):
            print(f"  {c:<16}{v:6.2f}%")
        if r.get("plot"):
            print(f"confusion matrix: {r['plot']}")
    return 0


def cmd_predict(a) -> int:
    from .inference import predict_files

    if a.top_k < 1:
        raise MobileNetError(f"--top-k must be >= 1, got {a.top_k}")
    res = predict_files(a.weights, a.images, a.top_k)
    if a.json:
        print(json.dumps(res))
    else:
        for r in res:
            if "top" in r:
                print(r["image"])
                for c, pr in r["top"]:
                    print(f"  {pr * 100:6.2f}%  {c}")
    for r in res:  # each unreadable file: one line on stderr; the others were still predicted
        if "error" in r:
            print(f"mobilenet-edu predict: error: {r['error']}", file=sys.stderr)
    return 2 if any("error" in r for r in res) else 0


def cmd_export(a) -> int:
    from .deploy.export import export

    export(a)
    return 0


def cmd_bench(a) -> int:
    from .bench import run_bench

    run_bench(a)
    return 0


def cmd_doctor(a) -> int:
    from .checkup import main as doctor_main

    return doctor_main()


def cmd_data(a) -> int:
    from .data import install_cifar10

    install_cifar10(a.path, a.data_dir)
    return 0


def cmd_student_edition(a) -> int:
    from .edition import student_edition

    student_edition(a.out, force=a.force)
    return 0


def cmd_site(a) -> int:
    from .site import build_site

    build_site(a.out, force=a.force)
    return 0


COMMANDS = {"profile": cmd_profile, "train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "export": cmd_export, "bench": cmd_bench, "doctor": cmd_doctor, "data": cmd_data,
            "student-edition": cmd_student_edition, "site": cmd_site}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.verb](args)
    except MobileNetError as e:
        rank = os.environ.get("RANK", "0")
        print(f"mobilenet-edu {args.verb}: error: {e}" + (f" [rank {rank}]" if rank != "0" else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mobilenet-edu {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
