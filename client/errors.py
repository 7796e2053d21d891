"""Exceptions of the SDK itself; errors of torch semantics arrive as torch's own types."""
from __future__ import annotations

import builtins

import grpc

from .protos.protocol import ERROR_TYPE, TORCH_ERROR_TYPES


class RemoteError(RuntimeError):
    """The server could not run a call for a reason that is not a torch error."""


class ServerUnavailable(RemoteError, ConnectionError):  # noqa: N818  (public API name)
    """The server (or the replica holding this session) cannot be reached."""


class SessionLost(RemoteError):  # noqa: N818  (public API name)
    """The server no longer knows this session (closed, expired, or its replica restarted)."""


# torch's exception types by the names the server sends (looked up, never evaluated)
_TORCH_TYPES = {name: getattr(builtins, name) for name in TORCH_ERROR_TYPES}


def from_rpc_error(err: grpc.RpcError, address: str) -> BaseException:
    """The exception a torch user expects for a failed call (looked up by name, never evaluated)."""
    md = dict(err.trailing_metadata() or ())
    return _exception(err.code(), md.get(ERROR_TYPE, ""), err.details() or "", address)


def from_batch_error(err, address: str) -> BaseException:
    """The same for a batch's BatchError (an answer on the batch stream)."""
    code = grpc.StatusCode.__members__.get(err.code, grpc.StatusCode.UNKNOWN)  # a name from the wire: looked up
    return _exception(code, err.type, err.message, address)


def _exception(code: grpc.StatusCode, type_name: str, details: str, address: str) -> BaseException:
    cls = _TORCH_TYPES.get(type_name)
    if cls is not None:
        return cls(details)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ServerUnavailable(f"remote-autograd server at {address} is unavailable ({code.name}): {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return SessionLost(f"the server at {address} does not know this session any more: {details}")
    return RemoteError(f"remote-autograd server at {address} failed ({code.name}): {details}")
