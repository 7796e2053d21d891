"""The direct lane's wire format, shared by server and client (protos/autograd.proto, at
SessionInfo.direct_port): length-prefixed protobuf frames and the handshake's proofs."""
from __future__ import annotations

import hashlib
import hmac
import select
import socket
import ssl
import struct

MAGIC = b"RAGLANE1"
NONCE_BYTES = 16
HANDSHAKE_FRAME = 4096  # a handshake frame's bound: nothing larger is read from an unproven peer
MAX_FRAME = 1 << 30  # as gRPC's message limit here
_LENGTH = struct.Struct("<I")
_SMALL = 1 << 16  # frames up to this go out in one send (header and body joined)


def tune(sock) -> None:
    """No delay for small frames; keepalive probes after a minute of silence, so that a lane whose
    peer's host vanished ends in minutes rather than hangs (an answer still being computed keeps
    the connection alive: the peer's kernel answers the probes)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, name):  # Linux; elsewhere the system's defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def key_of(token: str) -> bytes:
    return hashlib.sha256(b"lane:" + token.encode()).digest()


def proof(key: bytes, role: bytes, first: bytes, second: bytes) -> bytes:
    """HMAC-SHA-256 over role + first nonce + second nonce: b"server" proves with the client's
    nonce first, b"client" with the server's first, so neither proof answers for the other."""
    return hmac.new(key, role + first + second, hashlib.sha256).digest()


def read_exact(sock, n: int, *, at_start: bool = False):
    """n bytes from the socket; None where the peer ended cleanly before the first byte and
    ``at_start`` allows it; ConnectionError where it ended in the middle."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            if got == 0 and at_start:
                return None
            raise ConnectionError("the direct lane's peer closed it in the middle of a frame")
        got += k
    return buf


def read_frame(sock, limit: int):
    """The next frame's bytes, or None where the peer ended the lane between frames."""
    head = read_exact(sock, _LENGTH.size, at_start=True)
    if head is None:
        return None
    (n,) = _LENGTH.unpack(head)
    if n > limit:
        raise ConnectionError(f"a direct lane frame of {n} bytes is over its limit of {limit}")
    return read_exact(sock, n) if n else b""


def write_frame(sock, data: bytes) -> None:
    if len(data) <= _SMALL:
        sock.sendall(_LENGTH.pack(len(data)) + data)
    else:  # large: no copy of the body to join it to the header
        sock.sendall(_LENGTH.pack(len(data)))
        sock.sendall(data)


def write_frames(sock, frames: list) -> None:
    """Several frames, the small ones joined into one send."""
    if len(frames) == 1 or sum(len(f) for f in frames) > _SMALL:
        for data in frames:
            write_frame(sock, data)
        return
    sock.sendall(b"".join(part for data in frames for part in (_LENGTH.pack(len(data)), data)))


def pending(sock) -> bool:
    """Whether a read would return at once: the peer has sent more (or ended the connection)."""
    if isinstance(sock, ssl.SSLSocket):  # (no peeking through TLS: decrypted bytes, or bytes on the wire)
        return sock.pending() > 0 or bool(select.select([sock], [], [], 0)[0])
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True  # the read that follows meets the error
    return True
