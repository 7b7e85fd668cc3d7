"""Pictures of results: training curves and confusion matrices."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import atomic_write


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch (train and evaluation split)."""
    plt = _figure()
    ep = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
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
    out = atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=100))
    plt.close(fig)
    return out


def plot_confusion(conf: list[list[int]], classes: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted)."""
    import numpy as np

    plt = _figure()
    c = np.asarray(conf, dtype=float)
    norm = c / np.maximum(c.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * n + 2), max(4, 0.6 * n + 1.5)))
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
    out = atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=100))
    plt.close(fig)
    return out
