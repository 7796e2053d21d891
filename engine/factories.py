"""Tensor factories with torch's signatures, dtype inference and errors."""
from __future__ import annotations

import collections.abc
import math
import numbers
import operator
import warnings

import numpy

from . import dtypes, errors
from .backend import from_numpy as to_backend
from .backend import xp
from .checks import check_factory_requires_grad, check_legacy_new_kwargs
from .device import cuda, place
from .random import generator
from .size import Size
from .tensor import Tensor

_DEFAULT = dtypes.DEFAULT_FLOAT
_MAX_DIMS = 64


def _tp_name(x) -> str:
    """Python's tp_name, as torch's messages print a type."""
    kind = type(x)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _is_sequence(x) -> bool:
    # PySequence_Check: lists, tuples, ranges, strings, numpy arrays; not dicts, sets, or tensors
    return isinstance(x, (list, tuple, range, str, numpy.ndarray)) or (
        isinstance(x, collections.abc.Sequence) and not isinstance(x, Tensor))


def _infer_dtype(obj) -> dtypes.dtype:
    """torch.tensor's infer_scalar_type: promote_types over nested Python data."""
    if isinstance(obj, numpy.generic):
        return dtypes.from_any(obj.dtype)
    if isinstance(obj, float):
        return _DEFAULT
    if isinstance(obj, bool):
        return dtypes.bool_
    if isinstance(obj, int):
        return dtypes.int64
    if isinstance(getattr(obj, "dtype", None), dtypes.dtype):  # an engine or client tensor
        return obj.dtype
    if isinstance(obj, str):
        raise TypeError(f"new(): invalid data type '{_tp_name(obj)}'")
    if isinstance(obj, numpy.ndarray):
        return dtypes.from_any(obj.dtype)
    if _is_sequence(obj):
        if isinstance(obj, list):
            kinds = set(map(type, obj))
            if kinds and kinds <= _PLAIN:  # the common leaf level, at C speed
                return _DEFAULT if float in kinds else dtypes.int64 if int in kinds else dtypes.bool_
        result = None
        for item in obj:
            dt = _infer_dtype(item)
            result = dt if result is None else dtypes.promote_types(result, dt)
        return _DEFAULT if result is None else result
    raise RuntimeError(f"Could not infer dtype of {_tp_name(obj)}")


def _compute_sizes(obj) -> list:
    """torch's compute_sizes: the shape read along the first element of each level."""
    sizes = []
    while _is_sequence(obj):
        n = len(obj)
        sizes.append(n)
        if len(sizes) > _MAX_DIMS:
            raise ValueError(f"too many dimensions '{_tp_name(obj)}'")
        if n == 0:
            break
        obj = obj[0]
    return sizes


def _store_scalar(obj, dt: dtypes.dtype):
    """torch's store_scalar: one element converted as the target dtype converts it."""
    if dt.is_floating_point:
        if isinstance(obj, (int, float)) or hasattr(type(obj), "__float__") or hasattr(type(obj), "__index__"):
            return float(obj)
        raise TypeError(f"must be real number, not {_tp_name(obj)}")
    info = numpy.iinfo(dt.np) if dt is not dtypes.bool_ else None
    if isinstance(obj, float):
        if dt is dtypes.bool_:
            return bool(obj)
        # torch's checked_convert compares in double, then casts (2.0**63 becomes int64's minimum)
        if not float(info.min) <= obj <= float(info.max):
            raise RuntimeError(f"value cannot be converted to type {dt.name} without overflow")
        bits = 8 * dt.itemsize
        value = int(obj) % (1 << bits)
        return value - (1 << bits) if info.min and value >= 1 << (bits - 1) else value
    value = operator.index(obj)
    if dt is dtypes.bool_:
        return bool(value)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError("Overflow when unpacking long long")
    lo = -int(info.max) if info.min == 0 else int(info.min)  # unsigned types wrap negatives
    if not lo <= value <= int(info.max):
        raise RuntimeError(f"value cannot be converted to type {dt.name} without overflow")
    return value % (int(info.max) + 1) if value < 0 and info.min == 0 else value


def _store(obj, dim: int, sizes: list, dt: dtypes.dtype, out: list) -> None:
    """torch's recursive_store: checks every level against the shape, flattening into ``out``."""
    if dim == len(sizes):
        out.append(_store_scalar(obj, dt))
        return
    if not isinstance(obj, (list, tuple)):
        try:
            obj = list(obj)
        except TypeError:
            raise TypeError("not a sequence") from None
    n = sizes[dim]
    if len(obj) != n:
        raise ValueError(f"expected sequence of length {n} at dim {dim} (got {len(obj)})")
    if dim == len(sizes) - 1 and _plain_run(obj, dt):
        out.extend(obj)  # plain Python numbers that numpy converts exactly as torch would
        return
    for item in obj:
        if not _ndarray_list_warned and isinstance(item, numpy.ndarray):
            _ndarray_list_warned.append(True)  # torch warns once per process
            warnings.warn(errors.NDARRAY_LIST, UserWarning, stacklevel=4)
        _store(item, dim + 1, sizes, dt, out)


_ndarray_list_warned: list = []
_PLAIN = {float, int, bool}


def _plain_run(items, dt: dtypes.dtype) -> bool:
    """Whether a run of elements needs no per-element check: Python numbers that fit the dtype."""
    kinds = set(map(type, items))
    if not kinds <= _PLAIN:
        return False
    if dt.is_floating_point:
        return True
    if float in kinds:
        return False
    info = numpy.iinfo(numpy.int64 if dt is dtypes.bool_ else dt.np)
    return not items or (min(items) >= int(info.min) and max(items) <= int(info.max))


def host_array(data, dtype=None) -> numpy.ndarray:
    """A host array from nested Python data as torch.tensor reads it: inferred dtype, torch's errors."""
    dt = dtypes.from_any(dtype) if dtype is not None else _infer_dtype(data)
    sizes = _compute_sizes(data)
    if math.prod(sizes) == 0:
        return numpy.zeros(sizes, dtype=dt.np)
    flat: list = []
    _store(data, 0, sizes, dt, flat)
    with numpy.errstate(over="ignore"):  # float32/16 overflow is inf, as in torch
        return numpy.array(flat, dtype=dt.np).reshape(sizes)


def _check_ragged(data, dtype=None) -> None:
    """Raise torch's error for data that torch.tensor cannot read (ragged, not a sequence, ...)."""
    host_array(data, dtype)


def _from_data(data, dt: dtypes.dtype):
    return to_backend(host_array(data, dt))


def _finish(array, dtype, requires_grad) -> Tensor:
    t = Tensor._make(array)
    if requires_grad:
        check_factory_requires_grad(requires_grad, array.dtype)
        t._requires_grad = True
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """torch.tensor: always copies; infers bool/int64/float32 from Python data."""
    _on(device)
    if isinstance(data, Tensor):
        warnings.warn(errors.COPY_CONSTRUCT, UserWarning, stacklevel=2)
        dt = dtypes.from_any(dtype) if dtype is not None else data.dtype
        return _finish(data._data.astype(dt.np, copy=True), dt, requires_grad)
    if isinstance(data, (numpy.ndarray, numpy.generic)) or (
            hasattr(data, "__array__") and not _is_sequence(data)):
        host = numpy.asarray(data)
        dt = dtypes.from_any(dtype) if dtype is not None else dtypes.from_any(host.dtype)
        return _finish(to_backend(host.astype(dt.np, copy=True)), dt, requires_grad)
    dt = dtypes.from_any(dtype) if dtype is not None else _infer_dtype(data)
    return _finish(_from_data(data, dt), dt, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    _on(device)
    if isinstance(data, Tensor) and (dtype is None or dtypes.from_any(dtype) is data.dtype):
        return data
    return tensor(data, dtype=dtype)


def legacy_tensor_data(*args, **kwargs):
    """torch.Tensor(...): float32 from data, or an uninitialised float32 tensor of a shape."""
    check_legacy_new_kwargs(kwargs)
    if not args:
        return xp.empty((0,), dtype=_DEFAULT.np)
    if len(args) == 1:
        data = args[0]
        if isinstance(data, Tensor):
            return data._data
        if _is_sequence(data) and not isinstance(data, Size):
            # legacy data: no inference, every element stored as float32
            if isinstance(data, numpy.ndarray):
                return to_backend(data.astype(_DEFAULT.np))
            return _from_data(data, _DEFAULT)
    shape = _shape("new", args)
    # torch leaves the memory uninitialised; zeros is one valid content
    return xp.zeros(shape, dtype=_DEFAULT.np)


def _on(device_) -> None:
    """A factory's ``device=``: cpu, or cuda where the backend computes on a GPU (torch's errors else)."""
    if device_ is not None:
        place(device_, cuda.is_available())


def _dtype(dtype, default=_DEFAULT) -> dtypes.dtype:
    return default if dtype is None else dtypes.from_any(dtype)


def _make(array, dtype, requires_grad) -> Tensor:
    return _finish(array, dtype, requires_grad)


def _index(x):
    """An int as torch's int-list parser takes it (ints, numpy ints, 0-d integer tensors); else None."""
    if isinstance(x, (float, str)) or x is None:
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def _shape(name: str, size, *, position: int = 1, varargs: bool = True) -> tuple:
    """torch's parsing of a ``size`` argument: ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])``, ``f(Size)``,
    with torch's TypeErrors for what is not a tuple of ints and its RuntimeError for negative sizes."""
    if varargs and not size:
        raise TypeError(f'{name}() missing 1 required positional arguments: "size"')
    if varargs and len(size) == 1:
        size = size[0]
    elif varargs:
        if _index(size[0]) is None or isinstance(size[0], bool):
            raise TypeError(f"{name}() takes 1 positional argument but {len(size)} were given")
    if not isinstance(size, (list, tuple)):
        if varargs and not isinstance(size, bool) and _index(size) is not None:
            size = (size,)
        else:
            raise TypeError(f"{name}(): argument 'size' (position {position}) must be tuple of ints, "
                            f"not {_tp_name(size)}")
    shape = []
    for i, d in enumerate(size):
        v = _index(d)
        if v is None:
            if i == 0:
                raise TypeError(f"{name}(): argument 'size' (position {position}) must be tuple of ints, but "
                                f"found element of type {_tp_name(d)} at pos 0")
            raise TypeError(f"{name}(): argument 'size' failed to unpack the object at pos {i + 1} with error "
                            f"\"type must be tuple of ints,but got {_tp_name(d)}\"")
        shape.append(v)
    for d in shape:
        if d < 0:
            if name == "zeros":
                raise RuntimeError("zeros: Dimension size must be non-negative.")
            raise RuntimeError(f"Trying to create tensor with negative dimension {d}: {shape}")
    return tuple(shape)


def _size_or_kw(name, size, kw_size):
    if kw_size is not None:
        if size:
            raise TypeError(f"{name}() got multiple values for argument 'size'")
        size = (kw_size,)
    return _shape(name, size)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None, **kw) -> Tensor:
    _on(device)
    shape = _size_or_kw("zeros", size, kw.pop("size", None))
    dt = _dtype(dtype)
    return _make(xp.zeros(shape, dtype=dt.np), dt, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None, **kw) -> Tensor:
    _on(device)
    shape = _size_or_kw("ones", size, kw.pop("size", None))
    dt = _dtype(dtype)
    return _make(xp.ones(shape, dtype=dt.np), dt, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, out=None, **kw) -> Tensor:
    _on(device)
    shape = _size_or_kw("empty", size, kw.pop("size", None))
    dt = _dtype(dtype)
    # torch leaves the memory uninitialised; zeros is one valid content
    return _make(xp.zeros(shape, dtype=dt.np), dt, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _on(device)
    shape = _shape("full", size, varargs=False)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if not isinstance(fill_value, numbers.Number):
        raise TypeError(f"full(): argument 'fill_value' (position 2) must be Number, not {type(fill_value).__name__}")
    dt = _dtype(dtype, _infer_dtype(fill_value))
    return _make(xp.full(shape, fill_value, dtype=dt.np), dt, requires_grad)


def _float_dtype(dtype, name):
    dt = _dtype(dtype)
    if not dt.is_floating_point:
        raise NotImplementedError(f'"{name}" not implemented for \'{errors.scalar_name(dt)}\'')
    return dt


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator_=None, **kw) -> Tensor:
    _on(device)
    shape = _size_or_kw("rand", size, kw.pop("size", None))
    dt = _float_dtype(dtype, "check_uniform_bounds")
    array = to_backend(generator().random(shape, dtype=numpy.float64 if dt.np.itemsize == 8 else numpy.float32))
    return _make(array.astype(dt.np, copy=False), dt, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    _on(device)
    shape = _size_or_kw("randn", size, kw.pop("size", None))
    dt = _float_dtype(dtype, "normal_kernel_cpu")
    wide = numpy.float64 if dt.np.itemsize == 8 else numpy.float32
    array = to_backend(generator().standard_normal(shape, dtype=wide))
    return _make(array.astype(dt.np, copy=False), dt, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _on(device)
    position = 3
    if size is None:
        if high is None:
            raise TypeError("randint() missing required argument 'size' (pos 2)")
        low, high, size, position = 0, low, high, 2
    elif high is None:
        low, high = 0, low
    shape = _shape("randint", size, position=position, varargs=False)
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = _dtype(dtype, dtypes.int64)
    array = to_backend(generator().integers(low, high, size=shape))
    return _make(array.astype(dt.np), dt, requires_grad)


def randperm(n: int, *, dtype=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype(dtype, dtypes.int64)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    return _make(to_backend(generator().permutation(n).astype(dt.np)), dt, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _on(device)
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if not all(math.isfinite(v) for v in vals[:2]):
        raise RuntimeError(f"unsupported range: {vals[0]} -> {vals[1]}")
    if vals[2] == 0:
        raise RuntimeError("step must be nonzero")
    if (vals[1] - vals[0]) / vals[2] < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    inferred = dtypes.int64 if all(isinstance(v, numbers.Integral) for v in vals) else _DEFAULT
    dt = _dtype(dtype, inferred)
    # computed in float64 (as torch does for floats) and cast: avoids float32 drift on long ranges
    array = xp.arange(*vals, dtype=xp.float64 if dt.is_floating_point else xp.int64)
    return _make(array.astype(dt.np, copy=False), dt, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _on(device)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = _dtype(dtype)
    return _make(xp.linspace(start, end, steps, dtype=xp.float64).astype(dt.np), dt, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    _on(device)
    if n < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    if m is not None and m < 0:
        raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    dt = _dtype(dtype)
    return _make(xp.eye(n, m, dtype=dt.np), dt, requires_grad)


def _like(fn):
    def like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:  # noqa: A002
        _on(device)
        return fn(tuple(input.shape), dtype=dtype if dtype is not None else input.dtype,
                  requires_grad=requires_grad, **kw)
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    _on(device)
    return full(tuple(input.shape), fill_value, dtype=dtype if dtype is not None else input.dtype,
                requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    return Tensor._make(to_backend(array))
