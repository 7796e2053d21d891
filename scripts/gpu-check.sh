#!/usr/bin/env bash
# The CuPy backend on a GPU host, in four parts, each under its own time limit (150 + 90 + 120 + 45 s:
# under 7 minutes at worst, with 16 cores; a summary at the end, exit 0 only if every part passed):
#   1. engine: every engine test against torch with REMOTE_AUTOGRAD_BACKEND=cupy, beside the same
#      tests with numpy on this host's torch, which tells a CuPy bug apart from a torch version that
#      differs from the pinned oracle (such hosts may carry another torch): only failures on CuPy
#      alone count;
#   2. session: a remote session as a user opens one: a server started with
#      REMOTE_AUTOGRAD_BACKEND=cupy, a client (numpy, no manual_seed) calling t.randn(3, 4), the
#      README's first cells, eager mode and the gRPC stream;
#   3. remote: the seed notebook end to end and every op of the integration suite
#      (tests/integration/test_notebook_remote.py, test_ops_remote.py) against CuPy servers (the
#      conftest's server inherits REMOTE_AUTOGRAD_BACKEND; a plugin asserts the server's backend),
#      beside the same against numpy servers, as in part 1;
#   4. the engine benchmark.
# Needs python3 with cupy, torch, numpy, pytest and hypothesis; parts 2 and 3 also grpcio, protobuf,
# grpcio-health-checking and grpcio-reflection at pyproject.toml's floors. A host without a package
# index takes missing ones as wheels in $WHEELS (default .whl/), installed with --no-index into a
# temporary folder on the path. The package itself is put on the path without installing it. E.g.
# for a host with Python 3.12, on a machine with an index:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       -d .whl grpcio==1.85.3 protobuf==7.36.2 grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1
# Each part's logs, every failure's traceback in them, go to $OUT (default /tmp/gpu-check).
# SHARDS, REMOTE_SHARDS, HOST_SHARDS (processes per suite), MODES (the integration suite's client
# modes) and the *_SECONDS limits can be set from the environment; GPU_BACKEND=numpy runs every part
# with numpy in CuPy's place, to try this script on a host without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
py="${PYTHON:-python3}"
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
shards="${SHARDS:-12}"          # engine suite on the GPU
remote_shards="${REMOTE_SHARDS:-10}"  # integration tests on GPU servers, one server each
host_shards="${HOST_SHARDS:-4}"  # each suite beside them on numpy
modes="${MODES:-lazy}"
engine_budget="${ENGINE_SECONDS:-150}"
remote_budget="${REMOTE_SECONDS:-120}"
gpu="${GPU_BACKEND:-cupy}"

# cupy first: without it nothing here means anything
if [ "$gpu" = cupy ] && ! cupy_error=$("$py" -c "import cupy; cupy.cuda.runtime.getDeviceCount(); cupy.arange(3).sum()" 2>&1); then
    echo "gpu-check: FAILED before any test: CuPy cannot run a kernel with $py on this host:" >&2
    echo "$cupy_error" | tail -n 3 >&2
    echo "gpu-check: install it with the NVIDIA driver's CUDA major, e.g. pip install -e '.[gpu]' (CUDA 13," \
         "driver 580+) or '.[gpu-cuda12]' (CUDA 12); both bring CUDA's libraries from PyPI" >&2
    exit 2
fi

site=$(mktemp -d)
wheels="${WHEELS:-.whl}"
if compgen -G "$wheels/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl \
        || { echo "gpu-check: the wheels in $wheels did not install" >&2; exit 2; }
fi
pkg=$(mktemp -d)
mkdir -p "$pkg/remote_autograd"
ln -s "$PWD/engine" "$pkg/remote_autograd/engine"
# the whole package (client files at the top, as setuptools' package-dir lays it out), so that the
# server can run here too; the engine alone where this host's grpc cannot load the stubs
for f in client/*.py; do ln -s "$PWD/$f" "$pkg/remote_autograd/"; done
ln -s "$PWD/server" "$pkg/remote_autograd/server"
ln -s "$PWD/protos" "$pkg/remote_autograd/protos"
export PYTHONPATH="$pkg:$site:$PWD/scripts" CUPY_CACHE_DIR="$PWD/.cupy-cache" PYTHONUNBUFFERED=1
remote_error=""
if ! remote_error=$("$py" -c "import remote_autograd.server.app" 2>&1); then
    remote_error=$(tail -n 1 <<<"$remote_error")
    find "$pkg/remote_autograd" -maxdepth 1 -type l ! -name engine -delete
    : > "$pkg/remote_autograd/__init__.py"
else
    remote_error=""
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
versions=$("$py" - <<'PY'
import importlib.metadata as m
import platform


def version(name):
    try:
        return f"{name} {m.version(name)}"
    except m.PackageNotFoundError:
        return None


names = ("cupy-cuda13x", "cupy-cuda12x", "numpy", "torch", "grpcio", "protobuf")
print("Python", platform.python_version(), *filter(None, map(version, names)))
PY
)
echo "$versions"

summary=()
failed=0
counts() {  # the pytest counts of shard logs $@, summed: "N passed, M failed, ..."
    "$py" - "$@" <<'PY'
import re, sys
total, broken = {}, 0
for path in sys.argv[1:]:
    lines = [l for l in open(path, errors="replace")
             if re.match(r"(=+ )?(\d+ \w+|no tests ran).* in [0-9.]+s\b", l)] or [""]
    found = re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)", lines[-1])
    broken += not lines[-1]
    for n, kind in found:
        total[kind.rstrip("s") if kind.startswith("error") else kind] = total.get(kind, 0) + int(n)
text = ", ".join(f"{v} {k}" for k, v in total.items() if k != "deselected") or "no result"
print(text + (f"; {broken} shard(s) ended without a summary (timed out or crashed)" if broken else ""))
PY
}
run_shards() {  # $1 label, $2 gpu (on $gpu) or host (on numpy), $3 shards, $4 time limit, then pytest's arguments
    local label=$1 role=$2 n=$3 budget=$4 k backend=numpy
    shift 4
    [ "$role" = gpu ] && backend=$gpu
    for ((k = 0; k < n; k++)); do
        REMOTE_AUTOGRAD_BACKEND=$backend SERVER_BACKEND=$backend SHARD="$k/$n" timeout "$budget" \
            "$py" -m pytest "$@" -q -p no:cacheprovider -p shard -o addopts="" -rf --tb=short \
            > "$out/$label-$role-$k.log" 2>&1 &
    done
}
collect() {  # $1 label, $2 gpu or host: one log, its FAILED ids sorted, its counts
    local logs=("$out/$1-$2-"*.log)
    local c
    c=$(counts "${logs[@]}")
    cat "${logs[@]}" > "$out/$1-$2.log" && rm "${logs[@]}"
    grep -h -E "^(FAILED|ERROR) " "$out/$1-$2.log" | sed 's/ - .*//' | LC_ALL=C sort -u > "$out/$1-$2.failed"
    echo "$c"
}
compare() {  # $1 label, $2 its counts on $gpu, $3 on numpy: adds the summary line
    local only
    only=$(LC_ALL=C comm -23 "$out/$1-gpu.failed" "$out/$1-host.failed")
    echo "$only" | sed '/^$/d' > "$out/$1-$gpu-only.txt"
    local bad=""
    if [ -s "$out/$1-$gpu-only.txt" ] || [[ $2 == *"shard(s) ended"* || $2 == "no result" || $2 != *passed* ]]; then
        bad=" <- FAILED"
        failed=1
    fi
    summary+=("$1: $gpu: $2 | numpy on this torch: $3 | failing only on $gpu: $(wc -l < "$out/$1-$gpu-only.txt")$bad")
    if [ -s "$out/$1-$gpu-only.txt" ]; then
        echo "failing only on $gpu ($1):"
        cat "$out/$1-$gpu-only.txt"
    fi
}

# 1. the engine suite: CuPy compiles each new kernel on first use, so most shards go to it
echo "== 1. engine suite, $gpu and numpy side by side (limit ${engine_budget}s)"
run_shards engine gpu "$shards" "$engine_budget" tests/engine
run_shards engine host "$host_shards" "$engine_budget" tests/engine
wait
engine_gpu=$(collect engine gpu)
engine_numpy=$(collect engine host)
compare engine "$engine_gpu" "$engine_numpy"
echo "${summary[-1]}"

if [ -n "$remote_error" ]; then
    failed=1
    summary+=("session, remote: NOT RUN: the server cannot load here ($remote_error); carry grpcio," \
        "protobuf, grpcio-health-checking, grpcio-reflection as wheels in $wheels <- FAILED")
else
    # 2. a session as a user opens one: the server on CuPy, the client a plain numpy process
    echo "== 2. a user's session on a $gpu server"
    if env -u REMOTE_AUTOGRAD_BACKEND timeout 90 "$py" - "$out/session-server.log" "$gpu" \
            > "$out/session.log" 2>&1 <<'PY'
import math
import os
import signal
import subprocess
import sys

import numpy as np

log, backend = open(sys.argv[1], "w"), sys.argv[2]
server = subprocess.Popen([sys.executable, "-m", "remote_autograd.server", "--host", "127.0.0.1", "--port", "0"],
                          env={**os.environ, "REMOTE_AUTOGRAD_BACKEND": backend},
                          stdout=subprocess.PIPE, stderr=log, text=True)
line = server.stdout.readline()
assert line.startswith("listening on"), f"the server did not start: {line!r}"
address = line.split()[-1]
import remote_autograd as ra  # noqa: E402  (the client: numpy, as a user's machine has it)
import remote_autograd.engine.backend as client_backend  # noqa: E402

assert client_backend.BACKEND == "numpy", client_backend.BACKEND
try:
    with ra.connect(address) as t:
        assert t.backend == backend, f"the server computes with {t.backend!r}"
        a = t.randn(3, 4)  # no manual_seed: the session's own generator
        print("t.randn(3, 4) ->", a)
        values = a.tolist()
        assert tuple(a.shape) == (3, 4) and str(a.dtype) == "torch.float32", (a.shape, a.dtype)
        assert all(math.isfinite(v) for row in values for v in row) and len({v for r in values for v in r}) == 12
        assert t.randn(3, 4).tolist() != values, "two draws gave the same values"
        a = t.randn(3, 4, requires_grad=True)  # the README's first cells
        b = t.zeros(3, 4, requires_grad=True)
        c = a + b
        c.sum().backward()
        assert a.grad.tolist() == [[1.0] * 4] * 3, a.grad
        print("c.grad_fn ->", c.grad_fn, c.grad_fn.next_functions)
        assert c.grad_fn.name() == "AddBackward0"
        x, w = t.randn(64, 32), t.randn(32, 16)
        assert np.allclose((x @ w).numpy(), x.numpy() @ w.numpy(), rtol=1e-4, atol=1e-4)
        first = values
    with ra.connect(address) as t:
        assert t.randn(3, 4).tolist() != first, "a second session drew the first session's values"
    for kwargs in ({"eager": True}, {"direct": False}):
        with ra.connect(address, **kwargs) as t:
            y = t.randn(3, 4, requires_grad=True)
            (y * 2).sum().backward()
            assert y.grad.tolist() == [[2.0] * 4] * 3, (kwargs, y.grad)
            print(kwargs, "->", t.randn(2).tolist())
finally:
    server.send_signal(signal.SIGTERM)
    rc = server.wait(60)
    log.close()
text = open(sys.argv[1]).read()
assert rc == 0 and "Traceback" not in text, f"the server exited with {rc}:\n{text[-3000:]}"
print("session: ok")
PY
    then
        summary+=("session: ok (server on $gpu; a numpy client drew t.randn(3, 4) without a seed; eager; gRPC stream)")
    else
        failed=1
        summary+=("session: FAILED (logs: $out/session.log, $out/session-server.log) <- FAILED")
        tail -n 25 "$out/session.log"
        tail -n 15 "$out/session-server.log"
    fi
    head -n 12 "$out/session.log"

    # 3. the notebook and the integration suite's ops against CuPy servers (one per shard)
    echo "== 3. seed notebook and integration ops, $gpu servers beside numpy servers (modes $modes, limit ${remote_budget}s)"
    remote_tests=(tests/integration/test_notebook_remote.py tests/integration/test_ops_remote.py -p server_backend)
    REMOTE_AUTOGRAD_TEST_MODES=$modes run_shards remote gpu "$remote_shards" "$remote_budget" "${remote_tests[@]}"
    REMOTE_AUTOGRAD_TEST_MODES=$modes run_shards remote host "$host_shards" "$remote_budget" "${remote_tests[@]}"
    wait
    remote_gpu=$(collect remote gpu)
    remote_numpy=$(collect remote host)
    compare remote "$remote_gpu" "$remote_numpy"
    echo "${summary[-1]}"
fi

echo "== 4. engine benchmark on $gpu"
REMOTE_AUTOGRAD_BACKEND=$gpu timeout 45 "$py" benchmarks/engine_vs_torch.py --repeat 3 > "$out/bench.log" 2>&1
bench_rc=$?
tail -n 8 "$out/bench.log"
summary+=("benchmark: $([ $bench_rc = 0 ] && echo "ok ($out/bench.log)" || echo "exit $bench_rc, not counted ($out/bench.log)")")

echo
echo "== gpu-check summary ($((SECONDS - started)) s; $versions)"
printf '%s\n' "${summary[@]}"
echo "logs: $out"
if [ "$failed" = 0 ]; then echo "gpu-check: PASSED"; else echo "gpu-check: FAILED"; fi
exit $failed
