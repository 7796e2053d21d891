"""A remote session: the ``torch``-like namespace a user gets from ``connect``, and its wire calls."""
from __future__ import annotations

import atexit
import functools
import itertools
import os
import queue
import secrets
import sys
import threading
import types
import warnings
import weakref

import grpc
import numpy

from .engine import dtypes
from .engine import errors as engine_errors
from .engine import gradcheck as gradchecks
from .engine.autograd import EMPTY_INPUTS, check_outputs, check_root, match_grads
from .engine.factories import host_array
from .engine.functional import TORCH_FUNCTIONS, nn_functional
from .engine.meta import ValueDependentError, factory_meta, infer
from .engine.size import Size
from .engine.strides import contiguous_strides
from .errors import RemoteError, ServerUnavailable, SessionLost, from_batch_error, from_rpc_error
from .function import FunctionCtx, function_base, once_differentiable
from .lane import StreamBroken, open_lane
from .node import make_node, new_node, short_name
from .protos import autograd_pb2 as pb
from .protos import autograd_pb2_grpc as pb_grpc
from .protos.codec import KIND as K
from .protos.codec import MAX_PREPARED, decode_array, encode_array, encode_value
from .protos.host import host_digest
from .tensor import Tensor

CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30),
                   # a restarted server or replica is found again within a second, not minutes
                   ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 2000)]
# Tensors above this travel through the chunked Upload/Download streams, not inside a batch.
INLINE_BYTES = 4 << 20
CHUNK_BYTES = 1 << 20  # one stream message: well under gRPC's default 4 MiB message limit
# Behind a gateway with one of three replicas dead, every attempt fails with chance 1/3: ten fail
# together once in ~59000 creations (four did once in 81: a CI run saw it)
CREATE_ATTEMPTS = 10
# Commands queued before the client sends them anyway (a bound on memory and on lost work).
MAX_QUEUE = 1024
# Batches travel on one stream per session (ExecuteStream; unary Execute where a server refuses
# it). With send_ahead=N, every N queued commands are sent ahead, without waiting, while the
# user's program goes on: the server runs them while the client builds the next ones. Batches
# are numbered, so the server runs them in order; an error is raised at the next sync point, as
# a queued command's error is. Off by default on the gRPC stream: measured on one 2-core machine
# holding both client and server it did not pay (benchmarks/RESULTS.md): the two share the cores,
# and the stream's sender thread contends with the user's program for the client's interpreter
# lock. On the direct lane a batch goes out from the program's own thread in one send: there,
# with steps run back to back as a loop runs them, the chain benchmark's step is ~15-25% faster
# with it (after an idle pause of a third of a second its first steps are ~10% slower).
SEND_AHEAD = 0
LANE_SEND_AHEAD = 32
MAX_IN_FLIGHT = 8  # batches sent and not yet answered; past it the client waits for the oldest
META_MEMO = 4096  # inferred metas remembered per session (op, input shapes/dtypes/strides, params)
# What may follow the cut of an early answer (Session._answer_early_at). Ops whose every error is
# one of shape, dtype or grad mode, which this client raises at the user's line before queueing
# them, and whose result is a new tensor (no view, no input given back): arithmetic, activations,
# matrix products, reductions, losses with no index argument, as call or in-place. Not here, among
# others: integer division and remainder (a zero divisor), pow (integers to negative powers),
# indexing and gathering (an index out of range), views, casts.
_EARLY_OPS = frozenset((
    "abs", "add", "addmm", "bmm", "clamp", "cos", "cosh", "div", "dot", "exp", "expm1", "leaky_relu", "log",
    "log1p", "log_softmax", "logsumexp", "maximum", "mean", "mean_dim", "minimum", "mm", "mse_loss", "mul", "mv",
    "neg", "reciprocal", "relu", "rsqrt", "rsub", "sigmoid", "silu", "sin", "sinh", "softmax", "softplus",
    "sqrt", "sub", "sum", "sum_dim", "tan", "tanh", "zero_", "fill_",
    "binary_cross_entropy_with_logits", "elu",
))
# commands besides calls that may follow it: their errors, too, are raised here before they queue
# (a backward may follow it where _answer_early_at and _backward's _fence allow)
_EARLY_KINDS = frozenset((K.SET_GRAD_MODE, K.GET_GRAD, K.SET_GRAD, K.DETACH, K.DATA, K.RETAIN_GRAD,
                          K.SET_REQUIRES_GRAD, K.MANUAL_SEED))


def _env_flag(name: str, default: bool) -> bool:
    """An on/off setting from the environment (1/true/yes/on, 0/false/no/off); else the default."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


# Sessions still open when the program ends are closed before the interpreter stops gRPC's
# threads (a session's batch stream would otherwise keep the process from exiting).
_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_live_sessions() -> None:
    for session in list(_LIVE):
        try:
            session.close()
        except Exception:  # noqa: BLE001, S110  (exiting: nobody is left to tell)
            pass


class RemovableHandle:
    """What register_hook returns; ``remove()`` unregisters the hook on the server too."""

    def __init__(self, session: Session, hook_id: int) -> None:
        self._session = session
        self.id = hook_id

    def remove(self) -> None:
        self._session._remove_hook(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _GradMode:
    """no_grad / enable_grad for one session: context manager and decorator, as torch's."""

    def __init__(self, session: Session, mode: bool) -> None:
        self._session = session
        self._mode = mode

    def __enter__(self) -> None:
        self._prev = self._session._grad_enabled
        self._session._set_grad_mode(self._mode)

    def __exit__(self, *exc) -> None:
        self._session._set_grad_mode(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self._session, self._mode):
                return fn(*args, **kwargs)
        return wrapper


class _SetGradEnabled(_GradMode):
    """Takes effect at once (a plain call works); restores the previous mode when used with ``with``."""

    def __init__(self, session: Session, mode: bool) -> None:
        super().__init__(session, bool(mode))
        self._prev = session._grad_enabled
        session._set_grad_mode(self._mode)

    def __enter__(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"torch.autograd.grad_mode.set_grad_enabled(mode={self._mode})"


class Session:
    """``t = ra.connect(address)``: use ``t`` as you would use ``torch``; every value lives on the server."""

    def __init__(self, address: str, *, client: str = "python-sdk", timeout: float | None = None,
                 eager: bool | None = None, max_queue: int = MAX_QUEUE, send_ahead: int | None = None,
                 direct: bool | None = None, early_answers: bool | None = None) -> None:
        """``eager=True`` (or REMOTE_AUTOGRAD_EAGER=1) sends every command at once, waiting for it:
        slower, but every error is raised by the line that caused it (as CUDA_LAUNCH_BLOCKING does).
        Otherwise commands queue until a sync point or ``max_queue``; once ``send_ahead`` are
        queued (0: never) they are sent without waiting, so the server works while the client
        builds the next batch (REMOTE_AUTOGRAD_SEND_AHEAD sets it from the environment; by
        default LANE_SEND_AHEAD on the direct lane, SEND_AHEAD on the gRPC stream).
        Batches go on the server's direct lane where it offers one and this client reaches it
        (a plain TCP connection beside gRPC: ~0.3 ms less per round trip), else on the gRPC
        stream; ``direct=False`` (or REMOTE_AUTOGRAD_DIRECT=0) keeps them on gRPC.
        With ``early_answers`` (REMOTE_AUTOGRAD_EARLY_ANSWERS=1/0; by default on where the server
        runs on another machine), a value read (``item()``, ``tolist()``, printing) is answered as
        soon as the server has it, before the queued commands after it (a step's backward and
        update) have run, where none of them can fail but for the server's own faults (see
        _answer_early_at): the server runs them while the program builds its next step. On the
        server's own machine it is off by default: there the client's work takes cores from the
        server's threads, and measured it did not pay (benchmarks/RESULTS.md)."""
        self.address = address
        if eager is None:
            eager = _env_flag("REMOTE_AUTOGRAD_EAGER", False)
        self.eager = bool(eager)
        self._max_queue = max(1, int(max_queue))
        if send_ahead is None:
            send_ahead = os.environ.get("REMOTE_AUTOGRAD_SEND_AHEAD", "").strip() or None
        self._ahead_choice = None if send_ahead is None else max(0, int(send_ahead))  # None: the transport's
        self._inflight: list = []  # (batch, queued commands, their info) of each unanswered batch, oldest first
        self._settled: list = []  # the last sync point's answered batches, freed at the next (see _settle)
        self._stream = None  # (requests, replies) of the open ExecuteStream; None: not open; False: refused
        self._stream_answered = False
        self._answered = None  # the answer of the oldest unanswered batch, when read early
        self._seq = itertools.count(1)  # every batch is numbered: the server runs them in order
        self._resume = False  # a numbered batch failed: the next one tells the server it was seen
        self._ahead_failed = False
        # serving a server's callback: its batch is still running there, so what the callback sends
        # goes unnumbered (run at once) and nothing is sent ahead
        self._in_callback = 0
        self._plans: dict = {}
        self._prepared: list = []  # the plans whose calls are prepared on the server; id = index + 1
        self._recycled = 0  # ids taken back from older plans, once all were given
        # commands sent without waiting: they ride the next batch, at the next sync point
        self._queue: list = []
        self._queue_info: list = []
        self._poisoned: dict[int, str] = {}
        # which tensors hold a .grad, known without asking while the graph is mirrored here
        self._has_grad: dict[int, bool] = {}
        self._grad_exact = True
        # in-place writes queued so far (each node keeps the count it was made at), and the end of
        # the last queued backward that an in-place write since its graph was made may fail
        # (the queue it is in, and its position + 1): see _answer_early_at
        self._writes = 0
        self._fence: tuple | None = None
        self._accumulators: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.RemoteAutogradStub(self._channel)
        self._timeout = timeout
        info = self._create(client, timeout)
        self.session_id = info.session_id
        self.token = info.token
        self.backend = info.backend
        if direct is None:
            direct = _env_flag("REMOTE_AUTOGRAD_DIRECT", True)
        self._lane_port = info.direct_port if direct else 0  # 0: no lane (none, refused, or off)
        self._can_prepare = info.prepared_calls
        self._can_prepare_inplace = info.prepared_inplace_calls
        if early_answers is None:
            early_answers = _env_flag("REMOTE_AUTOGRAD_EARLY_ANSWERS", None)
        # (a server that names no host is taken as this machine's)
        self._early = bool(info.host and info.host != host_digest()) if early_answers is None else bool(early_answers)
        self._follow_transport()
        # the gateway routes on x-session-id: every call of a session reaches the same replica
        self._md = (("x-session-id", info.session_id), ("x-session-token", info.token))
        self._ids = itertools.count(1)
        self._hook_ids = itertools.count(1)
        self._releases: list[int] = []
        self._hooks: dict[int, object] = {}
        self._hook_errors: list[BaseException] = []
        self._functions: dict[int, object] = {}
        self._retained: set[int] = set()
        self._nodes: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._grad_enabled = True
        self._events: queue.Queue | None = None
        self._event_call = None
        self._closed = False
        _LIVE.add(self)
        self.Tensor = type("Tensor", (Tensor,), {"__slots__": (), "__new__": _legacy_new(self),
                                                  "__module__": "torch"})
        self._install_namespace()

    def _create(self, client: str, timeout: float | None):
        """CreateSession, proposing a fresh id; behind a gateway a dead replica owns some ids, so
        an unavailable answer is retried with another id (nothing was created)."""
        error = None
        for _ in range(CREATE_ATTEMPTS):
            try:
                # the proposed id routes the creation through a gateway to the replica that will hold it
                return self._stub.CreateSession(pb.CreateSessionRequest(client=client), timeout=timeout or 30,
                                                metadata=(("x-session-id", secrets.token_hex(16)),))
            except grpc.RpcError as e:
                error = e
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    break
        self._channel.close()
        raise from_rpc_error(error, self.address) from None

    # ------------------------------------------------------------ the torch namespace
    def _install_namespace(self) -> None:
        for name, dt in dtypes.ALIASES.items():
            setattr(self, name, dt)
        self.dtype = dtypes.dtype
        self.Size = Size
        for name, fn in TORCH_FUNCTIONS.items():
            setattr(self, name, fn)
        self.nn = types.SimpleNamespace(functional=nn_functional)
        self.autograd = types.SimpleNamespace(
            backward=self._backward, grad=self._grad, no_grad=self.no_grad, enable_grad=self.enable_grad,
            set_grad_enabled=self.set_grad_enabled, Function=function_base(self),
            GradcheckError=gradchecks.GradcheckError,
            gradcheck=functools.partial(gradchecks.gradcheck, self),
            gradgradcheck=functools.partial(gradchecks.gradgradcheck, self),
            functional=types.SimpleNamespace(**{name: functools.partial(getattr(gradchecks, name), self)
                                                for name in ("jacobian", "hessian", "vjp", "jvp")}))
        self.autograd.function = types.SimpleNamespace(Function=self.autograd.Function, FunctionCtx=FunctionCtx,
                                                       once_differentiable=once_differentiable)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue, self._queue_info = [], []
        if self._inflight:
            try:
                self._settle()  # let them finish: the session is closed after them, not under them
            except Exception:  # noqa: BLE001  (closing: nobody is left to tell)
                pass
        if self._stream:
            self._stream[0].put(None)  # the end of the batch stream
            self._stream = None
        try:
            self._stub.CloseSession(pb.Empty(), metadata=self._md, timeout=10)
        except grpc.RpcError:
            pass  # the server may already be gone; its state goes with it
        if self._event_call is not None:
            self._event_call.cancel()
        self._channel.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            return  # gRPC's threads are gone: closing would wait forever (atexit closed it already)
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown: nothing left to tell)
            pass

    def __repr__(self) -> str:
        return f"<remote_autograd session {self.session_id} at {self.address}>"

    # ------------------------------------------------------------ grad mode
    def no_grad(self) -> _GradMode:
        return _GradMode(self, False)

    def enable_grad(self) -> _GradMode:
        return _GradMode(self, True)

    def set_grad_enabled(self, mode: bool) -> _SetGradEnabled:
        return _SetGradEnabled(self, mode)

    def is_grad_enabled(self) -> bool:
        return self._grad_enabled

    def _set_grad_mode(self, mode: bool) -> None:
        if mode != self._grad_enabled:
            self._enqueue(K.SET_GRAD_MODE, args=(bool(mode),))
            self._grad_enabled = bool(mode)

    def manual_seed(self, seed: int) -> None:
        self._enqueue(K.MANUAL_SEED, args=(int(seed),))

    def synchronize(self) -> None:
        """Wait until every queued command has run; raises the first error one of them met."""
        self._flush()

    # ------------------------------------------------------------ factories
    def tensor(self, data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False):
        if isinstance(data, Tensor):
            _warn_at_user_line(engine_errors.COPY_CONSTRUCT, UserWarning)
            if data._session is not self:  # values cross sessions as values, through this client
                return self.tensor(data._value(), dtype=dtype, requires_grad=requires_grad)
            dt = dtypes.from_any(dtype) if dtype is not None else data.dtype
            if requires_grad and not dt.is_floating_point:
                raise RuntimeError(engine_errors.FACTORY_REQUIRES_GRAD)
            out = data.detach().to(dt, copy=True)  # always a copy, as torch.tensor makes one
            return out.requires_grad_() if requires_grad else out
        if isinstance(data, (numpy.ndarray, numpy.generic)) or (
                hasattr(data, "__array__") and not isinstance(data, (list, tuple))):
            host = numpy.asarray(data)
            host = host.astype((dtypes.from_any(dtype) if dtype is not None else dtypes.from_any(host.dtype)).np)
        else:
            host = host_array(_plain(data), dtype)  # torch's inference, and its errors, before any round trip
        if requires_grad and host.dtype.kind != "f":
            raise RuntimeError(engine_errors.FACTORY_REQUIRES_GRAD)
        return self._upload(_contiguous(host), requires_grad)

    def as_tensor(self, data, dtype=None, device=None):
        if isinstance(data, Tensor) and (dtype is None or dtypes.from_any(dtype) is data.dtype):
            return data
        return self.tensor(data, dtype=dtype)

    def from_numpy(self, array):
        return self._upload(_contiguous(array), False)

    def _factory(self, name: str, *args, **kwargs):
        kwargs.pop("device", None)
        kwargs.pop("out", None)
        if "dtype" in kwargs and kwargs["dtype"] is not None:
            kwargs["dtype"] = dtypes.from_any(kwargs["dtype"])
        tid = next(self._ids)
        meta = factory_meta(name, args, kwargs)
        if meta is None:  # arguments only the engine can judge: let it, with torch's errors
            result = self._command(K.FACTORY, name=name, args=args, kwargs=kwargs, outputs=(tid,))
            return self._from_meta(result.outputs[0])
        shape, dt = meta
        self._enqueue(K.FACTORY, name=name, args=args, kwargs=kwargs, outputs=(tid,))
        return self._proxy(tid, shape, dt, None, bool(kwargs.get("requires_grad", False)))

    # sizes go to the server as the user wrote them: the engine parses them, with torch's errors
    def zeros(self, *size, **kw):
        return self._factory("zeros", *size, **kw)

    def ones(self, *size, **kw):
        return self._factory("ones", *size, **kw)

    def empty(self, *size, **kw):
        return self._factory("empty", *size, **kw)

    def rand(self, *size, **kw):
        return self._factory("rand", *size, **kw)

    def randn(self, *size, **kw):
        return self._factory("randn", *size, **kw)

    def full(self, size, fill_value, **kw):
        if isinstance(fill_value, Tensor):
            fill_value = fill_value.item()
        return self._factory("full", size, fill_value, **kw)

    def randint(self, low, high=None, size=None, **kw):
        return self._factory("randint", low, high, size, **kw)

    def randperm(self, n: int, **kw):
        return self._factory("randperm", n, **kw)

    def arange(self, start, end=None, step=1, **kw):
        vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
        return self._factory("arange", *vals, **kw)

    def linspace(self, start, end, steps: int, **kw):
        return self._factory("linspace", start, end, steps, **kw)

    def eye(self, n: int, m: int | None = None, **kw):
        return self._factory("eye", n, m, **kw)

    def _like(self, name, input, kw):  # noqa: A002
        kw.setdefault("dtype", input.dtype)
        if kw["dtype"] is None:
            kw["dtype"] = input.dtype
        return getattr(self, name)(tuple(input.shape), **kw)

    def zeros_like(self, input, **kw):  # noqa: A002
        return self._like("zeros", input, kw)

    def ones_like(self, input, **kw):  # noqa: A002
        return self._like("ones", input, kw)

    def empty_like(self, input, **kw):  # noqa: A002
        return self._like("empty", input, kw)

    def rand_like(self, input, **kw):  # noqa: A002
        return self._like("rand", input, kw)

    def randn_like(self, input, **kw):  # noqa: A002
        return self._like("randn", input, kw)

    def full_like(self, input, fill_value, **kw):  # noqa: A002
        kw.setdefault("dtype", input.dtype)
        return self.full(tuple(input.shape), fill_value, **kw)

    # ------------------------------------------------------------ autograd
    def _backward(self, tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        tensors = _tuple(tensors)
        grads = None if grad_tensors is None else _tuple(grad_tensors)
        if grads is not None:
            grads = tuple(g if g is None or isinstance(g, Tensor) else self.tensor(g) for g in grads)
        inputs = None if inputs is None else _tuple(inputs)
        kwargs = {"retain_graph": retain_graph, "create_graph": bool(create_graph)}
        if not (self.eager or self._hooks or self._functions or create_graph) and inputs is None:
            walk = self._walk_mirror(tensors)
            if walk[2] and not any(getattr(n, "_spent", False) for n in walk[0].values()):
                # nothing of the client's runs during this backward, and the mirror knows it will not
                # fail on a spent graph: it rides the next batch like any command, after the engine's checks
                _check_backward(tensors, grads, inputs)
                self._enqueue(K.BACKWARD, args=(tensors, grads, inputs), kwargs=kwargs)
                writes = self._writes
                if any(node._born != writes for node in walk[0].values()):
                    # an in-place write since the graph was made: only the server can tell
                    # whether it wrote a saved value, and fail this backward
                    self._fence = (self._queue, len(self._queue))
                self._spend_graph(tensors, retain_graph, False, walk)
                self._predict_grads(tensors, inputs, False, walk)
                return
        try:
            # sent at once: the server raises at this line (after what torch would have done first)
            self._command(K.BACKWARD, args=(tensors, grads, inputs), kwargs=kwargs, callbacks=True)
        except BaseException:
            # a backward that failed midway (a hook raised) may have accumulated some gradients
            # already: which, only the server knows
            self._has_grad.clear()
            raise
        if inputs is None:
            self._spend_graph(tensors, retain_graph, create_graph)
        self._predict_grads(tensors, inputs, bool(create_graph))

    def _grad(self, outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
              only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
        inputs = _tuple(inputs)
        ids = tuple(next(self._ids) for _ in inputs)
        result = self._command(
            K.GRAD, args=(_tuple(outputs), inputs, None if grad_outputs is None else _tuple(grad_outputs)),
            kwargs={"retain_graph": retain_graph, "create_graph": bool(create_graph),
                    "allow_unused": allow_unused, "materialize_grads": materialize_grads},
            outputs=ids, callbacks=True)
        return tuple(self._from_meta(m) if m.id else None for m in result.outputs)

    def _get_grad(self, t: Tensor):
        tid = next(self._ids)
        known = self._grad_known(t)
        if known is False:
            return None
        if known is True:
            # the mirror says the gradient exists: name it now, bind it on the server later
            self._enqueue(K.GET_GRAD, args=(t,), outputs=(tid,))
            # a gradient's layout is the engine's choice (it may keep a transposed result)
            return self._proxy(tid, t._shape, t._dtype, None, False, strides=None)
        result = self._command(K.GET_GRAD, args=(t,), outputs=(tid,))
        return self._from_meta(result.outputs[0]) if result.outputs else None

    def _grad_known(self, t: Tensor):
        """True or False when this client knows whether ``t.grad`` is set; None when only the server does."""
        if self.eager or not self._grad_exact:
            return None
        state = self._has_grad.get(t._id)
        if state is not None:
            return state
        if t._grad_fn is not None:
            return False if t._id not in self._retained else None
        return False if not t._requires_grad else None

    @staticmethod
    def _walk_mirror(roots):
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

    def _spend_graph(self, roots, retain_graph, create_graph, walk=None) -> None:
        """After a backward that frees buffers: the mirrored nodes that held saved values are spent."""
        if retain_graph or (retain_graph is None and create_graph):
            return
        for node in (walk or self._walk_mirror(roots))[0].values():
            if getattr(node, "_saves", False):
                node._spent = True

    def _predict_grads(self, roots, inputs, create_graph: bool, walk=None) -> None:
        """After a backward: which leaves (and retained tensors) now hold a gradient, from the mirror."""
        if create_graph:
            self._grad_exact = False  # gradients with history: let the server describe them
            return
        reached_nodes, reached_leaves, exact = walk or self._walk_mirror(roots)
        if not exact:
            self._grad_exact = False
            return
        if inputs is not None:
            for t in inputs:
                if (t._grad_fn is None and t._id in reached_leaves) or \
                        (t._grad_fn is not None and id(t._grad_fn) in reached_nodes):
                    self._has_grad[t._id] = True
            return
        for tid in reached_leaves:
            self._has_grad[tid] = True

    def _set_grad(self, t: Tensor, value) -> None:
        if value is not None and not isinstance(value, Tensor):
            raise TypeError("assigned grad expected to be a Tensor or None but got grad of type "
                            f"{type(value).__name__}")
        if value is not None:  # the engine setter's checks, at the user's line
            if value._shape != t._shape:
                raise RuntimeError(f"attempting to assign a gradient of size '{list(value._shape)}' to a tensor of "
                                   f"size '{list(t._shape)}'. Please ensure that the gradient and the tensor are "
                                   "the same size")
            if value._dtype is not t._dtype:
                raise RuntimeError(engine_errors.grad_dtype_message(value._dtype, t._dtype))
        self._enqueue(K.SET_GRAD, args=(t, value))
        self._has_grad[t._id] = value is not None

    def _set_requires_grad(self, t: Tensor, flag: bool, dtype_error: str = engine_errors.INTEGER_REQUIRES_GRAD) -> None:
        # torch's checks, at the user's line (the setter and requires_grad_() word the dtype error apart)
        if t._grad_fn is not None:
            if flag:
                return
            raise RuntimeError(engine_errors.NON_LEAF_REQUIRES_GRAD)
        if flag and not t.dtype.is_floating_point:
            raise RuntimeError(dtype_error)
        self._enqueue(K.SET_REQUIRES_GRAD, args=(t, flag))
        t._requires_grad = flag
        if flag:
            self._has_grad.setdefault(t._id, False)

    def _alias(self, t: Tensor, kind: str):
        tid = next(self._ids)
        self._enqueue(K.DETACH if kind == "detach" else K.DATA, args=(t,), outputs=(tid,))
        return self._proxy(tid, t._shape, t._dtype, None, False, strides=t._strides)

    def _set_data(self, t: Tensor, value) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, not {type(value).__name__}")
        self._writes += 1
        result = self._command(K.SET_DATA, args=(t, value))
        self._rebind(t, result.outputs[0])

    def _detach_inplace(self, t: Tensor) -> None:
        self._writes += 1
        result = self._command(K.DETACH_INPLACE, args=(t,))
        self._rebind(t, result.outputs[0])

    def _rebind(self, t: Tensor, m) -> None:
        """A proxy whose server tensor changed storage: shape, dtype and strides may differ now."""
        t._shape = tuple(m.shape)
        t._dtype = dtypes.by_name(m.dtype)
        t._strides = tuple(m.strides)
        self._update(t, m)

    def _retain_grad(self, t: Tensor) -> None:
        self._enqueue(K.RETAIN_GRAD, args=(t,))
        self._retained.add(t._id)

    def _retains(self, t: Tensor) -> bool:
        return t._id in self._retained

    def _register_hook(self, t: Tensor, fn) -> RemovableHandle:
        self._ensure_events()
        hook_id = next(self._hook_ids)
        self._hooks[hook_id] = fn
        self._enqueue(K.REGISTER_HOOK, args=(t,), kwargs={"hook": hook_id})
        return RemovableHandle(self, hook_id)

    def _remove_hook(self, hook_id: int) -> None:
        if self._hooks.pop(hook_id, None) is not None:
            self._enqueue(K.REMOVE_HOOK, kwargs={"hook": hook_id})

    def _next_functions(self, node_id: int) -> tuple:
        result = self._command(K.NEXT_FUNCTIONS, kwargs={"node": node_id})
        out = []
        for pair in result.value.list.items:
            first, nr = pair.list.items
            out.append((None if first.WhichOneof("kind") == "none" else self._node(first.node), nr.i))
        return tuple(out)

    # ------------------------------------------------------------ ops
    def _plan(self, op, inputs, params, inplace: bool = False):
        """What a call of ``op`` needs to know of this application, remembered per op signature:
        a program repeats its ops with the same shapes and dtypes (a training step), and a lookup
        is cheaper than the op table's meta rule (``_call`` has this lookup inline). An in-place
        application has a plan of its own: its calls are prepared apart. Raises
        ValueDependentError where only the server can tell the result's metadata."""
        key = _meta_key(op.name, inputs, params)
        if key is not None and inplace:
            key = (K.CALL_INPLACE, key)
        plan = self._plans.get(key) if key is not None else None
        return plan if plan is not None else self._new_plan(op, inputs, params, key)

    def _new_plan(self, op, inputs, params, key):
        plan = _Plan(op, infer(op.name, [x._meta() if isinstance(x, Tensor) else x for x in inputs], params))
        if key is None:
            plan.prepared = -1  # not remembered: nothing to repeat
        else:
            if len(self._plans) >= META_MEMO:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _call(self, op, inputs, params):
        key = _meta_key(op.name, inputs, params)  # (_plan's lookup, inline: the hot path of every op)
        plan = self._plans.get(key) if key is not None else None
        if plan is None:
            try:
                plan = self._new_plan(op, inputs, params, key)
            except ValueDependentError:
                return self._call_now(op, inputs, params)
        node = None
        if plan.node_type is not None and self._grad_enabled:
            diff = range(len(inputs)) if op.variadic else op.diff_inputs
            for i in diff:
                x = inputs[i]
                if isinstance(x, Tensor) and x._requires_grad:
                    node = new_node(self, next(self._ids), op.node, plan.node_type,
                                    tuple([_edge(inputs[i]) for i in diff]), plan.saves, plan.early)
                    break
        cls, node_id = self.Tensor, node._id if node else 0
        # the user's line, looked for from the caller of the method that called Tensor._dispatch
        # (this, _dispatch and that method are this package's)
        where = _user_line(sys._getframe(3))
        if plan.single:  # the common case, without per-output tuples
            tid = next(self._ids)
            ids = (tid,)
            if not self._queue_prepared(op, inputs, params, plan, tid, node_id, tid, where):
                self._queue_at(self._build(K.CALL, op.name, inputs, params, ids, node_id), op.name, ids, where)
            return _inferred(cls, self, tid, plan.outs[0], node, 0)
        ids = tuple([next(self._ids) for _ in plan.outs])
        self._queue_at(self._build(K.CALL, op.name, inputs, params, ids, node_id), op.name, ids, where)
        return tuple([_inferred(cls, self, tid, out, node, nr) for nr, (tid, out) in enumerate(zip(ids, plan.outs))])

    def _prepare(self, op, inputs, params, plan, inplace: bool = False) -> int:
        """Name this plan's call on the server once it repeats (a PREPARE command, queued before
        its second use), so that its repetitions travel as ids; its id, or -1 where it is not
        prepared. (A call made once, a notebook's line, a constant that changes every step, is
        not worth a PREPARE.)"""
        plan.prepared = -1
        if not (self._can_prepare_inplace if inplace else self._can_prepare) or not _preparable(inputs, params):
            return -1
        if len(self._prepared) < MAX_PREPARED:
            self._prepared.append(plan)
            pid = len(self._prepared)
        else:
            # all ids taken: the oldest is taken back, its plan prepared again if it is used again.
            # Calls queued before this PREPARE still run with the call it replaces (in order).
            pid = self._recycled % MAX_PREPARED + 1
            self._recycled += 1
            self._prepared[pid - 1].prepared = 0
            self._prepared[pid - 1] = plan
        plan.prepared = pid
        args = tuple(_SLOT if isinstance(x, Tensor) else x for x in inputs)
        # outputs[0] is the prepared call's id, no tensor's: the command's info names no output
        cmd = self._build(K.PREPARE, op.name, args, params, (pid,), 0)
        cmd.inplace = inplace
        self._queue_command(cmd, f"prepare {op.name}", ())
        return pid

    def _queue_prepared(self, op, inputs, params, plan, tid: int, node_id: int, named: int, where,
                        inplace: bool = False) -> bool:
        """Queue this application of ``plan`` as a prepared call: (its id, output id, node id,
        tensor ids), sent in a CALLS command (_wire). False where it goes as a command instead:
        the plan's first use, a plan not prepared, or a poisoned or another session's tensor among
        the inputs (the command's encoding raises the error). ``named``: the tensor a failure
        before it poisons (the output, or an in-place call's target); ``where``: _user_line's."""
        pid = plan.prepared
        if pid == 0:  # a plan's first use goes as a command: one that repeats is prepared
            plan.prepared = _SEEN
            return False
        if pid == _SEEN:
            pid = self._prepare(op, inputs, params, plan, inplace)
        if pid < 0:
            return False
        entry, cls, poisoned = [pid, tid, node_id], self.Tensor, self._poisoned
        for x in inputs:
            if x.__class__ is cls and x._id not in poisoned:
                entry.append(x._id)
            elif isinstance(x, Tensor):
                return False
        self._queue_at(tuple(entry), op.name, (named,), where)
        return True

    def _forget_prepared(self) -> None:
        """The server holds none of this client's prepared calls (a replica restored from a
        snapshot older than them): plans prepare them again as they are used."""
        for plan in self._prepared:
            plan.prepared = 0
        self._prepared = []
        self._recycled = 0

    def _call_now(self, op, inputs, params):
        """An op whose result's shape depends on values: the server runs it now and describes it."""
        n = op.num_outputs
        if n == -1:  # unbind: one output per slice
            shape, dim = inputs[0].shape, params.get("dim", 0)
            # a bad dim names no outputs: the server raises torch's error for it
            n = shape[dim] if isinstance(dim, int) and -len(shape) <= dim < len(shape) else 0
        ids = tuple(next(self._ids) for _ in range(n))
        result = self._command(K.CALL, name=op.name, args=inputs, kwargs=params, outputs=ids)
        outs = tuple(self._from_meta(m) for m in result.outputs)
        return outs[0] if op.num_outputs == 1 else outs

    def _call_inplace(self, op, inputs, params):
        target = inputs[0]
        try:
            plan = self._plan(op, inputs, params, inplace=True)
        except ValueDependentError:
            plan = None
        if plan is not None:
            _check_inplace(target, plan.metas)
        track = op.node is not None and self._grad_enabled and any(
            isinstance(x, Tensor) and x._requires_grad for x in inputs)
        if track and target._grad_fn is None and target._requires_grad:
            raise RuntimeError(engine_errors.LEAF_INPLACE)
        self._writes += 1
        node = None
        if track and target._dtype.is_floating_point:
            diff = range(len(inputs)) if op.variadic else op.diff_inputs
            node = new_node(self, next(self._ids), op.node, short_name(op.node),
                            tuple(_edge(inputs[i]) for i in diff), _saves(op), op.name in _EARLY_OPS)
        node_id = node._id if node else 0
        where = _user_line(sys._getframe(1))
        if plan is None or not self._queue_prepared(op, inputs, params, plan, 0, node_id, target._id, where,
                                                    inplace=True):
            self._queue_at(self._build(K.CALL_INPLACE, op.name, inputs, params, (), node_id), op.name, (), where)
        if node is not None:
            target._grad_fn = node
            target._output_nr = 0
            target._requires_grad = True
        return target

    def _fetch(self, t: Tensor) -> numpy.ndarray:
        if t.numel() * t.dtype.itemsize > INLINE_BYTES:
            self._flush()  # the tensor may still be a queued command's result
            return self._download(t._id)
        cmd = self._build(K.FETCH, "", (t,), None, (), 0)
        cmd.describe = True
        return decode_array(self._execute([cmd], early=self._answer_early_at(t))[0].value.tensor)

    def _answer_early_at(self, t: Tensor) -> int:
        """Where the queue may be cut so that ``t``'s value is answered before the commands after
        the cut run (they go as a batch of their own, answered at the next sync point), or 0.
        A training step reads its loss after its backward and its update: the server answers once
        the loss is known, and runs the rest while this client goes on building the next step.

        Only where nothing is lost by it: no command after the cut can fail on the server but for
        its own faults (out of memory, a session's tensor limit), since its error would be raised
        at the next sync point, not at this one (_EARLY_OPS, _EARLY_KINDS; a backward only where
        each node it reaches was made by such an op, with no in-place write since: else the cut
        is after it, see _backward's _fence); ``t`` is a fresh result of such an op made in the
        queue, and no command after it reads or writes ``t`` (a backward from it excepted), so
        that nothing after the cut can change its value."""
        queue = self._queue
        n = len(queue)
        if n < 2 or not self._early or self._in_callback or self.eager or not self._open_stream():
            return 0  # (on unary Execute, a batch runs only once its answer is asked for)
        tid, info = t._id, self._queue_info
        fence = self._fence
        # a backward before this position may fail: it does not go after the cut
        fenced = fence[1] if fence is not None and fence[0] is queue else 0
        cut = 0  # the position after the last backward that stays before the cut: what follows is checked
        for k in range(n - 1, -1, -1):
            cmd = queue[k]
            what, _, outputs = info[k]
            if cmd.__class__ is tuple:  # a prepared call: (id, output, node, tensor ids)
                if tid == cmd[1]:  # the command that makes t
                    break
                if (not cut and what not in _EARLY_OPS) or tid in cmd[3:]:
                    return 0
                continue
            if tid in outputs:
                break
            kind = cmd.kind
            if kind == K.CALL or kind == K.CALL_INPLACE:
                if (not cut and what not in _EARLY_OPS) or tid in _refs(cmd):
                    return 0
            elif kind == K.BACKWARD:
                if k < fenced:
                    cut = cut or k + 1
            elif kind == K.PREPARE:
                if not cut and cmd.name not in _EARLY_OPS:
                    return 0
            elif (not cut and kind not in _EARLY_KINDS) or tid in _refs(cmd):
                return 0
        else:
            return 0  # t is not made in the queue
        if what not in _EARLY_OPS:
            return 0
        cut = cut or k + 1
        return cut if cut < n else 0

    # ------------------------------------------------------------ proxies
    def _proxy(self, tid: int, shape, dtype, grad_fn, requires_grad: bool, strides="contiguous",
               output_nr: int = 0):
        """A proxy whose metadata this client inferred itself (strides None: only the server knows)."""
        shape = tuple(shape)
        if strides == "contiguous":
            strides = contiguous_strides(shape)
        elif strides is not None:
            strides = tuple(strides)
        t = _new_proxy(self.Tensor, self, tid, shape, dtype, strides, requires_grad, grad_fn, output_nr)
        if requires_grad and grad_fn is None:
            self._has_grad[tid] = False  # a new leaf that requires grad has none yet
        return t

    def _resolve_strides(self, t: Tensor) -> tuple:
        result = self._command(K.META, args=(t,))
        t._strides = tuple(result.outputs[0].strides)
        return t._strides

    def _edge_node(self, target):
        """A mirrored edge as next_functions shows it: a node, or a leaf's AccumulateGrad."""
        if not isinstance(target, Tensor):
            return target
        acc = self._accumulators.get(target._id)
        if acc is None:
            acc = new_node(self, 0, "torch::autograd::AccumulateGrad", "AccumulateGrad", ())
            self._accumulators[target._id] = acc
        return acc

    def _from_meta(self, m) -> Tensor:
        t = object.__new__(self.Tensor)
        t._session = self
        t._id = m.id
        t._shape = tuple(m.shape)
        t._dtype = dtypes.by_name(m.dtype)
        t._strides = tuple(m.strides)
        self._update(t, m)
        return t

    def _update(self, t: Tensor, m) -> None:
        t._requires_grad = m.requires_grad
        t._grad_fn = self._node(m.grad_fn) if m.has_grad_fn else None
        t._output_nr = m.output_nr

    def _node(self, ref):
        node = self._nodes.get(ref.id)
        if node is None:
            node = make_node(self, ref)
            self._nodes[ref.id] = node
        return node

    def _ref_of(self, x):
        if isinstance(x, _Ref):
            return x._id
        if isinstance(x, Tensor):
            if x._id in self._poisoned:
                raise RuntimeError(f"this tensor was never computed: {self._poisoned[x._id]}")
            if x._session is not self:
                raise RuntimeError("a tensor of another session was passed to this session; tensors "
                                   "cannot cross sessions (use .tolist() or .numpy() to copy values)")
            return x._id
        return None

    # ------------------------------------------------------------ the wire
    def _build(self, kind, name, args, kwargs, outputs, node):
        cmd = pb.Command(kind=kind, name=name, node=node, outputs=outputs)
        add, cls, ref_of = cmd.args.add, self.Tensor, self._ref_of
        for a in args:
            # the common arguments inline: this session's tensors (not poisoned) and floats
            if a.__class__ is cls and a._id not in self._poisoned:
                add(ref=a._id)
            elif a.__class__ is float:
                add(f=a)
            elif a is _SLOT:
                add(ref=0)
            else:
                encode_value(a, add(), ref_of)
        if kwargs:
            for k, v in kwargs.items():
                encode_value(v, cmd.kwargs[k], ref_of)
        return cmd

    def _command(self, kind, name: str = "", args=(), kwargs=None, outputs=(), callbacks: bool = False,
                 node: int = 0):
        """A command whose answer is needed now: it goes with everything queued, and is waited for."""
        cmd = self._build(kind, name, args, kwargs, outputs, node)
        cmd.describe = True
        return self._execute([cmd], callbacks)[0]

    def _enqueue(self, kind, name: str = "", args=(), kwargs=None, outputs=(), node: int = 0) -> None:
        """A command whose result this client already knows: sent with the next batch."""
        self._queue_command(self._build(kind, name, args, kwargs, outputs, node), name or pb.Kind.Name(kind),
                            outputs)

    def _queue_command(self, cmd, what: str, outputs) -> None:
        self._queue_at(cmd, what, tuple(outputs), _user_line(sys._getframe(2)))

    def _queue_at(self, cmd, what: str, outputs: tuple, where) -> None:
        """Queue a command issued at ``where`` (_user_line's answer)."""
        if self._closed:  # known here: raised at the user's line, as in eager mode
            raise RemoteError("this session is closed")
        self._queue.append(cmd)
        self._queue_info.append((what, where, outputs))
        n = len(self._queue)
        if n >= self._send_ahead and self._send_ahead and not (self.eager or self._in_callback) and \
                n < self._max_queue:
            self._maybe_send_ahead()
        elif self.eager or n >= self._max_queue:
            try:
                self._flush()
            except Exception:
                # the user's line raises: what this command does on the client never happens
                # (as in eager mode), so it is neither sent again nor its target poisoned
                if self._queue and self._queue[-1] is cmd:
                    del self._queue[-1], self._queue_info[-1]
                if cmd.__class__ is tuple:
                    if not cmd[1]:  # an in-place prepared call: its target
                        self._poisoned.pop(cmd[3], None)
                elif cmd.kind == K.CALL_INPLACE:
                    self._poisoned.pop(cmd.args[0].ref, None)
                raise

    def _maybe_send_ahead(self) -> None:
        """Send the queue on the stream without waiting for it. With MAX_IN_FLIGHT batches out,
        read the oldest answer first; once one failed, nothing more is sent ahead (the server would
        refuse it): commands queue until the next sync point, which raises the error."""
        if self._ahead_failed or not self._open_stream():
            return
        if len(self._inflight) >= MAX_IN_FLIGHT:
            batch, sent, info = self._inflight[0]
            try:
                reply = self._reply_of(batch)
            except grpc.RpcError as e:
                if self._stream is None:  # the stream broke: the next sync point says why
                    self._ahead_failed = True
                    self._answered = e
                    return
                reply = self._reply_from_error(e)
            if reply.HasField("error"):
                self._ahead_failed = True
                self._answered = reply  # kept for the next sync point, which raises it
                return
            self._inflight.pop(0)
            self._accept(reply)
        self._send(self._batch(self._queue), self._queue, self._queue_info)
        self._queue, self._queue_info = [], []

    def _batch(self, commands, release: bool = True) -> pb.Batch:
        """The next numbered batch: the commands, and (``release``) the ids released since the last one."""
        batch = pb.Batch(commands=_wire(commands), seq=0 if self._in_callback else next(self._seq))
        if self._resume:
            batch.resume, self._resume = True, False
        if release and self._releases:
            released, self._releases = self._releases, []
            batch.release.extend(released)
            for tid in released:
                self._has_grad.pop(tid, None)
        return batch

    # ------------------------------------------------------------ the batch stream
    def _open_stream(self):
        """The session's batch stream, opened on first use (and again if it ended while idle: a
        proxy's idle timeout, say); None where the server refused one."""
        if self._stream and not self._inflight and self._stream[1].done():
            self._stream = None
        if self._stream is None and self._lane_port:
            lane = open_lane(self.address, self._lane_port, self.session_id, self.token)
            if lane is not None:
                self._stream = (lane, lane)
                self._stream_answered = False
                return self._stream
            self._lane_port = 0  # unreachable or refused: the gRPC stream, for the rest of the session
            self._follow_transport()
        if self._stream is None:
            requests = queue.SimpleQueue()

            def outgoing():
                while (batch := requests.get()) is not None:
                    yield batch
            self._stream = (requests, self._stub.ExecuteStream(outgoing(), metadata=self._md))
            self._stream_answered = False
        return self._stream or None

    def _follow_transport(self) -> None:
        """Send ahead as the user chose, else as pays on the transport batches take: the lane's
        count while a lane is offered and reachable, SEND_AHEAD on the gRPC stream."""
        if self._ahead_choice is not None:
            self._send_ahead = self._ahead_choice
        else:
            self._send_ahead = LANE_SEND_AHEAD if self._lane_port else SEND_AHEAD

    def _send(self, batch, queued, info) -> None:
        """Put a batch on its way: on the stream (answered later, in order), or, without a stream,
        kept to be sent by unary Execute when its answer is asked for."""
        if self._stream:
            self._stream[0].put(batch)
        self._inflight.append((batch, queued, info))

    def _reply_of(self, batch):
        """The answer to the oldest unanswered batch. A stream the server refused (its first answer
        is RESOURCE_EXHAUSTED or UNIMPLEMENTED) is given up for good: its batches go by Execute."""
        if self._stream:
            try:
                reply = next(self._stream[1])
            except grpc.RpcError as e:
                refused = not self._stream_answered and e.code() in (
                    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED)
                if not refused:
                    self._stream = None  # broken: the next batch opens a new one
                    raise
                self._stream = False
            except StopIteration:
                self._stream = None
                raise RemoteError(f"the server at {self.address} ended this session's batch stream") from None
            else:
                if not reply.HasField("error") and len(reply.results) != len(batch.commands):
                    # not this batch's answer: a gateway that lost its upstream can hand the stream
                    # an empty message before the status that ends it. The stream is not to be trusted.
                    self._stream[1].cancel()
                    self._stream = None
                    raise StreamBroken(f"the batch stream answered {len(reply.results)} results for "
                                        f"{len(batch.commands)} commands")
                self._stream_answered = True
                return reply
        return self._stub.Execute(batch, metadata=self._md, timeout=self._timeout)

    def _broken_stream_error(self, e: grpc.RpcError) -> Exception:
        """Why the batch stream broke (batches' own errors come as answers: this is the transport).
        How it ends says little: the server cancels the stream of a session it closed, a gateway
        resets it (INTERNAL) when the replica behind it dies. A unary call tells a lost session
        (SessionLost) from a lost server (ServerUnavailable)."""
        # the server may come back from a snapshot older than some prepared calls: they are
        # prepared again as they are used (a repeated PREPARE replaces the server's)
        self._forget_prepared()
        try:
            self._stub.Execute(pb.Batch(), metadata=self._md, timeout=5)
        except grpc.RpcError as probe:
            error = from_rpc_error(probe, self.address)
            if isinstance(error, (ServerUnavailable, SessionLost)):
                return error
        return from_rpc_error(e, self.address)

    def _reply_from_error(self, e: grpc.RpcError):
        """A unary call's failure as the answer a stream would have given (BatchResult.error)."""
        reply = pb.BatchResult()
        reply.error.code = e.code().name
        md = dict(e.trailing_metadata() or ())
        reply.error.type = md.get("x-error-type", "")
        reply.error.message = e.details() or ""
        if "x-error-index" in md:
            reply.error.has_index, reply.error.index = True, int(md["x-error-index"])
        return reply

    def _settle(self, later=(), later_info=(), keep: int = 0):
        """Read the answer of every unanswered batch, in order. Returns (error, last answer): the
        first failure gives the error to raise, and the commands after the failing one (in later
        batches and in ``later``) did not run and are dropped. The last ``keep`` batches are left
        unanswered, unless one before them failed."""
        # The batches answered at the last sync point are freed now, while the server works on
        # these, and these are kept until the next: freeing a step's commands costs ~40 us (a
        # hundred messages), which would otherwise stand between its last answer and the user.
        inflight, self._inflight = self._inflight, []
        self._settled = inflight
        kept, self._answered = self._answered, None
        self._ahead_failed = False
        failure, last = None, None
        for i, (batch, sent, info) in enumerate(inflight):
            if keep and i == len(inflight) - keep and failure is None:
                self._inflight = inflight[i:]
                break
            if isinstance(kept, grpc.RpcError):  # the stream broke while the batches went ahead
                self._resume = True
                return self._broken_stream_error(kept), None
            if kept is not None:
                reply, kept = kept, None
            else:
                try:
                    reply = self._reply_of(batch)
                except grpc.RpcError as e:
                    if self._stream is None:  # the stream broke: no more answers will come
                        self._resume = True  # the server may never see some numbers: do not wait for them
                        return (self._broken_stream_error(e) if failure is None else self._failed_at(failure)), None
                    reply = self._reply_from_error(e)
            if failure is not None:
                failure[1].extend(sent)
                failure[2].extend(info)
            elif reply.HasField("error"):
                failure = (reply.error, list(sent), list(info))
            else:
                self._accept(reply)
                last = reply
        if failure is None:
            return None, last
        self._resume = True
        failure[1].extend(later)
        failure[2].extend(later_info)
        return self._failed_at(failure), None

    def _flush(self) -> None:
        # queued commands never call back: backward and every command that can are sent at once
        if self._queue or self._releases:
            self._execute([], callbacks=False)
        elif self._inflight:
            error, _ = self._settle()
            if error is not None:
                raise error

    def _execute(self, commands, callbacks: bool = False, early: int = 0):
        """Send the queue and ``commands`` and wait for their answer. With ``early`` (a cut of the
        queue: _answer_early_at), the commands after it go as a batch of their own, sent at once
        and answered later; the answer waited for is that of the batch before it."""
        if self._closed:
            raise RemoteError("this session is closed")
        if callbacks and self._inflight:
            # a batch that calls back is served while it runs: nothing sent before may still be running
            later, later_info = self._queue, self._queue_info
            self._queue, self._queue_info = [], []
            error, _ = self._settle(later, later_info)
            if error is not None:
                raise error
            self._queue, self._queue_info = later, later_info
        queued, info = self._queue, self._queue_info
        self._queue, self._queue_info = [], []
        if early:
            # the commands up to the cut, then ``commands``: the batch waited for. The rest goes
            # after it, with the released ids (its commands may still use them).
            batch = self._batch(queued[:early] + list(commands), release=False)
            batch.awaited = True  # a server that holds answers while batches wait sends it at once
            self._send(batch, queued[:early], info[:early])
            rest, rest_info = queued[early:], info[early:]
            self._send(self._batch(rest), rest, rest_info)
            error, reply = self._settle(keep=1)
        else:
            batch = self._batch(queued + list(commands) if queued else commands)
            if callbacks and self._events is not None:
                try:
                    reply = self._execute_with_callbacks(batch)
                except grpc.RpcError as e:
                    reply = self._reply_from_error(e)
                self._inflight.append((batch, queued, info))
                self._answered = reply
            else:
                self._open_stream()
                self._send(batch, queued, info)
            error, reply = self._settle()
        if error is None:
            results = reply.results  # (only the answers of ``commands``, the batch's last: a
            # slice would wrap every one; queued prepared calls share results)
            return [results[i] for i in range(len(results) - len(commands), len(results))]
        if self._hook_errors:
            # a user's hook raised: re-raise that very exception, with the user's traceback
            user_error = self._hook_errors.pop(0)
            self._hook_errors.clear()
            raise user_error
        raise error

    def _failed_at(self, failure) -> Exception:
        """The exception for a failed batch's answer; if a queued command failed, say which, and
        where the user issued it. It and the commands after it did not run: they are dropped."""
        answer, queued, info = failure
        error = from_batch_error(answer, self.address)
        if isinstance(error, ServerUnavailable):
            self._forget_prepared()  # (as _broken_stream_error says)
        if answer.has_index and answer.index < len(queued):
            if queued[answer.index].__class__ is tuple and answer.code == "NOT_FOUND" and \
                    answer.message.startswith("prepared call"):
                self._forget_prepared()  # the server lost them (a restore): prepared again on use
            what, where, _ = info[answer.index]
            line = _line_text(where)
            error.add_note(f"(raised by '{what}', issued at {line})")
            self._drop_failed(queued[answer.index:], info[answer.index:], f"'{what}' issued at {line} failed: {error}")
        return error

    def _accept(self, reply) -> None:
        """What a batch's reply tells besides its results: Functions freed, warnings raised."""
        for node_id in reply.freed_functions:
            node = self._functions.get(node_id)
            if node is not None:
                node._to_save = ()
                node._freed = True
        for node_id in reply.released_functions:
            node = self._functions.pop(node_id, None)
            if node is not None:
                node._to_save = ()
                node._freed = True
        for w in reply.warnings:
            _warn_at_user_line(w.message, _WARNING_TYPES.get(w.category, UserWarning))

    def _drop_failed(self, commands, info, reason: str) -> None:
        """A queued command failed: it and those after it did not run. The tensors they create or
        write are poisoned; the state changes after it that the client has already made (grad mode,
        seed, requires_grad, hooks, retained and assigned grads) are queued again, so that the
        server keeps agreeing with the client."""
        for i, (cmd, (what, line, outputs)) in enumerate(zip(commands, info)):
            if cmd.__class__ is tuple:  # a prepared call: it creates its output (writes its target), nothing else
                for tid in outputs:
                    self._poisoned[tid] = reason
                continue
            if cmd.kind == K.BACKWARD:
                # a backward that did not run: the gradients predicted from it are not there
                self._has_grad.clear()
                continue
            for tid in outputs:
                self._poisoned[tid] = reason
            if cmd.kind == K.CALL_INPLACE:
                self._poisoned[cmd.args[0].ref] = reason
            elif i and not outputs:
                if any(ref in self._poisoned for ref in _refs(cmd)):
                    if cmd.kind == K.SET_GRAD:  # a gradient never computed: ask the server what .grad is
                        self._has_grad.pop(cmd.args[0].ref, None)
                    continue
                self._queue.append(cmd)
                self._queue_info.append((what, line, outputs))

    def _execute_with_callbacks(self, batch):
        """Send a batch that may call back (backward with hooks) and serve its callbacks in order."""
        done = object()
        future = self._stub.Execute.future(batch, metadata=self._md, timeout=self._timeout)
        future.add_done_callback(lambda f: self._events.put(done))
        while True:
            event = self._events.get()
            if event is done:
                return future.result()
            if isinstance(event, BaseException):
                raise event
            kind = event.WhichOneof("kind")
            if kind == "hook":
                self._run_hook(event.hook)
            elif kind == "function":
                self._run_function(event.function)

    def _serve_callback(self, call, run) -> None:
        """Answer one of the server's callbacks: ``run(reply)`` fills the answer. It runs in the
        backward's grad mode (the server runs its calls in it too); what it raises goes back to
        the server and is re-raised from backward() with the user's traceback."""
        reply = pb.CallbackReply(call_id=call.call_id)
        outer_mode, self._grad_enabled = self._grad_enabled, call.grad_enabled
        keep = None  # what run() answered with stays referenced until the server has it
        self._in_callback += 1
        try:
            try:
                keep = run(reply)
            except BaseException as e:  # noqa: BLE001  (handed to the server, re-raised from backward)
                self._hook_errors.append(e)
                reply.error = f"{type(e).__name__}: {e}"
            finally:
                self._grad_enabled = outer_mode
            self._reply(reply)
        finally:
            self._in_callback -= 1
        del keep

    def _run_hook(self, call) -> None:
        def run(reply):
            fn = self._hooks.get(call.hook)
            if fn is None:
                raise RuntimeError(f"hook {call.hook} is not registered in this client")
            result = fn(self._from_meta(call.grad))
            if result is None:
                reply.result.none = True
            elif isinstance(result, Tensor):
                reply.result.ref = self._ref_of(result)
            else:
                raise TypeError(f"hook returned an object of type {type(result).__name__}; "
                                "expected a Tensor or None")
            return result
        self._serve_callback(call, run)

    def _run_function(self, call) -> None:
        """The server's backward reached a custom Function applied here: run its backward."""
        def run(reply):
            node = self._functions.get(call.node)
            if node is None:
                raise RuntimeError(f"function node {call.node} is unknown to this client")
            node._saved_error = call.saved_error or None
            grads = node._backward_inputs(tuple(self._from_meta(m) if m.id else None for m in call.grads))
            result = node._backward_outputs(node._function.backward(node, *grads))
            items = reply.result.list
            items.SetInParent()
            for g in result:
                item = items.items.add()
                if g is None:
                    item.none = True
                else:
                    item.ref = self._ref_of(g)
            return grads, result
        self._serve_callback(call, run)

    def _reply(self, reply) -> None:
        # what the callback queued (a replacement gradient, say) must exist before the server goes on.
        # Queued commands never call back: a plain Execute, as a nested wait for events would take
        # the events (the end) of the call this callback serves. Releases alone can wait.
        if self._queue:
            try:
                self._execute([])
            except Exception as e:  # noqa: BLE001  (the server must still hear back, or it waits out its deadline)
                self._hook_errors.append(e)
                reply.ClearField("result")
                reply.error = f"{type(e).__name__}: {e}"
        try:
            self._stub.Reply(reply, metadata=self._md, timeout=self._timeout)
        except grpc.RpcError as e:
            # a late answer (the server gave up on this callback) is dropped: the backward that
            # asked for it has already failed with the server's timeout error
            if e.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                raise from_rpc_error(e, self.address) from None

    def _apply_function(self, cls, node, args, kwargs):
        from .engine.function import check_saved
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        node.needs_input_grad = tuple(t and a.requires_grad for a, t in zip(args, is_tensor))
        with self.no_grad():
            outputs = cls.forward(node, *args, **kwargs)
        check_saved(node._to_save, Tensor)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        inputs = {id(a) for a in args if isinstance(a, Tensor)}
        if not (self._grad_enabled and any(node.needs_input_grad)):
            # an input returned as is comes back as a new tensor, as in torch, even without a graph
            final = tuple(o.detach() if isinstance(o, Tensor) and id(o) in inputs else o for o in outs)
            return final[0] if single else final
        node._arg_is_tensor = is_tensor
        node._tensor_outputs = tuple(isinstance(o, Tensor) for o in outs)
        tensors = [o for o in outs if isinstance(o, Tensor)]
        alias_ids = tuple(self._new_id() if id(o) in inputs else 0 for o in tensors)
        self._ensure_events()
        self._functions[node._id] = node
        self._nodes[node._id] = node
        result = self._command(
            K.FUNCTION, args=(tuple(a if t else None for a, t in zip(args, is_tensor)), tuple(tensors)),
            kwargs={"name": node._name, "non_differentiable": tuple(node._non_differentiable),
                    "materialize_grads": node.materialize_grads,
                    "saved": tuple(t for t in node._to_save if isinstance(t, Tensor))},
            outputs=alias_ids, node=node._id)
        replaced = {}
        for o, alias, m in zip(tensors, alias_ids, result.outputs):
            if alias:
                replaced[id(o)] = self._from_meta(m)
            else:
                self._update(o, m)
        final = tuple(replaced.get(id(o), o) for o in outs)
        return final[0] if single else final

    def _node_apply(self, node_id: int, grads):
        n = len(self._next_functions(node_id))
        ids = tuple(self._new_id() for _ in range(n))
        result = self._command(K.NODE_APPLY, args=grads, kwargs={"node": node_id}, outputs=ids, callbacks=True)
        out = tuple(self._from_meta(m) if m.id else None for m in result.outputs)
        return out[0] if len(out) == 1 else out

    def _new_id(self) -> int:
        return next(self._ids)

    def _ensure_events(self) -> None:
        if self._events is not None:
            return
        self._events = queue.Queue()
        call = self._stub.Subscribe(pb.SubscribeRequest(controller=True), metadata=self._md)
        self._event_call = call
        ready = threading.Event()

        def pump():
            try:
                for event in call:
                    if event.WhichOneof("kind") == "ready":
                        ready.set()
                    else:
                        self._events.put(event)
            except grpc.RpcError as e:
                if not self._closed:
                    self._events.put(from_rpc_error(e, self.address))
            finally:
                ready.set()

        threading.Thread(target=pump, name="remote-autograd-events", daemon=True).start()
        ready.wait(30)

    def _upload(self, host: numpy.ndarray, requires_grad: bool):
        tid = next(self._ids)
        if host.nbytes <= INLINE_BYTES:
            cmd = pb.Command(kind=K.UPLOAD)
            encode_array(host, cmd.args.add().tensor)
            if requires_grad:
                encode_value(True, cmd.kwargs["requires_grad"])
            cmd.outputs.append(tid)
            self._queue_command(cmd, "tensor", (tid,))
            return self._proxy(tid, host.shape, dtypes.of_array(host), None, requires_grad)

        def chunks():
            view = memoryview(host).cast("B")
            first = pb.TensorChunk(id=tid, dtype=host.dtype.name, requires_grad=requires_grad)
            first.shape.extend(host.shape)
            first.data = bytes(view[:CHUNK_BYTES])
            yield first
            for start in range(CHUNK_BYTES, len(view), CHUNK_BYTES):
                yield pb.TensorChunk(data=bytes(view[start:start + CHUNK_BYTES]))
        try:
            self._stub.Upload(chunks(), metadata=self._md, timeout=self._timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address) from None
        result = self._command(K.META, args=(_Ref(tid),))
        return self._from_meta(result.outputs[0])

    def _download(self, tid: int) -> numpy.ndarray:
        try:
            stream = self._stub.Download(pb.DownloadRequest(id=tid), metadata=self._md, timeout=self._timeout)
            first = next(stream)
            from .protos.codec import check_header
            dt, shape, nbytes = check_header(first.dtype, first.shape)
            buf = bytearray(nbytes)
            pos = len(first.data)
            buf[:pos] = first.data
            for chunk in stream:
                buf[pos:pos + len(chunk.data)] = chunk.data
                pos += len(chunk.data)
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address) from None
        return numpy.frombuffer(buf, dtype=dt).reshape(shape)


_WARNING_TYPES = {cls.__name__: cls for cls in (UserWarning, RuntimeWarning, DeprecationWarning, FutureWarning)}


def _edge(x):
    """What a mirrored node records of one input (as the engine's _edge does on the server)."""
    if isinstance(x, Tensor):
        if x._grad_fn is not None:
            return (x._grad_fn, x._output_nr)
        if x._requires_grad:
            return (x, 0)
    return (None, 0)


def _check_inplace(target: Tensor, meta) -> None:
    """The engine's checks on writing a result into ``target``, raised at the user's line."""
    if tuple(meta.shape) != target._shape:
        try:
            numpy.broadcast_shapes(tuple(meta.shape), target._shape)
            ok = numpy.broadcast_shapes(tuple(meta.shape), target._shape) == target._shape
        except ValueError:
            ok = False
        if not ok:
            raise RuntimeError(f"output with shape {list(target._shape)} doesn't match the broadcast shape "
                               f"{list(meta.shape)}")
    src, dst = dtypes.of_dtype(meta.dtype), target._dtype
    if src._category > dst._category:
        raise RuntimeError(f"result type {engine_errors.scalar_name(src)} can't be cast to the desired "
                           f"output type {engine_errors.scalar_name(dst)}")


_PLAIN = (int, float, bool, str, type(None), dtypes.dtype)


def _meta_key(name: str, inputs, params):
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


class _Plan:
    """An op application's inferred results, in the form ``_call`` uses them: per output its shape,
    dtype, strides, and whether it is differentiable (a float output the op's node may own)."""

    __slots__ = ("metas", "single", "outs", "node_type", "saves", "prepared", "early")

    def __init__(self, op, metas) -> None:
        # the prepared call that sends this application as ids (Session._prepare): 0 not used
        # yet, _SEEN used once, -1 none (CALL commands), else its id
        self.prepared = 0
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
        self.saves = _saves(op)
        self.early = op.name in _EARLY_OPS  # its node's backward cannot fail (_answer_early_at)


def _inferred(cls, session, tid: int, out, node, nr: int):
    """The proxy of a queued op's output ``nr``, from its plan's ``out`` (shape, dtype, strides,
    differentiable: a float output the op's node may own) and the mirrored node (None: none)."""
    shape, dtype, strides, differentiable = out
    return _new_proxy(cls, session, tid, shape, dtype, strides, differentiable and node is not None,
                      node if differentiable else None, nr)


def _new_proxy(cls, session, tid: int, shape: tuple, dtype, strides, requires_grad: bool, grad_fn, output_nr: int):
    t = object.__new__(cls)
    t._session = session
    t._id = tid
    t._shape = shape
    t._dtype = dtype
    t._strides = strides
    t._requires_grad = requires_grad
    t._grad_fn = grad_fn
    t._output_nr = output_nr
    return t


def _saves(op) -> bool:
    """Whether the engine's node for ``op`` keeps saved values that a backward frees (engine/tensor.py _record)."""
    return bool(op.save) or op.save_tail is not None or op.save_output


def _check_backward(tensors, grads, inputs) -> None:
    """The checks engine/autograd.py backward() makes before it runs, in its order and words."""
    grads = match_grads(tensors, (None,) * len(tensors) if grads is None else grads)
    check_outputs(tensors)
    if inputs is not None and not inputs:
        raise RuntimeError(EMPTY_INPUTS)
    for i, (t, g) in enumerate(zip(tensors, grads)):
        check_root(i, t, g)


def _user_line(frame):
    """Where the user issued a command: the first frame outside this package from ``frame`` out,
    as (code, line); made text only when an error names it (most commands never fail)."""
    while frame is not None:
        code = frame.f_code
        inside = _INSIDE.get(code)
        if inside is None:
            inside = _INSIDE[code] = frame.f_globals.get("__name__", "").startswith("remote_autograd")
        if not inside:
            return code, frame.f_lineno
        frame = frame.f_back
    return None


_INSIDE: dict = {}  # code object -> whether it is this package's (a frame's module, remembered)


def _line_text(where) -> str:
    return "<unknown>" if where is None else f"{where[0].co_filename}:{where[1]}"


def _warn_at_user_line(message: str, category: type) -> None:
    """Warn as torch does: attributed to the user's line (so the default filter dedups per line)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is our caller, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("remote_autograd"):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


_SEEN = -2  # _Plan.prepared of a plan used once, as a CALL: prepared if it is used again


class _Slot:
    """Where a prepared call takes a tensor per call (``ref: 0`` on the wire)."""

    __slots__ = ()


_SLOT = _Slot()


def _preparable(inputs, params) -> bool:
    """Whether a call's constants name it exactly in a plan's key: a zero float does not (0.0 and
    -0.0 are one key, and a prepared call would compute with the first one's sign)."""
    for v in (*inputs, *(params.values() if params else ())):
        for x in (v if isinstance(v, tuple) else (v,)):
            if x.__class__ is float and x == 0.0:
                return False
    return True


def _wire(entries) -> list:
    """Queued entries as a batch's commands: each run of prepared calls (tuples) one CALLS command."""
    out, run = [], None
    for e in entries:
        if e.__class__ is tuple:
            if run is None:
                run = []
            run.extend(e)
        else:
            if run is not None:
                out.append(pb.Command(kind=K.CALLS, calls=run))
                run = None
            out.append(e)
    if run is not None:
        out.append(pb.Command(kind=K.CALLS, calls=run))
    return out


def _refs(cmd):
    """The tensor ids a command names."""
    stack = list(cmd.args) + list(cmd.kwargs.values())
    while stack:
        v = stack.pop()
        kind = v.WhichOneof("kind")
        if kind == "ref":
            yield v.ref
        elif kind == "list":
            stack.extend(v.list.items)


class _Ref:
    """A bare tensor id, for commands about a tensor that has no proxy yet."""

    def __init__(self, tid: int) -> None:
        self._id = tid


def _tuple(x):
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _contiguous(array: numpy.ndarray) -> numpy.ndarray:
    # not numpy.ascontiguousarray: it makes a 0-d array 1-d
    return numpy.require(array, requirements="C")


def _plain(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_plain(x) for x in data]
    return data


def _legacy_new(session: Session):
    def __new__(cls, *args, **kwargs):  # noqa: N807
        """torch.Tensor(...): float32 from data, or a zero-filled float32 tensor of a shape."""
        kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"new() received an invalid combination of arguments - got unexpected keyword "
                            f"arguments {sorted(kwargs)}")
        if not args:
            return session.tensor([], dtype=dtypes.float32)
        if len(args) == 1 and isinstance(args[0], Tensor):
            return args[0]
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and not isinstance(args[0], Size):
            return session.tensor(args[0], dtype=dtypes.float32)
        # a shape (ints or a torch.Size): torch leaves the memory uninitialised; zeros is one valid content
        return session.zeros(*args)
    return __new__
