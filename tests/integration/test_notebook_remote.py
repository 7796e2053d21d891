"""The seed notebook (chapter 3.2, autograd), cell by cell, through the SDK against torch on the same values.

Each cell is written once, as the notebook writes it with ``t`` for the torch module, and runs twice:
on a remote session and on torch fed the values the session drew. Reprs (addresses normalised),
values, autograd state, printed output, warnings and errors must agree.
"""
from __future__ import annotations

import pytest
from remote_helpers import assert_same_as_torch, observe, outcome


@pytest.fixture
def same(t, capsys):
    """``same(cell)``: run the cell remotely and on torch and assert they agree; returns the remote side."""
    t.manual_seed(0)  # deterministic values: a repr never sits on a rounding edge by chance
    return lambda cell: assert_same_as_torch(cell, t, capsys)


def test_cell_6_requires_grad_three_ways(same):
    def cell(t):
        a = t.randn(3, 4, requires_grad=True)
        first = observe(a)
        a = t.randn(3, 4).requires_grad_()
        second = observe(a)
        a = t.randn(3, 4)
        before = observe(a)
        a.requires_grad = True
        return first, second, before, a

    (first, second, before, a), _, _ = same(cell)
    assert first["requires_grad"] and second["requires_grad"] and a["requires_grad"]
    assert not before["requires_grad"]
    assert a["repr"].endswith("requires_grad=True)")


def test_cells_7_to_32_add_sum_backward(same):
    def cell(t):
        a = t.randn(3, 4, requires_grad=True)
        b = t.zeros(3, 4, requires_grad=True)
        c = a + b
        snap_c = observe(c)
        d = c.sum()
        d.backward()
        print("a_grad", a.grad)
        print("b_grad", b.grad)
        print("c_grad", c.grad)
        return (b, snap_c, d.requires_grad, (a.requires_grad, b.requires_grad, c.requires_grad),
                (a.is_leaf, b.is_leaf, c.is_leaf), c.grad is None, a.grad, b.grad)

    (b, c, d_rg, rgs, leaves, c_grad_none, a_grad, b_grad), printed, warned = same(cell)
    assert b["repr"] == ("tensor([[0., 0., 0., 0.],\n        [0., 0., 0., 0.],\n"
                         "        [0., 0., 0., 0.]], requires_grad=True)")
    assert c["grad_fn"] == "AddBackward0" and c["repr"].endswith("grad_fn=<AddBackward0>)")
    assert d_rg is True and rgs == [True, True, True] and leaves == [True, True, False] and c_grad_none
    assert a_grad["values"] == b_grad["values"] == [[1.0] * 4] * 3
    assert "c_grad None" in printed
    assert any("not a leaf Tensor" in message for _, message in warned)  # c.grad warns, as torch does


def test_cells_40_to_43_manual_vs_automatic_gradient(same):
    def cell(t):
        def f(x):
            y = x**2 * t.exp(x)
            return y

        def grad(x):
            dx = 2 * x * t.exp(x) + t.pow(x, 2) * t.exp(x)
            return dx

        x = t.randn(3, 4, requires_grad=True)
        y = f(x)
        shape = y.shape
        y.backward(t.ones(y.size()))
        return shape, x.grad, grad(x)

    (shape, auto, manual), _, _ = same(cell)
    assert shape == "torch.Size([3, 4])"
    assert manual["grad_fn"] == "AddBackward0"
    assert auto["repr"] == manual["repr"].replace(", grad_fn=<AddBackward0>", "")


def test_cells_92_to_108_graph_and_retain_graph(same):
    def cell(t):
        x = t.ones(1)
        b = t.rand(1, requires_grad=True)
        w = t.rand(1, requires_grad=True)
        y = w * x
        z = y + b
        flags = (x.requires_grad, b.requires_grad, w.requires_grad), y.requires_grad
        leaves = x.is_leaf, b.is_leaf, w.is_leaf, y.is_leaf, z.is_leaf
        print(z.grad_fn)
        print(y.grad_fn)
        graph = z.grad_fn.next_functions, y.grad_fn.next_functions, (w.grad_fn, x.grad_fn)
        z.backward(retain_graph=True)
        first = observe(w.grad)
        z.backward()
        second = observe(w.grad)
        third = outcome(z.backward)
        return flags, leaves, graph, first, second, third, observe(w.grad)

    (flags, leaves, graph, first, second, third, after), printed, _ = same(cell)
    assert flags == [[False, True, True], True]
    assert leaves == [True, True, True, False, False]
    assert printed == "<AddBackward0 object at 0x?>\n<MulBackward0 object at 0x?>\n"
    z_next, y_next, leaf_fns = graph
    assert [(n["node"], nr) for n, nr in z_next] == [("MulBackward0", 0), ("AccumulateGrad", 0)]
    assert [(n if n is None else n["node"], nr) for n, nr in y_next] == [("AccumulateGrad", 0), (None, 0)]
    assert leaf_fns == [None, None]
    assert second["values"] == [2 * first["values"][0]] == after["values"]
    assert third.kind == "RuntimeError" and third.message.startswith("Trying to backward through the graph a second")


def test_cell_109_abs_positive(same):
    def cell(t):
        def abs(x):  # noqa: A001  (the notebook's name)
            if x.data[0] > 0:
                return x
            else:
                return -x

        x = t.ones(1, requires_grad=True)
        y = abs(x)
        y.backward()
        print("x.grad", x.grad)
        print("y.grad_fn", y.grad_fn)

    _, printed, _ = same(cell)
    assert printed == "x.grad tensor([1.])\ny.grad_fn None\n"


def test_cell_115_abs_negative(same):
    def cell(t):
        def abs(x):  # noqa: A001
            if x.data[0] > 0:
                return x
            else:
                return -x

        x = -1 * t.ones(1, requires_grad=True)
        print("x = ", x)
        y = abs(x)
        y.backward()
        print("x.grad", x.grad)  # a non-leaf: None, with torch's warning
        print("y.grad_fn", y.grad_fn)

    _, printed, warned = same(cell)
    assert printed == ("x =  tensor([-1.], grad_fn=<MulBackward0>)\nx.grad None\n"
                       "y.grad_fn <NegBackward0 object at 0x?>\n")
    assert [kind for kind, _ in warned] == ["UserWarning"]


def test_cell_117_python_control_flow(same):
    def cell(t):
        def f(x):
            result = 1
            for ii in x:
                if ii.item() > 0:
                    result = result * ii
            return result

        x = t.arange(-2, 4, dtype=t.float32, requires_grad=True)
        y = f(x)
        y.backward()
        return y, x.grad

    (y, grad), _, _ = same(cell)
    assert grad["repr"] == "tensor([0., 0., 0., 6., 3., 2.])"
    assert y["grad_fn"] == "MulBackward0"


def test_cells_118_to_135_no_grad_and_set_grad_enabled(same, t):
    def cell(t):
        x = t.ones(1, requires_grad=True)
        w = t.rand(1, requires_grad=True)
        y = x * w
        tracked = x.requires_grad, w.requires_grad, y.requires_grad
        with t.no_grad():
            x = t.ones(1)
            w = t.rand(1, requires_grad=True)
            y = x * w
        in_no_grad = x.requires_grad, y.requires_grad, w.requires_grad
        off = t.set_grad_enabled(False)
        x = t.ones(1)
        w = t.rand(1, requires_grad=True)
        y = x * w
        disabled = y.requires_grad, w.requires_grad, x.requires_grad, t.is_grad_enabled()
        on = t.set_grad_enabled(True)
        z = w * 2
        return tracked, in_no_grad, disabled, off, on, z

    (tracked, in_no_grad, disabled, off, on, z), _, _ = same(cell)
    assert tracked == [True, True, True]
    assert in_no_grad == [False, False, True]
    assert disabled == [False, True, False, False]
    assert on == "torch.autograd.grad_mode.set_grad_enabled(mode=True)"
    assert z["grad_fn"] == "MulBackward0"  # grad mode is back on the server too
    assert t.is_grad_enabled()


def test_cells_138_to_157_data_detach_and_statistics(same):
    def cell(t):
        a = t.rand(3, 4, requires_grad=True)
        b = t.rand(3, 4, requires_grad=True)
        c = a * b
        data = observe(a.data)
        data_rg = a.data.requires_grad
        d = a.data.sigmoid_()
        d_rg = d.requires_grad
        a_after_sigmoid = observe(a)  # .data shares storage: a changed too
        tensor = a.detach()
        detached_rg = tensor.requires_grad
        mean = tensor.mean()
        std = tensor.std()
        maximum = tensor.max()
        stats = mean, std, maximum
        tensor[0] = 1
        # a reader who goes on meets torch's error at this very line: c saved a, written since
        backward = outcome(lambda: c.sum().backward())
        return data, data_rg, d_rg, a_after_sigmoid, detached_rg, stats, a, c, backward

    data, data_rg, d_rg, a_after, detached_rg, stats, a, c, backward = same(cell)[0]
    assert "modified by an inplace operation" in backward.message and backward.kind == "RuntimeError"
    assert data_rg is False and d_rg is False and detached_rg is False
    assert not data["repr"].endswith("requires_grad=True)") and a_after["requires_grad"]
    assert a_after["values"] != data["values"]
    assert a["values"][0] == [1.0] * 4  # writing through the detached alias wrote into a
    assert [s["shape"] for s in stats] == [(), (), ()]


def test_cells_158_159_non_leaf_grads_are_not_kept(same):
    def cell(t):
        x = t.ones(3, requires_grad=True)
        w = t.rand(3, requires_grad=True)
        y = x * w
        z = y.sum()
        flags = x.requires_grad, w.requires_grad, y.requires_grad
        z.backward()
        return flags, (x.grad, y.grad, w.grad)

    (flags, (x_grad, y_grad, w_grad)), _, warned = same(cell)
    assert flags == [True, True, True] and y_grad is None
    assert w_grad["repr"] == "tensor([1., 1., 1.])"
    assert len(warned) == 1


def test_cell_160_autograd_grad(same):
    def cell(t):
        x = t.ones(3, requires_grad=True)
        w = t.rand(3, requires_grad=True)
        y = x * w
        z = y.sum()
        return t.autograd.grad(z, y)

    (grads,), _, _ = same(cell)
    assert grads["repr"] == "tensor([1., 1., 1.])"


def test_cell_162_hook_prints_gradient(same):
    def cell(t):
        def variable_hook(grad):
            print("y的梯度：", grad)

        x = t.ones(3, requires_grad=True)
        w = t.rand(3, requires_grad=True)
        y = x * w
        hook_handle = y.register_hook(variable_hook)
        z = y.sum()
        z.backward()
        hook_handle.remove()
        (x * w).sum().backward()  # removed: prints nothing more
        return x.grad, w.grad

    _, printed, _ = same(cell)
    assert printed == "y的梯度： tensor([1., 1., 1.])\n"


def test_cell_164_polynomial(same):
    def cell(t):
        x = t.arange(0, 3, dtype=t.float32, requires_grad=True)
        y = x**2 + x * 2
        z = y.sum()
        z.backward()
        return x.grad

    grad, _, _ = same(cell)
    assert grad["repr"] == "tensor([2., 4., 6.])"


def test_cell_170_backward_from_an_intermediate(same):
    def cell(t):
        x = t.arange(0, 3, dtype=t.float32, requires_grad=True)
        y = x**2 + x * 2
        z = y.sum()
        print(z)
        y_gradient = t.Tensor([1, 1, 1])
        y.backward(y_gradient)
        return y_gradient, x.grad

    (y_gradient, grad), printed, _ = same(cell)
    assert printed == "tensor(11., grad_fn=<SumBackward0>)\n"
    assert y_gradient["dtype"] == "torch.float32"
    assert grad["repr"] == "tensor([2., 4., 6.])"
