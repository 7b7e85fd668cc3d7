import importlib.util
import json

import numpy as np
import pytest
import torch
from testkit import CIFAR_DIR, assert_one_line_error, needs_cifar

from mobilenet_edu import MobileNetV1
from mobilenet_edu.checkpoint import save_weights
from mobilenet_edu.deploy.parity import check_parity, parity

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A small model with non-trivial BN statistics and classifier, so logits are O(1) and vary."""
    torch.manual_seed(0)
    m = MobileNetV1(num_classes=10, width=0.25, small_input=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) * 2 + 0.5)
        m.classifier.weight.normal_(0, 0.5, generator=g)
    card = {"arch": m.arch_args, "mean": [0.5, 0.45, 0.4], "std": [0.25, 0.24, 0.26], "input_size": 32,
            "classes": [f"c{i}" for i in range(10)], "dataset": "synthetic"}
    return save_weights(m, tmp_path_factory.mktemp("w") / "tiny.safetensors", card)


def test_onnx_contract_and_parity(cli, weights, tmp_path):
    out = tmp_path / "m.onnx"
    r = cli("export", "--format", "onnx", "--weights", weights, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "top-1 agreement 100.00%" in r.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # one self-contained file
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["logits"]
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    card = json.loads({p.key: p.value for p in m.metadata_props}["mobilenet_card"])
    assert card["classes"][0] == "c0"
    # [0, 1] input, normalisation inside the graph; any batch size
    from mobilenet_edu.checkpoint import load_weights

    model = load_weights(weights)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n in (1, 7):
        x01 = torch.rand(n, 3, 32, 32)
        ref = model((x01 - torch.tensor(card["mean"]).view(1, 3, 1, 1)) / torch.tensor(card["std"]).view(1, 3, 1, 1))
        got = sess.run(["logits"], {"input": x01.numpy()})[0]
        assert np.abs(got - ref.detach().numpy()).max() < 1e-4
    # an exported file is scored like the PyTorch one
    r1 = cli("eval", "--weights", weights, "--data", "synthetic", "--json", "--plot", "")
    r2 = cli("eval", "--weights", out, "--data", "synthetic", "--json", "--plot", "")
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr
    assert json.loads(r1.stdout)["top1"] == json.loads(r2.stdout)["top1"]


def test_int8_export_runs_and_is_smaller(cli, weights, tmp_path):
    out = tmp_path / "m8.onnx"
    r = cli("export", "--format", "onnx-int8", "--weights", weights, "--out", out, "--calib-data", "synthetic")
    assert "parity (int8" in r.stdout, r.stdout + r.stderr
    m = onnx.load(out)
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # per-channel weight scales (one per output channel), not one per tensor
    inits = {i.name: i for i in m.graph.initializer}
    scales = [inits[n.input[1]] for n in m.graph.node if n.op_type == "DequantizeLinear"
              and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert scales and all(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)


def test_parity_check_thresholds():
    ref = lambda x: x  # noqa: E731
    ok = parity(ref, lambda x: x + 5e-4, [torch.randn(8, 10)])
    check_parity(ok, "fp32")
    from mobilenet_edu import MobileNetError

    bad = parity(ref, lambda x: x + 2e-3, [torch.randn(8, 10)])
    with pytest.raises(MobileNetError, match="parity FAILED"):
        check_parity(bad, "fp32")
    flip = parity(ref, lambda x: -x, [torch.randn(64, 10)])
    with pytest.raises(MobileNetError, match="agreement"):
        check_parity(flip, "int8")


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch not installed")
def test_executorch_export_runs_in_executorch_runtime(cli, weights, tmp_path):
    out = tmp_path / "m.pte"
    r = cli("export", "--format", "executorch", "--weights", weights, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "top-1 agreement 100.00%" in r.stdout and (tmp_path / "m.json").is_file()
    r = cli("eval", "--weights", out, "--data", "synthetic", "--json", "--plot", "")
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch not installed")
def test_executorch_int8_pt2e_export(cli, weights, tmp_path):
    out = tmp_path / "m8.pte"
    r = cli("export", "--format", "executorch-int8", "--weights", weights, "--out", out, "--calib-data", "synthetic")
    assert "parity (int8" in r.stdout, r.stdout + r.stderr[-2000:]
    # int8 weights: about a quarter of fp32 (an fp32 .pte is the size of the fp32 safetensors, within 2%)
    assert out.stat().st_size < 0.6 * weights.stat().st_size


def _trt_ready():
    return torch.cuda.is_available() and importlib.util.find_spec("tensorrt") is not None


@pytest.mark.skipif(not _trt_ready(), reason="TensorRT export needs tensorrt and an NVIDIA GPU")
def test_tensorrt_fp16_engine(cli, weights, tmp_path):
    out = tmp_path / "m.engine"
    r = cli("export", "--format", "tensorrt", "--weights", weights, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "parity (fp16" in r.stdout


@pytest.mark.skipif(_trt_ready(), reason="checks the message shown where TensorRT cannot run")
def test_tensorrt_without_gpu_is_one_line(cli, weights, tmp_path):
    assert_one_line_error(cli("export", "--format", "tensorrt", "--weights", weights, "--out", tmp_path / "m.engine"),
                          "tensorrt")


def test_bench_json_rows(cli, tmp_path):
    r = cli("bench", "--width", "0.25", "--small-input", "--num-classes", "10", "--batch-size", "1,2",
            "--backends", "torch,onnx", "--no-reference", "--iters", "3", "--threads", "1", "--json",
            "--peak-gflops", "100", "--plot", tmp_path / "b.png")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert {(x["backend"], x["batch"]) for x in rows} == {("torch", 1), ("onnx", 1), ("torch", 2), ("onnx", 2)}
    for x in rows:
        assert x["median_ms"] > 0 and x["iqr_ms"] >= 0 and 0 < x["roofline_fraction"]
        assert x["blocks"] == 3   # --iters 3: three interleaved rounds of the one timer, one timed call each
    assert (tmp_path / "b.png").stat().st_size > 0
    assert_one_line_error(cli("bench", "--backends", "torch,cuda-magic", "--no-reference"), "cuda-magic")


@needs_cifar
def test_shipped_weights_onnx_parity_on_cifar_test_images(cli, tmp_path):
    from mobilenet_edu.pretrained import available

    if "cifar10" not in available():
        pytest.skip("no shipped cifar10 weights")
    r = cli("export", "--format", "onnx", "--weights", "cifar10", "--out", tmp_path / "c.onnx", "--data-dir",
            CIFAR_DIR, "--parity-size", "2000")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "top-1 agreement 100.00%" in r.stdout


@needs_cifar
def test_shipped_weights_onnx_int8_agrees_and_loses_under_one_point(cli, tmp_path):
    """Issue #4: int8 within 1.0 top-1 point of fp32 on all 10,000 test images, and >= 98% agreement."""
    import re

    from mobilenet_edu.pretrained import available

    if "cifar10" not in available():
        pytest.skip("no shipped cifar10 weights")
    out = tmp_path / "c8.onnx"
    r = cli("export", "--format", "onnx-int8", "--weights", "cifar10", "--out", out, "--data-dir", CIFAR_DIR,
            "--calib-size", "256")
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]  # the exporter itself fails below 98% agreement
    m = re.search(r"parity \(int8, (\d+) images\): top-1 agreement ([\d.]+)%.*PyTorch ([\d.]+)% vs export ([\d.]+)%",
                  r.stdout)
    assert m, r.stdout
    n, agree, fp32, int8 = int(m[1]), float(m[2]), float(m[3]), float(m[4])
    assert n == 10000 and agree >= 98.0
    assert fp32 - int8 <= 1.0, r.stdout
    assert out.stat().st_size < 0.35 * 12.9e6  # int8 weights: about a quarter of the fp32 file


@pytest.mark.parametrize("small_input, size, stride, per_batch", [(True, 32, 1, 98), (False, 224, 2, 8)])
def test_calibration_batches_follow_the_pixels_after_the_stem(tmp_path, small_input, size, stride, per_batch):
    """A stride-1 stem keeps 4x the activations per image: calibration batches shrink to match, so an int8 export
    of the small-input CIFAR model holds no more activations per batch than one of the ImageNet layout."""
    pytest.importorskip("onnx")
    import onnx

    from mobilenet_edu.deploy.onnx import calibration_batches, export_onnx, stem_stride

    model = MobileNetV1(10, width=0.25, small_input=small_input)
    card = {"mean": [0.5] * 3, "std": [0.25] * 3, "input_size": size}
    path = export_onnx(model, card, tmp_path / "m.onnx")
    assert stem_stride(onnx.load(path)) == stride
    batches = calibration_batches(np.zeros((200, 3, size, size), np.float32), stride)
    assert [len(b) for b in batches[:2]] == [per_batch, per_batch] and sum(map(len, batches)) == 200
