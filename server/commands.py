"""What each command kind does to a session: parse its Values, call the engine, describe results."""
from __future__ import annotations

import math

from .. import engine
from ..engine import autograd as engine_autograd
from ..engine import dtypes, factories
from ..engine.backend import from_numpy, to_numpy
from ..engine.grad_mode import _enabled
from ..engine.ops import OPS
from ..engine.random import manual_seed
from ..engine.tensor import Tensor, dispatch, dispatch_inplace
from ..protos import autograd_pb2 as pb
from ..protos.codec import KIND as K
from ..protos.codec import MAX_PREPARED, decode_array, decode_value, encode_array, encode_value
from .errors import Cancelled, ResourceExhausted, UnknownTensor
from .function_node import apply_function

# prepared calls between two looks at whether the batch's call was cancelled
CANCEL_CHECK_EVERY = 1024

FACTORIES = {name: getattr(factories, name) for name in (
    "zeros", "ones", "full", "empty", "rand", "randn", "randint", "randperm", "arange", "linspace", "eye")}


def _args(session, cmd) -> tuple:
    # the hot path of every batch: tensor refs and floats decoded inline, the rest by the codec
    tensors = session.tensors
    args = []
    for v in cmd.args:
        kind = v.WhichOneof("kind")
        if kind == "ref":
            t = tensors.get(v.ref)
            args.append(t if t is not None else session.tensor(v.ref))  # (it raises for an unknown id)
        elif kind == "f":
            args.append(v.f)
        else:
            args.append(decode_value(v, session.tensor, dtypes.by_name))
    return tuple(args)


def _kwargs(session, cmd):
    if not cmd.kwargs:
        return {}
    tensor_of = session.tensor
    return {k: decode_value(v, tensor_of, dtypes.by_name) for k, v in cmd.kwargs.items()}


def _bind_outputs(session, ctx, cmd, tensors, result: pb.CommandResult) -> None:
    """Bind a command's tensors to the ids it named (a None is skipped), described if it asked."""
    outputs, held = cmd.outputs, session.tensors
    if len(outputs) == 1 and len(tensors) == 1 and tensors[0] is not None and not ctx.want_meta and \
            outputs[0] not in held and len(held) < session.limits.max_tensors:
        held[outputs[0]] = tensors[0]  # the common case, with nothing for bind() to check
        return
    if len(outputs) != len(tensors):
        raise ValueError(f"command {cmd.name or pb.Kind.Name(cmd.kind)} creates {len(tensors)} tensors "
                         f"but {len(cmd.outputs)} ids were named")
    bind(session, ctx, result, outputs, tensors)


def bind(session, ctx, result: pb.CommandResult, ids, tensors, none_described: bool = False) -> None:
    """Bind each tensor to its id and describe it in ``result`` if the command asked. A None binds
    nothing; with ``none_described`` it still takes its place in ``result`` (an empty meta, id 0),
    as gradients that are None do."""
    for tid, t in zip(ids, tensors):
        if t is None:
            if none_described:
                result.outputs.add()
            continue
        session.bind(tid, t, ctx.releasing)
        if ctx.want_meta:
            session.meta(tid, t, result.outputs.add())


def describe(session, ctx, result: pb.CommandResult, tid: int, t: Tensor) -> None:
    """Describe a tensor the command changed in place (held as ``tid``) if the command asked."""
    if ctx.want_meta:
        session.meta(tid, t, result.outputs.add())


def _op(name: str):
    op = OPS.get(name)
    if op is None:
        raise NotImplementedError(f"unknown op {name!r}")
    return op


# ops whose params name the shape they make (a gradient's scatter back) or a multiple of their
# input's (repeat): the element limit is checked before they allocate
SHAPED = frozenset(("select_backward", "slice_backward", "index_backward", "index_select_backward", "repeat"))


def check_elements(session, shape, what: str) -> None:
    """Refuse a tensor of more elements than the limit before it is allocated."""
    n = 1
    for d in shape:
        if d.__class__ is not int or d < 0:
            return  # not a shape: the engine raises torch's error for it
        n *= d
    limit = session.limits.max_elements
    if n > limit:
        raise ResourceExhausted(f"{what} of shape {list(shape)} would hold {n} elements; the limit "
                                f"(--max-elements) is {limit}")


def _check_shaped(session, name: str, args, params) -> None:
    if name == "repeat":
        repeats = params.get("repeats", args[1] if len(args) > 1 else ())
        if isinstance(repeats, tuple):
            first = args[0] if args else None
            shape = tuple(first._data.shape) if isinstance(first, Tensor) else ()
            check_elements(session, (1,) * (len(repeats) - len(shape)) + shape + tuple(repeats), "repeat's result")
    else:
        shape = params.get("shape")
        if isinstance(shape, tuple):
            check_elements(session, shape, f"{name}'s result")


def _factory_size(name: str, args, kw) -> tuple:
    """The shape a factory call would make, as far as its arguments say (() where they do not)."""
    if name in ("zeros", "ones", "empty", "rand", "randn"):
        return kw.get("size") or (args[0] if len(args) == 1 and isinstance(args[0], tuple) else args)
    if name == "full":
        return args[0] if args and isinstance(args[0], tuple) else ()
    if name == "randint":
        size = kw.get("size", args[-1] if args else ())
        return size if isinstance(size, tuple) else ()
    if name == "randperm":
        return args[:1]
    if name == "linspace":
        return (args[2],) if len(args) > 2 else (kw.get("steps"),)
    if name == "eye":
        return (args[0], args[1] if len(args) > 1 and args[1] is not None else args[0]) if args else ()
    if name == "arange" and args and all(isinstance(a, (int, float)) for a in args[:3]):
        start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1)
        if step and math.isfinite(start) and math.isfinite(end) and math.isfinite(step):
            return (max(0, math.ceil((end - start) / step)),)
    return ()


def call(session, ctx, cmd, result):
    if cmd.name in SHAPED:
        _check_shaped(session, cmd.name, _args(session, cmd), _kwargs(session, cmd))
    out = dispatch(_op(cmd.name), _args(session, cmd), _kwargs(session, cmd))
    outs = (out,) if out.__class__ is Tensor else out
    _name_node(session, cmd, outs[0])
    _bind_outputs(session, ctx, cmd, outs, result)


class Prepared:
    """A prepared call: its op, its arguments with None in each tensor's place, those places, its
    params (copied per call: a node keeps the dict it was given), whether it writes its first
    tensor (a CALL_INPLACE), and the PREPARE command that made it (serialized: a snapshot keeps it)."""

    __slots__ = ("op", "args", "slots", "params", "inplace", "raw")

    def __init__(self, op, args: list, slots: tuple, params: dict, inplace: bool, raw: bytes) -> None:
        self.op, self.args, self.slots, self.params, self.raw = op, args, slots, params, raw
        self.inplace = inplace


_CONSTANTS = frozenset((None, "none", "b", "i", "f", "s", "dtype"))


def _constant(v):
    """A prepared call's constant: plain data (numbers, strings, dtypes, lists of them). Its
    tensors come per call; and it holds no array data of its own (a session's memory is its
    tensors)."""
    kind = v.WhichOneof("kind")
    if kind == "list":
        return tuple(_constant(x) for x in v.list.items)
    if kind not in _CONSTANTS:
        raise ValueError(f"a prepared call's arguments are plain values or ref 0 (a tensor per call), "
                         f"not {kind}")
    return decode_value(v, None, dtypes.by_name)


def prepare(session, ctx, cmd, result):
    if len(cmd.outputs) != 1 or not cmd.outputs[0]:
        raise ValueError("PREPARE names the prepared call's id, not 0, in outputs[0]")
    pid = cmd.outputs[0]
    op = _op(cmd.name)
    if op.num_outputs != 1:
        raise ValueError(f"only ops with one output can be prepared; {cmd.name} has more")
    if pid not in session.prepared and len(session.prepared) >= MAX_PREPARED:
        raise ResourceExhausted(f"session holds {MAX_PREPARED} prepared calls, the limit; send CALL commands")
    args, slots = [], []
    for k, v in enumerate(cmd.args):
        if v.WhichOneof("kind") == "ref" and v.ref == 0:
            slots.append(k)
            args.append(None)
        else:
            args.append(_constant(v))
    if cmd.inplace and (not slots or slots[0] != 0):
        raise ValueError("an in-place prepared call's first argument is `ref: 0`, the tensor it writes")
    params = {k: _constant(v) for k, v in cmd.kwargs.items()}
    if cmd.name in SHAPED:  # (repeat: its multiple alone; the input comes per call)
        _check_shaped(session, cmd.name, args, params)
    session.prepared[pid] = Prepared(op, args, tuple(slots), params, cmd.inplace, cmd.SerializeToString())


def calls(session, ctx, cmd, result):
    """A run of prepared calls; on a failure, ``ctx.extra_index`` counts the calls before it."""
    ids = list(cmd.calls)
    n = len(ids)
    prepared, held, limit = session.prepared, session.tensors, session.limits.max_tensors
    cancelled = ctx.cancelled
    p = done = 0
    try:
        while p < n:
            if cancelled is not None and not (done + 1) % CANCEL_CHECK_EVERY and cancelled():
                raise Cancelled(f"the call that brought this batch was cancelled (or its deadline passed) "
                                f"after {done} calls of a CALLS command")
            call = prepared.get(ids[p])
            if call is None:
                raise UnknownTensor(f"prepared call {ids[p]} is not held by this session")
            q = p + 3
            end = q + len(call.slots)
            if end > n:
                raise ValueError("a CALLS command ends in the middle of a call")
            args = call.args.copy()
            for k in call.slots:
                t = held.get(ids[q])
                args[k] = t if t is not None else session.tensor(ids[q])
                q += 1
            params = call.params.copy() if call.params else {}
            tid = ids[p + 1]
            if call.inplace:
                if tid:
                    raise ValueError("an in-place prepared call names no output (0)")
                dispatch_inplace(call.op, tuple(args), params)
                node = args[0].grad_fn  # the node its target now has, if any
            else:
                out = dispatch(call.op, tuple(args), params)
                node = out.grad_fn
                if tid not in held and len(held) < limit:
                    held[tid] = out  # session.bind's common case, inline
                else:
                    session.bind(tid, out, ctx.releasing)
            if node is not None and ids[p + 2]:
                session.bind_node(ids[p + 2], node)
            p = end
            done += 1
    except Exception:
        ctx.extra_index += done
        raise
    ctx.extra_index += done - 1


def call_inplace(session, ctx, cmd, result):
    args = _args(session, cmd)
    dispatch_inplace(_op(cmd.name), args, _kwargs(session, cmd))
    _name_node(session, cmd, args[0])
    describe(session, ctx, result, cmd.args[0].ref, args[0])


def _name_node(session, cmd, t) -> None:
    # the client named the node it expects this command to create; it refers to it by that id
    if cmd.node and t.grad_fn is not None:
        session.bind_node(cmd.node, t.grad_fn)


def function(session, ctx, cmd, result):
    args, outputs = _args(session, cmd)[:2]
    kw = _kwargs(session, cmd)
    results = apply_function(session, cmd.node, kw["name"], args, outputs, kw.get("non_differentiable") or (),
                             bool(kw.get("materialize_grads", True)), kw.get("saved") or ())
    named = cmd.outputs
    ids = [named[k] if k < len(named) and named[k] else ref.ref for k, ref in enumerate(cmd.args[1].list.items)]
    bind(session, ctx, result, ids, results)


def node_apply(session, ctx, cmd, result):
    node = session.node(_kwargs(session, cmd)["node"])
    grads = node(*_args(session, cmd))
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(cmd.outputs) != len(grads):
        raise ValueError(f"{node.name()} returns {len(grads)} gradients but {len(cmd.outputs)} ids were named")
    bind(session, ctx, result, cmd.outputs, grads, none_described=True)


def factory(session, ctx, cmd, result):
    fn = FACTORIES.get(cmd.name)
    if fn is None:
        raise NotImplementedError(f"unknown factory {cmd.name!r}")
    args, kw = _args(session, cmd), _kwargs(session, cmd)
    size = _factory_size(cmd.name, args, kw)
    if isinstance(size, tuple):
        check_elements(session, size, f"{cmd.name}'s result")
    _bind_outputs(session, ctx, cmd, (fn(*args, **kw),), result)


def upload(session, ctx, cmd, result):
    check_elements(session, tuple(cmd.args[0].tensor.shape), "an uploaded tensor")
    array = from_numpy(decode_array(cmd.args[0].tensor))
    t = Tensor._make(array)
    if _kwargs(session, cmd).get("requires_grad"):
        t.requires_grad = True
    _bind_outputs(session, ctx, cmd, (t,), result)


def _tensors(value):
    return () if value is None else tuple(value)


def backward(session, ctx, cmd, result):
    tensors, grads, inputs = _args(session, cmd)
    kw = _kwargs(session, cmd)
    engine_autograd.backward(_tensors(tensors), grads and _tensors(grads), kw.get("retain_graph"),
                             bool(kw.get("create_graph", False)), inputs=inputs and _tensors(inputs))


def grad(session, ctx, cmd, result):
    outputs, inputs, grad_outputs = _args(session, cmd)
    kw = _kwargs(session, cmd)
    grads = engine_autograd.grad(_tensors(outputs), _tensors(inputs), grad_outputs and _tensors(grad_outputs),
                                 **kw)
    if len(cmd.outputs) != len(grads):
        raise ValueError(f"autograd.grad returns {len(grads)} tensors but {len(cmd.outputs)} ids were named")
    bind(session, ctx, result, cmd.outputs, grads, none_described=True)


def detach(session, ctx, cmd, result):
    _bind_outputs(session, ctx, cmd, (_args(session, cmd)[0].detach(),), result)


def data(session, ctx, cmd, result):
    _bind_outputs(session, ctx, cmd, (_args(session, cmd)[0].data,), result)


def set_data(session, ctx, cmd, result):
    t, source = _args(session, cmd)
    t.data = source
    describe(session, ctx, result, cmd.args[0].ref, t)


def detach_inplace(session, ctx, cmd, result):
    t = _args(session, cmd)[0]
    t.detach_()
    describe(session, ctx, result, cmd.args[0].ref, t)


def get_grad(session, ctx, cmd, result):
    t = _args(session, cmd)[0]
    g = t._grad  # the slot: the client warns about a non-leaf's .grad, at the user's line
    if g is not None:
        _bind_outputs(session, ctx, cmd, (g,), result)
    else:
        result.value.none = True


def set_grad(session, ctx, cmd, result):
    t, g = _args(session, cmd)
    t.grad = g  # the engine's setter checks size and dtype with torch's messages


def set_requires_grad(session, ctx, cmd, result):
    t, flag = _args(session, cmd)
    t.requires_grad = bool(flag)
    describe(session, ctx, result, cmd.args[0].ref, t)


def retain_grad(session, ctx, cmd, result):
    _args(session, cmd)[0].retain_grad()


def register_hook(session, ctx, cmd, result):
    t = _args(session, cmd)[0]
    kw = _kwargs(session, cmd)
    hook_id, name = kw["hook"], kw.get("name")
    session.hooks[hook_id] = t.register_hook(session.make_hook(hook_id, name if isinstance(name, str) else None))


def remove_hook(session, ctx, cmd, result):
    handle = session.hooks.pop(_kwargs(session, cmd)["hook"], None)
    if handle is not None:
        handle.remove()


def set_grad_mode(session, ctx, cmd, result):
    _enabled.set(bool(_args(session, cmd)[0]))


def seed(session, ctx, cmd, result):
    manual_seed(_args(session, cmd)[0])


def next_functions(session, ctx, cmd, result):
    node = session.node(_kwargs(session, cmd)["node"])
    items = result.value.list
    result.value.list.SetInParent()
    for nxt, nr in node.next_functions:
        pair = items.items.add().list
        pair.SetInParent()
        first = pair.items.add()
        if nxt is None:
            first.none = True
        else:
            session.node_ref(nxt, first.node)
        pair.items.add().i = nr


def fetch(session, ctx, cmd, result):
    encode_array(to_numpy(_args(session, cmd)[0]._data), result.value.tensor)


def meta(session, ctx, cmd, result):
    session.meta(cmd.args[0].ref, _args(session, cmd)[0], result.outputs.add())


HANDLERS = {
    K.FUNCTION: function, K.NODE_APPLY: node_apply,
    K.CALL: call, K.CALL_INPLACE: call_inplace, K.FACTORY: factory, K.UPLOAD: upload,
    K.BACKWARD: backward, K.GRAD: grad, K.DETACH: detach, K.DATA: data, K.GET_GRAD: get_grad,
    K.SET_GRAD: set_grad, K.SET_REQUIRES_GRAD: set_requires_grad, K.RETAIN_GRAD: retain_grad,
    K.REGISTER_HOOK: register_hook, K.REMOVE_HOOK: remove_hook, K.SET_GRAD_MODE: set_grad_mode,
    K.MANUAL_SEED: seed, K.NEXT_FUNCTIONS: next_functions, K.FETCH: fetch, K.META: meta,
    K.SET_DATA: set_data, K.DETACH_INPLACE: detach_inplace, K.PREPARE: prepare, K.CALLS: calls,
}

del engine, encode_value
