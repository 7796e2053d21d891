#!/usr/bin/env bash
# The CuPy backend on a GPU host: every engine test against torch with REMOTE_AUTOGRAD_BACKEND=cupy,
# then the engine benchmark. Needs cupy, torch, numpy, pytest and hypothesis installed there; the
# package is put on the path without installing it (such hosts may have no package index).
# The suite runs as SHARDS processes side by side (each keeps every SHARDS-th test), since CuPy
# compiles each new kernel on first use; each shard's log, with every failure's traceback, goes
# to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp}"
shards="${SHARDS:-14}"
budget="${TEST_SECONDS:-300}"
pkg=$(mktemp -d)
mkdir -p "$pkg/remote_autograd"
ln -s "$PWD/engine" "$pkg/remote_autograd/engine"
# the whole package (client files at the top, as setuptools' package-dir lays it out), so that the
# server can run here too; the engine alone where this host's grpc cannot load the stubs
for f in client/*.py; do ln -s "$PWD/$f" "$pkg/remote_autograd/"; done
ln -s "$PWD/server" "$pkg/remote_autograd/server"
ln -s "$PWD/protos" "$pkg/remote_autograd/protos"
remote=1
if ! PYTHONPATH="$pkg" python3 -c "import remote_autograd.server.app" 2>/dev/null; then
    find "$pkg/remote_autograd" -maxdepth 1 -type l ! -name engine -delete
    : > "$pkg/remote_autograd/__init__.py"
    remote=0
fi
export PYTHONPATH="$pkg:$PWD/scripts" REMOTE_AUTOGRAD_BACKEND=cupy CUPY_CACHE_DIR="$PWD/.cupy-cache"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
python3 - <<'PY'
import remote_autograd.engine as E
a = E.randn(3, 4, requires_grad=True)
(a * 2).sum().backward()
print("backend", E.BACKEND, type(a._data).__module__, a.grad)
PY
# the same tests with the numpy backend on this host's torch tell a CuPy bug apart from a torch
# version that differs from the pinned oracle (such hosts may carry another torch)
run_suite() {  # $1 backend, $2 log
    for ((k = 0; k < shards; k++)); do
        REMOTE_AUTOGRAD_BACKEND=$1 SHARD="$k/$shards" timeout "$budget" python3 -m pytest tests/engine -q \
            -p no:cacheprovider -p shard -o addopts="" -rf --tb=short > "$out/shard-$1-$k.log" 2>&1 &
    done
    wait
    for ((k = 0; k < shards; k++)); do tail -n 1 "$out/shard-$1-$k.log"; done
    cat "$out"/shard-"$1"-*.log > "$2" && rm "$out"/shard-"$1"-*.log
    grep -h "^FAILED" "$2" | sed 's/ - .*//' | LC_ALL=C sort > "$2.failed"
}
run_suite cupy "$out/gpu-tests.log"
run_suite numpy "$out/host-tests.log"
echo "failed on cupy: $(wc -l < "$out/gpu-tests.log.failed"), on numpy with this torch: $(wc -l < "$out/host-tests.log.failed")"
echo "failing only on cupy:"
LC_ALL=C comm -23 "$out/gpu-tests.log.failed" "$out/host-tests.log.failed" | tee "$out/cupy-only.txt"
timeout 90 python3 benchmarks/engine_vs_torch.py --repeat 5 2>&1 | tee "$out/gpu-bench.log"
if [ "$remote" = 1 ]; then
    # a server on the GPU (it inherits REMOTE_AUTOGRAD_BACKEND=cupy): every seed notebook cell, remote
    REMOTE_AUTOGRAD_TEST_MODES=lazy timeout 120 python3 -m pytest tests/integration/test_notebook_remote.py \
        -q -p no:cacheprovider -o addopts="" -rf --tb=short 2>&1 | tee "$out/gpu-remote.log" | tail -15
else
    echo "no grpc on this host: the remote smoke test is skipped"
fi
