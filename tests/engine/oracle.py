"""Run one program on torch and on the engine from the same values, and assert they agree."""
from __future__ import annotations

import numpy as np
import pytest
import remote_autograd.engine as E
import torch

TOL = {"float16": (1e-3, 1e-3), "float32": (1e-4, 1e-5), "float64": (1e-9, 1e-11)}


# ---------------------------------------------------------------- making inputs

def leaves(arrays, requires_grad=None):
    """The same values as torch leaves and as engine leaves; floats require grad unless told."""
    if requires_grad is None:
        requires_grad = [np.asarray(a).dtype.kind == "f" for a in arrays]
    ts, es = [], []
    for a, rg in zip(arrays, requires_grad):
        if isinstance(a, (bool, int, float)) or a is None:
            ts.append(a)
            es.append(a)
            continue
        a = np.array(a, order="C")  # a copy; 0-d stays 0-d
        ts.append(torch.tensor(a).requires_grad_(bool(rg)))
        es.append(E.tensor(a).requires_grad_(bool(rg)))
    return ts, es


def outputs_of(out) -> list:
    """A result as a flat list: tensors, or Python values."""
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in outputs_of(o)]
    return [out]


def is_tensor(x) -> bool:
    return isinstance(x, (torch.Tensor, E.Tensor))


# ---------------------------------------------------------------- comparing values

def assert_same_value(t, e, what="output", tol=None) -> None:
    """dtype and shape exactly, values to a tolerance suited to the dtype (exact for ints/bools)."""
    if not isinstance(t, torch.Tensor):
        assert not isinstance(e, E.Tensor), f"{what}: torch gave {type(t).__name__}, engine a Tensor"
        assert type(e) is type(t), f"{what}: torch gave {type(t).__name__} {t!r}, engine {type(e).__name__} {e!r}"
        if isinstance(t, float):  # .item() of a float32 reduction: float32 rounding
            np.testing.assert_allclose(e, t, rtol=1e-5, atol=1e-5, err_msg=what)
        else:
            assert e == t, f"{what}: torch {t!r}, engine {e!r}"
        return
    assert isinstance(e, E.Tensor), f"{what}: torch gave a Tensor, engine {type(e).__name__}"
    assert repr(e.dtype) == str(t.dtype), f"{what}: dtype engine {e.dtype} != torch {t.dtype}"
    assert tuple(e.shape) == tuple(t.shape), f"{what}: shape engine {tuple(e.shape)} != torch {tuple(t.shape)}"
    assert isinstance(e.shape, E.Size)
    want = t.detach().numpy(force=True)  # force: torch's second derivatives may be ZeroTensors
    got = e.numpy(force=True)
    assert got.dtype == want.dtype, f"{what}: array dtype {got.dtype} != {want.dtype}"
    if t.dtype.is_floating_point:
        rtol, atol = tol or TOL[str(t.dtype)[6:]]
        scale = max(1.0, float(np.nanmax(np.abs(want), initial=0.0)))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


# ---------------------------------------------------------------- comparing graphs

def node_names(node) -> tuple:
    return (node.name(), type(node).__name__)


def assert_same_graph(tn, en, t_leaves, e_leaves, depth=3, where="grad_fn") -> None:
    """Node names, and next_functions' names and input_nr, ``depth`` levels down; leaves by position."""
    if tn is None:
        assert en is None, f"{where}: torch has none, engine has {node_names(en)}"
        return
    assert en is not None, f"{where}: torch has {node_names(tn)}, engine none"
    assert node_names(en) == node_names(tn), f"{where}: engine {node_names(en)} != torch {node_names(tn)}"
    if type(tn).__name__ == "AccumulateGrad":
        ti = [i for i, x in enumerate(t_leaves) if x is tn.variable]
        ei = [i for i, x in enumerate(e_leaves) if x is en.variable]
        assert ti == ei, f"{where}: AccumulateGrad of input {ei} in the engine, {ti} in torch"
        return
    if depth == 0:
        return
    tnext, enext = tn.next_functions, en.next_functions
    assert len(enext) == len(tnext), (f"{where} {node_names(tn)}: {len(enext)} next_functions, torch "
                                      f"{[(n and n.name(), i) for n, i in tnext]}")
    for k, ((tnode, tnr), (enode, enr)) in enumerate(zip(tnext, enext)):
        assert enr == tnr, f"{where}.next_functions[{k}]: input_nr {enr} != torch {tnr}"
        assert_same_graph(tnode, enode, t_leaves, e_leaves, depth - 1, f"{where}.next_functions[{k}]")


# ---------------------------------------------------------------- the whole check

def check(fn, arrays, requires_grad=None, tol=None, grad_tol=None, graph_depth=3, seed=0, backward=True):
    """fn(lib, *inputs) on torch and on the engine: values, grad_fn graphs, then input gradients."""
    t_in, e_in = leaves(arrays, requires_grad)
    try:
        t_out = fn(torch, *t_in)
    except Exception as t_err:  # noqa: BLE001  (then the engine must refuse it the same way)
        with pytest.raises(type(t_err)) as e_err:
            fn(E, *e_in)
        assert type(e_err.value) is type(t_err) and str(e_err.value) == str(t_err), \
            f"\nengine: {e_err.value!r}\ntorch:  {t_err!r}"
        return None, None
    e_out = fn(E, *e_in)
    check_outputs(t_out, e_out, t_in, e_in, tol=tol, graph_depth=graph_depth)
    if backward:
        check_backward(t_out, e_out, t_in, e_in, seed=seed, tol=grad_tol or tol)
    return t_out, e_out


def check_outputs(t_out, e_out, t_in=(), e_in=(), tol=None, graph_depth=3) -> None:
    if isinstance(t_out, (tuple, list)):
        assert isinstance(e_out, tuple if isinstance(t_out, tuple) else list), \
            f"torch gave a {type(t_out).__name__}, engine a {type(e_out).__name__}"
        assert len(e_out) == len(t_out), f"{len(e_out)} outputs, torch {len(t_out)}"
        if hasattr(t_out, "values") and hasattr(t_out, "indices"):  # torch.return_types
            assert e_out.values is e_out[0] and e_out.indices is e_out[1]
    t_flat, e_flat = outputs_of(t_out), outputs_of(e_out)
    assert len(e_flat) == len(t_flat)
    for k, (t, e) in enumerate(zip(t_flat, e_flat)):
        assert_same_value(t, e, f"output {k}", tol)
        if isinstance(t, torch.Tensor):
            assert e.requires_grad == t.requires_grad, f"output {k}: requires_grad {e.requires_grad}"
            assert e.is_leaf == t.is_leaf, f"output {k}: is_leaf {e.is_leaf} != torch {t.is_leaf}"
            assert_same_graph(t.grad_fn, e.grad_fn, t_in, e_in, graph_depth, f"output {k}.grad_fn")


def upstream(t_flat, seed):
    rng = np.random.default_rng(seed)
    grads = []
    for t in t_flat:
        if isinstance(t, torch.Tensor) and t.requires_grad:
            grads.append(rng.standard_normal(tuple(t.shape)).astype(t.detach().numpy().dtype))
        else:
            grads.append(None)
    return grads


def _coarsest(tensors) -> tuple | None:
    """The tolerance of the least precise float among the tensors: a float64 leaf's gradient that
    flowed through float32 ops carries float32 rounding."""
    names = [str(t.dtype)[6:] for t in tensors if isinstance(t, torch.Tensor) and t.dtype.is_floating_point]
    return max((TOL[n] for n in names), default=None)


def check_backward(t_out, e_out, t_in, e_in, seed=0, tol=None) -> None:
    t_flat, e_flat = outputs_of(t_out), outputs_of(e_out)
    tol = tol or _coarsest(list(t_in) + t_flat)
    grads = upstream(t_flat, seed)
    pairs = [(t, e, g) for t, e, g in zip(t_flat, e_flat, grads) if g is not None]
    if not pairs:
        return
    torch.autograd.backward([t for t, _, _ in pairs], [torch.tensor(g) for _, _, g in pairs])
    E.autograd.backward([e for _, e, _ in pairs], [E.tensor(g) for _, _, g in pairs])
    for k, (t, e) in enumerate(zip(t_in, e_in)):
        if not isinstance(t, torch.Tensor):
            continue
        if t.grad is None:
            assert e.grad is None, f"input {k}: torch has no .grad, engine has one"
            continue
        assert e.grad is not None, f"input {k}: engine has no .grad"
        assert_same_value(t.grad, e.grad, f"grad of input {k}", tol)


# ---------------------------------------------------------------- finite differences (engine only)

def _as_f64(arrays):
    return [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else a for a in arrays]


def _scalar_fn(fn, arrays, vs):
    """sum_k <out_k, v_k> of fn on fresh engine tensors without grad, as a float."""
    with E.no_grad():
        _, e_in = leaves(arrays, [False] * len(arrays))
        outs = outputs_of(fn(E, *e_in))
    total = 0.0
    for o, v in zip(outs, vs):
        if v is not None:
            total += float(np.sum(o.numpy(force=True) * v))
    return total


def gradcheck(fn, arrays, diff=None, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0) -> None:
    """The engine's gradients of fn against central finite differences, in float64."""
    arrays = _as_f64(arrays)
    if diff is None:
        diff = [np.asarray(a).dtype.kind == "f" for a in arrays]
    _, e_in = leaves(arrays, diff)
    outs = outputs_of(fn(E, *e_in))
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(tuple(o.shape)) if is_tensor(o) and o.requires_grad else None for o in outs]
    d_outs = [o for o, v in zip(outs, vs) if v is not None]
    d_in = [x for x, d in zip(e_in, diff) if d]
    analytic = E.autograd.grad(d_outs, d_in, [E.tensor(v) for v in vs if v is not None], allow_unused=True)
    k = 0
    for i, d in enumerate(diff):
        if not d:
            continue
        a = arrays[i]
        got = np.zeros_like(a) if analytic[k] is None else analytic[k].numpy(force=True)
        assert got.shape == a.shape
        num = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            plus, minus = [x.copy() if isinstance(x, np.ndarray) else x for x in arrays], \
                [x.copy() if isinstance(x, np.ndarray) else x for x in arrays]
            plus[i][j] += eps
            minus[i][j] -= eps
            num[j] = (_scalar_fn(fn, plus, vs) - _scalar_fn(fn, minus, vs)) / (2 * eps)
        np.testing.assert_allclose(got, num, rtol=rtol, atol=atol, err_msg=f"d/d input {i}")
        k += 1


# ---------------------------------------------------------------- second derivatives (against torch)

def _grad_of_grad(lib, fn, arrays, diff, vs, ws):
    ins, _ = leaves(arrays, diff) if lib is torch else (None, None)
    if lib is E:
        _, ins = leaves(arrays, diff)
    outs = [o for o in outputs_of(fn(lib, *ins)) if is_tensor(o) and o.requires_grad]
    d_in = [x for x, d in zip(ins, diff) if d]
    gs = lib.autograd.grad(outs, d_in, [lib.tensor(v) for v in vs], create_graph=True, allow_unused=True)
    flags = [None if g is None else g.requires_grad for g in gs]
    terms = [(g * lib.tensor(w)).sum() for g, w in zip(gs, ws) if g is not None and g.requires_grad]
    if not terms:
        return gs, flags, None
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    ggs = lib.autograd.grad(total, d_in, allow_unused=True)
    return gs, flags, ggs


def gradgradcheck(fn, arrays, diff=None, seed=0, tol=(1e-8, 1e-10)) -> None:
    """First derivatives with create_graph=True, then d<grad, w>/d inputs, engine against torch."""
    arrays = _as_f64(arrays)
    if diff is None:
        diff = [np.asarray(a).dtype.kind == "f" for a in arrays]
    rng = np.random.default_rng(seed)
    t_ins, _ = leaves(arrays, diff)
    t_outs = [o for o in outputs_of(fn(torch, *t_ins)) if is_tensor(o) and o.requires_grad]
    vs = [rng.standard_normal(tuple(o.shape)) for o in t_outs]
    ws = [rng.standard_normal(np.shape(a)) for a, d in zip(arrays, diff) if d]
    t_gs, t_flags, t_ggs = _grad_of_grad(torch, fn, arrays, diff, vs, ws)
    e_gs, e_flags, e_ggs = _grad_of_grad(E, fn, arrays, diff, vs, ws)
    assert e_flags == t_flags, f"first-order grads requires_grad: engine {e_flags}, torch {t_flags}"
    for k, (t, e) in enumerate(zip(t_gs, e_gs)):
        if t is None:
            assert e is None, f"first-order grad {k}: torch None"
        else:
            assert_same_value(t, e, f"first-order grad {k}", tol)
    if t_ggs is None:
        assert e_ggs is None
        return
    for k, (t, e) in enumerate(zip(t_ggs, e_ggs)):
        if t is None:
            assert e is None, f"second-order grad {k}: torch None, engine {e}"
        else:
            assert e is not None, f"second-order grad {k}: engine None, torch {t}"
            assert_same_value(t, e, f"second-order grad {k}", tol)


# ---------------------------------------------------------------- errors

def raises_same(fn, *args, match_message=True):
    """fn(lib, *args) raises on torch; the engine raises the same type (and message)."""
    t_in, e_in = leaves(args, [False] * len(args)) if args else ([], [])
    try:
        fn(torch, *t_in)
    except Exception as err:  # noqa: BLE001  (the oracle decides what is expected)
        t_err = err
    else:
        raise AssertionError("torch did not raise: the test case is wrong")
    try:
        fn(E, *e_in)
    except Exception as err:  # noqa: BLE001
        e_err = err
    else:
        raise AssertionError(f"engine did not raise; torch raised {type(t_err).__name__}: {t_err}")
    assert type(e_err) is type(t_err), (f"engine raised {type(e_err).__name__}: {e_err}; "
                                         f"torch {type(t_err).__name__}: {t_err}")
    if match_message:
        assert str(e_err) == str(t_err), f"\nengine: {e_err}\ntorch:  {t_err}"
    return t_err, e_err
