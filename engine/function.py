"""Custom differentiable operations: torch.autograd.Function, whose ctx is its graph node."""
from __future__ import annotations

from . import errors, grad_mode
from .backend import xp
from .node import Node, _modified_message
from .tensor import Tensor


class CtxMethods:
    """torch's ctx API where the engine's and a remote client's Functions agree."""

    __slots__ = ()

    def save_for_backward(self, *tensors) -> None:
        self._to_save = tensors

    def save_for_forward(self, *tensors) -> None:
        self._saved_for_forward = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class FunctionCtx(CtxMethods):
    """What forward and backward share: saved tensors and flags (torch's ctx API)."""

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(errors.SECOND_BACKWARD)
        for t, expected in zip(self._to_save, self._saved_versions):
            if t is not None and t._vc[0] != expected:
                raise RuntimeError(_modified_message(t, expected))
        return tuple(self._to_save)

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = {id(t) for t in tensors}

    def mark_dirty(self, *tensors) -> None:
        self._dirty = {id(t) for t in tensors}


class BackwardFunction(FunctionCtx, Node):
    """The node of one application of a custom Function; it is also the ctx its methods receive."""

    _function = None  # the Function subclass

    def __init__(self) -> None:
        self._init_node(())
        self._to_save = ()
        self._saved_versions = ()
        self._freed = False
        self._non_differentiable = set()
        self._dirty = set()
        self._tensor_outputs = ()
        self.materialize_grads = True
        self.needs_input_grad = ()

    def __repr__(self) -> str:
        return f"<torch.autograd.function.{type(self).__name__} object at {hex(id(self))}>"

    def apply(self, *grads):
        """Call the Function's backward directly, as ``grad_fn.apply(g)`` does in torch."""
        return self._function.backward(self, *grads)

    def __call__(self, *grads):
        # torch's custom-Function nodes are not callable; only apply() runs their backward
        raise TypeError(f"'{type(self).__name__}' object is not callable")

    def _apply(self, grads: list, create_graph: bool) -> list:
        # no check of _freed here: as in torch, only reading saved_tensors after they were freed fails
        grads = list(grads)
        for i, is_tensor in enumerate(self._tensor_outputs):
            if not is_tensor:
                grads[i] = None  # a non-tensor output has no gradient: backward receives None for it
            elif grads[i] is None and self.materialize_grads:
                shape, dt = self._out_meta[i]
                grads[i] = Tensor._make(xp.zeros(shape, dtype=dt))
        result = self._function.backward(self, *grads)
        name = type(self).__name__
        grads_in = returned_gradients(name, result, self._arg_is_tensor, Tensor)
        check_gradient_shapes(name, grads_in, self.next_functions, self._input_meta)
        return grads_in

    def _release(self) -> None:
        if self._to_save:
            self._to_save = ()
            self._saved_versions = ()
            self._freed = True


def returned_gradients(name: str, result, arg_is_tensor: tuple, tensor_type) -> list:
    """What a Function's backward returned, checked as torch checks it: one gradient per forward
    argument (extra trailing Nones are dropped), None at non-tensor arguments, Tensors or None
    elsewhere. Returns the gradients of the tensor arguments, in order."""
    if not isinstance(result, tuple):
        result = (result,)
    expected = len(arg_is_tensor)
    if len(result) > expected and all(g is None for g in result[expected:]):
        result = result[:expected]
    if len(result) != expected:
        raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                           f"(expected {expected}, got {len(result)})")
    grads = []
    for i, (g, is_tensor) in enumerate(zip(result, arg_is_tensor)):
        if not is_tensor:
            if g is not None:
                raise RuntimeError(f"function {name} returned a gradient different than None at position "
                                   f"{i + 1}, but the corresponding forward input was not a Variable")
            continue
        if g is not None and not isinstance(g, tensor_type):
            raise RuntimeError(f"expected Variable or None (got {type(g).__name__})")
        grads.append(g)
    return grads


def check_gradient_shapes(name: str, grads: list, edges: tuple, input_shapes: tuple) -> None:
    """torch's validate_outputs: each gradient must sum down to its input's shape (broadcasting)."""
    for k, (g, (nxt, _), shape) in enumerate(zip(grads, edges, input_shapes)):
        if g is None or nxt is None:
            continue
        got = tuple(g.shape)
        if got != tuple(shape) and not _expandable(tuple(shape), got):
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {k} - got {list(got)} "
                               f"but expected shape compatible with {list(shape)}")


def _expandable(shape: tuple, to: tuple) -> bool:
    if len(shape) > len(to):
        return False
    return all(s == d or s == 1 for s, d in zip(reversed(shape), reversed(to)))


class FunctionMeta(type):
    """Gives every Function subclass its own node class, named as torch names it (``FooBackward``)."""

    def __init__(cls, name, bases, attrs) -> None:
        super().__init__(name, bases, attrs)
        cls._backward_cls = type(f"{name}Backward", (BackwardFunction,),
                                 {"_function": cls, "_node_name": f"{name}Backward",
                                  "__module__": "torch.autograd.function"})


class FunctionStubs:
    """What a Function subclass must override, with torch's errors; shared by local and remote Functions."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward


class Function(FunctionStubs, metaclass=FunctionMeta):
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``; call ``apply``."""

    @classmethod
    def apply(cls, *args, **kwargs):
        from .tensor import _edge
        node = cls._backward_cls()
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        node._arg_is_tensor = is_tensor
        node.needs_input_grad = tuple(t and a.requires_grad for a, t in zip(args, is_tensor))
        with grad_mode.no_grad():
            outputs = cls.forward(node, *args, **kwargs)
        check_saved(node._to_save, Tensor)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        inputs = {id(a) for a, t in zip(args, is_tensor) if t}
        track = grad_mode.is_grad_enabled() and any(node.needs_input_grad)
        if not track:
            # an input returned as is comes back as a new tensor, as in torch, even without a graph
            result = tuple(o._alias() if isinstance(o, Tensor) and id(o) in inputs and id(o) not in node._dirty
                           else o for o in outs)
            node._saved_versions = tuple(t._vc[0] if t is not None else None for t in node._to_save)
            return result[0] if single else result
        node.next_functions = tuple(_edge(a) for a, t in zip(args, is_tensor) if t)
        node._input_meta = tuple(tuple(a._data.shape) for a, t in zip(args, is_tensor) if t)
        result, meta = [], []
        for nr, o in enumerate(outs):
            if not isinstance(o, Tensor):
                result.append(o)
                meta.append(((), xp.float32))  # never materialized: backward receives None for it
                continue
            if id(o) in inputs and id(o) not in node._dirty:
                o = o._alias()  # an input returned as is comes back as a new tensor, as in torch
            meta.append((o._data.shape, o._data.dtype))
            if o._data.dtype.kind == "f" and id(o) not in node._non_differentiable:
                o.grad_fn = node
                o._output_nr = nr
            result.append(o)
        node._out_meta = tuple(meta)
        node._tensor_outputs = tuple(isinstance(o, Tensor) for o in outs)
        # versions as forward left them: a later in-place change makes saved_tensors fail, as in torch
        node._saved_versions = tuple(t._vc[0] if t is not None else None for t in node._to_save)
        return result[0] if single else tuple(result)


def check_saved(tensors: tuple, tensor_type) -> None:
    """torch's check of save_for_backward's arguments (made when apply ends, as torch makes it)."""
    for i, t in enumerate(tensors):
        if t is not None and not isinstance(t, tensor_type):
            raise TypeError(f"save_for_backward can only save variables, but argument {i} is of type "
                            f"{type(t).__name__}")


def once_differentiable(fn):
    """torch's decorator: a backward that is not itself differentiable (runs without recording)."""
    def wrapper(ctx, *grads):
        with grad_mode.no_grad():
            return fn(ctx, *grads)
    wrapper.__name__ = fn.__name__
    return wrapper
