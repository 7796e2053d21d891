"""Graph nodes: one per recorded op (named as torch names it) and AccumulateGrad for leaves."""
from __future__ import annotations

import itertools
import re
from collections import OrderedDict

from . import errors

# the engine's Tensor class: engine/tensor.py registers it (it imports this module, not the reverse)
_TENSOR: type | None = None
_sequence = itertools.count()
# AccumulateGrad runs as soon as it is ready, as torch's does (its sequence_nr is UINT64_MAX).
_LEAF_SEQUENCE = 1 << 62


def register_tensor_class(cls: type) -> None:
    """Name the class whose instances the nodes unpack to arrays (the engine's Tensor; called once, by it)."""
    global _TENSOR
    _TENSOR = cls


class RemovableHandle:
    """What register_hook returns; ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "id")
    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict) -> None:
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: OrderedDict, fn) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = fn
    return handle


class Node:
    """A backward function of the graph; ``next_functions`` lists ``(node or None, input_nr)`` per input."""

    # _host_id: an id the engine's host (the server) gives the node; the engine never reads it
    __slots__ = ("next_functions", "_seq", "_tensor_pre_hooks", "_retain_hooks",
                 "_pre_hooks", "_post_hooks", "_metadata", "_host_id", "__weakref__")
    _node_name = "Node"

    @property
    def metadata(self) -> dict:
        """torch's Node.metadata: a dict of the user's own, made on first use (few nodes need one)."""
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    def name(self) -> str:
        return self._node_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    def register_hook(self, fn) -> RemovableHandle:
        """fn(grad_inputs, grad_outputs) after the node ran; may return replacement grad_inputs."""
        if self._post_hooks is None:
            self._post_hooks = OrderedDict()
        return add_hook(self._post_hooks, fn)

    def register_prehook(self, fn) -> RemovableHandle:
        """fn(grad_outputs) before the node runs; may return replacement grad_outputs."""
        if self._pre_hooks is None:
            self._pre_hooks = OrderedDict()
        return add_hook(self._pre_hooks, fn)

    def _tensor_hooks(self, output_nr: int) -> OrderedDict:
        if self._tensor_pre_hooks is None:
            self._tensor_pre_hooks = {}
        return self._tensor_pre_hooks.setdefault(output_nr, OrderedDict())

    def __call__(self, *grads):
        """Run this node's backward on the given output gradients (as ``grad_fn(g)`` does in torch)."""
        result = self._apply(list(grads), create_graph=False) if grads else ()
        return result[0] if len(result) == 1 else tuple(result)

    def _init_node(self, next_functions: tuple) -> None:
        # (engine/tensor.py _record sets the same, inline: change both together)
        self.next_functions = next_functions
        self._seq = next(_sequence)
        self._tensor_pre_hooks = None
        self._retain_hooks = None
        self._pre_hooks = None
        self._post_hooks = None
        self._metadata = None


class AccumulateGrad(Node):
    """The node of a leaf that requires grad: sums arriving gradients into ``variable.grad``."""

    __slots__ = ("variable",)
    _node_name = "torch::autograd::AccumulateGrad"

    def __init__(self, variable) -> None:
        self._init_node(())
        self._seq = _LEAF_SEQUENCE
        self.variable = variable


_STRIP = re.compile(r"Backward\d*$")


class VjpContext:
    """What a VJP reads: saved inputs ``x`` (by position), ``out``, params ``p``, input ``shapes``."""

    __slots__ = ("x", "out", "p", "shapes")

    def __init__(self, x, out, p, shapes) -> None:
        self.x, self.out, self.p, self.shapes = x, out, p, shapes


class OpNode(Node):
    """The backward of one op application; subclasses carry torch's name for the op's node."""

    __slots__ = ("_op", "_params", "_saved", "_saved_versions", "_saved_out",
                 "_input_meta", "_out_meta", "_freed")

    def _apply(self, grads: list, create_graph: bool) -> list:
        """Per-input gradients (Tensors or None) for the given output gradients (Tensors)."""
        if self._freed:
            raise RuntimeError(errors.SECOND_BACKWARD)
        op = self._op
        ctx = VjpContext(self._unpack_inputs(), self._unpack_output(create_graph), self._params,
                         self._input_meta)
        g = grads[0] if op.num_outputs == 1 else grads
        if op.variadic:
            grads_in = op.diff_vjps[0](g, ctx)
            return [None if nxt[0] is None else gi for gi, nxt in zip(grads_in, self.next_functions)]
        result = []
        for vjp, nxt in zip(op.diff_vjps, self.next_functions):
            if nxt[0] is None or vjp is None:
                result.append(None)
            else:
                result.append(vjp(g, ctx))
        return result

    def _apply_arrays(self, g) -> list | None:
        """The op's VJPs on arrays (it has them), for a backward that records nothing: per input an
        array (or a numpy scalar) or None, with no Tensor dispatch per step. None where a saved
        tensor's dtype is not the gradient's: the tensor VJPs then promote as torch does."""
        if self._freed:
            raise RuntimeError(errors.SECOND_BACKWARD)
        dt = g.dtype
        x = ()
        if self._saved is not None:
            x = []
            for t in self._unpack_inputs():
                if t.__class__ is _TENSOR:
                    t = t._data
                    if t.dtype is not dt and t.dtype != dt:
                        return None
                x.append(t)
        out = None
        if self._saved_out is not None:
            out = self._unpack_output(False)._data
            if out.dtype is not dt and out.dtype != dt:
                return None
        ctx = VjpContext(x, out, self._params, self._input_meta)
        return [None if nxt[0] is None else vjp(g, ctx) for vjp, nxt in zip(self._op.array_vjps, self.next_functions)]

    def _unpack_inputs(self) -> list:
        saved = self._saved
        if saved is None:
            return ()
        for i, expected in self._saved_versions:
            t = saved[i]
            if t._vc[0] != expected:
                raise RuntimeError(_modified_message(t, expected))
        return saved

    def _unpack_output(self, create_graph: bool):
        entry = self._saved_out
        if entry is None:
            return None
        outs = []
        for nr, (tensor, expected) in enumerate(entry):
            if tensor is None:
                outs.append(None)
                continue
            if tensor._vc[0] != expected:
                raise RuntimeError(_modified_message(tensor, expected, self))
            if create_graph and tensor.dtype.is_floating_point:
                # the saved output is differentiable through this very node, as in torch
                tensor = tensor._alias(self, nr)
            outs.append(tensor)
        return outs[0] if self._op.num_outputs == 1 else tuple(outs)

    def _release(self) -> None:
        if self._saved is not None or self._saved_out is not None:
            self._saved = None
            self._saved_out = None
            self._freed = True


def _modified_message(t, expected: int, producer: Node | None = None) -> str:
    producer = producer if producer is not None else t.grad_fn
    where = ""
    if producer is not None:
        where = f", which is output {t._output_nr} of {_STRIP.sub('', type(producer).__name__)},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {errors.legacy_type(t.dtype, t.shape)}{where} is at version "
            f"{t._vc[0]}; expected version {expected} instead." + errors.ANOMALY_HINT)


_node_classes: dict[str, type] = {}


def node_class(name: str) -> type:
    """The OpNode subclass for a torch node name (``AddBackward0``, ``torch::autograd::CopySlices``)."""
    cls = _node_classes.get(name)
    if cls is None:
        short = name.rsplit("::", 1)[-1]
        cls = type(short, (OpNode,), {"__slots__": (), "_node_name": name,
                                      "__module__": "torch.autograd"})
        _node_classes[name] = cls
    return cls
