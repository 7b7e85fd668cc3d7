"""ONNX export (normalisation inside the graph), ONNX Runtime runner, static int8 quantisation.

Contract of the exported file: input ``input``, float32 NCHW RGB scaled to [0, 1]; output ``logits``;
dynamic batch; opset >= 17; one self-contained file whose metadata holds the model card.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import CARD_KEY, atomic_write
from ..errors import MobileNetError

OPSET = 18


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MobileNetError(f"this needs the '{module}' package: pip install 'mobilenet-edu[deploy]'") from None


class Normalized(nn.Module):
    """The model with its mean/std normalisation in front, so devices feed [0, 1] RGB."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the ONNX input name
        return self.model((input - self.mean) / self.std)


# torch.onnx.export(dynamo=True) is the exporter of current PyTorch, but on torch 2.5 and 2.6 (with any onnxscript)
# it cannot translate this network with a dynamic batch: the classifier's flatten becomes a view whose size mixes the
# symbolic batch with a constant, and the conversion stops ('tuple' object has no attribute 'dtype', or 'unhashable
# type: list'). Those releases get the TorchScript-based exporter instead; the file keeps the same contract.
DYNAMO_EXPORT = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 7)


def _export_torchscript(wrapped: nn.Module, x: torch.Tensor, path: str) -> None:
    """The TorchScript exporter (torch < 2.7), its file shaped like the dynamo exporter's, so that lesson 09 reads
    the same on every release: no tracer warnings about the model's input checks, no Identity nodes where constant
    folding shared equal tensors, and the head as ReduceMean + Reshape instead of GlobalAveragePool + Flatten (the
    same arithmetic; int8 quantisation then inserts the same QuantizeLinear/DequantizeLinear pairs)."""
    import warnings

    import onnx
    import onnx.numpy_helper

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning: the input check's Python booleans are constant in a trace
        torch.onnx.export(wrapped, (x,), path, input_names=["input"], output_names=["logits"], opset_version=OPSET,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, verbose=False)
    m = onnx.load(path)
    graph = m.graph

    def constant(name: str, values: list[int]) -> str:
        graph.initializer.add().CopyFrom(onnx.numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    shared = {t.name: t for t in graph.initializer}
    nodes = []
    for n in graph.node:
        if n.op_type == "Identity" and n.input[0] in shared:  # give the consumer its own copy of the tensor
            t = graph.initializer.add()
            t.CopyFrom(shared[n.input[0]])
            t.name = n.output[0]
            continue
        if n.op_type == "GlobalAveragePool":  # NCHW -> NC11
            n.op_type = "ReduceMean"
            n.input.append(constant(n.output[0] + "_axes", [2, 3]))
        elif n.op_type == "Flatten" and all(a.i == 1 for a in n.attribute if a.name == "axis"):  # NC11 -> NC
            n.op_type = "Reshape"
            del n.attribute[:]
            n.input.append(constant(n.output[0] + "_shape", [0, -1]))
        nodes.append(n)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(m, path)


def export_onnx(model: nn.Module, card: dict, path: str | os.PathLike) -> Path:
    """Write ``model`` (eval mode, normalisation folded in front) as one ONNX file with the card embedded."""
    onnx = _need("onnx")
    wrapped = Normalized(model.eval(), card["mean"], card["std"]).eval()
    size = int(card["input_size"])
    x = torch.rand(2, model.in_chans, size, size)
    with tempfile.TemporaryDirectory() as td:
        tmp = os.path.join(td, "model.onnx")
        if DYNAMO_EXPORT:
            batch = torch.export.Dim("batch", min=1, max=4096)
            # torch 2.7's exporter logs a warning on stderr for each torchvision operator it cannot type (roi_align,
            # nms, ...) once torchvision is imported: operators this network does not use.
            schemas = logging.getLogger("torch.onnx._internal.exporter._schemas")
            level = schemas.level
            schemas.setLevel(logging.ERROR)
            try:
                torch.onnx.export(wrapped, (x,), tmp, input_names=["input"], output_names=["logits"],
                                  opset_version=OPSET, dynamo=True, dynamic_shapes={"input": {0: batch}},
                                  external_data=False, verbose=False)
            finally:
                schemas.setLevel(level)
        else:
            _export_torchscript(wrapped, x, tmp)
        m = onnx.load(tmp)
    # The dynamo exporter's notes for debugging (every node's Python stack trace with this machine's paths, module
    # names, the exported program's signature): about 120 kB that say where the file was made and differ between
    # releases. The file keeps the graph, the weights and the card.
    for item in (*m.graph.node, *m.graph.input, *m.graph.output, *m.graph.value_info, m.graph):
        del item.metadata_props[:]
    for node in m.graph.node:
        node.doc_string = ""
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    entry = m.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card)
    onnx.checker.check_model(m, full_check=True)
    return atomic_write(path, lambda t: onnx.save(m, t))


def _session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session whose worker threads do not busy-wait after each run.

    Every session here shares the cores with PyTorch (the parity check and `eval` alternate the two,
    `mobilenet-edu bench` interleaves backends), and spinning ORT threads took those cores: PyTorch eager went
    from 31 to 146 ms at 224 px on 2 cores in one benchmark.
    """
    ort = _need("onnxruntime")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise MobileNetError(f"ONNX Runtime cannot load {path}: {str(e).splitlines()[0][:200]}") from None


class OnnxRunner:
    """Runs an exported file like the PyTorch model: takes the *normalised* batch, returns logits.

    (The graph expects [0, 1] input, so the batch is un-normalised first with the card's mean/std.)
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        self.sess = _session(path, threads)
        meta = self.sess.get_modelmeta().custom_metadata_map
        if CARD_KEY not in meta:
            raise MobileNetError(f"{path} was not exported by mobilenet (no model card in its metadata)")
        self.card = json.loads(meta[CARD_KEY])
        self.mean = torch.tensor(self.card["mean"]).view(1, -1, 1, 1)
        self.std = torch.tensor(self.card["std"]).view(1, -1, 1, 1)

    def run01(self, x01: np.ndarray) -> np.ndarray:
        return self.sess.run(["logits"], {"input": np.ascontiguousarray(x01, dtype=np.float32)})[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x01 = (x.float().contiguous() * self.std + self.mean).numpy()
        return torch.from_numpy(self.run01(x01))


class _Reader:
    """Feeds calibration batches ([0, 1] scale) to ONNX Runtime's calibrator, a range of batches at a time.

    ``__len__`` and ``set_range`` let the calibrator take the batches in strides and fold each stride into
    its histograms before the next, so memory holds one stride's intermediate activations, not all of them.
    """

    def __init__(self, batches: list[np.ndarray]):
        self.batches = batches
        self.set_range(0, len(batches))

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.it = iter(self.batches[start_index:end_index])

    def get_next(self):
        b = next(self.it, None)
        return None if b is None else {"input": b}


# Images x pixels after the first convolution, per calibration batch: 8 images at 224 px with a stride-2 stem,
# ~400 MB of activations.
CALIB_BATCH_PIXELS = 8 * 112 * 112


def stem_stride(model_proto) -> int:
    """The stride of the graph's first convolution (1 when it has none). Every later activation map scales with
    the pixels after it: a stride-1 stem (``small_input``) makes each image's activations 4x those of a stride-2
    one at the same input size."""
    for node in model_proto.graph.node:
        if node.op_type == "Conv":
            strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), [1])
            return max(1, strides[0])
    return 1


def calibration_batches(x01: np.ndarray, stride: int = 2) -> list[np.ndarray]:
    """Split [0, 1] calibration images into batches small enough that one batch's intermediate activations
    (every layer's output, kept for the histograms) stay a few hundred MB whatever the input size; ``stride`` is
    the model's first stride (``stem_stride``)."""
    per = max(1, CALIB_BATCH_PIXELS // ((x01.shape[-1] // stride) * (x01.shape[-2] // stride)))
    return [x01[i:i + per] for i in range(0, len(x01), per)]


def quantize_onnx_int8(fp32_path: str | os.PathLike, out: str | os.PathLike, calib01: np.ndarray,
                       method: str = "percentile", per_channel: bool = True, reduce_range: bool = True) -> Path:
    """Static post-training quantisation: QDQ format, per-channel int8 weights, uint8 activations.

    ``per_channel`` and ``reduce_range`` are there to measure the alternatives (notebook 09); the defaults are
    the choices explained here.

    Per-channel weights are insurance: with one scale per tensor a layer whose channels differ widely in range
    (the depthwise layers, whose 9-tap filters vary between channels) gets few steps for its small channels. On
    the shipped CIFAR-10 weights the spread is moderate, and per tensor measured about as well (notebook 09b).
    Weights use ONNX Runtime's reduced range, -64..64 (``reduce_range``): on x86 cores without VNNI
    (AVX2, plain AVX-512) ONNX Runtime's u8 x s8 kernels add pairs of products in saturating int16
    (``vpmaddubsw``), which overflows with full 8-bit weights; on the shipped CIFAR-10 weights this took
    top-1 agreement from 98.8% to 93.7%. ``calib01`` are [0, 1]-scaled images (N, C, H, W) from the training
    data. Calibration runs one small batch at a time (``calibration_batches``, the calibrator's strided mode):
    ONNX Runtime otherwise keeps every intermediate activation of every calibration image, which took an
    export at 224 px to 22 GB.
    """
    q = _need("onnxruntime.quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnx = _need("onnx")
    src = onnx.load(str(fp32_path), load_external_data=False)
    methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
               "percentile": q.CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory() as td:
        pre = os.path.join(td, "pre.onnx")
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=True)  # folds BN into conv, infers shapes
        qpath = os.path.join(td, "int8.onnx")
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints histogram details
            extra = {"CalibStridedMinMax": 1}  # despite its name: any calibrator, one batch per stride
            if method == "percentile":
                extra["CalibPercentile"] = 99.999
            reader = _Reader(calibration_batches(calib01, stem_stride(src)))
            q.quantize_static(pre, qpath, reader, quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
                              activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                              calibrate_method=methods[method], reduce_range=reduce_range, extra_options=extra)
        m = onnx.load(qpath)
    del m.metadata_props[:]
    for p in src.metadata_props:
        e = m.metadata_props.add()
        e.key, e.value = p.key, p.value
    onnx.checker.check_model(m)
    return atomic_write(out, lambda t: onnx.save(m, t))
