"""A remote session: the ``torch``-like namespace a user gets from ``connect``, its factories and its lifecycle."""
from __future__ import annotations

import atexit
import functools
import os
import sys
import types
import weakref

import numpy

from .autograd import Autograd
from .callbacks import Callbacks
from .command_queue import CommandQueue, Ref
from .engine import autograd_functional as functional_ad
from .engine import dtypes, serialization
from .engine import errors as engine_errors
from .engine import gradcheck as gradchecks
from .engine.checks import check_factory_requires_grad, check_legacy_new_kwargs
from .engine.device import Cuda, device, place
from .engine.factories import host_array
from .engine.functional import TORCH_FUNCTIONS, nn_functional
from .engine.meta import factory_meta
from .engine.nn_namespace import nn_namespace, optim_namespace
from .engine.size import Size
from .function import FunctionCtx, function_base, once_differentiable
from .grad_mode import GradMode, SetGradEnabled
from .mirror import Mirror
from .prepared import PreparedCalls
from .protos.codec import KIND as K
from .protos.codec import decode_array, encode_array, encode_value
from .protos.host import host_digest
from .recorder import Recorder
from .tensor import Tensor
from .tls import client_tls
from .transport import Observer, Transport
from .userline import user_line, warn_at_user_line

# Tensors above this travel through the chunked Upload/Download streams, not inside a batch.
INLINE_BYTES = 4 << 20
# Commands queued before the client sends them anyway (a bound on memory and on lost work).
MAX_QUEUE = 1024
# Batches travel on one stream per session. With send_ahead=N, every N queued commands are sent
# ahead, without waiting, while the user's program goes on: the server runs them while the client
# builds the next ones. Off by default on the gRPC stream: measured on one 2-core machine holding
# both client and server it did not pay (benchmarks/RESULTS.md): the two share the cores, and the
# stream's sender thread contends with the user's program for the client's interpreter lock. On the
# direct lane a batch goes out from the program's own thread in one send: there, with steps run
# back to back as a loop runs them, the chain benchmark's step is ~15-25% faster with it (after an
# idle pause of a third of a second its first steps are ~10% slower).
SEND_AHEAD = 0
LANE_SEND_AHEAD = 32


def _env_flag(name: str, default: bool | None) -> bool | None:
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


class Wire:
    """What a session's batches travel on, for a program or a test that needs to know (``t.wire``)."""

    def __init__(self, transport: Transport, queue: CommandQueue) -> None:
        self._transport = transport
        self._queue = queue

    @property
    def kind(self) -> str | None:
        """"lane", "stream" (ExecuteStream), "unary" (a server that refused streams), or None before the first batch."""
        return self._transport.kind

    @property
    def stream(self):
        """The open batch stream (a client.lane.Lane or a client.transport.GrpcStream), or None."""
        return self._transport.stream or None

    @property
    def lane_port(self) -> int:
        """The direct lane's port this client will use, 0 for none. Settable before the first
        batch, for a lane reached through a port forward at another number."""
        return self._transport.lane_port

    @lane_port.setter
    def lane_port(self, port: int) -> None:
        self._transport.lane_port = int(port)

    @property
    def queued(self) -> int:
        """Commands queued and not sent."""
        return len(self._queue.commands)

    @property
    def in_flight(self) -> int:
        """Batches sent and not yet answered."""
        return self._queue.in_flight

    @property
    def send_ahead(self) -> int:
        return self._queue.send_ahead

    @property
    def early_answers(self) -> bool:
        return self._queue.early

    def observe(self, observer: Observer):
        """Call ``observer``'s methods for what the transport does; returns a function that stops it."""
        return self._transport.observe(observer)


class Session:
    """``t = ra.connect(address)``: use ``t`` as you would use ``torch``; every value lives on the server."""

    def __init__(self, address: str, *, client: str = "python-sdk", timeout: float | None = None,
                 eager: bool | None = None, max_queue: int = MAX_QUEUE, send_ahead: int | None = None,
                 direct: bool | None = None, early_answers: bool | None = None,
                 tls: bool | None = None, root_certificates=None, client_cert=None, client_key=None,
                 api_key: str | None = None, transport: Transport | None = None) -> None:
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
        update) have run, where none of them can fail but for the server's own faults
        (client/early.py): the server runs them while the program builds its next step. On the
        server's own machine it is off by default: there the client's work takes cores from the
        server's threads, and measured it did not pay (benchmarks/RESULTS.md).
        ``tls=True`` (or any of ``root_certificates``, ``client_cert``, ``client_key``: PEM data or a
        file's path; REMOTE_AUTOGRAD_TLS, _TLS_CA, _TLS_CERT, _TLS_KEY) connects over TLS, the direct
        lane too; ``root_certificates`` are the CAs the server's certificate must chain to (default:
        the system's), ``client_cert``/``client_key`` this client's for a server that asks for one.
        ``api_key`` (or REMOTE_AUTOGRAD_API_KEY): the key a server started with --api-keys asks for.
        ``transport``: an object with client.transport.Transport's methods to carry the session
        instead of a gRPC channel to ``address`` (a test's fake, an embedding's own wire)."""
        self.address = address
        eager = _env_flag("REMOTE_AUTOGRAD_EAGER", False) if eager is None else eager
        self.eager = bool(eager)
        if send_ahead is None:
            send_ahead = os.environ.get("REMOTE_AUTOGRAD_SEND_AHEAD", "").strip() or None
        self._ahead_choice = None if send_ahead is None else max(0, int(send_ahead))  # None: the transport's
        self._closed = False
        self.Tensor = type("Tensor", (Tensor,), {"__slots__": (), "__new__": _legacy_new(self), "__module__": "torch"})
        # the layers, each owning its state; upper ones call lower ones (transport at the bottom)
        if transport is None:
            transport = Transport(address, timeout, client_tls(tls, root_certificates, client_cert, client_key),
                                  api_key or os.environ.get("REMOTE_AUTOGRAD_API_KEY") or None)
        self._transport = transport
        info = transport.create_session(client)
        self.session_id, self.token, self.backend = info.session_id, info.token, info.backend
        transport.attach(info, _env_flag("REMOTE_AUTOGRAD_DIRECT", True) if direct is None else bool(direct))
        mirror = Mirror()
        queue = self._queue = CommandQueue(self, transport, mirror, self.Tensor, eager=self.eager,
                                           max_queue=max(1, int(max_queue)))
        if early_answers is None:
            early_answers = _env_flag("REMOTE_AUTOGRAD_EARLY_ANSWERS", None)
        # (a server that names no host is taken as this machine's)
        queue.early = bool(info.host and info.host != host_digest()) if early_answers is None else bool(early_answers)
        prepared = PreparedCalls(queue, self.Tensor, info.prepared_calls, info.prepared_inplace_calls)
        recorder = self._recorder = Recorder(self, self.Tensor, mirror, queue, prepared)
        callbacks = self._callbacks = Callbacks(transport, queue, recorder)
        autograd = Autograd(self, queue, mirror, recorder, callbacks)
        queue.on_lost_prepared = prepared.forget
        queue.on_functions = callbacks.functions_let_go
        transport.on_lane_lost = self._follow_transport
        self._follow_transport()
        self.wire = Wire(transport, queue)
        # what Tensor, its nodes and Functions call: the layers' own methods (no frame in between)
        self._call, self._call_inplace = recorder.call, recorder.call_inplace
        self._new_id, self._releases = recorder.new_id, queue.releases
        self._get_grad, self._set_grad, self._retains = autograd.get_grad, autograd.set_grad, autograd.retains
        self._retain_grad, self._set_requires_grad = autograd.retain_grad, autograd.set_requires_grad
        self._alias, self._set_data, self._detach_inplace = autograd.alias, autograd.set_data, autograd.detach_inplace
        self._next_functions, self._node_apply = autograd.next_functions, autograd.node_apply
        self._edge_node, self._resolve_strides = autograd.edge_node, autograd.resolve_strides
        self._register_hook, self._apply_function = callbacks.register_hook, callbacks.apply_function
        _LIVE.add(self)
        self._install_namespace(autograd)

    def _follow_transport(self) -> None:
        """Send ahead as the user chose, else as pays on the transport batches take: the lane's
        count while a lane is offered and reachable, SEND_AHEAD on the gRPC stream."""
        if self._ahead_choice is not None:
            self._queue.send_ahead = self._ahead_choice
        else:
            self._queue.send_ahead = LANE_SEND_AHEAD if self._transport.lane_port else SEND_AHEAD

    # ------------------------------------------------------------ the torch namespace
    def _install_namespace(self, autograd: Autograd) -> None:
        for name, dt in dtypes.ALIASES.items():
            setattr(self, name, dt)
        self.dtype = dtypes.dtype
        self.Size = Size
        for name, fn in TORCH_FUNCTIONS.items():
            setattr(self, name, fn)
        self.device = device
        self.save = functools.partial(serialization.save, self)  # no pickle: .npy arrays and a JSON index
        self.load = functools.partial(serialization.load, self)
        # cuda where the server computes with CuPy (one GPU, as a session sees it); else torch's errors
        self.cuda = Cuda(lambda: self.backend)
        self.cuda.synchronize = lambda device=None: self.synchronize()
        self.nn = nn_namespace(self, nn_functional)  # torch.nn and torch.optim: the engine's code, over this session
        self.optim = optim_namespace(self)
        self.autograd = types.SimpleNamespace(
            backward=autograd.backward, grad=autograd.grad, no_grad=self.no_grad, enable_grad=self.enable_grad,
            set_grad_enabled=self.set_grad_enabled, Function=function_base(self),
            GradcheckError=gradchecks.GradcheckError,
            gradcheck=functools.partial(gradchecks.gradcheck, self),
            gradgradcheck=functools.partial(gradchecks.gradgradcheck, self),
            functional=types.SimpleNamespace(**{name: functools.partial(getattr(functional_ad, name), self)
                                                for name in ("jacobian", "hessian", "vjp", "jvp")}))
        self.autograd.function = types.SimpleNamespace(Function=self.autograd.Function, FunctionCtx=FunctionCtx,
                                                       once_differentiable=once_differentiable)

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        self._callbacks.closed = True  # the event stream's end is no error to report now
        self._transport.close()
        self._callbacks.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            return  # gRPC's threads are gone: closing would wait forever (atexit closed it already)
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown: nothing left to tell)
            pass

    def __repr__(self) -> str:
        return f"<remote_autograd session {self.session_id} at {self.address}>"

    def __getattr__(self, name: str):
        # only for names nothing else provides: torch's that this SDK does not offer yet
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"torch.{name} is not supported by remote_autograd yet (README.md, 'What of torch "
                             "is here' and its 'Not yet' list)")

    # ------------------------------------------------------------ grad mode
    def no_grad(self) -> GradMode:
        return GradMode(self._recorder, False)

    def enable_grad(self) -> GradMode:
        return GradMode(self._recorder, True)

    def set_grad_enabled(self, mode: bool) -> SetGradEnabled:
        return SetGradEnabled(self._recorder, mode)

    def is_grad_enabled(self) -> bool:
        return self._recorder.grad_enabled

    def manual_seed(self, seed: int) -> None:
        self._queue.enqueue(K.MANUAL_SEED, args=(int(seed),))

    def synchronize(self) -> None:
        """Wait until every queued command has run; raises the first error one of them met."""
        self._queue.flush()

    # ------------------------------------------------------------ factories
    def tensor(self, data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False):
        place(device, self.cuda.is_available())
        if isinstance(data, Tensor):
            warn_at_user_line(engine_errors.COPY_CONSTRUCT, UserWarning)
            if data._session is not self:  # values cross sessions as values, through this client
                return self.tensor(data._value(), dtype=dtype, requires_grad=requires_grad)
            dt = dtypes.from_any(dtype) if dtype is not None else data.dtype
            check_factory_requires_grad(requires_grad, dt)
            out = data.detach().to(dt, copy=True)  # always a copy, as torch.tensor makes one
            return out.requires_grad_() if requires_grad else out
        if isinstance(data, (numpy.ndarray, numpy.generic)) or (
                hasattr(data, "__array__") and not isinstance(data, (list, tuple))):
            host = numpy.asarray(data)
            host = host.astype((dtypes.from_any(dtype) if dtype is not None else dtypes.from_any(host.dtype)).np)
        else:
            host = host_array(_plain(data), dtype)  # torch's inference, and its errors, before any round trip
        check_factory_requires_grad(requires_grad, host.dtype)
        return self._upload(_contiguous(host), requires_grad)

    def as_tensor(self, data, dtype=None, device=None):
        place(device, self.cuda.is_available())
        if isinstance(data, Tensor) and (dtype is None or dtypes.from_any(dtype) is data.dtype):
            return data
        return self.tensor(data, dtype=dtype)

    def from_numpy(self, array):
        return self._upload(_contiguous(array), False)

    def _factory(self, name: str, *args, **kwargs):
        place(kwargs.pop("device", None), self.cuda.is_available())
        kwargs.pop("out", None)
        if "dtype" in kwargs and kwargs["dtype"] is not None:
            kwargs["dtype"] = dtypes.from_any(kwargs["dtype"])
        tid = self._new_id()
        meta = factory_meta(name, args, kwargs)
        if meta is None:  # arguments only the engine can judge: let it, with torch's errors
            result = self._queue.command(K.FACTORY, name=name, args=args, kwargs=kwargs, outputs=(tid,))
            return self._recorder.from_meta(result.outputs[0])
        shape, dt = meta
        self._queue.enqueue(K.FACTORY, name=name, args=args, kwargs=kwargs, outputs=(tid,))
        return self._recorder.proxy(tid, shape, dt, None, bool(kwargs.get("requires_grad", False)))

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

    # ------------------------------------------------------------ values in and out
    def _upload(self, host: numpy.ndarray, requires_grad: bool):
        tid = self._new_id()
        if host.nbytes <= INLINE_BYTES:
            cmd = self._queue.build(K.UPLOAD, "", (), None, (tid,), 0)
            encode_array(host, cmd.args.add().tensor)
            if requires_grad:
                encode_value(True, cmd.kwargs["requires_grad"])
            self._queue.queue_at(cmd, "tensor", (tid,), user_line(sys._getframe(1)))
            return self._recorder.proxy(tid, host.shape, dtypes.of_array(host), None, requires_grad)
        self._transport.upload(tid, host, requires_grad)
        result = self._queue.command(K.META, args=(Ref(tid),))
        return self._recorder.from_meta(result.outputs[0])

    def _fetch(self, t: Tensor) -> numpy.ndarray:
        if t.numel() * t.dtype.itemsize > INLINE_BYTES:
            self._queue.flush()  # the tensor may still be a queued command's result
            return self._transport.download(t._id)
        cmd = self._queue.build(K.FETCH, "", (t,), None, (), 0)
        cmd.describe = True
        return decode_array(self._queue.answer(t, cmd).value.tensor)


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
        check_legacy_new_kwargs(kwargs)
        if not args:
            return session.tensor([], dtype=dtypes.float32)
        if len(args) == 1 and isinstance(args[0], Tensor):
            return args[0]
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and not isinstance(args[0], Size):
            return session.tensor(args[0], dtype=dtypes.float32)
        # a shape (ints or a torch.Size): torch leaves the memory uninitialised; zeros is one valid content
        return session.zeros(*args)
    return __new__
