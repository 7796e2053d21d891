"""The backward walker: iterative, priority-ordered as torch's engine, owning all bookkeeping."""
from __future__ import annotations

import heapq

from . import grad_mode
from .backend import xp
from .node import AccumulateGrad
from .size import Size
from .tensor import Tensor


def _as_tuple(x):
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _root_grads(outputs, grad_outputs, create_graph):
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if not out.dtype.is_floating_point:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {out.dtype}")
            g = Tensor._make(xp.ones(out._data.shape, dtype=out._data.dtype))
        elif not isinstance(g, Tensor):
            g = Tensor._make(xp.asarray(g, dtype=out._data.dtype))
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {Size(g.shape)} and "
                               f"output[{i}] has a shape of {Size(out.shape)}.")
        grads.append(g)
    return grads


def _check_outputs(outputs):
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")


def _node_of(t: Tensor):
    return (t.grad_fn, t._output_nr) if t.grad_fn is not None else (t._grad_accumulator(), 0)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """torch.autograd.backward: accumulate gradients of ``tensors`` into leaves' ``.grad``."""
    outputs = _as_tuple(tensors)
    grads = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"got {len(grads)} tensors and {len(outputs)} gradients")
    _check_outputs(outputs)
    inputs = _as_tuple(inputs)
    if inputs:
        for t in inputs:
            if not t.requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(outputs, grads, create_graph)
    _run(outputs, roots, retain_graph, create_graph, inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """torch.autograd.grad: gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``."""
    outputs = _as_tuple(outputs)
    single = isinstance(inputs, Tensor)
    inputs = _as_tuple(inputs)
    grads = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got {len(grads)} and {len(outputs)}")
    _check_outputs(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(outputs, grads, create_graph)
    captured = _run(outputs, roots, retain_graph, create_graph, inputs, accumulate=False)
    result = []
    for t, g in zip(inputs, captured):
        if g is None:
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
            if materialize_grads:
                g = Tensor._make(xp.zeros_like(t._data))
        result.append(g)
    del single
    return tuple(result)


def _sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Reduce a broadcast gradient back to an input's shape (the one place this happens)."""
    gshape = g._data.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, d in enumerate(shape) if d == 1 and gshape[i + lead] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    if lead or g._data.shape != shape:
        g = g.reshape(shape)
    return g


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _run(outputs, roots, retain_graph, create_graph, inputs, accumulate):
    # Dependencies: how many edges reach each node from the roots (iterative DFS, no recursion).
    root_edges = [_node_of(t) for t in outputs]
    deps: dict = {}
    seen = set()
    stack = []
    parents: dict = {}
    for node, _ in root_edges:
        if node not in seen:
            seen.add(node)
            stack.append(node)
    while stack:
        node = stack.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if inputs:
                parents.setdefault(nxt, []).append(node)
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)

    # Capture points: with explicit inputs, only nodes on a path to them run.
    capture: dict = {}
    needed = None
    if inputs:
        for i, t in enumerate(inputs):
            node, nr = _node_of(t)
            capture.setdefault((node, nr), []).append(i)
        needed = set()
        frontier = [n for n, _ in capture if n in seen]
        while frontier:
            n = frontier.pop()
            if n in needed:
                continue
            needed.add(n)
            frontier.extend(parents.get(n, ()))
    captured = [None] * len(inputs)

    buffers: dict = {}
    for (node, nr), g in zip(root_edges, roots):
        buf = buffers.setdefault(node, {})
        buf[nr] = _add(buf.get(nr), g)

    ready = []
    for node in seen:
        if deps.get(node, 0) == 0:
            heapq.heappush(ready, (-node._seq, id(node), node))

    with grad_mode.set_grad_enabled(create_graph):
        while ready:
            _, _, node = heapq.heappop(ready)
            buf = buffers.pop(node, None)
            if buf is not None and (needed is None or node in needed):
                _execute(node, buf, retain_graph, create_graph, capture, captured, accumulate, buffers)
            elif not retain_graph and hasattr(node, "_release"):
                node._release()
            for nxt, _ in node.next_functions:
                if nxt is None:
                    continue
                left = deps[nxt] - 1
                deps[nxt] = left
                if left == 0:
                    heapq.heappush(ready, (-nxt._seq, id(nxt), nxt))
    return captured


def _run_tensor_hooks(hooks, g):
    for hook in list(hooks.values()):
        r = hook(g)
        if r is not None:
            g = r
    return g


def _execute(node, buf, retain_graph, create_graph, capture, captured, accumulate, buffers):
    if node.__class__ is AccumulateGrad:
        g = buf.get(0)
        var = node.variable
        if g is None:
            return
        if var._hooks:
            g = _run_tensor_hooks(var._hooks, g)
        if node._pre_hooks:
            g = _run_node_pre_hooks(node, [g])[0]
        slots = capture.get((node, 0))
        if slots is not None:
            for i in slots:
                captured[i] = _add(captured[i], g)
            if not accumulate:
                return
        if accumulate and (not capture or slots is not None):
            _accumulate(var, g, create_graph)
        return

    n_out = len(node._out_meta)
    grads = [buf.get(i) for i in range(n_out)]
    # tensor hooks, then retain_grad, then node pre-hooks: torch's order
    if node._tensor_pre_hooks:
        for nr, hooks in node._tensor_pre_hooks.items():
            if grads[nr] is not None and hooks:
                grads[nr] = _run_tensor_hooks(hooks, grads[nr])
    if node._retain_hooks:
        for nr, t in node._retain_hooks.items():
            if grads[nr] is not None and (not capture or (node, nr) in capture or accumulate):
                _accumulate(t, grads[nr], create_graph)
    if node._pre_hooks:
        grads = _run_node_pre_hooks(node, grads)
    if capture:
        for nr in range(n_out):
            slots = capture.get((node, nr))
            if slots is not None:
                for i in slots:
                    captured[i] = _add(captured[i], grads[nr])
    if all(g is None for g in grads):
        if not retain_graph:
            node._release()
        return
    for i, g in enumerate(grads):
        if g is None:
            shape, dt = node._out_meta[i]
            grads[i] = Tensor._make(xp.zeros(shape, dtype=dt))
    grad_inputs = node._apply(grads, create_graph)
    if not retain_graph:
        node._release()
    if node._post_hooks:
        for hook in list(node._post_hooks.values()):
            r = hook(tuple(grad_inputs), tuple(grads))
            if r is not None:
                grad_inputs = list(r)
    meta = node._input_meta
    for k, ((nxt, nr), gi) in enumerate(zip(node.next_functions, grad_inputs)):
        if nxt is None or gi is None:
            continue
        if gi.__class__ is not Tensor:
            gi = Tensor._make(xp.asarray(gi))
        shape = meta[k]
        if gi._data.shape != shape:
            gi = _sum_to(gi, shape)
        want = _input_dtype(nxt, nr)
        if want is not None and gi._data.dtype != want:
            gi = gi.to(_dtype_of(want))
        slot = buffers.setdefault(nxt, {})
        slot[nr] = _add(slot.get(nr), gi)


def _dtype_of(np_dtype):
    from .dtypes import of_array
    return of_array(xp.empty((), dtype=np_dtype))


def _input_dtype(nxt, nr):
    if nxt.__class__ is AccumulateGrad:
        return nxt.variable._data.dtype
    meta = getattr(nxt, "_out_meta", None)
    if meta:
        return meta[nr][1]
    return None


def _run_node_pre_hooks(node, grads):
    for hook in list(node._pre_hooks.values()):
        r = hook(tuple(grads))
        if r is not None:
            grads = list(r)
    return grads


def _accumulate(var: Tensor, g: Tensor, create_graph: bool) -> None:
    if var.grad is None:
        if create_graph:
            var.grad = g
        else:
            # the leaf owns its gradient: the arriving array may be a broadcast view or be
            # shared with another leaf's gradient, and .grad is later accumulated in place
            var.grad = Tensor._make(xp.array(g._data, copy=True))
    elif create_graph or var.grad.requires_grad:
        var.grad = var.grad + g
    else:
        var.grad._data += g._data
