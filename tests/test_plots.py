"""The figures of lesson 08, checked for what they draw (no display needed: the Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from PIL import Image  # noqa: E402

from mobilenet_edu.plots import (  # noqa: E402
    confusion_figure,
    image_grid,
    per_class_figure,
    plot_confusion,
    plot_curves,
    prediction_figure,
)

CLASSES = ["cat", "dog", "ship"]
CONFUSION = [[80, 15, 5], [10, 88, 2], [1, 0, 99]]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_per_class_bars_are_the_accuracies_and_those_below_the_overall_are_orange():
    per_class = torch.tensor([80.0, 88.0, 99.0])
    fig = per_class_figure(per_class, CLASSES, overall=89.0, title="demo")
    ax = fig.axes[0]
    bars = ax.patches
    assert [round(b.get_height(), 6) for b in bars] == [80.0, 88.0, 99.0]
    assert [b.get_facecolor() for b in bars] == [to_rgba("tab:orange")] * 2 + [to_rgba("tab:blue")]
    assert [t.get_text() for t in ax.texts] == ["80.0", "88.0", "99.0"]
    assert ax.get_lines()[0].get_ydata()[0] == 89.0 and ax.get_ylim()[0] == 65.0
    assert ax.get_title().startswith("demo") and "orange" in ax.get_title()


def test_confusion_figure_writes_every_count_and_colours_only_the_mistakes():
    fig = confusion_figure(torch.tensor(CONFUSION), CLASSES, "three classes")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for row in CONFUSION for v in row]
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert bold == ["80", "88", "99"]   # the diagonal
    shown = np.ma.filled(np.ma.asarray(ax.images[0].get_array(), dtype=float), np.nan)
    assert np.isnan(shown[np.diag_indices(3)]).all() and shown[0, 1] == 15   # the diagonal is not coloured
    assert ax.images[0].get_clim() == (0, 15)   # the scale ends at the largest mistake, not at 99
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES and ax.get_title() == "three classes"


def test_confusion_figure_takes_lists_too():
    fig = confusion_figure(CONFUSION, CLASSES)
    assert len(fig.axes[0].texts) == 9


def test_image_grid_shows_each_picture_with_its_title():
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    fig = image_grid(images, [f"#{i}" for i in range(7)], "seven", cols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 8 and len(shown) == 7   # two rows of four, the last one empty
    assert [ax.get_title() for ax in shown] == [f"#{i}" for i in range(7)]
    np.testing.assert_array_equal(shown[2].images[0].get_array(), images[2].permute(1, 2, 0).numpy())
    pil = [Image.new("RGB", (5, 3), (255, 0, 0))]
    assert image_grid(pil, ["red"], cols=1).axes[0].images[0].get_array().shape == (3, 5, 3)


def test_prediction_figure_shows_the_file_the_network_input_and_the_top_k():
    image = Image.new("RGB", (120, 60), (10, 200, 30))
    top = [("frog", 0.7), ("cat", 0.2), ("dog", 0.1)]
    fig = prediction_figure(image, top, 32)
    file_ax, input_ax, bars_ax = fig.axes
    assert file_ax.images[0].get_array().shape == (60, 120, 3) and input_ax.images[0].get_array().shape == (32, 32, 3)
    widths = [round(b.get_width(), 6) for b in bars_ax.patches]
    labels = [t.get_text() for t in bars_ax.get_yticklabels()]
    assert widths == [10.0, 20.0, 70.0] and labels == ["dog", "cat", "frog"]   # the top class at the top


def test_the_file_writers_still_write_pngs(tmp_path):
    path = plot_confusion(CONFUSION, CLASSES, tmp_path / "cm.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.1 / e, "train_acc": 50 + e, "eval_top1": 45 + e}
               for e in (1, 2, 3)]
    assert plot_curves(history, tmp_path / "curves.png").stat().st_size > 0


def test_saving_a_chart_leaves_the_notebooks_backend_alone(tmp_path):
    import matplotlib

    from mobilenet_edu.plots import plot_confusion, plot_curves

    before = matplotlib.get_backend()
    matplotlib.use("svg")   # stands for a notebook's inline backend: anything but Agg
    try:
        history = [{"epoch": 1, "train_loss": 2.0, "test_loss": 1.9, "train_acc": 30.0, "eval_top1": 35.0},
                   {"epoch": 2, "train_loss": 1.5, "test_loss": 1.4, "train_acc": 45.0, "eval_top1": 50.0}]
        assert plot_curves(history, tmp_path / "curves.png").stat().st_size > 0
        assert plot_confusion([[3, 1], [0, 4]], ["a", "b"], tmp_path / "conf.png").stat().st_size > 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
