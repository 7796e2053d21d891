"""Tensor methods: indexing, indexed assignment and in-place ops."""
from __future__ import annotations

import numbers

from . import dtypes
from .method_args import (
    _MASKS,
    _UNSET,
    TensorOps,
    _alpha,
    _scalar,
)
from .ops import OPS


class IndexingMethods(TensorOps):
    __slots__ = ()

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
            elif isinstance(k, TensorOps):
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
        items = tuple(int(k.item()) if isinstance(k, TensorOps) and k.dim() == 0
                      and not k.dtype.is_floating_point and k.dtype not in (dtypes.bool_, dtypes.uint8)
                      else bool(k.item()) if isinstance(k, TensorOps) and k.dim() == 0
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
        if isinstance(value, TensorOps):
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
            value_shape = tuple(value.shape) if isinstance(value, TensorOps) else ()
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
        if isinstance(exponent, TensorOps):
            return self._iop("pow_tensor", exponent)
        return self._iop("pow", exponent=exponent)

    def zero_(self):
        return self._iop("zero_")

    def fill_(self, value):
        if isinstance(value, TensorOps):
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
        if isinstance(weight, TensorOps) or abs(weight) < 0.5:
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
    if isinstance(v, TensorOps):
        return int(v.item())
    raise TypeError("slice indices must be integers or None or have an __index__ method")
