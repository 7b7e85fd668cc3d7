"""mobilenet_edu: the support package of a teaching series that builds MobileNet v1 (Howard et al. 2017) in PyTorch."""

from .errors import MobileNetError
from .model import BLOCKS, MobileNetV1, scale_channels
from .timm_import import from_timm

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
