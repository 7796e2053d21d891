"""One table maps exceptions to gRPC status codes; one decorator applies it to every handler."""
from __future__ import annotations

import functools
import logging

import grpc

from ..protos import autograd_pb2 as pb
from ..protos.protocol import TORCH_ERROR_TYPES, batch_error, error_trailers

log = logging.getLogger("remote_autograd.server")


class Unauthenticated(Exception):  # noqa: N818  (named after the gRPC status)
    """Unknown session or wrong token (deliberately indistinguishable)."""


class UnknownTensor(LookupError):  # noqa: N818  (named after the gRPC status)
    """A command named a tensor id the session does not hold."""


class ResourceExhausted(Exception):  # noqa: N818  (named after the gRPC status)
    """A server or session limit was reached."""


class Skipped(Exception):  # noqa: N818  (a condition of the pipeline, not a torch error)
    """A numbered batch sent ahead after one that failed: nothing of it ran."""


class Cancelled(Exception):  # noqa: N818  (named after the gRPC status)
    """The call that brought the batch was cancelled, or its deadline passed: the rest is not run."""


class CommandError(Exception):
    """A command of a batch failed: carries its index and the original exception."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


STATUS = (
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (UnknownTensor, grpc.StatusCode.NOT_FOUND),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Skipped, grpc.StatusCode.ABORTED),
    (Cancelled, grpc.StatusCode.CANCELLED),
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
    # a request's sizes or nesting past what the process can hold: its own fault, not the server's
    (MemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RecursionError, grpc.StatusCode.INVALID_ARGUMENT),
    (ArithmeticError, grpc.StatusCode.INVALID_ARGUMENT),  # an overflow, a division by zero in a shape
    (IndexError, grpc.StatusCode.INVALID_ARGUMENT),
    (TypeError, grpc.StatusCode.INVALID_ARGUMENT),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
    (RuntimeError, grpc.StatusCode.FAILED_PRECONDITION),
)

def status_of(error: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def type_name(error: BaseException) -> str | None:
    """The torch exception type a client re-raises; None for the service's own conditions (an unknown
    session, a limit), which a client reports by their status code instead."""
    if isinstance(error, (Unauthenticated, ResourceExhausted, Skipped, Cancelled)):
        return None
    if isinstance(error, UnknownTensor):
        return "RuntimeError"
    for cls in type(error).__mro__:
        if cls.__name__ in TORCH_ERROR_TYPES:
            return cls.__name__
    return "RuntimeError"


def failure_of(failure: BaseException) -> pb.BatchError:
    """A failure as the protocol's BatchError: status name, torch type, message, failing command's index."""
    index = None
    if isinstance(failure, CommandError):
        index, failure = failure.index, failure.error
    code = status_of(failure)
    if code == grpc.StatusCode.INTERNAL:
        log.error("internal error", exc_info=failure)
    message = failure.args[0] if len(failure.args) == 1 and isinstance(failure.args[0], str) else str(failure)
    error = batch_error(code.name, type_name(failure), message or type(failure).__name__, index)
    drop_tracebacks(failure)
    return error


def drop_tracebacks(error: BaseException | None) -> None:
    """Cut a failure (and the failures it was raised from) from its traceback, once it is sent.
    A traceback holds the frames the failure passed through, and a frame that holds the failure
    (an ``except ... as`` name kept in another variable, say) makes a cycle: the failing call's
    request and arrays then lived until a full collection, which the server runs seldom."""
    todo, seen = [error], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        e.__traceback__ = None
        todo += (e.__cause__, e.__context__, e.error if isinstance(e, CommandError) else None)


def handle_errors(method):
    """Send a handler's failure as its call's status, with the torch exception type and the failing
    command's index in trailers. A failure is raised, or returned as a BatchResult's error (the data
    plane's answer): either way it is one BatchError, sent one way.

    ``context.abort`` is called outside the ``try`` so that its own exception is never swallowed.
    """
    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            reply = method(self, request, context)
            if reply.__class__ is not pb.BatchResult or not reply.HasField("error"):
                return reply
            error = reply.error
        except Exception as e:  # noqa: BLE001  (mapped to a status below, never swallowed)
            error = failure_of(e)
        reply = request = None  # not held by the frame of the abort's exception
        context.set_trailing_metadata(error_trailers(error))
        context.abort(grpc.StatusCode[error.code], error.message)
    return wrapper
