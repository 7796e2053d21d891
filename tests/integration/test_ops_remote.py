"""Every op of the engine's table, driven as a user drives it, remotely and locally on the same values.

The server runs the very engine the local side runs, so values, dtypes, shapes, grad_fn names and
gradients must be identical, bit for bit: any difference is the wire, the SDK or the server.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import remote_autograd as ra
import remote_autograd.engine as engine
from programs import operators as operator_programs  # run on the engine and remotely alike
from remote_autograd.engine.ops import OPS
from remote_helpers import running_server

# Rows no public method or function dispatches (a user cannot reach them); kept honest below.
UNREACHABLE = {"detach_copy": "detach() is its own server command (DETACH); no method dispatches the row"}


def _rng(name: str):
    return np.random.default_rng(sum(map(ord, name)))


def arr(*shape, domain="real", name="x"):
    x = _rng(name + str(shape) + domain).standard_normal(shape)
    if domain == "positive":
        x = np.abs(x) + 0.5
    elif domain == "unit":  # away from the kinks of abs, relu, clamp, sign
        x = np.sign(x) * (np.abs(x) % 0.4 + 0.05)
    return x.astype(np.float32)


def f64(*shape, domain="real", name="y"):
    return arr(*shape, domain=domain, name=name).astype(np.float64)


def ints(*values):
    return np.asarray(values, dtype=np.int64)


def F(th):  # noqa: N802  (torch.nn.functional, as users spell it)
    return th.nn.functional


def _inplace(method, *args):
    """y = x * 1 (a non-leaf, so torch allows the in-place op), then y.method(*args)."""
    def program(th, x, *rest):
        y = x * 1
        getattr(y, method)(*[r(rest) if callable(r) else r for r in args])
        return y
    return program


def _double_backward(index):
    """The gradient of x[index]**2 with create_graph: its graph holds the op's backward-of-backward."""
    def program(th, x):
        (g,) = th.autograd.grad((x[index] ** 2).sum(), x, create_graph=True)
        return g
    return program


def _setitem(key, value):
    def program(th, x, *rest):
        y = x * 1
        y[key(th, rest) if callable(key) else key] = value(th, rest) if callable(value) else value
        return y
    return program


A23, B23 = arr(2, 3, name="a"), arr(2, 3, name="b")
P23 = arr(2, 3, domain="positive", name="p")

# case name ("op" or "op:variant") -> (program(th, *inputs), inputs); float inputs require grad
CASES = {
    "add": (lambda th, a, b: a + b, [A23, B23]),
    "add:alpha_broadcast": (lambda th, a, b: a.add(b, alpha=2), [A23, arr(3, name="b")]),
    "add:scalar_int_tensor": (lambda th, a, i: a + i + 1, [A23, ints(1, 2, 3)]),
    "sub": (lambda th, a, b: a - b, [A23, B23]),
    "sub:alpha": (lambda th, a, b: th.sub(a, b, alpha=3), [A23, B23]),
    "rsub": (lambda th, a: 2 - a, [A23]),
    "rsub:fn_alpha": (lambda th, a: th.rsub(a, 1.5, alpha=2), [A23]),
    "rsub_tensor": (lambda th, a, b: th.rsub(a, b), [A23, B23]),
    "rsub_tensor:alpha_broadcast": (lambda th, a, b: th.rsub(a, b, alpha=-2), [A23, arr(3, name="b")]),
    "mul": (lambda th, a, b: a * b, [A23, B23]),
    "mul:double_float": (lambda th, a, b: a * b, [A23, f64(2, 3)]),
    "div": (lambda th, a, b: a / b, [A23, P23]),
    "reciprocal:rtruediv": (lambda th, a: 1.5 / a, [P23]),
    "div:floor_int": (lambda th, i: i // 2, [ints(5, -3, 7)]),
    "reciprocal": (lambda th, a: a.reciprocal(), [P23]),
    "neg": (lambda th, a: -a, [A23]),
    "pow": (lambda th, a: a**2 + a.pow(0.5), [P23]),
    "pow_tensor": (lambda th, a, b: a**b, [P23, B23]),
    "pow_scalar_base": (lambda th, a: 2**a, [A23]),
    "where": (lambda th, a, b: th.where(a > 0, a, b), [A23, B23]),
    "where:method_scalar": (lambda th, a: a.where(a > 0, 0.0), [A23]),
    "abs": (lambda th, a: a.abs() + abs(a), [arr(2, 3, domain="unit")]),
    "sign": (lambda th, a: a.sign(), [arr(2, 3, domain="unit")]),
    "exp": (lambda th, a: th.exp(a), [A23]),
    "log": (lambda th, a: a.log(), [P23]),
    "sqrt": (lambda th, a: a.sqrt(), [P23]),
    "sin": (lambda th, a: a.sin(), [A23]),
    "expm1": (lambda th, a: a.expm1(), [A23]),
    "flip": (lambda th, a: (a.flip(0), a.flip([0, 1])), [A23]),
    "tril": (lambda th, a: (a.tril(), th.tril(a, -1)), [A23]),
    "index_select": (lambda th, a, i: (a.index_select(1, i), th.index_select(a, 0, th.tensor([1, 1]))),
                     [A23, ints(2, 0, 2)]),
    "gather": (lambda th, a: a.gather(1, th.tensor([[2, 0], [1, 1]])), [A23]),
    "sort": (lambda th, a: tuple(a.sort(1)) + tuple(a.sort(0, descending=True)), [A23]),
    "sort_stable": (lambda th, a: tuple(th.sort(a, stable=True)), [A23]),
    "topk": (lambda th, a: tuple(a.topk(2)) + tuple(a.topk(1, 0, largest=False)), [A23]),
    "logsumexp": (lambda th, a: (a.logsumexp(1), th.logsumexp(a, (0, 1), keepdim=True)), [A23]),
    "repeat": (lambda th, a: (a.repeat(2, 1), a.repeat(1, 2, 3), a.repeat((0, 1))), [A23]),
    "index_select_backward": (lambda th, x: th.autograd.grad(x.index_select(1, th.tensor([0, 0])).pow(2).sum(), x,
                                                             create_graph=True)[0], [A23]),
    "gather_backward": (lambda th, x: th.autograd.grad(x.gather(0, th.tensor([[1, 0, 1]])).pow(2).sum(), x,
                                                       create_graph=True)[0], [A23]),
    "triu": (lambda th, a: a.triu(1), [A23]),
    "cumsum": (lambda th, a: (a.cumsum(1), th.cumsum(a, 0, dtype=th.float64)), [A23]),
    "masked_fill": (lambda th, a: a.masked_fill(a > 0.2, -2.5), [A23]),
    "masked_fill_tensor": (lambda th, a: a.masked_fill(a < 0, th.tensor(4.0)), [A23]),
    "silu": (lambda th, a: th.nn.functional.silu(a), [A23]),
    "softplus": (lambda th, a: (th.nn.functional.softplus(a), th.nn.functional.softplus(a * 9, 2, 5)), [A23]),
    "leaky_relu": (lambda th, a: th.nn.functional.leaky_relu(a, 0.2), [A23]),
    "elu": (lambda th, a: th.nn.functional.elu(a, alpha=0.5), [A23]),
    "erf": (lambda th, a, i: (a.erf(), th.erf(i)), [A23, ints(-1, 0, 2)]),
    "gelu": (lambda th, a: (F(th).gelu(a), F(th).gelu(a, approximate="tanh")), [A23]),
    "layer_norm": (lambda th, x, w, b: (F(th).layer_norm(x, (3,), w, b), F(th).layer_norm(x, (2, 3), eps=1e-3)),
                   [arr(2, 2, 3, name="x"), arr(3, name="w"), arr(3, name="b")]),
    "embedding": (lambda th, w, i: (F(th).embedding(i, w), F(th).embedding(i, w, padding_idx=2)),
                  [arr(5, 3, name="w"), np.array([[1, 2], [4, 2]])]),
    "embedding_backward": (lambda th, w: th.autograd.grad(F(th).embedding(th.tensor([1, 1, 3]), w, padding_idx=3)
                                                          .pow(3).sum(), w, create_graph=True)[0], [arr(5, 3)]),
    "cumprod": (lambda th, a, z: (a.cumprod(1), th.cumprod(z, 0, dtype=th.float64)),
                [A23, np.array([[1.5, 0.0], [2.0, -1.0], [0.0, 3.0]], dtype=np.float32)]),
    "repeat:tile": (lambda th, a: (a.tile(2), th.tile(a, (2, 1, 1))), [A23]),
    "roll": (lambda th, a: (a.roll(1), th.roll(a, (1, -1), (0, 1))), [A23]),
    "constant_pad_nd": (lambda th, a: (F(th).pad(a, (1, 2)), F(th).pad(a, (-1, 1, 1, 0), value=2.5)), [A23]),
    "layer_norm_backward": (lambda th, x, w: th.autograd.grad(F(th).layer_norm(x, (3,), w).pow(3).sum(), (x, w),
                                                              create_graph=True), [A23, arr(3, name="w")]),
    "gelu_backward": (lambda th, x: th.autograd.grad(F(th).gelu(x, approximate="tanh").pow(2).sum(), x,
                                                     create_graph=True)[0], [A23]),
    "abs:l1_loss": (lambda th, a, b: (th.nn.functional.l1_loss(a, b), th.nn.functional.l1_loss(a, b, reduction="none")),
                    [A23, B23]),
    "log1p": (lambda th, p: th.log1p(p), [P23]),
    "log2": (lambda th, p: p.log2(), [P23]),
    "log10": (lambda th, p: th.log10(p), [P23]),
    "rsqrt": (lambda th, p: p.rsqrt(), [P23]),
    "tan": (lambda th, u: th.tan(u), [arr(2, 3, domain="unit")]),
    "sinh": (lambda th, a: a.sinh(), [A23]),
    "cosh": (lambda th, a: th.cosh(a), [A23]),
    "asin": (lambda th, u: u.arcsin(), [arr(2, 3, domain="unit")]),
    "acos": (lambda th, u: th.acos(u), [arr(2, 3, domain="unit")]),
    "atan": (lambda th, a: a.atan(), [A23]),
    "floor": (lambda th, a, i: ((a * 3).floor(), i.floor()), [A23, ints(7, -7, 6)]),
    "ceil": (lambda th, a: th.ceil(a * 3), [A23]),
    "trunc": (lambda th, a: (a * 3).trunc(), [A23]),
    "round": (lambda th, a: th.round(a * 3), [A23]),
    "frac": (lambda th, a: (a * 3).frac(), [A23]),
    "isnan": (lambda th, a: a.log().isnan(), [A23]),
    "isinf": (lambda th, a: th.isinf(a / 0), [A23]),
    "isfinite": (lambda th, a: a.log().isfinite(), [A23]),
    "cos": (lambda th, a: th.cos(a), [A23]),
    "tanh": (lambda th, a: F(th).tanh(a), [A23]),
    "sigmoid": (lambda th, a: th.sigmoid(a), [A23]),
    "relu": (lambda th, a: F(th).relu(a), [arr(2, 3, domain="unit")]),
    "clamp": (lambda th, a: a.clamp(-0.2, 0.2), [arr(2, 3, domain="unit")]),
    "clamp:min_only": (lambda th, a: a.clamp(min=0.1), [arr(2, 3, domain="unit")]),
    "eq": (lambda th, a, b: (a == b, a.eq(a * 1), th.eq(a, 0.5)), [A23, B23]),
    "ne": (lambda th, a, b: a != b, [A23, B23]),
    "lt": (lambda th, a, b: a < b, [A23, B23]),
    "le": (lambda th, a: a <= 0, [A23]),
    "gt": (lambda th, a: a > 0, [A23]),
    "ge": (lambda th, a, b: a.ge(b), [A23, B23]),
    "logical_not": (lambda th, a: ~(a > 0), [A23]),
    "logical_and": (lambda th, a, b: (a > 0).logical_and(b > 0), [A23, B23]),
    "logical_or": (lambda th, a, b: th.logical_or(a > 0, b > 0), [A23, B23]),
    "bitwise_and": (lambda th, a, b: (a > 0) & (b > 0), [A23, B23]),
    "bitwise_or": (lambda th, a, b: (a > 0) | (b > 0), [A23, B23]),
    "isclose": (lambda th, a, b: (a.isclose(b), a.allclose(a * 1), th.equal(a, b)), [A23, B23]),
    "all": (lambda th, a: ((a > -10).all(), (a > 0).all(1)), [A23]),
    "any": (lambda th, a: ((a > 0).any(), (a > 0).any(0, keepdim=True)), [A23]),
    "argmax": (lambda th, a: (a.argmax(), a.argmax(1)), [A23]),
    "argmin": (lambda th, a: th.argmin(a, 0, keepdim=True), [A23]),
    "sum": (lambda th, a: a.sum(), [A23]),
    "sum_dim": (lambda th, a: (a.sum(1, keepdim=True), a.sum((0, 1))), [A23]),
    "sum:int_dtype": (lambda th, i: i.sum(), [ints(1, 2, 3)]),
    "mean": (lambda th, a: a.mean(), [A23]),
    "mean_dim": (lambda th, a: a.mean(0), [A23]),
    "var": (lambda th, a: a.var(1), [A23]),
    "std": (lambda th, a: (a.std(), a.std(0, unbiased=False)), [A23]),
    "max": (lambda th, a: a.max(), [A23]),
    "min": (lambda th, a: a.min(), [A23]),
    "max_dim": (lambda th, a: tuple(a.max(1)), [A23]),
    "min_dim": (lambda th, a: tuple(a.min(0, keepdim=True)), [A23]),
    "maximum": (lambda th, a, b: a.maximum(b), [A23, B23]),
    "minimum": (lambda th, a, b: th.minimum(a, b), [A23, B23]),
    "prod": (lambda th, a: a.prod(), [A23]),
    "prod_dim": (lambda th, a: a.prod(1), [A23]),
    "norm": (lambda th, a: (a.norm(), a.norm(1, dim=1)), [A23]),
    "mm": (lambda th, a, b: a @ b, [A23, arr(3, 4, name="m")]),
    "mm:method": (lambda th, a, b: a.mm(b.t()), [A23, B23]),
    "bmm": (lambda th, a, b: a @ b, [arr(2, 2, 3, name="a"), arr(2, 3, 4, name="b")]),
    "bmm:broadcast_batch": (lambda th, a, b: th.matmul(a, b), [arr(2, 1, 2, 3, name="a"), arr(3, 3, 2, name="b")]),
    # a vector that requires grad would fold into an mv (torch's should_fold); a constant one does not
    "bmm:vector_batch": (lambda th, a, b: a.detach() @ b, [arr(3, name="a"), arr(2, 3, 4, name="b")]),
    "dot": (lambda th, a, b: a @ b, [arr(3, name="a"), arr(3, name="b")]),
    "mv": (lambda th, a, b: a @ b, [A23, arr(3, name="v")]),
    "_squeeze_matmul": (lambda th, a, b: a @ b, [arr(2, name="a"), A23]),
    "_unsafe_view": (lambda th, a, b, c: (a @ b, c.t().reshape(6)),
                     [arr(2, 2, 3, name="a"), arr(3, 4, name="b"), A23]),
    "t": (lambda th, a: a.t(), [A23]),
    "transpose": (lambda th, a: (a.transpose(0, 2), a.mT), [arr(2, 3, 4)]),
    "permute": (lambda th, a: (a.permute(2, 0, 1), a.T), [arr(2, 3, 4)]),
    "view": (lambda th, a: (a.view(3, 2), a.reshape(-1), a.flatten(), a[...]), [A23]),
    "squeeze": (lambda th, a: a.squeeze(), [arr(1, 3, 1)]),
    "squeeze_dim": (lambda th, a: a.squeeze(0), [arr(1, 3, 1)]),
    "squeeze_dims": (lambda th, a: a.squeeze((0, 2)), [arr(1, 3, 1)]),
    "unsqueeze": (lambda th, a: a.unsqueeze(1), [A23]),
    "expand": (lambda th, a: (a.expand(2, 3), a.expand_as(th.zeros(4, 3))), [arr(1, 3)]),
    "clone": (lambda th, a: a.clone(), [A23]),
    "to_dtype": (lambda th, a: (a.double(), a.to(th.float16), a.long(), a.int(), a.bool(), a.type(th.float64)),
                 [A23]),
    "cat": (lambda th, a, b: (th.cat([a, b]), th.cat((a, b), dim=1)), [A23, B23]),
    "stack": (lambda th, a, b: th.stack([a, b], 1), [A23, B23]),
    "unbind": (lambda th, a: a.unbind(1), [A23]),
    "unbind:iteration": (lambda th, a: [row * 2 for row in a], [A23]),
    "select": (lambda th, a: (a[1], a[:, -1], a.select(1, 0)), [A23]),
    "slice": (lambda th, a: (a[:, 1:], a[::2], a[0:1, ::2]), [arr(3, 4)]),
    "slice:narrow": (lambda th, a: a.narrow(1, 1, 2), [A23]),
    "split": (lambda th, a: (a.chunk(2, 1), a.split(1, 1)), [A23]),
    "split_with_sizes": (lambda th, a: a.split([1, 2], 1), [A23]),
    "_reshape_alias": (lambda th, a, b: (a.t().reshape(3, 2, 1), b.expand(2, 3).reshape(2, 3, 1)),
                       [A23, arr(1, 3)]),
    "alias": (lambda th, a: (a[...], a[:, :]), [A23]),
    "amax": (lambda th, a: (a.amax(), a.amax(1, keepdim=True)), [A23]),
    "amin": (lambda th, a: th.amin(a, 0), [A23]),
    "div_mode": (lambda th, a, b: (a.div(b, rounding_mode=None), a.div(b, rounding_mode="floor")), [A23, P23]),
    "floor_divide": (lambda th, i, j: i // j, [ints(7, -7, 6), ints(2, 3, -4)]),
    "floor_divide_scalar": (lambda th, i: th.floor_divide(i, 3), [ints(7, -7, 6)]),
    "remainder": (lambda th, a, b: a % b, [A23, P23]),
    "remainder_scalar": (lambda th, a: a % 1.5, [A23]),
    "rfloor_divide_scalar": (lambda th, i: 17 // i, [ints(7, -7, 6)]),
    "rremainder_scalar": (lambda th, i: (7 % i, 2.5 % i), [ints(7, -7, 6)]),
    "leaky_relu_backward": (lambda th, x: th.autograd.grad(th.nn.functional.leaky_relu(x, 0.2).pow(2).sum(), x,
                                                           create_graph=True)[0], [A23]),
    "elu_backward": (lambda th, x: th.autograd.grad(th.nn.functional.elu(x).pow(2).sum(), x, create_graph=True)[0],
                     [A23]),
    "softplus_backward": (lambda th, x: th.autograd.grad(th.nn.functional.softplus(x).pow(2).sum(), x,
                                                         create_graph=True)[0], [A23]),
    "threshold_backward": (lambda th, x: th.autograd.grad((x.relu() ** 2).sum(), x, create_graph=True)[0],
                           [arr(2, 3, domain="unit")]),
    "select_backward": (_double_backward(1), [A23]),
    "slice_backward": (_double_backward(slice(1, None)), [A23]),
    "index": (lambda th, a, i: (a[i], a[a > 0], a[[0, 1], [2, 0]], a[None, 0]), [A23, ints(1, 0, 1)]),
    "index_backward": (_double_backward([0, 0, 1]), [A23]),
    "copy_slices": (_setitem((0, slice(1, None)), lambda th, r: r[0][1, 1:]), [A23, B23]),
    "copy_slices:scalar": (_setitem(1, 0.5), [A23]),
    "index_put": (_setitem(lambda th, r: th.tensor([0, 1]), lambda th, r: r[0][0]), [A23, B23]),
    "index_put:mask": (_setitem(lambda th, r: r[0] > 0, 0.0), [A23, B23]),
    "zero_": (_inplace("zero_"), [A23]),
    "fill_": (_inplace("fill_", 2.5), [A23]),
    "fill_tensor": (_setitem(Ellipsis, lambda th, r: r[0].sum()), [A23, B23]),
    "copy_": (_inplace("copy_", lambda r: r[0]), [A23, B23]),
    "add:inplace": (_inplace("add_", lambda r: r[0]), [A23, B23]),
    "mul:inplace": (_inplace("mul_", 3), [A23]),
    "sigmoid:inplace": (_inplace("sigmoid_"), [A23]),
    "clamp:inplace": (_inplace("clamp_", -0.1, 0.1), [arr(2, 3, domain="unit")]),
    "softmax": (lambda th, a: (a.softmax(1), F(th).softmax(a, dim=0)), [A23]),
    "log_softmax": (lambda th, a: F(th).log_softmax(a, dim=1), [A23]),
    "mse_loss": (lambda th, a, b: (F(th).mse_loss(a, b), F(th).mse_loss(a, b, reduction="sum"),
                                  F(th).mse_loss(a, b, reduction="none")), [A23, B23]),
    "binary_cross_entropy_with_logits": (
        lambda th, a, b: F(th).binary_cross_entropy_with_logits(a, b.sigmoid().detach()), [A23, B23]),
    "nll_loss": (lambda th, a, y: (F(th).nll_loss(a.log_softmax(1), y), F(th).cross_entropy(a, y)),
                 [arr(3, 4), ints(0, 3, 1)]),
    "nll_loss:cross_entropy_1d": (lambda th, a, y: F(th).cross_entropy(a, y, reduction="sum"),
                                  [arr(4), np.asarray(2, dtype=np.int64)]),
    "nll_loss:weight": (lambda th, a, y, w: F(th).cross_entropy(a, y, weight=w.detach()),
                        [arr(3, 4), ints(0, 3, 1), arr(4, domain="positive", name="w")]),
    "nll_loss2d": (lambda th, a, y: F(th).cross_entropy(a, y, reduction="none"),
                   [arr(2, 3, 1, 2), ints(0, 2, 1, 1).reshape(2, 1, 2)]),
    "nonzero": (lambda th, a: (th.where(a > 0), (a > 0).nonzero(), th.nonzero(a, as_tuple=True)), [A23]),
    "clamp_tensor": (lambda th, a, lo, hi: (a.clamp(lo, hi), th.clamp(a, min=lo)), [A23, arr(3, name="lo"),
                                                                                   arr(2, 1, name="hi")]),
    "clamp_tensor:inplace": (lambda th, a, lo: (a * 1).clamp_(max=lo), [A23, arr(3, name="lo")]),
    "clamp_min": (lambda th, a: (a.clamp_min(0.1), (a * 1).clamp_min_(-0.1)), [A23]),
    "clamp_max": (lambda th, a: th.clamp_max(a, 0.1), [A23]),
    "clamp_min_tensor": (lambda th, a, b: a.clamp_min(b), [A23, B23]),
    "clamp_max_tensor": (lambda th, a, b: (a * 1).clamp_max_(b[0]), [A23, B23]),
    "round_decimals": (lambda th, a: (a.round(decimals=2), (a * 10).round_(decimals=-1)), [A23]),
    "leaky_relu_": (lambda th, a: F(th).leaky_relu(a * 1, 0.1, inplace=True), [A23]),
    "elu_": (lambda th, a: F(th).elu(a * 1, inplace=True), [A23]),
    # torch's C++ composites' Scalar overloads: cross_entropy with label smoothing and probabilities
    "mul_scalar": (lambda th, a, y: F(th).cross_entropy(a, y, label_smoothing=0.1), [arr(3, 4), ints(0, 3, 1)]),
    "div_scalar": (lambda th, a, p: F(th).cross_entropy(a, p.softmax(1)), [arr(3, 4), arr(3, 4, name="p")]),
    "add_scalar": (lambda th, a, p: F(th).cross_entropy(a, p.softmax(1), label_smoothing=0.1, reduction="sum"),
                   [arr(3, 4), arr(3, 4, name="p")]),
    "mm:linear": (lambda th, x, w: F(th).linear(x, w), [A23, arr(4, 3, name="w")]),
    "addmm": (lambda th, x, w, b: F(th).linear(x, w, b), [A23, arr(4, 3, name="w"), arr(4, name="b")]),
    "addmm:linear_3d": (lambda th, x, w, b: F(th).linear(x, w, b),
                        [arr(2, 2, 3, name="x"), arr(4, 3, name="w"), arr(4, name="b")]),
}


def run(th, program, arrays):
    """The user's side: upload the values as leaves (floats require grad), run the program."""
    inputs = [th.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    return inputs, program(th, *inputs)


def flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in flat(o)]
    return [out]


def is_tensor(x) -> bool:
    return hasattr(x, "_dispatch") and hasattr(x, "grad_fn")


def assert_same_tensor(r, e, where: str) -> None:
    """A remote tensor and the engine's (or another remote one): identical in everything a user sees."""
    assert is_tensor(r) and hasattr(r, "_session"), f"{where}: remote gave {type(r).__name__}, not a remote tensor"
    assert repr(r.dtype) == repr(e.dtype), f"{where}: dtype remote {r.dtype} != expected {e.dtype}"
    assert tuple(r.shape) == tuple(e.shape), f"{where}: shape remote {tuple(r.shape)} != expected {tuple(e.shape)}"
    assert r.requires_grad == e.requires_grad, f"{where}: requires_grad remote {r.requires_grad}"
    assert r.is_leaf == e.is_leaf, f"{where}: is_leaf remote {r.is_leaf}"
    r_fn = None if r.grad_fn is None else r.grad_fn.name()
    e_fn = None if e.grad_fn is None else e.grad_fn.name()
    assert r_fn == e_fn, f"{where}: grad_fn remote {r_fn} != expected {e_fn}"
    assert r.is_contiguous() == e.is_contiguous(), f"{where}: is_contiguous remote {r.is_contiguous()}"
    np_dtype = np.dtype(e.dtype.name)
    got = np.asarray(r.tolist(), dtype=np_dtype).reshape(tuple(e.shape))
    want = np.asarray(e.tolist(), dtype=np_dtype).reshape(tuple(e.shape))
    np.testing.assert_array_equal(got, want, err_msg=where)
    assert repr(r) == repr(e), f"{where}: repr\n{r!r}\n!=\n{e!r}"


def assert_same_result(r_out, e_out, where: str = "output") -> None:
    r_flat, e_flat = flat(r_out), flat(e_out)
    assert len(r_flat) == len(e_flat), f"{where}: {len(r_flat)} results remotely, {len(e_flat)} expected"
    for k, (r, e) in enumerate(zip(r_flat, e_flat, strict=True)):
        if is_tensor(e):
            assert_same_tensor(r, e, f"{where}[{k}]")
        else:
            assert type(r) is type(e) and r == e, f"{where}[{k}]: remote {r!r} != expected {e!r}"


def backward_both(r_session, r_out, e_out, seed: str):
    """Backward from every differentiable output with the same upstream gradients on both sides."""
    pairs = [(r, e) for r, e in zip(flat(r_out), flat(e_out), strict=True)
             if isinstance(e, engine.Tensor) and e.requires_grad]
    if not pairs:
        return False
    rng = _rng(seed)
    ws = [rng.standard_normal(tuple(e.shape)).astype(e.detach().numpy().dtype) for _, e in pairs]
    r_session.autograd.backward([r for r, _ in pairs], [r_session.tensor(w) for w in ws])
    engine.autograd.backward([e for _, e in pairs], [engine.tensor(w) for w in ws])
    return True


def graph_names(out, depth: int = 4) -> set:
    """Node names reachable from the results' grad_fns (what a user sees walking next_functions)."""
    names, frontier = set(), [x.grad_fn for x in flat(out) if hasattr(x, "grad_fn") and x.grad_fn is not None]
    seen = set()
    for _ in range(depth):
        nxt = []
        for node in frontier:
            if node is None or node in seen:
                continue
            seen.add(node)
            names.add(node.name())
            nxt.extend(n for n, _ in node.next_functions)
        frontier = nxt
    return names


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", sorted(CASES))
def test_op_remote_matches_engine(t, case):
    program, arrays = CASES[case]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert_same_result(r_out, e_out)
    # the case really exercises its op: the op's node is in the graph a user can walk
    op = OPS[case.split(":")[0]]
    if op.node is not None and any(is_tensor(x) and x.requires_grad for x in flat(e_out)):
        names = graph_names(r_out)
        assert op.node in names, f"{case}: the results' graph {sorted(names)} does not hold {op.node}"
    if backward_both(t, r_out, e_out, case):
        for k, (r, e) in enumerate(zip(r_in, e_in, strict=True)):
            if e.grad is None:
                assert r.grad is None, f"{case}: input {k} has a grad remotely only"
            else:
                assert r.grad is not None, f"{case}: input {k} has no grad remotely"
                assert_same_tensor(r.grad, e.grad, f"{case}: input {k} grad")


def test_every_op_of_the_table_is_exercised():
    covered = {case.split(":")[0] for case in CASES}
    missing = sorted(set(OPS) - covered - set(UNREACHABLE))
    assert not missing, f"ops of the table with no remote case: {missing}"
    assert not set(UNREACHABLE) & covered
    # an op marked unreachable must really have no public entry point
    from remote_autograd.engine import functional, methods
    public = inspect.getsource(methods) + inspect.getsource(functional)
    for name in UNREACHABLE:
        assert f'"{name}"' not in public, f"{name} is dispatched by a public method now: give it a case"


# ---------------------------------------------------------------- autograd beyond one op

def test_create_graph_double_backward(t):
    def program(th, x):
        y = (x**3).sum()
        (g,) = th.autograd.grad(y, x, create_graph=True)  # 3x^2, itself differentiable
        (g * g).sum().backward()  # d/dx sum(9x^4) = 36x^3
        return g, x.grad

    arrays = [f64(4)]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert_same_result(r_out, e_out)
    assert r_out[0].requires_grad and r_out[0].grad_fn is not None
    np.testing.assert_allclose(r_out[1].tolist(), 36 * arrays[0] ** 3, rtol=1e-12)


def test_backward_create_graph_warns_at_the_users_line(session_mode):
    # a fresh server: the engine warns once per process, as torch does
    with running_server() as server, ra.connect(server.address) as t:
        x = t.tensor([1.0, 2.0], requires_grad=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno + 1
            (x**2).sum().backward(create_graph=True)
        assert [str(w.message)[:60] for w in caught] == [engine.errors.CREATE_GRAPH_CYCLE[:60]]
        assert caught[0].category is UserWarning
        assert (caught[0].filename, caught[0].lineno) == (__file__, line)  # relayed to the user's own line
        assert x.grad.requires_grad and x.grad.grad_fn is not None
        assert x.grad.tolist() == [2.0, 4.0]


def test_numbers_on_either_side_of_an_operator_as_torch(t):
    # inferred on the client, or raised by it, as the engine computes and raises on the server
    import torch
    operator_programs.assert_same(t, torch)
    operator_programs.assert_same_refusals(t, torch)
    # what the client knows without the values raises at the user's line, lazy or not
    queued = t.wire.queued
    with pytest.raises(RuntimeError, match="negative integer powers"):
        t.tensor([1, 2]) ** -1
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        True // t.tensor([True, False])
    with pytest.raises(NotImplementedError, match="bitwise_and_cpu"):
        t.tensor([1.0]) & 1
    assert t.wire.queued <= queued + 3  # the tensors were queued; the failing ops never were


def test_new_tensors_like_a_tensor_as_torch(t):
    import torch
    assert operator_programs.new_tensors(t) == operator_programs.new_tensors(torch)


def test_flip_cumsum_masked_fill_as_torch(t):
    import torch
    assert operator_programs.flips_cumsums_masks(t) == operator_programs.flips_cumsums_masks(torch)


def test_tril_triu_dropout_as_torch(t):
    import torch
    assert operator_programs.triangles_and_dropout(t) == operator_programs.triangles_and_dropout(torch)


def test_index_select_gather_as_torch(t):
    import torch
    assert operator_programs.index_selects_and_gathers(t) == operator_programs.index_selects_and_gathers(torch)


def test_sort_topk_as_torch(t):
    import torch
    assert operator_programs.sorts_and_topks(t) == operator_programs.sorts_and_topks(torch)


def test_nan_and_inf_come_silently_as_in_torch(t):
    # numpy warns of log(-1), 1/0 and overflow; torch does not, and neither may the server's relay
    import torch

    def program(lib):
        x = lib.tensor([-1.0, 0.0, 3e38], requires_grad=True)
        y = x.log() + 1 / x + x * 10 + (x * 0).log() * 0
        y.sum().backward()
        return y.tolist(), x.grad.tolist()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = program(t)
    assert [str(w.message) for w in caught] == []
    assert str(got) == str(program(torch))


def test_non_leaf_grad_warns_at_the_users_line(t):
    y = t.ones(2, requires_grad=True) * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        assert y.grad is None
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, line)]
    assert "not a leaf Tensor" in str(caught[0].message)
    y.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert y.grad is None  # retained: no warning


def test_autograd_grad_variants(t):
    def program(th, x, w, u):
        y = (x * w).sum()
        gx, gu = th.autograd.grad(y, (x, u), retain_graph=True, allow_unused=True)
        (gw,) = th.autograd.grad([y * 2], [w], grad_outputs=[th.tensor(3.0)])
        z = x * w
        (gz,) = th.autograd.grad(z, x, grad_outputs=th.ones_like(z))
        return gx, gu is None, gw, gz

    arrays = [arr(3, name="x"), arr(3, name="w"), arr(2, name="u")]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert_same_result(r_out, e_out)
    assert r_out[1] is True
    assert all(x.grad is None for x in r_in)  # autograd.grad accumulates nothing


def test_grads_accumulate_and_can_be_reset(t):
    x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 5.0]
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    x.grad = None
    assert x.grad is None
    x.grad = t.ones(3)
    (x * 1).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_retain_grad_and_backward_inputs(t):
    def program(th, x, w):
        y = x * w
        y.retain_grad()
        z = (y**2).sum()
        z.backward(inputs=[w], retain_graph=True)
        first = (x.grad, w.grad.clone())
        z.backward()
        return first, y.grad, y.retains_grad if hasattr(y, "retains_grad") else True

    arrays = [arr(3, name="x"), arr(3, name="w")]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert r_out[0][0] is None and e_out[0][0] is None
    assert_same_result(r_out[0][1:] + r_out[1:2], e_out[0][1:] + e_out[1:2])
    assert_same_result([r.grad for r in r_in], [e.grad for e in e_in])


# ---------------------------------------------------------------- dtypes and factories

def test_dtype_conversions_and_promotion(t):
    def program(th, x, i):
        return (x.double(), x.half(), x.long(), x.to(th.int32), x.bool(), x.type(th.float64), x.type_as(i),
                i + 0.5, i * 2, i / 2, i.float().requires_grad, x.to(x.double()), (x > 0).sum(), x.type(),
                x.float() is x, x.is_floating_point(), i.is_floating_point())

    arrays = [arr(2, 3), ints(1, 2, 3)]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert_same_result(r_out, e_out)
    assert r_out[0].grad_fn.name() == "ToCopyBackward0"
    assert repr(r_out[7].dtype) == "torch.float32" and repr(r_out[9].dtype) == "torch.float32"


FACTORY_CALLS = {
    "zeros": lambda th: th.zeros(2, 3),
    "zeros_dtype_grad": lambda th: th.zeros((2, 3), dtype=th.float64, requires_grad=True),
    "ones_size": lambda th: th.ones(th.Size([3])),
    "ones_int": lambda th: th.ones(2, dtype=th.int64),
    "full": lambda th: th.full((2, 2), 7),
    "full_float": lambda th: th.full((2,), 1.5, requires_grad=True),
    "full_bool": lambda th: th.full((2,), True),
    "arange": lambda th: th.arange(5),
    "arange_float": lambda th: th.arange(0, 1, 0.25),
    "arange_dtype_grad": lambda th: th.arange(-2, 4, dtype=th.float32, requires_grad=True),
    "linspace": lambda th: th.linspace(0, 1, 5),
    "linspace_double": lambda th: th.linspace(-1, 1, steps=3, dtype=th.float64, requires_grad=True),
    "eye": lambda th: th.eye(3),
    "eye_rect": lambda th: th.eye(2, 3, dtype=th.int64),
    "tensor_nested": lambda th: th.tensor([[1, 2], [3, 4]]),
    "tensor_float": lambda th: th.tensor([1.0, 2.5], requires_grad=True),
    "tensor_dtype": lambda th: th.tensor([1, 2], dtype=th.float16),
    "tensor_bool": lambda th: th.tensor([True, False]),
    "tensor_scalar": lambda th: th.tensor(3.5),
    "tensor_mixed": lambda th: th.tensor([1, 2.5, True]),
    "legacy_Tensor": lambda th: th.Tensor([1, 2, 3]),
    "zeros_like": lambda th: th.zeros_like(th.ones(2, dtype=th.float64)),
    "ones_like_grad": lambda th: th.ones_like(th.zeros(2, 2), requires_grad=True),
    "full_like": lambda th: th.full_like(th.zeros(3, dtype=th.int64), 4),
}


@pytest.mark.parametrize("name", sorted(FACTORY_CALLS))
def test_factory_matches_engine(t, name):
    assert_same_result(FACTORY_CALLS[name](t), FACTORY_CALLS[name](engine), name)


def test_empty_has_the_shape_and_dtype_asked_for(t):
    e = t.empty(2, 3, dtype=t.float64)
    assert tuple(e.shape) == (2, 3) and repr(e.dtype) == "torch.float64" and not e.requires_grad
    assert repr(t.empty_like(e).dtype) == "torch.float64"


def test_manual_seed_reproducibility(t, address):
    draws = lambda th: (th.rand(3), th.randn(2, 2, dtype=th.float64), th.randint(0, 10, (4,)), th.randperm(5),  # noqa: E731
                       th.rand(2, requires_grad=True))
    t.manual_seed(1234)
    first = draws(t)
    second = draws(t)
    t.manual_seed(1234)
    again = draws(t)
    assert_same_result(again, first)
    assert first[0].tolist() != second[0].tolist()  # the generator advances
    # the engine's generator seeded alike draws the same numbers: one implementation
    engine.manual_seed(1234)
    assert_same_result(first, draws(engine))
    # each session has its own generator: seeding another one changes nothing here
    t.manual_seed(99)
    with ra.connect(address) as other:
        other.manual_seed(99)
        theirs = other.rand(3).tolist()
    assert t.rand(3).tolist() == theirs


def test_in_place_ops_keep_the_proxy_current(t):
    x = t.ones(3, requires_grad=True)
    y = x * 2
    y += 1
    y *= 3
    y -= x
    y /= 2
    assert y.grad_fn.name() == "DivBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [2.5, 2.5, 2.5]  # d/dx (3(2x+1) - x)/2
    with t.no_grad():
        x.add_(1)
    assert x.tolist() == [2.0, 2.0, 2.0] and x.is_leaf and x.requires_grad


# ---------------------------------------------------------------- the Tensor API around the ops, against torch

def _grad_enabled_block(th):
    x = th.ones(1, requires_grad=True)
    with th.set_grad_enabled(False):
        inside = (x * 2).requires_grad, th.is_grad_enabled()
    return inside, (x * 2).requires_grad, th.is_grad_enabled()


TENSOR_API = {
    "legacy_Tensor_empty": lambda th: th.Tensor(),
    "legacy_Tensor_shape": lambda th: th.Tensor(2, 3).shape,
    "legacy_Tensor_size": lambda th: th.Tensor(th.Size([2, 1])).shape,
    "zeros_size_kwarg": lambda th: th.zeros(size=(2,)),
    "zeros_0d": lambda th: th.zeros(()),
    "tensor_of_0d_tensors": lambda th: th.tensor([th.tensor(1.0), th.tensor(2.0)]),
    "tensor_numpy_scalar": lambda th: th.tensor(np.float64(2.5)),
    "tensor_0d_array": lambda th: th.tensor(np.asarray(3, dtype=np.int32)),
    "data_setter": lambda th: (lambda w: (setattr(w, "data", w.data * 2), w)[1])(th.ones(2, requires_grad=True)),
    "data_reshaped": lambda th: (lambda w: (setattr(w, "data", th.zeros(3, 1)), w, w.shape)[1:])(th.ones(2)),
    "detach_": lambda th: (lambda y: (y.detach_(), y, y.is_leaf, y.grad_fn)[1:])(th.ones(2, requires_grad=True) * 2),
    "retains_grad": lambda th: (lambda y: (y.retains_grad, y.retain_grad(), y.retains_grad)[::2])(
        th.ones(2, requires_grad=True) * 2),
    "stride": lambda th: (th.ones(2, 3).stride(), th.ones(2, 3).t().stride(), th.ones(2, 3).t().stride(0)),
    "contiguous": lambda th: (th.ones(2, 3).t().is_contiguous(), th.ones(2, 3).t().contiguous().is_contiguous()),
    "format_0d": lambda th: f"{th.tensor(2.5):.2f}",
    "str_of_tensor": lambda th: f"{th.tensor([2.5])}",
    "setitem_by_tensor": lambda th: (lambda x: (x.__setitem__(th.tensor([0, 2]), 5.0), x)[1])(th.zeros(3)),
    "dtype_identity": lambda th: (th.ones(2).dtype == th.float32, th.ones(2).dtype is th.float32),
    "is_tensor": lambda th: (th.is_tensor(th.ones(2)), isinstance(th.ones(2), th.Tensor), th.numel(th.ones(2, 3))),
    "no_grad_decorator": lambda th: th.no_grad()(lambda x: x * 2)(th.ones(1, requires_grad=True)),
    "set_grad_enabled_block": lambda th: _grad_enabled_block(th),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(TENSOR_API))
def test_tensor_api_matches_torch(t, name):
    import torch
    from remote_helpers import norm

    assert norm(repr(TENSOR_API[name](t))) == norm(repr(TENSOR_API[name](torch)))


def test_sgd_steps_through_data_match_torch(t):
    import torch

    def train(th, w0, xs, ys):
        w = th.tensor(w0, requires_grad=True)
        x, y = th.tensor(xs), th.tensor(ys)
        losses = []
        for _ in range(5):
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            w.data -= 0.1 * w.grad.data  # the classic update, through .data
            w.grad.zero_()
            losses.append(loss.item())
        return losses, w.tolist(), w.is_leaf, w.requires_grad

    rng = _rng("sgd")
    args = (rng.standard_normal(3).tolist(), rng.standard_normal((8, 3)).tolist(), rng.standard_normal(8).tolist())
    got, want = train(t, *args), train(torch, *args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
    assert got[2:] == want[2:] == (True, True)


def test_training_loop_matches_torch(t):
    import torch

    def train(th, w1, w2, xs, ys):
        F = th.nn.functional  # noqa: N806  (as users spell it)
        W1 = th.tensor(w1, requires_grad=True)  # noqa: N806
        B1 = th.zeros(8, requires_grad=True)  # noqa: N806
        W2 = th.tensor(w2, requires_grad=True)  # noqa: N806
        x, y = th.tensor(xs), th.tensor(ys)
        losses = []
        for _ in range(5):
            logits = F.relu(F.linear(x, W1, B1)) @ W2.t()
            loss = F.cross_entropy(logits, y)
            loss.backward()
            with th.no_grad():
                for p in (W1, B1, W2):
                    p -= 0.5 * p.grad
                    p.grad.zero_()
            losses.append(loss.item())
        accuracy = (logits.argmax(1) == y).float().mean().item()
        return losses, accuracy, W1.tolist(), W2.tolist(), (W1.is_leaf, W1.requires_grad, W1.grad.abs().sum().item())

    rng = _rng("mlp")
    floats = lambda *shape: rng.standard_normal(shape).astype(np.float32).tolist()  # noqa: E731
    args = (floats(8, 4), floats(3, 8), floats(16, 4), rng.integers(0, 3, 16).tolist())
    got, want = train(t, *args), train(torch, *args)
    for g, w in zip(got[:4], want[:4], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    assert got[4] == want[4] == (True, True, 0.0)


@pytest.mark.filterwarnings("ignore:To copy construct")
def test_tensor_of_a_tensor_copies_like_torch(t, address):
    import torch

    def program(th):
        x = th.ones(2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = th.tensor(x, dtype=x.dtype)
            z = th.tensor(x, requires_grad=True)
        y.add_(1)  # a copy: x is untouched
        error = None
        try:
            th.tensor(th.ones(2, dtype=th.long), requires_grad=True)
        except RuntimeError as e:
            error = str(e)
        return x.tolist(), y.tolist(), z.requires_grad, z.is_leaf, [str(w.message) for w in caught], error

    assert program(t) == program(torch)
    # a tensor of another session: its values are copied into this one
    with ra.connect(address) as other:
        theirs = other.tensor([1.5, 2.5])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mine = t.tensor(theirs, requires_grad=True)
    assert mine.tolist() == [1.5, 2.5] and mine.requires_grad
    assert (mine + t.ones(2)).tolist() == [2.5, 3.5]  # a tensor of this session
