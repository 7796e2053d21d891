"""torch's Tensor methods and operators, written once over an abstract ``_dispatch`` to the op table.

The engine's Tensor runs them locally; the client's Tensor sends them to a server. Each group of
methods is a module of its own (methods_*.py); this class puts them together.
"""
from __future__ import annotations

import warnings

from .method_args import TensorOps, _alpha, _broadcast_shapes, _kw_size
from .methods_arithmetic import ArithmeticMethods
from .methods_indexing import IndexingMethods
from .methods_pointwise import PointwiseMethods
from .methods_reductions import ReductionMethods
from .methods_shapes import ShapeMethods

__all__ = ["TensorMethods", "TensorOps", "_alpha", "_broadcast_shapes"]


class TensorMethods(ArithmeticMethods, PointwiseMethods, ReductionMethods, ShapeMethods, IndexingMethods, TensorOps):
    """Everything on a torch Tensor that is an op, in torch's names and signatures."""

    __slots__ = ()

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
