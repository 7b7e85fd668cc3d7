"""Latency and throughput of every backend, measured side by side in one process.

Every backend is timed with the project's one timer, ``mobilenet_edu.timing.compare`` (PyTorch's
``torch.utils.benchmark.Timer``: warm-up, thread count, median and interquartile range), in interleaved rounds,
so that a busy moment of the machine slows them all alike. Each figure is also held against the model's compute
floor: its FLOPs (2 x the mult-adds of ``profile.count_macs``) over the machine's peak fp32 FLOP/s (measured with a
large matrix multiply, or stated). That floor is the flat, compute-bound roof of the roofline model; the model's
memory-bandwidth slope is left out, so the floor is a lower bound on the time, not a prediction. The rows keep the
names ``roofline_ms`` (the floor) and ``roofline_fraction`` (the floor over the measured time).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import MobileNetError
from .profile import count_macs
from .timing import Timing, compare, time_it

ALL_BACKENDS = ("torch", "torch-compile", "onnx", "onnx-int8", "executorch", "executorch-int8")


@dataclass
class Entry:
    model: str
    backend: str
    batch: int
    run: Callable[[], object]
    flops: float  # per call
    timing: Timing | None = None  # filled in by time_entries


def flops(model: torch.nn.Module, size: int) -> float:
    """Floating-point operations of one ``size`` x ``size`` image: two per mult-add (``profile.count_macs``)."""
    return 2.0 * count_macs(model, size)


def measure_peak_gflops(seconds: float | None = None) -> float:
    """fp32 GFLOP/s of a 1024x1024 matrix multiply, about the fastest thing a CPU does, with the current threads.

    Timed like everything else (``timing.time_it``: median of its blocks); ``seconds`` per round defaults to
    ``settings.size("timing_seconds")``.
    """
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    t = time_it(lambda: a @ b, label="1024x1024 matmul", seconds=seconds)
    return 2 * 1024 ** 3 / t.median / 1e9


def _torch_entry(name, model, batch, size, flops, compile_=False):
    model = model.eval()
    x = torch.rand(batch, 3, size, size)
    fn = torch.compile(model) if compile_ else model

    def run():
        with torch.inference_mode():
            return fn(x)

    return Entry(name, "torch-compile" if compile_ else "torch", batch, run, flops)


def _onnx_entry(name, path, batch, size, flops, backend, threads):
    from .deploy.onnx import _session

    sess = _session(path, threads)
    inp = sess.get_inputs()[0].name
    x = np.random.rand(batch, 3, size, size).astype(np.float32)
    return Entry(name, backend, batch, lambda: sess.run(None, {inp: x}), flops)


def _export_reference_onnx(model, size, path):
    torch.onnx.export(model.eval(), (torch.rand(1, 3, size, size),), path, input_names=["input"],
                      output_names=["logits"], opset_version=18, dynamo=True, external_data=False,
                      dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}}, verbose=False)


def reference_models(size: int) -> dict:
    """Other mobile networks for comparison, when their packages are installed (random weights)."""
    out = {}
    try:
        import torchvision.models as tvm

        out["torchvision mobilenet_v2"] = tvm.mobilenet_v2()
        out["torchvision mobilenet_v3_large"] = tvm.mobilenet_v3_large()
    except ImportError:
        pass
    try:
        import timm

        out["timm mobilenetv1_100"] = timm.create_model("mobilenetv1_100", pretrained=False)
    except ImportError:
        pass
    return out


def build_entries(a, workdir: str) -> list[Entry]:
    from .deploy.export import calibration01, model_and_card
    from .deploy.onnx import export_onnx, quantize_onnx_int8

    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ALL_BACKENDS]
    if unknown:
        raise MobileNetError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(ALL_BACKENDS)}")
    model, card = model_and_card(a.weights, a.width, a.resolution, a.num_classes, a.small_input)
    size = int(card["input_size"])
    name = f"mobilenet_v1 {model.width:g}" + (" (weights)" if a.weights else "")
    per_image = flops(model, size)
    entries: list[Entry] = []
    onnx_path = int8_path = None
    if "onnx" in backends or "onnx-int8" in backends:
        onnx_path = export_onnx(model, card, os.path.join(workdir, "fp32.onnx"))
    calib = None
    if "onnx-int8" in backends or "executorch-int8" in backends:
        calib = calibration01(card, getattr(a, "calib_data", None), getattr(a, "data_dir", None), 256)
    if "onnx-int8" in backends:
        int8_path = quantize_onnx_int8(onnx_path, os.path.join(workdir, "int8.onnx"), calib)
    for bs in a.batch_size:
        per_call = per_image * bs
        for b in backends:
            try:
                if b == "torch":
                    entries.append(_torch_entry(name, model, bs, size, per_call))
                elif b == "torch-compile":
                    entries.append(_torch_entry(name, model, bs, size, per_call, compile_=True))
                elif b == "onnx":
                    entries.append(_onnx_entry(name, onnx_path, bs, size, per_call, b, a.threads))
                elif b == "onnx-int8":
                    entries.append(_onnx_entry(name, int8_path, bs, size, per_call, b, a.threads))
                elif b in ("executorch", "executorch-int8"):
                    from .deploy.executorch import PteRunner, export_executorch

                    pte = export_executorch(model, card, os.path.join(workdir, f"{b}-{bs}.pte"), static_batch=bs,
                                            calib01=calib if b == "executorch-int8" else None)
                    r = PteRunner(pte)
                    x = torch.rand(bs, 3, size, size)
                    entries.append(Entry(name, b, bs, lambda r=r, x=x: r.run01(x), per_call))
            except MobileNetError as e:
                print(f"skipping {b}: {e}")
                backends = [x for x in backends if x != b]
    if a.reference:
        for rname, rm in reference_models(size).items():
            rflops = flops(rm, size)
            rpath = os.path.join(workdir, rname.replace(" ", "_") + ".onnx")
            has_onnx = "onnx" in backends
            if has_onnx:
                _export_reference_onnx(rm, size, rpath)
            for bs in a.batch_size:
                entries.append(_torch_entry(rname, rm, bs, size, rflops * bs))
                if has_onnx:
                    entries.append(_onnx_entry(rname, rpath, bs, size, rflops * bs, "onnx", a.threads))
    return entries


def time_entries(entries: list[Entry], rounds: int | None = None, seconds: float | None = None,
                 threads: int | None = None) -> None:
    """Time every entry with ``timing.compare``: the entries take turns for ``rounds`` rounds.

    Each round's measurement warms its entry up and then runs it for at least ``seconds`` (0: one timed call
    per round); ``rounds`` and ``seconds`` default to ``settings.size("timing_rounds"/"timing_seconds")``.
    """
    keys = [f"{i}: {e.model} / {e.backend} / {e.batch}" for i, e in enumerate(entries)]
    out = compare({k: e.run for k, e in zip(keys, entries)}, threads=threads, rounds=rounds, seconds=seconds)
    for k, e in zip(keys, entries):
        e.timing = out[k]


def summarize(entries: list[Entry], peak_gflops: float) -> list[dict]:
    """One row per timed entry: median and IQR per call, images/s, GFLOP/s achieved, compute floor, speed-up."""
    rows = []
    base = {(e.model, e.batch): e.timing.median for e in entries if e.backend == "torch" and e.timing}
    for e in entries:
        if e.timing is None:
            raise MobileNetError(f"{e.model} / {e.backend} / batch {e.batch} was never timed (call time_entries)")
        med = e.timing.median
        roof = e.flops / (peak_gflops * 1e9)
        b = base.get((e.model, e.batch))
        rows.append({"model": e.model, "backend": e.backend, "batch": e.batch, "median_ms": med * 1e3,
                     "iqr_ms": e.timing.iqr * 1e3, "img_per_s": e.batch / med, "gflops": e.flops / med / 1e9,
                     "roofline_ms": roof * 1e3, "roofline_fraction": roof / med,
                     "speedup_vs_torch": (b / med) if b else None, "blocks": e.timing.blocks})
    return rows


def format_rows(rows: list[dict], peak: float, threads: int) -> str:
    lines = [f"peak fp32: {peak:.0f} GFLOP/s ({threads} threads); compute floor = model FLOPs / peak; "
             "% floor = floor / median",
             f"{'model':<34}{'backend':<15}{'batch':>6}{'median ms':>11}{'IQR ms':>9}{'img/s':>9}"
             f"{'x torch':>9}{'% floor':>10}"]
    for r in rows:
        sp = f"{r['speedup_vs_torch']:.2f}" if r["speedup_vs_torch"] else "-"
        lines.append(f"{r['model']:<34}{r['backend']:<15}{r['batch']:>6}{r['median_ms']:>11.2f}{r['iqr_ms']:>9.2f}"
                     f"{r['img_per_s']:>9.1f}{sp:>9}{r['roofline_fraction'] * 100:>9.1f}%")
    return "\n".join(lines)


def plot_rows(rows: list[dict], path: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .checkpoint import atomic_write

    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 0.45 * len(rows) / len(batches) + 2))
    axes = np.atleast_1d(axes)
    for ax, bs in zip(axes, batches):
        sel = [r for r in rows if r["batch"] == bs]
        labels = [f"{r['model']} / {r['backend']}" for r in sel]
        ax.barh(range(len(sel)), [r["median_ms"] for r in sel], xerr=[r["iqr_ms"] / 2 for r in sel],
                color="tab:blue", label="median (± half the IQR)")
        ax.barh(range(len(sel)), [r["roofline_ms"] for r in sel], color="tab:orange", alpha=0.6,
                label="compute floor (FLOPs / peak)")
        ax.set_yticks(range(len(sel)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("latency per batch (ms)")
        ax.set_title(f"batch {bs}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=100))
    plt.close(fig)
    return out


def run_bench(a) -> list[dict]:
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    if a.iters < 1:
        raise MobileNetError(f"--iters must be >= 1, got {a.iters}")
    peak = a.peak_gflops or measure_peak_gflops()
    with tempfile.TemporaryDirectory() as td:
        entries = build_entries(a, td)
        time_entries(entries, rounds=a.iters, seconds=0.0)   # --iters rounds, one timed call per entry each
    rows = summarize(entries, peak)
    for r in rows:
        r.update(threads=threads, peak_gflops=peak)
    if a.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(format_rows(rows, peak, threads))
    if a.plot:
        p = plot_rows(rows, a.plot)
        if not a.json:
            print(f"chart: {p}")
    return rows
