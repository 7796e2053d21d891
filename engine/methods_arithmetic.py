"""Tensor methods: arithmetic, comparison and bitwise operators, and linear algebra."""
from __future__ import annotations

import math

from . import dtypes
from .method_args import (
    _SCALARS,
    _UNSET,
    TensorOps,
    _alpha,
    _broadcast_shapes,
    _dim_arg,
    _scalar,
)


class ArithmeticMethods(TensorOps):
    __slots__ = ()

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
        if isinstance(other, TensorOps):
            return self._op("floor_divide", other)
        return self._op("floor_divide_scalar", other=other)

    def remainder(self, other):
        other = self._arg("remainder", other)
        if isinstance(other, TensorOps):
            return self._op("remainder", other)
        return self._op("remainder_scalar", other=other)

    true_divide = divide = div
    multiply = mul
    subtract = sub

    def pow(self, exponent):
        exponent = self._arg("pow", exponent, "exponent")
        if isinstance(exponent, TensorOps):
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
        if not isinstance(other, TensorOps):
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
        if not isinstance(other, TensorOps):
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
