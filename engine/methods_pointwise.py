"""Tensor methods: pointwise functions (exp, clamp, where, ...)."""
from __future__ import annotations

from . import dtypes
from .method_args import (
    _SCALARS,
    _UNSET,
    TensorOps,
    _kw_size,
    _scalar,
    _size_args,
)
from .ops import OPS


class PointwiseMethods(TensorOps):
    __slots__ = ()

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
    erf = _pointwise("erf")
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

    def cumprod(self, dim, *, dtype=None):
        return self._op("cumprod", dim=int(dim), dtype=None if dtype is None else dtypes.from_any(dtype))

    def masked_fill(self, mask, value):
        if isinstance(value, TensorOps):
            return self._op("masked_fill_tensor", mask, value)
        value = _scalar(value)
        if not isinstance(value, _SCALARS):
            raise TypeError(f"masked_fill(): argument 'value' must be Number, not {type(value).__name__}")
        return self._op("masked_fill", mask, value=value)

    def masked_fill_(self, mask, value):
        if isinstance(value, TensorOps):
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

    def tile(self, *args, dims=None):
        # torch's tile: repeat, with ones prepended to dims shorter than the tensor's dim count
        dims = _kw_size(args, dims)
        if not dims:
            raise TypeError('tile() missing 1 required positional arguments: "dims"')
        dims = _size_args(dims)
        return self._op("repeat", repeats=(1,) * (self.dim() - len(dims)) + dims)

    def roll(self, shifts, dims=None):
        shifts = tuple(int(s) for s in shifts) if isinstance(shifts, (tuple, list)) else (int(shifts),)
        dims = () if dims is None else tuple(int(d) for d in dims) if isinstance(dims, (tuple, list)) \
            else (int(dims),)
        return self._op("roll", shifts=shifts, dims=dims)

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
        if isinstance(min, TensorOps) or isinstance(max, TensorOps):
            if not all(v is None or isinstance(v, TensorOps) for v in (min, max)):
                got = ", ".join(f"{k}={'Tensor' if isinstance(v, TensorOps) else type(v).__name__}"
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
        if isinstance(min, TensorOps):
            return self._op("clamp_min_tensor", min)
        return self._op("clamp_min", min=_scalar(min))

    def clamp_max(self, max):  # noqa: A002
        if isinstance(max, TensorOps):
            return self._op("clamp_max_tensor", max)
        return self._op("clamp_max", max=_scalar(max))

    def clamp_min_(self, min):  # noqa: A002
        if isinstance(min, TensorOps):
            return self._iop("clamp_min_tensor", min)
        return self._iop("clamp_min", min=_scalar(min))

    def clamp_max_(self, max):  # noqa: A002
        if isinstance(max, TensorOps):
            return self._iop("clamp_max_tensor", max)
        return self._iop("clamp_max", max=_scalar(max))

    def where(self, condition, other):
        return self._dispatch(OPS["where"], (condition, self, self._arg("where", other)), {})

    def softmax(self, dim, dtype=None):
        # dtype= casts first, as torch does (a ToCopyBackward0 under the SoftmaxBackward0)
        return (self if dtype is None else self.to(dtype))._op("softmax", dim=dim)

    def log_softmax(self, dim, dtype=None):
        return (self if dtype is None else self.to(dtype))._op("log_softmax", dim=dim)
