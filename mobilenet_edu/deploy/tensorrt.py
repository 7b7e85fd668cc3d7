"""TensorRT engines (fp16 and int8) built from the ONNX file, when TensorRT and a CUDA GPU are present."""

from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint import atomic_write, write_json
from ..errors import MobileNetError


def available() -> str | None:
    """None when TensorRT can be used here, else the reason in one line."""
    try:
        import torch

        if not torch.cuda.is_available():
            return "TensorRT export needs an NVIDIA GPU and none is visible here"
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT export needs the 'tensorrt' package (pip install tensorrt) and an NVIDIA GPU"
    return None


def build_engine(onnx_path: str | os.PathLike, out: str | os.PathLike, card: dict, precision: str = "fp16",
                 max_batch: int = 256) -> Path:
    """Parse the ONNX file and build a serialized engine with a dynamic batch profile (1..max_batch)."""
    why = available()
    if why:
        raise MobileNetError(why)
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise MobileNetError(f"TensorRT cannot parse {onnx_path}: {errs[:300]}")
    config = builder.create_builder_config()
    size, c = int(card["input_size"]), int(card["arch"].get("in_chans", 3))
    prof = builder.create_optimization_profile()
    prof.set_shape("input", (1, c, size, size), (min(32, max_batch), c, size, size), (max_batch, c, size, size))
    config.add_optimization_profile(prof)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        # The int8 engine is built from the ONNX Runtime QDQ file (explicit quantisation), so no calibrator.
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise MobileNetError("TensorRT failed to build the engine (see the messages above)")
    path = atomic_write(out, lambda t: Path(t).write_bytes(bytes(blob)))
    write_json(Path(out).with_suffix(".json"), card)
    return path


class TrtRunner:
    """Runs a serialized engine on the GPU through torch tensors; takes the normalised batch like PyTorch."""

    def __init__(self, path: str | os.PathLike, card: dict):
        import tensorrt as trt
        import torch

        self.torch = torch
        self.card = card
        rt = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = rt.deserialize_cuda_engine(Path(path).read_bytes())
        self.ctx = self.engine.create_execution_context()
        self.mean = torch.tensor(card["mean"], device="cuda").view(1, -1, 1, 1)
        self.std = torch.tensor(card["std"], device="cuda").view(1, -1, 1, 1)

    def __call__(self, x):
        torch = self.torch
        x01 = (x.cuda().float() * self.std + self.mean).contiguous()
        self.ctx.set_input_shape("input", tuple(x01.shape))
        out = torch.empty((x01.shape[0], len(self.card["classes"])), device="cuda", dtype=torch.float32)
        self.ctx.set_tensor_address("input", x01.data_ptr())
        self.ctx.set_tensor_address("logits", out.data_ptr())
        self.ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        torch.cuda.synchronize()
        return out.cpu()
