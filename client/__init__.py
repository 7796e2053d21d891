"""remote_autograd: torch's autograd API, computed by a remote server.

    import remote_autograd as ra
    t = ra.connect("localhost:50051")      # instead of: import torch as t
"""
from __future__ import annotations

from importlib import metadata as _metadata

from .engine.dtypes import dtype
from .engine.size import Size
from .errors import RemoteError, ServerUnavailable, SessionLost
from .session import Session
from .tensor import Tensor
from .watch import GradientEvent, watch

try:
    __version__ = _metadata.version("remote-autograd")
except _metadata.PackageNotFoundError:  # run from a checkout that was not installed
    __version__ = "0+unknown"


def connect(address: str = "localhost:50051", **kwargs) -> Session:
    """Open a session on the server at ``address``; the session reads like the ``torch`` module."""
    return Session(address, **kwargs)


__all__ = ["connect", "Session", "Tensor", "Size", "dtype", "watch", "GradientEvent",
           "RemoteError", "ServerUnavailable", "SessionLost"]
