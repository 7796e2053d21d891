"""torch.nn.utils over a torch-like namespace ``t`` (its first argument): clipping gradients."""
from __future__ import annotations

import math


def _vector_norm(x, norm_type: float):
    if norm_type == math.inf:
        return x.abs().amax()
    if norm_type == -math.inf:
        return x.abs().amin()
    if norm_type == 2.0:
        return x.norm()
    return x.norm(norm_type)


def clip_grad_norm_(t, parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None):
    """Scales the gradients in place so that their total norm is at most max_norm; returns that norm."""
    parameters = [parameters] if hasattr(parameters, "_dispatch") else list(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    with t.no_grad():
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return t.tensor(0.0)
        total_norm = _vector_norm(t.stack([_vector_norm(g, norm_type) for g in grads]), norm_type)
        if error_if_nonfinite and not math.isfinite(total_norm.item()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                               "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                               "norm anyway, set `error_if_nonfinite=False`")
        clip_coef = max_norm / (total_norm + 1e-6)
        clip_coef_clamped = clip_coef.clamp(max=1.0)
        for g in grads:
            g.mul_(clip_coef_clamped)
    return total_norm
