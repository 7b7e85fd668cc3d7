"""Deployment: ONNX, int8, ExecuTorch and TensorRT exports, each proven against PyTorch by one parity check."""
