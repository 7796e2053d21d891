"""The gRPC servicer's conversions, called with a stand-in for a call's context (no server, no sockets)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import grpc
import numpy
import pytest
from batch_helpers import batch, call, upload
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.protocol import CHUNK_BYTES, SESSION_ID, SESSION_TOKEN, chunks_of, join_chunks
from remote_autograd.server import lane
from remote_autograd.server.registry import Limits, Registry
from remote_autograd.server.service import Servicer


class Aborted(Exception):  # noqa: N818  (what context.abort raises, as gRPC's does)
    pass


class Context:
    """What a handler reads and writes of a gRPC call's context."""

    def __init__(self, metadata=()) -> None:
        self.metadata, self.trailers = tuple(metadata), None

    def invocation_metadata(self):
        return self.metadata

    def set_trailing_metadata(self, trailers) -> None:
        self.trailers = list(trailers)

    def abort(self, code, details):
        raise Aborted(code, details)


def _servicer_and_session():
    servicer = Servicer(Registry(Limits()))
    session = servicer.registry.create()
    return servicer, Context(((SESSION_ID, session.id), (SESSION_TOKEN, session.token)))


def test_a_failed_batch_on_a_unary_call_is_its_status_and_trailers():
    servicer, context = _servicer_and_session()
    with pytest.raises(Aborted) as raised:
        servicer.Execute(batch(upload(1, numpy.ones(2)), call("neg", 99, out=2)), context)
    assert raised.value.args[0] == grpc.StatusCode.NOT_FOUND
    assert "tensor id 99" in raised.value.args[1]
    assert context.trailers == [("x-error-type", "RuntimeError"), ("x-error-index", "1")]
    assert not servicer.Execute(batch(call("neg", 1, out=2)), context).HasField("error")


def test_a_bad_token_is_unauthenticated_without_a_torch_type():
    servicer, context = _servicer_and_session()
    context.metadata = ((SESSION_ID, context.metadata[0][1]), (SESSION_TOKEN, "not it"))
    with pytest.raises(Aborted) as raised:
        servicer.Execute(batch(), context)
    assert raised.value.args[0] == grpc.StatusCode.UNAUTHENTICATED and context.trailers == []


def test_a_large_tensor_goes_up_and_comes_back_in_chunks():
    servicer, context = _servicer_and_session()
    array = numpy.random.default_rng(0).standard_normal((2, CHUNK_BYTES // 8 + 5))  # three chunks
    servicer.Upload(chunks_of(array, pb.TensorChunk(id=1)), context)
    chunks = list(servicer.Download(pb.DownloadRequest(id=1), context))
    assert len(chunks) == 3 and all(len(c.data) <= CHUNK_BYTES for c in chunks)
    numpy.testing.assert_array_equal(join_chunks(chunks[0], chunks[1:]), array)


def test_an_upload_longer_than_its_header_says_is_refused():
    servicer, context = _servicer_and_session()
    first = pb.TensorChunk(id=1, dtype="float32", shape=(2,), data=bytes(8))
    with pytest.raises(Aborted) as raised:
        servicer.Upload(iter((first, pb.TensorChunk(data=bytes(4)))), context)
    assert raised.value.args[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.args[1] == "upload of tensor 1 sent more than the 8 bytes its dtype and shape need"
    assert context.trailers == [("x-error-type", "ValueError")]


def test_the_lane_is_given_the_data_plane_not_the_servicer():
    assert list(inspect.signature(lane.Lane).parameters) == ["host", "port", "registry", "answer", "tls"]
    imported = {node.module for node in ast.walk(ast.parse(Path(lane.__file__).read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert "service" not in imported and "app" not in imported
