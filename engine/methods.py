"""torch's Tensor methods and operators, written once over an abstract ``_dispatch`` to the op table.

The engine's Tensor runs them locally; the client's Tensor sends them to a server.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy

from . import dtypes
from .ops import OPS, _check_dim
from .size import Size

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


class TensorMethods:
    """Everything on a torch Tensor that is an op, in torch's names and signatures."""

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
        if isinstance(other, TensorMethods):
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

    # ------------------------------------------------------------ new tensors like this one
    # (size= as a keyword too, as torch takes it: the positional sizes are *args)
    def new_zeros(self, *args, size=None, dtype=None, device=None, requires_grad=False):
        return self._factories.zeros(*_kw_size(args, size), dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *args, size=None, dtype=None, device=None, requires_grad=False):
        return self._factories.ones(*_kw_size(args, size), dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_empty(self, *args, size=None, dtype=None, device=None, requires_grad=False):
        return self._factories.empty(*_kw_size(args, size), dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return self._factories.full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        return self._factories.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    # ------------------------------------------------------------ arithmetic
    def add(self, other, *, alpha=1):
        return self._op("add", self._arg("add", other), **_alpha(alpha))

    def sub(self, other, *, alpha=1):
        return self._op("sub", self._arg("sub", other), **_alpha(alpha))

    def mul(self, other):
        return self._op("mul", self._arg("mul", other))

    def div(self, other, *, rounding_mode=_UNSET):
        # naming rounding_mode at all (even None) selects torch's div.Tensor_mode: DivBackward2
        if rounding_mode is _UNSET:
            return self._op("div", self._arg("div", other))
        return self._op("div_mode", self._arg("div", other), rounding_mode=rounding_mode)

    def floor_divide(self, other):
        other = self._arg("floor_divide", other)
        if isinstance(other, TensorMethods):
            return self._op("floor_divide", other)
        return self._op("floor_divide_scalar", other=other)

    def remainder(self, other):
        other = self._arg("remainder", other)
        if isinstance(other, TensorMethods):
            return self._op("remainder", other)
        return self._op("remainder_scalar", other=other)

    true_divide = divide = div
    multiply = mul
    subtract = sub

    def pow(self, exponent):
        exponent = self._arg("pow", exponent, "exponent")
        if isinstance(exponent, TensorMethods):
            return self._op("pow_tensor", exponent)
        return self._op("pow", exponent=exponent)

    def square(self):
        return self.pow(2)

    def neg(self):
        return self._op("neg")

    negative = neg

    def abs(self):
        return self._op("abs")

    def reciprocal(self):
        return self._op("reciprocal")

    def __add__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self._op("add", other)

    def __radd__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self._op("add", other)

    def __sub__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self._op("sub", other)

    def __rsub__(self, other):
        # only a number reaches here as torch's rsub takes it (a list is torch's TypeError too)
        other = _scalar(other)
        return self._op("rsub", other=other) if isinstance(other, _SCALARS) else NotImplemented

    def __mul__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self._op("mul", other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self._op("div", other)

    def __rtruediv__(self, other):
        # torch computes other / self as self.reciprocal() * other
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self.reciprocal()._op("mul", other)

    def __floordiv__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self.floor_divide(other)

    def __rfloordiv__(self, other):
        other = _scalar(other)
        return self._op("rfloor_divide_scalar", other=other) if isinstance(other, _SCALARS) else NotImplemented

    def __mod__(self, other):
        other = self._operand(other)
        return NotImplemented if other is NotImplemented else self.remainder(other)

    def __rmod__(self, other):
        other = _scalar(other)
        return self._op("rremainder_scalar", other=other) if isinstance(other, _SCALARS) else NotImplemented

    def __pow__(self, exponent):
        exponent = self._operand(exponent)
        if exponent is NotImplemented:
            return NotImplemented
        return self.pow(exponent)

    def __rpow__(self, base):
        base = _scalar(base)
        if not isinstance(base, _SCALARS):
            return NotImplemented
        return self._op("pow_scalar_base", base=base)

    def __neg__(self):
        return self.neg()

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __matmul__(self, other):
        if not isinstance(other, TensorMethods):
            return NotImplemented
        return self.matmul(other)

    def __rmatmul__(self, other):
        return NotImplemented

    def __invert__(self):
        if self.dtype is dtypes.bool_:
            return self._op("logical_not")
        raise TypeError("~ (bitwise_not) is only implemented here for bool tensors")

    def __and__(self, other):
        return self._op("bitwise_and", self._arg("bitwise_and", other))

    __rand__ = __and__

    def __or__(self, other):
        return self._op("bitwise_or", self._arg("bitwise_or", other))

    __ror__ = __or__

    # comparisons
    def eq(self, other):
        return self._op("eq", self._arg("eq", other))

    def ne(self, other):
        return self._op("ne", self._arg("ne", other))

    def lt(self, other):
        return self._op("lt", self._arg("lt", other))

    def le(self, other):
        return self._op("le", self._arg("le", other))

    def gt(self, other):
        return self._op("gt", self._arg("gt", other))

    def ge(self, other):
        return self._op("ge", self._arg("ge", other))

    def _compare(name):  # noqa: N805  (a helper run while the class body is built)
        def method(self, other):
            other = self._operand(other)
            if other is NotImplemented or other is None:
                return NotImplemented
            return self._op(name, other)
        method.__name__ = f"__{name}__"
        return method

    __eq__ = _compare("eq")
    __ne__ = _compare("ne")
    __lt__ = _compare("lt")
    __le__ = _compare("le")
    __gt__ = _compare("gt")
    __ge__ = _compare("ge")
    del _compare
    __hash__ = object.__hash__

    greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return self._op("isclose", self._arg("isclose", other), rtol=rtol, atol=atol, equal_nan=equal_nan)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        return bool(self.isclose(other, rtol, atol, equal_nan).all().item())

    def equal(self, other) -> bool:
        return tuple(self.shape) == tuple(other.shape) and bool(self.eq(other).all().item())

    def all(self, dim=None, keepdim=False):
        return self._op("all", **self._reduce_params(dim, keepdim))

    def any(self, dim=None, keepdim=False):
        return self._op("any", **self._reduce_params(dim, keepdim))

    def logical_not(self):
        return self._op("logical_not")

    def logical_and(self, other):
        return self._op("logical_and", self._arg("logical_and", other))

    def logical_or(self, other):
        return self._op("logical_or", self._arg("logical_or", other))

    def nonzero(self, *, as_tuple=False):
        if not as_tuple:
            return self._op("nonzero")
        # torch's nonzero_numpy: a 0-d tensor counts as one element
        return (self.reshape(1) if self.dim() == 0 else self)._op("nonzero").unbind(1)

    def argmax(self, dim=None, keepdim=False):
        return self._op("argmax", dim=dim, keepdim=keepdim)

    def argmin(self, dim=None, keepdim=False):
        return self._op("argmin", dim=dim, keepdim=keepdim)

    def _tensor_arg(self, name: str, other, position: int = 1):
        """An argument torch takes only as a Tensor (maximum's other): anything else is its TypeError."""
        if not isinstance(other, TensorMethods):
            raise TypeError(f"{name}(): argument 'other' (position {position}) must be Tensor, not "
                            f"{type(other).__name__}")
        return other

    def maximum(self, other):
        return self._op("maximum", self._tensor_arg("maximum", other))

    def minimum(self, other):
        return self._op("minimum", self._tensor_arg("minimum", other))

    def _reduce_params(self, dim, keepdim):
        return {} if dim is None else {"dim": _dim_arg(dim)[0] if not isinstance(dim, (tuple, list)) else _dim_arg(dim),
                                       "keepdim": keepdim}

    # ------------------------------------------------------------ pointwise functions
    def exp(self):
        return self._op("exp")

    def log(self):
        return self._op("log")

    def sqrt(self):
        return self._op("sqrt")

    def sin(self):
        return self._op("sin")

    def cos(self):
        return self._op("cos")

    def tanh(self):
        return self._op("tanh")

    def _pointwise(name):  # noqa: N805  (a helper run while the class body is built)
        def method(self):
            return self._op(name)
        method.__name__ = name
        return method

    expm1, log1p, log2, log10 = _pointwise("expm1"), _pointwise("log1p"), _pointwise("log2"), _pointwise("log10")
    rsqrt, tan, sinh, cosh = _pointwise("rsqrt"), _pointwise("tan"), _pointwise("sinh"), _pointwise("cosh")
    asin, acos, atan = _pointwise("asin"), _pointwise("acos"), _pointwise("atan")
    arcsin, arccos, arctan = asin, acos, atan
    floor, ceil, trunc, frac = _pointwise("floor"), _pointwise("ceil"), _pointwise("trunc"), _pointwise("frac")
    fix = trunc
    isnan, isinf, isfinite = _pointwise("isnan"), _pointwise("isinf"), _pointwise("isfinite")
    del _pointwise

    def flip(self, *args, dims=None):
        dims = _kw_size(args, dims)
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = tuple(dims[0])
        return self._op("flip", dims=tuple(int(d) for d in dims))

    def cumsum(self, dim, *, dtype=None):
        return self._op("cumsum", dim=int(dim), dtype=None if dtype is None else dtypes.from_any(dtype))

    def masked_fill(self, mask, value):
        if isinstance(value, TensorMethods):
            return self._op("masked_fill_tensor", mask, value)
        value = _scalar(value)
        if not isinstance(value, _SCALARS):
            raise TypeError(f"masked_fill(): argument 'value' must be Number, not {type(value).__name__}")
        return self._op("masked_fill", mask, value=value)

    def masked_fill_(self, mask, value):
        if isinstance(value, TensorMethods):
            return self._iop("masked_fill_tensor", mask, value)
        value = _scalar(value)
        if not isinstance(value, _SCALARS):
            raise TypeError(f"masked_fill_(): argument 'value' must be Number, not {type(value).__name__}")
        return self._iop("masked_fill", mask, value=value)

    def index_select(self, dim, index):
        return self._op("index_select", index, dim=int(dim))

    def gather(self, dim, index):
        return self._op("gather", index, dim=int(dim))

    def repeat(self, *args, repeats=None):
        repeats = _kw_size(args, repeats)
        if not repeats:
            raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
        return self._op("repeat", repeats=_size_args(repeats))

    def tril(self, diagonal=0):
        return self._op("tril", diagonal=int(diagonal))

    def triu(self, diagonal=0):
        return self._op("triu", diagonal=int(diagonal))

    def round(self, *, decimals=_UNSET):
        # naming decimals at all selects torch's round.decimals overload: RoundBackward1
        if decimals is _UNSET:
            return self._op("round")
        return self._op("round_decimals", decimals=int(decimals))

    def round_(self, *, decimals=_UNSET):
        if decimals is _UNSET:
            return self._iop("round")
        return self._iop("round_decimals", decimals=int(decimals))

    def sigmoid(self):
        return self._op("sigmoid")

    def relu(self):
        return self._op("relu")

    def sign(self):
        return self._op("sign")

    def _clamp_args(self, name, min, max):  # noqa: A002
        """(op name, inputs, params): tensor bounds are inputs (torch's clamp.Tensor, ClampBackward0)."""
        if isinstance(min, TensorMethods) or isinstance(max, TensorMethods):
            if not all(v is None or isinstance(v, TensorMethods) for v in (min, max)):
                got = ", ".join(f"{k}={'Tensor' if isinstance(v, TensorMethods) else type(v).__name__}"
                                for k, v in (("min", min), ("max", max)) if v is not None)
                raise TypeError(f"{name}() received an invalid combination of arguments - got ({got}, ), but "
                                "expected one of:\n * (Tensor min = None, Tensor max = None)\n"
                                " * (Number min = None, Number max = None)\n")
            return "clamp_tensor", (min, max), {}
        return "clamp", (), {"min": _scalar(min), "max": _scalar(max)}

    def clamp(self, min=None, max=None):  # noqa: A002
        name, inputs, params = self._clamp_args("clamp", min, max)
        return self._op(name, *inputs, **params)

    clip = clamp

    def clamp_min(self, min):  # noqa: A002
        if isinstance(min, TensorMethods):
            return self._op("clamp_min_tensor", min)
        return self._op("clamp_min", min=_scalar(min))

    def clamp_max(self, max):  # noqa: A002
        if isinstance(max, TensorMethods):
            return self._op("clamp_max_tensor", max)
        return self._op("clamp_max", max=_scalar(max))

    def clamp_min_(self, min):  # noqa: A002
        if isinstance(min, TensorMethods):
            return self._iop("clamp_min_tensor", min)
        return self._iop("clamp_min", min=_scalar(min))

    def clamp_max_(self, max):  # noqa: A002
        if isinstance(max, TensorMethods):
            return self._iop("clamp_max_tensor", max)
        return self._iop("clamp_max", max=_scalar(max))

    def where(self, condition, other):
        return self._dispatch(OPS["where"], (condition, self, self._arg("where", other)), {})

    def softmax(self, dim, dtype=None):
        # dtype= casts first, as torch does (a ToCopyBackward0 under the SoftmaxBackward0)
        return (self if dtype is None else self.to(dtype))._op("softmax", dim=dim)

    def log_softmax(self, dim, dtype=None):
        return (self if dtype is None else self.to(dtype))._op("log_softmax", dim=dim)

    # ------------------------------------------------------------ reductions
    # dtype= is a parameter of the reduction itself: torch records no ToCopyBackward0 for it
    # a dim given at all, None included, selects torch's dim overload (SumBackward1, every dim
    # reduced for None, keepdim honoured)
    def sum(self, dim=_UNSET, keepdim=False, *, dtype=None):
        cast = {} if dtype is None else {"dtype": dtypes.from_any(dtype)}
        if dim is _UNSET:
            return self._op("sum", **cast)
        return self._op("sum_dim", dim=_dim_arg(dim) or (), keepdim=keepdim, **cast)

    def mean(self, dim=_UNSET, keepdim=False, *, dtype=None):
        cast = {} if dtype is None else {"dtype": dtypes.from_any(dtype)}
        if dim is _UNSET:
            return self._op("mean", **cast)
        return self._op("mean_dim", dim=_dim_arg(dim) or (), keepdim=keepdim, **cast)

    def _var_params(self, dim, unbiased, keepdim, correction):
        if isinstance(dim, bool):  # var(True): the old positional unbiased
            dim, unbiased = None, dim
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return {"dim": _dim_arg(dim), "correction": correction, "keepdim": keepdim}

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self._op("var", **self._var_params(dim, unbiased, keepdim, correction))

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self._op("std", **self._var_params(dim, unbiased, keepdim, correction))

    def _extreme(self, name, dim, keepdim, other):
        if isinstance(dim, TensorMethods):
            other, dim = dim, _UNSET
        if other is not None:
            return self._op("maximum" if name == "max" else "minimum", other)
        if dim is _UNSET and keepdim is _UNSET:
            return self._op(name)
        if dim is _UNSET or dim is None:
            # torch's overloads are (), (Tensor other) and (int dim, bool keepdim): keepdim alone, or
            # a None dim, matches none of them
            got = "keepdim=bool, " if dim is _UNSET else "NoneType"
            raise TypeError(f"{name}() received an invalid combination of arguments - got ({got}), but expected one "
                            "of:\n * ()\n * (Tensor other)\n * (int dim, bool keepdim = False)\n")
        keepdim = False if keepdim is _UNSET else keepdim
        values, indices = self._op(name + "_dim", dim=int(dim), keepdim=keepdim)
        return ReturnTypes.make(name, values, indices)

    def logsumexp(self, dim, keepdim=False):
        if dim is None:
            raise TypeError("logsumexp(): argument 'dim' (position 1) must be tuple of ints, not NoneType")
        return self._op("logsumexp", dim=_dim_arg(dim), keepdim=keepdim)

    def argsort(self, dim=-1, descending=False, stable=False):
        return self._op("sort", dim=int(dim), descending=bool(descending))[1]

    def sort(self, dim=-1, descending=False, *, stable=None):
        # naming stable at all selects torch's sort.stable overload: SortBackward1
        name = "sort" if stable is None else "sort_stable"
        values, indices = self._op(name, dim=int(dim), descending=bool(descending))
        return ReturnTypes.make("sort", values, indices)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002  (torch's keyword)
        values, indices = self._op("topk", k=int(k), dim=int(dim), largest=bool(largest), sorted=bool(sorted))
        return ReturnTypes.make("topk", values, indices)

    def max(self, dim=_UNSET, keepdim=_UNSET, *, other=None):
        return self._extreme("max", dim, keepdim, other)

    def min(self, dim=_UNSET, keepdim=_UNSET, *, other=None):
        return self._extreme("min", dim, keepdim, other)

    def amax(self, dim=(), keepdim=False):
        return self._op("amax", dim=_dim_arg(dim) or None, keepdim=keepdim)

    def amin(self, dim=(), keepdim=False):
        return self._op("amin", dim=_dim_arg(dim) or None, keepdim=keepdim)

    def prod(self, dim=_UNSET, keepdim=False, *, dtype=None):
        cast = {} if dtype is None else {"dtype": dtypes.from_any(dtype)}
        if dim is None or isinstance(dim, (tuple, list)):
            raise TypeError(f"prod() received an invalid combination of arguments - got ({type(dim).__name__}), but "
                            "expected one of:\n * (*, torch.dtype dtype = None)\n"
                            " * (int dim, bool keepdim = False, *, torch.dtype dtype = None)\n")
        if dim is _UNSET:
            return self._op("prod", **cast)
        return self._op("prod_dim", dim=int(dim), keepdim=keepdim, **cast)

    def norm(self, p="fro", dim=None, keepdim=False):
        if p == "fro" and isinstance(dim, (tuple, list)) and len(dim) > 2:
            # torch.norm hands this case to linalg.matrix_norm, which refuses it
            raise RuntimeError("linalg.matrix_norm: dim must be a 2-tuple. Got " + " ".join(str(d) for d in dim))
        if isinstance(p, str) and p != "fro":
            raise NotImplementedError(f"norm(p={p!r}) (a matrix norm) is not supported")
        if p in ("fro", None):
            p = 2
        return self._op("norm", ord=float(p) if not isinstance(p, int) else p,
                        dim=_dim_arg(dim), keepdim=keepdim)

    # ------------------------------------------------------------ linear algebra
    def mm(self, mat2):
        return self._op("mm", mat2)

    def bmm(self, mat2):
        return self._op("bmm", mat2)

    def dot(self, other):
        return self._op("dot", other)

    def mv(self, vec):
        return self._op("mv", vec)

    def matmul(self, other):
        """torch.matmul's dispatch onto dot/mv/mm/bmm, which sets the node names torch shows."""
        da, db = self.dim(), other.dim()
        if da == 0 or db == 0:
            raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {da}D and {db}D")
        if da == 1 and db == 1:
            return self.dot(other)
        if da == 2 and db == 1:
            return self.mv(other)
        if da == 1 and db == 2:
            return self.unsqueeze(0).mm(other)._op("_squeeze_matmul", dim=0)
        if da == 2 and db == 2:
            return self.mm(other)
        if da == 3 and db == 3:
            # torch 2.13 drops a batch of one from a 3-d operand that requires grad when the other
            # has a real batch, so the product folds into one mm
            if self.shape[0] == 1 and other.shape[0] != 1 and self.requires_grad:
                return self.squeeze(0).matmul(other)
            if other.shape[0] == 1 and self.shape[0] != 1 and other.requires_grad:
                return self.matmul(other.squeeze(0))
        if _should_fold(self, other):
            # fold the batch of the larger tensor into mm/mv rows (torch's should_fold case)
            transpose = db > da
            t1 = other.mT if transpose else self
            t2 = (self.t() if da == 2 else self) if transpose else other
            lead = tuple(t1.shape[:-1])
            folded = t1.reshape(math.prod(lead), t1.shape[-1])
            if t2.dim() == 2:
                out = folded.mm(t2)._op("_unsafe_view", shape=lead + (t2.shape[1],))
                # torch copies a transposed result back to contiguous: a CloneBackward0
                return out.mT.contiguous() if transpose else out
            return folded.mv(t2)._op("_unsafe_view", shape=lead)
        # batched: expand both to the broadcast batch, flatten it, bmm
        n = self.shape[-2] if da > 1 else 1
        m1, m2 = self.shape[-1], other.shape[-2] if db > 1 else other.shape[0]
        p = other.shape[-1] if db > 1 else 1
        batch = _broadcast_shapes(tuple(self.shape[:-2]), tuple(other.shape[:-2]))
        count = math.prod(batch)
        a3 = self.expand(batch + (n, m1)).reshape(count, n, m1)
        if db == 1:
            out = a3.bmm(other.expand(batch + (m2,)).reshape(count, m2).unsqueeze(2)).squeeze(-1)
        else:
            out = a3.bmm(other.expand(batch + (m2, p)).reshape(count, m2, p))
        shape = batch + ((n,) if da > 1 else ()) + ((p,) if db > 1 else ())
        return out._op("_unsafe_view", shape=shape)

    # ------------------------------------------------------------ shapes
    def dim(self) -> int:
        return len(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self.shape)
        n = len(self.shape)
        if not -max(n, 1) <= dim < max(n, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of [{-max(n, 1)}, "
                             f"{max(n, 1) - 1}], but got {dim})")
        return self.shape[dim]

    def numel(self) -> int:
        return math.prod(self.shape)

    nelement = numel

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def t(self):
        return self._op("t")

    @property
    def T(self):  # noqa: N802
        # torch's numpy_T: a permute for every dim count, 2 included
        return self.permute(*reversed(range(self.dim())))

    @property
    def mT(self):  # noqa: N802
        return self.transpose(-2, -1)

    def transpose(self, dim0, dim1):
        return self._op("transpose", dim0=dim0, dim1=dim1)

    swapaxes = transpose

    def permute(self, *args, dims=None):
        return self._op("permute", dims=_size_args(args if dims is None else (dims,)))

    def view(self, *args, size=None):
        shape = _kw_size(args, size)
        if len(shape) == 1 and isinstance(shape[0], dtypes.dtype):
            raise NotImplementedError("view(dtype) is not supported")
        return self._op("view", shape=_size_args(shape))

    def view_as(self, other):
        return self.view(tuple(other.shape))

    def reshape(self, *args, shape=None):
        # torch: a view of a contiguous tensor, an alias with new strides when the memory allows
        # it (ReshapeAliasBackward0), else a contiguous copy
        shape = _size_args(_kw_size(args, shape))
        if self.is_contiguous():
            return self._op("view", shape=shape)
        if self._can_view(shape):
            return self._op("_reshape_alias", shape=shape)
        return self.clone()._op("_unsafe_view", shape=shape)

    def reshape_as(self, other):
        return self.reshape(tuple(other.shape))

    def flatten(self, start_dim=0, end_dim=-1):
        n = self.dim()
        if n == 0:
            return self.reshape(1)
        s, e = _check_dim(start_dim, n), _check_dim(end_dim, n)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        if s == e:
            return self
        shape = tuple(self.shape)
        return self.reshape(shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])

    def squeeze(self, dim=None):
        if dim is None:
            return self._op("squeeze")
        if isinstance(dim, (tuple, list)):
            return self._op("squeeze_dims", dim=tuple(dim))
        return self._op("squeeze_dim", dim=int(dim))

    def unsqueeze(self, dim):
        return self._op("unsqueeze", dim=int(dim))

    def expand(self, *args, size=None):
        return self._op("expand", shape=_size_args(_kw_size(args, size)))

    def expand_as(self, other):
        return self.expand(tuple(other.shape))

    def narrow(self, dim, start, length):
        # torch's narrow checks its arguments, then records a plain slice (SliceBackward0)
        if self.dim() == 0:
            raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
        size = self.size(dim)
        if not -size <= start <= size:
            raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
        start = start + size if start < 0 else start
        if length < 0:
            raise RuntimeError("narrow(): length must be non-negative.")
        if start + length > size:
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
        return self._op("slice", dim=dim, start=start, stop=start + length, step=1)

    def select(self, dim, index):
        return self._op("select", dim=dim, index=index)

    def unbind(self, dim=0):
        return tuple(self._op("unbind", dim=dim))

    def chunk(self, chunks, dim=0):
        # torch's chunk is a split into pieces of ceil(size / chunks): SplitBackward0
        if self.dim() == 0:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        size = self.size(dim)
        split_size = -(-size // chunks)
        if split_size == 0 and size == 0:
            return self.split([0] * chunks, dim)
        return self.split(split_size, dim)

    def split(self, split_size, dim=0):
        if isinstance(split_size, (list, tuple)):
            return tuple(self._op("split_with_sizes", split_sizes=tuple(int(n) for n in split_size), dim=dim))
        return tuple(self._op("split", split_size=int(split_size), dim=dim))

    def clone(self):
        return self._op("clone")

    def contiguous(self):
        return self if self.is_contiguous() else self.clone()

    # ------------------------------------------------------------ dtypes
    def to(self, *args, dtype=None, copy=False, **kwargs):
        for a in args:
            if isinstance(a, dtypes.dtype):
                dtype = a
            elif isinstance(a, TensorMethods):
                dtype = a.dtype
            elif isinstance(a, str) and a not in ("cpu", "cuda") and not a.startswith("cuda:"):
                raise RuntimeError(f"Invalid device string: '{a}'")
        if dtype is None or dtype is self.dtype:
            return self.clone() if copy else self
        return self._op("to_dtype", dtype=dtypes.from_any(dtype))

    def type(self, dtype=None):
        if dtype is None:
            from .errors import _LEGACY
            return f"torch.{_LEGACY[self.dtype.name]}"
        return self.to(dtypes.from_any(dtype))

    def type_as(self, other):
        return self.to(other.dtype)

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def bool(self):
        return self.to(dtypes.bool_)

    def cpu(self):
        return self

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    # ------------------------------------------------------------ indexing
    def _parse_key(self, key):
        """Normalise an index into the op-table key spec plus its index tensors."""
        if not isinstance(key, tuple):
            key = (key,)
        spec, tensors = [], []
        for k in key:
            if k is None:
                spec.append(("n",))
            elif k is Ellipsis:
                spec.append(("e",))
            elif isinstance(k, slice):
                spec.append(("s", _index_int(k.start), _index_int(k.stop),
                             1 if k.step is None else _index_int(k.step)))
            elif isinstance(k, bool):
                tensors.append(self._as_tensor(k))
                spec.append(("t", len(tensors) - 1))
            elif isinstance(k, numbers.Integral):
                spec.append(("i", int(k)))
            elif isinstance(k, TensorMethods):
                if k.dtype.is_floating_point:
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
                tensors.append(k)
                spec.append(("t", len(tensors) - 1))
            elif isinstance(k, (list, tuple)) or hasattr(k, "__array__"):
                t = self._as_tensor(k, index=True)
                # torch reads index data as integers: an empty list indexes nothing, as a long tensor
                tensors.append(t.long() if t.dtype.is_floating_point and t.numel() == 0 else t)
                spec.append(("t", len(tensors) - 1))
            else:
                raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                                 "Variables are valid indices (got " + type(k).__name__ + ")")
        return tuple(spec), tuple(tensors)

    def __getitem__(self, key):
        """torch's applySlicing: one view op per basic index, then one gather for the tensors."""
        if self.dim() == 0 and isinstance(key, (numbers.Integral, slice)) and not isinstance(key, bool):
            if isinstance(key, slice):
                raise IndexError("slice() cannot be applied to a 0-dim tensor.")
            if key == 0:
                raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                                 "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
            raise IndexError(f"index {key} is out of bounds for dimension 0 with size 0")
        if isinstance(key, slice):
            # a lone slice is always recorded, even a[:] (torch disables its no-op shortcut there)
            step = 1 if key.step is None else _index_int(key.step)
            if step == 0:
                raise ValueError("slice step cannot be zero")
            if step < 0:
                raise ValueError("step must be greater than zero")
            return self._op("slice", dim=0, start=_index_int(key.start), stop=_index_int(key.stop), step=step)
        items = key if isinstance(key, tuple) else (key,)
        # a 0-d integer tensor indexes as its int (a select); a 0-d bool/byte tensor as a bool
        items = tuple(int(k.item()) if isinstance(k, TensorMethods) and k.dim() == 0
                      and not k.dtype.is_floating_point and k.dtype not in (dtypes.bool_, dtypes.uint8)
                      else bool(k.item()) if isinstance(k, TensorMethods) and k.dim() == 0
                      and k.dtype in (dtypes.bool_, dtypes.uint8) else k for k in items)
        spec, tensors = self._parse_key(items)
        tensors = list(tensors)
        consumed = sum(1 if s[0] in "is" else (tensors[s[1]].dim() if tensors[s[1]].dtype in _MASKS else 1)
                       if s[0] == "t" else 0 for s in spec)
        if consumed > self.dim():
            raise IndexError(f"too many indices for tensor of dimension {self.dim()}")
        out, dim, adv = self, 0, []
        for position, s in enumerate(spec):
            kind = s[0]
            if kind == "n":
                out = out.unsqueeze(dim)
                adv.append(("s", None, None, 1))
                dim += 1
            elif kind == "e":
                # torch lets every ellipsis (there may be several) skip the unindexed dims
                skip = self.dim() - consumed
                adv.extend([("s", None, None, 1)] * skip)
                dim += skip
            elif kind == "i":
                size = out.shape[dim]
                if not -size <= s[1] < size:
                    # torch names the index's position in the key, not the tensor's dim
                    raise IndexError(f"index {s[1]} is out of bounds for dimension {position} with size {size}")
                out = out.select(dim, s[1])
            elif kind == "s":
                if s[3] == 0:
                    raise ValueError("slice step cannot be zero")
                if s[3] < 0:
                    raise ValueError("step must be greater than zero")
                if not (s[1] in (None, 0) and s[2] is None and s[3] == 1):
                    out = out._op("slice", dim=dim, start=s[1], stop=s[2], step=s[3])
                adv.append(("s", None, None, 1))
                dim += 1
            else:
                t = tensors[s[1]]
                if t.dim() == 0 and t.dtype in _MASKS:
                    # x[True]: a new dim of size 1, indexed by [0] (or by [] for False)
                    out = out.unsqueeze(dim)
                    index = self._as_tensor([0])
                    tensors[s[1]] = index if t.item() else index[1:]
                    dim += 1
                else:
                    dim += t.dim() if t.dtype in _MASKS else 1
                adv.append(s)
        if not tensors:
            # nothing recorded (x[...], x[:, :]): torch returns an alias, never self
            return self._op("alias") if out is self else out
        while adv and adv[-1][0] == "s":
            adv.pop()
        return out._dispatch(OPS["index"], (out,) + tuple(tensors), {"key": tuple(adv)})

    def __setitem__(self, key, value):
        value_given = value
        if key is False:
            return  # torch: x[False] = v writes nothing
        spec, tensors = self._parse_key(key)
        value = self._operand(value)
        if value is NotImplemented:  # a list too, as torch refuses it
            from .errors import legacy_name
            raise TypeError(f"can't assign a {type(value_given).__name__} to a torch.{legacy_name(self.dtype)}")
        shape = tuple(self.shape)
        advanced = any(s[0] == "t" and tensors[s[1]].dim() for s in spec)
        if isinstance(value, TensorMethods):
            # torch's set_item/copy_to shape the value first: leading 1-dims viewed away, then
            # expanded to the indexed shape (nodes that show when the value requires grad)
            vshape = tuple(value.shape)
            stripped = _strip_leading_ones(vshape)
            if advanced:
                if stripped != vshape:
                    value = value.view(stripped)
            else:
                target = _indexed_shape(spec, tensors, shape)
                if vshape != target and vshape:
                    value = value.view(stripped)
                    if stripped != target:
                        value = value.expand(target)
        # torch writes through a view when the key's basic part makes one (CopySlices), with index_put_
        # on the tensor itself otherwise (IndexPutBackward0); a key that selects everything is a plain
        # copy_, or fill_ for a 0-d value into a tensor of another shape
        if _setitem_makes_view(spec, tensors, shape):
            name = "copy_slices"
        elif advanced:
            name = "index_put"
        else:
            value_shape = tuple(value.shape) if isinstance(value, TensorMethods) else ()
            name = "fill_tensor" if value_shape == () and self.dim() else "copy_"
            self._dispatch_inplace(OPS[name], (self, value), {})
            return
        self._dispatch_inplace(OPS[name], (self, value) + tensors, {"key": spec})

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    # ------------------------------------------------------------ in-place
    def add_(self, other, *, alpha=1):
        return self._iop("add", self._arg("add_", other), **_alpha(alpha))

    def sub_(self, other, *, alpha=1):
        return self._iop("sub", self._arg("sub_", other), **_alpha(alpha))

    def mul_(self, other):
        return self._iop("mul", self._arg("mul_", other))

    def div_(self, other, *, rounding_mode=_UNSET):
        if rounding_mode is _UNSET:
            return self._iop("div", self._arg("div_", other))
        return self._iop("div_mode", self._arg("div_", other), rounding_mode=rounding_mode)

    def pow_(self, exponent):
        exponent = self._arg("pow_", exponent, "exponent")
        if isinstance(exponent, TensorMethods):
            return self._iop("pow_tensor", exponent)
        return self._iop("pow", exponent=exponent)

    def zero_(self):
        return self._iop("zero_")

    def fill_(self, value):
        if isinstance(value, TensorMethods):
            if value.dim():
                raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                                   f"{value.dim()} dimensions.")
            return self._iop("fill_tensor", value)  # FillBackward3: the value gets a gradient
        return self._iop("fill_", value=_scalar(value))

    def copy_(self, src):
        return self._iop("copy_", self._arg("copy_", src, "src"))

    # torch's pointwise kernels, composed: (value * t1) op t2, then added to self, in their order of
    # rounding. (The node of such an in-place op on a recorded tensor is its parts', not Addcmul's.)
    def addcmul_(self, tensor1, tensor2, *, value=1):
        return self.add_((tensor1 if value == 1 else tensor1.mul(value)).mul(tensor2))

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        return self.add_((tensor1 if value == 1 else tensor1.mul(value)).div(tensor2))

    def lerp_(self, end, weight):
        # torch's lerp: self + w * (end - self) for |w| < 0.5, else end - (end - self) * (1 - w)
        if isinstance(weight, TensorMethods) or abs(weight) < 0.5:
            return self.add_(end.sub(self).mul(weight))
        return self.copy_(end.sub(end.sub(self).mul(1 - weight)))

    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        """Values drawn from the tensor's own generator (the engine's, or its session's): not torch's draw."""
        rand = self._factories.rand(*tuple(self.shape), dtype=self.dtype)
        return self.copy_(rand.mul(to - from_).add(from_))

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        randn = self._factories.randn(*tuple(self.shape), dtype=self.dtype)
        return self.copy_(randn.mul(std).add(mean))

    def sigmoid_(self):
        return self._iop("sigmoid")

    def exp_(self):
        return self._iop("exp")

    def neg_(self):
        return self._iop("neg")

    def relu_(self):
        return self._iop("relu")

    def _pointwise_(name):  # noqa: N805  (a helper run while the class body is built)
        def method(self):
            return self._iop(name)
        method.__name__ = name + "_"
        return method

    abs_, sqrt_, rsqrt_, tanh_ = _pointwise_("abs"), _pointwise_("sqrt"), _pointwise_("rsqrt"), _pointwise_("tanh")
    log_, log1p_, expm1_, reciprocal_ = _pointwise_("log"), _pointwise_("log1p"), _pointwise_("expm1"), \
        _pointwise_("reciprocal")
    sin_, cos_, floor_, ceil_, trunc_ = _pointwise_("sin"), _pointwise_("cos"), _pointwise_("floor"), \
        _pointwise_("ceil"), _pointwise_("trunc")
    del _pointwise_

    def square_(self):
        return self.pow_(2)

    def clamp_(self, min=None, max=None):  # noqa: A002
        name, inputs, params = self._clamp_args("clamp_", min, max)
        return self._iop(name, *inputs, **params)

    clip_ = clamp_

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # ------------------------------------------------------------ conversions
    def __bool__(self) -> bool:
        n = self.numel()
        if n == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if n > 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        if self.requires_grad:
            warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to unexpected "
                          "behavior.\nConsider using tensor.detach() first.", UserWarning, stacklevel=2)
        return float(self._scalar_value("float"))

    def __int__(self) -> int:
        return int(self._scalar_value("int"))

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def _scalar_value(self, kind):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __format__(self, spec: str) -> str:
        if self.dim() == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)  # torch's: str(self), and a TypeError for any spec


def _consumed(spec, tensors) -> int:
    """How many dimensions of the indexed tensor a key spec uses up."""
    return sum(1 if s[0] in "is" else (tensors[s[1]].dim() if tensors[s[1]].dtype is dtypes.bool_ else 1)
               if s[0] == "t" else 0 for s in spec)


def _strip_leading_ones(shape: tuple) -> tuple:
    """torch's slicePrefix1sSize."""
    i = 0
    while i < len(shape) and shape[i] == 1:
        i += 1
    return shape[i:]


def _indexed_shape(spec, tensors, shape) -> tuple:
    """The shape a key without advanced (n-d tensor) indices selects."""
    out, dim = [], 0
    for s in spec:
        kind = s[0]
        if kind == "n":
            out.append(1)
        elif kind == "e":
            k = len(shape) - _consumed(spec, tensors)
            out.extend(shape[dim:dim + k])
            dim += k
        elif kind == "s":
            out.append(len(range(*slice(s[1], s[2], s[3]).indices(shape[dim]))))
            dim += 1
        elif kind == "t" and tensors[s[1]].dtype is dtypes.bool_:
            out.append(1 if tensors[s[1]].item() else 0)
        else:
            dim += 1
    return tuple(out) + tuple(shape[dim:])


def _setitem_makes_view(spec, tensors, shape) -> bool:
    """Whether torch's setitem indexes a view first: an int, None, True, a 0-d index tensor or a
    slice that does not cover its whole dimension (torch skips those)."""
    consumed = _consumed(spec, tensors)
    dim = 0
    for s in spec:
        kind = s[0]
        if kind in "in":
            return True
        if kind == "e":
            dim += len(shape) - consumed
        elif kind == "s":
            _, start, stop, step = s
            if not ((start or 0) == 0 and (stop is None or (dim < len(shape) and stop >= shape[dim])) and step == 1):
                return True
            dim += 1
        else:
            t = tensors[s[1]]
            if t.dim() == 0:
                return True
            dim += t.dim() if t.dtype is dtypes.bool_ else 1
    return False


def _index_int(v):
    if v is None or isinstance(v, numbers.Integral):
        return None if v is None else int(v)
    if isinstance(v, TensorMethods):
        return int(v.item())
    raise TypeError("slice indices must be integers or None or have an __index__ method")


def _should_fold(a, b) -> bool:
    """torch's should_fold: matmul of a >= 3-d and a <= 2-d tensor runs as one mm/mv."""
    a_larger = a.dim() >= b.dim()
    big, small = (a, b) if a_larger else (b, a)
    if not (big.dim() >= 3 and small.dim() <= 2):
        return False
    if small.requires_grad:
        return True  # folding keeps the small tensor's gradient an mm, not a batch to sum
    if a.dim() == 2:
        return False
    shape, strides = list(big.shape), list(big.stride())
    if not a_larger:  # the larger tensor enters transposed (b.mT)
        shape[-2:], strides[-2:] = shape[:-3:-1], strides[:-3:-1]
    if math.prod(shape) == 0:
        return True
    # foldable without a copy: the leading dims are contiguous with each other
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


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
