"""Tensor methods: reductions (sum, mean, max, sort, topk, softmax, ...)."""
from __future__ import annotations

from . import dtypes
from .method_args import (
    _UNSET,
    ReturnTypes,
    TensorOps,
    _dim_arg,
)


class ReductionMethods(TensorOps):
    __slots__ = ()

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
        if isinstance(dim, TensorOps):
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
