"""The two settings that every notebook, the CLI and the tests share, each read here and nowhere else.

- The quick switch: ``MOBILENET_EDU_QUICK=1`` (or ``CI=true``, as CI services set it) shrinks every long
  computation to seconds on the same code path, so CI can run every notebook.
- Where CIFAR-10 is: an explicit folder, else ``$MOBILENET_EDU_DATA``, else ``./data`` (and, inside a
  checkout of this repository, its top-level ``data/``); it is downloaded to the default folder when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

QUICK_VARS = ("MOBILENET_EDU_QUICK", "CI")
DATA_VAR = "MOBILENET_EDU_DATA"
_TRUE = {"1", "true", "yes", "on"}


def quick() -> bool:
    """True when ``MOBILENET_EDU_QUICK`` or ``CI`` is set to 1/true/yes/on."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in QUICK_VARS)


# Every size that the quick switch shrinks, in one place: name -> (full run, quick run). Lessons ask
# ``size(name)`` and run the same code either way, so they hold no ``if quick`` branches of their own.
SIZES: dict[str, tuple] = {
    # timing (mobilenet_edu.timing.compare): interleaved rounds, and min_run_time of one measurement in seconds.
    # Quick runs keep three rounds: the lessons' timing asserts rest on a median, and CI runs two notebooks at once
    # on two cores (one round of 0.05 s failed lesson 05's ordering check there).
    "timing_rounds": (3, 3),
    "timing_seconds": (0.5, 0.1),
    # evaluations: test images used (10,000: all of them)
    "test_images": (10_000, 1_000),
    # training: training images used (50,000: all of them), and the recipe a lesson trains with
    "train_images": (50_000, 512),
    "recipe": ("classroom", "quick"),
    # lesson 07: the recipe on a CUDA GPU (other devices train "recipe"), and the least test top-1 (%) a run of it
    # must reach in 16 epochs or more (the classroom recipe's runs score about 85% and up, the full one's more; a
    # budget that plans fewer epochs may score less; quick runs promise nothing)
    "recipe_cuda": ("full", "quick"),
    "least_top1": (82.0, 0.0),
    # lesson 06: batches of each loader timed (65 batches of 256 is a third of an epoch)
    "loader_batches": (65, 5),
    # lesson 09: test images checked for parity
    "parity_images": (10_000, 2_000),
}


def size(name: str):
    """``SIZES[name]``'s full-run value, or its quick value under the quick switch."""
    full, small = SIZES[name]
    return small if quick() else full


def _checkout_data() -> Path | None:
    """``<repository>/data`` when the package runs from a checkout (editable install), else None."""
    root = Path(__file__).resolve().parent.parent
    return root / "data" if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py/``.

    Order: ``explicit``, ``$MOBILENET_EDU_DATA``, then the first of ``./data`` and the checkout's ``data/``
    that already holds CIFAR-10; when none does, the checkout's ``data/`` (or ``./data`` outside a
    checkout), which is where a download goes. Notebooks run from ``notebooks/`` and the CLI from the
    top level therefore share one copy.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    candidates = [Path("data")]
    checkout = _checkout_data()
    if checkout is not None:
        candidates.append(checkout)
    for c in candidates:
        if (c / "cifar-10-batches-py" / "test_batch").is_file():
            return c
    return checkout if checkout is not None else Path("data")
