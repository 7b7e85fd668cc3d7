"""The concept diagrams draw what they say: connections of real layers, the network's real stages."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mobilenet_edu import MobileNetError, MobileNetV1  # noqa: E402
from mobilenet_edu.data import CIFAR10_MEAN, CIFAR10_STD, TensorBatches  # noqa: E402
from mobilenet_edu.diagrams import (  # noqa: E402
    connections,
    draw_augmentation,
    draw_connections,
    draw_data_parallel,
    draw_network,
    stages,
)


def artists(fig, gid):
    return [a for ax in fig.axes for a in [*ax.lines, *ax.patches, *ax.texts] if a.get_gid() == gid]


def test_connections_follow_the_weight_shapes():
    assert sorted(connections("standard", 4)) == [(i, o) for i in range(4) for o in range(4)]
    assert connections("depthwise", 4) == [(c, c) for c in range(4)]
    assert len(connections("pointwise", 6)) == 36
    with pytest.raises(MobileNetError, match="unknown kind"):
        connections("grouped")


def test_connection_diagram_draws_one_line_per_connection():
    fig = draw_connections(channels=4)
    per_panel = [len([line for line in ax.lines if line.get_gid() == "connection"]) for ax in fig.axes]
    assert per_panel == [16, 4, 16]
    assert "depthwise" in fig.axes[1].get_title() and "its own channel" in fig.axes[1].get_title()
    # each title counts the layer's weights: 16 slices of 3x3, 4 of 3x3, 16 of 1x1
    assert [ax.get_title().split("\n")[1] for ax in fig.axes] == [
        "16 lines × 9 weights = 144", "4 lines × 9 weights = 36", "16 lines × 1 weight = 16"]
    plt.close(fig)


def test_network_stages_are_table_1():
    st = stages(MobileNetV1(1000), 224)
    assert [s["key"] for s in st] == ["stem", "112×112", "56×56", "28×28", "14×14", "7×7", "fc"]
    assert [s["blocks"] for s in st] == [0, 1, 2, 2, 6, 2, 0] and sum(s["blocks"] for s in st) == 13
    assert [s["channels"] for s in st] == [32, 64, 128, 256, 512, 1024, 1000]
    small = stages(MobileNetV1(10, small_input=True), 32)
    assert small[0]["size"] == "32×32" and small[-2]["size"] == "2×2"
    fig = draw_network(MobileNetV1(1000), 224)
    assert len(artists(fig, "stage")) == len(st) + 1   # the input, then one box per stage
    assert "13 depthwise-separable blocks" in fig.axes[0].get_title()
    plt.close(fig)


def test_augmentation_diagram_shows_what_tensor_batches_makes():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    for down, right, mirror in [(2, -3, False), (-4, 1, True), (0, 0, False)]:
        fig = draw_augmentation(image, down, right, mirror)
        [window] = artists(fig, "window")
        assert window.get_xy() == ((4 + right if mirror else 4 - right) - 0.5, 4 - down - 0.5)
        plt.close(fig)
    # The package's own augmentation: each view it makes is one of the views the diagram can draw.
    mean, std = torch.tensor(CIFAR10_MEAN).view(3, 1, 1) * 255, torch.tensor(CIFAR10_STD).view(3, 1, 1) * 255
    [(x, _)] = list(TensorBatches(image[None], torch.zeros(1, dtype=torch.long), 1, CIFAR10_MEAN, CIFAR10_STD,
                                  train=True, seed=3))
    seen = (x[0] * std + mean).round().to(torch.uint8)
    drawable = []
    for d in range(-4, 5):
        for r in range(-4, 5):
            for m in (False, True):
                fig = draw_augmentation(image, d, r, m)
                drawable.append(torch.equal(fig.view, seen))
                plt.close(fig)
    assert any(drawable)
    with pytest.raises(MobileNetError, match="does not fit"):
        draw_augmentation(image, 5, 0, False)


def test_data_parallel_diagram_has_a_rank_per_process_and_one_all_reduce():
    fig = draw_data_parallel(world=3, batch=9)
    assert len(artists(fig, "image")) == 9 and len(artists(fig, "update")) == 3
    assert len(artists(fig, "allreduce")) == 1 and "3 processes" in fig.axes[0].get_title()
    plt.close(fig)
    with pytest.raises(MobileNetError):
        draw_data_parallel(world=4, batch=2)
