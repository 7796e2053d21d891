"""The server's node for a custom autograd.Function applied on a client: its backward calls back."""
from __future__ import annotations

import weakref

from ..engine import errors
from ..engine.backend import xp
from ..engine.function import check_gradient_shapes, returned_gradients
from ..engine.node import Node
from ..engine.tensor import Tensor, _edge

_classes: dict[str, type] = {}


class RemoteFunctionNode(Node):
    """Named as torch names the Function's node (``MultiplyAddBackward``); the client runs backward."""

    __slots__ = ("_session", "_node_id", "_arg_is_tensor", "_out_meta", "_input_meta",
                 "materialize_grads", "_freed")
    _node_name = "FunctionBackward"

    def _apply(self, grads: list, create_graph: bool) -> list:
        if self._freed:
            # the client let go of this application's ctx (saved tensors) when the node was released
            raise RuntimeError(errors.SECOND_BACKWARD)
        result = self._session.call_function(self._node_id, grads, self._node_name)
        # the client checked what its backward returned; a raw client is held to the same rules
        grads_in = returned_gradients(self._node_name, tuple(result), self._arg_is_tensor, Tensor)
        check_gradient_shapes(self._node_name, grads_in, self.next_functions, self._input_meta)
        return grads_in

    def _release(self) -> None:
        if not self._freed:
            self._freed = True
            self._session.function_released(self._node_id)


def node_class(name: str) -> type:
    cls = _classes.get(name)
    if cls is None:
        cls = type(name, (RemoteFunctionNode,), {"__slots__": (), "_node_name": name,
                                                 "__module__": "torch.autograd.function"})
        _classes[name] = cls
    return cls


def apply_function(session, node_id: int, name: str, args, outputs, non_differentiable, materialize: bool):
    """Connect a Function's outputs (computed by the client without history) to a new node."""
    is_tensor = tuple(isinstance(a, Tensor) for a in args)
    node = node_class(name).__new__(node_class(name))
    node._init_node(tuple(_edge(a) for a, t in zip(args, is_tensor) if t))
    node._session = session
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
