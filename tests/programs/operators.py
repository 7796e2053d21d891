"""Python and numpy numbers on either side of a Tensor's operators, described for comparison with
torch: the engine's tests (test_semantics.py) and the remote ones (test_ops_remote.py) run it."""
from __future__ import annotations

import operator

import numpy as np

NUMBERS = [2.0, 3, True, np.float64(2.5), np.float32(2), np.int64(3), np.int32(-2), np.bool_(True),
           np.bool_(False), np.float16(2)]
OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.floordiv,
             operator.mod, operator.lt, operator.eq, operator.and_, operator.or_]
TENSORS = [([1.0, 2.0, -3.0], "float32", True), ([1, 2, -3], "int64", False), ([True, False, True], "bool", False)]


def cases():
    return [(values, dtype, grad, number, op, left) for values, dtype, grad in TENSORS for number in NUMBERS
            for op in OPERATORS for left in (True, False)]


def describe(lib, case):
    """What ``number op tensor`` (or ``tensor op number``) gives: the result's class, dtype, grad_fn
    name and values, or the exception's class."""
    values, dtype, grad, number, op, left = case
    x = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=grad)
    try:
        r = op(number, x) if left else op(x, number)
        # (a remote session raises an error that depends on values, such as an integer division
        # by zero, when the values are read)
        return (type(r).__name__, str(r.dtype), type(r.grad_fn).__name__ if r.grad_fn is not None else None,
                r.tolist())
    except Exception as e:  # noqa: BLE001  (the exception's class is what is compared)
        return (type(e).__name__,)


def assert_same(lib, torch):
    wrong = []
    for case in cases():
        got, want = describe(lib, case), describe(torch, case)
        same = got[:3] == want[:3] and (len(got) < 4 or np.allclose(
            np.asarray(got[3], float), np.asarray(want[3], float), rtol=1e-6, equal_nan=True))
        if not same:
            wrong.append((case[3], case[4].__name__, case[1], "left" if case[5] else "right", got, want))
    assert not wrong, f"{len(wrong)} of {len(cases())} differ from torch, e.g. {wrong[:5]}"


# what torch's operators and methods refuse: a list or tuple anywhere, a numpy array for a method
REFUSED = [[1.0, 2.0], (1.0, 2.0), None, "a", np.array([1.0, 2.0])]
METHODS = ["add", "sub", "mul", "div", "floor_divide", "remainder", "pow", "eq", "ne", "lt", "ge", "logical_and",
           "add_", "mul_"]


def refused_cases():
    ops = [(name, False) for name in METHODS] + [(op, True) for op in OPERATORS]
    return [(other, op, left) for other in REFUSED for op, is_operator in ops
            for left in ((True, False) if is_operator else (False,))
            if not (is_operator and isinstance(other, np.ndarray))]  # operators: numpy's own protocol


def describe_refused(lib, case):
    other, op, left = case
    x = lib.tensor([1.0, 2.0])
    try:
        r = (op(other, x) if left else op(x, other)) if callable(op) else getattr(x, op)(other)
        return (type(r).__name__, str(r.dtype), r.tolist())
    except Exception as e:  # noqa: BLE001  (the exception's class is what is compared)
        return (type(e).__name__,)


def assert_same_refusals(lib, torch):
    wrong = [(case, describe_refused(lib, case), describe_refused(torch, case)) for case in refused_cases()]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, f"{len(wrong)} of {len(refused_cases())} differ from torch, e.g. {wrong[:5]}"
    # nor is a list a value to assign
    for value in ([1.0, 2.0], (1, 2), None):
        errors = []
        for t in (lib, torch):
            try:
                t.zeros(2, 2, dtype=t.int64)[0] = value
            except TypeError as e:
                errors.append(str(e))
        assert errors[0] == errors[1] == f"can't assign a {type(value).__name__} to a torch.LongTensor"


def new_tensors(lib) -> list:
    """Tensor.new_zeros/new_ones/new_empty/new_full/new_tensor: the dtype of the tensor they are
    called on unless one is given, a size as numbers or a sequence, requires_grad."""
    x, i = lib.tensor([[1, 2]], dtype=lib.float64), lib.tensor([3])
    made = [x.new_zeros(2, 3), x.new_zeros((2,)), x.new_ones([1, 2], dtype=lib.int32), x.new_full((2,), 7),
            i.new_full((2,), 2.5), x.new_tensor([1, 2]), i.new_tensor([1.5]), x.new_zeros(2, requires_grad=True),
            x.new_tensor(np.array([1, 2]), dtype=lib.float32), x.new_ones(()), i.new_zeros(2, 2, dtype=lib.bool)]
    empty = x.new_empty(3, 1)
    return [repr(t).replace("torch.", "") for t in made] + [(tuple(empty.shape), str(empty.dtype))]


def flips_cumsums_masks(lib) -> list:
    """flip, cumsum and masked_fill: values, dtypes, shapes, nodes, gradients, and torch's errors."""
    x = lib.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], requires_grad=True)
    s = lib.tensor(2.0, requires_grad=True)
    i, b = lib.tensor([1, 2, 3]), lib.tensor([True, False, True])
    cases = [lambda: x.flip(0), lambda: x.flip([0, 1]), lambda: x.flip(1, 0), lambda: lib.flip(x, (-1,)),
             lambda: s.flip(0), lambda: x.cumsum(1), lambda: lib.cumsum(x, dim=0),
             lambda: x.cumsum(-1, dtype=lib.float64), lambda: s.cumsum(0), lambda: i.cumsum(0),
             lambda: b.cumsum(0), lambda: i.flip(0),
             lambda: x.masked_fill(x > 2, 0.5), lambda: x.masked_fill(lib.tensor([[True], [False]]), -1.0),
             lambda: lib.ones(3).masked_fill(lib.ones(2, 3, dtype=lib.bool), 0.0), lambda: i.masked_fill(b, 2.7),
             lambda: x.masked_fill(b, float("-inf")), lambda: lib.masked_fill(x, x < 1, lib.tensor(9.0)),
             lambda: x.masked_fill(lib.tensor([1, 0, 1]), 1.0), lambda: x.flip(2), lambda: x.flip(0, 0),
             lambda: x.cumsum(3), lambda: x.masked_fill(b, lib.ones(1))]
    out = []
    for case in cases:
        try:
            r = case()
            row = [str(r.dtype), tuple(r.shape), r.grad_fn.name() if r.grad_fn is not None else None, r.tolist()]
            if r.requires_grad:
                weights = lib.arange(r.numel()).reshape(r.shape).to(r.dtype)
                row.append(lib.autograd.grad((r * weights).sum(), x if r.dim() else s)[0].tolist())
            out.append(str(row).replace("torch.", ""))
        except Exception as e:  # noqa: BLE001  (the exception is what is compared)
            out.append((type(e).__name__, str(e)))
    return out


def triangles_and_dropout(lib) -> list:
    """tril, triu, and dropout: its edge cases, errors, node, and its noise's values and share of
    zeros (the noise is the session's draw, not torch's)."""
    F = lib.nn.functional  # noqa: N806  (torch.nn.functional as F)
    x = lib.ones(2, 3, requires_grad=True)
    out = [x.tril().grad_fn.name(), lib.triu(x, 1).tolist(), x.tril(-1).tolist(),
           F.dropout(x, 0.5, training=False) is x, F.dropout(x, 0.0) is x]
    zeros = F.dropout(x, 1.0)
    out.append((zeros.tolist(), zeros.grad_fn.name()))
    for bad in (lambda: lib.ones(3).tril(), lambda: F.dropout(x, 1.5),
                lambda: F.dropout(lib.ones(3, dtype=lib.int64), 0.5)):
        try:
            bad()
        except Exception as e:  # noqa: BLE001  (the exception is what is compared)
            out.append((type(e).__name__, str(e)))
    ones = lib.ones(4000, requires_grad=True)
    y = F.dropout(ones, 0.25)
    out += [sorted(set(y.tolist())), y.grad_fn.name(), lib.dropout(x, 0.3, True).grad_fn.name(),
            [type(n[0]).__name__ if n[0] is not None else None for n in y.grad_fn.next_functions],
            abs((y == 0).float().mean().item() - 0.25) < 0.04]
    y.sum().backward()
    out.append(ones.grad.tolist() == y.tolist())  # the input's gradient is the noise (the input is ones)
    return out


def index_selects_and_gathers(lib) -> list:
    """index_select and gather: values, nodes, first and second derivatives, and torch's errors."""
    x = lib.arange(6.0).reshape(2, 3).requires_grad_()
    s = lib.tensor(3.0, requires_grad=True)
    i, g = lib.tensor([2, 0, 2]), lib.tensor([[0, 0], [1, 0]])
    cases = [lambda: x.index_select(1, i), lambda: lib.index_select(x, 0, lib.tensor([1])),
             lambda: x.index_select(1, lib.tensor([0.0])), lambda: x.index_select(1, lib.tensor([[0]])),
             lambda: x.index_select(1, lib.tensor([5])), lambda: x.index_select(1, lib.tensor(1)),
             lambda: x.index_select(1, lib.tensor([1], dtype=lib.int32)), lambda: x.index_select(2, i),
             lambda: x.index_select(1, lib.tensor([-1])), lambda: x.gather(1, g),
             lambda: lib.gather(x, 0, lib.tensor([[1, 0, 1]])), lambda: x.gather(1, g.float()),
             lambda: x.gather(1, g.int()), lambda: x.gather(1, lib.tensor([0, 1])),
             lambda: x.gather(1, lib.tensor([[0], [1], [2]])), lambda: x.gather(1, lib.tensor([[3]])),
             lambda: x.gather(1, lib.tensor([[-1]])), lambda: s.index_select(0, lib.tensor([0, 0])),
             lambda: s.gather(0, lib.tensor(0)), lambda: s.index_select(0, lib.tensor([0])),
             # out of range: torch's words depend on the path it takes (a 2-d tensor's dim 1: its own)
             lambda: x.index_select(0, lib.tensor([0, 7])), lambda: x.index_select(-1, lib.tensor([3])),
             lambda: x[0].index_select(0, lib.tensor([-4])), lambda: s.index_select(0, lib.tensor([1])),
             lambda: x.reshape(1, 2, 3).index_select(2, lib.tensor([3])),
             lambda: x.t().index_select(1, lib.tensor([2]))]
    out = []
    for case in cases:
        try:
            r = case()
            out.append(str((tuple(r.shape), str(r.dtype), r.grad_fn.name(), r.tolist())).replace("torch.", ""))
        except Exception as e:  # noqa: BLE001  (the exception is what is compared)
            out.append((type(e).__name__, str(e)))
    for bad in (lambda: x.repeat(2), lambda: x.repeat(-1, 1)):  # repeat's errors, known without values
        try:
            bad()
        except Exception as e:  # noqa: BLE001  (the exception is what is compared)
            out.append((type(e).__name__, str(e)))
    for pick in (lambda: x.index_select(1, i), lambda: x.gather(1, g)):
        first, = lib.autograd.grad(pick().pow(2).sum(), x, create_graph=True)
        second, = lib.autograd.grad((first * first).sum(), x)
        out.append((first.grad_fn.name(), first.tolist(), second.tolist()))
    return out


def sorts_and_topks(lib) -> list:
    """sort and topk: the (values, indices) pair as torch prints it, the gradient sent back where
    each value came from, equal values and nan, and torch's errors."""
    x = lib.tensor([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]], requires_grad=True)
    s = lib.tensor(2.0, requires_grad=True)
    cases = [(x, lambda: x.sort()), (x, lambda: x.sort(0, descending=True)),
             (x, lambda: lib.sort(x, dim=1, stable=True)), (x, lambda: x.topk(2)),
             (x, lambda: x.topk(1, dim=0, largest=False)), (x, lambda: lib.topk(x, 2, sorted=True)),
             (x, lambda: x.topk(4)), (x, lambda: x.sort(2)), (s, lambda: s.sort()), (s, lambda: s.topk(1)),
             (None, lambda: lib.tensor([3, 1, 2]).sort()),
             (None, lambda: lib.tensor([1.0, float("nan"), 0.0, 1.0]).sort(descending=True)),
             (None, lambda: lib.tensor([2.0, 1.0, 2.0, 0.0]).sort(stable=True, descending=True)),
             (None, lambda: (x.argsort(), lib.argsort(x, dim=0, descending=True), x.argsort(stable=True)))]
    out = []
    for leaf, case in cases:
        try:
            r = case()
            row = [repr(r).replace("torch.", "")]
            if leaf is not None:
                weights = lib.arange(r.values.numel()).reshape(r.values.shape).to(r.values.dtype)
                row.append(lib.autograd.grad((r.values * weights).sum(), leaf)[0].tolist())
            out.append(row)
        except Exception as e:  # noqa: BLE001  (the exception is what is compared)
            out.append((type(e).__name__, str(e)))
    return out
