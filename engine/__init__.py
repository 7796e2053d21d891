"""A numpy autograd engine with PyTorch's semantics; this namespace reads like ``torch``."""
from __future__ import annotations

import sys
import types

from . import autograd as _autograd
from .backend import BACKEND
from .device import cuda, device
from .dtypes import bool_ as bool  # noqa: A004
from .dtypes import dtype, float16, float32, float64, int8, int16, int32, int64, promote_types, uint8
from .factories import (
                     arange,
                     as_tensor,
                     empty,
                     empty_like,
                     eye,
                     from_numpy,
                     full,
                     full_like,
                     linspace,
                     ones,
                     ones_like,
                     rand,
                     rand_like,
                     randint,
                     randn,
                     randn_like,
                     randperm,
                     tensor,
                     zeros,
                     zeros_like,
)
from .functional import TORCH_FUNCTIONS, nn_functional
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .node import Node
from .random import manual_seed
from .size import Size
from .tensor import Tensor

half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

globals().update(TORCH_FUNCTIONS)

autograd = types.SimpleNamespace(
    backward=_autograd.backward, grad=_autograd.grad, Node=Node,
    no_grad=no_grad, enable_grad=enable_grad, set_grad_enabled=set_grad_enabled)

__all__ = ["Tensor", "Size", "dtype", "tensor", "zeros", "ones", "full", "empty", "rand", "randn",
           "randint", "arange", "linspace", "eye", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "manual_seed", "autograd", "nn", "optim", "BACKEND"]


from . import autograd_functional as _functional  # noqa: E402
from . import gradcheck as _gradcheck  # noqa: E402
from .function import Function, FunctionCtx, once_differentiable  # noqa: E402

_self = sys.modules[__name__]
autograd.Function = Function
autograd.function = types.SimpleNamespace(Function=Function, FunctionCtx=FunctionCtx,
                                          once_differentiable=once_differentiable)
autograd.gradcheck = lambda func, inputs, **kw: _gradcheck.gradcheck(_self, func, inputs, **kw)
autograd.gradgradcheck = lambda func, inputs, grad_outputs=None, **kw: _gradcheck.gradgradcheck(
    _self, func, inputs, grad_outputs, **kw)
autograd.functional = types.SimpleNamespace(**{
    name: (lambda fn: lambda *a, **kw: fn(_self, *a, **kw))(getattr(_functional, name))
    for name in ("jacobian", "hessian", "vjp", "jvp")})
autograd.GradcheckError = _gradcheck.GradcheckError

from .nn_namespace import nn_namespace as _nn_namespace  # noqa: E402
from .nn_namespace import optim_namespace as _optim_namespace  # noqa: E402

nn = _nn_namespace(_self, nn_functional)
optim = _optim_namespace(_self)

from . import serialization as _serialization  # noqa: E402


def save(obj, f) -> None:
    """torch.save without pickle: tensors and (nested) dicts, lists, tuples, numbers and strings (serialization.py)."""
    _serialization.save(_self, obj, f)


def load(f, map_location=None, weights_only=None, **kwargs):
    """torch.load of what save wrote; any other file (a torch.save pickle among them) is refused."""
    return _serialization.load(_self, f, map_location, weights_only, **kwargs)
