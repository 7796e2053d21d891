"""Batches written by hand, as a client would send them, and a session to run them on (no gRPC)."""
from __future__ import annotations

import numpy
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.codec import KIND as K
from remote_autograd.protos.codec import decode_array, encode_array, encode_value
from remote_autograd.server import batches
from remote_autograd.server.registry import Limits, Registry


class Ref:
    """A tensor id as a command's argument (a plain int is a number)."""

    def __init__(self, tid: int) -> None:
        self.tid = tid


def _ref_of(value):
    return value.tid if isinstance(value, Ref) else None


def new_session(**limits):
    return Registry(Limits(**limits)).create()


def command(kind: int, name: str = "", args=(), kwargs=None, outputs=(), describe: bool = False, **fields):
    cmd = pb.Command(kind=kind, name=name, outputs=outputs, describe=describe, **fields)
    for a in args:
        encode_value(a, cmd.args.add(), _ref_of)
    for k, v in (kwargs or {}).items():
        encode_value(v, cmd.kwargs[k], _ref_of)
    return cmd


def upload(tid: int, array, requires_grad: bool = False, describe: bool = False) -> pb.Command:
    cmd = pb.Command(kind=K.UPLOAD, outputs=(tid,), describe=describe)
    encode_array(numpy.asarray(array), cmd.args.add().tensor)
    if requires_grad:
        encode_value(True, cmd.kwargs["requires_grad"])
    return cmd


def call(name: str, *inputs: int, out: int, describe: bool = False, **params) -> pb.Command:
    return command(K.CALL, name, [Ref(i) for i in inputs], params, (out,), describe)


def batch(*commands, release=(), seq: int = 0, resume: bool = False) -> pb.Batch:
    return pb.Batch(commands=commands, release=release, seq=seq, resume=resume)


def run(session, *commands, **fields) -> pb.BatchResult:
    """The data plane's answer to a batch of these commands."""
    return batches.answer(session, batch(*commands, **fields))


def value(session, tid: int) -> numpy.ndarray:
    reply = run(session, command(K.FETCH, args=(Ref(tid),)))
    assert not reply.HasField("error"), reply.error
    return decode_array(reply.results[0].value.tensor)
