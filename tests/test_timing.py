"""The one timer (mobilenet_edu.timing) and the one mult-add counter (profile.count_macs)."""

import pytest
import torch
from torch import nn

from mobilenet_edu import MobileNetError, MobileNetV1, timing
from mobilenet_edu.profile import count_macs, profile


def test_candidates_take_turns_and_threads_are_set_then_restored():
    calls, threads_seen = [], set()
    before = torch.get_num_threads()

    def make(name):
        def fn():
            calls.append(name)
            threads_seen.add(torch.get_num_threads())
        return fn

    out = timing.compare({"a": make("a"), "b": make("b")}, threads=1, rounds=3, seconds=0.001)
    assert set(out) == {"a", "b"} and threads_seen == {1} and torch.get_num_threads() == before
    # three rounds, each timing a then b: the calls switch between the two names at least five times
    switches = sum(1 for x, y in zip(calls, calls[1:]) if x != y)
    assert switches >= 5, switches
    for t in out.values():
        assert t.blocks >= 3 and t.median > 0 and t.iqr >= 0 and t.threads == 1
        assert t.rate(10) == pytest.approx(10 / t.median)


def test_median_and_iqr_come_from_every_block(monkeypatch):
    blocks = iter([[1.0, 2.0], [3.0, 4.0], [5.0]])   # three rounds of measured block times (seconds)

    class FakeTimer:
        def __init__(self, **kwargs):
            self.fn = kwargs["globals"]["fn"]

        def blocked_autorange(self, min_run_time):
            self.fn()

            class M:
                times = next(blocks)
            return M

    monkeypatch.setattr(timing.benchmark, "Timer", FakeTimer)
    t = timing.time_it(lambda: None, label="x", rounds=3, seconds=0)
    assert (t.median, t.iqr, t.blocks) == (3.0, 2.0, 5)
    assert "3000.00 ms" in str(t) and "5 blocks" in str(t)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(MobileNetError, match="nothing to time"):
        timing.compare({})
    with pytest.raises(MobileNetError, match="rounds"):
        timing.time_it(lambda: None, rounds=-1)


def test_quick_switch_shrinks_rounds_and_seconds(monkeypatch):
    from mobilenet_edu.settings import SIZES, size

    monkeypatch.setenv("MOBILENET_EDU_QUICK", "1")
    # Quick runs keep three interleaved rounds (a lesson's timing asserts rest on their median, and CI runs two
    # notebooks side by side on two cores) but shorter measurements.
    assert size("timing_rounds") == SIZES["timing_rounds"][1] >= 3
    assert size("timing_seconds") == SIZES["timing_seconds"][1] < SIZES["timing_seconds"][0]


def test_count_macs_is_profile_for_mobilenet_and_the_formula_elsewhere():
    net = MobileNetV1(10, width=0.5)
    assert count_macs(net, 160) == profile(net, 160)["macs"]
    tiny = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    assert count_macs(tiny, 10) == 3 * 3 * 3 * 8 * 100 + 3 * 3 * 1 * 8 * 100 + 8 * 5
