"""The op table: per op its node name, forward on arrays, and one VJP per input in tensor ops."""
from __future__ import annotations

import math

import numpy

from .backend import errstate, xp
from .dtypes import DEFAULT_FLOAT, FLOAT, of_array, result_type
from .grad_mode import is_grad_enabled
from .opdef import NOT_DIFF, OpDef
from .strides import view_strides

OPS: dict[str, OpDef] = {}


def op(name: str, node: str | None, forward, vjps=(), **kw) -> OpDef:
    row = OpDef(name, node, forward, tuple(vjps), **kw)
    OPS[name] = row
    return row


# ---------------------------------------------------------------- helpers on arrays

_SCALARS = (bool, int, float)


def _shape_error(*operands):
    """torch's broadcast error: the shape so far (a) against the first operand that disagrees (b)."""
    shape: tuple = ()
    for x in operands:
        sb = () if isinstance(x, _SCALARS) else tuple(x.shape)
        n = max(len(shape), len(sb))
        sa, sb = (1,) * (n - len(shape)) + shape, (1,) * (n - len(sb)) + sb
        for i in range(n - 1, -1, -1):
            if sa[i] != sb[i] and sa[i] != 1 and sb[i] != 1:
                return RuntimeError(f"The size of tensor a ({sa[i]}) must match the size of tensor b ({sb[i]}) "
                                    f"at non-singleton dimension {i}")
        shape = tuple(b if a == 1 else a for a, b in zip(sa, sb))
    return RuntimeError(f"shapes {[tuple(getattr(x, 'shape', ())) for x in operands]} cannot be broadcast together")


def _promote(a, b):
    """Cast array operands to torch's result dtype; Python scalars stay weak."""
    if isinstance(a, _SCALARS):
        if isinstance(b, _SCALARS):
            # two Python scalars (where(c, 1.0, 0)): torch's dtype for them, float32 for a float
            dt = result_type(a, b).np
            return xp.asarray(a, dtype=dt), xp.asarray(b, dtype=dt)
        if a.__class__ is float and b.dtype.kind in "biu" or a.__class__ is int and b.dtype.kind == "b":
            b = b.astype(result_type(a, b).np)
        return a, b
    if isinstance(b, _SCALARS):
        if b.__class__ is float and a.dtype.kind in "biu" or b.__class__ is int and a.dtype.kind == "b":
            a = a.astype(result_type(a, b).np)
        return a, b
    if a.dtype is not b.dtype and a.dtype != b.dtype:
        dt = result_type(a, b).np
        a = a.astype(dt, copy=False)
        b = b.astype(dt, copy=False)
    return a, b


def _binary(fn):
    def forward(a, b, **params):
        a, b = _promote(a, b)
        try:
            return fn(a, b, **params)
        except ValueError:
            raise _shape_error(a, b) from None
    return forward


def _to_float(a):
    """torch computes true division and float functions of integers in the default float dtype."""
    if isinstance(a, _SCALARS):
        return float(a)
    return a if a.dtype.kind == "f" else a.astype(DEFAULT_FLOAT.np)


def _float_unary(fn):
    return lambda a: fn(_to_float(a))


def _dims(dim, ndim: int) -> tuple:
    if not dim:  # None or (): torch reduces over every dim
        return tuple(range(ndim))
    return tuple(d % ndim if ndim else 0 for d in dim)


def _unsqueeze_to(g, shape, dims, keepdim):
    """A reduced gradient reshaped so that it broadcasts against the input again."""
    if keepdim or g.dim() == len(shape):
        return g
    full = list(shape)
    for d in _dims(dims, len(shape)):
        full[d] = 1
    return g.reshape(tuple(full))


def _count(shape, dims) -> int:
    n = 1
    for d in _dims(dims, len(shape)):
        n *= shape[d] if shape else 1
    return n


def _sum_int(a, axis=None, keepdims=False):
    if a.dtype.kind in "biu":
        return a.sum(axis=axis, keepdims=keepdims, dtype=xp.int64)
    return a.sum(axis=axis, keepdims=keepdims)


def _const(like, array):
    """A tensor without history holding ``array``, made by the class of ``like`` (a tensor at hand)."""
    return like._make(xp.asarray(array), False, None)


# ---------------------------------------------------------------- arithmetic

_SUB_TWO_BOOLS = ("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                  "`logical_xor()` operator instead.")
_SUB_BOOL = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a "
             "mask, use the `~` or `logical_not()` operator instead.")


def _is_bool(x) -> bool:
    c = x.__class__
    if c is float or c is int:
        return False
    dt = getattr(x, "dtype", None)
    return c is bool or dt is not None and dt.kind == "b"


def check_sub(a, b) -> None:
    """torch's sub_check: no subtraction with a bool operand (a Python bool counts). Operands are
    arrays, Python scalars or metas (the client's inference runs it too)."""
    a_bool, b_bool = _is_bool(a), _is_bool(b)
    if a_bool and b_bool:
        raise RuntimeError(_SUB_TWO_BOOLS)
    if a_bool or b_bool:
        raise RuntimeError(_SUB_BOOL)


def check_alpha(dtype, alpha) -> None:
    """torch's alpha_check of add and sub, against the (numpy) dtype of the result."""
    if alpha.__class__ is bool and dtype.kind != "b":
        raise RuntimeError("Boolean alpha only supported for Boolean results.")
    if alpha.__class__ is float and dtype.kind in "biu":
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")


def _alpha_checked(a, b, alpha):
    """alpha, checked against the dtype of the promoted operands a and b (one may be a scalar)."""
    if alpha.__class__ is not int:
        check_alpha(b.dtype if isinstance(a, _SCALARS) else a.dtype, alpha)
    return alpha


def _subtraction(forward):
    binary = _binary(forward)

    def sub(a, b, **params):
        check_sub(a, b)
        return binary(a, b, **params)
    return sub


def _neg_alpha_vjp(g, c):
    alpha = c.p.get("alpha", 1)
    return -g if alpha == 1 else g * -alpha


op("add", "AddBackward0",
   _binary(lambda a, b, alpha=1: a + b if _alpha_checked(a, b, alpha) == 1 else a + alpha * b),
   (lambda g, c: g, lambda g, c: g if c.p.get("alpha", 1) == 1 else g * c.p["alpha"]))
op("sub", "SubBackward0",
   _subtraction(lambda a, b, alpha=1: a - b if _alpha_checked(a, b, alpha) == 1 else a - alpha * b),
   (lambda g, c: g, _neg_alpha_vjp))
# torch.rsub(input, other, alpha): other - alpha * input; a Python number other (2 - x) is
# RsubBackward1, a tensor other RsubBackward0
_rsub = _subtraction(lambda a, b, alpha=1: b - a if _alpha_checked(a, b, alpha) == 1 else b - alpha * a)
op("rsub", "RsubBackward1", lambda a, other, alpha=1: _rsub(a, other, alpha=alpha), (_neg_alpha_vjp,))
op("rsub_tensor", "RsubBackward0", _rsub, (_neg_alpha_vjp, lambda g, c: g))
op("mul", "MulBackward0", _binary(lambda a, b: a * b),
   (lambda g, c: g * c.x[1], lambda g, c: g * c.x[0]), save=(0, 1), saved_by=((0, (1,)), (1, (0,))))


def _div(a, b, rounding_mode=None):
    a, b = _promote(a, b)
    if rounding_mode is None:
        a, b = _to_float(a), _to_float(b)
        try:
            return xp.true_divide(a, b)
        except ValueError:
            raise _shape_error(a, b) from None
    if rounding_mode in ("floor", "trunc"):
        if result_type(a, b).np.kind in "iu" and (b == 0 if isinstance(b, _SCALARS) else bool((b == 0).any())):
            raise RuntimeError("ZeroDivisionError")  # torch's, for an integer quotient; numpy's would be 0
        if rounding_mode == "floor":
            return xp.floor_divide(a, b)
        with errstate(invalid="ignore", divide="ignore"):
            return xp.trunc(xp.true_divide(a, b)).astype(result_type(a, b).np)
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


op("div", "DivBackward0", _div,
   (lambda g, c: g / c.x[1], lambda g, c: -g * c.x[0] / (c.x[1] * c.x[1])), save=(0, 1), saved_by=((0, (1,)),))


def _div_mode_vjp(k):
    # div(..., rounding_mode=...) is torch's div.Tensor_mode: its own node, and a rounded
    # quotient has zero gradient
    def vjp(g, c):
        if c.p.get("rounding_mode") is not None:
            return g * 0
        return OPS["div"].vjps[k](g, c)
    return vjp


op("div_mode", "DivBackward2", _div, (_div_mode_vjp(0), _div_mode_vjp(1)), save=(0, 1))


def _not_implemented(name):
    def vjp(g, c):
        raise RuntimeError(f"derivative for aten::{name} is not implemented")
    return vjp


def check_integer_division(kernel: str, a, b) -> None:
    """torch has no floor division or remainder of two bools (a Python bool counts). Operands are
    arrays, Python scalars or metas (the client's inference runs it too)."""
    if _is_bool(a) and _is_bool(b):
        raise NotImplementedError(f'"{kernel}" not implemented for \'Bool\'')


def _integer_division(fn, kernel: str):
    """floor_divide or remainder of a dividend by a divisor (either may be a Python number): an
    integer division by zero is torch's ZeroDivisionError (a RuntimeError), never numpy's 0."""
    binary = _binary(fn)

    def forward(a, b):
        check_integer_division(kernel, a, b)
        out = binary(a, b)
        if out.dtype.kind in "iu" and (b == 0 if isinstance(b, _SCALARS) else bool((b == 0).any())):
            raise RuntimeError("ZeroDivisionError")
        return out
    return forward


_floor_divide = _integer_division(xp.floor_divide, "div_floor_cpu")
_remainder = _integer_division(xp.remainder, "remainder_cpu")
# torch has no derivative for floor_divide: its node is NotImplemented, which raises in backward
op("floor_divide", "torch::autograd::NotImplemented", _floor_divide,
   (_not_implemented("floor_divide"), _not_implemented("floor_divide")))
op("floor_divide_scalar", "torch::autograd::NotImplemented",
   lambda a, other: _floor_divide(a, other), (_not_implemented("floor_divide"),))
# a number on the left (2 // x, 2 % x): torch's floor_divide and remainder.Scalar_Tensor, which
# have no derivative either
op("rfloor_divide_scalar", "torch::autograd::NotImplemented",
   lambda a, other: _floor_divide(other, a), (_not_implemented("floor_divide"),))
op("rremainder_scalar", "torch::autograd::NotImplemented",
   lambda a, other: _remainder(other, a), (_not_implemented("remainder"),))
op("remainder", "RemainderBackward1", _remainder,
   (lambda g, c: g, lambda g, c: -g * c.x[0].div(c.x[1], rounding_mode="floor")), save=(0, 1))
op("remainder_scalar", "RemainderBackward0", lambda a, other: _remainder(a, other),
   (lambda g, c: g,))
op("reciprocal", "ReciprocalBackward0", _float_unary(lambda a: 1.0 / a),
   (lambda g, c: -g * c.out * c.out,), save_output=True)
op("neg", "NegBackward0", lambda a: -a if a.dtype.kind != "b" else _neg_bool(), (lambda g, c: -g,))


def check_neg(a) -> None:
    """torch refuses ``-`` on a bool tensor (``a``: an array or a client's Meta)."""
    if a.dtype.kind == "b":
        _neg_bool()


def _neg_bool():
    raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. "
                       "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")


def _pow_scalar_vjp(g, c):
    e = c.p["exponent"]
    if e == 0:
        return g * 0
    return g * (e * c.x[0] ** (e - 1))


def check_pow(a, b) -> None:
    """torch has no pow of a bool by a bool tensor, nor of a Python bool by one (a bool tensor to a
    Python bool is defined: _pow). Operands are arrays, Python scalars or metas (the client's
    inference runs it too)."""
    if _is_bool(a) and _is_bool(b):
        raise NotImplementedError("\"pow\" not implemented for 'Bool'")


def _power(a, b):
    """xp.power, with torch's integer pow where an exponent is negative: 0, except for a base
    of 1 (1) and of -1 (1 or -1 by the exponent's parity); numpy refuses those."""
    check_pow(a, b)
    a, b = _promote(a, b)
    if (b if isinstance(a, _SCALARS) else a).dtype.kind not in "iu":
        return xp.power(a, b)
    negative = xp.asarray(b) < 0
    if not bool(negative.any()):
        return xp.power(a, b)
    if not isinstance(a, xp.ndarray):
        # a number base (Python's or numpy's) as an array of the exponent's dtype: CuPy's where
        # takes arrays only (it calls the condition's astype), numpy's takes either
        a = xp.asarray(a, dtype=xp.asarray(b).dtype)
    out = xp.power(a, xp.where(negative, 0, b))
    at_negative = xp.where(a == 1, 1, xp.where(a == -1, xp.where(xp.asarray(b) % 2 == 0, 1, -1), 0))
    return xp.where(negative, at_negative, out).astype(out.dtype)


def _pow(a, exponent):
    if a.dtype.kind == "b" and exponent.__class__ is bool:
        # torch: a bool tensor to the power True is itself, to the power False all True
        return a.copy() if exponent else xp.ones_like(a)
    a, e = _promote(a, exponent)
    check_integer_exponent(a, e)
    return xp.power(a, e)


def check_integer_exponent(a, exponent) -> None:
    """An integer tensor to a negative Python int: torch refuses it (a and its result are both
    integers). ``a`` is an array or a meta (the client's inference runs it too)."""
    if exponent.__class__ is int and exponent < 0 and a.dtype.kind in "iu":
        raise RuntimeError("Integers to negative integer powers are not allowed.")


op("pow", "PowBackward0", _pow, (_pow_scalar_vjp,), save=(0,))
op("pow_tensor", "PowBackward1", _binary(_power),
   (lambda g, c: g * c.x[1] * c.x[0] ** (c.x[1] - 1),
    # torch takes the log in the promoted dtype (float32 base, float64 exponent: a float64 log)
    lambda g, c: g * where((c.x[0] == 0) & (c.x[1] >= 0), 0.0, c.out * c.x[0].to(c.out.dtype).log())),
   save=(0, 1), save_output=True)
op("pow_scalar_base", "PowBackward2",
   lambda b, base: _binary(_power)(base, b),
   (lambda g, c: g * c.out * math.log(c.p["base"]) if c.p["base"] > 0 else g * 0 * c.out,),
   save_output=True)


def where(cond, a, b):
    """torch.where in tensor terms (cond a bool tensor; a and b tensors or Python scalars)."""
    first = cond if hasattr(cond, "_dispatch") else a
    return first._dispatch(OPS["where"], (cond, a, b), {})


def check_where_condition(cond) -> None:
    """where's condition is a bool tensor (``cond``: an array, a client's Meta, or a number)."""
    if not isinstance(cond, _SCALARS) and cond.dtype.kind != "b":
        raise RuntimeError("where expected condition to be a boolean tensor, but got a tensor with dtype "
                           + _scalar_name(cond))


def _where(cond, a, b):
    a, b = _promote(a, b)
    check_where_condition(cond)
    try:
        return xp.where(cond, a, b)
    except ValueError:
        raise _shape_error(cond, a, b) from None


op("where", "WhereBackward0", _where,
   (NOT_DIFF, lambda g, c: where(c.x[0], g, 0.0), lambda g, c: where(c.x[0], 0.0, g)), save=(0,))

# ---------------------------------------------------------------- pointwise functions

def _no_bool_kernel(fn, kernel: str, error=NotImplementedError, message=None):
    """An op torch has no bool kernel for: its error, in its words."""
    def forward(a, *args, **params):
        check_no_bool(a, kernel, error, message)
        return fn(a, *args, **params)
    return forward


def check_no_bool(a, kernel: str, error=NotImplementedError, message=None) -> None:
    """``a`` (an array or a client's Meta) is not a bool tensor, for an op torch has no bool kernel for."""
    if a.dtype.kind == "b":
        raise error(message or f'"{kernel}" not implemented for \'Bool\'')


op("abs", "AbsBackward0", _no_bool_kernel(lambda a: xp.abs(a), "abs_cpu"), (lambda g, c: g * c.x[0].sign(),), save=(0,))
op("sign", "SignBackward0", lambda a: xp.sign(a), (lambda g, c: g * 0,))
op("exp", "ExpBackward0", _float_unary(xp.exp), (lambda g, c: g * c.out,), save_output=True)
op("log", "LogBackward0", _float_unary(xp.log), (lambda g, c: g / c.x[0],), save=(0,))
op("sqrt", "SqrtBackward0", _float_unary(xp.sqrt), (lambda g, c: g / (2 * c.out),), save_output=True)
op("sin", "SinBackward0", _float_unary(xp.sin), (lambda g, c: g * c.x[0].cos(),), save=(0,))
op("cos", "CosBackward0", _float_unary(xp.cos), (lambda g, c: g * -c.x[0].sin(),), save=(0,))
op("tanh", "TanhBackward0", _float_unary(xp.tanh), (lambda g, c: g * (1 - c.out * c.out),), save_output=True)
op("expm1", "Expm1Backward0", _float_unary(xp.expm1), (lambda g, c: g * (c.out + 1),), save_output=True)
op("log1p", "Log1PBackward0", _float_unary(xp.log1p), (lambda g, c: g / (c.x[0] + 1),), save=(0,))
op("log2", "Log2Backward0", _float_unary(xp.log2), (lambda g, c: g / (c.x[0] * math.log(2.0)),), save=(0,))
op("log10", "Log10Backward0", _float_unary(xp.log10), (lambda g, c: g / (c.x[0] * math.log(10.0)),), save=(0,))
op("rsqrt", "RsqrtBackward0", _float_unary(lambda a: 1 / xp.sqrt(a)), (lambda g, c: g * -0.5 * c.out ** 3,),
   save_output=True)
op("tan", "TanBackward0", _float_unary(xp.tan), (lambda g, c: g * (1 + c.out * c.out),), save_output=True)
op("sinh", "SinhBackward0", _float_unary(xp.sinh), (lambda g, c: g * c.x[0].cosh(),), save=(0,))
op("cosh", "CoshBackward0", _float_unary(xp.cosh), (lambda g, c: g * c.x[0].sinh(),), save=(0,))
op("asin", "AsinBackward0", _float_unary(xp.arcsin), (lambda g, c: g * (1 - c.x[0] * c.x[0]).rsqrt(),), save=(0,))
op("acos", "AcosBackward0", _float_unary(xp.arccos), (lambda g, c: g * -(1 - c.x[0] * c.x[0]).rsqrt(),),
   save=(0,))
op("atan", "AtanBackward0", _float_unary(xp.arctan), (lambda g, c: g / (c.x[0] * c.x[0] + 1),), save=(0,))


def _rounding(fn):
    """floor, ceil, trunc, round: an integer tensor comes back as a copy of itself, as in torch."""
    return lambda a: fn(a) if a.dtype.kind == "f" else a.copy()


def check_frac(a) -> None:
    """frac has no integer kernel; ``a`` is an array or a meta (the client's inference runs it too)."""
    if a.dtype.kind != "f":
        raise NotImplementedError(f'"frac_cpu" not implemented for \'{_scalar_name(a)}\'')


def _frac(a):
    check_frac(a)
    return a - xp.trunc(a)


# the rounding functions' gradient is zero (torch's FloorBackward0 and the like), frac's the identity
op("floor", "FloorBackward0", _rounding(xp.floor), (lambda g, c: g * 0,))
op("ceil", "CeilBackward0", _rounding(xp.ceil), (lambda g, c: g * 0,))
op("trunc", "TruncBackward0", _rounding(xp.trunc), (lambda g, c: g * 0,))
op("round", "RoundBackward0", _rounding(xp.round), (lambda g, c: g * 0,))  # halves to even, as torch


def _round_decimals(a, decimals):
    """torch's round(decimals=): nearbyint(a * 10^d) / 10^d (by 10^-d for d < 0), in a's dtype."""
    if a.dtype.kind != "f":
        raise NotImplementedError(f'"round_cpu" not implemented for \'{_scalar_name(a)}\'')
    scale = a.dtype.type(10.0 ** abs(decimals))
    if decimals < 0:
        return xp.rint(a / scale) * scale
    return xp.rint(a * scale) / scale


op("round_decimals", "RoundBackward1", _round_decimals, (lambda g, c: g * 0,))
op("frac", "FracBackward0", _frac, (lambda g, c: g,))
op("isnan", None, xp.isnan, (NOT_DIFF,))
op("isinf", None, xp.isinf, (NOT_DIFF,))
op("isfinite", None, xp.isfinite, (NOT_DIFF,))


def _sigmoid(a):
    a = _to_float(a)
    # the two-branch form avoids overflow in exp for large |a|
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


op("sigmoid", "SigmoidBackward0", _sigmoid, (lambda g, c: g * (c.out * (1 - c.out)),), save_output=True)


def _silu_vjp(g, c):
    s = c.x[0].sigmoid()
    return g * s * (1 + c.x[0] * (1 - s))


def _softplus(a, beta=1.0, threshold=20.0):
    # torch: the input itself where beta * input is over the threshold, log1p(exp(beta * x)) / beta below
    scaled = a * beta
    return xp.where(scaled > threshold, a, xp.log1p(xp.exp(scaled)) / beta).astype(a.dtype, copy=False)


def _softplus_backward(g, x, beta, threshold):
    z = xp.exp(x * beta)
    return xp.where(x * beta > threshold, g, g * z / (z + 1)).astype(g.dtype, copy=False)


def _softplus_double(gg, c):
    # d/dx of g * z / (z + 1), z = exp(beta * x): g * beta * z / (z + 1)^2 below the threshold
    beta, threshold = c.p["beta"], c.p["threshold"]
    z = (c.x[1] * beta).exp()
    return where(c.x[1] * beta > threshold, 0.0, gg * c.x[0] * beta * z / ((z + 1) * (z + 1)))


op("silu", "SiluBackward0", lambda a: a * _sigmoid(a), (_silu_vjp,), save=(0,))
# leaky_relu, elu and softplus take their backward as torch writes it, an op of its own
# (LeakyReluBackwardBackward0 and the like): a create_graph gradient requires grad as torch's does
op("softplus", "SoftplusBackward0", _softplus,
   (lambda g, c: _call("softplus_backward", (g, c.x[0]), beta=c.p.get("beta", 1.0),
                       threshold=c.p.get("threshold", 20.0)),), save=(0,))
op("softplus_backward", "SoftplusBackwardBackward0", _softplus_backward,
   (lambda gg, c: _call("softplus_backward", (gg, c.x[1]), **c.p), _softplus_double), save=(0, 1))
op("leaky_relu", "LeakyReluBackward0",
   _no_bool_kernel(lambda a, negative_slope=0.01: xp.where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False),
                   "leaky_relu_cpu"),
   (lambda g, c: _call("leaky_relu_backward", (g, c.x[0]), negative_slope=c.p.get("negative_slope", 0.01)),),
   save=(0,))
op("leaky_relu_backward", "LeakyReluBackwardBackward0",
   lambda g, x, negative_slope: xp.where(x > 0, g, g * negative_slope).astype(g.dtype, copy=False),
   (lambda gg, c: _call("leaky_relu_backward", (gg, c.x[1]), **c.p),
    lambda gg, c: _const(gg, xp.zeros_like(gg._data))), save=(1,))
op("elu", "EluBackward0",
   lambda a, alpha=1.0: xp.where(a > 0, a, alpha * xp.expm1(a)).astype(a.dtype, copy=False),
   (lambda g, c: _call("elu_backward", (g, c.x[0]), alpha=c.p.get("alpha", 1.0)),), save=(0,))
op("elu_backward", "EluBackwardBackward0",
   lambda g, x, alpha: xp.where(x > 0, g, g * alpha * xp.exp(x)).astype(g.dtype, copy=False),
   (lambda gg, c: _call("elu_backward", (gg, c.x[1]), **c.p),
    # (torch's second derivative is 0 at x = 0, where its first takes the negative side's value)
    lambda gg, c: where(c.x[1] >= 0, 0.0, gg * c.x[0] * c.p["alpha"] * c.x[1].exp())), save=(0, 1))
# leaky_relu_ and elu_ in place: torch's other nodes, whose backward reads the result (the input
# is overwritten); F.leaky_relu/elu(inplace=True)
op("leaky_relu_", "LeakyReluBackward1", OPS["leaky_relu"].forward,
   (lambda g, c: _call("leaky_relu_backward", (g, c.out), negative_slope=c.p.get("negative_slope", 0.01)),),
   save_output=True)
op("elu_", "EluBackward1", OPS["elu"].forward,
   (lambda g, c: where(c.out > 0, g, g * (c.out + c.p.get("alpha", 1.0))),), save_output=True)


_MATH_ERF = numpy.frompyfunc(math.erf, 1, 1)


def _erf_array(a):
    """erf elementwise: CuPy's kernel on a GPU; on the host, Python's math.erf (within an ulp of the
    exact value in float64) over the elements, as numpy has no erf and scipy is no dependency."""
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf
        return erf(a).astype(a.dtype, copy=False)
    out = _MATH_ERF(a.astype(numpy.float64, copy=False))
    return numpy.asarray(out, dtype=numpy.float64).astype(a.dtype, copy=False)


# erf's derivative as torch writes it: 2 / sqrt(pi) * exp(-x^2) * grad
op("erf", "ErfBackward0", _float_unary(_erf_array),
   (lambda g, c: (-(c.x[0] * c.x[0])).exp() * (2.0 / math.sqrt(math.pi)) * g,), save=(0,))

_SQRT1_2 = math.sqrt(0.5)
_GELU_PDF = 2.0 / math.sqrt(math.pi) * _SQRT1_2 * 0.5   # torch's kBeta of the exact form: 1 / sqrt(2 pi)
_GELU_TANH_BETA = math.sqrt(2.0) * 2.0 / math.sqrt(math.pi) * 0.5  # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


def check_gelu(a, approximate) -> None:
    """torch's gelu checks (an array or a client's Meta): the approximation's name, then a float kernel."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    if a.dtype.kind != "f":
        raise NotImplementedError(f'"GeluKernelImpl" not implemented for \'{_scalar_name(a)}\'')


def _gelu(a, approximate="none"):
    check_gelu(a, approximate)
    if approximate == "tanh":
        inner = _GELU_TANH_BETA * (a + _GELU_KAPPA * a * a * a)
        return 0.5 * a * (1 + xp.tanh(inner))
    return a * 0.5 * (1 + _erf_array(a * _SQRT1_2))


def _gelu_backward(g, x, approximate="none"):
    """torch's gelu_backward kernels: g * d gelu / dx, each approximation's own formula."""
    if approximate == "tanh":
        x_sq = x * x
        tanh_inner = xp.tanh(_GELU_TANH_BETA * (x + _GELU_KAPPA * x_sq * x))
        left_derivative = 0.5 * (1 + tanh_inner)
        right_derivative = 0.5 * x * (1 - tanh_inner * tanh_inner) * _GELU_TANH_BETA * (1 + 3 * _GELU_KAPPA * x_sq)
        return g * (left_derivative + right_derivative)
    cdf = 0.5 * (1 + _erf_array(x * _SQRT1_2))
    pdf = _GELU_PDF * xp.exp(x * x * -0.5)
    return g * (cdf + x * pdf)


def _gelu_double_backward(gg, c):
    """torch's gelu_double_backward, in tensor ops (so it is differentiable once more)."""
    g, x = c.x[0], c.x[1]
    if c.p.get("approximate", "none") == "tanh":
        inner = (x + x * x * x * _GELU_KAPPA) * _GELU_TANH_BETA
        tanh_inner = inner.tanh()
        sech_inner = 1 / inner.cosh()
        f = x * 0.5
        g_ = 1 - tanh_inner * tanh_inner
        h = (x * x * (3 * _GELU_KAPPA) + 1) * _GELU_TANH_BETA
        f_prime_gh = g_ * h * 0.5
        g_prime_fh = f * h * ((sech_inner * 2) * (-sech_inner * tanh_inner) * h)
        h_prime_fg = f * g_ * (x * (6 * _GELU_KAPPA * _GELU_TANH_BETA))
        return gg * g * (f_prime_gh + f_prime_gh + g_prime_fh + h_prime_fg)
    x_sq = x * x
    pdf = (x_sq * -0.5).exp() * _GELU_PDF
    return gg * g * (pdf * 2 - x_sq * pdf)


op("gelu", "GeluBackward0", _gelu,
   (lambda g, c: _call("gelu_backward", (g, c.x[0]), approximate=c.p.get("approximate", "none")),), save=(0,))
# gelu's backward as torch writes it, an op of its own: a create_graph gradient is GeluBackwardBackward0
op("gelu_backward", "GeluBackwardBackward0", _gelu_backward,
   (lambda gg, c: _call("gelu_backward", (gg, c.x[1]), **c.p), _gelu_double_backward), save=(0, 1))
op("relu", "ReluBackward0", _no_bool_kernel(lambda a: xp.maximum(a, a.dtype.type(0)), "relu", RuntimeError,
                                             "Boolean inputs not supported for relu"),
   (lambda g, c: _call("threshold_backward", (g, c.out), threshold=0),), save_output=True)
# relu's backward as torch writes it: differentiable in the gradient (and, with zeros, in the
# result), so a create_graph gradient of relu requires grad as torch's does
_SAME_WIDTH_INT = {2: xp.int16, 4: xp.int32, 8: xp.int64}


def _threshold_backward(g, x, threshold):
    """g where x > threshold, else +0. A select by random mask is branchy and slow (xp.where:
    ~10x a multiply); and-ing g's bits with an all-ones/all-zeros mask is branch-free and exact
    (nan and inf pass or become +0, as torch's select gives, where g * mask would give nan/-0)."""
    mask = x > threshold
    if mask.ndim == 0 or g.shape != mask.shape or g.dtype.kind != "f" or not isinstance(mask, xp.ndarray):
        return xp.where(mask, g, g.dtype.type(0))
    bits = _SAME_WIDTH_INT[g.dtype.itemsize]
    out = mask.astype(bits)
    xp.negative(out, out=out)  # True -> all ones
    xp.bitwise_and(out, g.view(bits), out=out)
    return out.view(g.dtype)


op("threshold_backward", "ThresholdBackwardBackward0", _threshold_backward,
   (lambda gg, c: _call("threshold_backward", (gg, c.x[1]), threshold=c.p["threshold"]),
    lambda gg, c: _const(gg, xp.zeros_like(gg._data))), save=(1,))


def check_clamp_bounds(min, max) -> None:  # noqa: A002  (torch's keywords)
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")


def _clamp(a, min=None, max=None):  # noqa: A002  (torch's keywords)
    check_clamp_bounds(min, max)
    # an integer tensor clamped at a float bound is a float tensor, as in torch
    dt = result_type(a, *(v for v in (min, max) if v is not None)).np
    out = a.astype(dt, copy=False)
    if min is not None:
        out = xp.maximum(out, xp.asarray(min, dtype=dt))
    if max is not None:
        out = xp.minimum(out, xp.asarray(max, dtype=dt))
    return out


def _clamp_vjp(g, c):
    x, lo, hi = c.x[0], c.p.get("min"), c.p.get("max")
    mask = None
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        mask = (x <= hi) if mask is None else mask & (x <= hi)
    return g * mask


op("clamp", "ClampBackward1", _clamp, (_clamp_vjp,), save=(0,))


def _clamp_tensor(a, min=None, max=None):  # noqa: A002
    """clamp with tensor bounds (either may be None): broadcast against the input."""
    try:
        return _clamp(a, min, max)
    except ValueError:
        raise _shape_error(a, *(v for v in (min, max) if v is not None)) from None


def _clamp_tensor_vjp(k):
    # torch's clamp_backward_min_max: the input where it lies within the bounds; a bound where it
    # is the one that holds (min wins over a smaller max only where min < max)
    def vjp(g, c):
        x, lo, hi = c.x[0], c.x[1], c.x[2]
        if k == 0:
            cond = (x >= lo) if hi is None else (x <= hi) if lo is None else (x >= lo).logical_and(x <= hi)
        elif k == 1:
            cond = (x < lo) if hi is None else (x < lo).logical_and(lo < hi)
        else:
            cond = (x > hi) if lo is None else (x > hi).logical_or(hi < lo)
        return where(cond, g, 0.0)
    return vjp


op("clamp_tensor", "ClampBackward0", _clamp_tensor, tuple(_clamp_tensor_vjp(k) for k in range(3)), save=(0, 1, 2))
op("clamp_min", "ClampMinBackward0", lambda a, min: _clamp(a, min=min),  # noqa: A006
   (lambda g, c: g * (c.x[0] >= c.p["min"]),), save=(0,))
op("clamp_max", "ClampMaxBackward0", lambda a, max: _clamp(a, max=max),  # noqa: A006
   (lambda g, c: g * (c.x[0] <= c.p["max"]),), save=(0,))
op("clamp_min_tensor", "ClampMinBackward1", lambda a, min: _clamp_tensor(a, min=min),  # noqa: A006
   (lambda g, c: where(c.x[0] >= c.x[1], g, 0.0), lambda g, c: where(c.x[0] < c.x[1], g, 0.0)), save=(0, 1))
op("clamp_max_tensor", "ClampMaxBackward1", lambda a, max: _clamp_tensor(a, max=max),  # noqa: A006
   (lambda g, c: where(c.x[0] <= c.x[1], g, 0.0), lambda g, c: where(c.x[0] > c.x[1], g, 0.0)), save=(0, 1))

# ---------------------------------------------------------------- comparisons (never differentiable)

for _name, _fn in (("eq", xp.equal), ("ne", xp.not_equal), ("lt", xp.less),
                   ("le", xp.less_equal), ("gt", xp.greater), ("ge", xp.greater_equal)):
    op(_name, None, _binary(_fn), (NOT_DIFF, NOT_DIFF))

op("logical_not", None, lambda a: xp.logical_not(a), (NOT_DIFF,))
op("logical_and", None, _binary(xp.logical_and), (NOT_DIFF, NOT_DIFF))
op("logical_or", None, _binary(xp.logical_or), (NOT_DIFF, NOT_DIFF))
def check_bitwise(kernel: str, dtype) -> None:
    """torch has no bitwise op on floating results; ``dtype`` is the result's (numpy or torch)."""
    dtype = getattr(dtype, "np", dtype)
    if dtype.kind == "f":
        from .errors import scalar_name
        raise NotImplementedError(f'"{kernel}" not implemented for \'{scalar_name(dtype)}\'')


def _bitwise(kernel: str, fn):
    binary = _binary(fn)

    def forward(a, b):
        check_bitwise(kernel, result_type(a, b))
        return binary(a, b)
    return forward


op("bitwise_and", None, _bitwise("bitwise_and_cpu", lambda a, b: a & b), (NOT_DIFF, NOT_DIFF))
op("bitwise_or", None, _bitwise("bitwise_or_cpu", lambda a, b: a | b), (NOT_DIFF, NOT_DIFF))


def _isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    # torch compares like with like: no promotion
    if not isinstance(a, _SCALARS) and not isinstance(b, _SCALARS) and a.dtype != b.dtype:
        raise RuntimeError(f"{_scalar_name(a)} did not match {_scalar_name(b)}")
    return _binary(lambda x, y: xp.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))(a, b)


op("isclose", None, _isclose, (NOT_DIFF, NOT_DIFF))
op("all", None, lambda a, dim=None, keepdim=False: xp.all(a, axis=_axis(a, dim), keepdims=keepdim), (NOT_DIFF,))
op("any", None, lambda a, dim=None, keepdim=False: xp.any(a, axis=_axis(a, dim), keepdims=keepdim), (NOT_DIFF,))
op("argmax", None, lambda a, dim=None, keepdim=False: _arg(xp.argmax, a, dim, keepdim), (NOT_DIFF,))
# torch's CPU nonzero: (count, ndim) indices laid out column by column (not contiguous), so the
# columns nonzero(as_tuple=True) and where(cond) hand out are; the count depends on values (no meta rule)
op("nonzero", None, lambda a: xp.asfortranarray(xp.argwhere(a)), (NOT_DIFF,))
op("argmin", None, lambda a, dim=None, keepdim=False: _arg(xp.argmin, a, dim, keepdim), (NOT_DIFF,))


def _arg(fn, a, dim, keepdim):
    if dim is None:
        r = fn(a)
        return xp.asarray(r).reshape((1,) * a.ndim) if keepdim else xp.asarray(r)
    return fn(a, axis=_axis(a, dim), keepdims=keepdim)


def _axis(a, dim):
    """A reduction's dim (an int or a tuple) as an array axis, checked torch's way; a 0-d tensor
    takes dim 0 or -1 and reduces over nothing (CuPy, unlike numpy, refuses axis 0 there)."""
    if dim is None:
        return None
    axis = _check_reduce_dims(a, dim if isinstance(dim, tuple) else (dim,))
    return axis if isinstance(dim, tuple) or axis is None else axis[0]


# ---------------------------------------------------------------- reductions


def _check_reduce_dims(a, dim):
    seen = set()
    for d in dim or ():
        if not -max(a.ndim, 1) <= d < max(a.ndim, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-max(a.ndim, 1)}, {max(a.ndim, 1) - 1}], but got {d})")
        d %= max(a.ndim, 1)
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)
    return _dims(dim, a.ndim) if a.ndim else None


def _cast(a, dtype):
    """sum/mean/prod(dtype=...): torch casts inside the op (no ToCopyBackward0 node)."""
    return a if dtype is None else a.astype(dtype.np, copy=False)


def _sum_dim(a, dim, keepdim=False, dtype=None):
    a = _cast(a, dtype)
    return _sum_int(a, axis=_check_reduce_dims(a, dim), keepdims=keepdim)


op("sum", "SumBackward0", lambda a, dtype=None: _sum_int(_cast(a, dtype)), (lambda g, c: g.expand(c.shapes[0]),))
op("sum_dim", "SumBackward1", _sum_dim,
   (lambda g, c: _unsqueeze_to(g, c.shapes[0], c.p["dim"], c.p.get("keepdim", False)).expand(c.shapes[0]),))


def _mean(a, dim=None, keepdim=False, dtype=None):
    a = _cast(a, dtype)
    if a.dtype.kind != "f":
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {_scalar_name(a)}")
    if dim is None:
        return a.mean()
    return a.mean(axis=_check_reduce_dims(a, dim), keepdims=keepdim)


def _scalar_name(a):
    from .errors import scalar_name
    return scalar_name(of_array(a))


def _logsumexp(a, dim, keepdim=False):
    """log(sum(exp(a))) over dims, computed around the largest value (an infinite one aside)."""
    a = _to_float(a)
    axes = _check_reduce_dims(a, dim)
    if a.ndim == 0:
        return a.copy()
    top = xp.max(a, axis=axes, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0).astype(a.dtype, copy=False)
    out = xp.log(xp.sum(xp.exp(a - top), axis=axes, keepdims=True)) + top
    return out if keepdim else out.squeeze(axis=axes)


def _logsumexp_vjp(g, c):
    dims, keepdim = c.p["dim"], c.p.get("keepdim", False)
    shape = c.shapes[0]
    return _unsqueeze_to(g, shape, dims, keepdim) * (c.x[0] - _unsqueeze_to(c.out, shape, dims, keepdim)).exp()


op("logsumexp", "LogsumexpBackward0", _logsumexp, (_logsumexp_vjp,), save=(0,), save_output=True)
op("mean", "MeanBackward0", _mean,
   (lambda g, c: g.expand(c.shapes[0]) / max(_count(c.shapes[0], None), 1),))
op("mean_dim", "MeanBackward1", _mean,
   (lambda g, c: _unsqueeze_to(g, c.shapes[0], c.p["dim"], c.p.get("keepdim", False)).expand(c.shapes[0])
    / _count(c.shapes[0], c.p["dim"]),))


def _var(a, dim=None, correction=1, keepdim=False):
    if a.dtype.kind != "f":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    axis = _check_reduce_dims(a, dim)
    if _count(a.shape, dim) - correction > 0:
        return xp.var(a, axis=axis, ddof=correction, keepdims=keepdim)
    # torch warns and divides by max(0, n - correction): inf, or nan where all values are equal
    with errstate(divide="ignore", invalid="ignore"):
        squares = xp.sum(xp.square(a - a.mean(axis=axis, keepdims=True)), axis=axis, keepdims=keepdim)
        return squares / a.dtype.type(0)


def _var_backward(g, c):
    """torch's var_backward, edge cases included (g has the reduced shape)."""
    x, p, shape = c.x[0], c.p, c.shapes[0]
    dim, correction = p.get("dim"), p.get("correction", 1)
    if not shape or dim is None:
        dof = _count(shape, None) - correction
        if dof <= 0:
            # 2 / dof is infinite: inf, or inf * 0 = nan where x equals its mean
            return g * where(x == x.mean(), math.nan, math.inf)
        return (2.0 / dof) * g * (x - x.mean())
    g = _unsqueeze_to(g, shape, dim, p.get("keepdim", False))
    n = _count(shape, dim)
    scale = 2.0 / (n - correction) if n != correction else math.inf
    return scale * g * (x - x.mean(dim=_dims(dim, len(shape)), keepdim=True))


def _std_vjp(g, c):
    # torch's std_backward: grad / (2 std), zero where std is zero, then var_backward
    return _var_backward(where(c.out == 0, 0.0, g / (c.out * 2)), c)


op("var", "VarBackward0", _var, (_var_backward,), save=(0,))
op("std", "StdBackward0", lambda a, **p: xp.sqrt(_var(a, **p)), (_std_vjp,), save=(0,), save_output=True)


def _extreme_all(fn):
    def forward(a):
        if a.size == 0:
            raise RuntimeError(f"{fn.__name__[2:]}(): Expected reduction dim to be specified for "
                               "input.numel() == 0. Specify the reduction dim with the 'dim' argument.")
        return fn(a)
    return forward


def _amax(a):
    return xp.max(a)


def _amin(a):
    return xp.min(a)


def _evenly(g, c):
    mask = c.x[0] == c.out
    return where(mask, g / mask.sum(), 0.0)


op("max", "MaxBackward1", _extreme_all(_amax), (_evenly,), save=(0,), save_output=True)
op("min", "MinBackward1", _extreme_all(_amin), (_evenly,), save=(0,), save_output=True)


def _extreme_dims(fn, name):
    def forward(a, dim=None, keepdim=False):
        axis = _check_reduce_dims(a, dim)
        if a.size == 0:
            if dim is None:
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                                   "Specify the reduction dim with the 'dim' argument.")
            for d in axis or ():
                if a.shape[d] == 0:
                    raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        return fn(a, axis=axis, keepdims=keepdim)
    return forward


def _amax_vjp(g, c):
    # torch's scale_grad_by_count: the gradient is shared evenly among the tied extremes
    shape, dim, keepdim = c.shapes[0], c.p.get("dim"), c.p.get("keepdim", False)
    if not shape:
        return g
    g = _unsqueeze_to(g, shape, dim, keepdim)
    mask = c.x[0] == _unsqueeze_to(c.out, shape, dim, keepdim)
    return g / mask.sum(dim=_dims(dim, len(shape)), keepdim=True) * mask


op("amax", "AmaxBackward0", _extreme_dims(xp.max, "amax"), (_amax_vjp,), save=(0,), save_output=True)
op("amin", "AminBackward0", _extreme_dims(xp.min, "amin"), (_amax_vjp,), save=(0,), save_output=True)


def _extreme_dim(arg):
    def forward(a, dim, keepdim=False):
        axis = _check_reduce_dims(a, (dim,))
        axis = axis[0] if axis else None
        if a.ndim == 0:
            return a.copy(), xp.zeros((), dtype=xp.int64)
        if a.shape[axis] == 0:
            raise IndexError(f"max(): Expected reduction dim {dim} to have non-zero size.")
        idx = arg(a, axis=axis, keepdims=True)
        values = xp.take_along_axis(a, idx, axis=axis)
        if not keepdim:
            idx, values = idx.squeeze(axis), values.squeeze(axis)
        return values, idx.astype(xp.int64, copy=False)
    return forward


def _select_at_indices(g, c):
    if isinstance(g, (list, tuple)):  # a two-output node hands its VJP every output's gradient
        g = g[0]
    shape, p = c.shapes[0], c.p
    if not shape:
        return g
    dim = p["dim"] % len(shape)
    idx = c.out[1]._data
    if not p.get("keepdim", False):
        idx = xp.expand_dims(idx, dim)
        g = g.unsqueeze(dim)
    positions = xp.arange(shape[dim]).reshape((-1,) + (1,) * (len(shape) - dim - 1))
    return where(_const(g, positions == idx), g, 0.0)


def _sort(a, dim=-1, descending=False, stable=False):
    """values and int64 indices along dim; equal values keep their order (torch's stable sort),
    nan counts as the largest value."""
    if a.ndim == 0:
        _check_dim(dim, 0)
        return a.copy(), xp.zeros((), dtype=xp.int64)
    axis = _check_dim(dim, a.ndim)
    if descending:  # a stable ascending sort of the reversed array, reversed back
        n = a.shape[axis]
        idx = xp.flip(n - 1 - xp.argsort(xp.flip(a, axis), axis=axis, kind="stable"), axis)
    else:
        idx = xp.argsort(a, axis=axis, kind="stable")
    return xp.take_along_axis(a, idx, axis=axis), xp.ascontiguousarray(idx).astype(xp.int64, copy=False)


def check_topk(k: int, size: int) -> None:
    if not 0 <= k <= size:
        raise RuntimeError("selected index k out of range")


def _topk(a, k, dim=-1, largest=True, sorted=True):  # noqa: A002  (torch's keyword)
    axis = _check_dim(dim, a.ndim)
    check_topk(k, a.shape[axis] if a.ndim else 1)
    values, idx = _sort(a, dim, descending=largest)
    if a.ndim == 0:
        return values, idx
    keep = tuple(slice(0, k) if d == axis else slice(None) for d in range(a.ndim))
    return xp.ascontiguousarray(values[keep]), xp.ascontiguousarray(idx[keep])


def _scatter_back(g, c):
    """sort's and topk's gradient: each value's gradient back where it was taken from."""
    if isinstance(g, (list, tuple)):  # a two-output node hands its VJP every output's gradient
        g = g[0]
    if not c.shapes[0]:
        return g
    return _call("gather_backward", (g, c.out[1]), dim=c.p.get("dim", -1), shape=c.shapes[0])


op("sort", "SortBackward0", _sort, (_scatter_back,), save_output=True, num_outputs=2,
   differentiable_outputs=(True, False))
op("sort_stable", "SortBackward1", _sort, (_scatter_back,), save_output=True, num_outputs=2,
   differentiable_outputs=(True, False))
op("topk", "TopkBackward0", _topk, (_scatter_back,), save_output=True, num_outputs=2,
   differentiable_outputs=(True, False))
op("max_dim", "MaxBackward0", _extreme_dim(xp.argmax), (_select_at_indices,),
   save_output=True, num_outputs=2, differentiable_outputs=(True, False))
op("min_dim", "MinBackward0", _extreme_dim(xp.argmin), (_select_at_indices,),
   save_output=True, num_outputs=2, differentiable_outputs=(True, False))
op("maximum", "MaximumBackward0", _binary(xp.maximum),
   (lambda g, c: g * ((c.x[0] > c.x[1]) + (c.x[0] == c.x[1]) * 0.5),
    lambda g, c: g * ((c.x[1] > c.x[0]) + (c.x[0] == c.x[1]) * 0.5)), save=(0, 1))
op("minimum", "MinimumBackward0", _binary(xp.minimum),
   (lambda g, c: g * ((c.x[0] < c.x[1]) + (c.x[0] == c.x[1]) * 0.5),
    lambda g, c: g * ((c.x[1] < c.x[0]) + (c.x[0] == c.x[1]) * 0.5)), save=(0, 1))


def _prod(a, dim=None, keepdim=False, dtype=None):
    a = _cast(a, dtype)
    kw = {"dtype": xp.int64} if a.dtype.kind in "biu" else {}
    if dim is None:
        return xp.prod(a, **kw)
    axis = _check_reduce_dims(a, (dim,))
    return xp.prod(a, axis=axis[0] if axis else None, keepdims=keepdim, **kw)


def _prod_others(x, axis):
    """Product of all other elements along axis (exact with zeros), as a constant array."""
    if axis is None:
        flat = x.reshape(-1)
        left = xp.concatenate([xp.ones(1, flat.dtype), xp.cumprod(flat)[:-1]])
        right = xp.concatenate([xp.cumprod(flat[::-1])[:-1][::-1], xp.ones(1, flat.dtype)])
        return (left * right).reshape(x.shape)
    ones = xp.ones_like(xp.take(x, [0], axis=axis))
    left = xp.concatenate([ones, xp.cumprod(x, axis=axis)], axis=axis)
    left = xp.take(left, xp.arange(x.shape[axis]), axis=axis)
    rev = xp.flip(x, axis=axis)
    right = xp.concatenate([ones, xp.cumprod(rev, axis=axis)], axis=axis)
    right = xp.flip(xp.take(right, xp.arange(x.shape[axis]), axis=axis), axis=axis)
    return left * right


def _prod_vjp(g, c):
    x, p, shape = c.x[0], c.p, c.shapes[0]
    dim = p.get("dim")
    dims = None if dim is None else (dim,)
    g = _unsqueeze_to(g, shape, dims, p.get("keepdim", False))
    if not shape:
        return g
    if bool(xp.all(x._data != 0)):
        out = _unsqueeze_to(c.out, shape, dims, p.get("keepdim", False))
        return g * out / x
    axis = None if dim is None else dim % len(shape)
    if is_grad_enabled():
        # create_graph: torch's zero-safe formula is differentiable, so this one must be too
        return g * _prod_others_tensor(x, axis)
    return g * _const(x, _prod_others(x._data, axis))


def _prod_others_tensor(x, axis):
    """_prod_others in tensor ops: row i of an n x n stack holds x with its i-th element set to 1."""
    if axis is None:
        return _prod_others_tensor(x.reshape(-1), 0).reshape(tuple(x.shape))
    shape = tuple(x.shape)
    n = shape[axis]
    rows = x.unsqueeze(axis).expand(shape[:axis] + (n,) + shape[axis:])
    eye = _const(x, xp.eye(n, dtype=bool).reshape((1,) * axis + (n, n) + (1,) * (len(shape) - axis - 1)))
    return where(eye, 1.0, rows).prod(axis + 1)


op("prod", "ProdBackward0", _prod, (_prod_vjp,), save=(0,), save_output=True)
op("prod_dim", "ProdBackward1", _prod, (_prod_vjp,), save=(0,), save_output=True)


def _norm(a, ord=2, dim=None, keepdim=False):  # noqa: A002
    if a.dtype.kind != "f":
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {_scalar_name(a)}")
    axis = _check_reduce_dims(a, dim)
    x = xp.abs(a)
    if ord == 2:
        return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdim))
    if ord == math.inf:
        return xp.max(x, axis=axis, keepdims=keepdim)
    if ord == -math.inf:
        return xp.min(x, axis=axis, keepdims=keepdim)
    if ord == 0:
        return xp.sum(x != 0, axis=axis, keepdims=keepdim).astype(a.dtype)
    if ord == 1:
        return xp.sum(x, axis=axis, keepdims=keepdim)
    return xp.power(xp.sum(xp.power(x, ord), axis=axis, keepdims=keepdim), 1.0 / ord).astype(a.dtype)


def _norm_vjp(g, c):
    x, p, shape = c.x[0], c.p, c.shapes[0]
    ord_, dim, keepdim = p.get("ord", 2), p.get("dim"), p.get("keepdim", False)
    g = _unsqueeze_to(g, shape, dim, keepdim)
    out = _unsqueeze_to(c.out, shape, dim, keepdim)
    if ord_ == 0:
        return None  # torch's backward gives an undefined gradient: the input's .grad stays None
    if ord_ == 1:
        return g * x.sign()
    if ord_ == 2:
        return where(out == 0, 0.0, g * x / out)
    if math.isinf(ord_):
        mask = x.abs() == out
        return g * x.sign() * mask / mask.sum(dim=_dims(dim, len(shape)), keepdim=True)
    return where(out == 0, 0.0, g * x * x.abs() ** (ord_ - 2) / out ** (ord_ - 1))


op("norm", "LinalgVectorNormBackward0", _norm, (_norm_vjp,), save=(0,), save_output=True)

# ---------------------------------------------------------------- linear algebra


def _mm(a, b):
    if a.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if b.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                           f"({a.shape[0]}x{a.shape[1]} and {b.shape[0]}x{b.shape[1]})")
    _same_dtype(a, b)
    return a @ b


def _same_dtype(a, b):
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_tname(a)} != {_tname(b)}")


def _tname(a):
    return {"f": {4: "float", 8: "double", 2: "c10::Half"}, "i": {8: "long int", 4: "int"}}.get(
        a.dtype.kind, {}).get(a.dtype.itemsize, str(a.dtype))


def _bmm(a, b):
    if a.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if b.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    _same_dtype(a, b)
    return a @ b


def _dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] "
                           "to have the same number of elements, but got "
                           f"{a.shape[0]} and {b.shape[0]} elements respectively")
    if a.dtype != b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_scalar_name(a)} and {_scalar_name(b)}")
    return xp.dot(a, b)


def _mv(a, b):
    if a.ndim != 2 or b.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {a.ndim}, {b.ndim}")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({a.shape[0]}), mat ({a.shape[0]}x{a.shape[1]}), "
                           f"vec ({b.shape[0]})")
    _same_dtype(a, b)
    return a @ b


op("mm", "MmBackward0", _mm, (lambda g, c: g.mm(c.x[1].t()), lambda g, c: c.x[0].t().mm(g)), save=(0, 1),
   saved_by=((0, (1,)), (1, (0,))))
op("bmm", "BmmBackward0", _bmm,
   (lambda g, c: g.bmm(c.x[1].transpose(1, 2)), lambda g, c: c.x[0].transpose(1, 2).bmm(g)), save=(0, 1),
   saved_by=((0, (1,)), (1, (0,))))
op("dot", "DotBackward0", _dot, (lambda g, c: g * c.x[1], lambda g, c: g * c.x[0]), save=(0, 1),
   saved_by=((0, (1,)), (1, (0,))))
op("mv", "MvBackward0", _mv,
   (lambda g, c: g.unsqueeze(1) * c.x[1], lambda g, c: c.x[0].t().mv(g)), save=(0, 1),
   saved_by=((0, (1,)), (1, (0,))))


def _addmm(bias, a, b):
    out = _mm(a, b)
    if bias.shape != out.shape:
        bias = _expand(bias, out.shape)
    return bias + out


# what F.linear records for a 2-d input with a bias; the bias's gradient is summed back by the walker
op("addmm", "AddmmBackward0", _addmm,
   (lambda g, c: g, lambda g, c: g.mm(c.x[2].t()), lambda g, c: c.x[1].t().mm(g)), save=(1, 2),
   saved_by=((1, (2,)), (2, (1,))))

# ---------------------------------------------------------------- shapes and views


def _check_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _t(a):
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D")
    return a.T


def _transpose(a, dim0, dim1):
    if a.ndim == 0:
        return a
    return xp.swapaxes(a, _check_dim(dim0, a.ndim), _check_dim(dim1, a.ndim))


def permute_order(a, dims) -> tuple:
    """permute's dims as an order of ``a``'s axes, with torch's errors (``a``: an array or a Meta)."""
    if len(dims) != a.ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not "
                           f"match the length of the desired ordering of dimensions i.e. input.dim() = "
                           f"{a.ndim} is not equal to len(dims) = {len(dims)}")
    order = tuple(_check_dim(d, a.ndim) for d in dims)
    if len(set(order)) != len(order):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return order


def _permute(a, dims):
    return xp.transpose(a, permute_order(a, dims))


def _inverse_perm(dims, n):
    inv = [0] * n
    for i, d in enumerate(dims):
        inv[d % n] = i
    return tuple(inv)


def infer_shape(shape, numel: int) -> tuple:
    """Resolve one -1 in a view/reshape shape as torch does, with torch's errors."""
    shape = tuple(shape)
    neg = [i for i, d in enumerate(shape) if d == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    for i, d in enumerate(shape):
        if d < -1:
            raise RuntimeError(f"invalid shape dimension {d} at index {i} of shape {list(shape)}")
    known = 1
    for d in shape:
        if d != -1:
            known *= d
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = shape[:neg[0]] + (numel // known,) + shape[neg[0] + 1:]
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _view(a, shape):
    shape = infer_shape(shape, a.size)
    if not can_view(a, shape):
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least "
                           "one dimension spans across two contiguous subspaces). Use .reshape(...) "
                           "instead.")
    return a.reshape(shape)  # a view, where can_view says so (setting ndarray.shape is deprecated)


def can_view(a, shape) -> bool:
    # torch's rule, and numpy's (reshape views exactly there; setting the shape refused elsewhere)
    return view_strides(a.shape, a.strides, shape) is not None


def _reshape_back(g, c):
    return g.reshape(c.shapes[0])


def flip_dims(dims, ndim: int) -> tuple:
    """torch.flip's dims, each checked and made non-negative; a repeated one is torch's error."""
    dims = tuple(_check_dim(d, ndim) for d in dims)
    seen = set()
    for d in dims:
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)
    return dims


def _flip(a, dims):
    dims = flip_dims(dims, a.ndim)
    if a.ndim == 0 or not dims:
        return a.copy()
    return xp.ascontiguousarray(xp.flip(a, axis=dims))  # a new tensor, as torch's flip is


def cumsum_dtype(dtype, requested):
    """torch.cumsum's result dtype: the one asked for, else int64 for integers and bools."""
    if requested is not None:
        return requested
    return xp.dtype(xp.int64) if dtype.kind in "biu" else dtype


def _cumsum(a, dim, dtype=None):
    dim = _check_dim(dim, a.ndim)
    out_dtype = cumsum_dtype(a.dtype, None if dtype is None else dtype.np)
    if a.ndim == 0:
        return a.astype(out_dtype)
    return xp.cumsum(a, axis=dim, dtype=out_dtype)


def _cumsum_vjp(g, c):
    dim = c.p["dim"]
    if len(c.shapes[0]) == 0:
        return g
    return g.flip(dim).cumsum(dim).flip(dim)


def check_mask(mask_dtype) -> None:
    if mask_dtype.kind != "b":
        from .errors import cpp_type_name
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{cpp_type_name(mask_dtype)}")


def _masked_fill(a, mask, value):
    check_mask(mask.dtype)
    fill = xp.asarray(value).astype(a.dtype)
    try:
        return xp.where(mask, fill, a)
    except ValueError:
        raise _shape_error(a, mask) from None


def check_triangle(name: str, ndim: int) -> None:
    if ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def _triangle(name, fn):
    def forward(a, diagonal=0):
        check_triangle(name, a.ndim)
        return fn(a, diagonal)
    return forward


op("tril", "TrilBackward0", _triangle("tril", xp.tril), (lambda g, c: g.tril(c.p.get("diagonal", 0)),))
op("triu", "TriuBackward0", _triangle("triu", xp.triu), (lambda g, c: g.triu(c.p.get("diagonal", 0)),))
def _index_dtype_ok(dtype) -> bool:
    return dtype.kind in "iu" and dtype.itemsize in (4, 8)


def check_index_select(a_ndim: int, dim: int, index_dtype, index_ndim: int, index_size: int) -> int:
    """index_select's checks that need no values (the client's inference runs them too): the dim."""
    dim = _check_dim(dim, a_ndim)
    if not _index_dtype_ok(index_dtype):
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    if index_ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if a_ndim == 0 and index_size != 1:
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {index_size} value(s)")
    return dim


def _check_bounds(index, size: int, message, error=RuntimeError) -> None:
    bad = (index < 0) | (index >= size)
    if bool(bad.any()):
        raise error(message(int(index[bad].reshape(-1)[0])))


def _index_select(a, index, dim):
    dim = check_index_select(a.ndim, dim, index.dtype, index.ndim, index.size)
    size = a.shape[dim] if a.ndim else 1
    if a.ndim == 2 and dim == 1:  # torch's own path for a matrix's columns, with its own words
        _check_bounds(index, size, lambda v: f"INDICES element is out of DATA bounds, id={v} axis_dim={size}")
    else:
        _check_bounds(index, size, lambda v: "index out of range in self", IndexError)
    if a.ndim == 0:
        return a.copy()
    return xp.take(a, index.reshape(-1), axis=dim)


def _index_add_zeros(g, index, dim, shape):
    out = xp.zeros(shape, dtype=g.dtype)
    if not shape:
        return out + g.reshape(())
    xp.add.at(out, (slice(None),) * _check_dim(dim, len(shape)) + (index.reshape(-1),), g)
    return out


def check_gather(a_shape: tuple, dim: int, index_dtype, index_shape: tuple) -> int:
    """gather's checks that need no values (the client's inference runs them too): the dim."""
    dim = _check_dim(dim, len(a_shape))
    if not _index_dtype_ok(index_dtype):
        raise RuntimeError("gather(): Expected dtype int32/int64 for index")
    if max(len(a_shape), 1) != max(len(index_shape), 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for d, (n, k) in enumerate(zip(a_shape, index_shape)):
        if d != dim and k > n:
            raise RuntimeError(f"Size does not match at dimension {d} expected index {list(index_shape)} to be no "
                               f"larger than self {list(a_shape)} apart from dimension {dim}")
    return dim


def _gather(a, index, dim):
    dim = check_gather(a.shape, dim, index.dtype, index.shape)
    size = a.shape[dim] if a.ndim else 1
    _check_bounds(index, size, lambda v: f"index {v} is out of bounds for dimension {dim} with size {size}")
    if a.ndim == 0:
        return a.copy()
    part = a[tuple(slice(None) if d == dim else slice(0, k) for d, k in enumerate(index.shape))]
    return xp.take_along_axis(part, index.astype(xp.int64, copy=False), axis=dim)


def _scatter_add_zeros(g, index, dim, shape):
    out = xp.zeros(shape, dtype=g.dtype)
    if not shape:
        return out + g.reshape(())
    dim = _check_dim(dim, len(shape))
    ndim = index.ndim  # an open grid over the index's shape, with the index itself along dim
    where_ = [index if d == dim else xp.arange(n).reshape((n,) + (1,) * (ndim - 1 - d))
              for d, n in enumerate(index.shape)]
    xp.add.at(out, tuple(where_), g)
    return out


op("index_select", "IndexSelectBackward0", _index_select,
   (lambda g, c: _call("index_select_backward", (g, c.x[1]), dim=c.p["dim"], shape=c.shapes[0]), NOT_DIFF),
   save=(1,))
op("index_select_backward", "IndexAddBackward0", _index_add_zeros,
   (lambda gg, c: _call("index_select", (gg, c.x[1]), dim=c.p["dim"]), NOT_DIFF), save=(1,))
op("gather", "GatherBackward0", _gather,
   (lambda g, c: _call("gather_backward", (g, c.x[1]), dim=c.p["dim"], shape=c.shapes[0]), NOT_DIFF), save=(1,))
op("gather_backward", "ScatterAddBackward0", _scatter_add_zeros,
   (lambda gg, c: _call("gather", (gg, c.x[1]), dim=c.p["dim"]), NOT_DIFF), save=(1,))


def check_embedding(weight, indices) -> None:
    """torch.embedding's checks (arrays or a client's Metas): a 2-d weight, Long or Int indices."""
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    if indices.dtype not in (xp.int64, xp.int32):
        from .errors import legacy_name
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got torch.{legacy_name(of_array(indices))} instead (while checking "
                           "arguments for embedding)")


def _embedding(weight, indices, padding_idx=-1):
    check_embedding(weight, indices)
    # a value-dependent error: the client's rule cannot see it, the server raises it
    _check_bounds(indices, weight.shape[0], lambda i: "index out of range in self", IndexError)
    return xp.take(weight, indices, axis=0)


def _embedding_backward(g, indices, num_weights, padding_idx=-1):
    """torch's embedding_dense_backward: each row's gradients summed into it; the padding row none."""
    width = g.shape[-1]
    out = _index_add_zeros(g.reshape(-1, width), indices, 0, (num_weights, width))
    if padding_idx >= 0:
        out[padding_idx] = 0
    return out


def _embedding_double_backward(gg, c):
    """torch's embedding_dense_double_backward: the rows picked again, the padding ones zeroed."""
    indices, padding_idx = c.x[1], c.p.get("padding_idx", -1)
    picked = gg.index_select(0, indices.reshape(-1))
    if padding_idx >= 0:
        picked = picked.masked_fill((indices == padding_idx).reshape(-1, 1), 0)
    return picked.view(tuple(indices.shape) + (gg.shape[-1],))


# inputs: the weight, then the indices (torch's order); the weight's gradient is its own op, as torch's
op("embedding", "EmbeddingBackward0", _embedding,
   (lambda g, c: _call("embedding_backward", (g, c.x[1]), num_weights=c.shapes[0][0],
                       padding_idx=c.p.get("padding_idx", -1)), NOT_DIFF), save=(1,))
op("embedding_backward", "EmbeddingDenseBackwardBackward0", _embedding_backward,
   (_embedding_double_backward, NOT_DIFF), save=(1,))


def repeat_shape(shape: tuple, repeats: tuple) -> tuple:
    """torch.Tensor.repeat's result shape, with its errors (the client's inference runs it too)."""
    if len(repeats) < len(shape):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    padded = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    out = [r * n for r, n in zip(repeats, padded)]
    if any(r < 0 for r in repeats):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(out)}: {out}")
    return tuple(out)


def _repeat(a, repeats):
    repeat_shape(a.shape, repeats)
    return xp.tile(a, repeats)


def _repeat_vjp(g, c):
    """Each copy's gradient summed back: g viewed as (r0, n0, r1, n1, ...), the r axes summed."""
    shape, repeats = c.shapes[0], c.p["repeats"]
    padded = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    if 0 in repeats:
        return g.new_zeros(shape)
    split = tuple(x for r, n in zip(repeats, padded) for x in (r, n))
    summed = g.reshape(split).sum(tuple(range(0, len(split), 2)))
    return summed.reshape(shape)


op("repeat", "RepeatBackward0", _repeat, (_repeat_vjp,))
op("flip", "FlipBackward0", _flip, (lambda g, c: g.flip(c.p["dims"]),))
op("cumsum", "CumsumBackward0", _cumsum, (_cumsum_vjp,))  # (backward casts to the input's dtype)


def _cumprod(a, dim, dtype=None):
    dim = _check_dim(dim, a.ndim)
    out_dtype = cumsum_dtype(a.dtype, None if dtype is None else dtype.np)
    if a.ndim == 0:
        return a.astype(out_dtype)
    return xp.cumprod(a, axis=dim, dtype=out_dtype)


def _cumprod_vjp(g, c):
    """torch's cumprod_backward: without zeros, the reversed cumsum of out * g over x; with zeros
    (where that divides by zero), for each k the products that leave x_k out, in tensor ops."""
    x, dim = c.x[0], c.p["dim"]
    if g.dtype != x.dtype:
        g = g.to(x.dtype)  # torch: grad.to(self.scalar_type()) (a cumprod with dtype=)
    if x.numel() <= 1 or x.dim() == 0 or x.shape[dim] == 1:
        return g
    d = dim % x.dim()
    if not bool((x == 0).any()):
        return (c.out.to(x.dtype) * g).flip(d).cumsum(d).flip(d) / x
    if not is_grad_enabled():  # nothing recorded: torch's O(n) way, on arrays
        return _const(g, _cumprod_grad_with_zeros(g._data, x._data, c.out.to(x.dtype)._data, d))
    n = x.shape[d]
    shape = [1] * x.dim()
    shape[d] = n
    position = xp.arange(n).reshape(shape)
    pieces = []
    for k in range(n):
        omitted = x.masked_fill(_const(x, position == k), 1.0).cumprod(d)  # prod_{i <= j, i != k} x_i
        pieces.append((g * omitted).masked_fill(_const(x, position < k), 0.0).sum(d, keepdim=True))
    return pieces[0]._dispatch(OPS["cat"], tuple(pieces), {"dim": d})


def _cumprod_grad_with_zeros(g, x, out, axis):
    """cumprod's gradient where x has zeros, in O(n) per slice: before a slice's first zero z the
    reversed-cumsum formula holds; at z, out[z-1] times the sum over j >= z of g_j prod_{z<i<=j} x_i;
    after z, nothing (every product holds x_z)."""
    x, g, out = (xp.moveaxis(v, axis, -1) for v in (x, g, out))
    n = x.shape[-1]
    position = xp.arange(n)
    is_zero = x == 0
    z = xp.where(is_zero.any(-1, keepdims=True), xp.argmax(is_zero, -1)[..., None], n)
    before = position < z
    reversed_cumsum = xp.flip(xp.cumsum(xp.flip(out * g, -1), -1), -1)
    grad = xp.where(before, reversed_cumsum / xp.where(before, x, 1), 0)
    after = xp.cumprod(xp.where(position <= z, 1, x), -1)  # prod_{z<i<=j} x_i for j >= z
    at_zero = xp.where(position >= z, g * after, 0).sum(-1, keepdims=True)
    prev = xp.take_along_axis(out, xp.clip(z - 1, 0, n - 1), -1)
    grad = xp.where(position == z, xp.where(z == 0, 1, prev) * at_zero, grad)
    return xp.moveaxis(grad.astype(g.dtype, copy=False), -1, axis)


op("cumprod", "CumprodBackward0", _cumprod, (_cumprod_vjp,), save=(0,), save_output=True)


def roll_args(ndim: int, shifts: tuple, dims: tuple) -> tuple:
    """torch.roll's checks (the client's inference runs them too); dims made non-negative."""
    if not shifts:
        raise RuntimeError("`shifts` required")
    if not dims and len(shifts) == 1:
        return ()
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    if ndim == 0:
        raise IndexError(f"Dimension specified as {dims[0]} but tensor has no dimensions")
    return tuple(_check_dim(d, ndim) for d in dims)


def _roll(a, shifts, dims=()):
    axes = roll_args(a.ndim, shifts, dims)
    if not axes:  # torch: the flattened tensor rolled, then viewed back
        return xp.roll(a, shifts[0]) if a.ndim else a.copy()
    return xp.roll(a, shifts, axis=axes)


op("roll", "RollBackward0", _roll,
   (lambda g, c: _call("roll", (g,), shifts=tuple(-s for s in c.p["shifts"]), dims=c.p.get("dims", ())),))


def constant_pad_shape(shape: tuple, pad: tuple) -> tuple:
    """F.pad's (constant) result shape, with torch's checks in torch's order: the pad's length, then the
    crops of negative pads (torch narrows first), then the sizes (the client's inference runs it too)."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) > 2 * len(shape):
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {len(shape)}")
    out = list(shape)
    lead = len(shape) - len(pad) // 2
    for i in range(lead, len(shape)):
        left, right = pad[2 * (len(shape) - i - 1)], pad[2 * (len(shape) - i - 1) + 1]
        for p in (left, right):
            if p < 0:
                if out[i] + p < 0:
                    raise RuntimeError("narrow(): length must be non-negative.")
                out[i] += p
    for i in range(lead, len(shape)):
        left, right = pad[2 * (len(shape) - i - 1)], pad[2 * (len(shape) - i - 1) + 1]
        out[i] += max(left, 0) + max(right, 0)
    return tuple(out)


def _constant_pad(a, pad, value=0):
    constant_pad_shape(a.shape, pad)
    n = len(pad) // 2
    crop, grow = [slice(None)] * a.ndim, [(0, 0)] * a.ndim
    for k in range(n):
        i = a.ndim - 1 - k
        left, right = pad[2 * k], pad[2 * k + 1]
        crop[i] = slice(max(-left, 0), a.shape[i] - max(-right, 0))
        grow[i] = (max(left, 0), max(right, 0))
    cropped = a[tuple(crop)]
    if not any(lo or hi for lo, hi in grow):
        return cropped.copy()
    # torch casts the value to the tensor's dtype; a host scalar of it (CuPy's pad takes no device array)
    fill = numpy.asarray(value).astype(a.dtype)[()]
    return xp.pad(cropped, grow, mode="constant", constant_values=fill)


# the gradient is the pad undone, a constant pad of its own (ConstantPadNdBackward0 again under create_graph)
op("constant_pad_nd", "ConstantPadNdBackward0", _constant_pad,
   (lambda g, c: _call("constant_pad_nd", (g,), pad=tuple(-p for p in c.p["pad"]), value=0),))


def check_fill_value(ndim: int) -> None:
    if ndim != 0:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {ndim} "
                           "dimension(s).")


def _masked_fill_tensor(a, mask, value):
    check_fill_value(value.ndim)
    return _masked_fill(a, mask, value)


op("masked_fill", "MaskedFillBackward0", _masked_fill,
   (lambda g, c: g.masked_fill(c.x[1], 0), NOT_DIFF), save=(1,))
# a 0-d tensor as the value: torch's other overload, whose value gets the masked gradient's sum
op("masked_fill_tensor", "MaskedFillBackward1", _masked_fill_tensor,
   (lambda g, c: g.masked_fill(c.x[1], 0), NOT_DIFF, lambda g, c: where(c.x[1], g, 0.0).sum()), save=(1,))


op("t", "TBackward0", _t, (lambda g, c: g.t(),), view=True)
op("transpose", "TransposeBackward0", _transpose,
   (lambda g, c: g.transpose(c.p["dim0"], c.p["dim1"]),), view=True)
op("permute", "PermuteBackward0", _permute,
   (lambda g, c: g.permute(_inverse_perm(c.p["dims"], len(c.shapes[0]))),), view=True)
op("view", "ViewBackward0", _view, (_reshape_back,), view=True)
op("_reshape_alias", "ReshapeAliasBackward0", _view, (_reshape_back,), view=True)
op("_unsafe_view", "UnsafeViewBackward0", lambda a, shape: a.reshape(infer_shape(shape, a.size)), (_reshape_back,))


def _squeeze(a, dim=None):
    if dim is None:
        return a.reshape(tuple(d for d in a.shape if d != 1))
    dims = dim if isinstance(dim, tuple) else (dim,)
    axes = {_check_dim(d, a.ndim) for d in dims}
    return a.reshape(tuple(d for i, d in enumerate(a.shape) if not (i in axes and d == 1)))


op("squeeze", "SqueezeBackward0", _squeeze, (_reshape_back,), view=True)
op("squeeze_dim", "SqueezeBackward1", _squeeze, (_reshape_back,), view=True)
op("squeeze_dims", "SqueezeBackward2", _squeeze, (_reshape_back,), view=True)
op("_squeeze_matmul", "SqueezeBackward4", _squeeze, (_reshape_back,), view=True)


def _unsqueeze(a, dim):
    n = a.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return xp.expand_dims(a, dim % n)


op("unsqueeze", "UnsqueezeBackward0", _unsqueeze,
   (lambda g, c: g.squeeze(c.p["dim"] % (len(c.shapes[0]) + 1)),), view=True)


def _expand(a, shape):
    shape = tuple(shape)
    if len(shape) < a.ndim:
        raise RuntimeError(f"expand(torch.{_legacy(a)}{{{list(a.shape)}}}, size={list(shape)}): the number of "
                           "sizes provided (" + str(len(shape)) + ") must be greater or equal to the number "
                           f"of dimensions in the tensor ({a.ndim})")
    lead = len(shape) - a.ndim
    target = []
    for i, d in enumerate(shape):
        if i < lead:
            if d == -1:
                raise RuntimeError(f"The expanded size of the tensor (-1) isn't allowed in a leading, "
                                   f"non-existing dimension {i}")
            target.append(d)
            continue
        have = a.shape[i - lead]
        if d == -1:
            d = have
        elif have != d and have != 1:
            raise RuntimeError(f"The expanded size of the tensor ({d}) must match the existing size ({have}) "
                               f"at non-singleton dimension {i}.  Target sizes: {list(shape)}.  "
                               f"Tensor sizes: {list(a.shape)}")
        target.append(d)
    return xp.broadcast_to(a, tuple(target))


def _legacy(a):
    from .errors import _LEGACY
    return _LEGACY[of_array(a).name]


op("expand", "ExpandBackward0", _expand, (lambda g, c: g,), view=True)
op("alias", "AliasBackward0", lambda a: a.view(), (lambda g, c: g,), view=True)
op("clone", "CloneBackward0", lambda a: a.copy(), (lambda g, c: g,))
op("to_dtype", "ToCopyBackward0", lambda a, dtype: a.astype(dtype.np), (lambda g, c: g,))
op("detach_copy", None, lambda a: a, (NOT_DIFF,), view=True)


def check_cat(arrays) -> None:
    """cat's inputs: some, none 0-d (``arrays``: arrays or a client's Metas)."""
    if not arrays:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")


def _cat(*arrays, dim=0):
    check_cat(arrays)
    arrays = [a for a in arrays if not (a.ndim == 1 and a.shape[0] == 0)] or list(arrays[:1])
    ref = arrays[0]
    d = _check_dim(dim, ref.ndim)
    for i, a in enumerate(arrays):
        if a.ndim != ref.ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ref.ndim} and {a.ndim}")
        for k in range(ref.ndim):
            if k != d and a.shape[k] != ref.shape[k]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected size "
                                   f"{ref.shape[k]} but got size {a.shape[k]} for tensor number {i} in the list.")
    dt = result_type(*arrays).np
    return xp.concatenate([a.astype(dt, copy=False) for a in arrays], axis=d)


def _cat_vjp(g, c):
    d = c.p.get("dim", 0)
    grads, start = [], 0
    nd = max(len(shape) for shape in c.shapes)
    for shape in c.shapes:
        if len(shape) == 1 and shape[0] == 0 and nd != 1:
            # a skipped legacy empty input still gets a gradient: zeros of shape [0], as in torch
            grads.append(_const(g, xp.zeros((0,), dtype=g._data.dtype)))
            continue
        n = shape[d % nd]
        grads.append(g.narrow(d, start, n))
        start += n
    return grads


def _stack(*arrays, dim=0):
    if not arrays:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, a in enumerate(arrays):
        if a.shape != arrays[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(arrays[0].shape)} "
                               f"at entry 0 and {list(a.shape)} at entry {i}")
    n = arrays[0].ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    dt = result_type(*arrays).np
    return xp.stack([a.astype(dt, copy=False) for a in arrays], axis=dim % n)


op("cat", "CatBackward0", _cat, (_cat_vjp,), variadic=True)
op("stack", "StackBackward0", _stack, (lambda g, c: list(g.unbind(c.p.get("dim", 0))),), variadic=True)


def split_sizes(size: int, split_size: int) -> list:
    """The piece sizes of torch's split(split_size): equal pieces, the last one shorter."""
    if split_size < 0:
        raise RuntimeError(f"split expects split_size be non-negative, but got split_size={split_size}")
    if split_size == 0:
        if size != 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        return [0]
    n = max(-(-size // split_size), 1)
    return [split_size] * (n - 1) + [size - split_size * (n - 1)]


def _split_at(a, d, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(a[(slice(None),) * d + (slice(start, start + n),)])
        start += n
    return tuple(out)


def _split(a, split_size, dim=0):
    if a.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _check_dim(dim, a.ndim)
    return _split_at(a, d, split_sizes(a.shape[d], split_size))


def _split_with_sizes(a, split_sizes, dim=0):
    if a.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _check_dim(dim, a.ndim)
    if sum(split_sizes) != a.shape[d]:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {a.shape[d]} (input tensor's "
                           f"size at dimension {d}), but got split_sizes={list(split_sizes)}")
    return _split_at(a, d, split_sizes)


def _split_vjp(grads, c):
    # the walker has already turned missing output gradients into zeros
    return grads[0]._dispatch(OPS["cat"], tuple(grads), {"dim": c.p.get("dim", 0)})


op("split", "SplitBackward0", _split, (_split_vjp,), num_outputs=-1, view=True)
op("split_with_sizes", "SplitWithSizesBackward0", _split_with_sizes, (_split_vjp,), num_outputs=-1, view=True)


def _unbind(a, dim=0):
    if a.ndim == 0:
        raise IndexError(f"Dimension specified as {_check_dim(dim, 0)} but tensor has no dimensions")
    d = _check_dim(dim, a.ndim)
    lead = (slice(None),) * d
    return tuple(a[lead + (i,)] for i in range(a.shape[d]))


def _unbind_vjp(grads, c):
    return stack_tensors(grads, c.p.get("dim", 0))


def stack_tensors(tensors, dim):
    first = tensors[0]
    return first._dispatch(OPS["stack"], tuple(tensors), {"dim": dim})


op("unbind", "UnbindBackward0", _unbind, (_unbind_vjp,), num_outputs=-1, view=True)

# ---------------------------------------------------------------- indexing
# Keys travel as plain data: ("i", n) an int, ("s", start, stop, step) a slice, ("n",) None,
# ("e",) Ellipsis, ("t", k) the k-th index tensor among the op's extra inputs.


def build_key(spec, tensors) -> tuple:
    key = []
    for item in spec:
        kind = item[0]
        if kind == "i":
            key.append(item[1])
        elif kind == "s":
            key.append(slice(item[1], item[2], item[3]))
        elif kind == "n":
            key.append(None)
        elif kind == "e":
            key.append(Ellipsis)
        else:
            key.append(tensors[item[1]])
    return tuple(key)


def select_dim(a, dim, index) -> int:
    """select()'s dim, with torch's errors for a 0-d tensor and an index out of range (``a``: an
    array or a client's Meta)."""
    if a.ndim == 0:
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    d = _check_dim(dim, a.ndim)
    size = a.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(a.shape)} "
                         f"at dimension {d}")
    return d


def _select(a, dim, index):
    return a[(slice(None),) * select_dim(a, dim, index) + (index,)]


def _slice(a, dim, start=None, stop=None, step=1):
    if step <= 0:
        raise ValueError("step must be greater than zero")
    if a.ndim == 0:
        raise IndexError("slice() cannot be applied to a 0-dim tensor.")
    d = _check_dim(dim, a.ndim)
    return a[(slice(None),) * d + (slice(start, stop, step),)]


def _scatter_back(g, shape, key):
    out = xp.zeros(shape, dtype=g.dtype)
    out[key] = g
    return out


def _select_backward(g, shape, dim, index):
    return _scatter_back(g, shape, (slice(None),) * (dim % len(shape)) + (index,))


def _slice_backward(g, shape, dim, start=None, stop=None, step=1):
    return _scatter_back(g, shape, (slice(None),) * (dim % len(shape)) + (slice(start, stop, step),))


op("select", "SelectBackward0", _select,
   (lambda g, c: _call("select_backward", (g,), shape=c.shapes[0], dim=c.p["dim"], index=c.p["index"]),),
   view=True)
op("slice", "SliceBackward0", _slice,
   (lambda g, c: _call("slice_backward", (g,), shape=c.shapes[0], **c.p),), view=True)
op("select_backward", "SelectBackwardBackward0", _select_backward,
   (lambda g, c: g.select(c.p["dim"], c.p["index"]),))
op("slice_backward", "SliceBackwardBackward0", _slice_backward,
   (lambda g, c: _call("slice", (g,), dim=c.p["dim"], start=c.p.get("start"), stop=c.p.get("stop"),
                       step=c.p.get("step", 1)),))


def _call(name, inputs, **params):
    return inputs[0]._dispatch(OPS[name], inputs, params)


def _check_index_tensors(a, key):
    for k in key:
        if hasattr(k, "dtype"):
            if k.dtype.kind not in "biu":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    dim = ordinal = 0  # ordinal: torch names an index tensor by its place among them (a mask counts per dim)
    for k in key:
        if k is None:
            continue
        if k is Ellipsis:
            return
        if hasattr(k, "dtype") and k.dtype.kind == "b":
            if k.shape != a.shape[dim:dim + k.ndim]:
                bad = next(j for j in range(k.ndim) if dim + j >= a.ndim or k.shape[j] != a.shape[dim + j])
                raise IndexError(f"The shape of the mask {list(k.shape)} at index {bad} does not match "
                                 f"the shape of the indexed tensor {list(a.shape)} at index {dim + bad}")
            dim += k.ndim
            ordinal += k.ndim
            continue
        if hasattr(k, "dtype"):
            if k.size and dim < a.ndim:
                lo, hi = int(k.min()), int(k.max())
                size = a.shape[dim]
                bad = hi if hi >= size else lo if lo < -size else None
                if bad is not None:
                    raise IndexError(f"index {bad} is out of bounds for dimension {ordinal} with size {size}")
            ordinal += 1
        dim += 1


def _index(a, *tensors, key):
    k = build_key(key, tensors)
    _check_index_tensors(a, k)
    try:
        return a[k]
    except IndexError as e:
        raise IndexError(str(e)) from None


def _index_vjp(g, c):
    return _call("index_backward", (g,) + tuple(c.x[1:]), shape=c.shapes[0], key=c.p["key"])


def _index_backward(g, *tensors, shape, key):
    out = xp.zeros(shape, dtype=g.dtype)
    xp.add.at(out, build_key(key, tensors), g)
    return out


op("index", "IndexBackward0", _index, (_index_vjp,), save_tail=1)
op("index_backward", "IndexPutBackward0", _index_backward,
   (lambda g, c: _call("index", (g,) + tuple(c.x[1:]), key=c.p["key"]),), save_tail=1)


def _setitem(a, value, *tensors, key):
    out = a.copy()
    k = build_key(key, tensors)
    _check_index_tensors(a, k)
    if not isinstance(value, _SCALARS):
        value = value.astype(a.dtype, copy=False)
    try:
        out[k] = value
    except ValueError:
        target = out[k].shape
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be broadcast "
                           f"to indexing result of shape {list(target)}") from None
    return out


def _setitem_self_vjp(g, c):
    return _call("copy_slices", (g, 0.0) + tuple(c.x[2:]), key=c.p["key"])


def _setitem_value_vjp(g, c):
    return _call("index", (g,) + tuple(c.x[2:]), key=c.p["key"])


op("copy_slices", "torch::autograd::CopySlices", _setitem, (_setitem_self_vjp, _setitem_value_vjp),
   save_tail=2)
op("index_put", "IndexPutBackward0", _setitem, (_setitem_self_vjp, _setitem_value_vjp), save_tail=2)

# ---------------------------------------------------------------- in-place-only ops


def check_copy(a, src) -> None:
    """copy_'s source broadcasts to its target (``a``, ``src``: arrays, numbers or a client's Metas)."""
    if isinstance(src, _SCALARS) or tuple(src.shape) == tuple(a.shape):
        return
    shape, target = tuple(src.shape), tuple(a.shape)
    if len(shape) > len(target) or any(s not in (1, t) for s, t in zip(reversed(shape), reversed(target))):
        raise RuntimeError(f"The size of tensor a ({a.shape[-1] if a.ndim else 1}) must match the size of "
                           f"tensor b ({src.shape[-1] if src.ndim else 1}) at non-singleton dimension "
                           f"{a.ndim - 1}")


def _copy(a, src):
    check_copy(a, src)
    try:
        return xp.broadcast_to(src if not isinstance(src, _SCALARS) else xp.asarray(src), a.shape).astype(a.dtype)
    except ValueError:
        raise RuntimeError(f"The size of tensor a ({a.shape[-1] if a.ndim else 1}) must match the size of "
                           f"tensor b ({src.shape[-1] if src.ndim else 1}) at non-singleton dimension "
                           f"{a.ndim - 1}") from None


op("zero_", "ZeroBackward0", lambda a: xp.zeros_like(a), (lambda g, c: g * 0,))
op("fill_", "FillBackward2", lambda a, value: xp.full_like(a, value), (lambda g, c: g * 0,))
# fill_ with a 0-d tensor value (what setitem of a 0-d value over a whole tensor records)
op("fill_tensor", "FillBackward3", lambda a, value: xp.full_like(a, value),
   (lambda g, c: g * 0, lambda g, c: g.sum()))
op("copy_", "torch::autograd::CopyBackwards", _copy, (lambda g, c: g * 0, lambda g, c: g))

# ---------------------------------------------------------------- activations and losses


def _float_kernel(a, d, name):
    """torch has no softmax kernels for integers (a dtype= argument casts first)."""
    if a.dtype.kind != "f":
        kernel = f"{name}_lastdim_kernel_impl" if d == max(a.ndim - 1, 0) else f"{name}_kernel_impl"
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_scalar_name(a)}\'')


def _softmax(a, dim):
    d = _check_dim(dim, a.ndim)
    _float_kernel(a, d, "softmax")
    if a.ndim == 0 or a.size == 0:
        return xp.ones_like(a)
    e = xp.exp(a - a.max(axis=d, keepdims=True))
    return e / e.sum(axis=d, keepdims=True)


def _log_softmax(a, dim):
    d = _check_dim(dim, a.ndim)
    _float_kernel(a, d, "log_softmax")
    if a.ndim == 0 or a.size == 0:
        return xp.zeros_like(a)
    shifted = a - a.max(axis=d, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=d, keepdims=True))


op("softmax", "SoftmaxBackward0", _softmax,
   (lambda g, c: c.out * (g - (g * c.out).sum(dim=c.p["dim"], keepdim=True)) if len(c.shapes[0]) else g * 0,),
   save_output=True)
op("log_softmax", "LogSoftmaxBackward0", _log_softmax,
   (lambda g, c: g - c.out.exp() * g.sum(dim=c.p["dim"], keepdim=True) if len(c.shapes[0]) else g * 0,),
   save_output=True)


def check_layer_norm(x, weight, bias, normalized_shape) -> None:
    """torch's layer-norm checks, on arrays or a client's Metas: shapes, then dtypes."""
    shape = list(normalized_shape)
    if not shape:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one "
                           f"element, but got normalized_shape = {shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and list(p.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                               f"{list(p.shape)} and normalized_shape = {shape}")
    k = len(shape)
    if x.ndim < k or list(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={shape}, expected input with shape [*"
                           + "".join(f", {n}" for n in shape) + f"], but got input of size{list(x.shape)}")
    if x.dtype.kind != "f":
        raise NotImplementedError(f'"LayerNormKernelImpl" not implemented for \'{_scalar_name(x)}\'')
    params = [p for p in (weight, bias) if p is not None]
    if all(p.dtype == x.dtype for p in params):
        return
    if x.dtype.itemsize == 2:  # a half input takes float parameters (torch's mixed type); nothing else
        if any(p.dtype != xp.float32 for p in params):
            raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
    elif x.dtype == xp.float64:
        raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
    elif params[0].dtype != x.dtype:
        raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
    else:
        raise RuntimeError(f"expected scalar type {_scalar_name(x)} but found {_scalar_name(params[1])}")


def _layer_norm(x, weight, bias, normalized_shape, eps=1e-5):
    check_layer_norm(x, weight, bias, normalized_shape)
    a = x.astype(xp.float32) if x.dtype.itemsize == 2 else x
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    if a.size == 0:
        return xp.empty_like(x)
    centred = a - a.mean(axis=axes, keepdims=True)
    var = (centred * centred).mean(axis=axes, keepdims=True)  # biased, as torch's
    out = centred * (1 / xp.sqrt(var + a.dtype.type(eps)))
    if weight is not None:
        out = out * weight.astype(a.dtype, copy=False)
    if bias is not None:
        out = out + bias.astype(a.dtype, copy=False)
    return out.astype(x.dtype, copy=False)


def _layer_norm_backward(g, x, weight, normalized_shape, eps=1e-5, output="input"):
    """torch's native_layer_norm_backward, one of its three gradients (output): the input's, the
    weight's or the bias's (summed over the leading dims, as torch's)."""
    a_dtype = xp.dtype(xp.float32) if x.dtype.itemsize == 2 else x.dtype
    lead = tuple(range(x.ndim - len(normalized_shape)))
    if output == "bias":
        return _sum_int(g, axis=lead) if lead else g.copy()
    if g.size == 0:
        return xp.zeros(g.shape if output == "input" else tuple(normalized_shape), dtype=g.dtype)
    xa, ga = x.astype(a_dtype, copy=False), g.astype(a_dtype, copy=False)
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    centred = xa - xa.mean(axis=axes, keepdims=True)
    rstd = 1 / xp.sqrt((centred * centred).mean(axis=axes, keepdims=True) + a_dtype.type(eps))
    xhat = centred * rstd
    if output == "weight":
        return (ga * xhat).sum(axis=lead).astype(g.dtype, copy=False)
    a = ga if weight is None else ga * weight.astype(a_dtype, copy=False)
    dx = rstd * (a - a.mean(axis=axes, keepdims=True) - xhat * (a * xhat).mean(axis=axes, keepdims=True))
    return dx.astype(x.dtype, copy=False)


def _layer_norm_normalized(x, c):
    """(x - mean) * rstd and rstd, in tensor ops (differentiable), and the normalized dims."""
    dims = tuple(range(x.dim() - len(c.p["normalized_shape"]), x.dim()))
    centred = x - x.mean(dims, keepdim=True)
    rstd = ((centred * centred).mean(dims, keepdim=True) + c.p.get("eps", 1e-5)).rsqrt()
    return centred * rstd, rstd, dims


def _project(h, xhat, rstd, dims):
    """The input's gradient of layer_norm for an upstream h (weight folded in): symmetric in h."""
    return rstd * (h - h.mean(dims, keepdim=True) - xhat * (h * xhat).mean(dims, keepdim=True))


def _layer_norm_double(k):
    """VJPs of layer_norm_backward for its input k (0 the gradient g, 1 x, 2 the weight), per output."""
    def vjp(gg, c):
        g, x, w = c.x[0], c.x[1], c.x[2]
        output = c.p.get("output", "input")
        if output == "bias":
            return gg.expand(tuple(g.shape)) if k == 0 else None
        xhat, rstd, dims = _layer_norm_normalized(x, c)
        if output == "weight":  # sum(g * xhat * gg): linear in g, the input's gradient of layer_norm in x
            return gg * xhat if k == 0 else _project(g * gg, xhat, rstd, dims) if k == 1 else None
        if k != 1:  # the map from g * w to the input's gradient is symmetric
            p = _project(gg, xhat, rstd, dims)
            return (p if w is None else p * w) if k == 0 else p * g
        # d/dx of <gg, rstd (a - E[a] - xhat E[a xhat])>, a = g * w, is -rstd^2 (xhat (E[gg a] - E[gg] E[a]
        # - 3 E[a xhat] E[gg xhat]) + E[gg xhat] (a - E[a]) + E[a xhat] (gg - E[gg])), means over the normalized dims
        a = g if w is None else g * w

        def mean(v):
            return v.mean(dims, keepdim=True)
        ma, mu, b_, c_ = mean(a), mean(gg), mean(a * xhat), mean(gg * xhat)
        return -(rstd * rstd) * (xhat * (mean(gg * a) - mu * ma - 3 * b_ * c_) + c_ * (a - ma) + b_ * (gg - mu))
    return vjp


def _layer_norm_vjp(output):
    def vjp(g, c):
        return _call("layer_norm_backward", (g, c.x[0], c.x[1]), normalized_shape=c.p["normalized_shape"],
                     eps=c.p.get("eps", 1e-5), output=output)
    return vjp


# inputs: x, weight (or None), bias (or None); torch saves all three (the bias too: an in-place
# change to it fails the backward)
op("layer_norm", "NativeLayerNormBackward0", _layer_norm,
   (_layer_norm_vjp("input"), _layer_norm_vjp("weight"), _layer_norm_vjp("bias")), save=(0, 1, 2))
# its backward as torch writes it, an op of its own (one per gradient here, where torch's node has
# three outputs), so that create_graph gradients are NativeLayerNormBackwardBackward0 and require
# grad as torch's do; inputs: the gradient, x, weight (or None)
op("layer_norm_backward", "NativeLayerNormBackwardBackward0", _layer_norm_backward,
   tuple(_layer_norm_double(k) for k in range(3)), save=(0, 1, 2))


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return _sum_int(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduced_grad(g, c):
    """The incoming gradient spread back over the elements of an elementwise loss."""
    if c.p.get("reduction", "mean") == "mean":
        n = 1
        for d in c.shapes[0]:
            n *= d
        return g / max(n, 1)
    return g


def _mse(a, target, reduction="mean"):
    a, target = _promote(a, target)
    try:
        d = a - target
    except ValueError:
        raise _shape_error(a, target) from None
    return _reduce(d * d, reduction)


op("mse_loss", "MseLossBackward0", _mse,
   (lambda g, c: _reduced_grad(g, c) * 2 * (c.x[0] - c.x[1]),
    lambda g, c: _reduced_grad(g, c) * -2 * (c.x[0] - c.x[1])), save=(0, 1))


def _inplace_into(out, other, fn):
    """fn(out, other) written into out, as torch's in-place steps of a kernel: out's shape and dtype."""
    try:
        shape = xp.broadcast(out, other).shape
    except ValueError:
        raise _shape_error(out, other) from None
    if shape != out.shape:
        raise RuntimeError(f"output with shape {list(out.shape)} doesn't match the broadcast shape {list(shape)}")
    return fn(out, other).astype(out.dtype, copy=False)


def _bce_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    if x.shape != y.shape:
        raise ValueError(f"Target size (torch.Size({list(y.shape)})) must be the same as input size "
                         f"(torch.Size({list(x.shape)}))")
    # torch: (1 - y) x - log_sigmoid(x), the log_sigmoid in x's own dtype (then promoted);
    # -log_sigmoid(x) = max(-x, 0) + log1p(exp(-|x|)) never overflows
    softplus = xp.maximum(-x, x.dtype.type(0)) + xp.log1p(xp.exp(-xp.abs(x)))
    if pos_weight is not None:
        # torch's log_sigmoid(x).mul_((pos_weight - 1) * y + 1)
        try:
            log_weight = (pos_weight - 1) * y + 1
        except ValueError:
            raise _shape_error(pos_weight, y) from None
        softplus = _inplace_into(softplus, log_weight, lambda a, b: a * b)
    loss = (1 - y) * x + softplus
    if weight is not None:
        loss = _inplace_into(loss, weight, lambda a, b: a * b)
    return _reduce(loss, reduction)


def _bce_weighted(grad, c):
    """A gradient of the loss times the class weights (in the gradient's dtype), then spread."""
    weight = c.x[2] if len(c.x) > 2 else None
    if weight is not None:
        grad = grad * (weight if weight.dtype == grad.dtype else weight.to(grad.dtype))
    return grad


def _bce_input_vjp(g, c):
    x, y = c.x[0], c.x[1]
    pos_weight = c.x[3] if len(c.x) > 3 else None
    if pos_weight is None:
        grad = x.sigmoid() - y
    else:
        t = pos_weight * y
        grad = (t + 1 - y) * x.sigmoid() - t
    return _reduced_grad(g, c) * _bce_weighted(grad, c)


def _bce_target_vjp(g, c):
    x = c.x[0]
    pos_weight = c.x[3] if len(c.x) > 3 else None
    if pos_weight is None:
        grad = -x
    else:
        # log_sigmoid(-x) - log_sigmoid(x) * pos_weight, with log_sigmoid(z) = -softplus(-z)
        softplus = {"beta": 1.0, "threshold": 20.0}
        grad = -x._op("softplus", **softplus) + (-x)._op("softplus", **softplus) * pos_weight
    return _reduced_grad(g, c) * _bce_weighted(grad, c)


# optional inputs 2 and 3: weight and pos_weight (either may be None); no gradient for them (torch
# refuses ones that require grad: F.binary_cross_entropy_with_logits says so)
op("binary_cross_entropy_with_logits", "BinaryCrossEntropyWithLogitsBackward0", _bce_logits,
   (_bce_input_vjp, _bce_target_vjp), save=(0, 1), save_tail=2)


def _check_nll_target(target) -> None:
    if target.dtype not in (xp.int64, xp.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_scalar_name(target)}")


def _check_nll_dtypes(logp, weight, kernel: str) -> None:
    """The kernels' dtype checks, after their shape checks."""
    if weight is not None and weight.dtype != logp.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_name(logp)} but found {_scalar_name(weight)}")
    if logp.dtype.kind != "f":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_scalar_name(logp)}\'')


def _nll_row_weights(target, weight, ignore_index, dtype):
    """Per row: the class weight of its target (1 without weights; 0 where ignored), and the
    targets made safe to index with."""
    valid = target != ignore_index
    safe = xp.where(valid, target, 0).astype(xp.int64)
    w = valid.astype(dtype) if weight is None else xp.where(valid, weight[safe], 0).astype(dtype)
    return w, safe, valid


def _nll_rows(logp, target, weight, reduction, ignore_index):
    """nll_loss of rows: logp (M, C) and target (M,); per-row losses, or their reduction."""
    w, safe, valid = _nll_row_weights(target, weight, ignore_index, logp.dtype)
    bad = (safe < 0) | (safe >= logp.shape[1])
    if bad.any():
        # the first bad target, as torch's kernels name it for a reduced loss ('none' runs in
        # parallel there: any bad one)
        raise IndexError(f"Target {int(target[int(bad.argmax())])} is out of bounds.")
    picked = -xp.take_along_axis(logp, safe[:, None], axis=1)[:, 0] * w
    if reduction == "mean":
        with errstate(invalid="ignore", divide="ignore"):  # every target ignored (or weighed 0): nan
            return picked.sum() / w.sum()
    if reduction == "sum":
        return picked.sum()
    if reduction == "none":
        return picked
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _nll(logp, target, weight=None, reduction="mean", ignore_index=-100):
    """torch's nll_loss of a 1-d (one sample) or 2-d input (nll_loss_nd's other checks are F.nll_loss's)."""
    if target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    _check_nll_target(target)
    n_classes = logp.shape[-1]
    if weight is not None and (weight.ndim != 1 or weight.size != n_classes):
        raise RuntimeError(f"weight tensor should be defined either for all {n_classes} classes or no classes but "
                           f"got weight tensor of shape: {list(weight.shape)}")
    _check_nll_dtypes(logp, weight, "nll_loss_out_frame")
    unbatched = logp.ndim == 1
    if unbatched:
        logp, target = logp[None], target.reshape(1)
    out = _nll_rows(logp, target, weight, reduction, ignore_index)
    return out.reshape(()) if unbatched and reduction == "none" else out


def _nll2d(logp, target, weight=None, reduction="mean", ignore_index=-100):
    """torch's nll_loss2d: input (N, C, H, W), target (N, H, W)."""
    if target.ndim != 3:
        raise RuntimeError(f"only batches of spatial targets supported (3D tensors) but got targets of dimension: "
                           f"{target.ndim}")
    if logp.ndim != 4:
        raise RuntimeError(f"only batches of spatial inputs supported (4D tensors), but got input of dimension: "
                           f"{logp.ndim}")
    _check_nll_target(target)
    if weight is not None and weight.size != logp.shape[1]:
        raise RuntimeError("weight tensor should be defined either for all or no classes")
    if (logp.shape[0], logp.shape[2], logp.shape[3]) != target.shape:
        raise RuntimeError(f"size mismatch (got input: {list(logp.shape)} , target: {list(target.shape)}")
    _check_nll_dtypes(logp, weight, "nll_loss2d_forward_out_frame")
    rows = xp.moveaxis(logp, 1, -1).reshape(-1, logp.shape[1])
    out = _nll_rows(rows, target.reshape(-1), None if weight is None else weight.reshape(-1), reduction,
                    ignore_index)
    return out.reshape(target.shape) if reduction == "none" else out


def _nll_grad_rows(target, weight, n_classes, reduction, ignore_index, dtype):
    """d loss / d logp for rows (M, C), before the incoming gradient: -w[t] at each row's target."""
    w, safe, valid = _nll_row_weights(target, weight, ignore_index, dtype)
    if reduction == "mean" and valid.any():
        with errstate(invalid="ignore", divide="ignore"):  # weights summing to 0: nan, as in torch
            w = w / w.sum()
    onehot = (xp.arange(n_classes)[None, :] == safe[:, None]) & valid[:, None]
    return xp.where(onehot, -w[:, None], xp.zeros((), dtype)).astype(dtype)


def _nll_weight(c):
    return c.x[2]._data if len(c.x) > 2 and c.x[2] is not None else None


def _nll_vjp(g, c):
    shape, p = c.shapes[0], c.p
    reduction = p.get("reduction", "mean")
    target = c.x[1]._data.reshape(-1)
    grad = _nll_grad_rows(target, _nll_weight(c), shape[-1], reduction, p.get("ignore_index", -100), c.out.dtype.np)
    w = _const(g, grad.reshape(shape) if len(shape) == 1 else grad)
    if reduction == "none":
        return w * g.unsqueeze(-1) if len(shape) == 2 else w * g
    return w * g


def _nll2d_vjp(g, c):
    shape, p = c.shapes[0], c.p
    reduction = p.get("reduction", "mean")
    n, n_classes, h, wd = shape
    grad = _nll_grad_rows(c.x[1]._data.reshape(-1), _nll_weight(c), n_classes, reduction,
                          p.get("ignore_index", -100), c.out.dtype.np)
    w = _const(g, xp.moveaxis(grad.reshape(n, h, wd, n_classes), -1, 1))
    return w * g.unsqueeze(1) if reduction == "none" else w * g


# an optional third input, the class weights, is read by the VJP and gets no gradient (torch
# refuses one that requires grad: F.nll_loss says so)
op("nll_loss", "NllLossBackward0", _nll, (_nll_vjp, NOT_DIFF), save=(1,), save_tail=2, save_output=True)
op("nll_loss2d", "NllLoss2DBackward0", _nll2d, (_nll2d_vjp, NOT_DIFF), save=(1,), save_tail=2, save_output=True)

# the Scalar overloads torch's C++ composites call (cross_entropy's label smoothing and class
# probabilities): their own nodes, where Python's ``x * 0.9`` is MulBackward0
_mul, _add = _binary(lambda a, b: a * b), _binary(lambda a, b: a + b)
op("mul_scalar", "MulBackward1", lambda a, other: _mul(a, other), (lambda g, c: g * c.p["other"],))
op("div_scalar", "DivBackward1", lambda a, other: _div(a, other), (lambda g, c: g / c.p["other"],))
op("add_scalar", "AddBackward1", lambda a, other: _add(a, other), (lambda g, c: g,))

FLOAT_CATEGORY = FLOAT


# ---------------------------------------------------------------- VJPs on arrays

def _array_vjps(name: str, *vjps) -> None:
    """The op's VJPs on arrays, for a backward that records nothing (create_graph=False): the
    formulas above step for step, in the same order and the same numpy calls (so the same bits),
    without a Tensor dispatch per step, which is most of a tiny op's backward. A node takes them
    only when every saved tensor has the gradient's dtype: promotion stays the tensor VJPs' job."""
    row = OPS[name]
    assert len(vjps) == len(row.diff_vjps) and row.num_outputs == 1 and not row.variadic, name
    object.__setattr__(row, "array_vjps", vjps)


def _mean_of(g, shape, dims):
    return xp.true_divide(g, float(max(_count(shape, dims), 1)))


def _mse_grad(g, c, two):
    if c.p.get("reduction", "mean") == "mean":
        g = _mean_of(g, c.shapes[0], None)
    return g * two * (c.x[0] - c.x[1])


_array_vjps("add", lambda g, c: g, lambda g, c: g if c.p.get("alpha", 1) == 1 else g * c.p["alpha"])
_array_vjps("sub", lambda g, c: g, _neg_alpha_vjp)
_array_vjps("rsub", _neg_alpha_vjp)
_array_vjps("rsub_tensor", _neg_alpha_vjp, lambda g, c: g)
_array_vjps("mul", lambda g, c: g * c.x[1], lambda g, c: g * c.x[0])
_array_vjps("div", lambda g, c: xp.true_divide(g, c.x[1]),
            lambda g, c: xp.true_divide(-g * c.x[0], c.x[1] * c.x[1]))
_array_vjps("neg", lambda g, c: -g)
_array_vjps("sin", lambda g, c: g * xp.cos(c.x[0]))
_array_vjps("cos", lambda g, c: g * -xp.sin(c.x[0]))
_array_vjps("exp", lambda g, c: g * c.out)
_array_vjps("log", lambda g, c: xp.true_divide(g, c.x[0]))
_array_vjps("tanh", lambda g, c: g * (1 - c.out * c.out))
_array_vjps("sigmoid", lambda g, c: g * (c.out * (1 - c.out)))
_array_vjps("relu", lambda g, c: _threshold_backward(g, c.out, 0))
_array_vjps("pow", lambda g, c: g * 0 if c.p["exponent"] == 0 else
            g * (xp.power(c.x[0], c.p["exponent"] - 1) * c.p["exponent"]))
_array_vjps("sum", lambda g, c: xp.broadcast_to(g, c.shapes[0]))
_array_vjps("mean", lambda g, c: _mean_of(xp.broadcast_to(g, c.shapes[0]), c.shapes[0], None))
_array_vjps("mse_loss", lambda g, c: _mse_grad(g, c, 2), lambda g, c: _mse_grad(g, c, -2))
