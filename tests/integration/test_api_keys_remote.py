"""API keys: a server started with --api-keys creates sessions (and pings and echoes) only for a valid
key, keeps only the keys' digests, and holds each tenant to its own session limit."""
from __future__ import annotations

import grpc
import pytest
import remote_autograd as ra
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos import autograd_pb2_grpc as pb_grpc
from remote_autograd.server.api_keys import keygen
from remote_helpers import running_server


@pytest.fixture
def keys(tmp_path):
    team_key, team_line = keygen("team")
    solo_key, solo_line = keygen("solo", max_sessions=1)
    path = tmp_path / "keys"
    path.write_text(f"# tenants\n{team_line}\n{solo_line}  # one session at most\n")
    assert team_key not in path.read_text() and solo_key not in path.read_text()  # digests only
    return str(path), team_key, solo_key


def test_sessions_need_a_valid_key(keys):
    path, team, _ = keys
    with running_server("--api-keys", path) as server:
        with pytest.raises(ra.RemoteError, match="refused to create a session: this server needs a valid API key"):
            ra.connect(server.address)
        with pytest.raises(ra.RemoteError, match="refused to create a session"):
            ra.connect(server.address, api_key="ra_not-a-key")
        with ra.connect(server.address, api_key=team) as t:
            x = t.ones(2, requires_grad=True)
            (x * 3).sum().backward()
            assert x.grad.tolist() == [3.0, 3.0]  # the session's own calls need its token, not the key


def test_ping_and_echo_need_a_key_too(keys):
    path, team, _ = keys
    with running_server("--api-keys", path) as server:
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.RemoteAutogradStub(channel)
        try:
            for call, request in ((stub.Ping, pb.Empty()), (stub.Echo, pb.Blob(data=b"x"))):
                with pytest.raises(grpc.RpcError) as info:
                    call(request, timeout=5)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                call(request, timeout=5, metadata=(("x-api-key", team),))
        finally:
            channel.close()


def test_a_tenant_is_held_to_its_own_session_limit(keys, monkeypatch):
    path, team, solo = keys
    monkeypatch.setenv("REMOTE_AUTOGRAD_API_KEY", solo)  # the key from the environment
    with running_server("--api-keys", path) as server, ra.connect(server.address) as first:
        with pytest.raises(ra.RemoteError, match="tenant solo holds 1 sessions, its limit is 1"):
            ra.connect(server.address)
        with ra.connect(server.address, api_key=team) as other:  # another tenant is not affected
            assert (other.ones(2) * 2).tolist() == [2.0, 2.0]
        assert (first.ones(2) * 3).tolist() == [3.0, 3.0]
    assert keygen("t")[0] != keygen("t")[0]  # a new key each time
