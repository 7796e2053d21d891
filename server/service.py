"""The gRPC servicer: thin handlers (parse the call, ask the registry, a session or the data plane, convert)."""
from __future__ import annotations

import functools
import itertools
import logging
import queue

import grpc
from google.protobuf.message import DecodeError

from ..engine.backend import BACKEND, from_numpy, to_numpy
from ..engine.tensor import Tensor
from ..protos import autograd_pb2 as pb
from ..protos import autograd_pb2_grpc as pb_grpc
from ..protos.codec import decode_value
from ..protos.host import host_digest
from ..protos.protocol import API_KEY, SESSION_ID, SESSION_TOKEN, batch_error, chunks_of, join_chunks
from . import batches
from .commands import check_elements
from .errors import ResourceExhausted, Unauthenticated, handle_errors
from .registry import Registry
from .session import Session

log = logging.getLogger("remote_autograd.server")

SERVICE = pb.DESCRIPTOR.services_by_name["RemoteAutograd"]


class Undecodable:
    """A request message that did not parse (nested past protobuf's depth limit, say): gRPC's own
    deserializer failing answered INTERNAL and logged a traceback; the handlers answer
    INVALID_ARGUMENT instead."""

    __slots__ = ("message",)

    def __init__(self, cls, error: Exception) -> None:
        self.message = f"a {cls.__name__} message that does not parse: {error}"


CLIENT_SHOWN = 200  # characters of a client's self-description that the log shows


def printable(text: str, limit: int = CLIENT_SHOWN) -> str:
    """A client's string as one log line: control characters escaped (a newline could forge log
    lines, an escape sequence rewrite a terminal), cut at ``limit`` characters."""
    cut = text[:limit]
    shown = cut if cut.isprintable() else repr(cut)[1:-1]
    return shown + (f"... ({len(text)} characters)" if len(text) > limit else "")


def _lenient(cls):
    def decode(data: bytes):
        try:
            return cls.FromString(data)
        except DecodeError as e:
            return Undecodable(cls, e)
    return decode


def _refuse_undecodable(method):
    @functools.wraps(method)
    def wrapper(request, context):
        if request.__class__ is Undecodable:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return method(request, context)
    return wrapper


def _decoded(requests):
    for request in requests:
        if request.__class__ is Undecodable:
            raise ValueError(request.message)
        yield request


def add_to_server(servicer, server) -> None:
    """Register the servicer as the generated stubs do, with deserializers that hand a message
    that does not parse to the handler (an Undecodable), answered INVALID_ARGUMENT."""
    kinds = {(False, False): grpc.unary_unary_rpc_method_handler, (False, True): grpc.unary_stream_rpc_method_handler,
             (True, False): grpc.stream_unary_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
    handlers = {}
    for method in SERVICE.methods:
        behavior = getattr(servicer, method.name)
        if not method.client_streaming:
            behavior = _refuse_undecodable(behavior)
        elif method.name == "Upload":
            behavior = functools.partial(lambda upload, chunks, context: upload(_decoded(chunks), context), behavior)
        # (ExecuteStream answers an Undecodable batch with an error, and the stream goes on)
        handlers[method.name] = kinds[method.client_streaming, method.server_streaming](
            behavior, request_deserializer=_lenient(getattr(pb, method.input_type.name)),
            response_serializer=getattr(pb, method.output_type.name).SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


class Servicer(pb_grpc.RemoteAutogradServicer):
    def __init__(self, registry: Registry, api_keys=None) -> None:
        self.registry = registry
        self.direct_port = 0  # the direct lane's port, offered to new sessions (0: none)
        self.api_keys = api_keys  # server/api_keys.ApiKeys: who may create sessions; None: anyone

    def _tenant(self, context):
        """The tenant of the call's API key; None where the server takes none. Unauthenticated else."""
        if self.api_keys is None:
            return None
        tenant = self.api_keys.tenant(dict(context.invocation_metadata()).get(API_KEY))
        if tenant is None:
            raise Unauthenticated(f"this server needs a valid API key ({API_KEY}) to create sessions, ping or echo")
        return tenant

    def _session(self, context) -> Session:
        md = dict(context.invocation_metadata())
        return self.registry.get(md.get(SESSION_ID, ""), md.get(SESSION_TOKEN, ""))

    @handle_errors
    def CreateSession(self, request, context):
        # A client may propose the id: a gateway that hashes x-session-id then sends the
        # creation to the very replica that all later calls of the session will reach.
        tenant = self._tenant(context)
        s = self.registry.create(dict(context.invocation_metadata()).get(SESSION_ID), tenant)
        log.info("session %s created (%s%s)", s.id, printable(request.client) if request.client else "anonymous client",
                 f", tenant {tenant.name}" if tenant is not None else "")
        return pb.SessionInfo(session_id=s.id, token=s.token, protocol="remote_autograd.v1", backend=BACKEND,
                              direct_port=self.direct_port, prepared_calls=True,
                              prepared_inplace_calls=True, host=host_digest())

    @handle_errors
    def CloseSession(self, request, context):
        self.registry.close(self._session(context))
        return pb.Empty()

    @handle_errors
    def Ping(self, request, context):
        self._tenant(context)
        return pb.Empty()

    def Echo(self, request, context):
        try:
            self._tenant(context)
        except Unauthenticated as e:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
        # it needs no session: bounded, or anyone could make the server hold two copies of a message
        limit = self.registry.limits.max_echo_bytes
        if len(request.data) > limit:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"an Echo of {len(request.data)} bytes; the limit (--max-echo-bytes) is {limit}")
        return request

    @handle_errors
    def Execute(self, request, context):
        # its error goes out as the call's status; a long batch stops once its caller gave up
        return batches.answer(self._session(context), request, lambda: not context.is_active())

    def ExecuteStream(self, request_iterator, context):
        """Batches of one session over one stream, answered in order; a batch's failure is its
        answer's error, and the stream goes on."""
        try:
            session = self._session(context)
        except Unauthenticated as e:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
        if not self.registry.open_stream(context, session):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many open batch streams; use Execute")
        try:
            cancelled = lambda: not context.is_active()  # noqa: E731
            for request in request_iterator:
                if request.__class__ is Undecodable:
                    yield pb.BatchResult(error=batch_error("INVALID_ARGUMENT", "ValueError", request.message))
                    continue
                yield batches.answer(session, request, cancelled)
        finally:
            self.registry.close_stream(context)

    @handle_errors
    def Upload(self, request_iterator, context):
        session = self._session(context)
        first = next(request_iterator, None)
        if first is None:
            raise ValueError("an upload stream needs at least one chunk (the one with id, dtype and shape)")
        check_elements(session, tuple(first.shape), f"upload of tensor {first.id}")  # before any data is kept
        t = Tensor._make(from_numpy(join_chunks(first, request_iterator, f"tensor {first.id}")))
        if first.requires_grad:
            t.requires_grad = True
        with session.lock:
            session.bind(first.id, t)
        return pb.Empty()

    @handle_errors
    def Download(self, request, context):
        session = self._session(context)
        with session.lock:
            t = session.tensor(request.id)
            if request.grad:
                t = t._grad
                if t is None:
                    raise RuntimeError(f"tensor {request.id} has no grad")
            # the first chunk (a contiguous copy of a strided tensor too) is taken while the
            # session's batches wait
            chunks = chunks_of(to_numpy(t._data), pb.TensorChunk())
            first = next(chunks)
        return itertools.chain((first,), chunks)

    def Subscribe(self, request, context):
        try:
            session = self._session(context)
        except Unauthenticated as e:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
        try:
            self.registry.open_events(context, session, request.controller)
        except ResourceExhausted as e:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        try:
            q = session.subscribe(request.controller)
        except BaseException:
            self.registry.close_events(context)
            raise
        context.add_callback(lambda: q.put(None))
        try:
            yield pb.Event(ready=True)
            while context.is_active():
                try:
                    item = q.get(timeout=1.0)
                except queue.Empty:
                    continue
                if item is None:
                    break
                if isinstance(item, str):
                    yield pb.Event(closed=item)
                    break
                yield item
        finally:
            session.unsubscribe(q)
            self.registry.close_events(context)

    @handle_errors
    def Reply(self, request, context):
        session = self._session(context)
        result = decode_value(request.result, tensor_of=int)  # ids stay ids; the session looks them up
        session.answer(request.call_id, result, request.error or None)
        return pb.Empty()
