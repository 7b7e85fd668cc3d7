"""ExecuTorch export: a ``.pte`` program with the XNNPACK delegate (the PyTorch route to phones).

The card travels beside it as ``<name>.json`` (a .pte has no metadata slot).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import atomic_write, write_json
from ..errors import MobileNetError

MAX_BATCH = 64


class ExecuTorchMissing(MobileNetError, ImportError):
    """ExecuTorch is not installed. Importing this module raises it: callers that treat ExecuTorch as optional
    catch ``ImportError`` (lesson 09), the CLI and ``bench`` catch ``MobileNetError`` and print one line."""


if importlib.util.find_spec("executorch") is None:
    # ExecuTorch is optional (the `edge` and `dev` extras): each release supports only the PyTorch of its day.
    raise ExecuTorchMissing("ExecuTorch is not installed: pip install 'mobilenet-edu[edge]' (for a recent PyTorch)")


def _need():
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
    except ImportError as e:
        raise MobileNetError(f"ExecuTorch is not installed or does not import here ({e}); "
                             "pip install executorch") from None
    return XnnpackPartitioner, to_edge_transform_and_lower, Runtime


def quantize_pt2e(wrapped: nn.Module, example: torch.Tensor, calib01: np.ndarray, dynamic_shapes=None) -> nn.Module:
    """PyTorch's own int8 route (PT2E): XNNPACK quantizer, per-channel symmetric int8 weights, int8
    activations calibrated on ``calib01`` ([0, 1] training images, N x C x H x W; observers keep only ranges,
    so memory stays one batch's worth)."""
    try:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as e:
        raise MobileNetError(f"PT2E int8 needs executorch and torchao ({e})") from None
    gm = torch.export.export(wrapped, (example,), dynamic_shapes=dynamic_shapes).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        for i in range(0, len(calib01), 32):
            prepared(torch.as_tensor(calib01[i:i + 32]))
    return convert_pt2e(prepared)


def export_executorch(model: nn.Module, card: dict, path: str | os.PathLike, static_batch: int | None = None,
                      calib01: np.ndarray | None = None) -> Path:
    """Lower ``model`` (normalisation in front, like the ONNX file) to XNNPACK and write the .pte.

    ``static_batch`` fixes the batch size (fastest); otherwise the batch is dynamic up to the plan's bound.
    With ``calib01`` the model is first quantised to int8 with PT2E (see ``quantize_pt2e``).
    """
    from .onnx import Normalized

    XnnpackPartitioner, to_edge_transform_and_lower, _ = _need()
    wrapped = Normalized(model.eval(), card["mean"], card["std"]).eval()
    size = int(card["input_size"])
    example = torch.rand(static_batch or 2, model.in_chans, size, size)
    dyn = None if static_batch else {"input": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}}
    if calib01 is not None:
        wrapped = quantize_pt2e(wrapped, example, calib01, dyn)
    ep = torch.export.export(wrapped, (example,), dynamic_shapes=dyn)
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    path = Path(path)
    atomic_write(path, lambda t: Path(t).write_bytes(prog.buffer))
    write_json(path.with_suffix(".json"), card)
    return path


class PteRunner:
    """Runs a .pte with ExecuTorch's own Python runtime; takes the normalised batch like PyTorch."""

    def __init__(self, path: str | os.PathLike):
        _, _, Runtime = _need()
        self.path = Path(path)
        cp = self.path.with_suffix(".json")
        if not cp.is_file():
            raise MobileNetError(f"{path}: its model card {cp.name} is missing beside it")
        self.card = json.loads(cp.read_text())
        try:
            self.method = Runtime.get().load_program(str(self.path)).load_method("forward")
        except Exception as e:
            raise MobileNetError(f"ExecuTorch cannot load {path}: {str(e).splitlines()[0][:200]}") from None
        # The program's memory plan fixes the largest batch it accepts; feed chunks of at most that.
        self.max_batch = int(self.method.metadata.input_tensor_meta(0).sizes()[0])
        self.mean = torch.tensor(self.card["mean"]).view(1, -1, 1, 1)
        self.std = torch.tensor(self.card["std"]).view(1, -1, 1, 1)

    def run01(self, x01: torch.Tensor) -> torch.Tensor:
        outs = []
        for chunk in torch.split(x01.float().contiguous(), self.max_batch):
            outs.append(self.method.execute([chunk.contiguous()])[0])
        return torch.cat(outs)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run01(x.float() * self.std + self.mean)
