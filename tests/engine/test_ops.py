"""Every op of the table against torch: values, dtypes, grad_fn graphs, gradients, errors."""
# ruff: noqa: N803  (T: the library under test, torch or the engine, as in ``T.where``)
from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import remote_autograd.engine as E
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes
from oracle import TOL, check, check_outputs, gradcheck, gradgradcheck, leaves, raises_same

# torch warns for std/var with no degrees of freedom and for broadcasting mse_loss; both sides see it
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

FAST = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOATS = ["float32", "float64"]
SEEDS = st.integers(0, 2**32 - 1)
SHAPES = array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)


def rand(rng, shape, dtype="float64", domain="real"):
    """Values away from the points where an op is not differentiable (or not defined)."""
    x = rng.standard_normal(shape)
    if domain == "positive":
        x = np.abs(x) + 0.5
    elif domain == "unit":  # inside (-1, 1), away from its ends (asin, acos)
        x = np.sign(x) * (np.abs(x) % 0.8 + 0.05)
    return np.asarray(x, dtype=dtype)


def F(lib):  # noqa: N802  (torch.nn.functional as F)
    return lib.nn.functional


# ==================================================================== elementwise unary

UNARY = {
    "neg": (lambda T, a: -a, "real"),
    "neg_method": (lambda T, a: a.neg(), "real"),
    "abs": (lambda T, a: a.abs(), "real"),
    "abs_fn": (lambda T, a: T.abs(a), "real"),
    "reciprocal": (lambda T, a: a.reciprocal(), "positive"),
    "exp": (lambda T, a: a.exp(), "real"),
    "log": (lambda T, a: T.log(a), "positive"),
    "sqrt": (lambda T, a: a.sqrt(), "positive"),
    "sin": (lambda T, a: a.sin(), "real"),
    "cos": (lambda T, a: T.cos(a), "real"),
    "tanh": (lambda T, a: a.tanh(), "real"),
    "expm1": (lambda T, a: a.expm1(), "real"),
    "repeat": (lambda T, a: (a.repeat(*([2] * a.dim())), a.repeat(3, *([1] * a.dim())), a.repeat([1] * a.dim())),
               "real"),
    "logsumexp": (lambda T, a: (a.logsumexp(0), T.logsumexp(a * 3, -1, keepdim=True)), "real"),
    "flip": (lambda T, a: (a.flip(0), a.flip(list(range(a.dim())))), "real"),
    "cumsum": (lambda T, a: (a.cumsum(0), T.cumsum(a, -1, dtype=T.float64)), "real"),
    "masked_fill": (lambda T, a: (a.masked_fill(a > 0.3, -1.5), a.masked_fill(a < 0, T.tensor(2.0))), "real"),
    "log1p": (lambda T, a: T.log1p(a), "positive"),
    "log2": (lambda T, a: a.log2(), "positive"),
    "log10": (lambda T, a: T.log10(a), "positive"),
    "rsqrt": (lambda T, a: a.rsqrt(), "positive"),
    "tan": (lambda T, a: T.tan(a * 0.5), "unit"),
    "sinh": (lambda T, a: a.sinh(), "real"),
    "cosh": (lambda T, a: T.cosh(a), "real"),
    "asin": (lambda T, a: a.asin(), "unit"),
    "arccos": (lambda T, a: T.arccos(a), "unit"),
    "atan": (lambda T, a: a.arctan(), "real"),
    "floor": (lambda T, a: (a * 3).floor(), "real"),
    "ceil": (lambda T, a: T.ceil(a * 3), "real"),
    "trunc": (lambda T, a: (a * 3).trunc() + T.fix(a), "real"),
    "round": (lambda T, a: T.round(a * 3), "real"),
    "frac": (lambda T, a: (a * 3).frac(), "real"),
    "isnan_isinf_isfinite": (lambda T, a: (a.log().isnan(), (a / 0).isinf(), T.isfinite(a.log())), "real"),
    "sigmoid": (lambda T, a: T.sigmoid(a), "real"),
    "relu": (lambda T, a: a.relu(), "real"),
    "F.relu": (lambda T, a: F(T).relu(a), "real"),
    "sign": (lambda T, a: a.sign(), "real"),
    "clamp_min": (lambda T, a: a.clamp(min=-0.3), "real"),
    "clamp_max": (lambda T, a: a.clamp(max=0.4), "real"),
    "clamp_both": (lambda T, a: T.clamp(a, -0.3, 0.4), "real"),
    "clamp_int_bounds": (lambda T, a: a.clamp(-1, 1), "real"),
    "pow2": (lambda T, a: a ** 2, "real"),
    "pow3": (lambda T, a: a.pow(3), "real"),
    "pow0": (lambda T, a: a ** 0, "real"),
    "pow1": (lambda T, a: a ** 1, "real"),
    "pow_half": (lambda T, a: a ** 0.5, "positive"),
    "pow_neg1": (lambda T, a: a ** -1, "positive"),
    "pow_neg_frac": (lambda T, a: a.pow(-1.5), "positive"),
    "square": (lambda T, a: a.square(), "real"),
    "rpow2": (lambda T, a: 2 ** a, "real"),
    "rpow_frac": (lambda T, a: 0.5 ** a, "real"),
    "rpow_float_tensor": (lambda T, a: 2.5 ** a, "real"),
    "add_scalar": (lambda T, a: a + 2, "real"),
    "radd_scalar": (lambda T, a: 2.5 + a, "real"),
    "sub_scalar": (lambda T, a: a - 1.5, "real"),
    "rsub_scalar": (lambda T, a: 2 - a, "real"),
    "rsub_fn_alpha": (lambda T, a: T.sub(a, 1.5, alpha=2), "real"),
    "rsub_fn_scalar": (lambda T, a: T.rsub(a, 2.5), "real"),
    "rsub_fn_scalar_alpha": (lambda T, a: T.rsub(a, 2, alpha=-3), "real"),
    "sub_numpy_float64": (lambda T, a: a - np.float64(2.5), "real"),  # a weak number, as a Python float
    "rsub_numpy_int": (lambda T, a: T.rsub(a, np.int64(2)), "real"),
    "add_alpha_one_float": (lambda T, a: a.add(a, alpha=1.0), "real"),
    "mul_scalar": (lambda T, a: a * 3, "real"),
    "rmul_scalar": (lambda T, a: -0.5 * a, "real"),
    "div_scalar": (lambda T, a: a / 4, "real"),
    "rdiv_scalar": (lambda T, a: 3 / a, "positive"),
    "add_alpha_scalar": (lambda T, a: a.add(1, alpha=3), "real"),
    "add_bool_scalar": (lambda T, a: a + True, "real"),
    "mod_scalar": (lambda T, a: a % 1.5, "real"),
    "div_scalar_floor": (lambda T, a: a.div(2, rounding_mode="floor"), "real"),
    "softmax_last": (lambda T, a: a.softmax(-1), "real"),
    "softmax_first": (lambda T, a: T.softmax(a, 0), "real"),
    "log_softmax_last": (lambda T, a: a.log_softmax(-1), "real"),
    "F.softmax": (lambda T, a: F(T).softmax(a, dim=0), "real"),
    "F.log_softmax_dtype": (lambda T, a: F(T).log_softmax(a, dim=-1, dtype=T.float64), "real"),
    "F.sigmoid": (lambda T, a: F(T).sigmoid(a), "real"),
    "F.silu": (lambda T, a: F(T).silu(a), "real"),
    "F.softplus": (lambda T, a: F(T).softplus(a), "real"),
    "F.softplus_beta": (lambda T, a: F(T).softplus(a * 4, beta=2, threshold=3), "real"),
    "F.leaky_relu": (lambda T, a: F(T).leaky_relu(a) + F(T).leaky_relu(a, 0.3), "real"),
    "F.elu": (lambda T, a: F(T).elu(a) + F(T).elu(a, alpha=0.5), "real"),
    "F.l1_loss": (lambda T, a: [F(T).l1_loss(a, a * 0.5 + 0.25, reduction=r) for r in ("mean", "sum", "none")],
                  "real"),
    "F.tanh": (lambda T, a: F(T).tanh(a), "real"),
    "clone": (lambda T, a: a.clone(), "real"),
    "double": (lambda T, a: a.double(), "real"),
    "float": (lambda T, a: a.float(), "real"),
    "half_back_to_float": (lambda T, a: a.to(T.float64).to(T.float32), "real"),
    "to_same_dtype": (lambda T, a: a.to(a.dtype) * 1, "real"),
    "long": (lambda T, a: a.long(), "real"),
    "bool": (lambda T, a: a.bool(), "real"),
    "to_int32": (lambda T, a: a.to(T.int32), "real"),
    "to_dtype_kw": (lambda T, a: a.to(dtype=T.float64), "real"),
    "type_as": (lambda T, a: a.type_as(T.zeros(1, dtype=T.float64)), "real"),
    "chain": (lambda T, a: ((a * a).exp() - a.sin()).tanh() / (1 + a.abs()), "real"),
    "reuse": (lambda T, a: a * a + a.exp() * a, "real"),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(UNARY))
@FAST
@given(shape=SHAPES, seed=SEEDS)
def test_unary(name, dtype, shape, seed):
    fn, domain = UNARY[name]
    rng = np.random.default_rng(seed)
    # softmax/log_softmax on 0-d input still take dim 0 or -1
    check(fn, [rand(rng, shape, dtype, domain)], seed=seed)


# ==================================================================== elementwise binary, broadcast

BINARY = {
    "add": (lambda T, a, b: a + b, "real", "real"),
    "add_fn_alpha": (lambda T, a, b: T.add(a, b, alpha=2), "real", "real"),
    "add_alpha_float": (lambda T, a, b: a.add(b, alpha=-0.5), "real", "real"),
    "sub": (lambda T, a, b: a - b, "real", "real"),
    "sub_alpha": (lambda T, a, b: a.sub(b, alpha=3), "real", "real"),
    "rsub_fn": (lambda T, a, b: T.rsub(a, b), "real", "real"),
    "rsub_fn_alpha_tensor": (lambda T, a, b: T.rsub(a, b, alpha=-0.5), "real", "real"),
    "mul": (lambda T, a, b: a * b, "real", "real"),
    "mul_fn": (lambda T, a, b: T.mul(a, b), "real", "real"),
    "div": (lambda T, a, b: a / b, "real", "positive"),
    "div_fn": (lambda T, a, b: T.div(a, b), "real", "positive"),
    "pow_tensor": (lambda T, a, b: a ** b, "positive", "real"),
    "pow_tensor_fn": (lambda T, a, b: T.pow(a, b), "positive", "real"),
    "where": (lambda T, a, b: T.where(a > 0, a, b), "real", "real"),
    "where_method": (lambda T, a, b: a.where(b > 0, b), "real", "real"),
    "where_scalar_other": (lambda T, a, b: T.where(a > b, a, 0.0), "real", "real"),
    "where_scalar_input": (lambda T, a, b: T.where(a > b, 1.5, b), "real", "real"),
    "div_mode_none": (lambda T, a, b: a.div(b, rounding_mode=None), "real", "positive"),
    "div_floor": (lambda T, a, b: T.div(a, b, rounding_mode="floor"), "real", "positive"),
    "div_trunc": (lambda T, a, b: a.div(b, rounding_mode="trunc"), "real", "positive"),
    "remainder": (lambda T, a, b: a % b, "real", "positive"),
    "remainder_fn": (lambda T, a, b: T.remainder(a, b), "real", "positive"),
    "maximum": (lambda T, a, b: T.maximum(a, b), "real", "real"),
    "minimum": (lambda T, a, b: a.minimum(b), "real", "real"),
    "max_other": (lambda T, a, b: T.max(a, b), "real", "real"),
    "mse_none": (lambda T, a, b: F(T).mse_loss(a, b, reduction="none"), "real", "real"),
    "combo": (lambda T, a, b: (a * b + a / (b.abs() + 1)).sum(), "real", "real"),
    "eq": (lambda T, a, b: a == b, "real", "real"),
    "ne": (lambda T, a, b: a.ne(b), "real", "real"),
    "lt": (lambda T, a, b: a < b, "real", "real"),
    "le": (lambda T, a, b: T.le(a, b), "real", "real"),
    "gt": (lambda T, a, b: a > b, "real", "real"),
    "ge": (lambda T, a, b: a.ge(b), "real", "real"),
    "isclose": (lambda T, a, b: T.isclose(a, a + b * 1e-7), "real", "real"),
    "isclose_tols": (lambda T, a, b: a.isclose(b, rtol=0.5, atol=0.5), "real", "real"),
    "logical_and": (lambda T, a, b: (a > 0) & (b > 0), "real", "real"),
    "logical_or": (lambda T, a, b: T.logical_or(a > 0, b > 0), "real", "real"),
}

# the second input's dtype for a mixed-precision run: float32 op float64 promotes to float64
DTYPE_PAIRS = [("float32", "float32"), ("float64", "float64"), ("float32", "float64")]


@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids=lambda p: "-".join(p))
@pytest.mark.parametrize("name", list(BINARY))
@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3), seed=SEEDS,
       grads=st.sampled_from([(True, True), (True, False), (False, True)]))
def test_binary_broadcast(name, dtypes, shapes, seed, grads):
    fn, da, db = BINARY[name]
    rng = np.random.default_rng(seed)
    a = rand(rng, shapes.input_shapes[0], dtypes[0], da)
    b = rand(rng, shapes.input_shapes[1], dtypes[1], db)
    check(fn, [a, b], requires_grad=list(grads), seed=seed)


@pytest.mark.parametrize("name", ["add", "mul", "div", "pow_tensor", "where", "maximum", "eq"])
@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=SEEDS)
def test_binary_swapped_dtypes(name, shapes, seed):
    # float64 op float32, the other way round from DTYPE_PAIRS
    fn, da, db = BINARY[name]
    rng = np.random.default_rng(seed)
    check(fn, [rand(rng, shapes.input_shapes[0], "float64", da), rand(rng, shapes.input_shapes[1], "float32", db)],
          seed=seed)


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=SEEDS)
def test_where_three_way_broadcast(shapes, seed):
    rng = np.random.default_rng(seed)
    c, a, b = (rand(rng, s) for s in shapes.input_shapes)
    check(lambda T, c, a, b: T.where(c > 0, a, b), [c, a, b], seed=seed)


# ==================================================================== type promotion and conversions

def _t(values, dtype):
    return np.asarray(values, dtype=dtype)


PROMOTION = {
    "f32+f64": (lambda T, a, b: a + b, [_t([1.5, 2.5], "float32"), _t([0.25, 3.0], "float64")]),
    "f64*f32_0d": (lambda T, a, b: a * b, [_t([1.5, 2.5], "float32"), _t(2.0, "float64")]),
    "f32_0d*f64": (lambda T, a, b: a * b, [_t(1.5, "float32"), _t([2.0, 3.0], "float64")]),
    "i64+f32": (lambda T, a, b: a + b, [_t([1, 2], "int64"), _t([0.5, 0.25], "float32")]),
    "i64*float_scalar": (lambda T, a: a * 2.5, [_t([1, 2, 3], "int64")]),
    "float_scalar-i64": (lambda T, a: 0.5 - a, [_t([1, 2, 3], "int64")]),
    "i64+int_scalar": (lambda T, a: a + 3, [_t([1, 2, 3], "int64")]),
    "i32+int_scalar": (lambda T, a: a * 3, [_t([1, 2, 3], "int32")]),
    "i32+i64": (lambda T, a, b: a + b, [_t([1, 2], "int32"), _t([3, 4], "int64")]),
    "u8+i8": (lambda T, a, b: a + b, [_t([1, 2], "uint8"), _t([3, -4], "int8")]),
    "i64/i64": (lambda T, a, b: a / b, [_t([7, -7, 6], "int64"), _t([2, 2, 4], "int64")]),
    "i64//i64": (lambda T, a, b: a // b, [_t([7, -7, 6], "int64"), _t([2, 2, 4], "int64")]),
    "div_trunc": (lambda T, a, b: T.div(a, b, rounding_mode="trunc"),
                  [_t([7, -7, 6], "int64"), _t([2, 2, 4], "int64")]),
    "div_floor_float": (lambda T, a, b: a.div(b, rounding_mode="floor"),
                        [_t([7.5, -7.5], "float32"), _t([2, 2], "float32")]),
    "i64/int_scalar": (lambda T, a: a / 2, [_t([7, -7, 6], "int64")]),
    "i64**int": (lambda T, a: a ** 2, [_t([1, -2, 3], "int64")]),
    "i64**float": (lambda T, a: a ** 0.5, [_t([1, 4, 9], "int64")]),
    "int_scalar**i64": (lambda T, a: 2 ** a, [_t([1, 2, 3], "int64")]),
    "i64.sqrt": (lambda T, a: a.sqrt(), [_t([1, 4, 9], "int64")]),
    "i64.exp": (lambda T, a: a.exp(), [_t([0, 1, 2], "int64")]),
    "i64.sigmoid": (lambda T, a: T.sigmoid(a), [_t([0, 1, -2], "int64")]),
    "i64.abs": (lambda T, a: a.abs(), [_t([0, 1, -2], "int64")]),
    "i64.neg": (lambda T, a: -a, [_t([0, 1, -2], "int64")]),
    "i64.relu": (lambda T, a: a.relu(), [_t([0, 1, -2], "int64")]),
    "i64.clamp": (lambda T, a: a.clamp(-1, 1), [_t([0, 5, -2], "int64")]),
    "i64.clamp_float": (lambda T, a: a.clamp(min=0.5), [_t([0, 5, -2], "int64")]),
    "i64.sum": (lambda T, a: a.sum(), [_t([1, 2], "int64")]),
    "i32.sum": (lambda T, a: a.sum(0), [_t([1, 2], "int32")]),
    "bool.sum": (lambda T, a: a.sum(), [_t([True, False, True], "bool")]),
    "i64.prod": (lambda T, a: a.prod(), [_t([3, 2], "int64")]),
    "bool.prod_dim": (lambda T, a: a.prod(0), [_t([True, True], "bool")]),
    "i64.max": (lambda T, a: a.max(), [_t([3, 2], "int64")]),
    "i64.max_dim": (lambda T, a: a.max(0), [_t([3, 2], "int64")]),
    "i64.sum_dtype": (lambda T, a: a.sum(dtype=T.float64), [_t([3, 2], "int64")]),
    "f32.sum_dtype": (lambda T, a: a.sum(dtype=T.float64), [_t([3, 2], "float32")]),
    "f32.mean_dtype": (lambda T, a: a.mean(0, dtype=T.float64), [_t([3, 2], "float32")]),
    "bool+bool": (lambda T, a, b: a + b, [_t([True, False], "bool"), _t([True, True], "bool")]),
    "bool*bool": (lambda T, a, b: a * b, [_t([True, False], "bool"), _t([True, True], "bool")]),
    "bool*int": (lambda T, a: a * 3, [_t([True, False], "bool")]),
    "bool+float": (lambda T, a: a + 1.5, [_t([True, False], "bool")]),
    "bool+i64": (lambda T, a, b: a + b, [_t([True, False], "bool"), _t([3, 4], "int64")]),
    "bool+f32": (lambda T, a, b: a + b, [_t([True, False], "bool"), _t([3, 4], "float32")]),
    "bool&bool": (lambda T, a, b: a & b, [_t([True, False], "bool"), _t([True, True], "bool")]),
    "bool|bool": (lambda T, a, b: a | b, [_t([True, False], "bool"), _t([False, False], "bool")]),
    "~bool": (lambda T, a: ~a, [_t([True, False], "bool")]),
    "bool.logical_not": (lambda T, a: a.logical_not(), [_t([True, False], "bool")]),
    "bool/bool": (lambda T, a, b: a / b, [_t([True, False], "bool"), _t([True, True], "bool")]),
    "bool.float": (lambda T, a: a.float(), [_t([True, False], "bool")]),
    "i64%i64": (lambda T, a, b: a % b, [_t([7, -7, 6], "int64"), _t([2, 3, -4], "int64")]),
    "i64%int": (lambda T, a: a % 3, [_t([7, -7, 6], "int64")]),
    "f32//f32": (lambda T, a, b: a.detach() // b.detach(), [_t([7.5, -7.5], "float32"), _t([2, 2], "float32")]),
    "i64.floor_divide": (lambda T, a: T.floor_divide(a, 2), [_t([7, -7], "int64")]),
    "i64_0d+f32": (lambda T, a, b: a + b, [_t(3, "int64"), _t([0.5, 1.5], "float32")]),
    "f64_0d+i64": (lambda T, a, b: a + b, [_t(0.5, "float64"), _t([1, 2], "int64")]),
    "f32_0d+i32": (lambda T, a, b: a * b, [_t(0.5, "float32"), _t([1, 2], "int32")]),
    "i64_0d+i32": (lambda T, a, b: a + b, [_t(3, "int64"), _t([1, 2], "int32")]),
    "i32_0d+u8": (lambda T, a, b: a + b, [_t(3, "int32"), _t([1, 2], "uint8")]),
    "bool_0d+u8": (lambda T, a, b: a + b, [_t(True, "bool"), _t([1, 2], "uint8")]),
    "f64_0d+f64_0d": (lambda T, a, b: a + b, [_t(0.5, "float64"), _t(0.25, "float32")]),
    "f64_0d_grad*f32": (lambda T, a, b: a * b, [_t(0.5, "float64"), _t([1.5, 2.5], "float32")]),
    "i64.float": (lambda T, a: a.float(), [_t([1, 2], "int64")]),
    "i64.double": (lambda T, a: a.double(), [_t([1, 2], "int64")]),
    "i64.to_f32": (lambda T, a: a.to(T.float32), [_t([1, 2], "int64")]),
    "f32.to_long": (lambda T, a: a.to(T.int64), [_t([1.7, -2.7], "float32")]),
    "f32.long": (lambda T, a: a.long(), [_t([1.7, -2.7], "float32")]),
    "f32.int": (lambda T, a: a.int(), [_t([1.7, -2.7], "float32")]),
    "f32.half.float": (lambda T, a: a.half().float(), [_t([1.7, -2.7], "float32")]),
    "i64==float": (lambda T, a: a == 2.0, [_t([1, 2], "int64")]),
    "i64<f32": (lambda T, a, b: a < b, [_t([1, 2], "int64"), _t([1.5, 1.5], "float32")]),
    "i64.mean_error_free": (lambda T, a: a.float().mean(), [_t([1, 2], "int64")]),
    "i64.softmax": (lambda T, a: a.softmax(0), [_t([1, 2], "int64")]),
    "where_i64_f32": (lambda T, a, b: T.where(a > 1, a, b), [_t([1, 2], "int64"), _t([0.5, 0.5], "float32")]),
    "where_scalar_both": (lambda T, a: T.where(a > 1, 1.0, 0), [_t([1, 2], "int64")]),
    "cat_promote": (lambda T, a, b: T.cat([a, b]), [_t([1, 2], "int64"), _t([0.5], "float32")]),
    "stack_promote": (lambda T, a, b: T.stack([a, b]), [_t([1.0, 2], "float32"), _t([0.5, 3], "float64")]),
    "max_other_promote": (lambda T, a, b: T.maximum(a, b), [_t([1, 2], "int64"), _t([0.5, 3], "float32")]),
    "eq_bool_int": (lambda T, a, b: a == b, [_t([True, False], "bool"), _t([1, 1], "int64")]),
}


@pytest.mark.parametrize("name", list(PROMOTION))
def test_type_promotion(name):
    fn, arrays = PROMOTION[name]
    check(fn, arrays)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grad_dtype_follows_input(dtype):
    # a float32 leaf that meets float64 gets a float32 gradient back; an int operand gets none
    rng = np.random.default_rng(0)
    check(lambda T, a, b, i: (a * b + i).sum(), [rand(rng, (3,), dtype), rand(rng, (2, 3), "float64"),
                                                 np.arange(3)])


# ==================================================================== reductions

@st.composite
def reduction_args(draw, min_dims=0):
    shape = draw(array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=4))
    n = max(len(shape), 1)
    kind = draw(st.sampled_from(["none", "int", "tuple", "list"]))
    if kind == "none":
        dim = None
    elif kind == "int":
        dim = draw(st.integers(-n, n - 1))
    else:
        dims = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        # a negative spelling of some dims
        dim = tuple(d - n if draw(st.booleans()) else d for d in dims)
        dim = list(dim) if kind == "list" else dim
    return shape, dim, draw(st.booleans())


def _dim_kw(dim, keepdim):
    return {} if dim is None and not keepdim else {"dim": dim, "keepdim": keepdim}


REDUCE = {
    "sum": lambda T, a, dim, k: a.sum() if dim is None else a.sum(dim, keepdim=k),
    "sum_fn": lambda T, a, dim, k: T.sum(a) if dim is None else T.sum(a, dim, k),
    "mean": lambda T, a, dim, k: a.mean() if dim is None else a.mean(dim, k),
    "var": lambda T, a, dim, k: a.var() if dim is None else a.var(dim, keepdim=k),
    "var_biased": lambda T, a, dim, k: a.var(dim, unbiased=False, keepdim=k),
    "var_correction0": lambda T, a, dim, k: a.var(dim, keepdim=k, correction=0),
    "var_correction2": lambda T, a, dim, k: T.var(a, dim, keepdim=k, correction=2),
    "std": lambda T, a, dim, k: a.std() if dim is None else a.std(dim, keepdim=k),
    "std_unbiased_false": lambda T, a, dim, k: a.std(dim, False, k),
    "std_correction0": lambda T, a, dim, k: T.std(a, dim, keepdim=k, correction=0),
    "norm": lambda T, a, dim, k: a.norm() if dim is None else a.norm(dim=dim, keepdim=k),
    "norm_fro": lambda T, a, dim, k: a.norm("fro", dim, k) if not isinstance(dim, int) else a.norm(2, dim, k),
    "norm1": lambda T, a, dim, k: a.norm(1, dim, k),
    "norm3": lambda T, a, dim, k: T.norm(a, 3, dim, k),
    "norm_half": lambda T, a, dim, k: a.norm(0.5, dim, k),
    "norm_inf": lambda T, a, dim, k: a.norm(float("inf"), dim, k),
    "norm_neginf": lambda T, a, dim, k: a.norm(-math.inf, dim, k),
    "norm0": lambda T, a, dim, k: a.norm(0, dim, k),
    "amax": lambda T, a, dim, k: a.amax() if dim is None else a.amax(dim, k),
    "amin": lambda T, a, dim, k: T.amin(a) if dim is None else T.amin(a, dim, keepdim=k),
    "sum_empty_dims": lambda T, a, dim, k: a.sum(()) if dim is None else a.sum(dim, k, dtype=T.float64),
    "mean_empty_dims": lambda T, a, dim, k: a.mean((), k) if dim is None else a.mean(dim, k, dtype=T.float64),
    "all": lambda T, a, dim, k: (a > 0).all() if dim is None or not isinstance(dim, int) else (a > 0).all(dim, k),
    "any": lambda T, a, dim, k: T.any(a > 0) if dim is None or not isinstance(dim, int) else T.any(a > 0, dim, k),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(REDUCE))
@FAST
@given(args=reduction_args(), seed=SEEDS)
def test_reduction(name, dtype, args, seed):
    shape, dim, keepdim = args
    rng = np.random.default_rng(seed)
    check(lambda T, a: REDUCE[name](T, a, dim, keepdim), [rand(rng, shape, dtype)], seed=seed)


SINGLE_DIM = {
    "max_dim": lambda T, a, d, k: a.max(d, k),
    "min_dim": lambda T, a, d, k: T.min(a, d, keepdim=k),
    "max_dim_kw": lambda T, a, d, k: a.max(dim=d, keepdim=k),
    "max_dim_values": lambda T, a, d, k: a.max(d, k).values * 2,
    "min_dim_indices": lambda T, a, d, k: a.min(d, k).indices,
    "prod_dim": lambda T, a, d, k: a.prod(d, k),
    "prod_fn": lambda T, a, d, k: T.prod(a, d, keepdim=k),
    "argmax": lambda T, a, d, k: a.argmax(d, k),
    "argmin": lambda T, a, d, k: T.argmin(a, d, keepdim=k),
    "softmax": lambda T, a, d, k: a.softmax(d),
    "log_softmax": lambda T, a, d, k: T.log_softmax(a, d),
    "unbind": lambda T, a, d, k: a.unbind(d),
    "unsqueeze": lambda T, a, d, k: a.unsqueeze(d),
    "squeeze_dim": lambda T, a, d, k: a.squeeze(d),
    "flatten_from": lambda T, a, d, k: a.flatten(d),
    "transpose_last": lambda T, a, d, k: a.transpose(d, -1),
    "all_dim": lambda T, a, d, k: (a > 0).all(d, k),
    "sum_dim": lambda T, a, d, k: T.sum(a, d, k),
    "mean_dim": lambda T, a, d, k: T.mean(a, d, k),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SINGLE_DIM))
@FAST
@given(shape=SHAPES, seed=SEEDS, data=st.data())
def test_single_dim_ops(name, dtype, shape, seed, data):
    n = max(len(shape), 1)
    d = data.draw(st.integers(-n, n - 1), label="dim")
    k = data.draw(st.booleans(), label="keepdim")
    rng = np.random.default_rng(seed)
    check(lambda T, a: SINGLE_DIM[name](T, a, d, k), [rand(rng, shape, dtype)], seed=seed)


WHOLE = {
    "max": lambda T, a: a.max(),
    "min": lambda T, a: T.min(a),
    "prod": lambda T, a: a.prod(),
    "amax": lambda T, a: a.amax(),
    "argmax": lambda T, a: a.argmax(),
    "argmin_keepdim": lambda T, a: a.argmin(keepdim=True),
    "all": lambda T, a: (a > 0).all(),
    "any": lambda T, a: (a > 5).any(),
    "allclose_self": lambda T, a: T.allclose(a, a + 1e-9),
    "allclose_other": lambda T, a: a.allclose(a * 2),
    "allclose_tols": lambda T, a: a.allclose(a * 1.1, rtol=0.2, atol=0.0),
    "equal": lambda T, a: T.equal(a, a.clone()),
    "numel": lambda T, a: T.numel(a),
    "item": lambda T, a: a.sum().item(),
    "t": lambda T, a: (a.reshape(-1, 1) if a.dim() > 2 else a).t(),
    "T_prop": lambda T, a: a.T,
    "mT_prop": lambda T, a: a.mT if a.dim() >= 2 else a.T,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(WHOLE))
@FAST
@given(shape=SHAPES, seed=SEEDS)
def test_whole_tensor_ops(name, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    check(WHOLE[name], [rand(rng, shape, dtype)], seed=seed)


@pytest.mark.parametrize("dtype", FLOATS)
def test_max_min_ties_spread_evenly(dtype):
    # torch divides the gradient evenly between tied maxima of a full reduction, and picks one index by dim
    a = np.asarray([[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]], dtype=dtype)
    check(lambda T, x: x.max(), [a])
    check(lambda T, x: x.min(), [a])
    check(lambda T, x: x.norm(float("inf")), [a])
    check(lambda T, x: x.amax(), [a])
    check(lambda T, x: x.relu() + x.clamp(0.0, 3.0) + x.abs(), [a - 3])
    check(lambda T, x: T.maximum(x, x[:, [2, 1, 0]]) + T.minimum(x, x[:, [2, 1, 0]]), [a])


@pytest.mark.parametrize("dtype", FLOATS)
def test_prod_with_zeros(dtype):
    a = np.asarray([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [2.0, -1.0, 0.5]], dtype=dtype)
    check(lambda T, x: x.prod(), [a])
    check(lambda T, x: x.prod(1), [a])
    check(lambda T, x: x.prod(0, keepdim=True), [a])
    check(lambda T, x: x[2].prod(), [a])


# ==================================================================== linear algebra

MATMUL_SHAPES = {
    "1d@1d": ((4,), (4,)),
    "2d@1d": ((3, 4), (4,)),
    "1d@2d": ((4,), (4, 2)),
    "2d@2d": ((3, 4), (4, 2)),
    "3d@2d": ((2, 3, 4), (4, 2)),
    "3d@1d": ((2, 3, 4), (4,)),
    "4d@2d": ((2, 1, 3, 4), (4, 2)),
    "1d@3d": ((4,), (2, 4, 3)),
    "2d@3d": ((3, 4), (2, 4, 3)),
    "3d@3d": ((2, 3, 4), (2, 4, 5)),
    "bcast_3d@3d": ((1, 3, 4), (2, 4, 5)),
    "4d@3d": ((2, 1, 3, 4), (5, 4, 2)),
    "3d@4d": ((5, 3, 4), (2, 1, 4, 2)),
    "4d@1d": ((2, 2, 3, 4), (4,)),
    "1d@4d": ((4,), (2, 2, 4, 3)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", list(MATMUL_SHAPES))
@pytest.mark.parametrize("how", ["method", "operator", "fn"])
def test_matmul(case, how, dtype):
    sa, sb = MATMUL_SHAPES[case]
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    fn = {"method": lambda T, a, b: a.matmul(b), "operator": lambda T, a, b: a @ b,
          "fn": lambda T, a, b: T.matmul(a, b)}[how]
    check(fn, [rand(rng, sa, dtype), rand(rng, sb, dtype)])


@st.composite
def matmul_shapes(draw):
    n, m, p = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
    a = batch.input_shapes[0] + (n, m) if draw(st.booleans()) else (m,)
    b = batch.input_shapes[1] + (m, p) if draw(st.booleans()) else (m,)
    return a, b


def _mt(shape):
    return shape[:-2] + shape[:-3:-1] if len(shape) >= 2 else shape


@pytest.mark.parametrize("dtype", FLOATS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=matmul_shapes(), seed=SEEDS, grads=st.sampled_from([(True, True), (True, False), (False, True)]),
       transposed=st.sampled_from([(False, False), (True, False), (False, True), (True, True)]))
def test_matmul_random_shapes(dtype, shapes, seed, grads, transposed):
    # transposed: the operand enters as x.mT of a leaf, so its strides are not contiguous
    rng = np.random.default_rng(seed)
    ta, tb = (t and len(s) >= 2 for t, s in zip(transposed, shapes))
    arrays = [rand(rng, _mt(shapes[0]) if ta else shapes[0], dtype),
              rand(rng, _mt(shapes[1]) if tb else shapes[1], dtype)]
    check(lambda T, a, b: (a.mT if ta else a) @ (b.mT if tb else b), arrays, requires_grad=list(grads), seed=seed)


LINALG = {
    "mm": (lambda T, a, b: a.mm(b), (3, 4), (4, 2)),
    "mm_fn": (lambda T, a, b: T.mm(a, b), (1, 4), (4, 1)),
    "mm_t": (lambda T, a, b: a.t().mm(b.t()), (4, 3), (2, 4)),
    "bmm": (lambda T, a, b: a.bmm(b), (2, 3, 4), (2, 4, 5)),
    "bmm_fn": (lambda T, a, b: T.bmm(a, b), (1, 1, 4), (1, 4, 2)),
    "dot": (lambda T, a, b: a.dot(b), (5,), (5,)),
    "dot_fn": (lambda T, a, b: T.dot(a, b), (1,), (1,)),
    "mv": (lambda T, a, b: a.mv(b), (3, 4), (4,)),
    "mv_fn": (lambda T, a, b: T.mv(a, b), (3, 4), (4,)),
    "linear": (lambda T, a, b: F(T).linear(a, b), (3, 4), (2, 4)),
    "linear_bias": (lambda T, a, b: F(T).linear(a, b, b[:, 0]), (3, 4), (2, 4)),
    "linear_3d_bias": (lambda T, a, b: F(T).linear(a.reshape(3, 2, 2), b[:, :2], b[:, 0]), (3, 4), (2, 4)),
    "linear_1d_bias": (lambda T, a, b: F(T).linear(a[0], b, b[:, 1]), (3, 4), (2, 4)),
    "linear_noncontig_bias": (lambda T, a, b: F(T).linear(a.t()[:2].reshape(2, 1, 3).transpose(0, 1), b[:, :3],
                                                           b[:, 0]), (3, 4), (2, 4)),
    "linear_no_bias": (lambda T, a, b: F(T).linear(a, b), (3, 4), (2, 4)),
    "linear_3d_contiguous_bias": (lambda T, a, b: F(T).linear(a.reshape(3, 2, 2), b[:, :2], b[1, :2] * 1), (3, 4),
                                  (2, 4)),
    "linear_1d_contiguous_bias": (lambda T, a, b: F(T).linear(a[0], b, b[1, :2] * 1), (3, 4), (2, 4)),
    "linear_expanded_bias": (lambda T, a, b: F(T).linear(a.reshape(2, 3, 2), b[:, :2], b[0, :1].expand(2)), (3, 4),
                             (2, 4)),
    "mlp": (lambda T, a, b: (a @ b.t()).relu().sum(1).mean(), (3, 4), (2, 4)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(LINALG))
def test_linalg(name, dtype):
    fn, sa, sb = LINALG[name]
    rng = np.random.default_rng(1)
    check(fn, [rand(rng, sa, dtype), rand(rng, sb, dtype)])


# ==================================================================== shapes and views

SHAPE_OPS = {
    "t_2d": (lambda T, a: a.t(), (3, 4)),
    "t_1d": (lambda T, a: a.t(), (3,)),
    "t_0d": (lambda T, a: T.t(a), ()),
    "transpose": (lambda T, a: a.transpose(0, 2), (2, 3, 4)),
    "transpose_neg": (lambda T, a: T.transpose(a, -1, -3), (2, 3, 4)),
    "transpose_same": (lambda T, a: a.transpose(1, 1), (2, 3)),
    "swapaxes": (lambda T, a: a.swapaxes(0, 1), (2, 3)),
    "permute": (lambda T, a: a.permute(2, 0, 1), (2, 3, 4)),
    "permute_tuple": (lambda T, a: a.permute((1, -1, 0)), (2, 3, 4)),
    "permute_fn": (lambda T, a: T.permute(a, (1, 0)), (2, 3)),
    "reshape": (lambda T, a: a.reshape(3, 8), (2, 3, 4)),
    "reshape_infer": (lambda T, a: a.reshape(-1, 2), (2, 3, 4)),
    "reshape_tuple": (lambda T, a: T.reshape(a, (4, -1)), (2, 3, 4)),
    "reshape_noncontig": (lambda T, a: a.t().reshape(-1), (3, 4)),
    "reshape_same": (lambda T, a: a.reshape(2, 3), (2, 3)),
    "reshape_0d": (lambda T, a: a.reshape(()), (1,)),
    "reshape_to_1": (lambda T, a: a.reshape(1, 1), ()),
    "reshape_as": (lambda T, a: a.reshape_as(a.t()), (2, 3)),
    "view": (lambda T, a: a.view(6, 4), (2, 3, 4)),
    "view_infer": (lambda T, a: a.view(-1), (2, 3, 4)),
    "view_size": (lambda T, a: a.view(a.size()), (2, 3)),
    "view_as": (lambda T, a: a.view_as(a.reshape(3, 2)), (2, 3)),
    "view_transposed_compatible": (lambda T, a: a.t().view(4, 1, 3), (3, 4)),
    "flatten": (lambda T, a: a.flatten(), (2, 3, 4)),
    "flatten_range": (lambda T, a: T.flatten(a, 1, 2), (2, 3, 4, 1)),
    "flatten_same": (lambda T, a: a.flatten(1, 1), (2, 3)),
    "flatten_0d": (lambda T, a: a.flatten(), ()),
    "flatten_1d": (lambda T, a: a.flatten(), (4,)),
    "flatten_noncontig": (lambda T, a: a.t().flatten(), (3, 4)),
    "squeeze": (lambda T, a: a.squeeze(), (1, 3, 1, 2)),
    "squeeze_all_ones": (lambda T, a: a.squeeze(), (1, 1)),
    "squeeze_dim": (lambda T, a: a.squeeze(2), (1, 3, 1, 2)),
    "squeeze_dim_noop": (lambda T, a: a.squeeze(1), (1, 3, 1, 2)),
    "squeeze_neg": (lambda T, a: T.squeeze(a, -2), (1, 3, 1, 2)),
    "squeeze_dims": (lambda T, a: a.squeeze((0, 2)), (1, 3, 1, 2)),
    "squeeze_0d": (lambda T, a: a.squeeze(), ()),
    "unsqueeze": (lambda T, a: a.unsqueeze(1), (2, 3)),
    "unsqueeze_neg": (lambda T, a: a.unsqueeze(-1), (2, 3)),
    "unsqueeze_front": (lambda T, a: T.unsqueeze(a, 0), ()),
    "expand": (lambda T, a: a.expand(2, 3, 4), (3, 1)),
    "expand_neg1": (lambda T, a: a.expand(-1, 4), (3, 1)),
    "expand_tuple": (lambda T, a: a.expand((5, 3, 1)), (3, 1)),
    "expand_0d": (lambda T, a: a.expand(2, 2), ()),
    "expand_as": (lambda T, a: a.expand_as(T.zeros(2, 3, 4, dtype=a.dtype)), (1, 4)),
    "expand_then_sum": (lambda T, a: a.expand(3, 4).sum(0), (1, 4)),
    "narrow": (lambda T, a: a.narrow(1, 1, 2), (2, 4)),
    "narrow_neg": (lambda T, a: T.narrow(a, -1, -3, 2), (2, 4)),
    "select": (lambda T, a: a.select(1, -1), (2, 4)),
    "chunk": (lambda T, a: a.chunk(3, 1), (2, 5)),
    "split": (lambda T, a: a.split(2), (5, 2)),
    "split_sizes": (lambda T, a: T.split(a, [1, 3], 1), (2, 4)),
    "unbind": (lambda T, a: a.unbind(), (3, 2)),
    "unbind_dim": (lambda T, a: T.unbind(a, 1), (3, 2)),
    "unbind_some_used": (lambda T, a: a.unbind(1)[1] * 2, (3, 2)),
    "iter": (lambda T, a: tuple(a), (3, 2)),
    "contiguous": (lambda T, a: a.t().contiguous(), (3, 2)),
    "view_of_view": (lambda T, a: a.view(6)[1:4].view(3, 1), (2, 3)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_ops(name, dtype):
    fn, shape = SHAPE_OPS[name]
    check(fn, [rand(np.random.default_rng(2), shape, dtype)])


@FAST
@given(shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), seed=SEEDS, data=st.data())
def test_permute_random(shape, seed, data):
    perm = data.draw(st.permutations(range(len(shape))))
    check(lambda T, a: a.permute(*perm) * 2, [rand(np.random.default_rng(seed), shape)], seed=seed)


@FAST
@given(shape=array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4), seed=SEEDS, data=st.data())
def test_reshape_random(shape, seed, data):
    n = math.prod(shape)
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    d = data.draw(st.sampled_from(divisors))
    new = data.draw(st.sampled_from([(d, n // d), (n // d, -1), (-1,), (1, d, n // d)]))
    check(lambda T, a: a.transpose(0, -1).reshape(new), [rand(np.random.default_rng(seed), shape)], seed=seed)


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=1, min_dims=0, max_dims=3, max_side=3), seed=SEEDS)
def test_expand_random(shapes, seed):
    src, target = shapes.input_shapes[0], shapes.result_shape
    check(lambda T, a: a.expand(*(1, 2) + target), [rand(np.random.default_rng(seed), src)], seed=seed)


CAT_STACK = {
    "cat0": (lambda T, a, b: T.cat([a, b]), (2, 3), (4, 3)),
    "cat1": (lambda T, a, b: T.cat((a, b), 1), (2, 3), (2, 1)),
    "cat_neg": (lambda T, a, b: T.cat([a, b, a], dim=-1), (2, 3), (2, 2)),
    "cat_1d": (lambda T, a, b: T.cat([a, b]), (3,), (2,)),
    "cat_single": (lambda T, a, b: T.cat([a]), (3,), (2,)),
    "cat_empty_1d": (lambda T, a, b: T.cat([a, b[:0]]), (2, 3), (2,)),
    "concat": (lambda T, a, b: T.concat([a, b], 0), (1, 3), (2, 3)),
    "stack0": (lambda T, a, b: T.stack([a, b]), (2, 3), (2, 3)),
    "stack1": (lambda T, a, b: T.stack((a, b, a), 1), (2, 3), (2, 3)),
    "stack_last": (lambda T, a, b: T.stack([a, b], dim=-1), (2, 3), (2, 3)),
    "stack_0d": (lambda T, a, b: T.stack([a.sum(), b.sum()]), (2,), (3,)),
    "stack_unbind": (lambda T, a, b: T.stack(a.unbind(1), 0), (2, 3), (1,)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(CAT_STACK))
def test_cat_stack(name, dtype):
    fn, sa, sb = CAT_STACK[name]
    rng = np.random.default_rng(3)
    check(fn, [rand(rng, sa, dtype), rand(rng, sb, dtype)])
    check(fn, [rand(rng, sa, dtype), rand(rng, sb, dtype)], requires_grad=[False, True])


@FAST
@given(shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), sizes=st.lists(st.integers(0, 3), min_size=1,
                                                                                         max_size=3),
       seed=SEEDS, data=st.data())
def test_cat_random(shape, sizes, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    arrays = [rand(rng, shape[:dim % len(shape)] + (n,) + shape[dim % len(shape) + 1:]) for n in sizes]
    check(lambda T, *xs: T.cat(xs, dim), arrays, seed=seed)
    check(lambda T, *xs: T.stack(xs, dim), [rand(rng, shape) for _ in sizes], seed=seed)


# ==================================================================== indexing

def _idx(T, values, dtype=None):
    return T.tensor(values) if dtype is None else T.tensor(values, dtype=getattr(T, dtype))


GETITEM = {
    "int": lambda T, a: a[1],
    "neg_int": lambda T, a: a[-1],
    "int_int": lambda T, a: a[1, 2],
    "int_int_int": lambda T, a: a[0, -1, 1],
    "slice": lambda T, a: a[1:3],
    "slice_full": lambda T, a: a[:],
    "slice_step": lambda T, a: a[::2],
    "slice_step3": lambda T, a: a[:, 1::3],
    "slice_neg": lambda T, a: a[-2:, :-1],
    "slice_out_of_range": lambda T, a: a[1:100],
    "slice_empty": lambda T, a: a[3:1],
    "slice_step_inner": lambda T, a: a[:, ::2, 1:],
    "none": lambda T, a: a[None],
    "none_mid": lambda T, a: a[:, None, 1],
    "ellipsis": lambda T, a: a[..., 0],
    "ellipsis_none": lambda T, a: a[None, ..., 1:, None],
    "ellipsis_only": lambda T, a: a[...],
    "ellipsis_mid": lambda T, a: a[0, ..., 1],
    "two_ellipses": lambda T, a: a[..., 0, ...],
    "list": lambda T, a: a[[0, 2]],
    "list_repeat": lambda T, a: a[[1, 1, -1]],
    "list_second_dim": lambda T, a: a[:, [3, 0]],
    "two_lists": lambda T, a: a[[0, 1], [1, 2]],
    "two_lists_broadcast": lambda T, a: a[[[0], [2]], [1, 2]],
    "int_and_list": lambda T, a: a[1, [0, 1]],
    "separated_advanced": lambda T, a: a[[0, 1], :, [1, 0]],
    "ellipsis_list": lambda T, a: a[..., [0, 1]],
    "tensor_index": lambda T, a: a[_idx(T, [0, 2, -1])],
    "tensor_index_2d": lambda T, a: a[_idx(T, [[0, 1], [2, 2]])],
    "tensor_index_0d": lambda T, a: a[_idx(T, 1)],
    "int32_index": lambda T, a: a[_idx(T, [0, 2], "int32")],
    "slice_then_tensor": lambda T, a: a[1:, _idx(T, [0, 0])],
    "none_and_tensor": lambda T, a: a[None, _idx(T, [2, 0])],
    "mask_from_values": lambda T, a: a[a > 0],
    "mask_row": lambda T, a: a[_idx(T, [True, False, True])],
    "mask_2d": lambda T, a: a[_idx(T, [[True, False, True, False], [False] * 4, [True] * 4])],
    "mask_dim1": lambda T, a: a[:, _idx(T, [True, False, False, True])],
    "mask_all_false": lambda T, a: a[_idx(T, [False, False, False])],
    "bool_true": lambda T, a: a[True],
    "mask_and_int": lambda T, a: a[_idx(T, [True, False, True]), 1],
    "slice_tensor_bounds": lambda T, a: a[_idx(T, 1):_idx(T, 3)],
    "mixture": lambda T, a: a[1:, None, [0, 2], ..., ::2],
    "getitem_then_op": lambda T, a: (a[0] * a[1:2]).sum(),
}


def _getitem_input(dtype, name):
    # a 3-d input for the keys that need one
    shape = (3, 4, 2) if name in ("int_int_int", "slice_step_inner", "separated_advanced", "ellipsis_mid",
                                  "mixture") else (3, 4)
    return rand(np.random.default_rng(4), shape, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(GETITEM))
def test_getitem(name, dtype):
    check(GETITEM[name], [_getitem_input(dtype, name)])


def test_getitem_int_tensor_input():
    # indexing an integer tensor: no grad, exact values
    check(lambda T, a: a[_idx(T, [1, 0])][:, ::2], [np.arange(12).reshape(3, 4)])


# ==================================================================== losses

def _targets(rng, n, classes, ignore=False):
    t = rng.integers(0, classes, n)
    if ignore:
        t[0] = -100
    return t


LOSSES = {}
for _red in ("mean", "sum", "none"):
    LOSSES[f"mse_{_red}"] = (lambda T, x, y, r=_red: F(T).mse_loss(x, y, reduction=r), "float")
    LOSSES[f"bce_logits_{_red}"] = (
        lambda T, x, y, r=_red: F(T).binary_cross_entropy_with_logits(x, y, reduction=r), "prob")
    LOSSES[f"cross_entropy_{_red}"] = (lambda T, x, y, r=_red: F(T).cross_entropy(x, y, reduction=r), "class")
    LOSSES[f"cross_entropy_ignore_{_red}"] = (
        lambda T, x, y, r=_red: F(T).cross_entropy(x, y, reduction=r), "class_ignore")
    LOSSES[f"nll_{_red}"] = (lambda T, x, y, r=_red: F(T).nll_loss(x.log_softmax(1), y, reduction=r), "class")
LOSSES["mse_default"] = (lambda T, x, y: F(T).mse_loss(x, y), "float")
LOSSES["bce_logits_default"] = (lambda T, x, y: F(T).binary_cross_entropy_with_logits(x, y), "prob")
LOSSES["cross_entropy_default"] = (lambda T, x, y: F(T).cross_entropy(x, y), "class")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(LOSSES))
@FAST
@given(n=st.integers(1, 4), c=st.integers(1, 4), seed=SEEDS, target_grad=st.booleans())
def test_losses(name, dtype, n, c, seed, target_grad):
    fn, kind = LOSSES[name]
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, c), dtype)
    if kind == "float":
        y, rg = rand(rng, (n, c), dtype), [True, target_grad]
    elif kind == "prob":
        y, rg = rng.uniform(0, 1, (n, c)).astype(dtype), [True, target_grad]
    else:
        y, rg = _targets(rng, n, c, ignore=kind == "class_ignore" and n > 1), [True, False]
    check(fn, [x, y], requires_grad=rg, seed=seed)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_unbatched_and_large_logits(dtype, reduction):
    rng = np.random.default_rng(5)
    check(lambda T, x, y: F(T).cross_entropy(x, y, reduction=reduction), [rand(rng, (4,), dtype), np.asarray(2)],
          requires_grad=[True, False])
    big = np.asarray([[80.0, -90.0, 3.0], [-200.0, 150.0, 0.0]], dtype=dtype)
    check(lambda T, x, y: F(T).cross_entropy(x, y, reduction=reduction), [big, np.asarray([1, 2])],
          requires_grad=[True, False])
    check(lambda T, x, y: F(T).binary_cross_entropy_with_logits(x, y, reduction=reduction),
          [big, np.asarray([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]], dtype=dtype)])


def test_mse_loss_broadcasts_with_warning():
    rng = np.random.default_rng(6)
    arrays = [rand(rng, (3, 1)), rand(rng, (4,))]
    check(lambda T, x, y: F(T).mse_loss(x, y), arrays)
    messages = []
    for lib, (x, y) in zip((torch, E), leaves(arrays)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            F(lib).mse_loss(x, y)
        messages.append([(w.category, str(w.message)) for w in caught])
    assert messages[1] == messages[0] and len(messages[0]) == 1


def test_bce_logits_mixed_dtypes():
    rng = np.random.default_rng(7)
    check(lambda T, x, y: F(T).binary_cross_entropy_with_logits(x, y),
          # torch computes log_sigmoid in x's float32, so float64's tolerance would ask more than
          # float32 gives (a GPU's float32 exp differs from the CPU's in the last ulp)
          [rand(rng, (3,), "float32"), rng.uniform(0, 1, 3)], tol=TOL["float32"])


# ==================================================================== finite differences and second order

def _fixed(shape, domain="real"):
    return lambda rng: [rand(rng, shape, "float64", domain)]


GRAD_CASES = {}
for _name, (_fn, _dom) in UNARY.items():
    if _name in ("long", "bool", "to_int32", "sign", "pow0", "float", "half_back_to_float", "floor", "ceil", "trunc",
                 "round", "isnan_isinf_isfinite"):
        continue  # no gradient flows (ints), it is identically zero, or float32 spoils the differences
    GRAD_CASES[f"unary_{_name}"] = (_fn, _fixed((2, 3), _dom))
for _name, (_fn, _da, _db) in BINARY.items():
    if _name in ("eq", "ne", "lt", "le", "gt", "ge", "isclose", "isclose_tols", "logical_and", "logical_or"):
        continue
    GRAD_CASES[f"binary_{_name}"] = (
        _fn, lambda rng, da=_da, db=_db: [rand(rng, (2, 3), "float64", da), rand(rng, (3,), "float64", db)])
for _name, _fn in REDUCE.items():
    if _name in ("all", "any", "norm0"):
        continue
    for _dim, _k in ((None, False), (1, False), ((0, 2), True), (-1, True)):
        GRAD_CASES[f"reduce_{_name}_{_dim}_{_k}"] = (
            lambda T, a, fn=_fn, d=_dim, k=_k: fn(T, a, d, k), _fixed((3, 4, 5)))
for _name, _fn in SINGLE_DIM.items():
    if _name in ("min_dim_indices", "argmax", "argmin", "all_dim"):
        continue
    GRAD_CASES[f"dim_{_name}"] = (lambda T, a, fn=_fn: fn(T, a, 1, False), _fixed((3, 4, 2)))
    GRAD_CASES[f"dim_{_name}_keepdim"] = (lambda T, a, fn=_fn: fn(T, a, -1, True), _fixed((3, 4, 2)))
GRAD_CASES["index_select_gather"] = (
    lambda T, a: a.index_select(1, T.tensor([3, 0, 3, 1])).sum(0) * 2 + a.gather(0, T.tensor([[2, 0, 1, 2]])),
    _fixed((3, 4)))
GRAD_CASES["sort_topk"] = (lambda T, a: a.sort(1)[0] * 2 + a.sort(0, descending=True)[0] + a.topk(4, 1)[0],
                           _fixed((3, 4)))
GRAD_CASES["tril_triu"] = (lambda T, a: a.tril() * 2 + T.triu(a, 1) + a.tril(-1).triu(-1), _fixed((3, 4)))
for _name in ("max", "min", "prod", "amax"):
    GRAD_CASES[f"whole_{_name}"] = (WHOLE[_name], _fixed((3, 4)))
for _name, (_sa, _sb) in MATMUL_SHAPES.items():
    GRAD_CASES[f"matmul_{_name}"] = (
        lambda T, a, b: a @ b, lambda rng, sa=_sa, sb=_sb: [rand(rng, sa), rand(rng, sb)])
for _name, (_fn, _sa, _sb) in LINALG.items():
    GRAD_CASES[f"linalg_{_name}"] = (_fn, lambda rng, sa=_sa, sb=_sb: [rand(rng, sa), rand(rng, sb)])
for _name, (_fn, _shape) in SHAPE_OPS.items():
    GRAD_CASES[f"shape_{_name}"] = (_fn, _fixed(_shape))
for _name, (_fn, _sa, _sb) in CAT_STACK.items():
    GRAD_CASES[f"cat_{_name}"] = (_fn, lambda rng, sa=_sa, sb=_sb: [rand(rng, sa), rand(rng, sb)])
for _name, _fn in GETITEM.items():
    GRAD_CASES[f"getitem_{_name}"] = (_fn, lambda rng, n=_name: [_getitem_input("float64", n)])
for _name, (_fn, _kind) in LOSSES.items():
    if _kind == "float":
        _make = lambda rng: [rand(rng, (3, 4)), rand(rng, (3, 4))]  # noqa: E731
    elif _kind == "prob":
        _make = lambda rng: [rand(rng, (3, 4)), rng.uniform(0, 1, (3, 4))]  # noqa: E731
    else:
        _make = lambda rng, k=_kind: [rand(rng, (3, 4)), _targets(rng, 3, 4, ignore=k == "class_ignore")]  # noqa: E731
    GRAD_CASES[f"loss_{_name}"] = (_fn, _make)
GRAD_CASES["where_const_cond"] = (lambda T, a, b: T.where(b > 0, a * 2, a.exp()), lambda rng: [rand(rng, (3,)),
                                                                                              rand(rng, (2, 3))])
GRAD_CASES["prod_with_zero"] = (lambda T, a: (a * T.tensor([1.0, 0.0, 1.0], dtype=T.float64)).prod(),
                                _fixed((3,)))
GRAD_CASES["prod_dim_with_zero"] = (lambda T, a: (a * T.tensor([[1.0, 0.0, 1.0]], dtype=T.float64)).prod(1),
                                    _fixed((2, 3)))
GRAD_CASES["std_all_equal_free"] = (lambda T, a: a.std(0) + a.var(1), _fixed((3, 3)))
GRAD_CASES["softmax_chain"] = (lambda T, a: (a.softmax(1) * a).sum(1).log_softmax(0), _fixed((3, 4)))

@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck(name):
    fn, make = GRAD_CASES[name]
    gradcheck(fn, make(np.random.default_rng(11)))


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_second_derivatives(name):
    fn, make = GRAD_CASES[name]
    gradgradcheck(fn, make(np.random.default_rng(12)))


# ==================================================================== errors

def _a(*shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


ERRORS = {
    # shape mismatches
    "add_shapes": (lambda T, a, b: a + b, [_a(2, 3), _a(2, 4)]),
    "mul_shapes": (lambda T, a, b: a * b, [_a(3), _a(4, 2)]),
    "sub_shapes_lead": (lambda T, a, b: a - b, [_a(5, 2, 3), _a(4, 1, 3)]),
    "div_shapes": (lambda T, a, b: a / b, [_a(2), _a(3)]),
    "where_shapes": (lambda T, a, b: T.where(a > 0, a, b), [_a(2), _a(3)]),
    "pow_shapes": (lambda T, a, b: a ** b, [_a(2), _a(3)]),
    "eq_shapes": (lambda T, a, b: a == b, [_a(2), _a(3)]),
    "maximum_shapes": (lambda T, a, b: T.maximum(a, b), [_a(2), _a(3)]),
    "mm_shapes": (lambda T, a, b: a.mm(b), [_a(2, 3), _a(4, 5)]),
    # subtraction with bools, add/sub's alpha against the result dtype, rsub's signatures
    "sub_two_bools": (lambda T, a, b: a - b, [_a(2, dtype=bool), _a(2, dtype=bool)]),
    "sub_bool_tensor_int": (lambda T, a: a - 1, [_a(2, dtype=bool)]),
    "rsub_bool_tensor": (lambda T, a: 1 - a, [_a(2, dtype=bool)]),
    "sub_python_bool": (lambda T, a: a - True, [_a(2)]),
    "sub_bool_tensor_of_floats": (lambda T, a, b: T.sub(a, b), [_a(2), _a(2, dtype=bool)]),
    "sub_bool_0d_broadcast": (lambda T, a, b: b - a, [_a(dtype=bool), _a(2)]),
    "sub_inplace_bool": (lambda T, a: a.sub_(True), [_a(2)]),
    "rsub_fn_two_bools": (lambda T, a, b: T.rsub(a, b), [_a(2, dtype=bool), _a(2, dtype=bool)]),
    "rsub_fn_bool_number": (lambda T, a: T.rsub(a, 1), [_a(2, dtype=bool)]),
    "add_int_float_alpha": (lambda T, a, b: T.add(a, b, alpha=1.0), [_a(2, dtype="int64"), _a(2, dtype="int64")]),
    "sub_int_float_alpha": (lambda T, a: a.sub(1, alpha=0.5), [_a(2, dtype="int32")]),
    "add_inplace_int_float_alpha": (lambda T, a, b: a.add_(b, alpha=2.0), [_a(2, dtype="int64"), _a(2, dtype="int64")]),
    "add_int_bool_alpha": (lambda T, a, b: T.add(a, b, alpha=True), [_a(2, dtype="int64"), _a(2, dtype="int64")]),
    "add_float_bool_alpha": (lambda T, a: a.add(1.0, alpha=True), [_a(2)]),
    "rsub_int_float_alpha": (lambda T, a: T.rsub(a, 2, alpha=1.5), [_a(2, dtype="int64")]),
    "rsub_fn_number_input": (lambda T, a: T.rsub(2.0, a), [_a(2)]),
    "rsub_fn_list_other": (lambda T, a: T.rsub(a, [1, 2]), [_a(2)]),
    "rsub_list_operand": (lambda T, a: [1.0, 2.0] - a, [_a(2)]),
    "mm_1d": (lambda T, a, b: a.mm(b), [_a(3), _a(3, 5)]),
    "mm_1d_second": (lambda T, a, b: T.mm(a, b), [_a(2, 3), _a(3)]),
    "mm_dtypes": (lambda T, a, b: a.mm(b), [_a(2, 3), _a(3, 2, dtype="float64")]),
    "bmm_shapes": (lambda T, a, b: a.bmm(b), [_a(2, 3, 4), _a(2, 5, 2)]),
    "bmm_batch": (lambda T, a, b: a.bmm(b), [_a(2, 3, 4), _a(3, 4, 2)]),
    "bmm_2d": (lambda T, a, b: a.bmm(b), [_a(3, 4), _a(3, 4, 2)]),
    "dot_shapes": (lambda T, a, b: a.dot(b), [_a(3), _a(4)]),
    "dot_2d": (lambda T, a, b: T.dot(a, b), [_a(3, 1), _a(3)]),
    "dot_dtypes": (lambda T, a, b: a.dot(b), [_a(3), _a(3, dtype="float64")]),
    "mv_shapes": (lambda T, a, b: a.mv(b), [_a(2, 3), _a(4)]),
    "matmul_1d_1d": (lambda T, a, b: a @ b, [_a(3), _a(4)]),
    "matmul_2d_1d": (lambda T, a, b: a @ b, [_a(2, 3), _a(4)]),
    "matmul_1d_2d": (lambda T, a, b: a @ b, [_a(3), _a(4, 2)]),
    "matmul_2d_2d": (lambda T, a, b: a @ b, [_a(2, 3), _a(4, 2)]),
    "matmul_3d_2d": (lambda T, a, b: a @ b, [_a(2, 2, 3), _a(4, 2)]),
    "matmul_3d_3d": (lambda T, a, b: a @ b, [_a(2, 2, 3), _a(2, 4, 2)]),
    "matmul_batch": (lambda T, a, b: a @ b, [_a(2, 2, 3), _a(3, 3, 2)]),
    "matmul_0d": (lambda T, a, b: a @ b, [_a(), _a(3)]),
    "cat_shapes": (lambda T, a, b: T.cat([a, b]), [_a(2, 3), _a(2, 4)]),
    "cat_shapes_dim1": (lambda T, a, b: T.cat([a, b], 1), [_a(2, 3), _a(3, 3)]),
    "cat_ndim": (lambda T, a, b: T.cat([a, b]), [_a(2, 3), _a(3)]),
    "cat_dim": (lambda T, a, b: T.cat([a, b], 2), [_a(2, 3), _a(2, 3)]),
    "cat_empty_list": (lambda T: T.cat([]), []),
    "cat_0d": (lambda T, a: T.cat([a, a]), [_a()]),
    "stack_shapes": (lambda T, a, b: T.stack([a, b]), [_a(2, 3), _a(2, 4)]),
    "stack_dim": (lambda T, a, b: T.stack([a, b], 3), [_a(2, 3), _a(2, 3)]),
    "stack_empty": (lambda T: T.stack([]), []),
    "view_size": (lambda T, a: a.view(5), [_a(2, 3)]),
    "view_size_infer": (lambda T, a: a.view(-1, 4), [_a(2, 3)]),
    "view_two_infer": (lambda T, a: a.view(-1, -1), [_a(2, 3)]),
    "view_noncontig": (lambda T, a: a.t().view(6), [_a(2, 3)]),
    "reshape_size": (lambda T, a: a.reshape(4, 2), [_a(2, 3)]),
    "reshape_neg": (lambda T, a: a.reshape(-2, 3), [_a(2, 3)]),
    "expand_size": (lambda T, a: a.expand(2, 4), [_a(2, 3)]),
    "expand_fewer": (lambda T, a: a.expand(3), [_a(2, 3)]),
    "expand_lead_neg": (lambda T, a: a.expand(-1, 2, 3), [_a(2, 3)]),
    "mse_shapes": (lambda T, a, b: F(T).mse_loss(a, b), [_a(2, 3), _a(2, 4)]),
    "bce_shapes": (lambda T, a, b: F(T).binary_cross_entropy_with_logits(a, b), [_a(2), _a(3)]),
    "ce_target_range": (lambda T, a, b: F(T).cross_entropy(a, b), [_a(2, 3), np.asarray([0, 3])]),
    "ce_batch": (lambda T, a, b: F(T).cross_entropy(a, b), [_a(2, 3), np.asarray([0, 1, 1])]),
    "ce_target_dtype": (lambda T, a, b: F(T).nll_loss(a, b), [_a(2, 3), _a(2)]),
    # dims out of range
    "sum_dim": (lambda T, a: a.sum(2), [_a(2, 3)]),
    "sum_dim_neg": (lambda T, a: a.sum(-3), [_a(2, 3)]),
    "sum_dims_tuple": (lambda T, a: a.sum((0, 5)), [_a(2, 3)]),
    "mean_dim": (lambda T, a: a.mean(3), [_a(2, 3)]),
    "var_dim": (lambda T, a: a.var(3), [_a(2, 3)]),
    "std_dim": (lambda T, a: a.std(-4), [_a(2, 3)]),
    "max_dim": (lambda T, a: a.max(2), [_a(2, 3)]),
    "min_dim": (lambda T, a: a.min(-3), [_a(2, 3)]),
    "prod_dim": (lambda T, a: a.prod(2), [_a(2, 3)]),
    "norm_dim": (lambda T, a: a.norm(dim=2), [_a(2, 3)]),
    "softmax_dim": (lambda T, a: a.softmax(2), [_a(2, 3)]),
    "log_softmax_dim": (lambda T, a: a.log_softmax(-3), [_a(2, 3)]),
    "transpose_dim": (lambda T, a: a.transpose(0, 2), [_a(2, 3)]),
    "permute_dim": (lambda T, a: a.permute(0, 2), [_a(2, 3)]),
    "permute_len": (lambda T, a: a.permute(0), [_a(2, 3)]),
    "permute_repeat": (lambda T, a: a.permute(0, 0), [_a(2, 3)]),
    "unsqueeze_dim": (lambda T, a: a.unsqueeze(3), [_a(2, 3)]),
    "unsqueeze_neg": (lambda T, a: a.unsqueeze(-4), [_a(2, 3)]),
    "squeeze_dim": (lambda T, a: a.squeeze(2), [_a(2, 3)]),
    "flatten_dim": (lambda T, a: a.flatten(0, 2), [_a(2, 3)]),
    "flatten_order": (lambda T, a: a.flatten(1, 0), [_a(2, 3)]),
    "unbind_dim": (lambda T, a: a.unbind(2), [_a(2, 3)]),
    "narrow_dim": (lambda T, a: a.narrow(2, 0, 1), [_a(2, 3)]),
    "narrow_len": (lambda T, a: a.narrow(1, 2, 2), [_a(2, 3)]),
    "select_dim": (lambda T, a: a.select(2, 0), [_a(2, 3)]),
    "select_index": (lambda T, a: a.select(1, 3), [_a(2, 3)]),
    "select_index_neg_dim": (lambda T, a: a.select(-1, -4), [_a(2, 3)]),
    "narrow_start": (lambda T, a: a.narrow(1, 4, 0), [_a(2, 3)]),
    "narrow_neg_start": (lambda T, a: a.narrow(1, -4, 1), [_a(2, 3)]),
    "narrow_neg_length": (lambda T, a: a.narrow(0, 0, -1), [_a(2, 3)]),
    "narrow_0d": (lambda T, a: a.narrow(0, 0, 1), [_a()]),
    "split_zero": (lambda T, a: a.split(0), [_a(2, 3)]),
    "split_sizes_sum": (lambda T, a: a.split([1, 1], 1), [_a(2, 3)]),
    "split_dim": (lambda T, a: a.split(1, 2), [_a(2, 3)]),
    "chunk_zero": (lambda T, a: a.chunk(0), [_a(2, 3)]),
    "chunk_0d": (lambda T, a: a.chunk(2), [_a()]),
    "unbind_0d": (lambda T, a: a.unbind(-1), [_a()]),
    "amax_empty": (lambda T, a: a.amax(), [_a(0, 2)]),
    "amin_empty_dim": (lambda T, a: a.amin(0), [_a(0, 2)]),
    "softmax_int": (lambda T, a: a.softmax(0), [np.arange(3)]),
    "log_softmax_int_inner": (lambda T, a: a.log_softmax(0), [np.arange(6).reshape(2, 3)]),
    "isclose_dtypes": (lambda T, a, b: a.isclose(b), [_a(2), np.arange(2)]),
    "norm_fro_3_dims": (lambda T, a: a.norm(dim=(0, 1, 2)), [_a(2, 2, 2)]),
    "remainder_shapes": (lambda T, a, b: a % b, [_a(2), _a(3)]),
    "t_3d": (lambda T, a: a.t(), [_a(2, 3, 4)]),
    "size_dim": (lambda T, a: a.size(2), [_a(2, 3)]),
    # indices out of range
    "index_int": (lambda T, a: a[2], [_a(2, 3)]),
    "index_neg_int": (lambda T, a: a[-3], [_a(2, 3)]),
    "index_int_dim1": (lambda T, a: a[:, 3], [_a(2, 3)]),
    "index_list": (lambda T, a: a[[0, 2]], [_a(2, 3)]),
    "index_list_neg": (lambda T, a: a[[0, -3]], [_a(2, 3)]),
    "index_tensor_dim1": (lambda T, a: a[:, T.tensor([5])], [_a(2, 3)]),
    "index_too_many": (lambda T, a: a[0, 0, 0], [_a(2, 3)]),
    "index_0d": (lambda T, a: a[0], [_a()]),
    "index_0d_one": (lambda T, a: a[1], [_a()]),
    "index_0d_slice": (lambda T, a: a[:], [_a()]),
    "index_0d_list": (lambda T, a: a[[0]], [_a()]),
    "index_after_ellipsis": (lambda T, a: a[0, ..., 2], [_a(3, 4, 2)]),
    "index_after_none": (lambda T, a: a[None, 2], [_a(2, 3)]),
    "index_0d_tensor": (lambda T, a: a[T.tensor(5)], [_a(2, 3)]),
    "index_second_list": (lambda T, a: a[[0, 1], [1, 5]], [_a(2, 3)]),
    "index_after_mask": (lambda T, a: a[:, T.tensor([True, False, True]), [5]], [_a(2, 3, 4)]),
    "index_mask_inner_shape": (lambda T, a: a[:, T.tensor([True, False])], [_a(2, 3, 4)]),
    "index_float_tensor": (lambda T, a: a[T.tensor([0.0])], [_a(2, 3)]),
    "index_mask_shape": (lambda T, a: a[T.tensor([True, False, True])], [_a(2, 3)]),
    "index_zero_step": (lambda T, a: a[::0], [_a(2, 3)]),
    "index_neg_step": (lambda T, a: a[::-1], [_a(2, 3)]),
    # integer and bool tensors requiring grad
    "int_requires_grad": (lambda T: T.tensor([1, 2], requires_grad=True), []),
    "int_requires_grad_": (lambda T, a: a.requires_grad_(), [np.arange(3)]),
    "bool_requires_grad_": (lambda T, a: a.requires_grad_(True), [np.asarray([True])]),
    "int_zeros_requires_grad": (lambda T: T.zeros(2, dtype=T.int64, requires_grad=True), []),
    "int_set_requires_grad": (lambda T, a: setattr(a, "requires_grad", True), [np.arange(3)]),
    "float_to_long_backward": (lambda T, a: a.requires_grad_().long().sum().backward(), [_a(2)]),
    # dtypes the op refuses
    "mean_int": (lambda T, a: a.mean(), [np.arange(3)]),
    "std_int": (lambda T, a: a.std(), [np.arange(3)]),
    "norm_int": (lambda T, a: a.norm(), [np.arange(3)]),
    "neg_bool": (lambda T, a: -a, [np.asarray([True])]),
    "int_pow_neg": (lambda T, a: a ** -1, [np.arange(1, 3)]),
    "where_cond_float": (lambda T, a: T.where(a, a, a), [_a(2)]),
    "clamp_none": (lambda T, a: a.clamp(), [_a(2)]),
    "div_rounding_mode": (lambda T, a: a.div(a, rounding_mode="round"), [_a(2)]),
    "max_empty": (lambda T, a: a.max(), [_a(0)]),
    "max_dim_empty": (lambda T, a: a.max(0), [_a(0, 2)]),
    "item_many": (lambda T, a: a.item(), [_a(2)]),
    "bool_many": (lambda T, a: bool(a), [_a(2)]),
    "backward_non_scalar": (lambda T, a: (a.requires_grad_() * 2).backward(), [_a(2)]),
    "backward_no_grad": (lambda T, a: a.sum().backward(), [_a(2)]),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors(name):
    fn, arrays = ERRORS[name]
    raises_same(fn, *arrays)


@pytest.mark.parametrize("name", ["add_shapes", "mm_shapes", "cat_shapes", "index_int"])
def test_errors_with_grad(name):
    # the checks happen before any graph is recorded, whether or not inputs require grad
    fn, arrays = ERRORS[name]
    t_in, e_in = leaves(arrays)
    with pytest.raises(Exception) as t_err:
        fn(torch, *t_in)
    with pytest.raises(t_err.type) as e_err:
        fn(E, *e_in)
    assert str(e_err.value) == str(t_err.value)


# ==================================================================== grad mode and results without grad

def test_no_grad_results_have_no_graph():
    rng = np.random.default_rng(8)
    arrays = [rand(rng, (2, 3)), rand(rng, (3,))]
    t_in, e_in = leaves(arrays)
    with torch.no_grad():
        t_out = (t_in[0] * t_in[1]).sum(0).softmax(0)
    with E.no_grad():
        e_out = (e_in[0] * e_in[1]).sum(0).softmax(0)
    check_outputs(t_out, e_out, t_in, e_in)


def test_outputs_of_int_ops_do_not_require_grad():
    rng = np.random.default_rng(9)
    check(lambda T, a: (a.argmax(0), a > 0, a.long(), a.max(1).indices, (a > 0).sum()), [rand(rng, (2, 3))])


def test_backward_accumulates_over_two_calls():
    rng = np.random.default_rng(10)
    arrays = [rand(rng, (2, 3))]
    t_in, e_in = leaves(arrays)
    for (x,) in (t_in, e_in):
        (x * x).sum().backward()
        (x.exp()).sum().backward()
    np.testing.assert_allclose(e_in[0].grad.numpy(), t_in[0].grad.numpy(), rtol=1e-12)


def test_warnings_do_not_leak_as_errors():
    # std of one element: torch warns and returns nan; the engine must not raise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(lambda T, a: a.std(), [np.asarray([1.5])])
        check(lambda T, a: a.var(0, keepdim=True), [np.asarray([[1.5, 2.0]])])


def test_nan_and_inf_come_silently_as_in_torch():
    # numpy warns of log(-1), 1/0 and overflow; torch does not: a program that turns warnings
    # into errors runs on the engine as on torch
    program = ("import sys, {lib} as t\n"
               "x = t.tensor([-1.0, 0.0, 3e38], requires_grad=True)\n"
               "y = x.log() + 1 / x + x * 10\n"
               "y.sum().backward()\n"
               "print(y.tolist(), x.grad.tolist())\n")
    outs = [subprocess.run([sys.executable, "-W", "error", "-c", program.format(lib=lib)],
                           capture_output=True, text=True, timeout=120) for lib in ("torch", "remote_autograd.engine")]
    for out in outs:
        assert out.returncode == 0, out.stderr
    assert outs[1].stdout == outs[0].stdout


@pytest.mark.parametrize("form", ["tensors", "number right", "number left", "remainder number left"])
def test_floor_divide_has_no_derivative(form):
    # torch records a NotImplemented node for floor_divide (and for remainder with a number on the
    # left), and backward through it raises
    rng = np.random.default_rng(13)
    arrays = [rand(rng, (3,)), rand(rng, (3,), domain="positive")]
    fn = {"tensors": lambda T, a, b: a // b, "number right": lambda T, a, b: a // 2,
          "number left": lambda T, a, b: 2 // b, "remainder number left": lambda T, a, b: 2.5 % b}[form]
    t_out, e_out = check(fn, arrays, backward=False)
    with pytest.raises(RuntimeError) as t_err:
        t_out.sum().backward()
    with pytest.raises(RuntimeError) as e_err:
        e_out.sum().backward()
    assert str(e_err.value) == str(t_err.value)


EMPTY = {
    "sum": lambda T, a: a.sum(),
    "sum_dim": lambda T, a: a.sum(0),
    "sum_other_dim": lambda T, a: a.sum(1, keepdim=True),
    "mean": lambda T, a: a.mean(),
    "mean_dim": lambda T, a: a.mean(0),
    "var_dim": lambda T, a: a.var(0),
    "std": lambda T, a: a.std(),
    "prod": lambda T, a: a.prod(),
    "prod_dim": lambda T, a: a.prod(0),
    "norm": lambda T, a: a.norm(),
    "amax_dim": lambda T, a: a.amax(1),
    "max_dim": lambda T, a: a.max(1),
    "softmax": lambda T, a: a.softmax(1),
    "log_softmax": lambda T, a: a.log_softmax(0),
    "matmul": lambda T, a: a @ a.t(),
    "matmul_inner_zero": lambda T, a: a.t() @ a,
    "cat": lambda T, a: T.cat([a, a], 0),
    "stack": lambda T, a: T.stack([a, a], 2),
    "reshape": lambda T, a: a.reshape(0, 3, 1),
    "index_empty_list": lambda T, a: a[:, []],
    "mask": lambda T, a: a[a > 0],
    "unbind": lambda T, a: a.unbind(0),
    "expand": lambda T, a: a.expand(2, 0, 3),
    "exp_mul": lambda T, a: (a.exp() * a).sum(0),
    "mse": lambda T, a: F(T).mse_loss(a, a * 2),
}


@pytest.mark.parametrize("name", list(EMPTY))
def test_empty_tensors(name):
    # a (0, 3) input: reductions over nothing, products with nothing, gradients of shape (0, 3)
    check(EMPTY[name], [np.zeros((0, 3), dtype="float32")])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_relu_backward_passes_or_zeroes_every_gradient_bit_exactly(dtype):
    # the backward selects by bit mask: nan and inf where the input is positive pass, elsewhere
    # they become +0 (not nan, not -0), exactly as torch's threshold_backward
    x = np.array([[1.0, -1.0, 0.0, 2.0], [-0.0, 3.0, -2.0, 0.5]], dtype=dtype)
    g = np.array([[np.nan, np.nan, np.inf, -np.inf], [-1.5, -0.0, -3.0, 2.0]], dtype=dtype)
    grads = []
    for lib in (torch, E):
        xt = lib.tensor(x, requires_grad=True)
        xt.relu().backward(lib.tensor(g))
        grads.append(xt.grad.numpy())
    want, got = grads
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
