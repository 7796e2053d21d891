"""The one codec: host ndarray <-> TensorData, and Python values <-> Value. Nothing is evaluated."""
from __future__ import annotations

import types

import numpy

from . import autograd_pb2 as pb

# The only dtypes that cross the wire; anything else is refused.
DTYPES = {name: numpy.dtype(name).newbyteorder("<") for name in
          ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")}

MAX_DIMS = 64
# Prepared calls a session holds (Kind PREPARE): the server refuses more; a client that needs
# more reuses its ids, oldest first.
MAX_PREPARED = 4096


def encode_array(array: numpy.ndarray, out: pb.TensorData | None = None) -> pb.TensorData:
    msg = out if out is not None else pb.TensorData()
    name = array.dtype.name
    if name not in DTYPES:
        raise TypeError(f"dtype {array.dtype} cannot travel on the wire")
    msg.dtype = name
    msg.shape.extend(array.shape)
    if array.dtype.byteorder == ">":
        array = array.astype(DTYPES[name])
    msg.data = numpy.ascontiguousarray(array).tobytes()
    return msg


def check_header(dtype: str, shape) -> tuple[numpy.dtype, tuple, int]:
    """Validate a dtype name and shape from the wire; returns (dtype, shape, byte count)."""
    dt = DTYPES.get(dtype)
    if dt is None:
        raise TypeError(f"unsupported dtype {dtype!r} on the wire")
    shape = tuple(int(d) for d in shape)
    if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
        raise ValueError(f"invalid tensor shape {list(shape)}")
    n = 1
    for d in shape:
        n *= d
    return dt, shape, n * dt.itemsize


def decode_array(msg: pb.TensorData, writable: bool = True) -> numpy.ndarray:
    dt, shape, nbytes = check_header(msg.dtype, msg.shape)
    if len(msg.data) != nbytes:
        raise ValueError(f"tensor data has {len(msg.data)} bytes; dtype {msg.dtype} and shape "
                         f"{list(shape)} need {nbytes}")
    array = numpy.frombuffer(msg.data, dtype=dt).reshape(shape)
    # the engine writes into tensors in place, so it needs an array it owns
    return array.astype(dt.newbyteorder("="), copy=True) if writable else array


def encode_value(value, out: pb.Value | None = None, ref_of=None) -> pb.Value:
    """A Python value (None, bool, int, float, str, tuple/list, dtype name) as a Value.

    ``ref_of(x)`` returns a tensor id for objects that are tensors (or None).
    """
    v = out if out is not None else pb.Value()
    if value is None:
        v.none = True
    elif isinstance(value, bool):
        v.b = value
    elif isinstance(value, int):
        v.i = value
    elif isinstance(value, float):
        v.f = value
    elif isinstance(value, str):
        v.s = value
    elif isinstance(value, (tuple, list)):
        items = v.list.items
        v.list.SetInParent()
        for x in value:
            encode_value(x, items.add(), ref_of)
    else:
        # tensors first: a tensor has dtype-like attributes too (is_floating_point, itemsize)
        ref = ref_of(value) if ref_of is not None else None
        if ref is not None:
            v.ref = ref
        elif isinstance(value, numpy.generic):
            return encode_value(value.item(), v, ref_of)
        elif hasattr(value, "is_floating_point") and hasattr(value, "itemsize") and hasattr(value, "name"):
            v.dtype = value.name
        else:
            raise TypeError(f"cannot send a {type(value).__name__} to the server")
    return v


def decode_value(v: pb.Value, tensor_of=None, dtype_of=None):
    """A Value as a Python value; lists come back as tuples, refs through ``tensor_of(id)``."""
    kind = v.WhichOneof("kind")
    if kind is None or kind == "none":
        return None
    if kind == "list":
        return tuple(decode_value(x, tensor_of, dtype_of) for x in v.list.items)
    if kind == "ref":
        return tensor_of(v.ref)
    if kind == "dtype":
        return dtype_of(v.dtype) if dtype_of is not None else v.dtype
    if kind == "tensor":
        return decode_array(v.tensor)
    return getattr(v, kind)


# the command kinds as plain attributes (an enum wrapper's lookup is a Python call per access)
KIND = types.SimpleNamespace(**dict(pb.Kind.items()))
