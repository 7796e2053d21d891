"""The backward walker: iterative, priority-ordered as torch's engine, owning all bookkeeping."""
from __future__ import annotations

import warnings

from . import errors, grad_mode
from .backend import ndarray, writeable, xp
from .method_args import TensorOps
from .node import AccumulateGrad, OpNode
from .size import Size
from .tensor import Tensor


def as_tuple(x) -> tuple:
    """backward's and grad's tensor arguments: None, one tensor (the engine's or a client's proxy), or a sequence."""
    if x is None:
        return ()
    if isinstance(x, TensorOps):
        return (x,)
    return tuple(x)


EMPTY_INPUTS = "`inputs` argument to `backward()` cannot be empty."


def check_root(i: int, out, g) -> None:
    """torch's checks of output ``i`` of backward/grad and its gradient (None: to be created), in
    torch's words. Shared with the client, which raises them at the user's line."""
    if g is None:
        if out.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        if not out.dtype.is_floating_point:
            raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {out.dtype}")
    elif tuple(g.shape) != tuple(out.shape):
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {Size(g.shape)} and "
                           f"output[{i}] has a shape of {Size(out.shape)}.")


def _root_grads(outputs, grad_outputs, create_graph):
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._make(xp.asarray(g, dtype=out._data.dtype))
        check_root(i, out, g)
        if g is None:
            g = Tensor._make(xp.ones(out._data.shape, dtype=out._data.dtype))
        grads.append(g)
    return grads


def match_grads(outputs, grads):
    # torch zips outputs with gradients (extra gradients are dropped), then counts
    if len(grads) < len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grads)} gradients")
    return grads[:len(outputs)]


def check_outputs(outputs):
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")


def _node_of(t: Tensor):
    return (t.grad_fn, t._output_nr) if t.grad_fn is not None else (t._grad_accumulator(), 0)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """torch.autograd.backward: accumulate gradients of ``tensors`` into leaves' ``.grad``."""
    outputs = as_tuple(tensors)
    grads = as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(outputs)
    grads = match_grads(outputs, grads)
    check_outputs(outputs)
    if inputs is not None:
        inputs = as_tuple(inputs)
        if not inputs:
            raise RuntimeError(EMPTY_INPUTS)
    else:
        inputs = ()
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(outputs, grads, create_graph)
    for t in inputs:
        t.retain_grad()  # as torch does: a non-leaf input receives its gradient as a retained one
    if create_graph:
        _warn_create_graph_once()
    _run(outputs, roots, retain_graph, create_graph, inputs, accumulate=True)


_create_graph_warned = []


def _warn_create_graph_once() -> None:
    # torch warns once per process (TORCH_WARN_ONCE)
    if not _create_graph_warned:
        _create_graph_warned.append(True)
        warnings.warn(errors.CREATE_GRAPH_CYCLE, UserWarning, stacklevel=3)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """torch.autograd.grad: gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``."""
    outputs = as_tuple(outputs)
    single = isinstance(inputs, Tensor)
    inputs = as_tuple(inputs)
    grads = as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    grads = match_grads(outputs, grads)
    check_outputs(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    roots = _root_grads(outputs, grads, create_graph)
    captured = _run(outputs, roots, retain_graph, create_graph, inputs, accumulate=False)
    result = []
    for i, (t, g) in enumerate(zip(inputs, captured)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have been used in "
                                   "the graph. Set allow_unused=True if this is the desired behavior.")
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
    if a.__class__ is ndarray or b.__class__ is ndarray:
        # a backward that records nothing: both are of the input's shape and dtype, so numpy's
        # sum is the bits the engine's add gives
        s = (a if a.__class__ is ndarray else a._data) + (b if b.__class__ is ndarray else b._data)
        return s if s.__class__ is ndarray else xp.asarray(s)
    return a + b


def _tensors(grads: list) -> list:
    """Gradients as Tensors, for whatever reads them as such (hooks, captures, tensor VJPs); an
    array VJP of a 0-d input may have given a numpy scalar."""
    return [g if g is None or g.__class__ is Tensor else Tensor._make(g if g.__class__ is ndarray else xp.asarray(g))
            for g in grads]


class _ReadyQueue:
    """torch's ready queue: a std::priority_queue on sequence_nr, highest first.

    libstdc++'s push_heap/pop_heap are reproduced step for step, so that nodes of equal sequence_nr
    (several AccumulateGrad nodes) come out in the same order as in torch, and hooks fire in torch's order.
    """

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list = []

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, node) -> None:
        heap = self._heap
        if not heap:  # a queue of one (a chain's every step) needs no sifting
            heap.append((node._seq, node))
            return
        heap.append(None)
        self._sift_up(len(heap) - 1, 0, (node._seq, node))

    def pop(self):
        heap = self._heap
        n = len(heap)
        if n == 1:
            return heap.pop()[1]
        top = heap[0]
        value = heap[n - 1]
        heap[n - 1] = top
        self._adjust(n - 1, value)
        heap.pop()
        return top[1]

    def _sift_up(self, hole: int, top: int, value) -> None:  # std::__push_heap
        heap = self._heap
        parent = (hole - 1) // 2
        while hole > top and heap[parent][0] < value[0]:
            heap[hole] = heap[parent]
            hole = parent
            parent = (hole - 1) // 2
        heap[hole] = value

    def _adjust(self, length: int, value) -> None:  # std::__adjust_heap from the top
        heap = self._heap
        hole = child = 0
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if heap[child][0] < heap[child - 1][0]:
                child -= 1
            heap[hole] = heap[child]
            hole = child
        if length & 1 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            heap[hole] = heap[child - 1]
            hole = child - 1
        self._sift_up(hole, 0, value)


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

    # Capture points. With explicit inputs only the nodes on a path to one of them run, as in torch.
    # backward(inputs=...) runs the inputs' own nodes too (non-leaf inputs get .grad by retain_grad);
    # autograd.grad runs an input's node only if it leads to another input. Nodes that do not run
    # keep their saved tensors.
    capture: dict = {}
    needed = None
    if inputs:
        for i, t in enumerate(inputs):
            capture.setdefault(_node_of(t), []).append(i)
        needed = set()
        frontier = []
        for n, _ in capture:
            if n in seen:
                frontier.extend(parents.get(n, ()))
                if accumulate:
                    needed.add(n)
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

    # torch's GraphRoot: one dependency per root edge, released first and in order; then a node is
    # queued when its last dependency is released (nodes that need not run are never queued)
    for node, _ in root_edges:
        deps[node] = deps.get(node, 0) + 1
    if needed is not None and len(root_edges) == 1:
        needed.add(root_edges[0][0])  # a single root is torch's graph root itself: it always runs
    queued = seen if needed is None else needed.union(n for n, _ in capture)
    ready = _ReadyQueue()
    for node, _ in root_edges:
        deps[node] -= 1
        if deps[node] == 0 and node in queued:
            ready.push(node)

    # The common node (an op's, one output, no hooks) in a backward that records and captures
    # nothing runs here, its VJPs on arrays; anything else goes through _execute.
    plain = not create_graph and not capture
    # the next node when it alone is ready (a chain's every step): run without the queue
    following = None
    waiting = ready._heap  # (the queue's emptiness, read without a method call per node)
    with grad_mode.set_grad_enabled(bool(create_graph)):
        while following is not None or waiting:
            if following is not None:
                node, following = following, None
            else:
                node = ready.pop()
            buf = buffers.pop(node, None)
            run = needed is None or node in needed
            if buf is not None and run:
                g = buf.get(0)
                if plain and g is not None and isinstance(node, OpNode) and len(node._out_meta) == 1 and \
                        not (node._tensor_pre_hooks or node._retain_hooks or node._pre_hooks or node._post_hooks):
                    grad_inputs = _vjps(node, [g], False)
                    if not retain_graph:
                        node._release()
                    _pass_on(node, grad_inputs, False, buffers)
                else:
                    _execute(node, buf, retain_graph, create_graph, capture, captured, accumulate, buffers,
                             None if needed is None else queued)
            elif buf is not None:
                _capture_only(node, buf, create_graph, capture, captured)
            elif run and not retain_graph and hasattr(node, "_release"):
                node._release()
            for nxt, _ in node.next_functions:
                if nxt is None:
                    continue
                left = deps[nxt] - 1
                deps[nxt] = left
                if left == 0 and nxt in queued:
                    if following is None and not waiting:
                        following = nxt
                    else:  # more than one ready: the queue orders them
                        if following is not None:
                            ready.push(following)
                            following = None
                        ready.push(nxt)
    return captured


def _run_tensor_hooks(hooks, g):
    for hook in list(hooks.values()):
        r = hook(g)
        if r is not None:
            _check_hook_result(hook, g, r)
            g = r
    return g


def _check_hook_result(hook, g: Tensor, r) -> None:
    """torch's check_variable_result: a hook may replace a gradient only by one of its type and size."""
    if not isinstance(r, Tensor):
        raise TypeError(f"expected Variable, but hook returned '{type(r).__name__}'")
    name = getattr(hook, "__name__", type(hook).__name__)
    if r._data.dtype != g._data.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was torch.{errors.legacy_name(g.dtype)} "
                           f"got torch.{errors.legacy_name(r.dtype)})")
    if r._data.shape != g._data.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value")


def _tensor_pre_hooks(node, grads, create_graph):
    """Hooks registered on a node's output tensors, then retain_grad: torch's call_tensor_pre_hooks."""
    if node._tensor_pre_hooks:
        for nr, hooks in node._tensor_pre_hooks.items():
            if grads[nr] is not None and hooks:
                grads[nr] = _run_tensor_hooks(hooks, grads[nr])
    if node._retain_hooks:
        for nr, t in node._retain_hooks.items():
            g = grads[nr]
            if g is not None:
                # torch's retain_grad hook: a clone, then out-of-place sums (recorded under create_graph)
                t._grad = g.clone() if t._grad is None else t._grad + g
    return grads


def _capture_only(node, buf, create_graph, capture, captured):
    """An input's node that is not needed to reach any other input: hooks, capture, no execution."""
    if node.__class__ is AccumulateGrad:
        g = _tensors([buf.get(0)])[0]
        if g is not None and node.variable._hooks:
            g = _run_tensor_hooks(node.variable._hooks, g)
        grads = [g]
    else:
        grads = _tensor_pre_hooks(node, _tensors([buf.get(i) for i in range(len(node._out_meta))]), create_graph)
    for nr, g in enumerate(grads):
        for i in capture.get((node, nr), ()):
            captured[i] = _add(captured[i], g)


def _execute(node, buf, retain_graph, create_graph, capture, captured, accumulate, buffers, queued=None):
    """Run one node on its buffered gradients and buffer what it passes on. Without create_graph
    gradients travel as arrays, made Tensors only where something reads them as such. With
    explicit inputs, ``queued`` holds the nodes that run or capture: an input whose node is not
    among them gets no gradient (None, as torch's post hooks see it)."""
    if node.__class__ is AccumulateGrad:
        g = buf.get(0)
        var = node.variable
        if g is None:
            return
        slots = capture.get((node, 0)) if capture else None
        if var._hooks or node._pre_hooks or slots is not None:
            if g.__class__ is ndarray:
                g = Tensor._make(g)
            if var._hooks:
                g = _run_tensor_hooks(var._hooks, g)
            if node._pre_hooks:
                g = _run_node_pre_hooks(node, [g])[0]
        if slots is not None:
            for i in slots:
                captured[i] = _add(captured[i], g)
            if not accumulate:
                return
        if accumulate and (not capture or slots is not None):
            _accumulate(var, g, create_graph)
        return

    n_out = len(node._out_meta)
    grads = [buf.get(0)] if n_out == 1 else [buf.get(i) for i in range(n_out)]
    if capture or node._tensor_pre_hooks or node._retain_hooks or node._pre_hooks:
        grads = _tensors(grads)
        if capture:
            # a node that runs hands its captured inputs over before its tensor hooks, as torch's does
            for nr in range(n_out):
                for i in capture.get((node, nr), ()):
                    captured[i] = _add(captured[i], grads[nr])
        # tensor hooks, then retain_grad, then node pre-hooks: torch's order
        if node._tensor_pre_hooks or node._retain_hooks:
            grads = _tensor_pre_hooks(node, grads, create_graph)
        if node._pre_hooks:
            grads = _run_node_pre_hooks(node, grads)
    missing = [i for i, g in enumerate(grads) if g is None]
    if missing:
        # a custom Function's backward runs even then, as in torch (it may want None or zeros)
        if len(missing) == n_out and not hasattr(node, "materialize_grads"):
            if not retain_graph:
                node._release()
            return
        if getattr(node, "materialize_grads", True):  # a custom Function may ask for None instead
            for i in missing:
                shape, dt = node._out_meta[i]
                grads[i] = Tensor._make(xp.zeros(shape, dtype=dt))
    grad_inputs = _vjps(node, grads, create_graph)
    if not retain_graph:
        node._release()
    if queued is not None:
        grad_inputs = [None if nxt is None or nxt not in queued else gi
                       for gi, (nxt, _) in zip(grad_inputs, node.next_functions)]
    if node._post_hooks:
        grads = _tensors(grads)
        grad_inputs = _tensors(grad_inputs)
        for hook in list(node._post_hooks.values()):
            r = hook(tuple(grad_inputs), tuple(grads))
            if r is not None:
                grad_inputs = list(r)
    _pass_on(node, grad_inputs, create_graph, buffers)


def _vjps(node, grads, create_graph) -> list:
    """A node's gradients for its inputs: its op's VJPs on arrays where it has them and nothing is
    recorded (one output), else the node's own VJPs on Tensors."""
    if not create_graph and len(grads) == 1:
        op = getattr(node, "_op", None)
        if op is not None and op.array_vjps is not None:
            g = grads[0]
            result = node._apply_arrays(g if g.__class__ is ndarray else g._data)
            if result is not None:
                return result
    return node._apply(_tensors(grads), create_graph)


def _pass_on(node, grad_inputs, create_graph, buffers) -> None:
    """Buffer a node's gradients for the nodes of its inputs: summed to each input's shape, in its
    dtype; arrays without create_graph, Tensors (with their history) with it."""
    meta = node._input_meta
    for k, ((nxt, nr), gi) in enumerate(zip(node.next_functions, grad_inputs)):
        if nxt is None or gi is None:
            continue
        cls = gi.__class__
        if cls is Tensor:
            data = gi._data
        elif cls is ndarray:
            data = gi
        else:  # a VJP's numpy scalar (0-d) or a hook's stray value
            data = gi = xp.asarray(gi)
        if data.shape != meta[k]:
            gi = _sum_to(gi if gi.__class__ is Tensor else Tensor._make(data), meta[k])
            data = gi._data
        # the gradient in the dtype of the input it is for (its producer's output, or the leaf)
        if nxt.__class__ is AccumulateGrad:
            want = nxt.variable._data.dtype
        else:
            want = getattr(nxt, "_out_meta", None)
            want = want[nr][1] if want else None
        if want is not None and data.dtype is not want and data.dtype != want:
            gi = (gi if gi.__class__ is Tensor else Tensor._make(data)).to(_dtype_of(want))
            data = gi._data
        # without create_graph the array travels on; with it, the Tensor and its history
        if not create_graph:
            gi = data
        elif gi.__class__ is not Tensor:
            gi = Tensor._make(data)
        slot = buffers.get(nxt)
        if slot is None:
            buffers[nxt] = {nr: gi}
        else:
            slot[nr] = _add(slot.get(nr), gi)


def _dtype_of(np_dtype):
    from .dtypes import of_array
    return of_array(xp.empty((), dtype=np_dtype))


def _run_node_pre_hooks(node, grads):
    for hook in list(node._pre_hooks.values()):
        r = hook(tuple(grads))
        if r is not None:
            grads = list(r)
    return grads


def _accumulate(var: Tensor, g, create_graph: bool) -> None:
    """torch's AccumulateGrad: the first gradient is copied, later ones added (in place without create_graph)."""
    if g.__class__ is ndarray:
        g = Tensor._make(g)
    old = var._grad
    if old is None:
        if create_graph and g.requires_grad:
            # torch clones obeying the layout contract: an empty tensor copy_'d from the gradient
            var._grad = Tensor._make(xp.empty_like(g._data)).copy_(g)
        else:
            # the leaf owns its gradient: the arriving array may be a broadcast view or be
            # shared with another leaf's gradient, and .grad is later accumulated in place
            var._grad = Tensor._make(xp.array(g._data, copy=True))
    elif create_graph:
        var._grad = old + g
    elif writeable(old._data):
        old._data += g._data
        old._vc[0] += 1
    else:
        var._grad = Tensor._make(old._data + g._data)
