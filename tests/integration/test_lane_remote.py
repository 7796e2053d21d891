"""The direct lane: a session's batches on a plain TCP connection beside gRPC (server/lane.py,
client/lane.py; the protocol is in protos/autograd.proto at SessionInfo.direct_port)."""
from __future__ import annotations

import os
import select
import socket
import struct
import threading

import numpy as np
import pytest
import remote_autograd as ra
import torch
from remote_autograd.lane import Lane, lane_host, open_lane
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.lane import MAGIC, key_of, proof, read_frame, write_frame
from remote_helpers import RawStub, fetch_command, running_server


def _program(lib):
    x = lib.tensor([0.5, -1.0, 2.0, 3.0], requires_grad=True)
    y = x
    for k in range(20):
        y = (y * 1.01 + 0.1).sin() if k % 2 else y.exp() * 0.5
    y.sum().backward()
    return [y.tolist(), x.grad.tolist()]


def _lane_port(address: str) -> int:
    with ra.connect(address, direct=True) as t:
        return t.wire.lane_port


def _connect_raw(address: str):
    host = address.rsplit(":", 1)[0]
    return socket.create_connection((host, _lane_port(address)), timeout=10)


def _hello(sock, session_id: str, nonce: bytes = b"n" * 16) -> pb.LaneWelcome:
    sock.sendall(MAGIC)
    write_frame(sock, pb.LaneHello(session_id=session_id, nonce=nonce).SerializeToString())
    return pb.LaneWelcome.FromString(read_frame(sock, 4096))


def _closed_by_peer(sock) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("send_ahead", [0, 1, 4])
def test_batches_ride_the_lane_and_match_torch(address, send_ahead):
    with ra.connect(address, send_ahead=send_ahead) as t:
        got = _program(t)
        assert isinstance(t.wire.stream, Lane)
    want = _program(torch)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_sending_ahead_is_on_by_default_on_the_lane_and_a_choice_is_kept(address, monkeypatch):
    monkeypatch.delenv("REMOTE_AUTOGRAD_SEND_AHEAD", raising=False)
    with ra.connect(address) as t, ra.connect(address, send_ahead=0) as off:
        assert t.wire.send_ahead == ra.session.LANE_SEND_AHEAD > 0 and off.wire.send_ahead == 0
        x = t.ones(3, requires_grad=True)
        y = x
        for _ in range(3 * ra.session.LANE_SEND_AHEAD):
            y = y * 1.01
        assert t.wire.in_flight >= 2  # batches went out before the sync point
        y.sum().backward()
        assert x.grad.tolist() == pytest.approx([1.01 ** (3 * ra.session.LANE_SEND_AHEAD)] * 3, rel=1e-5)
        assert isinstance(t.wire.stream, Lane)


def test_direct_false_and_the_environment_keep_batches_on_grpc(address, monkeypatch):
    with ra.connect(address, direct=False) as t:
        assert (t.ones(2) * 2).tolist() == [2.0, 2.0]
        assert t.wire.lane_port == 0 and not isinstance(t.wire.stream, Lane)
        assert t.wire.send_ahead == ra.session.SEND_AHEAD  # sending ahead on gRPC did not pay
    monkeypatch.setenv("REMOTE_AUTOGRAD_DIRECT", "0")
    with ra.connect(address) as t:
        assert (t.ones(2) * 3).tolist() == [3.0, 3.0]
        assert not isinstance(t.wire.stream, Lane)


@pytest.mark.parametrize("send_ahead", [0, 1])
def test_a_deferred_error_on_the_lane_names_its_op_and_the_session_goes_on(address, send_ahead):
    with ra.connect(address, send_ahead=send_ahead) as t:
        x = t.ones(3, requires_grad=True)
        y = x * 2
        bad = t.nn.functional.nll_loss(t.ones(2, 3), t.tensor([0, 5]))  # the target is out of range
        z = y + 1
        with pytest.raises(IndexError, match="out of bounds") as info:
            z.tolist()
        assert "nll_loss" in "".join(getattr(info.value, "__notes__", []))
        assert isinstance(t.wire.stream, Lane)
        del bad
        assert (y * 3).tolist() == [6.0] * 3
        (x * 4).sum().backward()
        assert x.grad.tolist() == [4.0] * 3


def test_a_server_without_a_lane_offers_none(address):
    with running_server("--direct-port", "-1") as server, ra.connect(server.address) as t:
        assert t.wire.lane_port == 0
        assert (t.ones(2) + 1).tolist() == [2.0, 2.0]
        assert t.wire.stream is not None and not isinstance(t.wire.stream, Lane)


def test_an_unreachable_lane_falls_back_to_the_grpc_stream(address):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    with ra.connect(address) as t:
        t.wire.lane_port = port
        assert (t.ones(2) * 5).tolist() == [5.0, 5.0]
        assert t.wire.lane_port == 0 and not isinstance(t.wire.stream, Lane)
        assert t.wire.send_ahead == ra.session.SEND_AHEAD  # the default follows the transport
        assert (t.ones(2) * 6).tolist() == [6.0, 6.0]


def test_a_peer_that_cannot_prove_the_session_gets_no_batch_and_no_token(address):
    """Whatever listens where the client looks for the lane must prove that it holds the session
    before a batch is sent: a stranger gets neither the user's data nor the token."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def impostor():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            received.extend(conn.recv(4096))
            write_frame(conn, pb.LaneWelcome(nonce=b"x" * 16, proof=b"y" * 32).SerializeToString())
            try:
                while chunk := conn.recv(4096):
                    received.extend(chunk)
            except OSError:
                pass
    thread = threading.Thread(target=impostor)
    thread.start()
    try:
        with ra.connect(address) as t:
            t.wire.lane_port = listener.getsockname()[1]
            assert (t.tensor([1.0, 2.0]) * 2).tolist() == [2.0, 4.0]  # served by the gRPC stream
            assert not isinstance(t.wire.stream, Lane)
            token = t.token
        thread.join(10)
    finally:
        listener.close()
    assert received.startswith(MAGIC)
    assert token.encode() not in received and key_of(token) not in received
    assert len(received) < 100  # the magic and the hello: nothing after the failed proof


def test_the_handshake_refuses_strangers_and_the_server_keeps_serving(address):
    with ra.connect(address) as t:
        x = t.ones(2, requires_grad=True)
        assert (x * 2).tolist() == [2.0, 2.0]
        # not the protocol at all
        with _connect_raw(address) as s:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert _closed_by_peer(s)
        # a handshake frame far over its bound: closed without reading it
        with _connect_raw(address) as s:
            s.sendall(MAGIC + struct.pack("<I", 1 << 30))
            assert _closed_by_peer(s)
        # garbage where the hello should be
        with _connect_raw(address) as s:
            s.sendall(MAGIC + struct.pack("<I", 5) + b"\xff\xff\xff\xff\xff")
            assert _closed_by_peer(s)
        # an unknown session
        with _connect_raw(address) as s:
            welcome = _hello(s, "0" * 32)
            assert "unknown session" in welcome.error and not welcome.proof
            assert _closed_by_peer(s)
        # the right session, a wrong proof
        with _connect_raw(address) as s:
            welcome = _hello(s, t.session_id)
            assert not welcome.error and len(welcome.nonce) == 16
            write_frame(s, pb.LaneProof(proof=b"z" * 32).SerializeToString())
            assert pb.LaneWelcome.FromString(read_frame(s, 4096)).error == "unknown session or bad token"
            assert _closed_by_peer(s)
        # a nonce of the wrong size
        with _connect_raw(address) as s:
            assert _hello(s, t.session_id, nonce=b"short").error
        # the session and its lane are untouched
        (x * 3).sum().backward()
        assert x.grad.tolist() == [3.0, 3.0]
        assert isinstance(t.wire.stream, Lane)


def test_a_raw_lane_speaks_the_documented_protocol(address):
    """What another language's client would do: prove the token, send Batch frames, read
    BatchResult frames; a frame that is not a Batch is answered with an error, and the lane goes on."""
    with ra.connect(address) as t:
        sid, key = t.session_id, key_of(t.token)
        with _connect_raw(address) as s:
            nonce = os.urandom(16)
            welcome = _hello(s, sid, nonce)
            assert welcome.proof == proof(key, b"server", nonce, welcome.nonce)
            write_frame(s, pb.LaneProof(proof=proof(key, b"client", welcome.nonce, nonce)).SerializeToString())
            assert pb.LaneWelcome.FromString(read_frame(s, 4096)) == pb.LaneWelcome()
            make = pb.Command(kind=pb.Kind.FACTORY, name="ones", outputs=[10 ** 6])
            make.args.add().list.items.add().i = 3
            fetch = pb.Command(kind=pb.Kind.FETCH)
            fetch.args.add().ref = 10 ** 6
            write_frame(s, pb.Batch(commands=[make, fetch]).SerializeToString())
            reply = pb.BatchResult.FromString(read_frame(s, 1 << 20))
            assert not reply.HasField("error") and list(reply.results[1].value.tensor.shape) == [3]
            write_frame(s, b"\xff\xff\xff")
            reply = pb.BatchResult.FromString(read_frame(s, 1 << 20))
            assert reply.error.type == "ValueError" and "not a Batch" in reply.error.message
            write_frame(s, pb.Batch(commands=[fetch]).SerializeToString())
            assert not pb.BatchResult.FromString(read_frame(s, 1 << 20)).HasField("error")
        assert (t.ones(2) * 2).tolist() == [2.0, 2.0]


def _proven_raw_lane(address, t):
    s = _connect_raw(address)
    key, nonce = key_of(t.token), os.urandom(16)
    welcome = _hello(s, t.session_id, nonce)
    write_frame(s, pb.LaneProof(proof=proof(key, b"client", welcome.nonce, nonce)).SerializeToString())
    assert pb.LaneWelcome.FromString(read_frame(s, 4096)) == pb.LaneWelcome()
    return s


@pytest.mark.parametrize("batches", [2, 7, 20])
def test_batches_sent_back_to_back_are_answered_in_order_even_after_the_client_ends_its_side(
        address, batches):
    """The server writes the answers of batches that came while it ran others together: every
    batch still gets its answer, in order, also when the client shuts its side after sending."""
    with ra.connect(address) as t:
        with _proven_raw_lane(address, t) as s:
            make = pb.Command(kind=pb.Kind.FACTORY, name="full", outputs=[10 ** 6])
            make.args.add().list.items.add().i = 2
            make.args.add().f = 1.0
            frames = [pb.Batch(commands=[make]).SerializeToString()]
            for k in range(1, batches):
                add = pb.Command(kind=pb.Kind.CALL, name="add", outputs=[10 ** 6 + k])
                add.args.add().ref = 10 ** 6 + k - 1
                add.args.add().f = 1.0
                frames.append(pb.Batch(commands=[add]).SerializeToString())
            fetch = pb.Command(kind=pb.Kind.FETCH)
            fetch.args.add().ref = 10 ** 6 + batches - 1
            frames.append(pb.Batch(commands=[fetch]).SerializeToString())
            s.sendall(b"".join(struct.pack("<I", len(f)) + f for f in frames))
            s.shutdown(socket.SHUT_WR)
            replies = [pb.BatchResult.FromString(read_frame(s, 1 << 20)) for _ in frames]
            assert not any(r.HasField("error") for r in replies)
            assert [len(r.results) for r in replies] == [1] * len(frames)
            value = replies[-1].results[0].value.tensor
            assert np.frombuffer(value.data, dtype=np.float32).tolist() == [float(batches)] * 2
            assert read_frame(s, 1 << 20) is None  # and then the server ends the lane
        assert (t.ones(2) * 2).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("awaited", [True, False])
def test_an_awaited_answer_is_written_at_once_while_later_batches_run(address, awaited):
    """A batch the client says it waits for (Batch.awaited: an early answer) is answered as soon as
    it has run, though the batch after it already waits; one not so marked is held and goes out
    with the later answers (the contrast shows the test can see the difference)."""
    with ra.connect(address) as t:
        with _proven_raw_lane(address, t) as s:
            big, small = 10 ** 6, 10 ** 6 + 1
            make = pb.Command(kind=pb.Kind.FACTORY, name="ones", outputs=[big])
            make.args.add().list.items.extend([pb.Value(i=700), pb.Value(i=700)])
            make_small = pb.Command(kind=pb.Kind.FACTORY, name="ones", outputs=[small])
            make_small.args.add().list.items.add().i = 2
            write_frame(s, pb.Batch(commands=[make, make_small]).SerializeToString())
            assert not pb.BatchResult.FromString(read_frame(s, 1 << 20)).HasField("error")
            slow = []  # ~0.1-0.5 s of matrix products: the batch that runs after the awaited one
            for k in range(30):
                mm = pb.Command(kind=pb.Kind.CALL, name="mm", outputs=[big + 2 + k])
                mm.args.add().ref = big
                mm.args.add().ref = big
                slow.append(mm)
            frames = [pb.Batch(commands=[fetch_command(small)], awaited=awaited).SerializeToString(),
                      pb.Batch(commands=slow).SerializeToString()]
            s.sendall(b"".join(struct.pack("<I", len(f)) + f for f in frames))  # both wait as the first runs
            first = pb.BatchResult.FromString(read_frame(s, 1 << 20))
            assert np.frombuffer(first.results[0].value.tensor.data, dtype=np.float32).tolist() == [1.0, 1.0]
            # the second's answer: not there yet when the first was written at once, else right behind it
            assert bool(select.select([s], [], [], 0)[0]) is not awaited
            second = pb.BatchResult.FromString(read_frame(s, 1 << 20))
            assert not second.HasField("error") and len(second.results) == len(slow)
        assert (t.ones(2) * 2).tolist() == [2.0, 2.0]


def test_closing_the_session_elsewhere_ends_its_lane(address):
    t = ra.connect(address)
    assert (t.ones(2) * 2).tolist() == [2.0, 2.0]
    lane = t.wire.stream
    assert isinstance(lane, Lane)
    other = RawStub(address, t.session_id, t.token)  # another client holding the session's token
    try:
        other.stub.CloseSession(pb.Empty(), metadata=other.md, timeout=5)
    finally:
        other.close()
    with pytest.raises(ra.SessionLost):
        (t.ones(2) * 3).tolist()
    assert lane.done()
    t.close()


def test_the_lane_counts_against_the_open_stream_limit(address):
    with running_server("--max-streams", "1") as server:
        with ra.connect(server.address) as a, ra.connect(server.address) as b:
            assert (a.ones(2) * 2).tolist() == [2.0, 2.0]
            assert isinstance(a.wire.stream, Lane)
            assert (b.ones(2) * 3).tolist() == [3.0, 3.0]  # refused a lane and a stream: unary calls
            assert b.wire.lane_port == 0 and b.wire.kind == "unary"
            assert (a.ones(2) * 4).tolist() == [4.0, 4.0]


def test_a_lane_the_server_ended_while_idle_is_replaced(address):
    with ra.connect(address) as t:
        x = t.ones(2, requires_grad=True)
        assert (x * 2).tolist() == [2.0, 2.0]
        first = t.wire.stream
        first.sock.shutdown(socket.SHUT_RDWR)  # as the server's side ending would look from here
        (x * 3).sum().backward()
        assert x.grad.tolist() == [3.0, 3.0]
        assert t.wire.stream is not first


@pytest.mark.parametrize("address, host", [
    ("localhost:50051", "localhost"), ("127.0.0.1:1", "127.0.0.1"), ("[::1]:50051", "::1"),
    ("dns:///example.org:443", "example.org"), ("ipv4:10.0.0.1:80", "10.0.0.1"),
    ("unix:/tmp/sock", None), ("ipv4:10.0.0.1:80,10.0.0.2:80", None), ("localhost", None)])
def test_the_lane_is_looked_for_on_the_host_the_client_reached(address, host):
    assert lane_host(address) == host


def test_open_lane_needs_a_port_and_a_host(address):
    assert open_lane("unix:/tmp/x", 1234, "0" * 32, "token") is None
    assert open_lane(address, 0, "0" * 32, "token") is None
