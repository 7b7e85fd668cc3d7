"""`mobilenet_edu.bench` times with the project's one timer and counts with its one mult-add counter."""

import pytest
from torch import nn

from mobilenet_edu import MobileNetError, MobileNetV1, bench
from mobilenet_edu.profile import count_macs


def test_flops_are_two_per_mult_add_of_count_macs():
    net = MobileNetV1(10, width=0.25, small_input=True)
    assert bench.flops(net, 32) == 2 * count_macs(net, 32)
    vgg_like = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    assert bench.flops(vgg_like, 8) == 2 * (3 * 3 * 3 * 4 * 64 + 256 * 2)


def test_entries_take_turns_and_rows_divide_by_eager():
    calls = []
    entries = [bench.Entry("m", backend, 4, lambda b=backend: calls.append(b), flops=1e6)
               for backend in ("torch", "onnx")]
    bench.time_entries(entries, rounds=3, seconds=0.0, threads=1)
    assert all(e.timing.blocks == 3 and e.timing.threads == 1 for e in entries)
    assert sum(1 for x, y in zip(calls, calls[1:]) if x != y) >= 5   # interleaved, not one after the other
    rows = bench.summarize(entries, peak_gflops=100.0)
    torch_row, onnx_row = rows
    assert torch_row["speedup_vs_torch"] == 1.0
    assert onnx_row["speedup_vs_torch"] == pytest.approx(torch_row["median_ms"] / onnx_row["median_ms"])
    assert onnx_row["img_per_s"] == pytest.approx(4 / (onnx_row["median_ms"] / 1e3))
    assert onnx_row["roofline_ms"] == pytest.approx(1e6 / 100e9 * 1e3)
    assert onnx_row["roofline_fraction"] == pytest.approx(onnx_row["roofline_ms"] / onnx_row["median_ms"])
    table = bench.format_rows(rows, 100.0, 1)
    assert "median ms" in table and "% floor" in table and "roofline" not in table   # the compute floor, by name


def test_an_untimed_entry_is_one_line_error():
    with pytest.raises(MobileNetError, match="never timed"):
        bench.summarize([bench.Entry("m", "torch", 1, lambda: None, 1.0)], 1.0)


def test_peak_is_measured_with_the_timer(monkeypatch):
    seen = {}

    def fake_time_it(fn, label, **kwargs):
        fn()
        seen["label"] = label
        return bench.Timing(label, median=2 * 1024 ** 3 / 50e9, iqr=0.0, blocks=1, threads=1)

    monkeypatch.setattr(bench, "time_it", fake_time_it)
    assert bench.measure_peak_gflops(0.01) == pytest.approx(50.0)
    assert "matmul" in seen["label"]
