"""nginx with the very gateway config of the compose stack, in front of three local replicas."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest
import remote_autograd as ra
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos import autograd_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_CONF = ROOT / "deploy" / "gateway" / "nginx.conf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_replica(state_dir: str):
    proc = subprocess.Popen([sys.executable, "-m", "remote_autograd.server", "--port", "0",
                             "--state-dir", state_dir, "--log-level", "WARNING",
                             "--direct-port", "-1"],  # as docker-compose.yml runs them: gRPC only
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    proc.stdout.close()  # the server prints nothing else there
    assert line.startswith("listening on"), line
    return proc, int(line.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def stack():
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: scripts/test.sh installs it")
        pytest.skip("nginx is not installed (scripts/test.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="gateway-")
    replicas = [_start_replica(os.path.join(tmp, f"state-{i}")) for i in range(3)]
    prefix = Path(tmp) / "nginx"
    prefix.mkdir()
    # the very same gateway config; only the site-specific includes differ from compose's
    (prefix / "nginx.conf").symlink_to(GATEWAY_CONF)
    port = _free_port()
    (prefix / "listen.conf").write_text(f"listen 127.0.0.1:{port} http2;\n")
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for _, p in replicas)
    (prefix / "upstreams.conf").write_text(
        "upstream replicas {\n    hash $route_key consistent;\n" + servers + "    keepalive 16;\n}\n")
    log = open(prefix / "gateway.log", "w")  # noqa: SIM115  (closed at teardown)
    gw = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                          stderr=log)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert gw.poll() is None, (prefix / "gateway.log").read_text()
        time.sleep(0.1)
    yield {"address": address, "replicas": replicas}
    gw.send_signal(signal.SIGQUIT)
    gw.wait(20)
    log.close()
    for proc, _ in replicas:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    shutil.rmtree(tmp, ignore_errors=True)


def _holder(session, replicas) -> int:
    """Which replica holds the session: only that one accepts its token."""
    md = (("x-session-id", session.session_id), ("x-session-token", session.token))
    holders = []
    for i, (proc, port) in enumerate(replicas):
        if proc.poll() is not None:
            continue
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            try:
                pb_grpc.RemoteAutogradStub(ch).Execute(pb.Batch(), metadata=md, timeout=5)
                holders.append(i)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(holders) == 1, holders
    return holders[0]


def _notebook_cells(t):
    """The seed notebook's core cells; returns what they print."""
    x = t.arange(0, 3, dtype=t.float32, requires_grad=True)
    y = x**2 + x * 2
    z = y.sum()
    seen = []
    handle = y.register_hook(lambda g: seen.append(g.tolist()))
    z.backward()
    handle.remove()
    w = t.ones(1, requires_grad=True)
    b = t.ones(1, requires_grad=True)
    out = w * t.ones(1) + b
    out.backward(retain_graph=True)
    return repr(z), x.grad.tolist(), seen, out.grad_fn.name(), [n.name() for n, _ in out.grad_fn.next_functions]


def test_fifty_sessions_spread_over_replicas_and_run_the_notebook(stack):
    sessions = [ra.connect(stack["address"]) for _ in range(50)]
    try:
        counts = [0, 0, 0]
        for t in sessions:
            z_repr, grad, seen, name, nexts = _notebook_cells(t)
            assert z_repr == "tensor(11., grad_fn=<SumBackward0>)"
            assert grad == [2.0, 4.0, 6.0]
            assert seen == [[1.0, 1.0, 1.0]]
            assert name == "AddBackward0"
            assert nexts == ["MulBackward0", "torch::autograd::AccumulateGrad"]
            counts[_holder(t, stack["replicas"])] += 1
            assert t.wire.lane_port == 0  # no replica offers a lane its clients could not reach
        assert sum(counts) == 50
        assert min(counts) >= 5, f"sessions did not spread over the replicas: {counts}"
    finally:
        for t in sessions:
            t.close()


def test_a_dead_replica_fails_only_its_own_sessions(stack):
    sessions = [ra.connect(stack["address"]) for _ in range(24)]
    try:
        tensors = [t.ones(3, requires_grad=True) for t in sessions]
        holders = [_holder(t, stack["replicas"]) for t in sessions]
        victim = max(set(holders), key=holders.count)
        proc, _ = stack["replicas"][victim]
        proc.kill()
        proc.wait(10)
        for a, h in zip(tensors, holders):
            if h == victim:
                with pytest.raises(ra.ServerUnavailable, match="unavailable"):
                    (a * 2).sum().backward()
                    a.grad.tolist()  # the first point where the server must answer
            else:
                (a * 2).sum().backward()
                assert a.grad.tolist() == [2.0, 2.0, 2.0]
        # new sessions still open (creation retries ids that hash to the dead replica)
        for _ in range(10):
            with ra.connect(stack["address"]) as t:
                assert (t.ones(2) * 3).tolist() == [3.0, 3.0]
    finally:  # (open sessions would hold the gateway's graceful stop at teardown)
        for t in sessions:
            t.close()
