"""torch.* functions and torch.nn.functional, written over tensor methods so any Tensor class serves."""
from __future__ import annotations

import math
import numbers
import types
import warnings

from .method_args import _alpha, _broadcast_shapes
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
    "erf", "flip", "cumsum", "cumprod", "tile", "roll", "masked_fill", "tril", "triu", "index_select", "gather",
    "sort", "topk",
    "argsort", "logsumexp", "nonzero", "clamp_min", "clamp_max",
    # torch's in-place functions of the methods that have them
    "relu_", "sigmoid_", "exp_", "neg_", "abs_", "sqrt_", "rsqrt_", "tanh_", "log_", "clamp_", "clip_",
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
        return condition.nonzero(as_tuple=True)
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


def _tensor_pair_function(name):
    """torch.maximum/minimum: other must be a Tensor (position 2 in torch's TypeError)."""
    def fn(input, other):  # noqa: A002
        return getattr(input, name)(input._tensor_arg(name, other, position=2))
    fn.__name__ = fn.__qualname__ = name
    return fn


def split(tensor, split_size_or_sections, dim: int = 0):
    return tensor.split(split_size_or_sections, dim)


def _torch_namespace() -> dict:
    ns = {name: _method_function(name) for name in _METHOD_FUNCTIONS}
    ns.update(cat=cat, concat=concat, concatenate=concatenate, stack=stack, where=where,
              is_tensor=is_tensor, rsub=rsub, dropout=_torch_dropout,
              maximum=_tensor_pair_function("maximum"), minimum=_tensor_pair_function("minimum"), split=split)
    return ns


TORCH_FUNCTIONS = _torch_namespace()


# ---------------------------------------------------------------- torch.nn.functional

def relu(input, inplace: bool = False):  # noqa: A002
    return input.relu_() if inplace else input.relu()


def relu_(input):  # noqa: A002
    return input.relu_()


def sigmoid(input):  # noqa: A002
    return input.sigmoid()


def silu(input, inplace: bool = False):  # noqa: A002
    return input._iop("silu") if inplace else input._op("silu")


def softplus(input, beta: float = 1.0, threshold: float = 20.0):  # noqa: A002
    return input._op("softplus", beta=beta, threshold=threshold)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):  # noqa: A002
    if inplace:
        return input._iop("leaky_relu_", negative_slope=negative_slope)
    return input._op("leaky_relu", negative_slope=negative_slope)


def elu(input, alpha: float = 1.0, inplace: bool = False):  # noqa: A002
    if inplace:
        return input._iop("elu_", alpha=alpha)
    return input._op("elu", alpha=alpha)


def gelu(input, approximate: str = "none"):  # noqa: A002
    return input._op("gelu", approximate=approximate)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):  # noqa: A002
    if isinstance(normalized_shape, int):
        raise TypeError("layer_norm(): argument 'normalized_shape' (position 2) must be tuple of ints, not int")
    return input._op("layer_norm", weight, bias, normalized_shape=tuple(int(n) for n in normalized_shape),
                     eps=float(eps))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,  # noqa: A002
              scale_grad_by_freq: bool = False, sparse: bool = False):
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    # torch's Python checks: a negative padding_idx counts from the end; -1 means none
    if padding_idx is not None:
        if padding_idx > 0:
            assert padding_idx < weight.size(0), "Padding_idx must be within num_embeddings"
        elif padding_idx < 0:
            assert padding_idx >= -weight.size(0), "Padding_idx must be within num_embeddings"
            padding_idx = weight.size(0) + padding_idx
    else:
        padding_idx = -1
    return weight._dispatch(OPS["embedding"], (weight, input), {"padding_idx": int(padding_idx)})


def pad(input, pad, mode: str = "constant", value=None):  # noqa: A002
    if mode != "constant":
        raise NotImplementedError(f"F.pad: mode '{mode}' is not supported (constant only)")
    return input._op("constant_pad_nd", pad=tuple(int(p) for p in pad), value=0 if value is None else value)


def tanh(input):  # noqa: A002
    return input.tanh()


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's _get_softmax_dim: the dim an old call without dim= meant, with its warning."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):  # noqa: A002
    if dim is None:
        dim = _softmax_dim("softmax", input.dim(), _stacklevel)
    return (input if dtype is None else input.to(dtype)).softmax(dim)


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):  # noqa: A002
    if dim is None:
        dim = _softmax_dim("log_softmax", input.dim(), _stacklevel)
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


def _warn_target_size(input, target) -> None:  # noqa: A002
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.size()}) that is different to the input size "
                      f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=3)


def _broadcast_tensors(input, target):  # noqa: A002
    """torch.broadcast_tensors of two: a side expanded (ExpandBackward0) only where its shape differs."""
    shape = _broadcast_shapes(tuple(input.shape), tuple(target.shape))
    if tuple(input.shape) != shape:
        input = input.expand(shape)  # noqa: A001
    if tuple(target.shape) != shape:
        target = target.expand(shape)
    return input, target


def _weighted_loss(errors, input, weight, reduction: str):  # noqa: A002
    """mse_loss/l1_loss with weight=: torch's Python composite (errors * weight, then the sum over
    the weights' sum for 'mean')."""
    loss = errors * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / weight.sum()
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


def _check_loss_weight(input, weight) -> None:  # noqa: A002
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):  # noqa: A002
    _warn_target_size(input, target)
    reduction = _legacy_reduction(reduction, size_average, reduce)
    # torch broadcasts both sides first: the graph shows ExpandBackward0 under MseLossBackward0
    expanded_input, expanded_target = _broadcast_tensors(input, target)
    if weight is not None:
        _check_loss_weight(input, weight)
        return _weighted_loss((expanded_input - expanded_target).pow(2), input, weight, reduction)
    return expanded_input._op("mse_loss", expanded_target, reduction=_reduction(reduction))


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


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):  # noqa: A002
    # torch composes it: |input - target|, then the reduction (MeanBackward0 over AbsBackward0)
    _warn_target_size(input, target)
    reduction = _legacy_reduction(reduction, size_average, reduce)
    expanded_input, expanded_target = _broadcast_tensors(input, target)
    if weight is not None:
        _check_loss_weight(input, weight)
        return _weighted_loss((expanded_input - expanded_target).abs(), input, weight, reduction)
    reduction = _reduction(reduction)
    loss = (expanded_input - expanded_target).abs()
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None):
    reduction = _reduction(reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.size()}) must be the same as input size ({input.size()})")
    for name, w in (("weight", weight), ("pos_weight", pos_weight)):
        _no_grad_argument("binary_cross_entropy_with_logits", name, w, input)
    extra = () if weight is None and pos_weight is None else (weight, pos_weight)
    return input._op("binary_cross_entropy_with_logits", target, *extra, reduction=reduction)


def _legacy_reduction(reduction: str, size_average=None, reduce=None) -> str:
    """torch's _Reduction.legacy_get_string: the deprecated size_average/reduce pair, when given."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      "instead.", UserWarning, stacklevel=4)
    return reduction


def _reduction(reduction: str, size_average=None, reduce=None) -> str:
    """torch's _Reduction: the deprecated size_average/reduce pair, else the name, checked."""
    reduction = _legacy_reduction(reduction, size_average, reduce)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                      UserWarning, stacklevel=3)
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _grad_enabled(x) -> bool:
    mode = getattr(x._factories, "is_grad_enabled", None)  # a client's session has its own
    if mode is None:
        from .grad_mode import is_grad_enabled as mode
    return mode()


def _no_grad_argument(function: str, name: str, w, input) -> None:  # noqa: A002
    """torch's check_no_requires_grad: an argument the op has no derivative for."""
    if w is not None and w.requires_grad and _grad_enabled(input):
        raise RuntimeError(f"The function '{function}' is not differentiable with respect to argument '{name}'. "
                           "This input cannot have requires_grad True.")


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,  # noqa: A002
             reduce=None, reduction: str = "mean"):
    return _nll_loss_nd(input, target, weight, _reduction(reduction, size_average, reduce), ignore_index)


def _nll_loss_nd(input, target, weight, reduction: str, ignore_index: int):  # noqa: A002
    """torch's nll_loss_nd: nll_loss for 1-d and 2-d inputs, nll_loss2d for 4-d ones, and other
    K-d inputs viewed as (N, C, 1, -1) for nll_loss2d."""
    dims = input.dim()
    if dims < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {dims})")
    if dims != 1 and input.shape[0] != (target.shape[0] if target.dim() else 0):
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0] if target.dim() else 0}).")
    if dims == 1 and target.dim() == 1 and target.shape[0] != 1:
        raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}")
    _no_grad_argument("nll_loss_forward" if dims <= 2 else "nll_loss2d_forward", "weight", weight, input)
    extra = () if weight is None else (weight,)
    params = {"reduction": reduction, "ignore_index": ignore_index}
    if dims <= 2:
        return input._op("nll_loss", target, *extra, **params)
    if dims == 4:
        return input._op("nll_loss2d", target, *extra, **params)
    n, c = input.shape[0], input.shape[1]
    out_size = (n,) + tuple(input.shape[2:])
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"Expected target size {list(out_size)}, got {list(target.shape)}")
    input, target = input.contiguous(), target.contiguous()  # noqa: A001
    input = input.view(n, c, 1, -1) if input.numel() > 0 else input.view(n, c, 0, 0)  # noqa: A001
    target = target.view(n, 1, -1) if target.numel() > 0 else target.view(n, 0, 0)
    out = input._op("nll_loss2d", target, *extra, **params)
    return out.view(out_size) if reduction == "none" else out


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,  # noqa: A002
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
    """torch's cross_entropy_loss: a target of the input's shape holds class probabilities;
    otherwise class indices, through nll_loss, mixed with a uniform target by label_smoothing."""
    reduction = _reduction(reduction, size_average, reduce)
    label_smoothing = float(label_smoothing)
    class_dim = 0 if input.dim() == 1 else 1
    if tuple(input.shape) == tuple(target.shape):
        if not target.dtype.is_floating_point:
            from .errors import scalar_name
            raise RuntimeError("Expected floating point type for target with class probabilities, got "
                               f"{scalar_name(target.dtype)}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing, class_dim)
    if label_smoothing > 0.0:
        _check_label_smoothing(label_smoothing)
        return _cross_entropy_smoothed(input, target, weight, reduction, ignore_index, label_smoothing, class_dim)
    return _nll_loss_nd(input.log_softmax(class_dim), target, weight, reduction, ignore_index)


def _check_label_smoothing(label_smoothing: float) -> None:
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")


def _class_view(weight, dims: int, class_dim: int):
    """The class weights shaped to broadcast along the class dim of a dims-d input."""
    shape = [1] * dims
    shape[class_dim] = weight.shape[0]
    return weight.view(*shape)


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing, class_dim):  # noqa: A002
    # torch's cross_entropy_loss_prob_target, op for op (its nodes are what a user sees)
    if input.dim() == 0:
        raise IndexError(f"Dimension specified as {class_dim} but tensor has no dimensions")
    n_classes = input.shape[class_dim]
    if weight is not None and (weight.dim() != 1 or weight.numel() != n_classes):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {n_classes} classes or "
                           f"no classes but got weight tensor of shape: {list(weight.shape)}")
    logp = input.log_softmax(class_dim)
    if label_smoothing > 0.0:
        _check_label_smoothing(label_smoothing)
        target = target._op("mul_scalar", other=1 - label_smoothing)._op(
            "add_scalar", other=label_smoothing / n_classes)
    loss = logp * target
    if weight is not None:
        loss = loss * (_class_view(weight, logp.dim(), class_dim) if logp.dim() > 1 else weight)
    if reduction == "mean":
        if logp.numel() == 0:
            return -loss.sum().fill_(math.nan)
        return (-loss.sum())._op("div_scalar", other=logp.numel() // n_classes)
    if reduction == "sum":
        return -loss.sum()
    return -loss.sum(class_dim)


def _cross_entropy_smoothed(input, target, weight, reduction, ignore_index, label_smoothing,  # noqa: A002
                            class_dim):
    # torch's cross_entropy_loss_label_smoothing, op for op
    logp = input.log_softmax(class_dim)
    nll = _nll_loss_nd(logp, target, weight, reduction, ignore_index)
    n_classes = logp.shape[class_dim]
    ignore_mask = target == ignore_index
    if weight is not None:
        smooth = -(logp * _class_view(weight, logp.dim(), class_dim)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    smooth.masked_fill_(ignore_mask, 0.0)
    if reduction == "mean":
        if weight is not None:
            # the weights of the targets not ignored (torch's masked_select, without a shape that
            # depends on values); no gradient flows into it: nll_loss refuses weights that need one
            picked = weight.gather(0, target.masked_fill(ignore_mask, 0).flatten())
            ret = smooth.sum() / picked.masked_fill(ignore_mask.flatten(), 0).sum()
        else:
            ret = smooth.sum() / (~ignore_mask).sum()
    elif reduction == "sum":
        ret = smooth.sum()
    else:
        ret = smooth
    return nll._op("mul_scalar", other=1 - label_smoothing) + ret._op(
        "mul_scalar", other=label_smoothing / n_classes)


nn_functional = types.SimpleNamespace(
    relu=relu, relu_=relu_, sigmoid=sigmoid, tanh=tanh, softmax=softmax, log_softmax=log_softmax, linear=linear,
    mse_loss=mse_loss, binary_cross_entropy_with_logits=binary_cross_entropy_with_logits,
    nll_loss=nll_loss, cross_entropy=cross_entropy, silu=silu, softplus=softplus, leaky_relu=leaky_relu,
    elu=elu, l1_loss=l1_loss, dropout=dropout, gelu=gelu,
    layer_norm=layer_norm, embedding=embedding, pad=pad)
