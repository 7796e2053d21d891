"""Shape, dtype and stride rules of every op of the table, without computing anything.

A client infers each result's metadata from these rules, so it needs no round trip; an
op whose result shape depends on values (a boolean mask index) has no rule and syncs.
Errors a rule can see are raised with the engine's own types and messages.
"""
from __future__ import annotations

import math

import numpy

from . import ops
from .dtypes import DEFAULT_FLOAT, by_name, result_type
from .strides import contiguous_strides, is_contiguous, view_strides

_SCALARS = (bool, int, float)
_BOOL = numpy.dtype(bool)
_INT64 = numpy.dtype(numpy.int64)
_FLOAT = DEFAULT_FLOAT.np


class ValueDependentError(Exception):
    """The result's metadata depends on values: only the server can tell."""


_CONTIGUOUS = object()


class Meta:
    """What a client knows of a tensor: shape, numpy dtype, strides in elements (None: unknown)."""

    __slots__ = ("shape", "dtype", "strides")

    def __init__(self, shape, dtype, strides=_CONTIGUOUS) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        if strides is _CONTIGUOUS:
            strides = contiguous_strides(self.shape)
        self.strides = None if strides is None else tuple(strides)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"Meta({self.shape}, {self.dtype}, {self.strides})"


def _broadcast(*operands) -> tuple:
    shapes = [() if isinstance(x, _SCALARS) or x is None else x.shape for x in operands]
    first = max(shapes, key=len)
    if all(s == first or not s for s in shapes):  # the common case: equal shapes, or scalars
        return first
    out: list[int] = []
    for i in range(1, max((len(s) for s in shapes), default=0) + 1):
        size = 1
        for s in shapes:
            d = s[-i] if i <= len(s) else 1
            if d != 1:
                if size != 1 and d != size:
                    # the engine words it for the first two operands that disagree
                    a = next(x for x in operands if not isinstance(x, _SCALARS) and len(x.shape) >= i
                             and x.shape[-i] != 1)
                    b = next(x for x in operands if not isinstance(x, _SCALARS) and x is not a
                             and len(x.shape) >= i and x.shape[-i] not in (1, a.shape[-i]))
                    raise ops._shape_error(a, b)
                size = d
        out.append(size)
    return tuple(reversed(out))


def _dtype(*operands):
    # the common case, one dtype among the tensors and no scalar of a higher category, is quick
    dt = None
    for x in operands:
        if isinstance(x, Meta):
            if dt is None:
                dt = x.dtype
            elif x.dtype != dt:
                return result_type(*operands).np
    if dt is not None and dt.kind == "f":
        return dt
    return _slow_dtype(*operands)


def _slow_dtype(*operands):
    return result_type(*operands).np


def _float(dt):
    return dt if dt.kind == "f" else _FLOAT


def elementwise(out_dtype=None):
    def rule(*inputs, **params):
        dt = _dtype(*inputs) if out_dtype is None else out_dtype
        return Meta(_broadcast(*inputs), dt)
    return rule


def _add(a, b, alpha=1):
    dt = _dtype(a, b)
    if alpha.__class__ is not int:
        ops.check_alpha(dt, alpha)
    return Meta(_broadcast(a, b), dt)


def _sub(a, b, alpha=1):
    ops.check_sub(a, b)
    return _add(a, b, alpha)


def _rsub(a, other, alpha=1):
    return _sub(a, other, alpha)


def _div(a, b, rounding_mode=None):
    if rounding_mode not in (None, "trunc", "floor"):
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")
    dt = _dtype(a, b)
    return Meta(_broadcast(a, b), _float(dt) if rounding_mode is None else dt)


def _checked(kernel: str, rule):
    """floor_divide's and remainder's rules: no two bool operands (ops.check_integer_division)."""
    def checked(a, *rest, **params):
        ops.check_integer_division(kernel, a, rest[0] if rest else params.get("other"))
        return rule(a, *rest, **params)
    return checked


def _pow_scalar_exponent(a, exponent):
    ops.check_integer_exponent(a, exponent)
    return _scalar_promoted(a, exponent=exponent)


def _pow_checked(rule):
    """pow's rules with a tensor or a number base: no two bool operands (ops.check_pow)."""
    def checked(a, *rest, **params):
        ops.check_pow(params["base"] if "base" in params else a, rest[0] if rest else a)
        return rule(a, *rest, **params)
    return checked


def _bitwise(kernel: str):
    rule = elementwise()

    def checked(a, b):
        meta = rule(a, b)
        ops.check_bitwise(kernel, meta.dtype)
        return meta
    return checked


def _frac(a):
    ops.check_frac(a)
    return Meta(a.shape, a.dtype)


def _flip(a, dims):
    ops.flip_dims(dims, a.ndim)
    return Meta(a.shape, a.dtype)


def _cumsum(a, dim, dtype=None):
    ops._check_dim(dim, a.ndim)
    return Meta(a.shape, ops.cumsum_dtype(a.dtype, None if dtype is None else dtype.np))


def _masked_fill(a, mask, value):
    ops.check_mask(mask.dtype)
    return Meta(_broadcast(a, mask), a.dtype)


def _masked_fill_tensor(a, mask, value):
    ops.check_fill_value(value.ndim)
    return _masked_fill(a, mask, None)


def _triangle(name):
    def rule(a, diagonal=0):
        ops.check_triangle(name, a.ndim)
        return Meta(a.shape, a.dtype)
    return rule


def _index_select(a, index, dim):
    dim = ops.check_index_select(a.ndim, dim, index.dtype, index.ndim, math.prod(index.shape))
    if a.ndim == 0:
        return Meta((), a.dtype)
    shape = list(a.shape)
    shape[dim] = math.prod(index.shape)
    return Meta(tuple(shape), a.dtype)


def _gather(a, index, dim):
    ops.check_gather(a.shape, dim, index.dtype, index.shape)
    return Meta(tuple(index.shape), a.dtype)


def _sort(a, dim=-1, descending=False, stable=False):
    ops._check_dim(dim, a.ndim)
    return Meta(a.shape, a.dtype), Meta(a.shape, _INT64)


def _topk(a, k, dim=-1, largest=True, sorted=True):  # noqa: A002  (torch's keyword)
    axis = ops._check_dim(dim, a.ndim)
    ops.check_topk(k, a.shape[axis] if a.ndim else 1)
    shape = tuple(k if d == axis else n for d, n in enumerate(a.shape))
    return Meta(shape, a.dtype), Meta(shape, _INT64)


def _logsumexp(a, dim, keepdim=False):
    return Meta(_reduced(a, dim, keepdim), a.dtype if a.dtype.kind == "f" else DEFAULT_FLOAT.np)


def _repeat(a, repeats):
    return Meta(ops.repeat_shape(a.shape, repeats), a.dtype)


def _gelu(a, approximate="none"):
    ops.check_gelu(a, approximate)
    return Meta(a.shape, a.dtype)


def _layer_norm(x, weight, bias, normalized_shape, eps=1e-5):
    ops.check_layer_norm(x, weight, bias, normalized_shape)
    return Meta(x.shape, x.dtype)


def _embedding(weight, indices, padding_idx=-1):
    ops.check_embedding(weight, indices)  # (an index out of range: the server's error, by value)
    return Meta(tuple(indices.shape) + (weight.shape[1],), weight.dtype)


def _cumprod(a, dim, dtype=None):
    ops._check_dim(dim, a.ndim)
    return Meta(a.shape, ops.cumsum_dtype(a.dtype, None if dtype is None else dtype.np))


def _roll(a, shifts, dims=()):
    ops.roll_args(a.ndim, shifts, dims)
    return Meta(a.shape, a.dtype)


def _constant_pad_nd(a, pad, value=0):
    return Meta(ops.constant_pad_shape(a.shape, pad), a.dtype)


def _same(a, **params):
    return Meta(a.shape, a.dtype)


def _float_same(a, **params):
    return Meta(a.shape, _float(a.dtype))


def _scalar_promoted(a, **params):
    scalar = params.get("exponent", params.get("other", params.get("base")))
    if isinstance(scalar, (list, tuple)) or scalar is None:
        return Meta(a.shape, a.dtype)
    return Meta(a.shape, _dtype(a, scalar))


def _no_bool(kernel, error=NotImplementedError, message=None):
    def rule(a, **params):
        ops.check_no_bool(a, kernel, error, message)
        return _same(a)
    return rule


def _neg(a):
    ops.check_neg(a)
    return _same(a)


def _clamp(a, min=None, max=None):  # noqa: A002  (torch's keywords)
    ops.check_clamp_bounds(min, max)
    # an integer tensor clamped at a float bound is a float tensor, as in torch
    return Meta(a.shape, _dtype(a, *(v for v in (min, max) if v is not None)))


def _where(cond, a, b):
    ops.check_where_condition(cond)
    return Meta(_broadcast(cond, a, b), _dtype(a, b))


def _reduced(a, dim, keepdim):
    axes = ops._check_reduce_dims(a, dim) if dim is not None else tuple(range(a.ndim))
    axes = () if axes is None else axes
    if keepdim:
        return tuple(1 if i in axes else d for i, d in enumerate(a.shape))
    return tuple(d for i, d in enumerate(a.shape) if i not in axes)


def _reduction(kind):
    def rule(a, dim=None, keepdim=False, **params):
        dims = (dim,) if isinstance(dim, int) else dim
        shape = _reduced(a, dims, keepdim)
        if kind == "sum":
            dt = _INT64 if a.dtype.kind in "biu" else a.dtype
        elif kind == "float":
            if a.dtype.kind != "f":
                raise ValueDependentError  # the engine raises its dtype error; let the server say it
            dt = a.dtype
        elif kind == "bool":
            dt = _BOOL
        elif kind == "index":
            dt = _INT64
        else:
            dt = a.dtype
        if params.get("dtype") is not None:  # sum/mean/prod(dtype=...)
            dt = params["dtype"].np
        return Meta(shape, dt)
    return rule


def _extreme_dim(a, dim, keepdim=False):
    shape = _reduced(a, (dim,), keepdim) if a.ndim else ()
    return Meta(shape, a.dtype), Meta(shape, _INT64)


def _norm(a, ord=2, dim=None, keepdim=False):  # noqa: A002
    if a.dtype.kind != "f":
        raise ValueDependentError
    return Meta(_reduced(a, dim, keepdim), a.dtype)


def _mm(a, b):
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        raise ValueDependentError  # the engine's checks word it
    return Meta((a.shape[0], b.shape[1]), a.dtype)


def _bmm(a, b):
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1] or a.dtype != b.dtype:
        raise ValueDependentError
    return Meta((a.shape[0], a.shape[1], b.shape[2]), a.dtype)


def _dot(a, b):
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape or a.dtype != b.dtype:
        raise ValueDependentError
    return Meta((), a.dtype)


def _mv(a, b):
    if a.ndim != 2 or b.ndim != 1 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        raise ValueDependentError
    return Meta((a.shape[0],), a.dtype)


def _permuted(a, order):
    strides = None if a.strides is None else tuple(a.strides[d] for d in order)
    return Meta(tuple(a.shape[d] for d in order), a.dtype, strides)


def _t(a):
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D")
    return _permuted(a, tuple(reversed(range(a.ndim))))


def _transpose(a, dim0, dim1):
    if a.ndim == 0:
        return Meta((), a.dtype)
    order = list(range(a.ndim))
    d0, d1 = ops._check_dim(dim0, a.ndim), ops._check_dim(dim1, a.ndim)
    order[d0], order[d1] = order[d1], order[d0]
    return _permuted(a, order)


def _permute(a, dims):
    return _permuted(a, ops.permute_order(a, dims))


def _view(a, shape):
    shape = ops.infer_shape(shape, a.size)
    if a.strides is None:
        raise ValueDependentError  # whether it can be a view depends on strides only the server knows
    strides = view_strides(a.shape, a.strides, shape)
    if strides is None:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least "
                           "one dimension spans across two contiguous subspaces). Use .reshape(...) "
                           "instead.")
    return Meta(shape, a.dtype, strides)


def _unsafe_view(a, shape):
    return Meta(ops.infer_shape(shape, a.size), a.dtype)


def _squeeze(a, dim=None):
    if dim is None:
        keep = [i for i, d in enumerate(a.shape) if d != 1]
    else:
        dims = dim if isinstance(dim, tuple) else (dim,)
        axes = {ops._check_dim(d, a.ndim) for d in dims}
        keep = [i for i, d in enumerate(a.shape) if not (i in axes and d == 1)]
    return Meta(tuple(a.shape[i] for i in keep), a.dtype,
                None if a.strides is None else tuple(a.strides[i] for i in keep))


def _unsqueeze(a, dim):
    n = a.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    d = dim % n
    if a.strides is None:
        return Meta(a.shape[:d] + (1,) + a.shape[d:], a.dtype, None)
    inner = a.strides[d] * a.shape[d] if d < a.ndim else 1
    return Meta(a.shape[:d] + (1,) + a.shape[d:], a.dtype, a.strides[:d] + (inner,) + a.strides[d:])


def _expand(a, shape):
    shape = tuple(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueDependentError
    out, strides = [], []
    for i, d in enumerate(shape):
        if i < lead:
            if d == -1:
                raise ValueDependentError
            out.append(d)
            strides.append(0)
            continue
        have = a.shape[i - lead]
        if d == -1:
            d = have
        elif have != d and have != 1:
            raise RuntimeError(f"The expanded size of the tensor ({d}) must match the existing size ({have}) "
                               f"at non-singleton dimension {i}.  Target sizes: {list(shape)}.  "
                               f"Tensor sizes: {list(a.shape)}")
        out.append(d)
        strides.append((a.strides[i - lead] if a.strides is not None else None) if have == d else 0)
    return Meta(tuple(out), a.dtype, None if None in strides else tuple(strides))


def _to_dtype(a, dtype):
    return Meta(a.shape, (dtype if not isinstance(dtype, str) else by_name(dtype)).np)


def _cat(*inputs, dim=0):
    ops.check_cat(inputs)
    tensors = [x for x in inputs if not (x.ndim == 1 and x.shape[0] == 0)] or list(inputs[:1])
    ref = tensors[0]
    d = ops._check_dim(dim, ref.ndim)
    for x in tensors:
        if x.ndim != ref.ndim or any(x.shape[k] != ref.shape[k] for k in range(ref.ndim) if k != d):
            raise ValueDependentError
    shape = list(ref.shape)
    shape[d] = sum(x.shape[d] for x in tensors)
    return Meta(tuple(shape), _dtype(*inputs))


def _stack(*inputs, dim=0):
    ref = inputs[0]
    if any(x.shape != ref.shape for x in inputs):
        raise ValueDependentError
    n = ref.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    d = dim % n
    return Meta(ref.shape[:d] + (len(inputs),) + ref.shape[d:], _dtype(*inputs))


def _unbind(a, dim=0):
    d = ops._check_dim(dim, a.ndim)
    shape = a.shape[:d] + a.shape[d + 1:]
    strides = None if a.strides is None else a.strides[:d] + a.strides[d + 1:]
    return tuple(Meta(shape, a.dtype, strides) for _ in range(a.shape[d]))


def _split_pieces(a, dim, sizes):
    d = ops._check_dim(dim, a.ndim)
    return tuple(Meta(a.shape[:d] + (n,) + a.shape[d + 1:], a.dtype, a.strides) for n in sizes)


def _split(a, split_size, dim=0):
    if a.ndim == 0:
        raise ValueDependentError  # the engine words the error
    return _split_pieces(a, dim, ops.split_sizes(a.shape[ops._check_dim(dim, a.ndim)], split_size))


def _split_with_sizes(a, split_sizes, dim=0):
    if a.ndim == 0 or sum(split_sizes) != a.shape[ops._check_dim(dim, a.ndim)]:
        raise ValueDependentError
    return _split_pieces(a, dim, split_sizes)


def _select(a, dim, index):
    d = ops.select_dim(a, dim, index)
    return Meta(a.shape[:d] + a.shape[d + 1:], a.dtype,
                None if a.strides is None else a.strides[:d] + a.strides[d + 1:])


def _slice(a, dim, start=None, stop=None, step=1):
    if step <= 0:
        raise ValueError("step must be greater than zero")
    d = ops._check_dim(dim, a.ndim)
    n = len(range(*slice(start, stop, step).indices(a.shape[d])))
    return Meta(a.shape[:d] + (n,) + a.shape[d + 1:], a.dtype,
                None if a.strides is None else a.strides[:d] + (a.strides[d] * step,) + a.strides[d + 1:])


def _index(a, *tensors, key):
    if any(t.dtype == _BOOL for t in tensors):
        raise ValueDependentError  # a mask's result size depends on its values
    # numpy's indexing rules on a zero-stride stand-in, with stand-in index arrays of the right shapes
    stand_in = numpy.lib.stride_tricks.as_strided(numpy.zeros(1, dtype=numpy.int8), a.shape, (0,) * a.ndim)
    indices = [numpy.zeros(t.shape, dtype=numpy.int64) for t in tensors]
    try:
        shape = stand_in[ops.build_key(key, indices)].shape
    except IndexError as e:
        raise IndexError(str(e)) from None
    return Meta(shape, a.dtype)


def _inplace_same(a, *rest, **params):
    return Meta(a.shape, a.dtype, a.strides)


def _loss(a, b, reduction="mean", **params):
    shape = _broadcast(a, b)
    dt = _dtype(a, b)
    return Meta(shape if reduction == "none" else (), dt)


def _bce(x, y, weight=None, pos_weight=None, reduction="mean"):
    if x.shape != y.shape:
        raise ValueError(f"Target size (torch.Size({list(y.shape)})) must be the same as input size "
                         f"(torch.Size({list(x.shape)}))")
    for w in (weight, pos_weight):
        # the weights are written into the loss in place: they must broadcast to its shape
        if w is not None and (w.ndim > x.ndim or any(a not in (1, b) for a, b in zip(w.shape[::-1], x.shape[::-1]))):
            raise ValueDependentError  # the engine's checks word it
    return Meta(x.shape if reduction == "none" else (), _dtype(x, y))


def _nll_checked(logp, target, weight, target_dims):
    if (target.ndim not in target_dims or target.dtype not in (_INT64, numpy.dtype(numpy.uint8))
            or logp.dtype.kind != "f" or weight is not None and weight.dtype != logp.dtype):
        raise ValueDependentError  # the engine's checks word it


def _nll(logp, target, weight=None, reduction="mean", ignore_index=-100):
    _nll_checked(logp, target, weight, (0, 1))
    if weight is not None and weight.shape != logp.shape[-1:]:
        raise ValueDependentError
    if reduction == "none":
        return Meta(() if logp.ndim == 1 else target.shape, logp.dtype)
    return Meta((), logp.dtype)


def _nll2d(logp, target, weight=None, reduction="mean", ignore_index=-100):
    _nll_checked(logp, target, weight, (3,))
    if logp.ndim != 4 or (logp.shape[0],) + logp.shape[2:] != target.shape or (
            weight is not None and weight.size != logp.shape[1]):
        raise ValueDependentError
    return Meta(target.shape if reduction == "none" else (), logp.dtype)


def _clamp_tensor(a, min=None, max=None):  # noqa: A002
    bounds = [v for v in (min, max) if v is not None]
    return Meta(_broadcast(a, *bounds), _dtype(a, *bounds))


def _round_decimals(a, decimals):
    if a.dtype.kind != "f":
        raise ValueDependentError  # the engine words the error
    return Meta(a.shape, a.dtype)


def _value_dependent(*inputs, **params):
    raise ValueDependentError  # the result's size is counted on the server


def _clamp_bound(a, **bound):
    return Meta(a.shape, _dtype(a, *bound.values()))


def _div_scalar(a, other):
    return Meta(a.shape, _float(_dtype(a, other)))


def _softmax_rule(name):
    def rule(a, dim):
        ops._float_kernel(a, ops._check_dim(dim, a.ndim), name)  # torch has no integer kernels
        return Meta(a.shape, a.dtype)
    return rule


def _copy(a, src):
    ops.check_copy(a, src)
    return _inplace_same(a)


def _addmm(bias, a, b):
    out = _mm(a, b)
    try:
        expands = _broadcast(bias, out) == out.shape
    except RuntimeError:
        expands = False
    if not expands:
        raise ValueDependentError  # a bias that does not expand: the engine's own error, at once
    return out


_RELU = _no_bool("relu", RuntimeError, "Boolean inputs not supported for relu")

RULES = {
    "add": _add, "sub": _sub, "rsub_tensor": _sub, "mul": elementwise(), "div": _div,
    "rsub": _rsub, "pow": _pow_scalar_exponent, "pow_tensor": _pow_checked(elementwise()),
    "pow_scalar_base": _pow_checked(_scalar_promoted), "reciprocal": _float_same, "neg": _neg,
    "where": _where, "abs": _no_bool("abs_cpu"), "sign": _same,
    "exp": _float_same, "log": _float_same, "sqrt": _float_same, "sin": _float_same, "cos": _float_same,
    "tanh": _float_same, "expm1": _float_same, "log1p": _float_same, "log2": _float_same, "log10": _float_same,
    "rsqrt": _float_same, "tan": _float_same, "sinh": _float_same, "cosh": _float_same, "asin": _float_same,
    "acos": _float_same, "atan": _float_same, "floor": _same, "ceil": _same, "trunc": _same, "round": _same,
    "frac": _frac, "isnan": elementwise(_BOOL), "isinf": elementwise(_BOOL), "isfinite": elementwise(_BOOL),
    "sigmoid": _float_same, "relu": _RELU, "clamp": _clamp, "silu": _same, "softplus": _same,
    "leaky_relu": _no_bool("leaky_relu_cpu"),
    "elu": _same, "flip": _flip, "cumsum": _cumsum, "masked_fill": _masked_fill,
    "masked_fill_tensor": _masked_fill_tensor, "tril": _triangle("tril"), "triu": _triangle("triu"),
    "index_select": _index_select, "gather": _gather, "sort": _sort, "sort_stable": _sort, "topk": _topk,
    "repeat": _repeat,
    "eq": elementwise(_BOOL), "ne": elementwise(_BOOL), "lt": elementwise(_BOOL), "le": elementwise(_BOOL),
    "gt": elementwise(_BOOL), "ge": elementwise(_BOOL), "isclose": elementwise(_BOOL),
    "logical_not": lambda a: Meta(a.shape, _BOOL), "logical_and": elementwise(_BOOL),
    "logical_or": elementwise(_BOOL), "bitwise_and": _bitwise("bitwise_and_cpu"),
    "bitwise_or": _bitwise("bitwise_or_cpu"),
    "all": _reduction("bool"), "any": _reduction("bool"), "argmax": _reduction("index"),
    "argmin": _reduction("index"),
    "sum": _reduction("sum"), "sum_dim": _reduction("sum"), "mean": _reduction("float"),
    "mean_dim": _reduction("float"), "logsumexp": _logsumexp, "var": _reduction("float"), "std": _reduction("float"),
    "max": _reduction("same"), "min": _reduction("same"), "max_dim": _extreme_dim, "min_dim": _extreme_dim,
    "maximum": elementwise(), "minimum": elementwise(), "prod": _reduction("sum"),
    "prod_dim": _reduction("sum"), "norm": _norm,
    "mm": _mm, "bmm": _bmm, "dot": _dot, "mv": _mv,
    "t": _t, "transpose": _transpose, "permute": _permute, "view": _view, "_unsafe_view": _unsafe_view,
    "squeeze": _squeeze, "squeeze_dim": _squeeze, "squeeze_dims": _squeeze, "_squeeze_matmul": _squeeze,
    "unsqueeze": _unsqueeze, "expand": _expand, "clone": _same, "to_dtype": _to_dtype,
    "detach_copy": _inplace_same, "cat": _cat, "stack": _stack, "unbind": _unbind,
    "select": _select, "slice": _slice, "index": _index,
    "copy_slices": _inplace_same, "index_put": _inplace_same,
    "zero_": _inplace_same, "fill_": _inplace_same, "fill_tensor": _inplace_same, "copy_": _copy,
    "softmax": _softmax_rule("softmax"), "log_softmax": _softmax_rule("log_softmax"), "mse_loss": _loss,
    "binary_cross_entropy_with_logits": _bce, "nll_loss": _nll, "nll_loss2d": _nll2d,
    "mul_scalar": _scalar_promoted, "add_scalar": _scalar_promoted, "div_scalar": _div_scalar,
    "clamp_tensor": _clamp_tensor, "clamp_min": _clamp_bound, "clamp_max": _clamp_bound,
    "clamp_min_tensor": elementwise(), "clamp_max_tensor": elementwise(),
    "leaky_relu_": _same, "elu_": _same, "nonzero": _value_dependent, "round_decimals": _round_decimals,
    "div_mode": _div, "floor_divide": _checked("div_floor_cpu", elementwise()),
    "floor_divide_scalar": _checked("div_floor_cpu", _scalar_promoted),
    "rfloor_divide_scalar": _checked("div_floor_cpu", _scalar_promoted),
    "remainder": _checked("remainder_cpu", elementwise()),
    "remainder_scalar": _checked("remainder_cpu", _scalar_promoted),
    "rremainder_scalar": _checked("remainder_cpu", _scalar_promoted),
    "amax": _reduction("same"), "amin": _reduction("same"),
    "alias": lambda a: Meta(a.shape, a.dtype, a.strides), "_reshape_alias": _view,
    "addmm": _addmm, "split": _split, "split_with_sizes": _split_with_sizes,
    "erf": _float_same, "gelu": _gelu, "layer_norm": _layer_norm,
    "embedding": _embedding, "cumprod": _cumprod, "roll": _roll, "constant_pad_nd": _constant_pad_nd,
}

# Ops the client never issues itself (they appear only inside backward, on the server).
SERVER_ONLY = {"select_backward", "slice_backward", "index_backward", "threshold_backward", "softplus_backward",
               "leaky_relu_backward", "elu_backward", "gelu_backward", "embedding_backward", "layer_norm_backward",
               "index_select_backward", "gather_backward"}


def infer(name: str, inputs, params):
    """Meta (or a tuple of them) of an op's result; raises ValueDependentError when only values can tell."""
    rule = RULES.get(name)
    if rule is None:
        raise ValueDependentError
    result = rule(*inputs, **params)
    if name not in _VIEWS and any(x.__class__ is Meta and (x.strides is None or not _dense(x)) for x in inputs):
        # a computed result follows its inputs' memory layout (numpy's and torch's order 'K'):
        # from a transposed input it is transposed too; only the server knows exactly
        for m in result if isinstance(result, tuple) else (result,):
            m.strides = None
    return result


def _dense(m: Meta) -> bool:
    return m.strides == contiguous_strides(m.shape) or is_contiguous(m.shape, m.strides)


_VIEWS = frozenset(name for name, row in ops.OPS.items() if row.view)


# ---------------------------------------------------------------- factories

_SHAPED = {"zeros", "ones", "empty", "rand", "randn"}


def _size(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in args):
        return None
    return tuple(args)


def factory_meta(name: str, args, kwargs):
    """(shape, dtype) of a factory's result, or None when the engine should judge the arguments."""
    from .dtypes import bool_, float32, int64
    dt = kwargs.get("dtype")
    requires_grad = kwargs.get("requires_grad", False)
    if name in _SHAPED:
        shape = _size(args)
        dt = dt or float32
        if shape is None or (name in ("rand", "randn") and not dt.is_floating_point):
            return None
    elif name == "full" and len(args) == 2:
        shape = _size((args[0],) if isinstance(args[0], int) else args[0])
        fill = args[1]
        if shape is None or not isinstance(fill, (bool, int, float)):
            return None
        dt = dt or (bool_ if isinstance(fill, bool) else int64 if isinstance(fill, int) else float32)
    elif name == "arange":
        start, end, step = (list(args) + [None, 1])[:3] if len(args) < 3 else args[:3]
        if end is None:
            start, end = 0, start
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end, step)) or step == 0:
            return None
        if (end - start) / step < 0:
            return None
        shape = (max(0, math.ceil((end - start) / step)),)
        dt = dt or (int64 if all(isinstance(v, int) for v in (start, end, step)) else float32)
    elif name == "randint" and len(args) == 3:
        low, high, size = args
        if size is None:  # randint(high, size)
            low, high, size = 0, low, high
        elif high is None:
            low, high = 0, low
        if not isinstance(size, (tuple, list)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or low >= high:
            return None
        shape, dt = _size((tuple(size),)), dt or int64
        if shape is None:
            return None
    elif name == "randperm" and len(args) == 1 and isinstance(args[0], int) and not isinstance(args[0], bool) \
            and args[0] >= 0:
        shape, dt = (args[0],), dt or int64
    elif name == "linspace" and len(args) == 3 and isinstance(args[2], int) and args[2] >= 0:
        shape, dt = (args[2],), dt or float32
    elif name == "eye" and args and isinstance(args[0], int) and args[0] >= 0:
        m = args[1] if len(args) > 1 and args[1] is not None else args[0]
        if not isinstance(m, int) or m < 0:
            return None
        shape, dt = (args[0], m), dt or float32
    else:
        return None
    if requires_grad and not dt.is_floating_point:
        return None
    return shape, dt
