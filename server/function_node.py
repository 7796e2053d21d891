"""The server's node for a custom autograd.Function applied on a client: its backward calls back."""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

from ..engine.backend import xp
from ..engine.function import check_gradient_shapes, returned_gradients
from ..engine.node import Node, _modified_message
from ..engine.tensor import Tensor, _edge

# One node class per Function name (torch's node types are named after the Function), the most
# recently used ones kept: names come from clients, and each class kept forever cost ~2 KB (200k
# names: 360 MB). A live node holds its own class; one evicted is made again for the next node.
MAX_CLASSES = 1024
_classes: OrderedDict[str, type] = OrderedDict()
_classes_lock = threading.Lock()


class RemoteFunctionNode(Node):
    """Named as torch names the Function's node (``MultiplyAddBackward``); the client runs backward."""

    __slots__ = ("_session", "_node_id", "_arg_is_tensor", "_out_meta", "_input_meta",
                 "materialize_grads", "_freed", "_saved")
    _node_name = "FunctionBackward"

    def _apply(self, grads: list, create_graph: bool) -> list:
        # a second backward is fine if the Function's backward reads no saved tensor; reading one
        # raises torch's error on the client, which freed them after the first
        saved_error = next((_modified_message(t, v) for t, v in self._saved if t._vc[0] != v), "")
        result = self._session.call_function(self._node_id, grads, self._node_name, saved_error)
        # the client checked what its backward returned; a raw client is held to the same rules
        grads_in = returned_gradients(self._node_name, tuple(result), self._arg_is_tensor, Tensor)
        check_gradient_shapes(self._node_name, grads_in, self.next_functions, self._input_meta)
        return grads_in

    def _release(self) -> None:
        if not self._freed:
            self._freed = True
            self._saved = ()
            self._session.freed_functions.append(self._node_id)


def node_class(name: str) -> type:
    with _classes_lock:
        cls = _classes.get(name)
        if cls is not None:
            _classes.move_to_end(name)
            return cls
        cls = type(name, (RemoteFunctionNode,), {"__slots__": (), "_node_name": name,
                                                 "__module__": "torch.autograd.function"})
        _classes[name] = cls
        if len(_classes) > MAX_CLASSES:
            _classes.popitem(last=False)
        return cls


def apply_function(session, node_id: int, name: str, args, outputs, non_differentiable, materialize: bool,
                   saved=()):
    """Connect a Function's outputs (computed by the client without history) to a new node."""
    is_tensor = tuple(isinstance(a, Tensor) for a in args)
    cls = node_class(name)
    node = cls.__new__(cls)
    node._init_node(tuple(_edge(a) for a, t in zip(args, is_tensor) if t))
    node._session = session
    # the versions the saved tensors had after forward; checked when backward reads them
    node._saved = tuple((t, t._vc[0]) for t in saved)
    node._node_id = node_id
    node._arg_is_tensor = is_tensor
    node._input_meta = tuple(tuple(a._data.shape) for a, t in zip(args, is_tensor) if t)
    node.materialize_grads = materialize
    node._freed = False
    inputs = {id(a) for a, t in zip(args, is_tensor) if t}
    skip = {id(t) for t in non_differentiable}
    results, meta = [], []
    for nr, o in enumerate(outputs):
        if id(o) in inputs:
            o = o._alias()  # an input returned as is comes back as a new tensor, as in torch
        meta.append((o._data.shape, o._data.dtype))
        if o._data.dtype.kind == "f" and id(o) not in skip:
            o.grad_fn = node
            o._output_nr = nr
        results.append(o)
    node._out_meta = tuple(meta)
    session.bind_node(node_id, node)
    # the client holds the Function's ctx until the server lets go of the node
    weakref.finalize(node, session.function_released, node_id)
    return results


def zeros_for(node, nr: int) -> Tensor:
    shape, dt = node._out_meta[nr]
    return Tensor._make(xp.zeros(shape, dtype=dt))
