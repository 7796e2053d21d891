"""The engine's Tensor: an array plus autograd state, and the dispatcher that records ops."""
from __future__ import annotations

import warnings
from collections import OrderedDict

from . import dtypes, errors
from .backend import BACKEND, ndarray, to_numpy, writeable, xp
from .checks import (
    check_data_assignment,
    check_grad_assignment,
    check_inplace_result,
    check_item,
    check_numpy,
    check_register_hook,
    check_requires_grad,
    check_retain_grad,
)
from .device import CPU, CUDA
from .grad_mode import _enabled
from .methods import TensorMethods
from .node import _STRIP, AccumulateGrad, _sequence, add_hook, node_class, register_tensor_class
from .printing import format_tensor
from .size import Size


class VersionCounter(list):
    """``[n]``: shared by a tensor, its views and detached aliases; bumped by in-place ops."""

    __slots__ = ()


class Tensor(TensorMethods):
    __slots__ = ("_data", "_requires_grad", "_grad", "grad_fn", "_output_nr", "_vc",
                 "_base", "_accumulator", "_hooks", "_retains_grad", "__weakref__")

    def __init__(self, *args, **kwargs) -> None:
        # torch.Tensor(...) is the legacy float32 constructor
        from .factories import legacy_tensor_data
        data = legacy_tensor_data(*args, **kwargs)
        self._init(data, False, None, 0)

    @classmethod
    def _make(cls, data, requires_grad: bool = False, grad_fn=None, output_nr: int = 0) -> Tensor:
        t = cls.__new__(cls)
        t._init(data, requires_grad, grad_fn, output_nr)
        return t

    def _init(self, data, requires_grad, grad_fn, output_nr) -> None:
        self._data = data
        self._requires_grad = requires_grad
        self._grad = None
        self.grad_fn = grad_fn
        self._output_nr = output_nr
        self._vc = VersionCounter((0,))
        self._base = None
        self._accumulator = None
        self._hooks = None
        self._retains_grad = False

    def _alias(self, grad_fn=None, output_nr: int = 0) -> Tensor:
        """Same storage and version counter, its own autograd identity."""
        t = Tensor._make(self._data, grad_fn is not None, grad_fn, output_nr)
        t._vc = self._vc
        return t

    # ------------------------------------------------------------ metadata
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes.of_array(self._data)

    @property
    def device(self):
        return CPU if xp.__name__ == "numpy" else CUDA

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self.grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if check_requires_grad(self.grad_fn is None, flag, self._data.dtype, setter=True):
            self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if check_requires_grad(self.grad_fn is None, requires_grad, self._data.dtype):
            self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self) -> Tensor | None:
        g = self._grad
        if g is None and self.grad_fn is not None and not self._retains_grad:
            warnings.warn(errors.NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            data = self._data
            if isinstance(value, Tensor):
                check_grad_assignment(value, value._data.shape, value._data.dtype, data.shape, data.dtype, True)
            else:
                check_grad_assignment(value, None, None, data.shape, data.dtype, False)
        self._grad = value

    @property
    def _version(self) -> int:
        return self._vc[0]

    _version_value = _version

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: int | None = None):
        """Strides in elements, as torch gives them (matmul's folding decision reads them)."""
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[dim]

    def _can_view(self, shape) -> bool:
        from .ops import can_view, infer_shape
        return can_view(self._data, infer_shape(shape, self._data.size))

    def _alias_view(self):
        return self._op("view", shape=tuple(self._data.shape))

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0] if xp.__name__ == "numpy" else self._data.data.ptr

    @property
    def _factories(self):
        from . import factories
        return factories

    def _as_tensor(self, value, index: bool = False) -> Tensor:
        from .factories import tensor
        if isinstance(value, Tensor):
            return value
        return tensor(value)

    # ------------------------------------------------------------ autograd state
    @property
    def data(self) -> Tensor:
        # shares storage, not history, and not the version counter (torch's .data)
        return Tensor._make(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        check_data_assignment(value, isinstance(value, Tensor))
        self._data = value._data

    def detach(self) -> Tensor:
        t = Tensor._make(self._data)
        t._vc = self._vc
        return t

    def detach_(self) -> Tensor:
        if self._base is not None:
            raise RuntimeError(errors.DETACH_VIEW_INPLACE)
        self.grad_fn = None
        self._requires_grad = False
        return self

    def _grad_accumulator(self) -> AccumulateGrad:
        acc = self._accumulator
        if acc is None:
            acc = self._accumulator = AccumulateGrad(self)
        return acc

    def retain_grad(self) -> None:
        check_retain_grad(self.requires_grad)
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        node = self.grad_fn
        if node._retain_hooks is None:
            node._retain_hooks = {}
        node._retain_hooks[self._output_nr] = self

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        check_register_hook(self.requires_grad)
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = OrderedDict()
            self._grad_accumulator()
            return add_hook(self._hooks, hook)
        return add_hook(self.grad_fn._tensor_hooks(self._output_nr), hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ------------------------------------------------------------ values
    def item(self):
        check_item(self._data.size)
        return self._data.reshape(()).item()

    def tolist(self):
        return to_numpy(self._data).tolist()

    def numpy(self, *, force: bool = False):
        check_numpy(self.requires_grad, force)
        return to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        array = to_numpy(self._data)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        if self.grad_fn is not None:
            suffix = (f"grad_fn=<{type(self.grad_fn).__name__}>",)
        elif self._requires_grad:
            suffix = ("requires_grad=True",)
        else:
            suffix = ()
        return format_tensor(to_numpy(self._data), suffix)

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("engine tensors are not picklable: nothing crosses the wire by pickle")

    # ------------------------------------------------------------ dispatch
    def _dispatch(self, op, inputs, params):
        return dispatch(op, inputs, params)

    def _dispatch_inplace(self, op, inputs, params):
        return dispatch_inplace(op, inputs, params)


register_tensor_class(Tensor)


def _edge(x):
    # (_record has this inline, for every recorded input: change both together)
    if x.__class__ is Tensor:
        if x.grad_fn is not None:
            return (x.grad_fn, x._output_nr)
        if x._requires_grad:
            return (x._grad_accumulator(), 0)
    return (None, 0)


def dispatch(op, inputs: tuple, params: dict):
    """Run one op on tensors: forward on arrays, and a graph node when grad is needed."""
    arrays = [x._data if x.__class__ is Tensor else x for x in inputs]
    out = op.forward(*arrays, **params)
    track = False
    if op.node is not None and _enabled.get():
        if op.variadic:
            track = any(x.__class__ is Tensor and x.requires_grad for x in inputs)
        else:
            for i in op.diff_inputs:
                x = inputs[i]
                if x.__class__ is Tensor and (x.grad_fn is not None or x._requires_grad):
                    track = True
                    break
    if op.num_outputs == 1:
        if out.__class__ is not ndarray:
            out = xp.asarray(out)
        result = Tensor._make(out)
        if op.view:
            result._vc = inputs[0]._vc
            result._base = inputs[0]
        if track and out.dtype.kind == "f":
            _record(op, inputs, params, (result,))
        return result
    results = tuple(Tensor._make(o if o.__class__ is ndarray else xp.asarray(o)) for o in out)
    if op.view:
        for r in results:
            r._vc = inputs[0]._vc
            r._base = inputs[0]
    if track:
        _record(op, inputs, params, results)
    return results


_NO_EDGE = (None, 0)


def _record(op, inputs, params, results) -> None:
    cls = node_class(op.node)
    node = cls.__new__(cls)
    diff = range(len(inputs)) if op.variadic else op.diff_inputs
    edges, shapes = [], []
    for i in diff:
        x = inputs[i]
        if x.__class__ is Tensor:  # _edge(x), inline: this loop runs for every recorded input
            fn = x.grad_fn
            if fn is not None:
                edges.append((fn, x._output_nr))
            elif x._requires_grad:
                edges.append((x._grad_accumulator(), 0))
            else:
                edges.append(_NO_EDGE)
            shapes.append(x._data.shape)
        else:
            edges.append(_NO_EDGE)
            shapes.append(())
    # Node._init_node, inline
    node.next_functions = tuple(edges)
    node._seq = next(_sequence)
    node._tensor_pre_hooks = node._retain_hooks = node._pre_hooks = node._post_hooks = node._metadata = None
    node._op = op
    node._params = params
    node._input_meta = tuple(shapes)
    node._freed = False
    save, tail = op.save, op.save_tail
    if save or tail is not None:
        saved = [x if x.__class__ is not Tensor else None for x in inputs]
        versions = []
        read_by = op.read_by
        for i in save:
            x = inputs[i]
            if x.__class__ is Tensor:
                readers = read_by.get(i)
                if readers is not None:
                    # saved only if a VJP that reads it will run: one of its readers is tracked
                    for p in readers:
                        if edges[p][0] is not None:
                            break
                    else:
                        continue
                saved[i] = x
                versions.append((i, x._vc[0]))
        if tail is not None:
            for i in range(tail, len(inputs)):
                x = inputs[i]
                if x.__class__ is Tensor:
                    saved[i] = x
                    versions.append((i, x._vc[0]))
        node._saved = saved
        node._saved_versions = versions
    else:
        node._saved = None
        node._saved_versions = ()
    if len(results) == 1:
        # the common case, spelled out (per-output tuples and zips cost ~30% of a record); the
        # general case below does the same for each output: change both together
        r = results[0]
        data = r._data
        node._out_meta = ((data.shape, data.dtype),)
        diff_ok = op.differentiable_outputs[0]
        if op.save_output:
            # an alias without grad_fn: saving the output itself would make a reference cycle
            node._saved_out = ((r._alias() if diff_ok else r, r._vc[0]),)
        else:
            node._saved_out = None
        if diff_ok and data.dtype.kind == "f":
            r.grad_fn = node
            r._output_nr = 0
        return
    node._out_meta = tuple([(r._data.shape, r._data.dtype) for r in results])
    flags = _diff_outputs(op, len(results))
    if op.save_output:
        node._saved_out = tuple([(r._alias(), r._vc[0]) if diff_ok else (r, r._vc[0])
                                 for r, diff_ok in zip(results, flags)])
    else:
        node._saved_out = None
    for nr, (r, d) in enumerate(zip(results, flags)):
        if d and r._data.dtype.kind == "f":
            r.grad_fn = node
            r._output_nr = nr


def _diff_outputs(op, n):
    flags = op.differentiable_outputs
    return flags if len(flags) == n else (flags[0],) * n


def dispatch_inplace(op, inputs: tuple, params: dict):
    """An in-place op: the result is written into inputs[0]'s storage and its history rebased."""
    self = inputs[0]
    track = False
    if op.node is not None and _enabled.get():
        track = any(x.__class__ is Tensor and x.requires_grad for x in inputs)
        if track:
            _check_inplace(self, op)
    if op.name not in ("copy_slices", "index_put"):  # those write a part of self: checked by their own rules
        for x in inputs[1:]:
            if x.__class__ is Tensor and x._data is not self._data and _partly_overlap(self._data, x._data):
                raise RuntimeError("unsupported operation: some elements of the input tensor and the written-to "
                                   "tensor refer to a single memory location. Please clone() the tensor before "
                                   "performing the operation.")
    if not track:
        into = _INTO.get(op.name)
        if into is not None and into(self._data, inputs, params):
            self._vc[0] += 1
            return self
        out = op.forward(*[x._data if x.__class__ is Tensor else x for x in inputs], **params)
        _write(self, out, op)
        return self
    # The op is recorded out of place on a stand-in for the old value, then written back.
    old = Tensor._make(self._data.copy() if 0 in op.save else self._data,
                       self._requires_grad, self.grad_fn, self._output_nr)
    result = dispatch(op, (old,) + tuple(inputs[1:]), params)
    _write(self, result._data, op)
    node = result.grad_fn
    self.grad_fn = node
    self._output_nr = 0
    if node is not None and node._saved_out is not None:
        alias = self._alias()
        node._saved_out = ((alias, self._vc[0]),)
    return self


def _dense(a) -> bool:
    """torch's is_non_overlapping_and_dense: the elements fill their memory span exactly, in some
    order of the dims (a negative or zero stride is not)."""
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return True
    expected = a.itemsize
    for stride, n in sorted((st, n) for st, n in zip(a.strides, a.shape) if n != 1):
        if stride != expected:
            return False
        expected *= n
    return True


def _address(a) -> int:
    return a.data.ptr if BACKEND == "cupy" else a.__array_interface__["data"][0]


def _partly_overlap(a, b) -> bool:
    """torch's MemOverlapStatus::Partial between a written-to array and an input: both dense, their
    byte spans intersect, and they are not the very same elements in the same layout. (Arrays
    that are not dense are too hard to tell, and pass, as in torch.)"""
    if not xp.may_share_memory(a, b) or not (_dense(a) and _dense(b)):
        return False
    a0, b0 = _address(a), _address(b)
    a1, b1 = a0 + a.nbytes, b0 + b.nbytes
    if a0 == b0 and a1 == b1:
        return a.strides != b.strides
    return a0 < b1 and b0 < a1


def _ufunc_into(ufunc):
    """x.add_(y) and the like written straight into x's memory (no temporary, no copy), when
    nothing can differ from the general path: float x, y a Python number or an array of x's dtype
    and shape, no alpha. Anything else returns False and takes the general path (and its errors)."""
    def into(data, inputs, params) -> bool:
        if params and params.get("alpha", 1) != 1 or len(inputs) != 2 or data.dtype.kind != "f":
            return False
        other = inputs[1]
        if other.__class__ is Tensor:
            other = other._data
            if other.dtype != data.dtype or other.shape != data.shape:
                return False
            # a partly overlapping operand (x.add_(x.flip(0))): numpy buffers it, CuPy does not
            if other is not data and xp.may_share_memory(data, other):
                return False
        elif not (other.__class__ is float or other.__class__ is int and -(1 << 31) < other < (1 << 31)):
            return False
        if not writeable(data):
            return False
        ufunc(data, other, out=data)  # numpy buffers overlapping operands (x.add_(x))
        return True
    return into


def _fill_zero(data, inputs, params) -> bool:
    if len(inputs) != 1 or params or not writeable(data):
        return False
    data.fill(0)
    return True


_INTO = {"add": _ufunc_into(xp.add), "sub": _ufunc_into(xp.subtract), "mul": _ufunc_into(xp.multiply),
         "zero_": _fill_zero}


def _check_inplace(self, op) -> None:
    """torch's checks before an in-place op is recorded: leaves, views of leaves, multi-output views."""
    base = self._base
    if base is None:
        if self.grad_fn is None and self._requires_grad:
            # setitem through a view of a leaf (x[0] = v) is reported as the view torch makes
            raise RuntimeError(errors.LEAF_VIEW_INPLACE if op.name == "copy_slices" else errors.LEAF_INPLACE)
        return
    node = self.grad_fn
    if node is not None and node._op.view and node._op.num_outputs != 1:
        raise RuntimeError(
            f"Output {self._output_nr} of {_STRIP.sub('', type(node).__name__)} is a view and is being modified "
            "inplace. This view is the output of a function that returns multiple views. Such functions do "
            "not allow the output views to be modified inplace. You should replace the inplace operation by "
            "an out-of-place one.")
    while base._base is not None:
        base = base._base
    if base.grad_fn is None and base._requires_grad:
        raise RuntimeError(errors.LEAF_VIEW_INPLACE)
    # torch would rebase the view's base onto CopySlices; rather than a silently wrong graph, refuse
    raise RuntimeError("in-place operations that autograd records on a view are not supported by this "
                       "engine; apply the op to the base tensor instead (e.g. by indexing assignment)")


def _write(self, out, op) -> None:
    data = self._data
    check_inplace_result(data.shape, data.dtype, out.shape, out.dtype)
    if not writeable(data):
        raise RuntimeError("unsupported operation: more than one element of the written-to tensor "
                           "refers to a single memory location. Please clone() the tensor before "
                           "performing the operation.")
    data[...] = out
    self._vc[0] += 1
