"""The ops of issue 18 (erf, gelu, layer_norm, embedding, cumprod, tile, roll, pad) against torch:
values, dtypes, grad_fn graphs, gradients (torch and finite differences), second derivatives, errors."""
# ruff: noqa: N803  (T: the library under test, torch or the engine)
from __future__ import annotations

import numpy as np
import pytest
import remote_autograd.engine as E
import torch
from oracle import check, gradcheck, gradgradcheck, raises_same

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

FLOATS = ["float32", "float64"]
SHAPES = [(), (4,), (2, 3), (2, 1, 3)]


def F(lib):  # noqa: N802  (torch.nn.functional as F)
    return lib.nn.functional


def rand(shape, dtype="float64", seed=0, scale=1.5):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=dtype)


# ==================================================================== erf and gelu

ERF_GELU = {
    "erf": lambda T, a: a.erf(),
    "torch.erf": lambda T, a: T.erf(a * 2),
    "gelu": lambda T, a: F(T).gelu(a),
    "gelu_none": lambda T, a: F(T).gelu(a, approximate="none"),
    "gelu_tanh": lambda T, a: F(T).gelu(a, approximate="tanh"),
    "nn.GELU": lambda T, a: T.nn.GELU()(a) + T.nn.GELU(approximate="tanh")(a),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(ERF_GELU))
def test_erf_gelu_as_torch(name, shape, dtype):
    check(ERF_GELU[name], [rand(shape, dtype)])


@pytest.mark.parametrize("name", list(ERF_GELU))
def test_erf_gelu_gradients_by_finite_differences(name):
    gradcheck(ERF_GELU[name], [rand((2, 3))])


@pytest.mark.parametrize("name", list(ERF_GELU))
def test_erf_gelu_second_derivatives_as_torch(name):
    gradgradcheck(ERF_GELU[name], [rand((2, 3))])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_double_backward_is_torchs_node(approximate):
    # the create_graph gradient is GeluBackwardBackward0, and differentiable once more (third order)
    x = rand((5,), seed=3)
    grads = {}
    for lib in (torch, E):
        a = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad(F(lib).gelu(a, approximate=approximate).sum(), a, create_graph=True)
        assert g.grad_fn.name() == "GeluBackwardBackward0"
        (gg,) = lib.autograd.grad(g.sum(), a, create_graph=True)
        (ggg,) = lib.autograd.grad((gg * gg).sum(), a)
        grads[lib] = [v.detach().numpy() for v in (g, gg, ggg)]
    for t, e in zip(grads[torch], grads[E]):
        np.testing.assert_allclose(e, t, rtol=1e-10, atol=1e-12)


def test_erf_of_integers_and_bools_is_float():
    check(lambda T, a: (a.erf(), T.erf(a > 0)), [np.array([-2, 0, 1, 3])])


@pytest.mark.parametrize("fn,arg", [
    (lambda T, a: F(T).gelu(a), np.array([1, 2])),
    (lambda T, a: F(T).gelu(a > 0), np.array([1, 2])),
    (lambda T, a: F(T).gelu(a, approximate="foo"), np.array([1.0, 2.0])),
    (lambda T, a: T.nn.GELU("exact")(a), np.array([1.0, 2.0])),
])
def test_gelu_errors_as_torch(fn, arg):
    raises_same(fn, arg)


def test_gelu_module_repr_as_torch():
    for approximate in ("none", "tanh"):
        assert repr(E.nn.GELU(approximate)) == repr(torch.nn.GELU(approximate))
    assert repr(E.nn.GELU()) == repr(torch.nn.GELU())
