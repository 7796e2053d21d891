"""The direct lane: a session's batches on a plain TCP connection beside the gRPC service.

gRPC's Python stack hands every message between threads on both sides: a round trip of a small
message costs ~0.3 ms on the machines measured where a socket's costs ~0.02 ms
(benchmarks/RESULTS.md). The lane carries only what ExecuteStream carries, with the same
answers; sessions, uploads, downloads, events and callbacks stay on gRPC. Its protocol is
described in protos/autograd.proto at SessionInfo.direct_port; frames are protobuf messages
(nothing is unpickled or evaluated), and a peer reads nothing larger than a handshake frame
before it has proved that it knows the session's token.
"""
from __future__ import annotations

import functools
import hmac
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable

from google.protobuf.message import DecodeError

from ..protos import autograd_pb2 as pb
from ..protos.lane import (
    HANDSHAKE_FRAME,
    MAGIC,
    NONCE_BYTES,
    pending,
    proof,
    read_exact,
    read_frame,
    tune,
    write_frame,
    write_frames,
)
from ..protos.protocol import batch_error
from .session import Session

log = logging.getLogger("remote_autograd.server")

# An unproven connection has this long in all to prove it knows a session's token (a deadline for
# the whole handshake, not per read: a peer trickling a byte at a time kept one open for minutes).
HANDSHAKE_SECONDS = 5.0
# connections not yet proven; past it the oldest of them is closed to make room for the new one, so
# that idle connections cannot keep a client that proves itself in milliseconds from its lane
MAX_HANDSHAKES = 64
# answers held back while more batches wait; past it they are written. Under the client's
# MAX_IN_FLIGHT (8), so that a client that waits for its oldest answer waits no longer than the
# server takes to run the batches it has anyway.
HELD_ANSWERS = 4


class _Connection:
    """A lane in the registry's open streams: ``cancel()`` ends it as a stream's context would."""

    def __init__(self, sock) -> None:
        self.sock = sock

    def cancel(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # the lane's thread wakes from its read and ends
        except OSError:
            pass


class Lane:
    """Listens on ``host:port`` (0: a free port, in ``self.port``) and serves each connection's
    batches on a thread of its own, as a batch stream holds a worker thread. ``answer(session,
    batch, cancelled)`` is the data plane's (batches.answer): a batch's result, its failure as its error."""

    def __init__(self, host: str, port: int, registry,
                 answer: Callable[[Session, pb.Batch, Callable[[], bool]], pb.BatchResult], tls=None) -> None:
        self.registry = registry
        self.answer = answer
        self.tls = tls  # an ssl.SSLContext: every connection is TLS before its first byte is read
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        self.sock = socket.create_server((host, port), family=family, backlog=128)
        self.port = self.sock.getsockname()[1]
        self._unproven: OrderedDict = OrderedDict()  # connections in their handshake, oldest first
        self._unproven_lock = threading.Lock()
        threading.Thread(target=self._accept, name="lane-accept", daemon=True).start()

    def stop(self) -> None:
        """No new lanes (open ones end with the registry's streams)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # stopped
            with self._unproven_lock:
                if len(self._unproven) >= MAX_HANDSHAKES:
                    _shut(self._unproven.popitem(last=False)[0])  # its thread ends
                self._unproven[conn] = None
            threading.Thread(target=self._serve, args=(conn,), name="lane", daemon=True).start()

    def _expire(self, conn) -> None:
        """The handshake's deadline: a connection still unproven is closed."""
        with self._unproven_lock:
            if self._unproven.pop(conn, False) is None:
                _shut(conn)

    def _serve(self, conn) -> None:
        deadline = threading.Timer(HANDSHAKE_SECONDS, self._expire, (conn,))
        deadline.daemon = True
        deadline.start()
        sock = conn  # what the lane speaks on: the connection, or TLS over it (the bookkeeping keeps conn)
        try:
            tune(conn)
            conn.settimeout(HANDSHAKE_SECONDS)
            if self.tls is not None:
                sock = self.tls.wrap_socket(conn, server_side=True)
            session = self._handshake(sock)
            deadline.cancel()
            with self._unproven_lock:
                proven = self._unproven.pop(conn, False) is None  # not closed by its deadline or for room
            if session is not None and proven:
                self._run(sock, session)
        except (OSError, ConnectionError, DecodeError):
            pass  # a peer gone, silent, or not speaking the protocol: nothing to answer
        finally:
            deadline.cancel()
            with self._unproven_lock:
                self._unproven.pop(conn, None)
            sock.close()
            conn.close()

    def _handshake(self, conn):
        """The session whose token the peer proved it knows, or None (it was told why)."""
        if read_exact(conn, len(MAGIC)) != MAGIC:
            return None
        hello = pb.LaneHello.FromString(read_frame(conn, HANDSHAKE_FRAME) or b"")
        session = self.registry.sessions.get(hello.session_id)
        key = None if session is None or session.closed else session.lane_key
        if key is None or len(hello.nonce) != NONCE_BYTES:
            _welcome(conn, error="unknown session, or no lane for it now: use ExecuteStream")
            return None
        nonce = os.urandom(NONCE_BYTES)
        _welcome(conn, nonce=nonce, proof=proof(key, b"server", hello.nonce, nonce))
        answer = pb.LaneProof.FromString(read_frame(conn, HANDSHAKE_FRAME) or b"")
        if not hmac.compare_digest(answer.proof, proof(key, b"client", nonce, hello.nonce)):
            _welcome(conn, error="unknown session or bad token")
            return None
        return session

    def _run(self, conn, session) -> None:
        handle = _Connection(conn)
        if not self.registry.open_stream(handle, session):
            _welcome(conn, error="too many open batch streams; use Execute")
            return
        try:
            _welcome(conn)
            conn.settimeout(None)
            held: list = []  # answers not yet written
            gone = functools.partial(_peer_gone, conn)  # a long batch stops once its client left
            while (frame := read_frame(conn, self.registry.limits.max_message_bytes)) is not None:
                awaited = False
                try:
                    request = pb.Batch.FromString(frame)
                except DecodeError:
                    reply = pb.BatchResult(error=batch_error("INVALID_ARGUMENT", "ValueError",
                                                             "a direct lane frame that is not a Batch"))
                else:
                    reply = self.answer(session, request, gone)
                    awaited = request.awaited
                held.append(reply.SerializeToString())
                # While the client has sent more (batches sent ahead), the next runs first and
                # the answers go out together: a client reads them at its sync point, and a send
                # costs ~20 us. Once none is waiting (the client waits, or builds), they go, and
                # so does the answer of a batch the client says it waits for.
                if len(held) >= HELD_ANSWERS or awaited or not pending(conn):
                    write_frames(conn, held)
                    held = []
                # freed now, while the client reads the answer, not once the next batch has come
                frame = request = reply = None
            if held:  # the client ended its side after its last batches: it may still read
                write_frames(conn, held)
        finally:
            self.registry.close_stream(handle)


def _peer_gone(conn) -> bool:
    """Whether the peer ended the connection (a read would return nothing): a client that gave up."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _shut(conn) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)  # its thread wakes from its read and ends
    except OSError:
        pass


def _welcome(conn, **fields) -> None:
    write_frame(conn, pb.LaneWelcome(**fields).SerializeToString())
