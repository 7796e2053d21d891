"""The transport's batch stream on its own: answers out of turn, refusals, and the unary fallback."""
from __future__ import annotations

import grpc
import pytest
from remote_autograd.lane import StreamBroken
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.transport import Transport


class Status(grpc.RpcError):
    def __init__(self, code) -> None:
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return "refused"

    def trailing_metadata(self):
        return ()


class Stream:
    """A batch stream that hands out the answers (or raises the errors) it is given."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.cancelled = False

    def put(self, batch) -> None:
        pass

    def __next__(self):
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        self.cancelled = True

    end = cancel


def transport(stream) -> Transport:
    t = Transport("127.0.0.1:1", timeout=2)  # nothing listens: a unary call fails UNAVAILABLE
    t.stream = stream
    return t


def batch(n: int) -> pb.Batch:
    return pb.Batch(commands=[pb.Command(kind=pb.Kind.META) for _ in range(n)])


def test_an_answer_with_the_wrong_number_of_results_breaks_the_stream():
    # a gateway that lost its upstream can hand the stream an empty message before its status
    stream = Stream(pb.BatchResult())
    t = transport(stream)
    with pytest.raises(StreamBroken, match="answered 0 results for 2 commands"):
        t.answer(batch(2))
    assert stream.cancelled and t.stream is None and t.kind is None  # the next batch opens a new one


def test_a_failed_batch_is_an_answer_not_a_broken_stream():
    reply = pb.BatchResult()
    reply.error.code = "INVALID_ARGUMENT"
    t = transport(Stream(reply))
    assert t.answer(batch(2)).error.code == "INVALID_ARGUMENT"
    assert t.kind == "stream"


def test_a_refused_stream_is_given_up_for_unary_calls():
    t = transport(Stream(Status(grpc.StatusCode.RESOURCE_EXHAUSTED)))
    reply = t.answer(batch(1))  # sent again by unary Execute: here nothing listens
    assert t.kind == "unary" and reply.error.code == "UNAVAILABLE"


def test_a_stream_that_fails_after_answering_is_broken_not_refused():
    ok = pb.BatchResult()
    ok.results.add()
    t = transport(Stream(ok, Status(grpc.StatusCode.RESOURCE_EXHAUSTED)))
    t.answer(batch(1))
    with pytest.raises(grpc.RpcError):
        t.answer(batch(1))
    assert t.stream is None
