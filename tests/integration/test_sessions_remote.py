"""Sessions: isolation, closing, releasing dropped tensors, surviving a killed client, large tensors,
and a clean stop on SIGTERM."""
from __future__ import annotations

import gc
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time

import grpc
import numpy as np
import pytest
import remote_autograd as ra
from grpc_health.v1 import health_pb2, health_pb2_grpc
from remote_autograd.protos import autograd_pb2 as pb
from remote_helpers import RawStub, fetch_command, rpc_error, running_server


def test_two_sessions_are_isolated(address, raw, session_mode):
    with ra.connect(address) as a, ra.connect(address) as b:
        xa = a.tensor([1.0, 2.0], requires_grad=True)
        ya = xa * 3
        a.synchronize()  # lazy: ya exists on the server now, so the checks below mean something
        # b's token does not open a's session, nor the other way round
        for session_id, token in ((a.session_id, b.token), (b.session_id, a.token)):
            err = rpc_error(raw(session_id=session_id, token=token).execute, fetch_command(xa.remote_id))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        # a's ids mean nothing in b, even though b may name the same numbers
        err = rpc_error(raw(b).execute, fetch_command(ya.remote_id))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        # a proxy of a passed to b: a clear error before anything is sent, for ops and for autograd
        xb = b.ones(2)
        for misuse in (lambda: xb + xa, lambda: b.cat([xb, xa]), lambda: b.autograd.grad(ya.sum(), xa),
                       lambda: b.autograd.backward([ya], [xb])):
            with pytest.raises(RuntimeError, match="another session"):
                misuse()
        # grad mode is per session
        with a.no_grad():
            assert not (xa * 2).requires_grad
            assert (b.ones(1, requires_grad=True) * 2).requires_grad
        assert ya.tolist() == [3.0, 6.0] and (xb + 1).tolist() == [2.0, 2.0]


def test_seeded_sessions_do_not_disturb_each_other(address, session_mode):
    with ra.connect(address) as a, ra.connect(address) as b:
        a.manual_seed(5)
        b.manual_seed(5)
        b.rand(3)  # advances b's generator only
        first_a = a.rand(3).tolist()
        b.manual_seed(5)
        assert b.rand(3).tolist() == first_a


def test_with_block_closes_the_session(address, raw, session_mode):
    with ra.connect(address) as t:
        x = t.ones(2)
        session_id, token, tid = t.session_id, t.token, x.remote_id
        assert x.tolist() == [1.0, 1.0]
    err = rpc_error(raw(session_id=session_id, token=token).execute, fetch_command(tid))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # the server no longer knows it
    with pytest.raises(ra.RemoteError, match="closed"):
        t.ones(2)
    t.close()  # closing twice is harmless


def test_a_lost_session_raises_session_lost(address, session_mode):
    t = ra.connect(address)
    other = RawStub(address, t.session_id, t.token)
    try:
        other.stub.CloseSession(pb.Empty(), metadata=other.md, timeout=5)  # closed behind the SDK's back
    finally:
        other.close()
    with pytest.raises(ra.SessionLost):
        t.ones(2)
        t.synchronize()  # lazy: only the server can tell, when the command reaches it
    t.close()


def test_dropped_tensor_is_released_on_the_server(t, raw):
    x = t.ones(2)
    tid = x.remote_id
    t.synchronize()  # lazy: the factory is queued until a sync point
    assert raw(t).execute(fetch_command(tid)).results[0].value.tensor.shape == [2]
    del x
    gc.collect()
    t.synchronize()  # sends the pending release
    err = rpc_error(raw(t).execute, fetch_command(tid))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_a_loop_holds_no_more_than_it_keeps(session_mode):
    # 6 live tensors at most: every temporary of the loop must be released as the user drops it
    with running_server("--max-tensors", "12") as server, ra.connect(server.address) as t:
        w = t.ones(3, requires_grad=True)
        for i in range(150):
            loss = ((w * i) ** 2).sum()
            loss.backward()
            assert w.grad[0].item() == pytest.approx(sum(2 * k * k for k in range(i + 1)))
        seen = []
        h = w.register_hook(lambda g: seen.append(g.sum().item()))  # hook gradients are released too
        for _ in range(30):
            (w * 2).sum().backward()
        h.remove()
        assert seen == [6.0] * 30


KILLED_CLIENT = textwrap.dedent("""
    import sys, time
    import remote_autograd as ra
    t = ra.connect(sys.argv[1])
    x = t.ones(3, requires_grad=True)
    y = x * 2
    def hook(grad):
        print("in hook", t.session_id, t.token, flush=True)
        time.sleep(600)
    y.register_hook(hook)
    y.sum().backward()
""")


def test_client_killed_in_a_hook_leaves_the_server_healthy(address, t):
    child = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, address], stdout=subprocess.PIPE, text=True)
    try:
        ready = selectors.DefaultSelector()
        ready.register(child.stdout, selectors.EVENT_READ)
        assert ready.select(30), "the client did not reach its hook in 30 s"
        line = child.stdout.readline()
        assert line.startswith("in hook"), f"the client did not reach its hook: {line!r}"
        _, _, session_id, token = line.split()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()

    channel = grpc.insecure_channel(address)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "remote_autograd.v1.RemoteAutograd"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()
    # other sessions are served, hooks included
    x = t.ones(2, requires_grad=True)
    seen = []
    y = x * 4
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.sum().backward()
    assert seen == [[1.0, 1.0]] and x.grad.tolist() == [4.0, 4.0]
    # the dead client's backward was abandoned, not left holding its session: it answers at once
    orphan = RawStub(address, session_id, token)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                orphan.execute(pb.Command(kind=pb.Kind.SET_GRAD_MODE, args=[pb.Value(b=True)]))
                break
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() < deadline, e
    finally:
        orphan.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_64_mib_round_trip_is_exact(t, raw):
    rng = np.random.default_rng(64)
    host = rng.standard_normal(16 << 20, dtype=np.float32).reshape(4096, 4096)  # 64 MiB
    x = t.tensor(host)
    assert tuple(x.shape) == (4096, 4096) and repr(x.dtype) == "torch.float32"
    back = x.numpy()
    assert back.tobytes() == host.tobytes()
    # the download came in chunks of the stream, not as one message
    chunks = list(raw(t).stub.Download(pb.DownloadRequest(id=x.remote_id), metadata=raw(t).md, timeout=60))
    assert len(chunks) > 1 and sum(len(c.data) for c in chunks) == host.nbytes
    # a computed result of the same size comes back exactly too
    doubled = (x * 2).numpy()
    assert doubled.tobytes() == (host * 2).tobytes()
    # and it can require grad: the backward's 64 MiB gradient downloads as well
    w = t.tensor(host, requires_grad=True)
    (w * 3).sum().backward()
    assert np.array_equal(w.grad.numpy(), np.full_like(host, 3))


def test_server_stops_cleanly_on_sigterm_with_streams_open(session_mode):
    with running_server() as server:
        t = ra.connect(server.address)
        watcher = ra.watch(server.address, t.session_id, t.token)
        x = t.ones(2, requires_grad=True)
        x.register_hook(lambda g: None)  # the controller stream is open too
        (x * 2).sum().backward()
        ended = threading.Event()

        def consume():
            try:
                for _ in watcher:
                    pass
            except ra.RemoteError:
                pass  # the server going away ends the watch
            ended.set()

        threading.Thread(target=consume, daemon=True).start()
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        assert time.monotonic() - start < 5  # open streams do not hold the stop for the 10 s grace
        assert ended.wait(10), "the watch did not end when the server stopped"
        with pytest.raises(ra.ServerUnavailable):
            t.ones(2)
            t.synchronize()  # lazy: the queued factory finds no server at the sync point
        t.close()
        assert server.read_log().rstrip().endswith("stopped")


def test_a_session_lost_while_its_batch_stream_is_open_raises_session_lost(address, session_mode):
    t = ra.connect(address)
    assert (t.ones(2) * 2).tolist() == [2.0, 2.0]  # the batch stream is open now
    other = RawStub(address, t.session_id, t.token)
    try:
        other.stub.CloseSession(pb.Empty(), metadata=other.md, timeout=5)  # the server cancels the stream
    finally:
        other.close()
    with pytest.raises(ra.SessionLost):
        t.ones(2)
        t.synchronize()
    t.close()


def test_a_batch_stream_ended_while_idle_is_opened_again(t):
    # a proxy's idle timeout (or any middlebox) may end the session's batch stream between two
    # sync points: the next batch opens a new one instead of failing
    x = t.ones(2, requires_grad=True)
    assert (x * 2).tolist() == [2.0, 2.0]
    assert t.wire.stream  # the batch stream the sync point opened
    t.wire.stream.cancel()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_nodes_the_server_names_never_take_an_id_the_client_named(t):
    # a value-dependent op (a boolean mask) is described by the server, which names its node; those
    # names must not collide with the ids the client gives the nodes it infers itself
    import torch

    def program(ns):
        x = ns.tensor([1.0, -2.0, 3.0, -4.0], requires_grad=True)
        ys, zs = [], []
        for k in range(6):
            ys.append((x * (k + 1)).exp())  # nodes the client names
            zs.append(ys[-1][ys[-1] > 1.0])  # nodes the server names
        names = [[type(n).__name__ if n is not None else None for n, _ in z.grad_fn.next_functions] +
                 [type(z.grad_fn.next_functions[0][0].next_functions[0][0]).__name__] for z in zs]
        # calling a node the client named runs that very node on the server
        applied = [y.grad_fn(ns.ones(4)).tolist() for y in ys]
        return names, applied
    mine, theirs = program(t), program(torch)
    assert mine[0] == theirs[0]
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-6)


def test_an_answer_out_of_turn_breaks_the_stream_not_the_session(t, monkeypatch):
    # a gateway that lost its upstream can hand the stream an empty message before the status that
    # ends it: that is no batch's answer, so the batch is reported unavailable, never misread
    from remote_autograd.lane import Lane
    from remote_autograd.transport import GrpcStream
    assert (t.ones(2) * 2).tolist() == [2.0, 2.0]
    if t.wire.stream is None:
        pytest.skip("this mode has no batch stream")
    stream = type(t.wire.stream)
    assert stream in (Lane, GrpcStream)
    read = stream.__next__
    garbled = []

    def once_garbled(self):
        if not garbled:
            garbled.append(read(self))  # the real answer is read, and an empty message handed on
            return pb.BatchResult()  # zero results for a batch of several commands
        return read(self)
    monkeypatch.setattr(stream, "__next__", once_garbled)
    with pytest.raises(ra.ServerUnavailable, match="answered 0 results"):
        (t.ones(2) * 3).tolist()
    assert (t.ones(2) * 4).tolist() == [4.0, 4.0]  # a new stream, the session intact


def test_sigterm_delivered_to_any_thread_stops_the_server_within_a_second():
    # the kernel may hand a process's SIGTERM to any of its threads (here: one of gRPC's); the
    # server must still stop at once, not when its main thread next wakes (a 30 s snapshot tick)
    import os
    import signal
    import time

    import remote_helpers as rh
    server = rh.ServerProcess("--snapshot-interval", "30", "--session-ttl", "3600")
    try:
        with ra.connect(server.address) as t:
            assert (t.ones(2) * 2).tolist() == [2.0, 2.0]
        pid = server.proc.pid
        others = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
        assert others, "the server runs gRPC's threads besides its main one"
        start = time.monotonic()
        os.kill(others[-1], signal.SIGTERM)
        server.proc.wait(5)
        assert time.monotonic() - start < 3.0
        assert server.proc.returncode == 0
    finally:
        server.stop()
        server.cleanup()
