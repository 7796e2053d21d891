"""torch dtypes as objects, and torch's type-promotion rules."""
from __future__ import annotations

from .backend import xp


class dtype:  # noqa: N801  (torch's spelling)
    """A tensor element type, printed as torch prints it (``torch.float32``)."""

    __slots__ = ("name", "np", "is_floating_point", "itemsize", "_category")

    def __init__(self, name: str, np_dtype, category: int) -> None:
        self.name = name
        self.np = xp.dtype(np_dtype)
        self.is_floating_point = category == FLOAT
        self.itemsize = self.np.itemsize
        self._category = category

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (by_name, (self.name,))


BOOL, INT, FLOAT = 0, 1, 2

bool_ = dtype("bool", "bool", BOOL)
uint8 = dtype("uint8", "uint8", INT)
int8 = dtype("int8", "int8", INT)
int16 = dtype("int16", "int16", INT)
int32 = dtype("int32", "int32", INT)
int64 = dtype("int64", "int64", INT)
float16 = dtype("float16", "float16", FLOAT)
float32 = dtype("float32", "float32", FLOAT)
float64 = dtype("float64", "float64", FLOAT)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
# torch's aliases: torch.float is float32, torch.long is int64, ...
ALIASES = {
    "bool": bool_, "uint8": uint8, "int8": int8, "int16": int16, "short": int16,
    "int32": int32, "int": int32, "int64": int64, "long": int64,
    "float16": float16, "half": float16, "float32": float32, "float": float32,
    "float64": float64, "double": float64,
}

DEFAULT_FLOAT = float32


def by_name(name: str) -> dtype:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise TypeError(f"unknown dtype {name!r}") from None


def of_array(array) -> dtype:
    try:
        return _BY_NP[array.dtype]
    except KeyError:
        raise TypeError(f"arrays of numpy dtype {array.dtype} are not supported") from None


def of_dtype(np_dtype) -> dtype:
    """The torch dtype of a numpy dtype."""
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        raise TypeError(f"numpy dtype {np_dtype} is not supported") from None


def from_any(value) -> dtype:
    """Accept a dtype, a numpy dtype, a Python type or a name (what torch's dtype= takes, and a bit more)."""
    if isinstance(value, dtype):
        return value
    if value is float:
        return float64  # torch maps Python's float to torch.float64
    if value is int:
        return int64
    if value is bool:
        return bool_
    if isinstance(value, str):
        name = value[6:] if value.startswith("torch.") else value
        if name in ALIASES:
            return ALIASES[name]
    try:
        return _BY_NP[xp.dtype(value)]
    except (TypeError, KeyError):
        raise TypeError(f"dtype must be a torch dtype, got {value!r}") from None


# Lattice of torch.promote_types within the supported dtypes.
_ORDER_INT = (uint8, int8, int16, int32, int64)


def promote_types(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a._category != b._category:
        hi, lo = (a, b) if a._category > b._category else (b, a)
        return hi
    if a._category == FLOAT:
        return a if a.itemsize >= b.itemsize else b
    # integers: uint8 with a signed type needs the next wider signed type
    if uint8 in (a, b):
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    return a if a.itemsize >= b.itemsize else b


def _scalar_dtype(value) -> dtype:
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return DEFAULT_FLOAT
    raise TypeError(f"unsupported operand type {type(value).__name__}")


def _combine(higher: dtype | None, lower: dtype | None) -> dtype | None:
    # torch's combine_categories: a higher-priority group keeps its dtype unless a
    # lower-priority group brings a higher category.
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher._category == FLOAT:
        return higher
    if higher is bool_ or lower._category == FLOAT:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> dtype:
    """torch.result_type over arrays (n-d and 0-d) and Python scalars."""
    dim = zero = wrapped = None
    for x in operands:
        if isinstance(x, (bool, int, float)):
            d = _scalar_dtype(x)
            wrapped = d if wrapped is None else (
                wrapped if wrapped._category >= d._category else d)
            continue
        d = _BY_NP[x.dtype]
        if x.ndim:
            dim = d if dim is None else promote_types(dim, d)
        else:
            zero = d if zero is None else promote_types(zero, d)
    result = _combine(dim, _combine(zero, wrapped))
    if result is None:
        raise TypeError("result_type needs at least one operand")
    return result
