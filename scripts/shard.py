"""pytest plugin for scripts/gpu-check.sh: keep every Nth collected test (SHARD=k/N), so N
processes share one GPU host's cores. Load with ``-p shard`` with scripts/ on PYTHONPATH."""
import os


def pytest_collection_modifyitems(config, items):
    spec = os.environ.get("SHARD")
    if not spec:
        return
    k, n = (int(x) for x in spec.split("/"))
    keep = [item for i, item in enumerate(items) if i % n == k]
    config.hook.pytest_deselected(items=[item for i, item in enumerate(items) if i % n != k])
    items[:] = keep
