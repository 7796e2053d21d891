"""The Tensor methods' shared parts: argument parsing, the operand rules, and the dispatching base class."""
from __future__ import annotations

import numbers

import numpy

from . import dtypes
from .ops import OPS

_SCALARS = (bool, int, float)
_MASKS = (dtypes.bool_, dtypes.uint8)  # index tensors that act as masks
_UNSET = object()  # an argument not given at all (torch picks another overload when it is given)


def _size_args(args) -> tuple:
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` and ``f(torch.Size([2, 3]))`` all mean shape (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"expected a sequence of integers or a single integer, got '{a!r}'")
    return tuple(int(a) for a in args)


def _kw_size(args: tuple, kw) -> tuple:
    """A sizes argument given positionally (``*args``) or by its keyword (``size=(2, 3)``)."""
    return args if kw is None else (kw,)


def _dim_arg(dim):
    if dim is None:
        return None
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    out = []
    for d in dims:
        # torch's argument parser takes integers only (an integer tensor too): a float or a bool
        # dim is its TypeError, never truncated
        try:
            if isinstance(d, bool) or not hasattr(d, "__index__"):
                raise TypeError
            out.append(d.__index__())
        except TypeError:
            raise TypeError(f"argument 'dim' must be tuple of ints, but found element of type "
                            f"{type(d).__name__}") from None
    return tuple(out)


def _alpha(alpha) -> dict:
    """add/sub's alpha as a param, left out when it is the int 1 (1.0 and True are checked by the op)."""
    return {} if alpha.__class__ is int and alpha == 1 else {"alpha": alpha}


def _scalar(x):
    """Python scalars pass through; numpy scalars become Python ones (numpy.float64 too, a float
    subclass: as an operand it would keep its own dtype, where torch's number is weak; a numpy
    bool becomes a float, as torch reads it)."""
    if x.__class__ in _SCALARS:
        return x
    if isinstance(x, numpy.bool_):  # torch takes it as a float number (np.True_ - t is 1.0 - t)
        return float(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x)
    return x


def _full_slice(s: slice) -> bool:
    return s.start is None and s.stop is None and s.step in (None, 1)



class TensorOps:
    """What every group of Tensor methods builds on: dispatch to the op table, and reading operands."""

    __slots__ = ()
    # numpy defers to a Tensor as it does to torch's: ``np.float64(2) * t`` is ``t.__rmul__``, a
    # Tensor with its graph, not an array computed from the Tensor's values
    __array_priority__ = 1000

    # subclasses provide: _dispatch(op, inputs, params), _dispatch_inplace(op, inputs, params),
    # _as_tensor(value) (a list/array as a tensor in the same place), _factories (what makes new
    # tensors in the same place: zeros, ones, full, empty, tensor), shape, dtype, requires_grad

    def _op(self, name: str, *inputs, **params):
        return self._dispatch(OPS[name], (self,) + inputs, params)

    def _iop(self, name: str, *inputs, **params):
        return self._dispatch_inplace(OPS[name], (self,) + inputs, params)

    def _operand(self, other):
        """An operator's other operand: a Tensor or a number (an array becomes a Tensor);
        NotImplemented for anything else, a list included, as torch's operators refuse it."""
        if isinstance(other, TensorOps):
            return other
        other = _scalar(other)
        if isinstance(other, _SCALARS):
            return other
        if hasattr(other, "__array__") and not isinstance(other, (list, tuple)):
            return self._as_tensor(other)
        return NotImplemented

    def _arg(self, name: str, other, what: str = "other"):
        """A method's other operand (``x.add(other)``): a Tensor or a number, else torch's TypeError
        (a numpy array too, which an operator takes)."""
        operand = NotImplemented if isinstance(other, numpy.ndarray) else self._operand(other)
        if operand is NotImplemented:
            kind = type(other)
            kind = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
            raise TypeError(f"{name}(): argument '{what}' (position 1) must be Tensor, not {kind}")
        return operand


def _broadcast_shapes(a: tuple, b: tuple) -> tuple:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and da != 1 and db != 1:
            raise RuntimeError(f"The size of tensor a ({da}) must match the size of tensor b ({db}) "
                               f"at non-singleton dimension {max(len(a), len(b)) - i}")
        out.append(max(da, db) if da and db else 0)
    return tuple(reversed(out))


class ReturnTypes(tuple):
    """torch.return_types.max / min / sort / topk: a (values, indices) pair printed as torch prints it."""

    _name = "max"

    @classmethod
    def make(cls, name, values, indices):
        obj = cls((values, indices))
        obj._name = name
        return obj

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]

    def __repr__(self) -> str:
        return f"torch.return_types.{self._name}(\nvalues={self[0]!r},\nindices={self[1]!r})"
