"""Autograd as commands: backward, grad, and a tensor's autograd state, kept in step with the mirror."""
from __future__ import annotations

from .engine.autograd import EMPTY_INPUTS, as_tuple, check_outputs, check_root, match_grads
from .engine.checks import check_data_assignment, check_grad_assignment, check_requires_grad
from .mirror import walk
from .protos.codec import KIND as K
from .tensor import Tensor


def check_backward(tensors, grads, inputs) -> None:
    """The checks engine/autograd.py backward() makes before it runs, in its order and words."""
    grads = match_grads(tensors, (None,) * len(tensors) if grads is None else grads)
    check_outputs(tensors)
    if inputs is not None and not inputs:
        raise RuntimeError(EMPTY_INPUTS)
    for i, (t, g) in enumerate(zip(tensors, grads)):
        check_root(i, t, g)


class Autograd:
    """``backward`` and ``autograd.grad``, and the commands that read or change a tensor's autograd
    state. A backward is queued like any command where nothing of the client's runs in it and the
    mirror shows it cannot meet freed buffers; otherwise it is sent at once, so that its error is
    raised by its own line."""

    def __init__(self, session, queue, mirror, recorder, callbacks) -> None:
        self._session = session
        self._queue = queue
        self._mirror = mirror
        self._recorder = recorder
        self._callbacks = callbacks

    # ------------------------------------------------------------ backward and grad
    def backward(self, tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        tensors = as_tuple(tensors)
        grads = None if grad_tensors is None else as_tuple(grad_tensors)
        if grads is not None:
            grads = tuple(g if g is None or isinstance(g, Tensor) else self._session.tensor(g) for g in grads)
        inputs = None if inputs is None else as_tuple(inputs)
        kwargs = {"retain_graph": retain_graph, "create_graph": bool(create_graph)}
        mirror = self._mirror
        if not (self._queue.eager or self._callbacks.any or create_graph) and inputs is None:
            reached = walk(tensors)
            if reached[2] and not any(getattr(n, "_spent", False) for n in reached[0].values()) and \
                    not mirror.modified(reached[0]):
                # nothing of the client's runs during this backward, and the mirror knows it will not
                # fail on a spent graph or a modified saved tensor: it rides the next batch like any
                # command, after the engine's checks
                check_backward(tensors, grads, inputs)
                self._queue.enqueue(K.BACKWARD, args=(tensors, grads, inputs), kwargs=kwargs)
                if mirror.written_since(reached[0]):
                    # an in-place write since the graph was made: only the server can tell
                    # whether it wrote a saved value, and fail this backward
                    self._queue.fence()
                mirror.spend(tensors, retain_graph, False, reached)
                mirror.predict_grads(tensors, inputs, False, reached)
                return
        try:
            # sent at once: the server raises at this line (after what torch would have done first)
            self._queue.command(K.BACKWARD, args=(tensors, grads, inputs), kwargs=kwargs, callbacks=True)
        except BaseException:
            # a backward that failed midway (a hook raised) may have accumulated some gradients
            # already: which, only the server knows
            mirror.grads_unknown()
            raise
        if inputs is None:
            mirror.spend(tensors, retain_graph, create_graph)
        mirror.predict_grads(tensors, inputs, bool(create_graph))

    def grad(self, outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
             only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
        inputs = as_tuple(inputs)
        ids = tuple(self._recorder.new_id() for _ in inputs)
        result = self._queue.command(
            K.GRAD, args=(as_tuple(outputs), inputs, None if grad_outputs is None else as_tuple(grad_outputs)),
            kwargs={"retain_graph": retain_graph, "create_graph": bool(create_graph),
                    "allow_unused": allow_unused, "materialize_grads": materialize_grads},
            outputs=ids, callbacks=True)
        return tuple(self._recorder.from_meta(m) if m.id else None for m in result.outputs)

    # ------------------------------------------------------------ .grad
    def get_grad(self, t: Tensor):
        tid = self._recorder.new_id()
        known = None if self._queue.eager else self._mirror.grad_known(t)
        if known is False:
            return None
        if known is True:
            # the mirror says the gradient exists: name it now, bind it on the server later
            self._queue.enqueue(K.GET_GRAD, args=(t,), outputs=(tid,))
            # a gradient's layout is the engine's choice (it may keep a transposed result)
            return self._recorder.proxy(tid, t._shape, t._dtype, None, False, strides=None,
                                        vc=self._mirror.grad_vc(t._id))
        result = self._queue.command(K.GET_GRAD, args=(t,), outputs=(tid,))
        if not result.outputs:
            return None
        g = self._recorder.from_meta(result.outputs[0])
        g._vc = self._mirror.grad_vc(t._id)
        return g

    def set_grad(self, t: Tensor, value) -> None:
        is_tensor = isinstance(value, Tensor)  # the engine setter's checks, at the user's line
        check_grad_assignment(value, value._shape if is_tensor else None, value._dtype if is_tensor else None,
                              t._shape, t._dtype, is_tensor)
        self._queue.enqueue(K.SET_GRAD, args=(t, value))
        self._mirror.grad_assigned(t._id, value)

    def retain_grad(self, t: Tensor) -> None:
        self._queue.enqueue(K.RETAIN_GRAD, args=(t,))
        self._mirror.retained.add(t._id)

    def retains(self, t: Tensor) -> bool:
        return t._id in self._mirror.retained

    # ------------------------------------------------------------ requires_grad, detach, data
    def set_requires_grad(self, t: Tensor, flag: bool, setter: bool = True) -> None:
        # torch's checks, at the user's line (the setter and requires_grad_() differ)
        if not check_requires_grad(t._grad_fn is None, flag, t._dtype, setter):
            return
        self._queue.enqueue(K.SET_REQUIRES_GRAD, args=(t, flag))
        t._requires_grad = flag
        if flag:
            self._mirror.has_grad.setdefault(t._id, False)

    def alias(self, t: Tensor, kind: str):
        tid = self._recorder.new_id()
        self._queue.enqueue(K.DETACH if kind == "detach" else K.DATA, args=(t,), outputs=(tid,))
        # detach() shares the version counter; .data does not (its writes are not tracked, as in torch)
        return self._recorder.proxy(tid, t._shape, t._dtype, None, False, strides=t._strides,
                                    vc=t._vc if kind == "detach" else None)

    def set_data(self, t: Tensor, value) -> None:
        check_data_assignment(value, isinstance(value, Tensor))
        self._mirror.writes += 1
        result = self._queue.command(K.SET_DATA, args=(t, value))
        self._recorder.rebind(t, result.outputs[0])

    def detach_inplace(self, t: Tensor) -> None:
        self._mirror.writes += 1
        result = self._queue.command(K.DETACH_INPLACE, args=(t,))
        self._recorder.rebind(t, result.outputs[0])

    # ------------------------------------------------------------ nodes
    def next_functions(self, node_id: int) -> tuple:
        result = self._queue.command(K.NEXT_FUNCTIONS, kwargs={"node": node_id})
        out = []
        for pair in result.value.list.items:
            first, nr = pair.list.items
            out.append((None if first.WhichOneof("kind") == "none" else
                        self._mirror.node(self._session, first.node), nr.i))
        return tuple(out)

    def node_apply(self, node_id: int, grads):
        n = len(self.next_functions(node_id))
        ids = tuple(self._recorder.new_id() for _ in range(n))
        result = self._queue.command(K.NODE_APPLY, args=grads, kwargs={"node": node_id}, outputs=ids, callbacks=True)
        out = tuple(self._recorder.from_meta(m) if m.id else None for m in result.outputs)
        return out[0] if len(out) == 1 else out

    def edge_node(self, target):
        return self._mirror.edge_node(self._session, target)

    def resolve_strides(self, t: Tensor) -> tuple:
        result = self._queue.command(K.META, args=(t,))
        t._strides = tuple(result.outputs[0].strides)
        return t._strides
