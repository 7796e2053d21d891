"""Custom differentiable operations: torch.autograd.Function, whose ctx is its graph node."""
from __future__ import annotations

from . import errors, grad_mode
from .backend import xp
from .node import Node
from .tensor import Tensor


class FunctionCtx:
    """What forward and backward share: saved tensors and flags (torch's ctx API)."""

    def save_for_backward(self, *tensors) -> None:
        self._to_save = tensors

    def save_for_forward(self, *tensors) -> None:
        self._saved_for_forward = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(errors.SECOND_BACKWARD)
        return tuple(self._to_save)

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = {id(t) for t in tensors}

    def mark_dirty(self, *tensors) -> None:
        self._dirty = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class BackwardFunction(FunctionCtx, Node):
    """The node of one application of a custom Function; it is also the ctx its methods receive."""

    _function = None  # the Function subclass

    def __init__(self) -> None:
        self._init_node(())
        self._to_save = ()
        self._freed = False
        self._non_differentiable = set()
        self._dirty = set()
        self.materialize_grads = True
        self.needs_input_grad = ()

    def __repr__(self) -> str:
        return f"<torch.autograd.function.{type(self).__name__} object at {hex(id(self))}>"

    def apply(self, *grads):
        """Call the Function's backward directly, as ``grad_fn.apply(g)`` does in torch."""
        return self._function.backward(self, *grads)

    def __call__(self, *grads):
        return self.apply(*grads)

    def _apply(self, grads: list, create_graph: bool) -> list:
        if self._freed:
            raise RuntimeError(errors.SECOND_BACKWARD)
        if self.materialize_grads:
            grads = [g if g is not None else Tensor._make(xp.zeros(shape, dtype=dt))
                     for g, (shape, dt) in zip(grads, self._out_meta)]
        result = self._function.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        if len(result) != len(self._arg_is_tensor):
            raise RuntimeError(f"function {type(self).__name__} returned an incorrect number of gradients "
                               f"(expected {len(self._arg_is_tensor)}, got {len(result)})")
        grads_in = []
        for g, is_tensor in zip(result, self._arg_is_tensor):
            if not is_tensor:
                if g is not None:
                    raise RuntimeError(f"function {type(self).__name__} returned a gradient different than "
                                       "None at a position of a non-tensor input")
                continue
            grads_in.append(g)
        return grads_in

    def _release(self) -> None:
        if self._to_save:
            self._to_save = ()
            self._freed = True


class FunctionMeta(type):
    """Gives every Function subclass its own node class, named as torch names it (``FooBackward``)."""

    def __init__(cls, name, bases, attrs) -> None:
        super().__init__(name, bases, attrs)
        cls._backward_cls = type(f"{name}Backward", (BackwardFunction,),
                                 {"_function": cls, "_node_name": f"{name}Backward",
                                  "__module__": "torch.autograd.function"})


class Function(metaclass=FunctionMeta):
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``; call ``apply``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        from .tensor import _edge
        node = cls._backward_cls()
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        node._arg_is_tensor = is_tensor
        node.needs_input_grad = tuple(t and a.requires_grad for a, t in zip(args, is_tensor))
        with grad_mode.no_grad():
            outputs = cls.forward(node, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        track = grad_mode.is_grad_enabled() and any(node.needs_input_grad)
        if not track:
            return outputs
        node.next_functions = tuple(_edge(a) for a, t in zip(args, is_tensor) if t)
        node._input_meta = tuple(tuple(a._data.shape) for a, t in zip(args, is_tensor) if t)
        inputs = {id(a) for a, t in zip(args, is_tensor) if t}
        result, meta = [], []
        for nr, o in enumerate(outs):
            if not isinstance(o, Tensor):
                result.append(o)
                meta.append(((), xp.float32))
                continue
            if id(o) in inputs and id(o) not in node._dirty:
                o = o._alias()  # an input returned as is comes back as a new tensor, as in torch
            meta.append((o._data.shape, o._data.dtype))
            if o._data.dtype.kind == "f" and id(o) not in node._non_differentiable:
                o.grad_fn = node
                o._output_nr = nr
            result.append(o)
        node._out_meta = tuple(meta)
        return result[0] if single else tuple(result)


def once_differentiable(fn):
    """torch's decorator: a backward that is not itself differentiable (runs without recording)."""
    def wrapper(ctx, *grads):
        with grad_mode.no_grad():
            return fn(ctx, *grads)
    wrapper.__name__ = fn.__name__
    return wrapper
