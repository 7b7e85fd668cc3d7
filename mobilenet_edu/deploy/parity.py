"""The one parity check every exporter ends with: does the exported model answer like PyTorch?"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ..errors import MobileNetError

# Thresholds (issue #4): fp32 exports must agree on every top-1 and stay within 1e-3 on every logit;
# int8 exports must agree on at least 98% of top-1 predictions.
FP32_MAX_ABS = 1e-3
FP32_MIN_AGREEMENT = 100.0
INT8_MIN_AGREEMENT = 98.0


@torch.no_grad()
def parity(reference: Callable, candidate: Callable, batches: Iterable) -> dict:
    """Top-1 agreement (%) and max |logit difference| of ``candidate`` against ``reference``.

    Both take a normalised float batch and return logits; ``batches`` yields ``(x, y)`` or ``x``. With
    labels, the top-1 accuracy of each side is reported as well.
    """
    n = agree = ref_hits = cand_hits = 0
    max_abs = 0.0
    for b in batches:
        x, y = b if isinstance(b, (tuple, list)) else (b, None)
        r = reference(x).float().cpu()
        c = torch.as_tensor(candidate(x)).float().cpu()
        if r.shape != c.shape:
            raise MobileNetError(f"exported model returns shape {tuple(c.shape)}, PyTorch {tuple(r.shape)}")
        max_abs = max(max_abs, (r - c).abs().max().item())
        agree += (r.argmax(1) == c.argmax(1)).sum().item()
        if y is not None:
            y = y.cpu()
            ref_hits += (r.argmax(1) == y).sum().item()
            cand_hits += (c.argmax(1) == y).sum().item()
        n += len(r)
    if n == 0:
        raise MobileNetError("parity check ran on no images")
    out = {"n": n, "agreement": agree / n * 100, "max_abs_diff": max_abs}
    if ref_hits or cand_hits:
        out.update(reference_top1=ref_hits / n * 100, candidate_top1=cand_hits / n * 100)
    return out


def check_parity(result: dict, precision: str) -> None:
    """Raise MobileNetError (non-zero exit from the CLI) when ``result`` misses the thresholds."""
    if precision == "fp32":
        if result["agreement"] < FP32_MIN_AGREEMENT or result["max_abs_diff"] > FP32_MAX_ABS:
            raise MobileNetError(f"parity FAILED (fp32): top-1 agreement {result['agreement']:.2f}% (need 100%), "
                                 f"max |dlogit| {result['max_abs_diff']:.2e} (need <= {FP32_MAX_ABS:g}) "
                                 f"on {result['n']} images")
    elif precision in ("int8", "fp16"):
        if result["agreement"] < INT8_MIN_AGREEMENT:
            raise MobileNetError(f"parity FAILED ({precision}): top-1 agreement {result['agreement']:.2f}% "
                                 f"(need >= {INT8_MIN_AGREEMENT}%) on {result['n']} images")
    else:
        raise ValueError(precision)


def format_parity(result: dict, precision: str) -> str:
    s = (f"parity ({precision}, {result['n']} images): top-1 agreement {result['agreement']:.2f}%, "
         f"max |dlogit| {result['max_abs_diff']:.2e}")
    if "reference_top1" in result:
        s += f"; top-1 PyTorch {result['reference_top1']:.2f}% vs export {result['candidate_top1']:.2f}%"
    return s
