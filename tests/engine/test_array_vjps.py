"""A backward that records nothing runs the VJPs on arrays (engine/ops.py array_vjps): they must
give the very bits of the tensor VJPs, which a create_graph backward runs, on every shape and
dtype; and where a saved tensor's dtype differs from the gradient's, the node falls back."""
from __future__ import annotations

import numpy as np
import pytest
import remote_autograd.engine as E
import torch
from remote_autograd.engine.node import OpNode
from remote_autograd.engine.ops import OPS

F = E.nn.functional

# op name -> programs on engine tensors (a, b), each applying that op last
CASES = {
    "add": [lambda a, b: a + b, lambda a, b: a.add(b, alpha=-0.5), lambda a, b: a + 2.5],
    "sub": [lambda a, b: a - b, lambda a, b: a.sub(b, alpha=3)],
    "rsub": [lambda a, b: 2.5 - a, lambda a, b: E.rsub(a, 2, alpha=-0.5)],
    "rsub_tensor": [lambda a, b: E.rsub(a, b), lambda a, b: E.rsub(a, b, alpha=3)],
    "mul": [lambda a, b: a * b, lambda a, b: a * 1.001, lambda a, b: a * 3],
    "div": [lambda a, b: a / (b.abs() + 0.5), lambda a, b: a / 3, lambda a, b: a / 0.7],
    "neg": [lambda a, b: -a],
    "sin": [lambda a, b: a.sin()],
    "cos": [lambda a, b: a.cos()],
    "exp": [lambda a, b: a.exp()],
    "log": [lambda a, b: (a.abs() + 0.5).log()],
    "tanh": [lambda a, b: a.tanh()],
    "sigmoid": [lambda a, b: a.sigmoid()],
    "relu": [lambda a, b: a.relu()],
    "pow": [lambda a, b: a ** 3, lambda a, b: (a.abs() + 0.5) ** 0.5, lambda a, b: a ** 0, lambda a, b: a ** -2],
    "sum": [lambda a, b: a.sum(), lambda a, b: a.sum(dtype=E.float64)],
    "mean": [lambda a, b: a.mean()],
    "mse_loss": [lambda a, b: F.mse_loss(a, b), lambda a, b: F.mse_loss(a, b, reduction="sum"),
                 lambda a, b: F.mse_loss(a, b, reduction="none")],
}
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((), ()), ((2, 1, 3), (4, 1))]


def test_every_op_with_array_vjps_is_covered():
    assert {name for name, row in OPS.items() if row.array_vjps is not None} == set(CASES)


def _grads(program, a, b, g_seed, create_graph):
    x = E.tensor(a, requires_grad=True)
    y = E.tensor(b, requires_grad=True)
    out = program(x, y)
    g = E.tensor(np.random.default_rng(g_seed).standard_normal(tuple(out.shape)), dtype=out.dtype)
    return E.autograd.grad(out, (x, y), g, create_graph=create_graph, allow_unused=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", [
    (name, k, shapes) for name, programs in CASES.items() for k in range(len(programs)) for shapes in SHAPES
    if name != "mse_loss" or shapes[0] == shapes[1]],  # (a broadcasting mse_loss warns: test_ops has it)
    ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_array_vjps_give_the_tensor_vjps_bits(case, dtype, monkeypatch):
    name, k, shapes = case
    program = CASES[name][k]
    rng = np.random.default_rng(k + 10 * SHAPES.index(shapes))
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    taken = []
    real = OpNode._apply_arrays

    def spy(self, g):
        result = real(self, g)
        taken.append((self._op.name, result is not None))
        return result
    monkeypatch.setattr(OpNode, "_apply_arrays", spy)
    fast = _grads(program, a, b, 1, create_graph=False)
    assert (name, True) in taken, f"the backward of {name} did not run its array VJPs: {taken}"
    taken.clear()
    slow = _grads(program, a, b, 1, create_graph=True)
    assert not taken  # create_graph: the tensor VJPs, recorded
    for f, s in zip(fast, slow):
        assert (f is None) == (s is None)
        if f is not None:
            assert f.dtype == s.dtype and f.shape == s.shape
            np.testing.assert_array_equal(f.detach().numpy(), s.detach().numpy(), strict=True)
            # the same bits (assert_array_equal takes -0.0 == 0.0 and nan == nan)
            assert f.detach().numpy().tobytes() == s.detach().numpy().tobytes()


def test_a_saved_tensor_of_another_dtype_falls_back_to_the_tensor_vjps(monkeypatch):
    taken = []
    real = OpNode._apply_arrays

    def spy(self, g):
        result = real(self, g)
        taken.append(result is not None)
        return result
    monkeypatch.setattr(OpNode, "_apply_arrays", spy)
    x = E.tensor([1.5, -2.0, 3.0], dtype=E.float32, requires_grad=True)
    y = E.tensor([0.5, 4.0, -1.0], dtype=E.float64, requires_grad=True)
    (x * y).sum().backward()
    assert taken == [True, False]  # sum: nothing saved; mul: float32 x saved, float64 gradient
    assert x.grad.dtype == E.float32 and y.grad.dtype == E.float64
    assert x.grad.tolist() == [0.5, 4.0, -1.0] and y.grad.tolist() == [1.5, -2.0, 3.0]


def _hooks_on_0d_gradients(lib):
    x = lib.tensor(2.0, requires_grad=True)
    y = lib.tensor(3.0, requires_grad=True)
    z = x * y
    w = z * 1.5
    z.retain_grad()
    seen = []

    def kinds(grads):
        return [None if g is None else (type(g).__name__, float(g)) for g in grads]
    z.grad_fn.register_hook(lambda gi, go: seen.append(kinds(gi + go)))
    z.register_hook(lambda g: seen.append(kinds([g])))
    w.backward(retain_graph=True)
    gx, = lib.autograd.grad(w, (x,))
    return seen, kinds([z.grad, gx])


def test_hooks_and_captures_of_0d_gradients_get_tensors():
    # an array VJP of 0-d inputs gives numpy scalars: whatever reads a gradient gets a Tensor
    seen, grads = _hooks_on_0d_gradients(E)
    assert (seen, grads) == _hooks_on_0d_gradients(torch)
    assert seen[1] == [("Tensor", 4.5), ("Tensor", 3.0), ("Tensor", 1.5)]
    assert seen[3] == [("Tensor", 4.5), None, ("Tensor", 1.5)]  # grad(w, x): y's gradient is not computed
    assert grads == [("Tensor", 3.0), ("Tensor", 4.5)]  # grad() adds to the retained grad too
