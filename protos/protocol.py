"""The protocol's constants and its two shared encodings (a failure, a chunked tensor), written once for both sides."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy

from . import autograd_pb2 as pb
from .codec import check_header

# Call metadata. A gateway routes every call of a session by SESSION_ID (CreateSession carries
# the id the client proposes, so the creation lands where its later calls will).
SESSION_ID = "x-session-id"
SESSION_TOKEN = "x-session-token"
# The API key that CreateSession, Ping and Echo carry where the server asks for one (--api-keys).
API_KEY = "x-api-key"
# A failed unary call's trailers: the torch exception type to raise, and which command of the
# batch failed.
ERROR_TYPE = "x-error-type"
ERROR_INDEX = "x-error-index"

# Exception types a client re-raises by name (looked up in a table, never evaluated); the server
# sends any other error as RuntimeError.
TORCH_ERROR_TYPES = ("RuntimeError", "IndexError", "TypeError", "ValueError", "NotImplementedError")

# One Upload/Download stream message: well under gRPC's default 4 MiB message limit.
CHUNK_BYTES = 1 << 20


def session_metadata(session_id: str, token: str) -> tuple:
    return ((SESSION_ID, session_id), (SESSION_TOKEN, token))


# ---------------------------------------------------------------- failures
# A batch's failure travels two ways: as a stream's answer (BatchResult.error) and as a unary
# call's status with trailers. Both are this one BatchError; these convert between the forms.

def batch_error(code: str, type_name: str | None, message: str, index: int | None = None) -> pb.BatchError:
    error = pb.BatchError(code=code, type=type_name or "", message=message)
    if index is not None:
        error.has_index, error.index = True, index
    return error


def error_trailers(error: pb.BatchError) -> list[tuple[str, str]]:
    """A failure's trailers on a unary call (its code and message are the call's status)."""
    trailers = [(ERROR_TYPE, error.type)] if error.type else []
    if error.has_index:
        trailers.append((ERROR_INDEX, str(error.index)))
    return trailers


def error_from_status(code: str, details: str, trailers: Iterable) -> pb.BatchError:
    """A unary call's failure (status code name, details, trailers) as the BatchError a stream gives."""
    md = dict(trailers or ())
    index = md.get(ERROR_INDEX)
    return batch_error(code, md.get(ERROR_TYPE, ""), details or "",
                       int(index) if index is not None and index.isdigit() else None)


# ---------------------------------------------------------------- chunked tensors

def chunks_of(array: numpy.ndarray, first: pb.TensorChunk) -> Iterator[pb.TensorChunk]:
    """A host array as TensorChunk messages: ``first`` (its id or flags set by the caller) gains the
    dtype, shape and first CHUNK_BYTES of data; the rest follow CHUNK_BYTES each."""
    if not array.flags.c_contiguous:
        array = numpy.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    data = memoryview(array).cast("B") if array.size else memoryview(b"")
    first.dtype = array.dtype.name
    del first.shape[:]
    first.shape.extend(array.shape)
    first.data = bytes(data[:CHUNK_BYTES])
    yield first
    for start in range(CHUNK_BYTES, len(data), CHUNK_BYTES):
        yield pb.TensorChunk(data=bytes(data[start:start + CHUNK_BYTES]))


def join_chunks(first: pb.TensorChunk, rest: Iterable, what: str = "tensor") -> numpy.ndarray:
    """The array a chunk stream carries, checked against its header (dtype and shape from the
    wire are validated; the data must be exactly what they need). The buffer grows as data
    arrives: a header alone reserves nothing."""
    dt, shape, nbytes = check_header(first.dtype, first.shape)
    buf = bytearray()
    for chunk in _chain(first, rest):
        if len(buf) + len(chunk.data) > nbytes:
            raise ValueError(f"upload of {what} sent more than the {nbytes} bytes its dtype and shape need")
        buf += chunk.data
    if len(buf) != nbytes:
        raise ValueError(f"upload of {what} ended after {len(buf)} of {nbytes} bytes")
    array = numpy.frombuffer(buf, dtype=dt).reshape(shape)  # writable: the engine writes in place
    return array if dt.isnative else array.astype(dt.newbyteorder("="))


def _chain(first, rest):
    yield first
    yield from rest
