"""Recording ops: each call's plan (inferred metadata, remembered per signature), its mirrored node, and its proxies."""
from __future__ import annotations

import itertools
import sys

from .early import EARLY_OPS
from .engine import dtypes
from .engine import errors as engine_errors
from .engine.checks import check_inplace_result
from .engine.meta import ValueDependentError, infer
from .engine.strides import contiguous_strides
from .mirror import edge, saved_inputs
from .node import short_name
from .protos.codec import KIND as K
from .tensor import Tensor
from .userline import user_line

META_MEMO = 4096  # inferred metas remembered per session (op, input shapes/dtypes/strides, params)
_PLAIN = (int, float, bool, str, type(None), dtypes.dtype)


def meta_key(name: str, inputs, params):
    """A hashable key of what an op's meta rule reads, or None when an argument is not plain data
    (a tensor inside a list, say: keeping it in a key would keep it alive)."""
    key = [name]
    for x in inputs:
        if isinstance(x, Tensor):
            key.append((x._shape, x._dtype, x._strides))
        elif isinstance(x, _PLAIN):
            key.append((x.__class__, x))
        else:
            return None
    if params:
        for k, v in params.items():
            if not (isinstance(v, _PLAIN) or (isinstance(v, tuple) and all(isinstance(i, _PLAIN) for i in v))):
                return None
            key.append((k, v.__class__, tuple((i.__class__, i) for i in v) if isinstance(v, tuple) else v))
    return tuple(key)


def saves(op) -> bool:
    """Whether the engine's node for ``op`` keeps saved values that a backward frees (engine/tensor.py _record)."""
    return bool(op.save) or op.save_tail is not None or op.save_output


class Plan:
    """An op application's inferred results, in the form ``Recorder.call`` uses them: per output its
    shape, dtype, strides, and whether it is differentiable (a float output the op's node may own)."""

    __slots__ = ("metas", "single", "outs", "node_type", "saves", "prepared", "early")

    def __init__(self, op, metas) -> None:
        self.prepared = 0  # see PreparedCalls
        self.metas = metas
        self.single = not isinstance(metas, tuple)
        metas = (metas,) if self.single else metas
        flags = op.differentiable_outputs
        if len(flags) != len(metas):
            flags = (flags[0],) * len(metas)
        self.outs = tuple((tuple(m.shape), dtypes.of_dtype(m.dtype), None if m.strides is None else tuple(m.strides),
                           bool(d) and m.dtype.kind == "f") for m, d in zip(metas, flags))
        floats = any(m.dtype.kind == "f" for m in metas)
        self.node_type = short_name(op.node) if op.node is not None and floats else None
        self.saves = saves(op)
        self.early = op.name in EARLY_OPS  # its node's backward cannot fail (client/early.py)


class Recorder:
    """Turns a Tensor method's op into a queued command and the proxies of its results, inferred
    here from the engine's op table: no round trip unless the result's metadata depends on values."""

    def __init__(self, session, cls: type, mirror, queue, prepared) -> None:
        self._session = session
        self._cls = cls
        self._mirror = mirror
        self._queue = queue
        self._prepared = prepared
        self._plans: dict = {}
        self.grad_enabled = True
        self.new_id = itertools.count(1).__next__

    def set_grad_mode(self, mode: bool) -> None:
        if mode != self.grad_enabled:
            self._queue.enqueue(K.SET_GRAD_MODE, args=(bool(mode),))
            self.grad_enabled = bool(mode)

    # ------------------------------------------------------------ plans
    def plan(self, op, inputs, params, inplace: bool = False):
        """What a call of ``op`` needs to know of this application, remembered per op signature:
        a program repeats its ops with the same shapes and dtypes (a training step), and a lookup is
        cheaper than the op table's meta rule (``call`` has this lookup inline). An in-place
        application has a plan of its own: its calls are prepared apart. Raises
        ValueDependentError where only the server can tell the result's metadata."""
        key = meta_key(op.name, inputs, params)
        if key is not None and inplace:
            key = (K.CALL_INPLACE, key)
        plan = self._plans.get(key) if key is not None else None
        return plan if plan is not None else self._new_plan(op, inputs, params, key)

    def _new_plan(self, op, inputs, params, key):
        plan = Plan(op, infer(op.name, [x._meta() if isinstance(x, Tensor) else x for x in inputs], params))
        if key is None:
            plan.prepared = -1  # not remembered: nothing to repeat
        else:
            if len(self._plans) >= META_MEMO:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    # ------------------------------------------------------------ calls
    def call(self, op, inputs, params):
        key = meta_key(op.name, inputs, params)  # (plan's lookup, inline: the hot path of every op)
        plan = self._plans.get(key) if key is not None else None
        if plan is None:
            try:
                plan = self._new_plan(op, inputs, params, key)
            except ValueDependentError:
                return self.call_now(op, inputs, params)
        node = saved = None
        if plan.node_type is not None and self.grad_enabled:
            diff = range(len(inputs)) if op.variadic else op.diff_inputs
            for i in diff:
                x = inputs[i]
                if isinstance(x, Tensor) and x._requires_grad:
                    edges = tuple([edge(inputs[i]) for i in diff])
                    saved = saved_inputs(op, inputs, edges) if plan.saves else []
                    node = self._mirror.new_node(self._session, self.new_id(), op.node, plan.node_type,
                                                 edges, plan.saves, plan.early, saved)
                    break
        cls, session, node_id = self._cls, self._session, node._id if node else 0
        base = inputs[0] if op.view else None
        vc = base._vc if base is not None else None  # a view shares its base's version counter
        # the user's line, looked for from the caller of the method that called Tensor._dispatch
        # (this, _dispatch and that method are this package's)
        where = user_line(sys._getframe(3))
        if plan.single:  # the common case, without per-output tuples
            tid = self.new_id()
            ids = (tid,)
            if not self._prepared.queue_call(op, inputs, params, plan, tid, node_id, tid, where):
                self._queue.queue_at(self._queue.build(K.CALL, op.name, inputs, params, ids, node_id),
                                     op.name, ids, where)
            out = _inferred(cls, session, tid, plan.outs[0], node, 0, vc)
            out._base = base
            if saved is not None and op.save_output:
                saved.append((out._vc, out._vc[0]))
            return out
        ids = tuple([self.new_id() for _ in plan.outs])
        self._queue.queue_at(self._queue.build(K.CALL, op.name, inputs, params, ids, node_id), op.name, ids, where)
        outs = tuple([_inferred(cls, session, tid, out, node, nr, vc)
                      for nr, (tid, out) in enumerate(zip(ids, plan.outs))])
        for out in outs:
            out._base = base
        if saved is not None and op.save_output:
            saved.extend((out._vc, out._vc[0]) for out in outs)
        return outs

    def call_now(self, op, inputs, params):
        """An op whose result's shape depends on values: the server runs it now and describes it."""
        n = op.num_outputs
        if n == -1:  # unbind: one output per slice
            shape, dim = inputs[0].shape, params.get("dim", 0)
            # a bad dim names no outputs: the server raises torch's error for it
            n = shape[dim] if isinstance(dim, int) and -len(shape) <= dim < len(shape) else 0
        ids = tuple(self.new_id() for _ in range(n))
        result = self._queue.command(K.CALL, name=op.name, args=inputs, kwargs=params, outputs=ids)
        outs = tuple(self.from_meta(m) for m in result.outputs)
        if op.view:  # a view shares its base's version counter
            for out in outs:
                out._vc, out._base = inputs[0]._vc, inputs[0]
        return outs[0] if op.num_outputs == 1 else outs

    def call_inplace(self, op, inputs, params):
        target = inputs[0]
        try:
            plan = self.plan(op, inputs, params, inplace=True)
        except ValueDependentError:
            plan = None
        if plan is not None:
            check_inplace_result(target._shape, target._dtype, tuple(plan.metas.shape), plan.metas.dtype)
        track = op.node is not None and self.grad_enabled and any(
            isinstance(x, Tensor) and x._requires_grad for x in inputs)
        if track and target._base is None and target._grad_fn is None and target._requires_grad:
            # indexed assignment into a leaf is reported as the view torch writes through
            raise RuntimeError(engine_errors.LEAF_VIEW_INPLACE if op.name == "copy_slices"
                               else engine_errors.LEAF_INPLACE)
        if track and target._base is not None:
            return self._call_inplace_now(op, inputs, params, target)
        self._mirror.writes += 1
        target._vc[0] += 1  # every write bumps the version counter its storage's tensors share
        node = None
        if track and target._dtype.is_floating_point:
            diff = range(len(inputs)) if op.variadic else op.diff_inputs
            edges = tuple(edge(inputs[i]) for i in diff)
            # the engine records the op on a copy of the target's old value, then writes it back
            saved = saved_inputs(op, inputs, edges, first=1)
            if op.save_output:
                saved.append((target._vc, target._vc[0]))
            node = self._mirror.new_node(self._session, self.new_id(), op.node, short_name(op.node),
                                         edges, saves(op), op.name in EARLY_OPS, saved)
        node_id = node._id if node else 0
        where = user_line(sys._getframe(1))
        if plan is None or not self._prepared.queue_call(op, inputs, params, plan, 0, node_id, target._id, where,
                                                         inplace=True):
            self._queue.queue_at(self._queue.build(K.CALL_INPLACE, op.name, inputs, params, (), node_id),
                                 op.name, (), where)
        if node is not None:
            target._grad_fn = node
            target._output_nr = 0
            target._requires_grad = True
        return target

    def _call_inplace_now(self, op, inputs, params, target):
        """An in-place op that autograd records on a view: the server runs it now (a view of a leaf,
        a view of a multi-output op and, in this engine, any such write are torch's errors at this
        line) and describes the target after it."""
        result = self._queue.command(K.CALL_INPLACE, name=op.name, args=inputs, kwargs=params)
        self._mirror.writes += 1
        target._vc[0] += 1
        self.update(target, result.outputs[0])
        return target

    # ------------------------------------------------------------ proxies
    def remember_node(self, node) -> None:
        """A node made here (a custom Function's): the server's descriptions of it find this proxy."""
        self._mirror.nodes[node._id] = node

    def proxy(self, tid: int, shape, dtype, grad_fn, requires_grad: bool, strides="contiguous", output_nr: int = 0,
              vc: list | None = None):
        """A proxy whose metadata this client inferred itself (strides None: only the server knows);
        ``vc``: the version counter it shares (a detach() alias's), else its own."""
        shape = tuple(shape)
        if strides == "contiguous":
            strides = contiguous_strides(shape)
        elif strides is not None:
            strides = tuple(strides)
        t = new_proxy(self._cls, self._session, tid, shape, dtype, strides, requires_grad, grad_fn, output_nr, vc)
        if requires_grad and grad_fn is None:
            self._mirror.new_leaf(tid)
        return t

    def from_meta(self, m) -> Tensor:
        """The proxy of a tensor the server described (a TensorMeta)."""
        t = object.__new__(self._cls)
        t._session = self._session
        t._id = m.id
        t._shape = tuple(m.shape)
        t._dtype = dtypes.by_name(m.dtype)
        t._strides = tuple(m.strides)
        t._vc = [0]
        t._base = None
        self.update(t, m)
        return t

    def update(self, t: Tensor, m) -> None:
        t._requires_grad = m.requires_grad
        t._grad_fn = self._mirror.node(self._session, m.grad_fn) if m.has_grad_fn else None
        t._output_nr = m.output_nr

    def rebind(self, t: Tensor, m) -> None:
        """A proxy whose server tensor changed storage: shape, dtype and strides may differ now."""
        t._shape = tuple(m.shape)
        t._dtype = dtypes.by_name(m.dtype)
        t._strides = tuple(m.strides)
        self.update(t, m)


def _inferred(cls, session, tid: int, out, node, nr: int, vc):
    """The proxy of a queued op's output ``nr``, from its plan's ``out`` (shape, dtype, strides,
    differentiable: a float output the op's node may own), the mirrored node (None: none) and the
    version counter it shares (a view's; None: its own)."""
    shape, dtype, strides, differentiable = out
    return new_proxy(cls, session, tid, shape, dtype, strides, differentiable and node is not None,
                     node if differentiable else None, nr, vc)


def new_proxy(cls, session, tid: int, shape: tuple, dtype, strides, requires_grad: bool, grad_fn, output_nr: int,
              vc: list | None = None):
    t = object.__new__(cls)
    t._vc = [0] if vc is None else vc
    t._base = None
    t._session = session
    t._id = tid
    t._shape = shape
    t._dtype = dtype
    t._strides = strides
    t._requires_grad = requires_grad
    t._grad_fn = grad_fn
    t._output_nr = output_nr
    return t
