"""Fixtures: one live server process for the session (started as a user starts it), sessions on it."""
from __future__ import annotations

import os

import pytest
import remote_autograd as ra
from remote_helpers import RawStub, ServerProcess


@pytest.fixture(scope="session")
def server_process():
    server = ServerProcess()
    yield server
    rc = server.stop()
    log = server.read_log()
    server.cleanup()
    assert rc == 0, f"the server exited with {rc} on SIGTERM\n{log}"
    assert "Traceback" not in log, f"the server logged a traceback:\n{log[log.index('Traceback') - 200:][:6000]}"


@pytest.fixture(scope="session")
def address(server_process) -> str:
    return server_process.address


# Every test of a session runs in three client modes: lazy (commands queued until a sync point),
# ahead (every command sent ahead at once, without waiting: the
# pipeline at its finest) and eager (each command sent and waited for).
# Lazy and eager batches ride the server's direct lane; ahead's ride the gRPC stream (the lane
# off), so that both transports run the whole suite (test_lane_remote.py pipelines on the lane).
# Lazy mode answers value reads early, as a client on another machine than the server does by
# default (test_early_answers_remote.py).
# REMOTE_AUTOGRAD_TEST_MODES=lazy (or ahead, eager, or a list) picks some.
MODES = [m.strip() for m in os.environ.get("REMOTE_AUTOGRAD_TEST_MODES", "lazy,ahead,eager").split(",")
         if m.strip()]


@pytest.fixture(params=MODES)
def session_mode(request, monkeypatch) -> str:
    """The client mode of this test: ``ra.connect`` without ``eager=`` (in the test, or in a child
    process it starts) follows REMOTE_AUTOGRAD_EAGER, set here."""
    assert request.param in ("lazy", "ahead", "eager"), f"unknown client mode {request.param!r}"
    monkeypatch.setenv("REMOTE_AUTOGRAD_EAGER", "1" if request.param == "eager" else "0")
    monkeypatch.setenv("REMOTE_AUTOGRAD_SEND_AHEAD", "1" if request.param == "ahead" else "")
    monkeypatch.setenv("REMOTE_AUTOGRAD_DIRECT", "0" if request.param == "ahead" else "1")
    monkeypatch.setenv("REMOTE_AUTOGRAD_EARLY_ANSWERS", "1" if request.param == "lazy" else "0")
    return request.param


@pytest.fixture
def t(address, session_mode):
    session = ra.connect(address)
    assert session.eager == (session_mode == "eager")
    assert session.wire.send_ahead == (1 if session_mode == "ahead" else ra.session.LANE_SEND_AHEAD)
    assert bool(session.wire.lane_port) == (session_mode != "ahead")
    assert session.wire.early_answers == (session_mode == "lazy")
    yield session
    session.close()


@pytest.fixture
def raw(address):
    """``raw(session)`` or ``raw(session_id=..., token=...)``: a RawStub, closed after the test."""
    stubs = []

    def make(session=None, session_id: str = "", token: str = ""):
        if session is not None:
            session_id, token = session.session_id, session.token
        stub = RawStub(address, session_id, token)
        stubs.append(stub)
        return stub
    yield make
    for s in stubs:
        s.close()
