"""The server's limits and hardening against well-formed hostile requests, on the data plane (no gRPC)."""
from __future__ import annotations

import gc
import json
import logging
import select
import shutil
import socket
import threading
import time
import weakref

import numpy
import pytest
from batch_helpers import Ref, batch, call, command, new_session, run, upload
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.codec import KIND as K
from remote_autograd.protos.lane import MAGIC, NONCE_BYTES, key_of, proof, read_frame, write_frame
from remote_autograd.protos.protocol import SESSION_ID, SESSION_TOKEN
from remote_autograd.server import batches, commands, function_node, lane
from remote_autograd.server.registry import Limits, Registry
from remote_autograd.server.service import Servicer
from test_service import Aborted, Context


def test_a_numbered_batch_far_ahead_is_refused_at_once():
    s = new_session(seq_window=8)
    t0 = time.monotonic()
    refused = run(s, call("neg", 1, out=2), seq=10).error
    assert time.monotonic() - t0 < 1
    assert refused.code == "RESOURCE_EXHAUSTED"
    assert "batch 10 is 9 ahead of batch 1" in refused.message and "(--seq-window) is 8" in refused.message
    assert not run(s, upload(1, numpy.ones(2)), seq=1).HasField("error")  # nothing broke the session
    assert not run(s, call("neg", 1, out=2), seq=2).HasField("error")


def test_waiting_numbered_batches_are_bounded_per_session_and_wait_a_configured_time():
    s = new_session(seq_window=4, seq_wait=1.0)
    answers: list = []
    waiting = [threading.Thread(target=lambda k=k: answers.append(run(s, upload(10 + k, numpy.ones(1)), seq=2 + k)))
               for k in range(4)]
    for w in waiting:
        w.start()
    time.sleep(0.3)
    refused = run(s, upload(20, numpy.ones(1)), seq=3).error
    assert refused.code == "RESOURCE_EXHAUSTED"
    assert "4 batches of this session wait" in refused.message and "(--seq-window) is 4" in refused.message
    t0 = time.monotonic()
    for w in waiting:
        w.join(5)
    assert time.monotonic() - t0 < 2  # --seq-wait 1 s, not a minute
    errors = [a.error for a in answers]
    assert len(errors) == 4 and any("waited 1 s (--seq-wait) for batch 1" in e.message for e in errors)


def test_a_failed_batch_frees_its_arrays_without_a_collection(monkeypatch):
    # a failure's traceback holds the frames it passed through; one of them holding the failure
    # made a cycle, and the batch's arrays lived until a full collection
    arrays = []
    decode = commands.from_numpy
    monkeypatch.setattr(commands, "from_numpy", lambda a: arrays.append(weakref.ref(out := decode(a))) or out)
    s = new_session()
    failing = (
        command(K.FUNCTION, args=[(Ref(1),), (Ref(1),)], outputs=(2,)),  # its kwargs (a name) missing
        call("mm", 1, 1, out=2),  # a torch error
        command(K.CALL, "sum", [Ref(1), "x"], outputs=(2,)),  # a wrong argument type
    )
    for bad in failing:
        gc.collect()
        gc.disable()
        try:
            reply = run(s, upload(1, numpy.ones((300, 200))), bad, release=(1,))
            assert reply.HasField("error") and reply.error.code != "INTERNAL", reply.error
            assert arrays[-1]() is None, f"{reply.error.message}: its array lives on"
            servicer = Servicer(s_registry := Registry(Limits()))
            t = s_registry.create()
            context = Context(((SESSION_ID, t.id), (SESSION_TOKEN, t.token)))
            with pytest.raises(Aborted):
                servicer.Execute(batch(upload(1, numpy.ones((300, 200))), bad, release=(1,)), context)
            assert arrays[-1]() is None, f"{reply.error.message}: its array lives on after a unary call"
        finally:
            gc.enable()


def test_custom_function_names_do_not_grow_a_process_wide_table_without_bound():
    s = new_session()
    run(s, upload(1, numpy.ones(2), requires_grad=True), upload(2, numpy.ones(2)))
    names = 3 * function_node.MAX_CLASSES
    for k in range(names):
        reply = run(s, command(K.FUNCTION, args=[(Ref(1),), (Ref(2),)], kwargs={"name": f"Hostile{k}Backward"},
                               outputs=(10 + k,), node=(1 << 40) + k), release=(10 + k,))
        assert not reply.HasField("error"), reply.error
    assert len(function_node._classes) <= function_node.MAX_CLASSES
    reply = run(s, command(K.FUNCTION, args=[(Ref(1),), (Ref(2),)], kwargs={"name": "Hostile0Backward"},
                           outputs=(5,), node=1 << 41, describe=True))
    assert reply.results[0].outputs[0].grad_fn.name == "Hostile0Backward"  # made again when needed


def test_the_element_limit_is_checked_before_a_tensor_is_made():
    s = new_session(max_elements=6)
    fits = [command(K.FACTORY, "zeros", [2, 3], outputs=(1,)), command(K.FACTORY, "ones", [(2, 3)], outputs=(2,)),
            command(K.FACTORY, "full", [(6,), 1.5], outputs=(3,)),
            command(K.FACTORY, "arange", [0, 3, 0.5], outputs=(4,)),
            command(K.FACTORY, "randint", [0, 1 << 40, (3, 2)], outputs=(5,)), upload(6, numpy.ones(6)),
            command(K.CALL, "repeat", [Ref(1)], {"repeats": (1, 1)}, outputs=(7,))]
    reply = run(s, *fits)
    assert not reply.HasField("error"), reply.error
    over = [command(K.FACTORY, "zeros", [7], outputs=(10,)), command(K.FACTORY, "eye", [3], outputs=(10,)),
            command(K.FACTORY, "arange", [0, 3.5, 0.5], outputs=(10,)),
            command(K.FACTORY, "linspace", [0, 1, 7], outputs=(10,)),
            command(K.FACTORY, "randperm", [7], outputs=(10,)), upload(10, numpy.ones(7)),
            command(K.CALL, "repeat", [Ref(1)], {"repeats": (2, 1)}, outputs=(10,)),
            command(K.PREPARE, "repeat", [Ref(0)], {"repeats": (7,)}, outputs=(10,))]
    for cmd in over:
        refused = run(s, cmd).error
        assert refused.code == "RESOURCE_EXHAUSTED" and "(--max-elements) is 6" in refused.message, (cmd, refused)


def test_a_client_description_is_logged_on_one_line_and_cut(caplog):
    servicer = Servicer(Registry(Limits()))
    evil = "me\n2026-12-04 12:00:00 ERROR remote_autograd.server: forged\x1b[2J\r" + "x" * 100_000
    with caplog.at_level(logging.INFO, logger="remote_autograd.server"):
        servicer.CreateSession(pb.CreateSessionRequest(client=evil), Context())
    (line,) = [r.getMessage() for r in caplog.records if "created" in r.getMessage()]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "me\\n2026-12-04" in line and len(line) < 400 and f"({len(evil)} characters)" in line


def _lane_with_a_session():
    registry = Registry(Limits())
    session = registry.create()
    return lane.Lane("127.0.0.1", 0, registry, batches.answer), session


def _prove(port: int, session) -> pb.LaneWelcome:
    """A client's whole handshake on a new connection: the server's last welcome."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        nonce, key = b"c" * NONCE_BYTES, key_of(session.token)
        sock.sendall(MAGIC)
        write_frame(sock, pb.LaneHello(session_id=session.id, nonce=nonce).SerializeToString())
        welcome = pb.LaneWelcome.FromString(read_frame(sock, 4096))
        assert not welcome.error, welcome.error
        write_frame(sock, pb.LaneProof(proof=proof(key, b"client", welcome.nonce, nonce)).SerializeToString())
        return pb.LaneWelcome.FromString(read_frame(sock, 4096) or b"")


def test_idle_lane_connections_do_not_keep_a_client_from_its_lane():
    served, session = _lane_with_a_session()
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(2 * lane.MAX_HANDSHAKES)]
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        assert _prove(served.port, session).error == ""
        assert time.monotonic() - t0 < 2
    finally:
        for sock in idle:
            sock.close()
        served.stop()


def test_a_lane_handshake_has_a_deadline_in_all_not_per_read(monkeypatch):
    monkeypatch.setattr(lane, "HANDSHAKE_SECONDS", 1.0)
    served, session = _lane_with_a_session()
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            t0 = time.monotonic()
            closed = False
            for byte in MAGIC + b"\x10\x00\x00\x00" + b"\x00" * 16:  # a byte every 0.2 s: each read succeeds
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                ready, _, _ = select.select([sock], [], [], 0.2)
                if ready and sock.recv(1) == b"":
                    closed = True
                    break
            assert closed and time.monotonic() - t0 < 2
    finally:
        served.stop()


def test_restored_snapshots_are_checked_ids_and_count_against_the_session_limit(tmp_path):
    state = str(tmp_path)
    first = Registry(Limits(state_dir=state))
    made = []
    for k in range(3):
        s = first.create()
        run(s, upload(1, numpy.full(2, float(k))))
        first.snapshot()
        made.append(s.id)
        time.sleep(0.02)  # saved one after another
    # a snapshot under a name that is no session id, and one whose manifest names another directory
    shutil.copytree(tmp_path / made[0], tmp_path / "not-a-session")
    forged = "f" * 32
    shutil.copytree(tmp_path / made[0], tmp_path / forged)
    manifest = json.loads((tmp_path / forged / "manifest.json").read_text())
    manifest["id"] = "../../elsewhere"
    (tmp_path / forged / "manifest.json").write_text(json.dumps(manifest))
    assert sorted(Registry(Limits(state_dir=state)).sessions) == sorted(made)
    assert sorted(Registry(Limits(state_dir=state, max_sessions=2)).sessions) == sorted(made[1:])


def test_a_lane_batch_whose_client_left_stops():
    served, session = _lane_with_a_session()
    s = session
    run(s, upload(1, numpy.ones(4)), command(K.PREPARE, "mul", (Ref(0), 1.0), outputs=(7,), inplace=True))
    s.limits.max_commands = 10_000_000
    long = batch(command(K.CALLS, calls=[7, 0, 0, 1] * 2_000_000))  # seconds of prepared calls
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            nonce, key = b"c" * NONCE_BYTES, key_of(session.token)
            sock.sendall(MAGIC)
            write_frame(sock, pb.LaneHello(session_id=session.id, nonce=nonce).SerializeToString())
            welcome = pb.LaneWelcome.FromString(read_frame(sock, 4096))
            write_frame(sock, pb.LaneProof(proof=proof(key, b"client", welcome.nonce, nonce)).SerializeToString())
            assert not pb.LaneWelcome.FromString(read_frame(sock, 4096) or b"").error
            write_frame(sock, long.SerializeToString())
            time.sleep(0.5)  # it runs
        t0 = time.monotonic()
        assert not run(s, command(K.FETCH, args=(Ref(1),))).HasField("error")  # waits for the session's lock
        assert time.monotonic() - t0 < 1.5
    finally:
        served.stop()
