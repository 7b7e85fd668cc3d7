"""Weights shipped inside the package, each with its model card, loadable offline by name."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import load_weights
from .errors import MobileNetError

WEIGHTS_DIR = Path(__file__).parent / "weights"


def available() -> list[str]:
    """Names of the shipped weights ("cifar10", "cifar10-w0.5", ...)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def resolve_weights(name_or_path: str) -> Path:
    """A shipped name or a file path -> an existing file path; MobileNetError otherwise."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    shipped = WEIGHTS_DIR / f"{name_or_path}.safetensors"
    if shipped.is_file():
        return shipped
    names = ", ".join(available()) or "none"
    raise MobileNetError(f"weights {name_or_path!r}: no such file, and not a shipped name (shipped: {names})")


def load_pretrained(name: str = "cifar10"):
    """The shipped model ``name`` in eval mode; ``model.pretrained_cfg`` holds its card."""
    if not (WEIGHTS_DIR / f"{name}.safetensors").is_file():
        raise MobileNetError(f"no shipped weights named {name!r} (shipped: {', '.join(available()) or 'none'})")
    return load_weights(WEIGHTS_DIR / f"{name}.safetensors")
