"""The gRPC servicer: thin handlers (parse the call, ask the registry, a session or the data plane, convert)."""
from __future__ import annotations

import itertools
import logging
import queue

import grpc

from ..engine.backend import BACKEND, from_numpy, to_numpy
from ..engine.tensor import Tensor
from ..protos import autograd_pb2 as pb
from ..protos import autograd_pb2_grpc as pb_grpc
from ..protos.codec import decode_value
from ..protos.host import host_digest
from ..protos.protocol import SESSION_ID, SESSION_TOKEN, chunks_of, join_chunks
from . import batches
from .errors import ResourceExhausted, Unauthenticated, handle_errors
from .registry import Registry
from .session import Session

log = logging.getLogger("remote_autograd.server")


class Servicer(pb_grpc.RemoteAutogradServicer):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.direct_port = 0  # the direct lane's port, offered to new sessions (0: none)

    def _session(self, context) -> Session:
        md = dict(context.invocation_metadata())
        return self.registry.get(md.get(SESSION_ID, ""), md.get(SESSION_TOKEN, ""))

    @handle_errors
    def CreateSession(self, request, context):
        # A client may propose the id: a gateway that hashes x-session-id then sends the
        # creation to the very replica that all later calls of the session will reach.
        s = self.registry.create(dict(context.invocation_metadata()).get(SESSION_ID))
        log.info("session %s created (%s)", s.id, request.client or "anonymous client")
        return pb.SessionInfo(session_id=s.id, token=s.token, protocol="remote_autograd.v1", backend=BACKEND,
                              direct_port=self.direct_port, prepared_calls=True,
                              prepared_inplace_calls=True, host=host_digest())

    @handle_errors
    def CloseSession(self, request, context):
        self.registry.close(self._session(context))
        return pb.Empty()

    @handle_errors
    def Ping(self, request, context):
        return pb.Empty()

    def Echo(self, request, context):
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
                yield batches.answer(session, request, cancelled)
        finally:
            self.registry.close_stream(context)

    @handle_errors
    def Upload(self, request_iterator, context):
        session = self._session(context)
        first = next(request_iterator, None)
        if first is None:
            raise ValueError("an upload stream needs at least one chunk (the one with id, dtype and shape)")
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
