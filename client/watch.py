"""Watch another process's session: its gradient events, live, without answering them."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy

from .errors import from_rpc_error
from .protos import autograd_pb2 as pb
from .protos import autograd_pb2_grpc as pb_grpc
from .protos.codec import decode_array
from .protos.protocol import session_metadata
from .tls import client_tls


@dataclass(frozen=True)
class GradientEvent:
    hook: int           # the hook id in the watched session
    grad: numpy.ndarray


def watch(address: str, session_id: str, token: str, *, tls: bool | None = None, root_certificates=None,
          client_cert=None, client_key=None) -> Iterator[GradientEvent]:
    """A GradientEvent each time a hook of the session fires; ends when the session closes.

    The subscription is in place when this returns: every hook that fires afterwards is seen.
    """
    # a watcher gets every gradient's values, however large: the SDK's message limits, not gRPC's 4 MiB
    options = [("grpc.max_receive_message_length", 1 << 30)]
    secure = client_tls(tls, root_certificates, client_cert, client_key)
    channel = (grpc.secure_channel(address, secure.grpc_credentials(), options=options) if secure
               else grpc.insecure_channel(address, options=options))
    stub = pb_grpc.RemoteAutogradStub(channel)
    md = session_metadata(session_id, token)
    stream = stub.Subscribe(pb.SubscribeRequest(controller=False), metadata=md)
    try:
        first = next(stream)  # the server's "ready": it now delivers every event to this stream
    except grpc.RpcError as e:
        channel.close()
        raise from_rpc_error(e, address) from None
    except StopIteration:
        channel.close()
        return iter(())
    if first.WhichOneof("kind") != "ready":
        channel.close()
        raise RuntimeError(f"the server opened a watch stream with {first.WhichOneof('kind')!r}, not 'ready'")
    return _events(channel, stream, address)


def _events(channel, stream, address: str) -> Iterator[GradientEvent]:
    try:
        for event in stream:
            kind = event.WhichOneof("kind")
            if kind == "hook":
                yield GradientEvent(event.hook.hook, decode_array(event.hook.grad.value))
            elif kind == "closed":
                return
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            raise from_rpc_error(e, address) from None
    finally:
        channel.close()
