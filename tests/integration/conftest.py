"""Fixtures: one live server process for the session (started as a user starts it), sessions on it."""
from __future__ import annotations

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


@pytest.fixture
def t(address):
    session = ra.connect(address)
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
