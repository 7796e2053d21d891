"""The compose file is valid as docker compose reads it (validated by Debian's docker-compose, no engine)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose():
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: scripts/test.sh installs it")
        pytest.skip("docker-compose is not installed (scripts/test.sh installs it)")
    return exe


def _config(*profile: str) -> str:
    out = subprocess.run([_compose(), "-f", str(ROOT / "docker-compose.yml"), *profile, "config"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_compose_file_validates_with_gateway_and_replicas():
    config = _config()
    for service in ("gateway:", "replica-1:", "replica-2:", "replica-3:"):
        assert service in config
    gpu = config[config.index("replica-gpu:"):]
    assert "profiles:\n    - gpu" in gpu  # started only with --profile gpu
    assert "REMOTE_AUTOGRAD_STATE_DIR: /var/lib/remote-autograd" in config
    assert "stop_grace_period: 40s" in config


def test_gpu_profile_adds_a_cupy_replica():
    config = _config("--profile", "gpu")
    assert "replica-gpu:" in config
    assert "REMOTE_AUTOGRAD_BACKEND: cupy" in config
    assert "driver: nvidia" in config


def test_direct_lanes_only_where_clients_can_reach_them():
    """Replicas behind the gateway offer no lane (it carries gRPC only); the GPU replica, reached
    directly, publishes its lane on the port number it offers."""
    config = _config("--profile", "gpu")
    services = dict(re.findall(r"(?m)^  (\S+):\n((?:    .*\n)+)", config))
    for replica in ("replica-1", "replica-2", "replica-3"):
        block = services[replica]
        assert "REMOTE_AUTOGRAD_DIRECT_PORT: '-1'" in block or 'REMOTE_AUTOGRAD_DIRECT_PORT: "-1"' in block, block
    gpu = services["replica-gpu"]
    assert "REMOTE_AUTOGRAD_DIRECT_PORT: '50062'" in gpu or 'REMOTE_AUTOGRAD_DIRECT_PORT: "50062"' in gpu
    assert re.search(r"published: ['\"]?50062['\"]?\n\s+target: 50062", gpu), gpu


def test_grace_period_outlasts_the_servers_grace():
    config = _config()
    assert "REMOTE_AUTOGRAD_GRACE: '20'" in config or 'REMOTE_AUTOGRAD_GRACE: "20"' in config
