"""engine/checks.py on plain metadata raises what torch 2.13 raises (type and message) for the same program."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from remote_autograd.engine import dtypes
from remote_autograd.engine.checks import (
    check_factory_requires_grad,
    check_grad_assignment,
    check_inplace_result,
    check_item,
    check_legacy_new_kwargs,
    check_numpy,
    check_register_hook,
    check_requires_grad,
    check_retain_grad,
)


def outcome(fn):
    """(exception type, message) of ``fn()``, or None when it returns."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001  (whatever torch raises is the expected value)
        return type(e), str(e)
    return None


def engine_dtype(dt: torch.dtype) -> dtypes.dtype:
    return dtypes.by_name(str(dt).removeprefix("torch."))


NAMES = ("bool", "uint8", "int32", "int64", "float16", "float32", "float64")
TORCH_DTYPES = [getattr(torch, n) for n in NAMES]

# ---------------------------------------------------------------- in-place results

SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((3, 1), (3, 4)), ((2,), (3, 2)),
          ((2, 3), (1, 2, 3)), ((), (1,)), ((1,), ()), ((0, 3), (1, 3)), ((1, 3), (0, 3)), ((4, 1, 2), (3, 1))]


@pytest.mark.parametrize("target_shape, other_shape", SHAPES)
@pytest.mark.parametrize("target_dtype, other_dtype", [(torch.float32, torch.float32), (torch.int64, torch.float32),
                                                       (torch.bool, torch.int32), (torch.int32, torch.bool),
                                                       (torch.float16, torch.float64), (torch.uint8, torch.int64)])
@pytest.mark.parametrize("as_numpy", [False, True], ids=["engine-dtype", "numpy-dtype"])
def test_inplace_result_as_torch_add_(target_shape, other_shape, target_dtype, other_dtype, as_numpy):
    target = torch.zeros(target_shape, dtype=target_dtype)
    other = torch.zeros(other_shape, dtype=other_dtype)
    expected = outcome(lambda: target.add_(other))
    # what the out-of-place op gives: the result an in-place op would write back
    result_shape = tuple(torch.broadcast_shapes(target_shape, other_shape))
    result_dtype = engine_dtype(torch.promote_types(target_dtype, other_dtype))
    tdt = engine_dtype(target_dtype)
    if as_numpy:
        result_dtype, tdt = result_dtype.np, tdt.np
    assert outcome(lambda: check_inplace_result(target_shape, tdt, result_shape, result_dtype)) == expected


def test_inplace_result_accepts_mixed_dtype_kinds():
    assert check_inplace_result((2,), dtypes.float32, (2,), np.dtype("float64")) is None
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        check_inplace_result((2,), np.dtype("int64"), (2,), dtypes.float32)


# ---------------------------------------------------------------- t.grad = value

GRAD_VALUES = [None, 3, 1.5, [1.0, 2.0], "grad", ((2, 3), torch.float32), ((3,), torch.float32),
               ((2, 3), torch.float64), ((3, 2), torch.float16), ((2, 3), torch.int64), ((), torch.float32)]


def _assign(t, value):
    t.grad = value


@pytest.mark.parametrize("value", GRAD_VALUES, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grad_assignment_as_torch(value, dtype):
    shape = (2, 3)
    t = torch.zeros(shape, dtype=dtype)
    is_tensor = isinstance(value, tuple)
    if is_tensor:
        value_shape, value_dtype = value
        value = torch.zeros(value_shape, dtype=value_dtype)
        meta = (value_shape, engine_dtype(value_dtype))
    else:
        meta = (None, None)
    expected = outcome(lambda: _assign(t, value))
    got = outcome(lambda: check_grad_assignment(value, *meta, shape, engine_dtype(dtype), is_tensor))
    assert got == expected


def test_grad_assignment_takes_numpy_dtypes():
    assert check_grad_assignment(object(), (2,), np.dtype("float32"), (2,), dtypes.float32, True) is None
    with pytest.raises(RuntimeError, match="with dtype 'double' to a tensor with grad_dtype 'Float'"):
        check_grad_assignment(object(), (2,), np.dtype("float64"), (2,), np.dtype("float32"), True)


# ---------------------------------------------------------------- requires_grad

def _set(t, flag):
    t.requires_grad = flag


# a non-leaf is floating point
LEAF_DTYPES = [(True, dt) for dt in TORCH_DTYPES] + [(False, dt) for dt in TORCH_DTYPES if dt.is_floating_point]


@pytest.mark.parametrize("leaf, dtype", LEAF_DTYPES, ids=lambda v: {True: "leaf", False: "non-leaf"}.get(v, str(v)))
@pytest.mark.parametrize("flag", [True, False])
@pytest.mark.parametrize("setter", [True, False], ids=["setter", "requires_grad_"])
def test_requires_grad_as_torch(leaf, dtype, flag, setter):
    t = torch.zeros(2, dtype=dtype)
    if not leaf:
        t = t.requires_grad_() * 2
    before = t.requires_grad
    expected = outcome(lambda: _set(t, flag) if setter else t.requires_grad_(flag))
    stored = []
    got = outcome(lambda: stored.append(check_requires_grad(leaf, flag, engine_dtype(dtype), setter=setter)))
    assert got == expected
    if expected is None:
        # True: the flag is stored (what torch's tensor now says); False: nothing changed
        assert (flag if stored[0] else before) == t.requires_grad


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=NAMES)
@pytest.mark.parametrize("requires_grad", [True, False])
def test_factory_requires_grad_as_torch(dtype, requires_grad):
    expected = outcome(lambda: torch.zeros(2, dtype=dtype, requires_grad=requires_grad))
    assert outcome(lambda: check_factory_requires_grad(requires_grad, engine_dtype(dtype))) == expected
    assert outcome(lambda: check_factory_requires_grad(requires_grad, engine_dtype(dtype).np)) == expected


# ---------------------------------------------------------------- hooks, retain_grad, values

@pytest.mark.parametrize("requires_grad", [True, False])
def test_retain_grad_and_register_hook_as_torch(requires_grad):
    t = torch.zeros(2, requires_grad=requires_grad)
    assert outcome(lambda: check_retain_grad(requires_grad)) == outcome(t.retain_grad)
    assert outcome(lambda: check_register_hook(requires_grad)) == outcome(lambda: t.register_hook(lambda g: g))


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (2,), (0,), (2, 3)])
def test_item_as_torch(shape):
    t = torch.zeros(shape)
    assert outcome(lambda: check_item(t.numel())) == outcome(t.item)


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("force", [True, False])
def test_numpy_as_torch(requires_grad, force):
    t = torch.zeros(2, requires_grad=requires_grad)
    assert outcome(lambda: check_numpy(requires_grad, force)) == outcome(lambda: t.numpy(force=force))


@pytest.mark.parametrize("kwargs", [{}, {"device": "cpu"}, {"foo": 1}, {"device": "cpu", "dtype": torch.float64}])
def test_legacy_new_kwargs_as_torch(kwargs):
    expected = outcome(lambda: torch.Tensor(2, **kwargs))
    got = outcome(lambda: check_legacy_new_kwargs(kwargs))
    if expected is None:
        assert got is None
        return
    # torch lists its overloads after this; the engine names the unexpected keywords instead
    assert got[0] is expected[0] is TypeError
    prefix = "new() received an invalid combination of arguments - got "
    assert expected[1].startswith(prefix) and got[1].startswith(prefix)
    assert str(sorted(set(kwargs) - {"device"})) in got[1]
