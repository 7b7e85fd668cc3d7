"""Weights (safetensors) with their model card (JSON), resumable training state, atomic writes.

Nothing here runs code from a file: weights are safetensors; checkpoints are read with
``torch.load(weights_only=True)``, which refuses pickles that would call arbitrary functions.
Every write goes to a temporary file in the same folder, is fsync'ed, then renamed over the target, so a
crash leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .errors import MobileNetError
from .files import atomic_write  # noqa: F401  (re-exported: the package's writers import it from here)
from .model import MobileNetV1

CARD_KEY = "mobilenet_card"


def write_json(path: str | os.PathLike, obj) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda t: Path(t).write_text(text))


def card_path_for(weights: Path) -> Path:
    """The card beside a weights file: ``<stem>.json`` if present, else ``card.json`` in the same folder."""
    own = weights.with_suffix(".json")
    return own if own.is_file() else weights.parent / "card.json"


def save_weights(model: torch.nn.Module, path: str | os.PathLike, card: dict) -> Path:
    """Write ``model``'s weights as safetensors (the card embedded as metadata) and the card beside it."""
    from safetensors.torch import save_file

    model = getattr(model, "module", model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {CARD_KEY: json.dumps(card)}
    path = Path(path)
    atomic_write(path, lambda t: save_file(state, t, metadata=meta))
    write_json(path.parent / ("card.json" if path.stem == "weights" else f"{path.stem}.json"), card)
    return path


def read_weights(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(state_dict, card)`` from a safetensors file; MobileNetError for anything that is not one."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MobileNetError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise MobileNetError(f"{path} is not a readable safetensors weights file "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'truncated?'})") from None
    if CARD_KEY in meta:
        card = json.loads(meta[CARD_KEY])
    else:
        cp = card_path_for(path)
        if not cp.is_file():
            raise MobileNetError(f"{path} has no model card (no metadata and no {cp.name} beside it)")
        card = json.loads(cp.read_text())
    return state, card


def model_from_card(card: dict) -> MobileNetV1:
    arch = card.get("arch")
    if not isinstance(arch, dict):
        raise MobileNetError("model card has no 'arch' entry: not a mobilenet weights file")
    try:
        return MobileNetV1(**arch)
    except TypeError as e:
        raise MobileNetError(f"model card 'arch' does not describe a MobileNetV1: {e}") from None


def load_state_checked(model: torch.nn.Module, state: dict, source: str = "weights") -> None:
    """load_state_dict that reports missing/unexpected/mis-shaped tensors as one MobileNetError line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {shapes[0]})")
        if missing:
            parts.append(f"{len(missing)} missing tensors (first: {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected tensors (first: {extra[0]})")
        raise MobileNetError(f"{source} do not fit this architecture: " + "; ".join(parts))
    model.load_state_dict(state)


def load_weights(path: str | os.PathLike) -> MobileNetV1:
    """The model described by the weights' card, with the weights loaded, in eval mode."""
    state, card = read_weights(path)
    model = model_from_card(card)
    load_state_checked(model, state, source=f"weights {path}")
    model.pretrained_cfg = card
    return model.eval()


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Atomically write resumable training state (model, optimizer, RNG, epoch; the schedule follows from the epoch)."""
    return atomic_write(path, lambda t: torch.save(state, t))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True``: tensors and plain data only, never code."""
    path = Path(path)
    if not path.is_file():
        raise MobileNetError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise MobileNetError(f"refusing to load {path}: not a plain-data checkpoint "
                             f"({type(e).__name__}: {first[:200]})") from None
