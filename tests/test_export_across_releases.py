"""The ONNX file reads the same whichever exporter wrote it (TorchScript on torch 2.5/2.6, dynamo from 2.7; CI tests
the lowest and the newest): the same operators where lesson 09 looks, and nothing about the machine that wrote it."""

from pathlib import Path

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import mobilenet_edu  # noqa: E402
from mobilenet_edu.checkpoint import CARD_KEY  # noqa: E402
from mobilenet_edu.deploy.export import model_and_card  # noqa: E402
from mobilenet_edu.deploy.onnx import OnnxRunner, export_onnx  # noqa: E402


def test_file_has_the_same_shape_on_every_release(tmp_path, capfd):
    model, card = model_and_card(None, width=0.25, resolution=224, num_classes=10, small_input=True)
    path = export_onnx(model, card, tmp_path / "m.onnx")
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)  # nothing on stdout or stderr (a notebook cell would show it)
    m = onnx.load(path)
    ops = [n.op_type for n in m.graph.node]
    assert ops[:2] == ["Sub", "Div"] and ops[-3:] == ["ReduceMean", "Reshape", "Gemm"], ops
    assert ops.count("Conv") == 27 and "Identity" not in ops and "BatchNormalization" not in ops
    # no exporter notes: no stack traces, so no paths of the machine that exported it
    assert not any(n.metadata_props or n.doc_string for n in m.graph.node)
    assert not m.graph.metadata_props
    package_dir = str(Path(mobilenet_edu.__file__).parent)
    assert package_dir.encode() not in path.read_bytes()
    assert [p.key for p in m.metadata_props] == [CARD_KEY]
    x = torch.randn(3, 3, 32, 32)
    assert (OnnxRunner(path)(x) - model(x)).abs().max() < 1e-4  # and a batch of 3, though exported with 2

