"""The explorers' numbers, and that their widgets react to a slider, without a browser."""

import pytest

from mobilenet_edu.widgets import (
    ALPHA_SLIDER_CLASS,
    PAPER_TABLES_6_7,
    READOUT_CLASS,
    RESOLUTION_SLIDER_CLASS,
    default_latency_iters,
    multiplier_explorer,
    multiplier_readout,
    readout_html,
)


def by_class(box, cls):
    found = [c for c in box.children if cls in c._dom_classes]
    assert len(found) == 1, (cls, box.children)
    return found[0]


def test_readout_at_alpha_1_224_is_the_paper_network():
    r = multiplier_readout(1.0, 224, latency_iters=0)
    assert (r["params"], r["macs"]) == (4_231_976, 568_740_352)
    assert r["params_vs_base"] == r["macs_vs_base"] == 1.0
    assert r["latency_ms"] is None and r["paper"] == (569, 4.2, 70.6)


@pytest.mark.parametrize("width,resolution", list(PAPER_TABLES_6_7))
def test_readout_reproduces_tables_6_and_7(width, resolution):
    macs, params, _ = PAPER_TABLES_6_7[(width, resolution)]
    r = multiplier_readout(width, resolution, latency_iters=0)
    assert r["macs"] / 1e6 == pytest.approx(macs, rel=0.005)
    assert round(r["params"] / 1e6, 1) == params  # the paper prints parameters to 0.1 M
    assert r["paper"] == PAPER_TABLES_6_7[(width, resolution)]


def test_slider_float_noise_is_rounded_away():
    r = multiplier_readout(0.35000000000000003, 128, latency_iters=0)
    assert r["width"] == 0.35 and r["paper"] is None
    assert r["params"] == multiplier_readout(0.35, 128, latency_iters=0)["params"]


def test_latency_is_measured_and_the_quick_switch_shrinks_it(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MOBILENET_EDU_QUICK", raising=False)
    full = default_latency_iters()
    monkeypatch.setenv("MOBILENET_EDU_QUICK", "1")
    assert 0 < default_latency_iters() < full
    r = multiplier_readout(0.25, 128)
    assert r["latency_iters"] == default_latency_iters() and r["latency_ms"] > 0
    assert "ms" in readout_html(r) and f"median of {r['latency_iters']}" in readout_html(r)


def test_explorer_widgets_carry_their_classes():
    box = multiplier_explorer(latency_iters=0)
    alpha, res, readout = (by_class(box, c) for c in (ALPHA_SLIDER_CLASS, RESOLUTION_SLIDER_CLASS, READOUT_CLASS))
    assert alpha.continuous_update is False and res.continuous_update is False
    assert (alpha.value, alpha.min, alpha.step) == (1.0, 0.25, 0.05) and alpha.max > 1.0
    assert (res.value, res.min, res.max, res.step) == (224, 128, 224, 32)
    assert "class='mnedu-params'" in readout.value and "4,231,976" in readout.value


def test_moving_a_slider_changes_the_readout():
    box = multiplier_explorer(latency_iters=0)
    alpha, res, readout = (by_class(box, c) for c in (ALPHA_SLIDER_CLASS, RESOLUTION_SLIDER_CLASS, READOUT_CLASS))
    start = readout.value
    alpha.value = 0.5
    half = multiplier_readout(0.5, 224, latency_iters=0)
    assert readout.value != start and readout.value == readout_html(half)
    assert f"{half['params']:,}" in readout.value and "149.5 M" in readout.value
    res.value = 160
    assert "76.5 M" in readout.value and "0.50" in readout.value
    alpha.value = 1.0
    res.value = 224
    assert readout.value == start  # same settings, same text (no timing in it)
