"""The time-budgeted run (--time-budget): the plan, its determinism, its refusal and its resume."""

import pytest
import torch
from testkit import assert_one_line_error

from mobilenet_edu import engine
from mobilenet_edu.checkpoint import load_checkpoint, load_weights
from mobilenet_edu.engine import Plan, Speed, plan_budget, recipe, train
from mobilenet_edu.errors import MobileNetError

# A small synthetic run: 512 images in batches of 32 = 16 steps an epoch, 24 px then 32 px.
BASE = dict(data="synthetic", width=0.25, batch_size=32, threads=1, lr=0.05, low_res=24, full_res_epochs=1,
            epochs=4, tta=False)
SPE = 16


def fixed_speed(low=0.5, full=1.0, evaluation=2.0, probe=3.0):
    """A stand-in for measure_speed: what a machine of this speed would measure, and a count of the calls."""
    calls = []

    def measure(model, cfg, data, amp, sizes):
        calls.append(sizes)
        return Speed({24: low, 32: full}, evaluation, probe)

    measure.calls = calls
    return measure


def test_the_plan_fills_the_budget_with_the_recipes_share_of_full_size_epochs():
    speed = Speed({24: 0.5, 32: 1.0}, 2.0, 3.0)
    plan = plan_budget(600, speed, 100, 24, 32, 3 / 16, 3)
    # E epochs, F = round(3E/16) of them at full size, cost 100 (0.5 (E - F) + 1.0 F) + 2 (E + 3) s, within
    # 0.95 x 600 - 3 = 567 s: 8 epochs (2 at full size) cost 500 + 22 = 522 s; 9 would cost 550 + 24 = 574 s
    assert plan == Plan(8, 2, pytest.approx(522.0))
    assert plan_budget(1200, speed, 100, 24, 32, 3 / 16, 3).epochs > plan.epochs  # twice the time, more epochs
    slower = Speed({24: 1.0, 32: 2.0}, 4.0, 3.0)
    assert plan_budget(600, slower, 100, 24, 32, 3 / 16, 3).epochs < plan.epochs  # a slower machine, fewer
    # without progressive resizing every epoch is full size
    assert plan_budget(600, speed, 100, 0, 32, 1.0, 1).full_res_epochs == plan_budget(600, speed, 100, 0, 32, 1.0,
                                                                                     1).epochs


def test_a_budget_too_small_is_refused_with_the_smallest_that_works():
    speed = Speed({24: 0.5, 32: 1.0}, 2.0, 3.0)
    with pytest.raises(MobileNetError) as e:
        plan_budget(60, speed, 100, 24, 32, 3 / 16, 3)  # one full-size epoch: 100 s + 4 evaluations of 2 s
    msg = str(e.value)
    assert "\n" not in msg and "--time-budget 1 min is too small" in msg
    least = float(msg.rsplit("works is ", 1)[1].split(" min")[0])
    assert least == pytest.approx((108 + 3) / 0.95 / 60, abs=0.1)
    plan_budget(least * 60, speed, 100, 24, 32, 3 / 16, 3)  # the budget it names does work


def test_same_speed_and_seed_give_the_same_plan_and_the_same_weights(monkeypatch, tmp_path):
    measure = fixed_speed()
    monkeypatch.setattr(engine, "measure_speed", measure)
    budget = (SPE * (0.5 * 2 + 1.0) + 2.0 * 4 + 3.0) / 0.95 / 60 + 0.001  # exactly 3 epochs fit (2 at 24 px)
    cards = [train(recipe("full", **BASE, time_budget=budget, out=str(tmp_path / f"r{i}")), progress=False)
             for i in range(2)]
    assert len(measure.calls) == 2 and measure.calls[0] == [24, 32]
    for card in cards:
        assert card["budget"]["plan"]["epochs"] == card["epochs_done"] == 3
        assert card["budget"]["plan"]["full_res_epochs"] == 1
        assert [r["train_size"] for r in card["history"]] == [24, 24, 32]
        assert card["budget"]["minutes"] == budget and card["budget"]["measured"]["step_s"] == {"24": 0.5, "32": 1.0}
        assert "plan 3 epochs" in card["budget"]["line"]
    a = load_weights(tmp_path / "r0" / "weights.safetensors").state_dict()
    b = load_weights(tmp_path / "r1" / "weights.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_real_probe_changes_nothing_but_the_plan(monkeypatch, tmp_path):
    """With the real probe and the plan fixed, the run's weights are those of the same epochs asked for by number:
    the probe's steps on its copy leave the model, the optimiser, the data order and the random state alone."""
    monkeypatch.setattr(engine, "plan_budget", lambda *a, **k: Plan(3, 1, 1.0))
    budgeted = train(recipe("full", **BASE, time_budget=5.0, out=str(tmp_path / "b")), progress=False)
    assert budgeted["budget"]["measured"]["step_s"]["24"] > 0 and budgeted["epochs_done"] == 3
    plain = train(recipe("full", **{**BASE, "epochs": 3}, out=str(tmp_path / "plain")), progress=False)
    assert plain["budget"] is None and plain["epochs_done"] == 3
    a = load_weights(tmp_path / "b" / "weights.safetensors").state_dict()
    c = load_weights(tmp_path / "plain" / "weights.safetensors").state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_the_real_probe_measures_this_machine_and_leaves_the_random_state(tmp_path):
    cfg = recipe("full", **BASE, time_budget=5.0, out=str(tmp_path / "r"))
    from mobilenet_edu.data import build_data

    data = build_data("synthetic", None, 32, 500, small_input=True, synthetic_size=512)
    model = engine.build_model(cfg, len(data.classes), True).to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    speed = engine.measure_speed(model, cfg, data, None, [24, 32])
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(speed.step_s) == {24, 32} and all(s > 0 for s in speed.step_s.values())
    assert speed.eval_s > 0 and speed.probe_s > 0


def test_a_run_killed_mid_way_resumes_its_plan_not_a_new_one(monkeypatch, tmp_path):
    budget = (SPE * (0.5 * 2 + 1.0) + 2.0 * 4 + 3.0) / 0.95 / 60 + 0.001  # 3 epochs at this speed
    monkeypatch.setattr(engine, "measure_speed", fixed_speed())
    whole = train(recipe("full", **BASE, time_budget=budget, out=str(tmp_path / "whole")), progress=False)
    run = tmp_path / "cut"
    cut = train(recipe("full", **BASE, time_budget=budget, out=str(run), max_steps=SPE), progress=False)
    assert cut["epochs_done"] == 1 and load_checkpoint(run / "ckpt.pt")["budget"]["plan"]["epochs"] == 3
    faster = fixed_speed(low=0.05, full=0.1, evaluation=0.2)  # a machine now ten times faster would plan more
    monkeypatch.setattr(engine, "measure_speed", faster)
    resumed = train(recipe("full", **BASE, time_budget=budget, out=str(run), resume=True), progress=False)
    assert faster.calls == []  # no new probe
    assert resumed["epochs_done"] == 3 and resumed["budget"]["plan"] == whole["budget"]["plan"]
    a = load_weights(tmp_path / "whole" / "weights.safetensors").state_dict()
    b = load_weights(run / "weights.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_budget_flags(cli, tmp_path, monkeypatch):
    assert recipe("classroom").time_budget == 10.0
    assert recipe("classroom", epochs=5).time_budget is None  # a number of epochs asked for: no budget
    assert recipe("classroom", epochs=5, time_budget=3).time_budget == 3
    fast = ["--width", "0.25", "--batch-size", "32", "--threads", "1", "--no-tta"]
    assert_one_line_error(cli("train", "--data", "synthetic", "--time-budget", "-1", "--out", tmp_path / "x", *fast),
                          "minutes")
    r = cli("train", "--data", "synthetic", "--time-budget", "0.01", "--low-res", "24", "--full-res-epochs", "1",
            "--out", tmp_path / "y", *fast)
    assert_one_line_error(r, "smallest budget that works is")
    assert not (tmp_path / "y" / "weights.safetensors").exists()
    r = cli("train", "--data", "synthetic", "--time-budget", "0.15", "--out", tmp_path / "z", *fast, check=True)
    assert "time budget 0.15 min: measured" in r.stdout and "-> plan" in r.stdout
