"""The explorers' numbers, and that their widgets react to a slider, without a browser."""

import pytest

from mobilenet_edu.widgets import (
    ALPHA_SLIDER_CLASS,
    PAPER_TABLES_6_7,
    READOUT_CLASS,
    RESOLUTION_SLIDER_CLASS,
    multiplier_explorer,
    multiplier_readout,
    readout_html,
)


def by_class(box, cls):
    found = [c for c in box.children if cls in c._dom_classes]
    assert len(found) == 1, (cls, box.children)
    return found[0]


def test_readout_at_alpha_1_224_is_the_paper_network():
    r = multiplier_readout(1.0, 224, timed=False)
    assert (r["params"], r["macs"]) == (4_231_976, 568_740_352)
    assert r["params_vs_base"] == r["macs_vs_base"] == 1.0
    assert r["latency_ms"] is None and r["paper"] == (569, 4.2, 70.6)


@pytest.mark.parametrize("width,resolution", list(PAPER_TABLES_6_7))
def test_readout_reproduces_tables_6_and_7(width, resolution):
    macs, params, _ = PAPER_TABLES_6_7[(width, resolution)]
    r = multiplier_readout(width, resolution, timed=False)
    assert r["macs"] / 1e6 == pytest.approx(macs, rel=0.005)
    assert round(r["params"] / 1e6, 1) == params  # the paper prints parameters to 0.1 M
    assert r["paper"] == PAPER_TABLES_6_7[(width, resolution)]


def test_slider_float_noise_is_rounded_away():
    r = multiplier_readout(0.35000000000000003, 128, timed=False)
    assert r["width"] == 0.35 and r["paper"] is None
    assert r["params"] == multiplier_readout(0.35, 128, timed=False)["params"]


def test_latency_is_measured_with_the_benchmark_timer(monkeypatch):
    monkeypatch.setenv("MOBILENET_EDU_QUICK", "1")
    r = multiplier_readout(0.25, 128)
    assert r["latency_ms"] > 0 and r["latency_iqr_ms"] >= 0 and r["latency_blocks"] >= 1
    assert "ms" in readout_html(r) and f"median of {r['latency_blocks']} blocks" in readout_html(r)


def test_readout_times_on_the_threads_it_is_given(monkeypatch):
    import torch

    monkeypatch.setenv("MOBILENET_EDU_QUICK", "1")
    before = torch.get_num_threads()
    r = multiplier_readout(0.25, 128, threads=1)
    assert r["threads"] == 1 and r["latency_ms"] > 0
    assert torch.get_num_threads() == before  # the timer puts the thread count back
    assert "1 CPU thread(s)" in readout_html(r)
    assert multiplier_readout(0.25, 128, timed=False, threads=1)["threads"] == 1


def test_explorer_widgets_carry_their_classes():
    box = multiplier_explorer(timed=False)
    alpha, res, readout = (by_class(box, c) for c in (ALPHA_SLIDER_CLASS, RESOLUTION_SLIDER_CLASS, READOUT_CLASS))
    assert alpha.continuous_update is False and res.continuous_update is False
    assert (alpha.value, alpha.min, alpha.step) == (1.0, 0.25, 0.05) and alpha.max > 1.0
    assert (res.value, res.min, res.max, res.step) == (224, 128, 224, 32)
    assert "class='mnedu-params'" in readout.value and "4,231,976" in readout.value


def test_moving_a_slider_changes_the_readout():
    box = multiplier_explorer(timed=False)
    alpha, res, readout = (by_class(box, c) for c in (ALPHA_SLIDER_CLASS, RESOLUTION_SLIDER_CLASS, READOUT_CLASS))
    start = readout.value
    alpha.value = 0.5
    half = multiplier_readout(0.5, 224, timed=False)
    assert readout.value != start and readout.value == readout_html(half)
    assert f"{half['params']:,}" in readout.value and "149.5 M" in readout.value
    res.value = 160
    assert "76.5 M" in readout.value and "0.50" in readout.value
    alpha.value = 1.0
    res.value = 224
    assert readout.value == start  # same settings, same text (no timing in it)


def test_training_dashboard_follows_a_run(tmp_path):
    """The dashboard is a progress object for engine.train: it sees every epoch and ends with the result."""
    from mobilenet_edu.engine import recipe, train
    from mobilenet_edu.widgets import TrainingDashboard, plot_history

    reference = [{"epoch": 1, "train_loss": 2.0, "test_loss": 1.9, "train_acc": 30.0, "eval_top1": 35.0}]
    dash = TrainingDashboard(reference=reference, min_interval_s=0.0)
    cfg = recipe("quick", data="synthetic", out=str(tmp_path / "run"), epochs=2, synthetic_size=256, batch_size=32)
    card = train(cfg, progress=dash)
    assert [r["epoch"] for r in dash.history] == [1, 2] == [r["epoch"] for r in card["history"]]
    assert dash.bar.value == dash.bar.max == 8 and dash.bar.description == "epoch 2/2"
    assert dash.status.value.startswith("final test top-1") and "weights:" not in dash.status.value
    assert "mnedu-dashboard" in dash.widget._dom_classes
    fig = plot_history(dash.history, reference, total_epochs=2)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 4 and len(acc_ax.lines) == 4  # train and eval, this run and the reference
    assert list(acc_ax.lines[-1].get_xdata()) == [1, 2]
    # both panels name the split alike; the reference run is drawn pale, this run solid
    assert [ln.get_label() for ln in acc_ax.lines][1::2] == ["test top-1 (reference run)", "test top-1 (this run)"]
    assert loss_ax.lines[1].get_label() == "test (reference run)"
    assert [ln.get_alpha() for ln in acc_ax.lines] == [0.4, 0.4, 1.0, 1.0]
