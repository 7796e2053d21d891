"""The client's end of the direct lane (server/lane.py; the protocol is in protos/autograd.proto
at SessionInfo.direct_port): the session's batch stream on a plain TCP connection. It stands in
for ExecuteStream's (requests, replies) pair: ``put`` sends a batch, ``next`` reads the next
answer, in the calling thread, with no thread between the program and the socket."""
from __future__ import annotations

import hmac
import logging
import os
import re
import socket
import ssl

import grpc
from google.protobuf.message import DecodeError

from .protos import autograd_pb2 as pb
from .protos.lane import (
    HANDSHAKE_FRAME,
    MAGIC,
    MAX_FRAME,
    NONCE_BYTES,
    key_of,
    pending,
    proof,
    read_frame,
    tune,
    write_frame,
)

log = logging.getLogger("remote_autograd")

CONNECT_SECONDS = 2.0
# host:port, [v6 host]:port, or either behind an "ipv4:"/"ipv6:"/"dns:///" target prefix
_ADDRESS = re.compile(r"^(?:ipv4:|ipv6:|dns:(?://[^/]*/)?)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/\[\]]+)):\d+$")


class StreamBroken(grpc.RpcError):
    """A batch stream failed as a transport: the lane's peer went away, or a stream answered out
    of turn. Handled as gRPC's UNAVAILABLE (the session then asks a unary call what is left)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self._details = details

    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return ()


def lane_host(address: str) -> str | None:
    """The host of a gRPC target, where the lane can be reached beside it; None for a target
    that names no single host (unix sockets, several addresses, other name resolvers)."""
    m = _ADDRESS.match(address.strip())
    return None if m is None else (m.group("v6") or m.group("host"))


def open_lane(address: str, port: int, session_id: str, token: str, tls=None) -> Lane | None:
    """The session's lane, or None where it cannot be had (unreachable, refused, or a peer that
    does not prove it knows the token: the caller uses the gRPC stream then)."""
    host = lane_host(address)
    if host is None or not port:
        return None
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_SECONDS)
    except OSError as e:
        log.debug("no direct lane at %s:%d (%s): batches go on the gRPC stream", host, port, e)
        return None
    try:
        tune(sock)
        if tls is not None:  # an ssl.SSLContext: the server's certificate is checked before a byte is sent
            sock = tls.wrap_socket(sock, server_hostname=host)
        key, nonce = key_of(token), os.urandom(NONCE_BYTES)
        sock.sendall(MAGIC)
        write_frame(sock, pb.LaneHello(session_id=session_id, nonce=nonce).SerializeToString())
        welcome = pb.LaneWelcome.FromString(read_frame(sock, HANDSHAKE_FRAME) or b"")
        # the server proves itself before the client says anything more: batches carry the
        # user's data, and only the server holding this session may see them
        if welcome.error or not hmac.compare_digest(welcome.proof, proof(key, b"server", nonce, welcome.nonce)):
            raise ConnectionError(welcome.error or "the peer did not prove it holds this session")
        write_frame(sock, pb.LaneProof(proof=proof(key, b"client", welcome.nonce, nonce)).SerializeToString())
        welcome = pb.LaneWelcome.FromString(read_frame(sock, HANDSHAKE_FRAME) or b"")
        if welcome.error:
            raise ConnectionError(welcome.error)
        sock.settimeout(None)
        return Lane(sock)
    except Exception as e:  # noqa: BLE001  (any failure: no lane, the gRPC stream serves)
        log.debug("direct lane at %s:%d refused (%s): batches go on the gRPC stream", host, port, e)
        sock.close()
        return None


class Lane:
    """An open lane: batches out and answers in on one socket; once ``broken`` says why it failed,
    every read raises StreamBroken."""

    __slots__ = ("sock", "broken")

    def __init__(self, sock) -> None:
        self.sock = sock
        self.broken: str | None = None

    def put(self, batch) -> None:
        """Send a batch (None: end the lane). A failure to send is kept for the answer's read."""
        if batch is None:
            self.cancel()
            return
        if self.broken is None:
            try:
                write_frame(self.sock, batch.SerializeToString())
            except OSError as e:
                self.broken = f"the direct lane failed sending a batch: {e}"

    def __iter__(self):
        return self

    def __next__(self):
        if self.broken is None:
            try:
                frame = read_frame(self.sock, MAX_FRAME)
            except OSError as e:
                self.broken = f"the direct lane failed reading an answer: {e}"
            else:
                if frame is not None:
                    try:
                        return pb.BatchResult.FromString(frame)
                    except DecodeError:
                        self.broken = "the direct lane carried an answer that is not a BatchResult"
                else:
                    self.broken = "the server ended the direct lane"
        self.cancel()
        raise StreamBroken(self.broken)

    def done(self) -> bool:
        """Whether the lane has ended; asked only while no answer is awaited, so that a lane the
        server closed while idle is replaced before a batch is lost on it."""
        if self.broken is None:
            try:
                if isinstance(self.sock, ssl.SSLSocket):
                    # no peeking through TLS; while no answer is awaited, the server sends only its end
                    if pending(self.sock):
                        self.broken = "the server ended the direct lane"
                elif self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    self.broken = "the server ended the direct lane"
            except BlockingIOError:
                pass
            except OSError as e:
                self.broken = f"the direct lane failed: {e}"
        return self.broken is not None

    def end(self) -> None:
        """No more batches: the server's side ends with the connection."""
        self.cancel()

    def cancel(self) -> None:
        if self.broken is None:
            self.broken = "the direct lane was closed"
        try:
            self.sock.close()
        except OSError:
            pass
