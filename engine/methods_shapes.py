"""Tensor methods: shapes, views and dtypes."""
from __future__ import annotations

import math

from . import dtypes
from .device import is_device_spec, place
from .method_args import (
    TensorOps,
    _kw_size,
    _size_args,
)
from .ops import _check_dim
from .size import Size


class ShapeMethods(TensorOps):
    __slots__ = ()

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
            elif isinstance(a, TensorOps):
                dtype = a.dtype
            elif is_device_spec(a):
                self._place(a)  # the one device a session's tensors live on: nothing moves
        self._place(kwargs.get("device"))
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

    def cuda(self, device=None, non_blocking: bool = False):
        self._place("cuda" if device is None else device)
        return self

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _place(self, spec):
        """A device this tensor may go to (cpu, or cuda where the backend has a GPU), else torch's error."""
        return place(spec, self._factories.cuda.is_available())

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point
