"""A fake of the client's transport: the upper layers of the SDK run against it without a server."""
from __future__ import annotations

import numpy
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.codec import KIND as K
from remote_autograd.protos.codec import encode_array
from remote_autograd.transport import Observer


class FakeTransport:
    """Answers each batch at once by ``respond(batch)`` (default: every command succeeds with an
    empty result; a FETCH answers zeros of the shape the test registered in ``shapes``). Records
    what was sent and in which order answers were read."""

    address = "fake:0"

    def __init__(self, respond=None, *, stream: bool = True, info: pb.SessionInfo | None = None) -> None:
        self.respond = respond or self.ok
        self.sent: list[pb.Batch] = []
        self.answered: list[pb.Batch] = []
        self.lane_port = 0
        self.stream = object() if stream else False  # a pipelined stream, or unary calls
        self.kind = "stream" if stream else "unary"
        self.info = info or pb.SessionInfo(session_id="f" * 32, token="t", backend="numpy",
                                           prepared_calls=True, prepared_inplace_calls=True)
        self.on_lane_lost = None
        self.closed = False
        self._observers: list[Observer] = []
        self._pending: list[pb.Batch] = []

    # the session's side
    def create_session(self, client: str) -> pb.SessionInfo:
        return self.info

    def attach(self, info, direct: bool) -> None:
        self.session_id, self.token = info.session_id, info.token

    def close(self) -> None:
        self.closed = True

    def observe(self, observer: Observer):
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    # batches
    def open_stream(self, idle: bool) -> bool:
        return bool(self.stream)

    def send(self, batch: pb.Batch) -> None:
        self.sent.append(batch)
        self._pending.append(batch)
        for o in self._observers:
            o.sent(batch)

    def answer(self, batch: pb.Batch) -> pb.BatchResult:
        assert self._pending and self._pending[0] is batch, "answers are read in the order batches were sent"
        self._pending.pop(0)
        self.answered.append(batch)
        return self.respond(batch)

    def broken_stream_error(self, e):
        from remote_autograd.errors import ServerUnavailable
        return ServerUnavailable(str(e))

    def subscribe(self, controller: bool):
        raise AssertionError("no callbacks in these tests")

    # answers
    shapes: dict = {}

    def ok(self, batch: pb.Batch) -> pb.BatchResult:
        reply = pb.BatchResult()
        for cmd in batch.commands:
            result = reply.results.add()
            if cmd.kind == K.FETCH:
                encode_array(numpy.zeros(self.shapes.get(cmd.args[0].ref, ()), numpy.float32), result.value.tensor)
        return reply


def failing_at(index: int, type_name: str = "RuntimeError", message: str = "it failed",
               code: str = "FAILED_PRECONDITION"):
    """A respond() whose batch fails at its command ``index`` (counting a CALLS command's calls)."""
    def respond(batch):
        reply = pb.BatchResult()
        reply.error.code, reply.error.type, reply.error.message = code, type_name, message
        reply.error.has_index, reply.error.index = True, index
        return reply
    return respond


def commands(batches) -> list:
    return [c for b in batches for c in b.commands]
