"""Tensor factories with torch's signatures, dtype inference and errors."""
from __future__ import annotations

import numbers

from . import dtypes
from .backend import from_numpy, xp
from .methods import _size_args
from .random import generator
from .tensor import Tensor

_DEFAULT = dtypes.DEFAULT_FLOAT


def _infer_dtype(data) -> dtypes.dtype:
    """torch.tensor's inference: bool < int64 < default float over nested Python data."""
    kind = -1
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            kind = max(kind, x.dtype._category + (10 if x.dtype.itemsize == 8 and x.dtype.is_floating_point else 0))
        elif isinstance(x, bool):
            kind = max(kind, dtypes.BOOL)
        elif isinstance(x, numbers.Integral):
            kind = max(kind, dtypes.INT)
        elif isinstance(x, numbers.Real):
            kind = max(kind, dtypes.FLOAT)
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        elif hasattr(x, "dtype"):
            return dtypes.from_any(x.dtype)
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    if kind >= 10:
        return dtypes.float64
    return {-1: _DEFAULT, dtypes.BOOL: dtypes.bool_, dtypes.INT: dtypes.int64, dtypes.FLOAT: _DEFAULT}[kind]


def _check_ragged(data, dim=0):
    if isinstance(data, (list, tuple)):
        lengths = None
        for item in data:
            n = len(item) if isinstance(item, (list, tuple)) else None
            if lengths is None:
                lengths = n
            elif n != lengths:
                raise ValueError(f"expected sequence of length {lengths} at dim {dim + 1} (got {n})")
        for item in data:
            _check_ragged(item, dim + 1)


def _to_plain(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_to_plain(x) for x in data]
    return data


def _finish(array, dtype, requires_grad) -> Tensor:
    t = Tensor._make(array)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.tensor: always copies; infers bool/int64/float32 from Python data."""
    if isinstance(data, Tensor):
        dt = dtypes.from_any(dtype) if dtype is not None else data.dtype
        return _finish(data._data.astype(dt.np, copy=True), dt, requires_grad)
    if hasattr(data, "__array__") and not isinstance(data, (list, tuple)):
        import numpy
        host = numpy.asarray(data)
        dt = dtypes.from_any(dtype) if dtype is not None else dtypes.from_any(host.dtype)
        return _finish(from_numpy(host.astype(dt.np, copy=True)), dt, requires_grad)
    _check_ragged(data)
    dt = dtypes.from_any(dtype) if dtype is not None else _infer_dtype(data)
    try:
        array = xp.array(_to_plain(data), dtype=dt.np)
    except (TypeError, ValueError) as e:
        raise TypeError(f"Could not convert data to a tensor: {e}") from None
    return _finish(array, dt, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or dtypes.from_any(dtype) is data.dtype):
        return data
    return tensor(data, dtype=dtype)


def legacy_tensor_data(*args, **kwargs):
    """torch.Tensor(...): float32 from data, or an uninitialised float32 tensor of a shape."""
    if kwargs:
        raise TypeError(f"Tensor() got unexpected keyword arguments {sorted(kwargs)}")
    if not args:
        return xp.empty((0,), dtype=_DEFAULT.np)
    if len(args) == 1 and isinstance(args[0], (list, tuple)) and not (
            args[0] and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args[0])
            and False):
        return tensor(args[0], dtype=_DEFAULT)._data
    if len(args) == 1 and isinstance(args[0], Tensor):
        return args[0]._data
    return xp.zeros(_size_args(args), dtype=_DEFAULT.np)


def _dtype(dtype, default=_DEFAULT) -> dtypes.dtype:
    return default if dtype is None else dtypes.from_any(dtype)


def _make(array, dtype, requires_grad) -> Tensor:
    return _finish(array, dtype, requires_grad)


def _shape(size):
    shape = _size_args(size)
    for d in shape:
        if d < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {d}: {list(shape)}")
    return shape


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    dt = _dtype(dtype)
    return _make(xp.zeros(_shape(size), dtype=dt.np), dt, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    dt = _dtype(dtype)
    return _make(xp.ones(_shape(size), dtype=dt.np), dt, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    dt = _dtype(dtype)
    return _make(xp.zeros(_shape(size), dtype=dt.np), dt, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dt = _dtype(dtype, _infer_dtype(fill_value))
    return _make(xp.full(_shape((size,) if isinstance(size, int) else size), fill_value, dtype=dt.np),
                 dt, requires_grad)


def _float_dtype(dtype, name):
    dt = _dtype(dtype)
    if not dt.is_floating_point:
        raise RuntimeError(f'"{name}" not implemented for \'{dt.name.capitalize() if dt.name != "int64" else "Long"}\'')
    return dt


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator_=None) -> Tensor:
    dt = _float_dtype(dtype, "check_uniform_bounds")
    shape = _shape(size)
    array = generator().random(shape, dtype=xp.float64 if dt.np.itemsize == 8 else xp.float32)
    return _make(array.astype(dt.np, copy=False), dt, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _float_dtype(dtype, "normal_kernel_cpu")
    shape = _shape(size)
    array = generator().standard_normal(shape, dtype=xp.float64 if dt.np.itemsize == 8 else xp.float32)
    return _make(array.astype(dt.np, copy=False), dt, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = _dtype(dtype, dtypes.int64)
    array = generator().integers(low, high, size=_shape(size))
    return _make(array.astype(dt.np), dt, requires_grad)


def randperm(n: int, *, dtype=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype, dtypes.int64)
    return _make(generator().permutation(n).astype(dt.np), dt, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if vals[2] == 0:
        raise RuntimeError("step must be nonzero")
    if (vals[1] - vals[0]) / vals[2] < 0:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    inferred = dtypes.int64 if all(isinstance(v, numbers.Integral) for v in vals) else _DEFAULT
    dt = _dtype(dtype, inferred)
    # computed in float64 (as torch does for floats) and cast: avoids float32 drift on long ranges
    array = xp.arange(*vals, dtype=xp.float64 if dt.is_floating_point else xp.int64)
    return _make(array.astype(dt.np, copy=False), dt, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = _dtype(dtype)
    return _make(xp.linspace(start, end, steps, dtype=xp.float64).astype(dt.np), dt, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype)
    return _make(xp.eye(n, m, dtype=dt.np), dt, requires_grad)


def _like(fn):
    def like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:  # noqa: A002
        return fn(*input.shape, dtype=dtype if dtype is not None else input.dtype,
                  requires_grad=requires_grad, **kw)
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return full(tuple(input.shape), fill_value, dtype=dtype if dtype is not None else input.dtype,
                requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    return Tensor._make(from_numpy_array(array))


def from_numpy_array(array):
    from .backend import from_numpy as to_backend
    return to_backend(array)
