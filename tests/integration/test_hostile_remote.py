"""A hostile client on loopback: well-formed requests meant to exhaust the server. Each is refused
(naming the limit and the numbers), and a well-behaved session and the health check keep working."""
from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
import remote_autograd as ra
from grpc_health.v1 import health_pb2, health_pb2_grpc
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos import autograd_pb2_grpc as pb_grpc
from remote_autograd.protos.codec import decode_array, encode_array, encode_value
from remote_helpers import running_server

OPEN_TIMEOUT = 5.0  # seconds a Subscribe may take to answer (ready, or refused)


def _healthy(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _new_session(stub) -> tuple:
    info = stub.CreateSession(pb.CreateSessionRequest(client="hostile"), timeout=3)
    return (("x-session-id", info.session_id), ("x-session-token", info.token))


def _subscribe(stub, md, controller: bool = False):
    """(call, None) once the server said ready, or (None, the RpcError it was refused with)."""
    call = stub.Subscribe(pb.SubscribeRequest(controller=controller), metadata=md)
    first: list = []

    def read():
        try:
            first.append(next(call))
        except grpc.RpcError as e:
            first.append(e)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(OPEN_TIMEOUT)
    if not first:
        call.cancel()
        raise AssertionError("a Subscribe was neither answered nor refused: the server's threads are taken")
    if isinstance(first[0], grpc.RpcError):
        return None, first[0]
    assert first[0].WhichOneof("kind") == "ready"
    return call, None


def _well_behaved(address: str) -> None:
    with ra.connect(address) as t:
        x = t.ones(3, requires_grad=True)
        seen = []
        x.register_hook(lambda g: seen.append(g.tolist()))
        (x * 2).sum().backward()
        assert x.grad.tolist() == [2.0, 2.0, 2.0] and seen == [[2.0, 2.0, 2.0]]


def test_watch_streams_are_bounded_per_session_and_server_wide():
    # 64 workers (the default): 64 open Subscribe streams took every one of them
    with running_server("--workers", "64", "--max-watchers", "4", "--max-event-streams", "8") as server:
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.RemoteAutogradStub(channel)
        held = []
        try:
            md = _new_session(stub)
            refused = []
            for _ in range(64):
                call, error = _subscribe(stub, md)
                (held if call is not None else refused).append(call or error)
            assert len(held) == 4 and len(refused) == 60
            assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert "4 open watch streams" in refused[0].details() and "--max-watchers" in refused[0].details()
            assert _healthy(server.address)
            _well_behaved(server.address)  # its controller stream is one of the server's 8
            # more hostile sessions fill the server's event streams: refused, and the rest still works
            for _ in range(3):
                other = _new_session(stub)
                for _ in range(4):
                    call, error = _subscribe(stub, other)
                    if call is not None:
                        held.append(call)
            assert len(held) == 8
            _, error = _subscribe(stub, _new_session(stub), controller=True)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "8 open event streams" in error.details() and "--max-event-streams" in error.details()
            assert _healthy(server.address)
            with ra.connect(server.address) as t:  # no hooks: no event stream needed
                assert (t.ones(2) * 3).tolist() == [3.0, 3.0]
            # a stream given back is a place for another
            held.pop().cancel()
            deadline = time.monotonic() + 5
            fresh = _new_session(stub)
            while True:
                call, error = _subscribe(stub, fresh)
                if call is not None:
                    held.append(call)
                    break
                assert time.monotonic() < deadline, error.details()
                time.sleep(0.1)
        finally:
            for call in held:
                call.cancel()
            channel.close()


def test_numbered_batches_far_ahead_are_refused_and_block_no_one(address):
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.RemoteAutogradStub(channel)
    md = _new_session(stub)
    codes: list = []

    def far_ahead(k: int) -> None:
        try:
            stub.Execute(pb.Batch(seq=1000 + k), metadata=md, timeout=10)
            codes.append("OK")
        except grpc.RpcError as e:
            codes.append((e.code(), e.details()))
    callers = [threading.Thread(target=far_ahead, args=(k,)) for k in range(64)]
    t0 = time.monotonic()
    for c in callers:
        c.start()
    assert _healthy(address)
    _well_behaved(address)
    for c in callers:
        c.join(15)
    assert time.monotonic() - t0 < 5  # each waited up to 60 s for its predecessors
    assert len(codes) == 64 and {c[0] for c in codes} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert all("ahead of batch 1" in c[1] and "--seq-window" in c[1] for c in codes)
    assert stub.Execute(pb.Batch(seq=1), metadata=md, timeout=5) is not None  # the session goes on
    channel.close()


def _prepared_scale(stub, md) -> None:
    """Tensor 1 and prepared call 7: ``1 *= 1.0`` in place, a call of 4 ids."""
    up = pb.Command(kind=pb.Kind.UPLOAD, outputs=[1])
    encode_array(np.ones(4, dtype=np.float32), up.args.add().tensor)
    prep = pb.Command(kind=pb.Kind.PREPARE, name="mul", outputs=[7], inplace=True)
    prep.args.add().ref = 0
    prep.args.add().f = 1.0
    stub.Execute(pb.Batch(commands=[up, prep]), metadata=md, timeout=10)


def test_a_batch_of_too_many_commands_is_refused_before_it_runs(address):
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 1 << 30)])
    stub = pb_grpc.RemoteAutogradStub(channel)
    md = _new_session(stub)
    _prepared_scale(stub, md)
    fetch = pb.Command(kind=pb.Kind.FETCH)
    fetch.args.add().ref = 1
    for batch, count in ((pb.Batch(commands=[fetch] * 100_001), 100_001),
                         (pb.Batch(commands=[fetch, pb.Command(kind=pb.Kind.CALLS, calls=[7, 0, 0, 1] * 100_000)]),
                          100_001)):
        with pytest.raises(grpc.RpcError) as refused:
            stub.Execute(batch, metadata=md, timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"a batch of {count} commands" in refused.value.details()
        assert "(--max-commands) is 100000" in refused.value.details()
    ok = stub.Execute(pb.Batch(commands=[pb.Command(kind=pb.Kind.CALLS, calls=[7, 0, 0, 1] * 99_999), fetch]),
                      metadata=md, timeout=10)
    assert decode_array(ok.results[1].value.tensor).tolist() == [1.0] * 4
    channel.close()


def test_a_batch_whose_caller_gave_up_stops():
    calls = 3_000_000  # ~8 s of prepared calls on this machine
    with running_server("--max-commands", str(calls)) as server:
        channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 1 << 30)])
        stub = pb_grpc.RemoteAutogradStub(channel)
        md = _new_session(stub)
        _prepared_scale(stub, md)
        long = pb.Batch(commands=[pb.Command(kind=pb.Kind.CALLS, calls=[7, 0, 0, 1] * calls)])
        with pytest.raises(grpc.RpcError) as gave_up:
            stub.Execute(long, metadata=md, timeout=1.0)
        assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        t0 = time.monotonic()
        fetch = pb.Command(kind=pb.Kind.FETCH)
        fetch.args.add().ref = 1
        stub.Execute(pb.Batch(commands=[fetch]), metadata=md, timeout=30)  # waits for the session's lock
        assert time.monotonic() - t0 < 2.5  # the abandoned batch ran on for seconds
        channel.close()


def test_messages_are_bounded_and_large_tensors_still_travel_in_chunks():
    with running_server("--max-message-bytes", str(2 << 20)) as server:
        channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 1 << 30)])
        stub = pb_grpc.RemoteAutogradStub(channel)
        md = _new_session(stub)
        big = pb.Command(kind=pb.Kind.UPLOAD, outputs=[1])
        encode_array(np.ones(1 << 20, dtype=np.float32), big.args.add().tensor)  # 4 MiB in one message
        with pytest.raises(grpc.RpcError) as refused:
            stub.Execute(pb.Batch(commands=[big]), metadata=md, timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        channel.close()
        host = np.arange(3 << 20, dtype=np.float32)  # 12 MiB: Upload and Download in chunks
        with ra.connect(server.address) as t:
            assert np.array_equal((t.tensor(host) * 2).numpy(), host * 2)


def test_echo_without_a_session_is_bounded(address):
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 1 << 30),
                                                      ("grpc.max_receive_message_length", 1 << 30)])
    stub = pb_grpc.RemoteAutogradStub(channel)
    assert len(stub.Echo(pb.Blob(data=b"e" * (4 << 20)), timeout=10).data) == 4 << 20
    with pytest.raises(grpc.RpcError) as refused:
        stub.Echo(pb.Blob(data=b"e" * ((4 << 20) + 1)), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"an Echo of {(4 << 20) + 1} bytes; the limit (--max-echo-bytes) is {4 << 20}" in refused.value.details()
    channel.close()
    # benchmarks/remote_vs_local.py's transfer baseline: 64 MiB in one Echo, on a server that allows it
    with running_server("--max-echo-bytes", str(64 << 20)) as server:
        channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 1 << 30),
                                                                 ("grpc.max_receive_message_length", 1 << 30)])
        blob = pb.Blob(data=np.ones(16 << 20, dtype=np.float32).tobytes())
        assert pb_grpc.RemoteAutogradStub(channel).Echo(blob, timeout=30).data == blob.data
        channel.close()


def _command(kind: str, name: str = "", args=(), outputs=(9,), **kwargs) -> pb.Command:
    cmd = pb.Command(kind=pb.Kind.Value(kind), name=name, outputs=outputs)
    for a in args:
        encode_value(a, cmd.args.add(), lambda x: x.tid if isinstance(x, _Ref) else None)
    for k, v in kwargs.items():
        encode_value(v, cmd.kwargs[k])
    return cmd


class _Ref:
    def __init__(self, tid: int) -> None:
        self.tid = tid


def _nested(depth: int) -> bytes:
    """A Batch whose command's argument is a list nested ``depth`` deep, serialized."""
    batch = pb.Batch()
    cmd = batch.commands.add(kind=pb.Kind.CALL, name="sum", outputs=[9])
    cmd.args.add().ref = 1
    value = cmd.args.add()
    for _ in range(depth):
        value = value.list.items.add()
    value.i = 0
    return batch.SerializeToString()


HOSTILE = {
    "missing kwargs": _command("FUNCTION", args=[(_Ref(1),), (_Ref(1),)]),
    "a hook without its id": _command("REGISTER_HOOK", args=[_Ref(1)], outputs=()),
    "a string for a dim": _command("CALL", "sum", [_Ref(1), "x"]),
    "a tensor for a fill value": _command("FACTORY", "full", [(2,), _Ref(1)]),
    "select_backward of an empty shape": _command("CALL", "select_backward", [_Ref(1)], shape=(), dim=0, index=0),
    "a huge repeat": _command("CALL", "repeat", [_Ref(1)], repeats=(1 << 40, 1 << 40)),
    "a huge slice_backward": _command("CALL", "slice_backward", [_Ref(1)], shape=(1 << 62, 3), dim=0, start=0,
                                      stop=2, step=1),
    "a huge index_backward": _command("CALL", "index_backward", [_Ref(1)], shape=(1 << 40, 1 << 20), key=()),
    "a huge factory": _command("FACTORY", "zeros", [(1 << 31, 1 << 10)]),
    "a huge arange": _command("FACTORY", "arange", [0, 1e18]),
    "an upload of shape [2**62, 2**62]": pb.Command(kind=pb.Kind.UPLOAD, outputs=[9], args=[pb.Value(
        tensor=pb.TensorData(dtype="float32", shape=[1 << 62, 1 << 62]))]),
    "no arguments to fetch": _command("FETCH", outputs=()),
    "no arguments to backward": _command("BACKWARD", outputs=()),
    "a string seed": _command("MANUAL_SEED", args=["x"], outputs=()),
}


def test_hostile_but_well_formed_requests_are_refused_clearly_and_the_session_goes_on():
    # (the server's log is checked for tracebacks when it stops: running_server)
    with running_server("--max-elements", str(1 << 24)) as server:
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.RemoteAutogradStub(channel)
        md = _new_session(stub)
        up = pb.Command(kind=pb.Kind.UPLOAD, outputs=[1])
        encode_array(np.ones((2, 3), dtype=np.float32), up.args.add().tensor)
        stub.Execute(pb.Batch(commands=[up]), metadata=md, timeout=10)
        fetch = _command("FETCH", args=[_Ref(1)], outputs=())
        codes = {}
        for case, cmd in HOSTILE.items():
            with pytest.raises(grpc.RpcError) as refused:
                stub.Execute(pb.Batch(commands=[cmd]), metadata=md, timeout=10)
            codes[case] = refused.value.code()
            assert refused.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                            grpc.StatusCode.FAILED_PRECONDITION), (case, refused.value.details())
            assert refused.value.details(), case
            reply = stub.Execute(pb.Batch(commands=[fetch]), metadata=md, timeout=10)
            assert decode_array(reply.results[0].value.tensor).tolist() == [[1.0] * 3] * 2, case
        for case in ("a huge repeat", "a huge slice_backward", "a huge index_backward", "a huge factory",
                     "a huge arange", "an upload of shape [2**62, 2**62]"):
            assert codes[case] == grpc.StatusCode.RESOURCE_EXHAUSTED, case
        # a Value nested past protobuf's depth limit: the message does not parse
        raw = _nested(3000)
        execute = channel.unary_unary("/remote_autograd.v1.RemoteAutograd/Execute")
        with pytest.raises(grpc.RpcError) as refused:
            execute(raw, metadata=md, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "a Batch message that does not parse" in refused.value.details()
        stream = channel.stream_stream("/remote_autograd.v1.RemoteAutograd/ExecuteStream",
                                       response_deserializer=pb.BatchResult.FromString)
        answers = list(stream(iter([raw, pb.Batch(commands=[fetch]).SerializeToString()]), metadata=md, timeout=10))
        assert answers[0].error.code == "INVALID_ARGUMENT" and not answers[1].HasField("error")
        # an upload stream announcing 2**124 elements: refused before any data is kept
        chunk = pb.TensorChunk(id=9, dtype="float32", shape=[1 << 62, 1 << 62], data=b"\0" * 1024)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Upload(iter([chunk] * 4), metadata=md, timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "(--max-elements) is 16777216" in refused.value.details()
        channel.close()


if __name__ == "__main__":
    pytest.main([__file__, "-x", "-q"])
