"""mobilenet_edu: the support package of a teaching series that builds MobileNet v1 (Howard et al. 2017) in PyTorch."""

from .errors import MobileNetError

# The network's names load torch, so they are imported when first used: the tools that only read notebooks
# (python -m mobilenet_edu.translation, the lessons' discovery) start without it.
_LAZY = {"BLOCKS": "model", "MobileNetV1": "model", "scale_channels": "model", "from_timm": "timm_import"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__version__ = "0.1.0"
__all__ = ["BLOCKS", "MobileNetError", "MobileNetV1", "doctor", "from_timm", "load_pretrained", "scale_channels"]


def load_pretrained(name: str = "cifar10"):
    """A shipped model ("cifar10", "cifar10-w0.5", ...) in eval mode, with ``model.pretrained_cfg``."""
    from .pretrained import load_pretrained as _lp

    return _lp(name)


def doctor():
    """Check this machine for the lessons: one [OK]/[WARN]/[FAIL] line per check, each with its fix."""
    from .checkup import doctor as _doctor

    return _doctor()
