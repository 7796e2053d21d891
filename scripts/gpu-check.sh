#!/usr/bin/env bash
# The CuPy backend on a GPU host: the engine's tests against torch with REMOTE_AUTOGRAD_BACKEND=cupy,
# and the engine benchmark. Needs cupy, torch, numpy, pytest and hypothesis installed there; the
# package is put on the path without installing it (such hosts may have no package index).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp}"
pkg=$(mktemp -d)
mkdir -p "$pkg/remote_autograd"
: > "$pkg/remote_autograd/__init__.py"
ln -s "$PWD/engine" "$pkg/remote_autograd/engine"
export PYTHONPATH="$pkg" REMOTE_AUTOGRAD_BACKEND=cupy
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
python3 - <<'PY'
import remote_autograd.engine as E
a = E.randn(3, 4, requires_grad=True)
(a * 2).sum().backward()
print("backend", E.BACKEND, type(a._data).__module__, a.grad)
PY
# every test launches many tiny kernels: the notebook and Function suites first, then the op table
# (a session's device time is short; -rf lists each failure by name in the log that comes back)
for suite in "tests/engine/test_notebook.py tests/engine/test_function.py tests/engine/test_meta.py" \
             "tests/engine/test_semantics.py" "tests/engine/test_ops.py"; do
    timeout 150 python3 -m pytest $suite -q -p no:cacheprovider -o addopts="" -rf --maxfail=40 \
        2>&1 | tee -a "$out/gpu-tests.log" | tail -45
done
timeout 120 python3 benchmarks/engine_vs_torch.py --repeat 5 2>&1 | tee "$out/gpu-bench.log"
