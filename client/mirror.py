"""The client's mirror of a session's graph: which tensors hold a grad, retained grads, nodes, accumulators, writes."""
from __future__ import annotations

import weakref

from .node import make_node, new_node
from .tensor import Tensor


def edge(x):
    """What a mirrored node records of one input (as the engine's _edge does on the server)."""
    if isinstance(x, Tensor):
        if x._grad_fn is not None:
            return (x._grad_fn, x._output_nr)
        if x._requires_grad:
            return (x, 0)
    return (None, 0)


def saved_inputs(op, inputs, edges, first: int = 0) -> list:
    """(version counter, version) of each input the engine's node for ``op`` saves (engine/tensor.py
    _record): its ``save`` inputs that a VJP that will run reads, and every tensor from ``save_tail``
    on; from input ``first`` on (an in-place op saves a copy of its target's old value instead)."""
    saved = []
    read_by = op.read_by
    for i in op.save:
        x = inputs[i]
        if i >= first and isinstance(x, Tensor):
            readers = read_by.get(i)
            if readers is None or any(edges[p][0] is not None for p in readers):
                saved.append((x._vc, x._vc[0]))
    if op.save_tail is not None:
        for x in inputs[max(op.save_tail, first):]:
            if isinstance(x, Tensor):
                saved.append((x._vc, x._vc[0]))
    return saved


def walk(roots):
    """Nodes and leaves a backward from ``roots`` reaches, as far as the mirrored graph knows;
    ``exact`` is False where it reached a node made elsewhere (a custom Function, the server)."""
    reached_nodes, reached_leaves, exact = {}, {}, True
    stack = [t._grad_fn if t._grad_fn is not None else t for t in roots]
    push = stack.append
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            reached_leaves[x._id] = x
            continue
        key = id(x)
        if key in reached_nodes:
            continue
        reached_nodes[key] = x
        edges = getattr(x, "_edges", None)
        if edges is None:
            exact = False
            continue
        for target, _ in edges:
            if target is not None:
                push(target)
    return reached_nodes, reached_leaves, exact


class Mirror:
    """What the client knows of the server's graph without asking: whether a tensor holds a
    ``.grad`` (exact while every backward ran through mirrored nodes), which tensors retain
    their grad, the node proxies by id, each leaf's AccumulateGrad proxy, and the count of in-place
    writes (a node keeps the count it was made at: a backward may meet a modified saved value)."""

    def __init__(self) -> None:
        self.has_grad: dict[int, bool] = {}
        self.grad_exact = True
        self.retained: set[int] = set()
        self.nodes: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.accumulators: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.writes = 0
        # the version counter of each tensor's .grad, shared by every proxy a read of .grad gives
        # (torch's .grad is one tensor until a backward or an assignment replaces it)
        self.grad_vcs: dict[int, list] = {}

    # ------------------------------------------------------------ gradients
    def grad_known(self, t: Tensor):
        """True or False when the mirror knows whether ``t.grad`` is set; None when only the server does."""
        if not self.grad_exact:
            return None
        state = self.has_grad.get(t._id)
        if state is not None:
            return state
        if t._grad_fn is not None:
            return False if t._id not in self.retained else None
        return False if not t._requires_grad else None

    def new_leaf(self, tid: int) -> None:
        """A new leaf that requires grad has none yet."""
        self.has_grad[tid] = False

    def released(self, ids) -> None:
        pop, pop_vc = self.has_grad.pop, self.grad_vcs.pop
        for tid in ids:
            pop(tid, None)
            pop_vc(tid, None)

    def grads_unknown(self) -> None:
        """A backward failed midway (a hook raised) or did not run: which grads exist, only the server knows."""
        self.has_grad.clear()
        self._grads_written(None)

    def grad_vc(self, tid: int) -> list:
        """The version counter the proxies of tensor ``tid``'s .grad share."""
        vc = self.grad_vcs.get(tid)
        if vc is None:
            vc = self.grad_vcs[tid] = [0]
        return vc

    def grad_assigned(self, tid: int, value) -> None:
        """``t.grad = value``: its grad is that very tensor now (or none)."""
        self.has_grad[tid] = value is not None
        if value is None:
            self.grad_vcs.pop(tid, None)
        else:
            self.grad_vcs[tid] = value._vc

    def _grads_written(self, tids) -> None:
        """A backward accumulated into these tensors' grads (None: which, only the server knows): an
        existing grad is added to in place (its version moves), a missing one is a new tensor. Where
        the mirror cannot tell, every counter moves: a backward that then meets a saved grad is sent
        at once, which costs a round trip and never a wrong line."""
        for tid in list(self.grad_vcs) if tids is None else tids:
            vc = self.grad_vcs.get(tid)
            if vc is not None:
                if tids is None or self.has_grad.get(tid):
                    vc[0] += 1
                else:
                    del self.grad_vcs[tid]

    def spend(self, roots, retain_graph, create_graph, reached=None) -> None:
        """After a backward that frees buffers: the mirrored nodes that held saved values are spent."""
        if retain_graph or (retain_graph is None and create_graph):
            return
        for node in (reached or walk(roots))[0].values():
            if getattr(node, "_saves", False):
                node._spent = True

    def predict_grads(self, roots, inputs, create_graph: bool, reached=None) -> None:
        """After a backward: which leaves (and retained tensors) now hold a gradient."""
        if create_graph:
            self.grad_exact = False  # gradients with history: let the server describe them
            self._grads_written(None)
            return
        reached_nodes, reached_leaves, exact = reached or walk(roots)
        if not exact:
            self.grad_exact = False
            self._grads_written(None)
            return
        if self.grad_vcs and self.retained:  # a retained grad is a new tensor after each backward
            for tid in self.retained:
                self.grad_vcs.pop(tid, None)
        if inputs is not None:
            for t in inputs:
                if (t._grad_fn is None and t._id in reached_leaves) or \
                        (t._grad_fn is not None and id(t._grad_fn) in reached_nodes):
                    if self.grad_vcs:
                        self._grads_written((t._id,))
                    self.has_grad[t._id] = True
            return
        if self.grad_vcs:
            self._grads_written(reached_leaves)
        for tid in reached_leaves:
            self.has_grad[tid] = True

    # ------------------------------------------------------------ nodes
    def node(self, session, ref):
        """The proxy of a node the server described (one per node id)."""
        node = self.nodes.get(ref.id)
        if node is None:
            node = make_node(session, ref)
            self.nodes[ref.id] = node
        return node

    def new_node(self, session, node_id: int, name: str, type_name: str, edges, saves: bool, early: bool,
                 saved: list):
        """A node the client names for an op it queues; ``early``: its backward cannot fail, unless
        an in-place write comes after it (its count of writes is kept; -1 where it may fail anyway);
        ``saved``: the (version counter, version) pairs of what its server node saves."""
        return new_node(session, node_id, name, type_name, edges, saves, self.writes if early else -1, saved)

    def edge_node(self, session, target):
        """A mirrored edge as next_functions shows it: a node, or a leaf's AccumulateGrad."""
        if not isinstance(target, Tensor):
            return target
        acc = self.accumulators.get(target._id)
        if acc is None:
            acc = new_node(session, 0, "torch::autograd::AccumulateGrad", "AccumulateGrad", ())
            self.accumulators[target._id] = acc
        return acc

    @staticmethod
    def modified(reached_nodes) -> bool:
        """Whether a tensor saved by one of these nodes was written in place since it was saved:
        the backward that reaches them fails on the server, with torch's message."""
        for node in reached_nodes.values():
            for vc, version in node._saved:
                if vc[0] != version:
                    return True
        return False

    def written_since(self, reached_nodes) -> bool:
        """Whether an in-place write came after any of these nodes was made."""
        writes = self.writes
        return any(node._born != writes for node in reached_nodes.values())
