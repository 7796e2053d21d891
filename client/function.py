"""Custom autograd Functions on the client: forward and backward run here, their ops on the server."""
from __future__ import annotations

import functools

from .engine import errors
from .engine.function import CtxMethods, FunctionStubs, returned_gradients
from .node import Node
from .tensor import Tensor


class FunctionCtx(CtxMethods):
    """torch's ctx API; in torch (and here) the ctx of an application is its graph node."""

    __slots__ = ()

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(errors.SECOND_BACKWARD)
        if getattr(self, "_saved_error", None):  # the server saw a saved tensor modified in place
            raise RuntimeError(self._saved_error)
        return tuple(self._to_save)

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors


class FunctionNode(FunctionCtx, Node):
    """The node of one application of a Function, on the client (where its backward runs)."""

    __slots__ = ("__dict__",)
    _function = None

    def __repr__(self) -> str:
        return f"<torch.autograd.function.{type(self).__name__} object at {hex(id(self))}>"

    def apply(self, *grads):
        """Call the Function's backward directly, as ``grad_fn.apply(g)`` does in torch."""
        return self._function.backward(self, *grads)

    def __call__(self, *grads):
        # torch's custom-Function nodes are not callable; only apply() runs their backward
        raise TypeError(f"'{type(self).__name__}' object is not callable")

    def _backward_inputs(self, grads: tuple) -> tuple:
        """The server sends one gradient per tensor output; backward takes one per output (None for
        an output that is not a tensor, as in torch)."""
        if len(grads) == len(self._tensor_outputs):
            return grads
        it = iter(grads)
        return tuple(next(it, None) if is_tensor else None for is_tensor in self._tensor_outputs)

    def _backward_outputs(self, result) -> tuple:
        """What backward returned, checked as torch checks it: one entry per forward argument."""
        grads = iter(returned_gradients(type(self).__name__, result, self._arg_is_tensor, Tensor))
        return tuple(next(grads) if is_tensor else None for is_tensor in self._arg_is_tensor)


def _init_node(node, session, name: str, node_id: int) -> None:
    node._session = session
    node._id = node_id
    node._name = name
    node._next = None
    node._edges = None  # what the backward returns is known only when it ran: no mirrored edges
    node._retained = None
    node.metadata = {}
    node._to_save = ()
    node._freed = False
    node._non_differentiable = ()
    node._dirty = ()
    node.materialize_grads = True
    node.needs_input_grad = ()
    node._arg_is_tensor = ()
    node._tensor_outputs = ()


def function_base(session):
    """``t.autograd.Function`` for one session: subclasses' applications run on it."""

    class FunctionMeta(type):
        def __init__(cls, name, bases, attrs) -> None:
            super().__init__(name, bases, attrs)
            cls._node_cls = type(f"{name}Backward", (FunctionNode,),
                                 {"__slots__": (), "_function": cls, "__module__": "torch.autograd.function"})

    class Function(FunctionStubs, metaclass=FunctionMeta):
        """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``; call ``apply``."""

        @classmethod
        def apply(cls, *args, **kwargs):
            node = cls._node_cls.__new__(cls._node_cls)
            _init_node(node, session, f"{cls.__name__}Backward", session._new_id())
            return session._apply_function(cls, node, args, kwargs)

    Function.__module__ = "torch.autograd.function"
    return Function


def once_differentiable(fn):
    """torch's decorator for a remote Function's backward: its ops run without recording a graph.

    (``t.autograd.function.once_differentiable``; the engine's own runs in the engine's grad mode.)
    """
    @functools.wraps(fn)
    def wrapper(ctx, *grads):
        with ctx._session.no_grad():
            return fn(ctx, *grads)
    return wrapper
