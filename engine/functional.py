"""torch.* functions and torch.nn.functional, written over tensor methods so any Tensor class serves."""
from __future__ import annotations

import math
import numbers
import types
import warnings

from .methods import _alpha, _broadcast_shapes
from .ops import OPS

# torch.f(x, ...) is x.f(...) for these
_METHOD_FUNCTIONS = (
    "add", "sub", "mul", "div", "true_divide", "pow", "neg", "negative", "abs", "reciprocal", "square",
    "floor_divide", "remainder", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "sign", "clamp", "clip",
    "sum", "mean", "std", "var", "max", "min", "prod", "norm", "amax", "amin", "argmax", "argmin",
    "maximum", "minimum", "matmul", "mm", "bmm", "dot", "mv", "t", "transpose", "permute",
    "reshape", "flatten", "squeeze", "unsqueeze", "narrow", "select", "unbind", "chunk", "split",
    "clone", "softmax", "log_softmax", "eq", "ne", "lt", "le", "gt", "ge", "isclose", "allclose",
    "equal", "all", "any", "logical_not", "logical_and", "logical_or", "numel", "swapaxes",
    "expm1", "log1p", "log2", "log10", "rsqrt", "tan", "sinh", "cosh", "asin", "acos", "atan", "arcsin", "arccos",
    "arctan", "floor", "ceil", "trunc", "fix", "round", "frac", "isnan", "isinf", "isfinite",
    "flip", "cumsum", "masked_fill", "tril", "triu", "index_select", "gather", "sort", "topk",
    "argsort", "logsumexp",
)


def _method_function(name):
    def fn(input, *args, **kwargs):  # noqa: A002  (torch's parameter name)
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    return fn


def cat(tensors, dim: int = 0):
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    return tensors[0]._dispatch(OPS["cat"], tensors, {"dim": dim})


concat = concatenate = cat


def stack(tensors, dim: int = 0):
    tensors = tuple(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    return tensors[0]._dispatch(OPS["stack"], tensors, {"dim": dim})


def where(condition, input=None, other=None):  # noqa: A002
    if input is None and other is None:
        raise NotImplementedError("torch.where(condition) with one argument is not supported")
    anchor = next(x for x in (condition, input, other) if hasattr(x, "_dispatch"))
    operand = anchor._operand
    return anchor._dispatch(OPS["where"], (condition, operand(input), operand(other)), {})


def is_tensor(obj) -> bool:
    return hasattr(obj, "_dispatch")


def rsub(input, other, *, alpha=1):  # noqa: A002
    """torch.rsub: other - alpha * input; RsubBackward0 for a tensor other, RsubBackward1 for a number."""
    if is_tensor(input) and (is_tensor(other) or isinstance(other, numbers.Number)):
        other = input._operand(other)
        if is_tensor(other):
            return input._op("rsub_tensor", other, **_alpha(alpha))
        return input._op("rsub", other=other, **_alpha(alpha))
    raise TypeError(f"rsub() received an invalid combination of arguments - got ({_type_name(input)}, "
                    f"{_type_name(other)}), but expected one of:\n"
                    " * (Tensor input, Tensor other, *, Number alpha = 1)\n"
                    " * (Tensor input, Number other, Number alpha = 1)\n")


def _type_name(x) -> str:
    return "Tensor" if is_tensor(x) else type(x).__name__


def _torch_dropout(input, p: float, train: bool):  # noqa: A002  (torch.dropout's parameter names)
    return dropout(input, p, train)


def _torch_namespace() -> dict:
    ns = {name: _method_function(name) for name in _METHOD_FUNCTIONS}
    ns.update(cat=cat, concat=concat, concatenate=concatenate, stack=stack, where=where,
              is_tensor=is_tensor, rsub=rsub, dropout=_torch_dropout)
    return ns


TORCH_FUNCTIONS = _torch_namespace()


# ---------------------------------------------------------------- torch.nn.functional

def relu(input, inplace: bool = False):  # noqa: A002
    return input.relu_() if inplace else input.relu()


def sigmoid(input):  # noqa: A002
    return input.sigmoid()


def _out_of_place(name: str, inplace: bool) -> None:
    if inplace:
        raise NotImplementedError(f"{name}(inplace=True) is not supported here; use the out-of-place form")


def silu(input, inplace: bool = False):  # noqa: A002
    _out_of_place("silu", inplace)
    return input._op("silu")


def softplus(input, beta: float = 1.0, threshold: float = 20.0):  # noqa: A002
    return input._op("softplus", beta=beta, threshold=threshold)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):  # noqa: A002
    _out_of_place("leaky_relu", inplace)
    return input._op("leaky_relu", negative_slope=negative_slope)


def elu(input, alpha: float = 1.0, inplace: bool = False):  # noqa: A002
    _out_of_place("elu", inplace)
    return input._op("elu", alpha=alpha)


def tanh(input):  # noqa: A002
    return input.tanh()


def softmax(input, dim=None, dtype=None):  # noqa: A002
    return (input if dtype is None else input.to(dtype)).softmax(dim)


def log_softmax(input, dim=None, dtype=None):  # noqa: A002
    return (input if dtype is None else input.to(dtype)).log_softmax(dim)


def linear(input, weight, bias=None):  # noqa: A002
    # torch's linear: addmm for a 2-d input (and, flattened, for a contiguous input with a
    # contiguous 1-d bias); otherwise matmul then add
    if bias is not None and (input.dim() == 2 or (input.is_contiguous() and bias.dim() == 1
                                                  and bias.is_contiguous())):
        if input.dim() == 2:
            return bias._dispatch(OPS["addmm"], (bias, input, weight.t()), {})
        flat = input.reshape(math.prod(input.shape[:-1]), input.shape[-1])
        out = bias._dispatch(OPS["addmm"], (bias, flat, weight.t()), {})
        return out.view(tuple(input.shape[:-1]) + (out.shape[1],))
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):  # noqa: A002
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.size()}) that is different to the input size "
                      f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=2)
        # torch broadcasts both sides first: the graph shows ExpandBackward0 under MseLossBackward0
        shape = _broadcast_shapes(tuple(input.shape), tuple(target.shape))
        if tuple(input.shape) != shape:
            input = input.expand(shape)  # noqa: A001
        if tuple(target.shape) != shape:
            target = target.expand(shape)
    return input._op("mse_loss", target, reduction=reduction)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):  # noqa: A002
    """torch's dropout on the CPU: the input times a noise of 0 and 1 / (1 - p) (MulBackward0); the
    noise comes from the session's generator, so it is not torch's draw for the same seed."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if not input.dtype.is_floating_point:
        from .errors import scalar_name
        raise RuntimeError(f"result type Float can't be cast to the desired output type {scalar_name(input.dtype)}")
    make = input._factories
    if p == 1:
        noise = make.zeros(tuple(input.shape), dtype=input.dtype)
    else:
        noise = (make.rand(tuple(input.shape), dtype=input.dtype) >= p).to(input.dtype) / (1 - p)
    return input.mul_(noise) if inplace else input * noise


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):  # noqa: A002
    # torch composes it: |input - target|, then the reduction (MeanBackward0 over AbsBackward0)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.size()}) that is different to the input size "
                      f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=2)
    loss = (input - target).abs()
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None):
    if weight is not None or pos_weight is not None:
        raise NotImplementedError("binary_cross_entropy_with_logits: weight and pos_weight are not supported yet")
    return input._op("binary_cross_entropy_with_logits", target, reduction=reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,  # noqa: A002
             reduce=None, reduction: str = "mean"):
    if weight is not None:
        raise NotImplementedError("nll_loss: class weights are not supported yet")
    return input._op("nll_loss", target, reduction=reduction, ignore_index=ignore_index)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,  # noqa: A002
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
    if label_smoothing:
        raise NotImplementedError("cross_entropy: label_smoothing is not supported yet")
    if target.dtype.is_floating_point:
        raise NotImplementedError("cross_entropy with class probabilities is not supported yet")
    dim = 0 if input.dim() == 1 else 1
    return nll_loss(input.log_softmax(dim), target, weight, ignore_index=ignore_index, reduction=reduction)


nn_functional = types.SimpleNamespace(
    relu=relu, sigmoid=sigmoid, tanh=tanh, softmax=softmax, log_softmax=log_softmax, linear=linear,
    mse_loss=mse_loss, binary_cross_entropy_with_logits=binary_cross_entropy_with_logits,
    nll_loss=nll_loss, cross_entropy=cross_entropy, silu=silu, softplus=softplus, leaky_relu=leaky_relu,
    elu=elu, l1_loss=l1_loss, dropout=dropout)
