"""The lessons' interactive explorers (ipywidgets). Each shows what a pure function computes, so a test can
check the numbers without a browser.

- ``multiplier_explorer()`` (notebook 05): sliders for the width multiplier alpha and the input size; shows
  parameters, mult-adds and the measured CPU latency of that MobileNet, next to the paper's figures where
  the paper has them (``multiplier_readout`` computes it all).
- ``TrainingDashboard`` (notebook 07): a run's progress and curves, redrawn in place while it trains
  (``plot_history`` draws the curves).

A browser test finds the pieces by their CSS classes: the alpha slider carries ``ALPHA_SLIDER_CLASS``, the
input-size slider ``RESOLUTION_SLIDER_CLASS`` and the readout ``READOUT_CLASS``; inside the readout, the
cells with classes ``mnedu-width``, ``mnedu-resolution``, ``mnedu-params``, ``mnedu-macs`` and
``mnedu-latency`` hold the numbers.
"""

from __future__ import annotations

import functools
from html import escape

import torch

from .model import MobileNetV1
from .profile import profile
from .timing import Timing, time_it

ALPHA_SLIDER_CLASS = "mnedu-alpha-slider"
RESOLUTION_SLIDER_CLASS = "mnedu-resolution-slider"
READOUT_CLASS = "mnedu-multipliers-readout"

# Howard et al. 2017, Tables 6 and 7 (ImageNet, 1000 classes), as printed:
# (alpha, input size) -> (million mult-adds, million parameters, top-1 accuracy in %).
PAPER_TABLES_6_7: dict[tuple[float, int], tuple[int, float, float]] = {
    (1.0, 224): (569, 4.2, 70.6),
    (0.75, 224): (325, 2.6, 68.4),
    (0.5, 224): (149, 1.3, 63.7),
    (0.25, 224): (41, 0.5, 50.6),
    (1.0, 192): (418, 4.2, 69.1),
    (1.0, 160): (290, 4.2, 67.2),
    (1.0, 128): (186, 4.2, 64.4),
}


@torch.no_grad()
def measure_latency(model: MobileNetV1, resolution: int, threads: int | None = None, rounds: int = 1) -> Timing:
    """Forward-pass time of one image (batch 1, eval mode, no autograd), with ``timing.time_it``
    (``torch.utils.benchmark``: warm-up, ``threads`` threads, median and IQR)."""
    model.eval()
    x = torch.zeros(1, model.in_chans, resolution, resolution)
    return time_it(lambda: model(x), label=f"alpha {model.width:g}, {resolution} px", threads=threads, rounds=rounds)


@functools.lru_cache(maxsize=256)
def _cost(width: float, resolution: int, num_classes: int) -> tuple[int, int]:
    p = profile(MobileNetV1(num_classes, width=width), resolution)
    return p["params"], p["macs"]


def multiplier_readout(width: float, resolution: int, timed: bool = True, num_classes: int = 1000,
                       threads: int | None = None) -> dict:
    """Parameters, mult-adds and CPU latency of ``MobileNetV1(num_classes, width)`` on one ``resolution``² image.

    ``timed=False``: no timing (``latency_ms`` is None), for tests that compare the counts. ``threads``: PyTorch
    threads for the timing (default: the current count); ``threads`` in the result is the count it ran with.
    ``paper`` holds Table 6/7's (M mult-adds, M params, top-1 %) when the paper reports this pair, else None.
    The width is rounded to 4 decimals first, so a slider's 0.35000000000000003 counts as 0.35.
    """
    width, resolution = round(float(width), 4), int(resolution)
    params, macs = _cost(width, resolution, num_classes)
    base_params, base_macs = _cost(1.0, 224, num_classes)
    latency = measure_latency(MobileNetV1(num_classes, width=width), resolution, threads) if timed else None
    return {"width": width, "resolution": resolution, "num_classes": num_classes,
            "params": params, "macs": macs, "params_vs_base": params / base_params, "macs_vs_base": macs / base_macs,
            "latency_ms": latency.median * 1e3 if latency else None,
            "latency_iqr_ms": latency.iqr * 1e3 if latency else None,
            "latency_blocks": latency.blocks if latency else 0,
            "threads": latency.threads if latency else (threads or torch.get_num_threads()),
            "paper": PAPER_TABLES_6_7.get((width, resolution)) if num_classes == 1000 else None}


def readout_html(r: dict) -> str:
    """``multiplier_readout``'s dict as a small HTML table (what the explorer shows)."""
    if r["latency_ms"] is None:
        latency, how = "not measured", ""
    else:
        latency = f"{r['latency_ms']:.1f} ms"
        how = (f"median of {r['latency_blocks']} blocks (IQR {r['latency_iqr_ms']:.1f} ms), batch 1, "
               f"{r['threads']} CPU thread(s)")
    if r["paper"] is None:
        paper = "not in the paper's Tables 6 and 7"
    else:
        m, p, top1 = r["paper"]
        paper = f"{m} M mult-adds, {p} M parameters, ImageNet top-1 {top1}%"
    rows = [
        ("parameters", "mnedu-params", f"{r['params']:,}", f"{r['params_vs_base']:.2f}× of α = 1"),
        ("mult-adds", "mnedu-macs", f"{r['macs'] / 1e6:.1f} M", f"{r['macs_vs_base']:.2f}× of α = 1 at 224"),
        ("CPU latency", "mnedu-latency", latency, how),
        ("paper", "mnedu-paper", paper, "Howard et al. 2017, Tables 6 and 7"),
    ]
    cells = "".join(f"<tr><td>{escape(name)}</td><td class='{cls}' style='text-align:right'><b>{escape(value)}</b></td>"
                    f"<td style='color:gray'>{escape(note)}</td></tr>" for name, cls, value, note in rows)
    head = (f"MobileNet v1, α = <span class='mnedu-width'>{r['width']:.2f}</span>, input "
            f"<span class='mnedu-resolution'>{r['resolution']}</span>×{r['resolution']} px, {r['num_classes']} classes")
    return f"<div><div>{head}</div><table>{cells}</table></div>"


def multiplier_explorer(width: float = 1.0, resolution: int = 224, timed: bool = True,
                        max_width: float = 1.5, resolutions: tuple[int, int, int] = (128, 224, 32),
                        threads: int | None = None):
    """Sliders for alpha (0.25 .. ``max_width``, step 0.05) and the input size (``resolutions`` = min, max, step)
    above a readout of ``multiplier_readout`` (timed on ``threads`` PyTorch threads; default: the current count).
    Returns the ``ipywidgets.VBox``; the readout updates when a slider is released (``continuous_update=False``:
    one measurement per move, not one per pixel dragged).
    """
    import ipywidgets as w

    lo, hi, step = resolutions
    style = {"description_width": "9em"}
    alpha = w.FloatSlider(value=width, min=0.25, max=max_width, step=0.05, readout_format=".2f",
                          description="width α", continuous_update=False, style=style,
                          layout=w.Layout(width="32em"))
    alpha.add_class(ALPHA_SLIDER_CLASS)
    res = w.IntSlider(value=resolution, min=lo, max=hi, step=step, description="input size (px)",
                      continuous_update=False, style=style, layout=w.Layout(width="32em"))
    res.add_class(RESOLUTION_SLIDER_CLASS)
    readout = w.HTML(readout_html(multiplier_readout(alpha.value, res.value, timed, threads=threads)))
    readout.add_class(READOUT_CLASS)

    def update(_change=None) -> None:
        readout.value = readout_html(multiplier_readout(alpha.value, res.value, timed, threads=threads))

    alpha.observe(update, names="value")
    res.observe(update, names="value")
    return w.VBox([alpha, res, readout])


# ----------------------------------------------------------------------------------------------------
# The live training dashboard (notebook 07)


class TrainingDashboard:
    """A live view of a training run in a notebook: a status line, a progress bar and the loss and accuracy
    curves, updated in place (the bar every few steps, the curves once per epoch), so the output never floods.

    Pass it to ``engine.train(cfg, progress=dashboard)``; it has the methods of ``engine.TqdmProgress``.
    ``reference`` is another run's per-epoch history (a card's ``history``), drawn beside this run's curves.
    """

    def __init__(self, reference: list[dict] | None = None, reference_label: str = "reference run",
                 min_interval_s: float = 0.5):
        import ipywidgets as W

        self.reference, self.reference_label = reference or [], reference_label
        self.min_interval_s = min_interval_s
        self.status = W.HTML("waiting to start")
        self.bar = W.IntProgress(value=0, min=0, max=1, description="epoch", layout=W.Layout(width="60%"))
        self.plot = W.Output()
        self.widget = W.VBox([self.status, self.bar, self.plot])
        self.widget.add_class("mnedu-dashboard")
        self.history: list[dict] = []
        self._last = 0.0

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # The progress interface that engine.train calls -------------------------------------------------

    def start(self, cfg, steps_per_epoch: int, header: str) -> None:
        self.epochs, self.steps = cfg.epochs, steps_per_epoch
        self.status.value = escape(header)
        self.header = header

    def epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        self.bar.max, self.bar.value = self.steps, 0
        self.bar.description = f"epoch {epoch + 1}/{self.epochs}"

    def step(self, i: int, loss: float, acc: float, lr: float, images_per_s: float) -> None:
        import time

        now = time.monotonic()
        if now - self._last < self.min_interval_s and i != self.steps - 1:
            return  # redrawing widgets costs time too: a few updates a second are enough to watch
        self._last = now
        self.bar.value = i + 1
        self.status.value = (f"epoch {self.epoch + 1}/{self.epochs} · step {i + 1}/{self.steps} · "
                             f"loss {loss:.3f} · train acc {acc:.1f}% · lr {lr:.3g} · {images_per_s:.0f} img/s")

    def epoch_end(self, row: dict, split: str) -> None:
        self.history.append(row)
        self.split = split
        self.bar.value = self.bar.max
        self.redraw()

    def end(self, message: str) -> None:
        self.status.value = escape(message.split("; weights:")[0])

    # Drawing ----------------------------------------------------------------------------------------

    def redraw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import clear_output

        with self.plot:
            clear_output(wait=True)
            fig = plot_history(self.history, self.reference, self.reference_label,
                               total_epochs=getattr(self, "epochs", None))
            plt.show()
            plt.close(fig)


def plot_history(history: list[dict], reference: list[dict] | None = None, reference_label: str = "reference run",
                 total_epochs: int | None = None):
    """Loss and accuracy per epoch of a run (train and evaluation), with a reference run's curves dashed and pale.

    Both panels name the evaluation split the same way (``test`` or ``val``, from the history's ``*_loss`` key)."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for rows, style, alpha, label in ((reference or [], "--", 0.4, reference_label), (history, "-", 1.0, "this run")):
        if not rows:
            continue
        ep = [r["epoch"] for r in rows]
        eval_loss = next((k for k in rows[0] if k.endswith("_loss") and k != "train_loss"), None)
        split = eval_loss[:-5] if eval_loss else "eval"
        kw = dict(ms=3, alpha=alpha)
        a.plot(ep, [r["train_loss"] for r in rows], "o" + style, color="C0", label=f"train ({label})", **kw)
        if eval_loss:
            a.plot(ep, [r[eval_loss] for r in rows], "o" + style, color="C1", label=f"{split} ({label})", **kw)
        b.plot(ep, [r["train_acc"] for r in rows], "o" + style, color="C0", label=f"train ({label})", **kw)
        b.plot(ep, [r["eval_top1"] for r in rows], "o" + style, color="C1", label=f"{split} top-1 ({label})", **kw)
    for ax, name in ((a, "loss"), (b, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if total_epochs:
            ax.set_xlim(0.5, max(total_epochs, len(reference or [])) + 0.5)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# "Try your own image" (notebook 08)
#
# ``upload_widget()`` is a FileUpload above the predictions; ``prediction_html(name, content, predictor)`` is the
# pure function that turns one uploaded file into what is shown, so a test can feed it any file without a browser.
# A browser test finds the upload button by ``UPLOAD_CLASS`` and the results by ``UPLOAD_RESULTS_CLASS``; inside
# them, each file is a ``mnedu-upload-result`` (rows ``mnedu-top``) or a one-line ``mnedu-upload-error``.

UPLOAD_CLASS = "mnedu-upload"
UPLOAD_RESULTS_CLASS = "mnedu-upload-results"
THUMBNAIL_PX = 96
NO_UPLOAD_HTML = "<div style='color:gray'>No image yet: choose one or more image files with the button above.</div>"


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of each file in a ``FileUpload.value``.

    ipywidgets 8 gives a tuple of dicts with ``name`` and ``content`` (a memoryview); ipywidgets 7 gave a dict
    ``{name: {"content": bytes, ...}}``. Both are read, so the widget works under either.
    """
    if isinstance(value, dict):
        return [(str(name), bytes(f["content"])) for name, f in value.items()]
    return [(str(f["name"]), bytes(f["content"])) for f in value]


def _thumbnail_img(img, name: str, box: int) -> str:
    """An ``<img>`` with the picture inline (PNG, at most ``box`` pixels a side); small images are enlarged
    on screen with sharp pixels, so a 32x32 or 1x1 upload is still visible."""
    import base64
    import io

    thumb = img.copy()
    thumb.thumbnail((box, box))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    scale = box / max(thumb.width, thumb.height)
    w, h = max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f"<img src='data:image/png;base64,{data}' width='{w}' height='{h}' alt='{escape(name)}' "
            f"title='{escape(name)}' style='image-rendering:pixelated;border:1px solid #ddd'>")


def prediction_html(name: str, content: bytes | memoryview, predictor, top_k: int = 5,
                    thumbnail_px: int = THUMBNAIL_PX) -> str:
    """One uploaded file as HTML: its thumbnail beside the top-k classes with their probabilities; for a file that
    is not a readable image, one line with the MobileNetError text (which names the file), never a traceback.

    ``predictor`` is an ``inference.Predictor``; any size or mode (gray, RGBA, palette, 16-bit) is predicted.
    """
    from .data import open_image
    from .errors import MobileNetError

    try:
        img = open_image(bytes(content), name)
        top = predictor.predict(img, top_k)
    except MobileNetError as e:
        return f"<div class='mnedu-upload-error' style='color:#b00020'>error: {escape(str(e))}</div>"
    rows = "".join(
        f"<tr class='mnedu-top'><td>{escape(cls)}</td><td style='text-align:right'>{p * 100:.1f}%</td>"
        f"<td><div style='background:#1f77b4;height:0.8em;width:{p * 8:.2f}em'></div></td></tr>"
        for cls, p in top)
    return (f"<div class='mnedu-upload-result' style='display:flex;gap:1em;align-items:center;margin:0.4em 0'>"
            f"{_thumbnail_img(img, name, thumbnail_px)}"
            f"<div><b>{escape(name)}</b> <span style='color:gray'>{img.width}×{img.height} px</span>"
            f"<table>{rows}</table></div></div>")


def uploads_html(files: list[tuple[str, bytes]], predictor, top_k: int = 5) -> str:
    """``prediction_html`` of every ``(name, bytes)`` in ``files``, one below the other; one bad file never hides
    the others."""
    if not files:
        return NO_UPLOAD_HTML
    return "".join(prediction_html(name, content, predictor, top_k) for name, content in files)


def upload_widget(weights: str = "cifar10", top_k: int = 5, predictor=None):
    """A "try your own image" box: a FileUpload (image files, several at once) above, for each uploaded file, its
    thumbnail and top-k classes (``prediction_html``). ``weights``: a shipped name or a weights file (ignored when
    a ready ``predictor`` is given). Returns the ``ipywidgets.VBox``.
    """
    import ipywidgets as w

    from .inference import Predictor

    predictor = predictor if predictor is not None else Predictor(weights)
    upload = w.FileUpload(accept="image/*", multiple=True, description="Upload images")
    upload.add_class(UPLOAD_CLASS)
    results = w.HTML(NO_UPLOAD_HTML)
    results.add_class(UPLOAD_RESULTS_CLASS)

    def show(change) -> None:
        results.value = uploads_html(uploaded_files(change["new"]), predictor, top_k)

    upload.observe(show, names="value")
    return w.VBox([upload, results])
