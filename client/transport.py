"""The client's wire: one method per logical RPC over one channel, and one batch stream behind them."""
from __future__ import annotations

import queue
import secrets

import grpc
import numpy

from .errors import RemoteError, ServerUnavailable, SessionLost, from_rpc_error
from .lane import Lane, StreamBroken, open_lane
from .protos import autograd_pb2 as pb
from .protos import autograd_pb2_grpc as pb_grpc
from .protos.protocol import API_KEY, SESSION_ID, chunks_of, error_from_status, join_chunks, session_metadata

CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30),
                   # a restarted server or replica is found again within a second, not minutes
                   ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 2000)]
# Behind a gateway with one of three replicas dead, every attempt fails with chance 1/3: ten fail
# together once in ~59000 creations (four did once in 81: a CI run saw it)
CREATE_ATTEMPTS = 10


class GrpcStream:
    """ExecuteStream as a batch stream: ``put`` queues a batch for gRPC's sender thread, ``next``
    reads the next answer."""

    __slots__ = ("_requests", "call")

    def __init__(self, stub, metadata) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()

        def outgoing():
            while (batch := self._requests.get()) is not None:
                yield batch
        self.call = stub.ExecuteStream(outgoing(), metadata=metadata)

    def put(self, batch) -> None:
        self._requests.put(batch)

    def __next__(self):
        return next(self.call)

    def done(self) -> bool:
        return self.call.done()

    def end(self) -> None:
        """No more batches: the server ends the stream once it has answered the last."""
        self._requests.put(None)

    def cancel(self) -> None:
        self.call.cancel()


class Observer:
    """Sees what a session's transport does (``Transport.observe``): benchmarks time it, tests count
    it. Each method is called in the program's thread; the default does nothing."""

    def sent(self, batch: pb.Batch) -> None:
        """A batch went out (on the stream, or kept for a unary call made when its answer is read)."""

    def answered(self, reply: pb.BatchResult) -> None:
        """A batch's answer was read."""

    def called(self, method: str, request) -> None:
        """Any other RPC (CreateSession, Upload, Download, Subscribe, Reply, CloseSession)."""


class Transport:
    """One session's channel. Batches go on one stream interface (``send``, then ``answer`` in order):
    the direct lane where the server offers one and it is reachable, else ExecuteStream, else
    (a server that refused the stream) unary Execute calls made as answers are read."""

    def __init__(self, address: str, timeout: float | None = None, tls=None, api_key: str | None = None) -> None:
        """``tls``: a client.tls.ClientTLS for a server that serves TLS (its lane too), else None;
        ``api_key``: the key CreateSession carries, for a server that asks for one."""
        self.address = address
        self._api_key = api_key
        self.timeout = timeout
        self.tls = tls
        self._channel = (grpc.secure_channel(address, tls.grpc_credentials(), options=CHANNEL_OPTIONS) if tls
                         else grpc.insecure_channel(address, options=CHANNEL_OPTIONS))
        self._stub = pb_grpc.RemoteAutogradStub(self._channel)
        self._md: tuple = ()
        self.session_id = self.token = ""
        self.lane_port = 0  # the direct lane's port, 0: none (none offered, off, refused or unreachable)
        self.stream = None  # the open batch stream; None: not open; False: refused (unary calls)
        self._answered_once = False  # whether the open stream has answered (a refusal comes first)
        self._observers: list[Observer] = []
        self.on_lane_lost = None  # called once batches fall back from the lane to gRPC

    # ------------------------------------------------------------ session
    def create_session(self, client: str) -> pb.SessionInfo:
        """CreateSession, proposing a fresh id; behind a gateway a dead replica owns some ids, so an
        unavailable answer is retried with another id (nothing was created)."""
        error = None
        request = pb.CreateSessionRequest(client=client)
        for _ in range(CREATE_ATTEMPTS):
            self._note("CreateSession", request)
            try:
                # the proposed id routes the creation through a gateway to the replica that will hold it
                metadata = ((SESSION_ID, secrets.token_hex(16)),) + (((API_KEY, self._api_key),) if self._api_key
                                                                       else ())
                return self._stub.CreateSession(request, timeout=self.timeout or 30, metadata=metadata)
            except grpc.RpcError as e:
                error = e
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    break
        self._channel.close()
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:  # no session yet: it is the key that was refused
            raise RemoteError(f"the server at {self.address} refused to create a session: {error.details()} "
                              "(ra.connect(..., api_key=...) or REMOTE_AUTOGRAD_API_KEY)") from None
        raise from_rpc_error(error, self.address) from None

    def attach(self, info: pb.SessionInfo, direct: bool) -> None:
        """Every later call carries the session's id and token (a gateway routes on the id)."""
        self.session_id, self.token = info.session_id, info.token
        self._md = session_metadata(info.session_id, info.token)
        self.lane_port = info.direct_port if direct else 0

    def close(self) -> None:
        """End the batch stream, close the session on the server (if it is still there) and the channel."""
        if self.stream:
            self.stream.end()
            self.stream = None
        self._note("CloseSession", None)
        try:
            self._stub.CloseSession(pb.Empty(), metadata=self._md, timeout=10)
        except grpc.RpcError:
            pass  # the server may already be gone; its state goes with it
        self._channel.close()

    # ------------------------------------------------------------ observers
    def observe(self, observer: Observer):
        """Call ``observer`` for what this transport does from now on; returns a function that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def _note(self, method: str, request) -> None:
        for o in self._observers:
            o.called(method, request)

    # ------------------------------------------------------------ the batch stream
    @property
    def kind(self) -> str | None:
        """What batches travel on: "lane", "stream", "unary", or None before the first batch."""
        if self.stream is False:
            return "unary"
        if self.stream is None:
            return None
        return "lane" if isinstance(self.stream, Lane) else "stream"

    def open_stream(self, idle: bool) -> bool:
        """The session's batch stream, opened on first use (and again where it ended while ``idle``,
        no answer awaited: a proxy's idle timeout, say). False where the server refused one."""
        if self.stream and idle and self.stream.done():
            self.stream = None
        if self.stream is None and self.lane_port:
            lane = open_lane(self.address, self.lane_port, self.session_id, self.token,
                             self.tls.lane_context() if self.tls else None)
            if lane is not None:
                self.stream, self._answered_once = lane, False
                return True
            self.lane_port = 0  # unreachable or refused: the gRPC stream, for the rest of the session
            if self.on_lane_lost is not None:
                self.on_lane_lost()
        if self.stream is None:
            self.stream, self._answered_once = GrpcStream(self._stub, self._md), False
        return bool(self.stream)

    def send(self, batch: pb.Batch) -> None:
        """Put a batch on its way: on the stream (answered later, in order), or, without a stream,
        nowhere yet: ``answer`` sends it by unary Execute."""
        if self.stream:
            self.stream.put(batch)
        for o in self._observers:
            o.sent(batch)

    def answer(self, batch: pb.Batch) -> pb.BatchResult:
        """The answer of the oldest unanswered batch, ``batch``; a failed batch's answer carries its
        BatchError. Raises grpc.RpcError where the stream broke (``stream`` is None then: no
        more answers will come on it). A stream the server refused (its first answer is
        RESOURCE_EXHAUSTED or UNIMPLEMENTED) is given up for good: its batches go by Execute."""
        reply = self._read(batch)
        for o in self._observers:
            o.answered(reply)
        return reply

    def _read(self, batch):
        stream = self.stream
        if stream:
            try:
                reply = next(stream)
            except grpc.RpcError as e:
                refused = not self._answered_once and e.code() in (
                    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED)
                if not refused:
                    self.stream = None  # broken: the next batch opens a new one
                    raise
                self.stream = False
            except StopIteration:
                self.stream = None
                raise RemoteError(f"the server at {self.address} ended this session's batch stream") from None
            else:
                if not reply.HasField("error") and len(reply.results) != len(batch.commands):
                    # not this batch's answer: a gateway that lost its upstream can hand the stream
                    # an empty message before the status that ends it. The stream is not to be trusted.
                    stream.cancel()
                    self.stream = None
                    raise StreamBroken(f"the batch stream answered {len(reply.results)} results for "
                                       f"{len(batch.commands)} commands")
                self._answered_once = True
                return reply
        return self.execute(batch)

    def execute(self, batch: pb.Batch) -> pb.BatchResult:
        """A unary Execute; its failure comes back as the answer's BatchError, as a stream's would."""
        try:
            return self._stub.Execute(batch, metadata=self._md, timeout=self.timeout)
        except grpc.RpcError as e:
            return _failed(e)

    @staticmethod
    def result(future) -> pb.BatchResult:
        """An ``execute_future``'s answer, its failure as the answer's BatchError (as ``execute``'s)."""
        try:
            return future.result()
        except grpc.RpcError as e:
            return _failed(e)

    def execute_future(self, batch: pb.Batch):
        """A unary Execute whose answer is awaited while callbacks are served (a backward with hooks)."""
        for o in self._observers:
            o.sent(batch)
        return self._stub.Execute.future(batch, metadata=self._md, timeout=self.timeout)

    def broken_stream_error(self, e: grpc.RpcError) -> Exception:
        """Why the batch stream broke (batches' own errors come as answers: this is the transport).
        How it ends says little: the server cancels the stream of a session it closed, a gateway
        resets it (INTERNAL) when the replica behind it dies. A unary call tells a lost session
        (SessionLost) from a lost server (ServerUnavailable)."""
        try:
            self._stub.Execute(pb.Batch(), metadata=self._md, timeout=5)
        except grpc.RpcError as probe:
            error = from_rpc_error(probe, self.address)
            if isinstance(error, (ServerUnavailable, SessionLost)):
                return error
        return from_rpc_error(e, self.address)

    # ------------------------------------------------------------ events and callbacks
    def subscribe(self, controller: bool):
        request = pb.SubscribeRequest(controller=controller)
        self._note("Subscribe", request)
        return self._stub.Subscribe(request, metadata=self._md)

    def reply(self, reply: pb.CallbackReply) -> None:
        """Answer a server's callback. A late answer (the server gave up on this callback) is
        dropped: the backward that asked for it has already failed with the server's timeout error."""
        self._note("Reply", reply)
        try:
            self._stub.Reply(reply, metadata=self._md, timeout=self.timeout)
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                raise from_rpc_error(e, self.address) from None

    # ------------------------------------------------------------ big tensors
    def upload(self, tid: int, host: numpy.ndarray, requires_grad: bool) -> None:
        """A tensor too big for a batch, through the chunked Upload stream, bound to ``tid``."""
        self._note("Upload", tid)
        try:
            self._stub.Upload(chunks_of(host, pb.TensorChunk(id=tid, requires_grad=requires_grad)),
                              metadata=self._md, timeout=self.timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address) from None

    def download(self, tid: int) -> numpy.ndarray:
        request = pb.DownloadRequest(id=tid)
        self._note("Download", request)
        try:
            stream = self._stub.Download(request, metadata=self._md, timeout=self.timeout)
            first = next(stream)
            return join_chunks(first, stream, f"tensor {tid}")
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address) from None


def _failed(e: grpc.RpcError) -> pb.BatchResult:
    return pb.BatchResult(error=error_from_status(e.code().name, e.details(), e.trailing_metadata()))
