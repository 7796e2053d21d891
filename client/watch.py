"""Watch another process's session: its gradient events, live, without answering them."""
from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy

from .protos import autograd_pb2 as pb
from .protos import autograd_pb2_grpc as pb_grpc
from .protos.codec import decode_array
from .errors import from_rpc_error


@dataclass(frozen=True)
class GradientEvent:
    hook: int           # the hook id in the watched session
    grad: numpy.ndarray


def watch(address: str, session_id: str, token: str):
    """Yield a GradientEvent each time a hook of the session fires; ends when the session closes."""
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.RemoteAutogradStub(channel)
    md = (("x-session-id", session_id), ("x-session-token", token))
    try:
        for event in stub.Subscribe(pb.SubscribeRequest(controller=False), metadata=md):
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
