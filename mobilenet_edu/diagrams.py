"""Concept diagrams: the ideas themselves drawn, not results. Each function returns a matplotlib Figure (show it
with ``plt.show()``) and computes what it draws from the same data the lessons use, so a test can check it.

- ``connections`` / ``draw_connections`` (lessons 02, 03): which input channels feed which output channel in a
  standard, a depthwise and a pointwise convolution.
- ``stages`` / ``draw_network`` (lesson 04): the 13-block network as stages of equal map size, with shapes.
- ``draw_augmentation`` (lesson 06): pad, crop window, mirror, on one image.
- ``draw_data_parallel`` (lesson 10): one data-parallel training step and where its all-reduce happens.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle

from .errors import MobileNetError
from .profile import layer_rows

KINDS = {"standard": ("3×3", "every input channel"), "depthwise": ("3×3", "its own channel only"),
         "pointwise": ("1×1", "every input channel")}


def _conv(kind: str, channels: int) -> torch.nn.Conv2d:
    """A real ``kind`` convolution from ``channels`` to ``channels`` channels."""
    if kind not in KINDS:
        raise MobileNetError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    kernel = 1 if kind == "pointwise" else 3
    groups = channels if kind == "depthwise" else 1
    return torch.nn.Conv2d(channels, channels, kernel, groups=groups, bias=False)


def connections(kind: str, channels: int = 4) -> list[tuple[int, int]]:
    """(input channel, output channel) pairs that a ``kind`` convolution from ``channels`` to ``channels``
    connects, read off a real ``nn.Conv2d``: a pair is connected where its weight slice is used."""
    conv = _conv(kind, channels)
    per_group = conv.weight.shape[1]   # input channels each output channel reads (weight: out, in/groups, k, k)
    return [(out // per_group * per_group + j, out) for out in range(conv.weight.shape[0])
            for j in range(conv.weight.shape[1])]


def draw_connections(kinds: tuple[str, ...] = ("standard", "depthwise", "pointwise"), channels: int = 4):
    """One panel per kind: input channels on the left, output channels on the right, a line per connection (one
    filter slice: the k x k weights with which an output channel reads an input channel), coloured by the input
    channel; the title counts the weights of a real layer."""
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.4 * len(kinds), 3.4), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, kind in zip(axes[0], kinds):
        pairs = connections(kind, channels)
        for i, o in pairs:
            ax.plot([0.15, 0.85], [channels - 1 - i, channels - 1 - o], color=colours(i), lw=2, alpha=0.8,
                    gid="connection")
        for c in range(channels):
            y = channels - 1 - c
            ax.add_patch(Rectangle((0.0, y - 0.3), 0.15, 0.6, color=colours(c)))
            ax.add_patch(Rectangle((0.85, y - 0.3), 0.15, 0.6, facecolor="white", edgecolor="black"))
        kernel, reads = KINDS[kind]
        weight = _conv(kind, channels).weight   # (out, in / groups, k, k): one k x k slice per line
        per_line = weight[0, 0].numel()
        ax.set_title(f"{kind} ({kernel})\n{len(pairs)} lines × {per_line} weight{'s' if per_line > 1 else ''}"
                     f" = {weight.numel()}\neach output reads {reads}", fontsize=10)
        ax.text(0.075, channels - 0.35, "input", ha="center", fontsize=9)
        ax.text(0.925, channels - 0.35, "output", ha="center", fontsize=9)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.6, channels + 0.1)
        ax.axis("off")
    fig.tight_layout()
    return fig


def stages(model: torch.nn.Module, resolution: int) -> list[dict]:
    """The network's layers grouped into stages of one output map size (the classifier is its own stage):
    name, layers, blocks (depthwise layers in the stage), output channels and map size."""
    out: list[dict] = []
    for r in layer_rows(model, resolution):
        size = "1×1" if r["type"] == "fc" else f"{r['shape'][1]}×{r['shape'][2]}"
        key = "fc" if r["type"] == "fc" else ("stem" if r["type"] == "conv" else size)
        if not out or out[-1]["key"] != key:
            out.append({"key": key, "layers": 0, "blocks": 0, "size": size})
        out[-1]["layers"] += 1
        out[-1]["blocks"] += r["type"] == "depthwise"
        out[-1]["channels"] = r["shape"][0]
    return out


def draw_network(model: torch.nn.Module, resolution: int = 224):
    """The network left to right: the input, then one box per stage (blocks, channels, map size); a box's height
    follows the map size and its width the channels, so the map shrinks as the channels grow."""
    st = stages(model, resolution)
    fig, ax = plt.subplots(figsize=(1.55 * (len(st) + 1), 3.6))
    boxes = [{"label": f"input\n{resolution}×{resolution}\n×{getattr(model, 'in_chans', 3)}", "h": resolution,
              "c": 3}]
    for s in st:
        if s["key"] == "stem":
            label = f"stem conv\n3×3\n{s['size']}\n×{s['channels']}"
        elif s["key"] == "fc":
            label = f"pool + fc\n{s['channels']} classes"
        else:
            label = f"{s['blocks']} block{'s' if s['blocks'] > 1 else ''}\n{s['size']}\n×{s['channels']}"
        h = 1 if s["key"] == "fc" else int(s["size"].split("×")[0])
        boxes.append({"label": label, "h": h, "c": s["channels"]})
    top_h, top_c = max(b["h"] for b in boxes), max(b["c"] for b in boxes)
    previous_edge = None
    for x, b in enumerate(boxes):
        height = 0.3 + 2.2 * (b["h"] / top_h) ** 0.5
        width = 0.2 + 0.5 * (b["c"] / top_c) ** 0.5
        colour = "#dddddd" if x == 0 else ("#f4c27a" if "fc" in b["label"] else "#8fb8de")
        ax.add_patch(Rectangle((x - width / 2, -height / 2), width, height, facecolor=colour, edgecolor="black",
                               gid="stage"))
        ax.text(x, -1.55, b["label"], ha="center", va="top", fontsize=8.5)
        if previous_edge is not None:
            ax.add_patch(FancyArrowPatch((previous_edge + 0.03, 0), (x - width / 2 - 0.03, 0), arrowstyle="->",
                                         mutation_scale=12))
        previous_edge = x + width / 2
    ax.set_xlim(-0.7, len(boxes) - 0.3)
    ax.set_ylim(-3.0, 1.5)
    ax.axis("off")
    blocks = sum(s["blocks"] for s in st)
    ax.set_title(f"{type(model).__name__}: {blocks} depthwise-separable blocks in {len(st) - 2} stages "
                 f"(box height: map size; width: channels)", fontsize=10)
    fig.tight_layout()
    return fig


def draw_augmentation(image: torch.Tensor, down: int, right: int, mirror: bool, pad: int = 4):
    """One uint8 image (3, H, W): the original, the padded image with the crop window, and what the network sees.
    ``down``/``right``: how far the picture moves (as ``TensorBatches`` draws it, -pad..pad)."""
    if max(abs(down), abs(right)) > pad:
        raise MobileNetError(f"a shift of ({down}, {right}) does not fit a padding of {pad}")
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
    # The window's corner in the padded image. A window further down shows the picture higher up; a mirrored
    # window is turned after cutting, so its picture moves the other way.
    top, left = pad - down, (pad + right) if mirror else (pad - right)
    view = padded[:, top:top + h, left:left + w]
    view = view.flip(2) if mirror else view
    fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.1))
    axes[0].imshow(image.permute(1, 2, 0).numpy())
    axes[0].set_title(f"original {h}×{w}")
    axes[1].imshow(padded.permute(1, 2, 0).numpy())
    axes[1].add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, edgecolor="yellow", lw=2, gid="window"))
    axes[1].set_title(f"padded by {pad}: {h + 2 * pad}×{w + 2 * pad},\na random {h}×{w} window")
    axes[2].imshow(view.permute(1, 2, 0).numpy())
    moved = (f"moved {abs(down)} {'up' if down < 0 else 'down'}, {abs(right)} {'left' if right < 0 else 'right'}"
             f"{', mirrored' if mirror else ''}")
    axes[2].set_title(f"what the network sees\n({moved})")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.view = view                        # the drawn result, for a check against TensorBatches
    return fig


def draw_data_parallel(world: int = 2, batch: int = 8):
    """One step of data-parallel training with ``world`` processes and a global batch of ``batch`` images: each
    rank takes every world-th image, computes its gradient, the all-reduce averages the gradients, every rank
    applies the same update."""
    if world < 1 or batch < world:
        raise MobileNetError(f"need 1 <= world <= batch, got world={world}, batch={batch}")
    fig, ax = plt.subplots(figsize=(9.5, 1.2 + 1.1 * world))
    colours = plt.get_cmap("tab10")
    for r in range(world):
        y = world - 1 - r
        mine = list(range(r, batch, world))
        ax.text(0.0, y, f"rank {r}", ha="left", va="center", fontsize=10, weight="bold")
        for k, i in enumerate(mine):
            ax.add_patch(Rectangle((0.9 + 0.22 * k, y - 0.18), 0.18, 0.36, color=colours(r), gid="image"))
            ax.text(0.99 + 0.22 * k, y, str(i), ha="center", va="center", fontsize=7, color="white")
        ax.text(3.0, y, f"forward + backward\non images {mine[0]}, {mine[1] if len(mine) > 1 else ''}…\n→ gradient"
                f" $g_{r}$", ha="center", va="center", fontsize=8.5,
                bbox={"boxstyle": "round", "facecolor": "#eeeeee"})
        ax.add_patch(FancyArrowPatch((3.9, y), (5.0, (world - 1) / 2), arrowstyle="->", mutation_scale=12))
        ax.add_patch(FancyArrowPatch((6.5, (world - 1) / 2), (7.5, y), arrowstyle="->", mutation_scale=12))
        ax.text(8.4, y, "same update\n$w \\leftarrow w - \\eta\\, \\bar g$", ha="center", va="center", fontsize=8.5,
                bbox={"boxstyle": "round", "facecolor": "#e3f0e3"}, gid="update")
    ax.text(5.75, (world - 1) / 2, "all-reduce\n" + rf"$\bar g = \frac{{1}}{{{world}}}\sum_r g_r$", ha="center",
            va="center", fontsize=10, bbox={"boxstyle": "round", "facecolor": "#f4c27a"}, gid="allreduce")
    ax.set_xlim(-0.1, 9.3)
    ax.set_ylim(-0.7, world - 0.3)
    ax.axis("off")
    ax.set_title(f"One data-parallel step: {world} processes, a global batch of {batch} images", fontsize=10)
    fig.tight_layout()
    return fig
