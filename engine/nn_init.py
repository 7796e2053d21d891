"""torch.nn.init over a torch-like namespace ``t`` (its first argument); draws come from ``t``'s generator."""
from __future__ import annotations

import functools
import math
import types
import warnings


def calculate_gain(nonlinearity: str, param=None) -> float:
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive_field_size = math.prod(tensor.shape[2:])
    return tensor.size(1) * receptive_field_size, tensor.size(0) * receptive_field_size


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t, tensor, a: float = 0.0, b: float = 1.0, generator=None):
    with t.no_grad():
        return tensor.uniform_(a, b)


def normal_(t, tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    with t.no_grad():
        return tensor.normal_(mean, std)


def constant_(t, tensor, val: float):
    with t.no_grad():
        return tensor.fill_(val)


def zeros_(t, tensor):
    with t.no_grad():
        return tensor.zero_()


def ones_(t, tensor):
    with t.no_grad():
        return tensor.fill_(1.0)


def _no_op_if_empty(tensor) -> bool:
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=3)
        return True
    return False


def kaiming_uniform_(t, tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    if _no_op_if_empty(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, tensor, -bound, bound)


def kaiming_normal_(t, tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    if _no_op_if_empty(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    return normal_(t, tensor, 0, std)


def xavier_uniform_(t, tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(t, tensor, -bound, bound)


def xavier_normal_(t, tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(t, tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


_TAKES_T = (uniform_, normal_, constant_, zeros_, ones_, kaiming_uniform_, kaiming_normal_, xavier_uniform_,
            xavier_normal_)


def init_namespace(t) -> types.SimpleNamespace:
    """``t.nn.init``: these functions bound to ``t``."""
    ns = {fn.__name__: functools.wraps(fn)(functools.partial(fn, t)) for fn in _TAKES_T}
    return types.SimpleNamespace(calculate_gain=calculate_gain,
                                 _calculate_fan_in_and_fan_out=_calculate_fan_in_and_fan_out,
                                 _calculate_correct_fan=_calculate_correct_fan, **ns)
