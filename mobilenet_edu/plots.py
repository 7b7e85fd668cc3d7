"""Pictures of results: training curves and confusion matrices.

``plot_curves`` and ``plot_confusion`` write PNG files (the CLI's ``--plot``; no display needed). The
``*_figure`` functions and ``image_grid`` are for the lessons: each returns a matplotlib Figure drawn with
pyplot as the notebook set it up (show it with ``plt.show()``), so a test can check what it draws.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import atomic_write


def _figure(**kwargs):
    """A Figure outside pyplot: saving it needs no display and leaves the caller's backend alone (switching to
    Agg here, as this once did, made every later ``plt.show()`` in a notebook draw nothing)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch (train and evaluation split)."""
    fig = _figure(figsize=(10, 4))
    a, b = fig.subplots(1, 2)
    ep = [r["epoch"] for r in history]
    a.plot(ep, [r["train_loss"] for r in history], "o-", label="train")
    ev_loss = [k for k in history[0] if k.endswith("_loss") and k != "train_loss"]
    if ev_loss:
        a.plot(ep, [r[ev_loss[0]] for r in history], "o-", label=ev_loss[0].replace("_loss", ""))
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    a.grid(alpha=0.3)
    b.plot(ep, [r["train_acc"] for r in history], "o-", label="train")
    b.plot(ep, [r["eval_top1"] for r in history], "o-", label="eval top-1")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy (%)")
    b.legend()
    b.grid(alpha=0.3)
    fig.tight_layout()
    return atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=100))


def plot_confusion(conf: list[list[int]], classes: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted)."""
    import numpy as np

    c = np.asarray(conf, dtype=float)
    norm = c / np.maximum(c.sum(1, keepdims=True), 1)
    n = len(classes)
    fig = _figure(figsize=(max(5, 0.6 * n + 2), max(4, 0.6 * n + 1.5)))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{norm[i, j] * 100:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    return atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=100))


# ----------------------------------------------------------------------------------------------------
# Figures for the lessons (lesson 08): returned, not saved, drawn with the notebook's own pyplot backend


def per_class_figure(per_class, classes: list[str], overall: float, title: str = ""):
    """Accuracy of each class (%) as a bar with its value on top, the overall top-1 as a dashed line; bars
    below it are orange. The axis starts 15 points under the lowest bar, so that differences of a point show."""
    import matplotlib.pyplot as plt

    values = [float(v) for v in per_class]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.bar(classes, values, color=["tab:orange" if v < overall else "tab:blue" for v in values])
    ax.axhline(overall, color="black", lw=1, ls="--", label=f"top-1 over all classes: {overall:.2f}%")
    for i, v in enumerate(values):
        ax.text(i, v + 0.5, f"{v:.1f}", ha="center", fontsize=8)
    ax.set_ylim(max(0.0, min(values) - 15), 102)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{title or 'Accuracy per class'}; orange: below the overall top-1")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(confusion, classes: list[str], title: str = ""):
    """The confusion matrix as counts (rows: true class, columns: predicted), with colour for the mistakes only:
    the diagonal stays white, so that its large counts of right answers do not wash out the scale."""
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(confusion, dtype=np.int64)
    n = len(classes)
    mistakes = counts.astype(float)
    np.fill_diagonal(mistakes, np.nan)   # NaN cells are not coloured
    top = max(float(np.nanmax(mistakes)) if n > 1 else 0.0, 1.0)
    fig, ax = plt.subplots(figsize=(7.2, 6))
    im = ax.imshow(mistakes, cmap="Reds", vmin=0, vmax=top)
    for i in range(n):
        for j in range(n):
            v = int(counts[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, fontweight="bold" if i == j else "normal",
                    color="white" if i != j and v > top / 2 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, fraction=0.046, label="images (mistakes only)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def image_grid(images, titles: list[str], title: str = "", cols: int = 6):
    """Pictures in a grid with a title over each: ``images`` is a uint8 tensor (N, 3, H, W), as CIFAR-10 is
    kept in memory, or a list of PIL images."""
    import math

    import matplotlib.pyplot as plt
    import numpy as np

    pictures = [np.asarray(im.permute(1, 2, 0)) if hasattr(im, "permute") else np.asarray(im) for im in images]
    rows = max(1, math.ceil(len(pictures) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11 * cols / 6, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, picture, label in zip(axes.flat, pictures, titles):
        ax.imshow(picture)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


def prediction_figure(image, top: list[tuple[str, float]], input_size: int):
    """One prediction: the picture as the file holds it, as the network gets it (``input_size`` square, resized
    as ``inference.Predictor`` does for small inputs), and the top-k probabilities as bars."""
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(9, 2.4), gridspec_kw={"width_ratios": [1, 1, 1.6]})
    a.imshow(image)
    a.set_title(f"the file: {image.width}x{image.height}", fontsize=9)
    b.imshow(image.resize((input_size, input_size), Image.BILINEAR))
    b.set_title(f"what the network gets: {input_size}x{input_size}", fontsize=9)
    for ax in (a, b):
        ax.axis("off")
    c.barh([name for name, _ in top][::-1], [p * 100 for _, p in top][::-1])
    c.set_xlim(0, 100)
    c.set_xlabel("probability (%)")
    fig.tight_layout()
    return fig
