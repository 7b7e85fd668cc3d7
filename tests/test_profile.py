import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mobilenet_edu import MobileNetV1
from mobilenet_edu.profile import profile


def test_paper_table2_alpha1_224():
    p = profile(MobileNetV1(), 224)
    assert p["params"] == 4_231_976
    assert round(p["macs"] / 1e6, 1) == 568.7
    weights = sum(v["params"] for v in p["by_type"].values())
    shares = {t: (v["macs"] / p["macs"] * 100, v["params"] / weights * 100) for t, v in p["by_type"].items()}
    expected = {"pointwise": (94.86, 74.59), "depthwise": (3.06, 1.06), "conv": (1.91, 0.02), "fc": (0.18, 24.33)}
    for t, (em, ep) in expected.items():
        assert shares[t][0] == pytest.approx(em, abs=0.05), t
        assert shares[t][1] == pytest.approx(ep, abs=0.05), t
    assert p["by_type"]["conv"]["macs"] == 112 * 112 * 32 * 27  # the paper's 1.19% is a transposition of 1.91%


GRID = {  # Table 6/7 style: M mult-adds at 224/192/160/128, and M params
    1.0: ((568.7, 418.1, 290.7, 186.4), 4.232),
    0.75: ((325.4, 239.3, 166.4, 106.8), 2.586),
    0.5: ((149.5, 110.0, 76.5, 49.2), 1.332),
    0.25: ((41.0, 30.2, 21.1, 13.6), 0.470),
}


@pytest.mark.parametrize("width", list(GRID))
def test_width_resolution_grid(width):
    macs, params = GRID[width]
    m = MobileNetV1(width=width)
    for res, want in zip((224, 192, 160, 128), macs):
        got = profile(m, res)["macs"] / 1e6
        assert got == pytest.approx(want, rel=0.005), (width, res, got)
    assert profile(m, 224)["params"] / 1e6 == pytest.approx(params, rel=0.005)


@pytest.mark.parametrize("width,res,small", [(1.0, 224, False), (0.5, 160, False), (1.0, 32, True)])
def test_macs_match_torch_flop_counter(width, res, small):
    m = MobileNetV1(width=width, small_input=small).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(torch.zeros(1, 3, res, res))
    # FlopCounterMode counts conv and matmul FLOPs as 2 per mult-add
    assert counter.get_total_flops() == 2 * profile(m, res)["macs"]


def test_layer_rows_cover_the_network():
    p = profile(MobileNetV1(), 224)
    assert len(p["layers"]) == 1 + 26 + 1
    assert p["layers"][0]["shape"] == [32, 112, 112]
    assert p["layers"][-2]["shape"] == [1024, 7, 7]


def test_count_macs_counts_any_conv_network_like_the_flop_counter():
    """Lesson 04 counts the tutorial's 12-block nn.Sequential with count_macs: one 512->512 block short."""
    from mobilenet_edu.profile import count_macs
    from mobilenet_edu.tutorial import tutorial_mobilenet

    net = tutorial_mobilenet(1000).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
    assert counter.get_total_flops() == 2 * count_macs(net, 224) == 2 * 516_456_960
    assert count_macs(MobileNetV1(), 224) - count_macs(net, 224) == 52_283_392 == 512 * 14 * 14 * (9 + 512)
