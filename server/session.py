"""One remote session: its tensors, graph nodes, grad mode, generator, hooks and event streams."""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import queue
import re
import secrets
import threading
import time
import weakref

import numpy

from ..engine import grad_mode as engine_grad_mode
from ..engine import random as engine_random
from ..engine.backend import to_numpy
from ..engine.tensor import Tensor
from ..protos import autograd_pb2 as pb
from ..protos.codec import encode_array
from ..protos.lane import key_of
from .errors import ResourceExhausted, Skipped, Unauthenticated, UnknownTensor

# A session's id: 32 lowercase hex digits (it names the session's snapshot directory too).
SESSION_ID_FORMAT = re.compile(r"[0-9a-f]{32}")
# Server-named ids (gradients handed to hooks) live above the client's id range.
SERVER_ID_BASE = 1 << 62
# Gradients up to this many elements travel inside a hook event (no extra round trip to print them).
INLINE_VALUE_ELEMENTS = 1 << 16


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PendingCall:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result = None
        self.error = None


class Session:
    def __init__(self, limits, session_id: str | None = None, token_hash: bytes | None = None) -> None:
        self.id = session_id or secrets.token_hex(16)
        # only the token's hash is kept (and snapshotted): a state dir does not leak tokens
        self.token = None if token_hash else secrets.token_urlsafe(32)
        self.token_hash = token_hash or hash_token(self.token)
        # the direct lane's key, held in memory only: a restored session learns it again from the
        # first call that shows its token, and offers no lane until then
        self.lane_key = key_of(self.token) if self.token else None
        self.dirty = True
        self.limits = limits
        self.tensors: dict[int, Tensor] = {}
        self.lock = threading.Lock()
        self.grad_mode = True
        # numpy's on every backend: the engine draws on the host (engine/random.py), so a CuPy
        # server's sessions need numpy's generator too
        self.generator = numpy.random.default_rng()
        self.hooks: dict[int, object] = {}
        self.prepared: dict[int, object] = {}  # prepared calls (commands.Prepared) by the client's id
        # graph nodes by id: weak references (a node lives as long as its graph), and the id on the
        # node itself; a plain dict of plain weakrefs, pruned of dead ones as it grows, costs a
        # fraction of a WeakValueDictionary's insert (one per recorded op)
        self._node_refs: dict[int, weakref.ref] = {}
        self._prune_nodes_at = 1024
        self._node_ids = itertools.count(SERVER_ID_BASE)  # ids the server names: above the client's
        self._server_ids = itertools.count(SERVER_ID_BASE)
        self._call_ids = itertools.count(1)
        self.pending: dict[int, PendingCall] = {}
        self.released_functions: list[int] = []
        self.freed_functions: list[int] = []
        self.controller: queue.Queue | None = None
        self.watchers: list[queue.Queue] = []
        self.last_used = time.monotonic()
        self.closed = False
        self.tenant: str | None = None  # the API key's tenant that created it (server/api_keys.py)
        # numbered batches run in order: the next number to run (0: whatever comes next, as after
        # a restore), and whether a numbered batch failed since the client last said `resume`
        self.next_seq = 1
        self.broken = False
        self._turn = threading.Condition()
        self._waiting = 0  # numbered batches waiting for their turn (each holds a thread)

    # ------------------------------------------------------------ access
    def check_token(self, token: str) -> None:
        if not hmac.compare_digest(self.token_hash, hash_token(token)):
            raise Unauthenticated("unknown session or bad token")
        if self.lane_key is None:
            self.lane_key = key_of(token)

    def tensor(self, tid: int) -> Tensor:
        try:
            return self.tensors[tid]
        except KeyError:
            raise UnknownTensor(f"tensor id {tid} is not held by this session (released or never created)") from None

    def bind(self, tid: int, t: Tensor, releasing: frozenset = frozenset()) -> None:
        """Hold ``t`` as ``tid``; ``releasing``: ids the running batch releases after its commands,
        which do not count against the limit."""
        if tid in self.tensors and self.tensors[tid] is not t:
            raise ValueError(f"tensor id {tid} is already in use in this session")
        if len(self.tensors) >= self.limits.max_tensors and tid not in self.tensors and \
                len(self.tensors) - len(releasing & self.tensors.keys()) >= self.limits.max_tensors:
            raise ResourceExhausted(f"session holds {len(self.tensors)} tensors, the limit is "
                                    f"{self.limits.max_tensors}; release tensors you no longer need")
        self.tensors[tid] = t

    def release(self, ids) -> None:
        for tid in ids:
            self.tensors.pop(tid, None)

    def node_id(self, node) -> int:
        nid = getattr(node, "_host_id", None)
        if nid is None:
            nid = next(self._node_ids)
            self.bind_node(nid, node)
        return nid

    def node(self, nid: int):
        ref = self._node_refs.get(nid)
        node = None if ref is None else ref()
        if node is None:
            raise UnknownTensor(f"graph node {nid} no longer exists")
        return node

    # ------------------------------------------------------------ numbered batches
    @contextlib.contextmanager
    def turn(self, seq: int, resume: bool):
        """Run a numbered batch in its turn: after every batch numbered before it. After a failure,
        later numbered batches are refused unless the client says it has seen the failure
        (``resume``), which also means that no batch numbered before it is still to come."""
        if not seq:
            yield
            return
        limits = self.limits
        deadline = time.monotonic() + limits.seq_wait
        with self._turn:
            # `resume`: the client has had every earlier batch answered or lost (a broken stream);
            # it runs now, and a lost one arriving late is refused below
            if self.next_seq and seq > self.next_seq and not resume:
                # a waiting batch holds a thread: far-future numbers, or many waiting batches, would
                # take them all (a client sends at most a few batches ahead)
                window = limits.seq_window
                if seq - self.next_seq > window:
                    raise ResourceExhausted(f"batch {seq} is {seq - self.next_seq} ahead of batch {self.next_seq}, "
                                            f"the next of this session to run; the limit (--seq-window) is {window}")
                if self._waiting >= window:
                    raise ResourceExhausted(f"{self._waiting} batches of this session wait for their turn, "
                                            f"the limit (--seq-window) is {window}")
            self._waiting += 1
            try:
                while self.next_seq and seq > self.next_seq and not resume and not self.closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise RuntimeError(f"batch {seq} waited {limits.seq_wait:g} s (--seq-wait) for batch "
                                           f"{self.next_seq} of this session, which never came (a client "
                                           "that sends batches ahead died?)")
                    self._turn.wait(min(left, 1.0))
            finally:
                self._waiting -= 1
            if self.next_seq and seq < self.next_seq:
                raise ValueError(f"batch {seq} of this session was already run or refused")
        ok = False
        try:
            if resume:
                self.broken = False
            elif self.broken:
                raise Skipped(f"batch {seq} not run: an earlier batch of this session failed")
            yield
            ok = True
        finally:
            if not ok:
                self.broken = True
            with self._turn:
                self.next_seq = seq + 1
                self._turn.notify_all()

    # ------------------------------------------------------------ engine state per command
    @contextlib.contextmanager
    def active(self):
        """Run engine code with this session's grad mode and generator (per thread, never global)."""
        t_mode = engine_grad_mode._enabled.set(self.grad_mode)
        t_gen = engine_random._generator.set(self.generator)
        try:
            yield
        finally:
            self.grad_mode = engine_grad_mode._enabled.get()
            self.generator = engine_random._generator.get()
            engine_grad_mode._enabled.reset(t_mode)
            engine_random._generator.reset(t_gen)

    # ------------------------------------------------------------ metadata
    def meta(self, tid: int, t: Tensor, out: pb.TensorMeta | None = None, value: bool = False) -> pb.TensorMeta:
        m = out if out is not None else pb.TensorMeta()
        data = t._data
        m.id = tid
        m.dtype = data.dtype.name
        m.shape.extend(data.shape)
        item = data.itemsize
        m.strides.extend(st // item for st in data.strides)
        m.requires_grad = t.requires_grad
        if t.grad_fn is not None:
            m.has_grad_fn = True
            self.node_ref(t.grad_fn, m.grad_fn)
            m.output_nr = t._output_nr
        if value:
            encode_array(to_numpy(data), m.value)
            m.has_value = True
        return m

    def node_ref(self, node, out: pb.NodeRef) -> pb.NodeRef:
        out.id = self.node_id(node)
        out.name = node.name()
        out.type = type(node).__name__
        return out

    # ------------------------------------------------------------ hooks and events
    def subscribe(self, controller: bool) -> queue.Queue:
        q: queue.Queue = queue.Queue()
        if controller:
            if self.controller is not None:
                self.controller.put(None)
            self.controller = q
        else:
            self.watchers.append(q)
        return q

    def end_streams(self) -> None:
        for q in ([self.controller] if self.controller else []) + list(self.watchers):
            q.put(None)

    def unsubscribe(self, q: queue.Queue) -> None:
        if q is self.controller:
            self.controller = None
            # a controller that went away can answer nothing: free every waiting backward
            for call in list(self.pending.values()):
                call.error = "the client disconnected while a callback was pending"
                call.done.set()
        elif q in self.watchers:
            self.watchers.remove(q)

    def make_hook(self, hook_id: int, name: str | None = None):
        def hook(grad: Tensor):
            return self.call_client(hook_id, grad)
        if name:  # torch's errors about what a hook returned quote the client's function by its name
            hook.__name__ = hook.__qualname__ = name
        return hook

    def call_client(self, hook_id: int, grad: Tensor):
        """Hand a gradient to the client's hook and wait for its answer (a replacement or None)."""
        gid = self._hand_over(grad)
        inline = grad._data.size <= INLINE_VALUE_ELEMENTS
        event = pb.Event()
        event.hook.hook = hook_id
        # the hook runs in this backward's grad mode (disabled unless create_graph), as torch's hooks do
        event.hook.grad_enabled = engine_grad_mode._enabled.get()
        self.meta(gid, grad, event.hook.grad, value=inline)
        for w in list(self.watchers):
            watch = pb.Event()
            watch.CopyFrom(event)
            watch.hook.watch_only = True
            if not inline:
                self.meta(gid, grad, watch.hook.grad, value=True)
            w.put(watch)
        return self._await_client(event, event.hook, f"hook {hook_id}")

    def call_function(self, node_id: int, grads: list, name: str = "a custom Function",
                      saved_error: str = "") -> tuple:
        """Run a custom Function's backward on the client; returns its gradients (tensors or None)."""
        event = pb.Event()
        event.function.node = node_id
        event.function.saved_error = saved_error
        event.function.grad_enabled = engine_grad_mode._enabled.get()
        for g in grads:
            meta = event.function.grads.add()
            if g is not None:
                self.meta(self._hand_over(g), g, meta, value=g._data.size <= INLINE_VALUE_ELEMENTS)
        result = self._await_client(event, event.function, f"the backward of {name} (function node {node_id})")
        return result if isinstance(result, tuple) else (result,)

    def _hand_over(self, t: Tensor) -> int:
        gid = next(self._server_ids)
        self.tensors[gid] = t
        return gid

    def _await_client(self, event, call_msg, what: str):
        """Send a callback to the controlling client and wait for its answer, with the lock released."""
        controller = self.controller
        if controller is None:
            raise RuntimeError(f"{what} needs the client, but no client is listening for callbacks "
                               "(the client closed its event stream)")
        call_id = next(self._call_ids)
        call_msg.call_id = call_id
        call = PendingCall()
        self.pending[call_id] = call
        mode = engine_grad_mode._enabled.get()
        controller.put(event)
        # While the client runs its code, its ops on this session must run: hand the lock and
        # this backward's grad mode to them, and take the lock back afterwards. The backward goes
        # on in its own mode, whatever the client's code set.
        self.grad_mode = mode
        # (the client's batches run meanwhile each with a context of their own: batches.BatchContext)
        self.lock.release()
        try:
            answered = call.done.wait(self.limits.callback_timeout)
        finally:
            self.lock.acquire()
            engine_grad_mode._enabled.set(mode)
            self.pending.pop(call_id, None)
        if not answered:
            raise RuntimeError(f"the client did not answer {what} within "
                               f"{self.limits.callback_timeout:g} s; backward was abandoned")
        if call.error is not None:
            raise RuntimeError(f"{what} raised on the client: {call.error}")
        return call.result

    def function_released(self, node_id: int) -> None:
        self.released_functions.append(node_id)

    def bind_node(self, node_id: int, node) -> None:
        """Register a node under the id the client named for it."""
        node._host_id = node_id
        refs = self._node_refs
        refs[node_id] = weakref.ref(node)
        if len(refs) >= self._prune_nodes_at:
            for nid in [nid for nid, ref in refs.items() if ref() is None]:
                del refs[nid]
            self._prune_nodes_at = max(1024, 2 * len(refs))

    def answer(self, call_id: int, result, error: str | None) -> None:
        """The client's answer: ``result`` is a decoded Value (an id, None, or a tuple of them)."""
        call = self.pending.get(call_id)
        if call is None:
            raise ValueError(f"no callback {call_id} is pending in this session")
        # tensors are looked up now: once this answer returns, the client may release their ids
        if error is None:
            try:
                if isinstance(result, tuple):
                    call.result = tuple(None if r is None else self.tensor(r) for r in result)
                elif result is not None:
                    call.result = self.tensor(result)
            except LookupError as e:
                error = str(e)
        call.error = error
        call.done.set()

    def close(self, reason: str = "closed") -> None:
        self.closed = True
        for q in ([self.controller] if self.controller else []) + list(self.watchers):
            q.put(reason)
        for call in list(self.pending.values()):
            call.error = f"the session was {reason}"
            call.done.set()
        self.tensors.clear()
        self.hooks.clear()
